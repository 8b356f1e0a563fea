//! A stand-in engine server with known timing and injectable faults, for tests and benches.
//!
//! It takes `--port P` (other llama-server-style flags are accepted and ignored), prints
//! `version: <L1_FIXTURE_VERSION or "fixture">` for `--version`, and serves the fixture of
//! `l1_loadgen::fixture`. Environment:
//! - `L1_FIXTURE_TTFT_MS`, `L1_FIXTURE_ITL_MS`: timing (default 5 and 1).
//! - `L1_FIXTURE_FAULT=<kind>:<every>`: `http500`, `malformed`, `badjson`, `drop`, `error`,
//!   `stall` on every n-th request.
//! - `L1_FIXTURE_REJECT_FLAG=<flag>`: exit 1 at start with `error: invalid argument: <flag>`
//!   when that flag is given (an engine refusing its configuration).
//! - `L1_FIXTURE_NEVER_READY=1`: never answer (readiness timeouts).
//! - `L1_FIXTURE_EXIT_AFTER=<n>`: exit abruptly after n generation requests (a crash mid-rep).

use std::sync::atomic::Ordering;
use std::time::Duration;

use l1_loadgen::fixture::{Fault, Fixture, FixtureConfig};

fn env_ms(name: &str, default: u64) -> Duration {
    Duration::from_millis(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--version") {
        let v = std::env::var("L1_FIXTURE_VERSION").unwrap_or_else(|_| "fixture".into());
        println!("version: {v} (l1 fixture server)");
        return;
    }
    if let Ok(flag) = std::env::var("L1_FIXTURE_REJECT_FLAG")
        && args.contains(&flag)
    {
        eprintln!("loading model");
        eprintln!("error: invalid argument: {flag}");
        std::process::exit(1);
    }
    let port: u16 = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    if std::env::var("L1_FIXTURE_NEVER_READY").is_ok() {
        eprintln!("loading model (forever)");
        std::thread::sleep(Duration::from_secs(3600));
        return;
    }
    let fault = std::env::var("L1_FIXTURE_FAULT").ok().and_then(|f| {
        let (kind, every) = f.split_once(':')?;
        let kind = match kind {
            "http500" => Fault::Http500,
            "malformed" => Fault::MalformedSse,
            "badjson" => Fault::BadJson,
            "drop" => Fault::DropMidStream,
            "error" => Fault::ErrorEvent,
            "stall" => Fault::Stall,
            _ => return None,
        };
        Some((kind, every.parse().ok()?))
    });
    let config = FixtureConfig {
        ttft: env_ms("L1_FIXTURE_TTFT_MS", 5),
        itl: env_ms("L1_FIXTURE_ITL_MS", 1),
        fault,
    };
    let fx = match Fixture::start_on(config, 2, port) {
        Ok(fx) => fx,
        Err(e) => {
            eprintln!("error: failed to bind port {port}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("fixture serving on port {}", fx.port);
    let exit_after: Option<u64> = std::env::var("L1_FIXTURE_EXIT_AFTER")
        .ok()
        .and_then(|v| v.parse().ok());
    loop {
        std::thread::sleep(Duration::from_millis(5));
        if let Some(n) = exit_after
            && fx.requests.load(Ordering::Relaxed) >= n
        {
            eprintln!("fatal: simulated crash after {n} requests");
            std::process::exit(134);
        }
    }
}
