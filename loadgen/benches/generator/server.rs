//! Both tools against the same vLLM CPU server (`<engines>/bin/vllm-serve`, started and torn
//! down as the harness does an engine), side by side.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use l1_engines::process::{LaunchCommand, free_port};
use l1_loadgen::prompts::{self, TokenCounter};
use l1_loadgen::summary::quantile;
use l1_loadgen::{HttpApi, HttpBackend, Load, RequestSpec, Slo, driver, summarize};
use serde_json::Value;

use crate::fixture::{Http, start_server};
use crate::l1::{l1_requests, runtime};
use crate::vllm::Vllm;
use crate::{SEED, p50_p99};

/// Prompt lengths from the server's own tokenizer (`POST /tokenize`).
struct ServerCounter<'a>(&'a Http, u16);

impl TokenCounter for ServerCounter<'_> {
    fn count(&self, text: &str) -> Result<usize, String> {
        let body =
            serde_json::json!({"model": "tiny", "prompt": text, "add_special_tokens": false});
        let (_, b) = self.0.call(self.1, "/tokenize", Some(&body))?;
        let v: Value = serde_json::from_str(&b).map_err(|e| e.to_string())?;
        v["count"]
            .as_u64()
            .map(|n| n as usize)
            .ok_or_else(|| format!("no count in {b}"))
    }
}

pub fn server_comparison(engines: &Path, vllm: Option<&Vllm>, quick: bool, out: &Path) {
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
    let port = free_port().unwrap();
    let args: Vec<String> = [
        "--model",
        &model.display().to_string(),
        "--served-model-name",
        "tiny",
        "--host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--max-model-len",
        "512",
        "--dtype",
        "bfloat16",
        "--enforce-eager",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let cmd = LaunchCommand {
        program: serve,
        args,
        ..LaunchCommand::default()
    };
    let server = match start_server(&cmd, port, Duration::from_secs(300), out, "vllm-serve") {
        Ok((process, startup)) => {
            eprintln!("bench: vllm-serve up in {:.1} s", startup.as_secs_f64());
            process
        }
        Err(e) => {
            println!(
                "vllm-serve did not start or become healthy: {e} (log: {})",
                out.join("vllm-serve.log").display()
            );
            return;
        }
    };
    let http = Http::new();
    let base = format!("http://127.0.0.1:{port}");
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
    let counter = ServerCounter(&http, port);
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
            let before = server_means(&http, port);
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
                let after = server_means(&http, port);
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
                        let after = server_means(&http, port);
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
fn server_means(http: &Http, port: u16) -> l1_loadgen::prom::Scrape {
    http.call(port, "/metrics", None)
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
