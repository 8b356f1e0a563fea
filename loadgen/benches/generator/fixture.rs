//! The fixture in its own process (this bench binary re-executed with `L1_BENCH_FIXTURE`, the
//! same target for every tool), supervised as the harness supervises engines
//! (`l1_engines::process::EngineProcess`: its own process group, pid record, readiness probe,
//! SIGTERM teardown), and the small blocking HTTP client the bench reads servers with.

use std::path::Path;
use std::time::Duration;

use l1_engines::process::{EngineProcess, LaunchCommand, free_port};
use l1_loadgen::fixture::{Fixture, FixtureConfig};
use serde_json::Value;

use crate::{ITL_MS, TTFT_MS, p50_p99};

/// The child side: serve the fixture on the port `spec` names (`ttft_ms,itl_ms,port`) until
/// terminated.
pub fn serve_fixture(spec: &str) {
    let mut it = spec.split(',').map(|v| v.parse::<u64>().unwrap_or(0));
    let config = FixtureConfig {
        ttft: Duration::from_millis(it.next().unwrap_or(TTFT_MS)),
        itl: Duration::from_millis(it.next().unwrap_or(ITL_MS)),
        fault: None,
    };
    let port = it.next().and_then(|p| u16::try_from(p).ok()).unwrap_or(0);
    let fx = Fixture::start_on(config, 2, port).unwrap();
    eprintln!("fixture on port {}", fx.port);
    // Serve until the parent's teardown (SIGTERM to the process group) ends the process.
    loop {
        std::thread::park();
    }
}

/// Blocking HTTP over the engines' client stack (reqwest on the launches' runtime).
pub struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    pub fn new() -> Self {
        Self {
            rt: l1_engines::launch::runtime().unwrap(),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    /// `GET` (`body` `None`) or `POST` a JSON body to `127.0.0.1:<port><path>`: (status, body).
    pub fn call(
        &self,
        port: u16,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), String> {
        let url = format!("http://127.0.0.1:{port}{path}");
        self.rt.block_on(async {
            let req = match body {
                Some(b) => self.client.post(&url).json(b),
                None => self.client.get(&url),
            };
            let r = req.send().await.map_err(|e| format!("{url}: {e}"))?;
            let status = r.status().as_u16();
            let text = r.text().await.map_err(|e| format!("{url}: {e}"))?;
            Ok((status, text))
        })
    }

    /// Whether `GET <path>` answers 200.
    pub fn ok(&self, port: u16, path: &str) -> bool {
        matches!(self.call(port, path, None), Ok((200, _)))
    }
}

/// Start `cmd` like an engine (logs to `<out>/<name>.log`, pid records under `<out>/state`)
/// and wait until `GET /health` on `port` answers 200: the process and its startup time.
pub fn start_server(
    cmd: &LaunchCommand,
    port: u16,
    timeout: Duration,
    out: &Path,
    name: &str,
) -> Result<(EngineProcess, Duration), String> {
    let mut process = EngineProcess::spawn(
        cmd,
        &out.join(format!("{name}-workdir")),
        &out.join(format!("{name}.log")),
        &out.join("state"),
    )
    .map_err(|e| e.to_string())?;
    let http = Http::new();
    let startup = process
        .wait_ready(timeout, || http.ok(port, "/health"))
        .map_err(|e| e.to_string())?;
    Ok((process, startup))
}

pub struct FixtureProc {
    _process: EngineProcess,
    http: Http,
    port: u16,
}

impl FixtureProc {
    pub fn start(out: &Path) -> Self {
        let port = free_port().unwrap();
        let cmd = LaunchCommand {
            program: std::env::current_exe().unwrap(),
            env: [(
                "L1_BENCH_FIXTURE".to_string(),
                format!("{TTFT_MS},{ITL_MS},{port}"),
            )]
            .into(),
            ..LaunchCommand::default()
        };
        let (process, _) =
            start_server(&cmd, port, Duration::from_secs(30), out, "fixture").unwrap();
        Self {
            _process: process,
            http: Http::new(),
            port,
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (arrival µs, first-token µs after arrival) of every generation request.
    fn stats(&self) -> (Vec<f64>, Vec<f64>) {
        let (_, body) = self.http.call(self.port, "/stats", None).unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        let arr = |k: &str| -> Vec<f64> {
            v[k].as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        (arr("arrival_us"), arr("first_token_us"))
    }

    /// Delivered ratio (arrival rate seen / `intended` rate) and the fixture's p99 lateness (ms).
    pub fn delivered(&self, intended: f64) -> (f64, f64, usize) {
        let (mut arrivals, first) = self.stats();
        arrivals.sort_by(f64::total_cmp);
        let n = arrivals.len();
        let span =
            arrivals.last().copied().unwrap_or(0.0) - arrivals.first().copied().unwrap_or(0.0);
        let achieved = if n > 1 && span > 0.0 {
            (n - 1) as f64 / (span / 1e6)
        } else {
            0.0
        };
        let late: Vec<f64> = first.iter().map(|us| us / 1e3 - TTFT_MS as f64).collect();
        (achieved / intended, p50_p99(late)[1], n)
    }
}
