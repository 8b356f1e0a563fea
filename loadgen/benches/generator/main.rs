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
//!
//! Layout: `fixture` (the fixture process, supervised as the harness supervises engines, and the
//! blocking HTTP client), `l1` (l1's client runs and pacing), `vllm` (vLLM's client), `server`
//! (the server comparison); this file runs the parts and prints the tables. Process supervision,
//! the runtime, free ports and the engines directory come from `l1-engines`.
#![allow(clippy::unwrap_used)] // bench code: a panic is the report.

mod fixture;
mod l1;
mod server;
mod vllm;

use std::path::{Path, PathBuf};

use l1_engines::install::engines_dir;
use l1_loadgen::summary::quantile;

use fixture::serve_fixture;
use l1::{l1_step, pacing};
use server::server_comparison;
use vllm::Vllm;

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
        let steps = ladder(&rates, |rate| l1_step(rate, n_for(rate), keep_alive, &out));
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
