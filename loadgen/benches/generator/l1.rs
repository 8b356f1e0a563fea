//! l1's load generator as the harness drives servers: against the fixture at a Poisson rate
//! (fresh connections or keep-alive), and its pacing alone with a backend that answers at once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use l1_loadgen::prompts;
use l1_loadgen::summary::quantile;
use l1_loadgen::{HttpApi, HttpBackend, Load, RequestSpec, Slo, driver, summarize};

use crate::fixture::FixtureProc;
use crate::{IN_TOKENS, ITL_MS, OUT_TOKENS, SEED, Step, TTFT_MS, p50_p99};

/// The runtime the harness's launches drive servers on (two workers).
pub fn runtime() -> tokio::runtime::Runtime {
    l1_engines::launch::runtime().unwrap()
}

pub fn l1_requests(n: usize, prompt: &str, max_tokens: u32) -> Vec<RequestSpec> {
    (0..n)
        .map(|i| RequestSpec {
            index: i,
            prompt: prompt.to_string(),
            target_input_tokens: IN_TOKENS,
            max_tokens,
        })
        .collect()
}

pub fn l1_step(rate: f64, n: usize, keep_alive: bool, out: &Path) -> Step {
    let fx = FixtureProc::start(out);
    let rt = runtime();
    let backend = if keep_alive {
        HttpBackend::keep_alive(&fx.base(), HttpApi::OpenAiCompletions, "fixture")
    } else {
        HttpBackend::new(&fx.base(), HttpApi::OpenAiCompletions, "fixture")
    }
    .unwrap();
    let prompt = prompts::prompt(IN_TOKENS, SEED, None, 1.0).unwrap();
    let load = Load::Poisson { rate, seed: SEED };
    let run = driver::run(
        &rt,
        Arc::new(backend),
        l1_requests(n, &prompt, OUT_TOKENS),
        &load,
        Duration::from_secs(30),
    );
    drop(rt);
    let schedule = driver::poisson_schedule(n, rate, SEED);
    let intended = (n - 1) as f64 / schedule.last().unwrap().as_secs_f64();
    let (delivered, late, _) = fx.delivered(intended);
    let ok: Vec<_> = run
        .observations
        .iter()
        .filter(|o| o.error.is_none())
        .collect();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Step {
        rate,
        requests: n,
        delivered,
        failed: n - ok.len(),
        ttft_err: p50_p99(
            ok.iter()
                .filter_map(|o| o.ttft.map(|t| ms(t) - TTFT_MS as f64))
                .collect(),
        ),
        itl_err: p50_p99(
            ok.iter()
                .flat_map(|o| o.itl.iter().map(|d| ms(*d) - ITL_MS as f64))
                .collect(),
        ),
        send_err: p50_p99(run.observations.iter().map(|o| ms(o.send_lag)).collect()),
        fixture_late_p99: late,
        sustained: false,
        note: run
            .observations
            .iter()
            .find_map(|o| {
                o.error
                    .as_ref()
                    .map(|e| e.detail.chars().take(80).collect())
            })
            .unwrap_or_default(),
    }
}

/// A backend that answers at once: the pacer and the runtime's hand-off alone.
struct Instant1;

impl l1_loadgen::Backend for Instant1 {
    fn send<'a>(
        &'a self,
        _req: &'a RequestSpec,
    ) -> l1_loadgen::BoxFuture<'a, Result<l1_loadgen::Streamed, l1_loadgen::RequestError>> {
        Box::pin(async {
            Ok(l1_loadgen::Streamed {
                chunk_times: vec![Duration::ZERO],
                ..Default::default()
            })
        })
    }
}

/// l1's Poisson send-time error with no I/O (the pacer and the hand-off to the runtime).
pub fn pacing(quick: bool) {
    println!("\n### l1 Poisson pacing without I/O\n");
    println!(
        "A backend that answers at once, so only the pacer and the hand-off to the runtime are measured (send error = actual - intended send time).\n"
    );
    println!(
        "| offered req/s | requests | delivered | send err p50 (µs) | send err p99 (µs) | send err max (µs) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let rt = runtime();
    for rate in [100.0, 1000.0, 10_000.0, 50_000.0] {
        let n = ((rate * if quick { 1.0 } else { 3.0 }) as usize).clamp(500, 100_000);
        let run = driver::run(
            &rt,
            Arc::new(Instant1),
            l1_requests(n, "x", 1),
            &Load::Poisson { rate, seed: SEED },
            Duration::from_secs(10),
        );
        let s = summarize(&run, &Slo::default());
        let mut lag: Vec<f64> = run
            .observations
            .iter()
            .map(|o| o.send_lag.as_secs_f64() * 1e6)
            .collect();
        let sched = driver::poisson_schedule(n, rate, SEED);
        let intended = (n - 1) as f64 / sched.last().unwrap().as_secs_f64();
        let achieved = s.metrics.get("achieved_rate_per_s").copied().unwrap_or(0.0);
        let max = lag.iter().copied().fold(0.0, f64::max);
        println!(
            "| {rate:.0} | {n} | {:.3} | {:.1} | {:.1} | {max:.0} |",
            achieved / intended,
            quantile(&mut lag, 0.5),
            quantile(&mut lag, 0.99)
        );
    }
}
