//! One engine launch: started, warmed up, then asked for reps. The simulated engine, server
//! engines (a process per launch, driven over HTTP) and in-process engines all implement
//! [`Launch`], so the harness measures them through one path; this module also holds what
//! every launch shares (its target, its requests, the load and the rep's metrics).

use std::path::{Path, PathBuf};
use std::time::Duration;

use l1_loadgen::prompts::{self, TokenCounter};
use l1_loadgen::{Load, RequestSpec, Slo};
use rand::{Rng, SeedableRng};

use crate::error::{LaunchError, ModelMissing, PromptError, RepError};
use crate::{Arrival, Combo, HardwareProfile, Metrics, ModelProfile, Workload};

/// A started engine.
pub trait Launch {
    /// Run rep `index` (warm-up reps included: the caller discards them) and return its metrics.
    fn rep(&mut self, index: u32) -> Result<Metrics, RepError>;
    /// The engine version the launch found installed and ran (`None` for the sim, which reports
    /// none). Also in [`Launch::notes`] as `engine version: X`.
    fn engine_version(&self) -> Option<&str> {
        None
    }
    /// What the launch wants recorded: startup time, engine version, command line, log path,
    /// delivered-load warnings.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// Answer the fidelity probes greedily (after the reps, never inside a measured window).
    /// Engines without a probe protocol say so in the run instead of answering.
    fn probe(&mut self, set: &crate::probe::ProbeSet) -> crate::probe::ProbeRun {
        crate::probe::ProbeRun::unsupported(set, "none", "this engine has no probe protocol in l1")
    }
}

pub use crate::install::engines_dir;

/// Everything an engine launch needs to know (the sim reads the profiles, the combo and the
/// seed; real engines everything).
#[derive(Clone, Debug)]
pub struct LaunchTarget<'a> {
    /// Installed engines (`bin/`) and test models (`models/`).
    pub engines_dir: &'a Path,
    /// The model's name in `models.yaml` (model files are `<engines>/models/<name>.<ext>`).
    pub model_name: &'a str,
    pub model: &'a ModelProfile,
    pub hardware: &'a HardwareProfile,
    pub workload: &'a Workload,
    pub combo: &'a Combo,
    /// The engine version the spec targets.
    pub version: &'a str,
    /// Where logs and working directories go (`<run dir>/engines/<tag>/`).
    pub run_dir: &'a Path,
    /// A file-name-safe tag for this launch (measurement key and launch number).
    pub tag: String,
    /// Harness state (`<target>/l1`): live-engine records for the orphan sweep.
    pub state_dir: &'a Path,
    /// `CUDA_VISIBLE_DEVICES` for GPU engines.
    pub cuda_visible_devices: Option<String>,
    /// Seed of the measurement: the request sequence (prompts and lengths, the same in every
    /// launch), and the sim's noise (drawn per launch from `seed + launch`).
    pub seed: u64,
    /// The launch's number within its measurement, from 0.
    pub launch: u32,
    /// Overrides the engine's readiness timeout.
    pub startup_timeout: Option<std::time::Duration>,
}

impl LaunchTarget<'_> {
    /// The model file or directory with extension `ext` (`gguf`, `onnx`, `hf`).
    pub fn model_file(&self, ext: &str) -> Result<PathBuf, ModelMissing> {
        let dir = self.engines_dir.join("models");
        let p = if ext == "hf" {
            dir.join(format!("{}-hf", self.model_name))
        } else {
            dir.join(format!("{}.{ext}", self.model_name))
        };
        if p.exists() {
            Ok(p)
        } else {
            Err(ModelMissing {
                model: self.model_name.to_string(),
                ext: ext.to_string(),
                path: p,
            })
        }
    }

    /// The launch's log file and working directory.
    pub fn log_and_workdir(&self) -> (PathBuf, PathBuf) {
        let base = self.run_dir.join("engines").join(&self.tag);
        (base.join("engine.log"), base.join("wd"))
    }
}

/// The requests of rep `index` (`u32::MAX` for warm-up): `n` requests whose lengths and prompts
/// come from the launch `seed` and the rep, so every launch of a trial sees the same sequence.
/// Synthetic prompts are fitted to the engine's tokenizer when `counter` is given (else one
/// token per word); with a [`crate::profile::Dataset`], each request draws a line, and its input
/// length is what `counter` counts (else its word count × `tokens_per_word`).
pub fn rep_requests(
    w: &Workload,
    seed: u64,
    index: u32,
    n: u32,
    counter: Option<&dyn TokenCounter>,
    tokens_per_word: f64,
) -> Result<Vec<RequestSpec>, PromptError> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (u64::from(index) << 32));
    (0..n as usize)
        .map(|i| {
            let input = w.input_tokens.sample(&mut rng).max(1);
            let output = w.output_tokens.sample(&mut rng).max(1);
            let prompt_seed = rng.random::<u64>();
            if let Some(ds) = w.dataset.as_ref().filter(|d| !d.entries.is_empty()) {
                let entry = &ds.entries[rng.random_range(0..ds.entries.len())];
                let input = match counter {
                    Some(c) => c.count(&entry.prompt).map_err(PromptError)?,
                    None => (entry.prompt.split_whitespace().count() as f64 * tokens_per_word)
                        .ceil() as usize,
                };
                return Ok(RequestSpec {
                    index: i,
                    prompt: entry.prompt.clone(),
                    target_input_tokens: u32::try_from(input.max(1)).unwrap_or(u32::MAX),
                    max_tokens: entry.output_tokens.unwrap_or(output),
                });
            }
            let prompt = prompts::prompt(input, prompt_seed, counter, tokens_per_word)
                .map_err(PromptError)?;
            Ok(RequestSpec {
                index: i,
                prompt,
                target_input_tokens: input,
                max_tokens: output,
            })
        })
        .collect()
}

/// Send the workload's warm-up requests (excluded from every rep). Fails only when every one of
/// them failed, with the errors per kind.
pub fn warm_up(
    rt: &tokio::runtime::Runtime,
    backend: std::sync::Arc<dyn l1_loadgen::Backend>,
    w: &Workload,
    seed: u64,
    counter: Option<&dyn TokenCounter>,
    tokens_per_word: f64,
) -> Result<(), LaunchError> {
    if w.warmup_requests == 0 {
        return Ok(());
    }
    let reqs = rep_requests(
        w,
        seed,
        u32::MAX,
        w.warmup_requests,
        counter,
        tokens_per_word,
    )?;
    let run = l1_loadgen::driver::run(rt, backend, reqs, &load_of(w, seed), timeout_of(w));
    let s = l1_loadgen::summarize(&run, &Slo::default());
    if s.metrics.get("error_rate").copied() == Some(1.0) {
        return Err(LaunchError::WarmUpFailed {
            errors: s.error_text(),
        });
    }
    Ok(())
}

/// Build the one HTTP runtime a launch uses.
pub fn runtime() -> Result<tokio::runtime::Runtime, LaunchError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(LaunchError::Runtime)
}

/// The load generator's arrival for a workload.
pub fn load_of(w: &Workload, seed: u64) -> Load {
    match w.arrival {
        Arrival::Concurrency(n) => Load::Closed { concurrency: n },
        Arrival::Poisson { rate } => Load::Poisson { rate, seed },
    }
}

/// The workload's per-request timeout.
pub fn timeout_of(w: &Workload) -> Duration {
    Duration::from_secs_f64(w.request_timeout_s.clamp(0.001, 86_400.0))
}

/// The workload's SLOs for the load generator.
pub fn slo_of(w: &Workload) -> Slo {
    Slo {
        ttft_ms: w.slo.ttft_ms,
        tpot_ms: w.slo.tpot_ms,
        e2e_ms: w.slo.e2e_ms,
    }
}

/// Turn a rep's summary into metrics, failing the rep when every request failed.
pub fn rep_metrics(s: &l1_loadgen::RepSummary, mem_bytes: u64) -> Result<Metrics, RepError> {
    if s.requests > 0 && s.metrics.get("error_rate").copied() == Some(1.0) {
        return Err(RepError::AllFailed {
            requests: s.requests,
            errors: s.error_text(),
        });
    }
    let mut m: Metrics = s.metrics.clone();
    m.insert(
        "peak_memory_gib".into(),
        mem_bytes as f64 / (1u64 << 30) as f64,
    );
    Ok(m)
}

/// Record what a rep's summary says beyond its metrics: an under-delivered load (once per
/// launch) and failed requests.
pub fn note_rep(notes: &mut Vec<String>, index: u32, s: &l1_loadgen::RepSummary) {
    if let Some(under) = &s.under_delivered
        && !notes.iter().any(|n| n.contains("under-delivered"))
    {
        notes.push(format!("rep {index}: load under-delivered: {under}"));
    }
    if !s.errors.is_empty() {
        notes.push(format!("rep {index}: failed requests: {}", s.error_text()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::profile::{Dataset, DatasetEntry};
    use crate::{Arrival, Dist, Slo};

    fn workload(dataset: Option<Dataset>) -> Workload {
        Workload {
            description: "w".into(),
            input_tokens: Dist::Fixed(12),
            output_tokens: Dist::Fixed(5),
            arrival: Arrival::Concurrency(1),
            requests: 4,
            warmup_requests: 0,
            slo: Slo::default(),
            max_error_rate: 0.0,
            request_timeout_s: 1.0,
            dataset,
            probes: None,
        }
    }

    #[test]
    fn synthetic_requests_hit_the_lengths_and_repeat_per_seed() {
        let w = workload(None);
        let a = rep_requests(&w, 7, 0, 6, None, 1.0).unwrap();
        assert_eq!(a.len(), 6);
        assert!(
            a.iter()
                .all(|r| r.target_input_tokens == 12 && r.max_tokens == 5)
        );
        assert!(a.iter().all(|r| r.prompt.split_whitespace().count() == 12));
        assert_eq!(a, rep_requests(&w, 7, 0, 6, None, 1.0).unwrap());
        assert_ne!(a, rep_requests(&w, 7, 1, 6, None, 1.0).unwrap());
    }

    #[test]
    fn dataset_requests_draw_lines_and_take_their_output_lengths() {
        let entries = vec![
            DatasetEntry {
                prompt: "one two three".into(),
                output_tokens: Some(9),
            },
            DatasetEntry {
                prompt: "four five".into(),
                output_tokens: None,
            },
        ];
        let w = workload(Some(Dataset {
            path: "d.jsonl".into(),
            entries,
        }));
        let reqs = rep_requests(&w, 3, 0, 40, None, 1.5).unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for r in &reqs {
            match r.prompt.as_str() {
                "one two three" => assert_eq!((r.max_tokens, r.target_input_tokens), (9, 5)),
                "four five" => assert_eq!((r.max_tokens, r.target_input_tokens), (5, 3)),
                other => panic!("not from the dataset: {other}"),
            }
            seen.insert(r.prompt.clone());
        }
        assert_eq!(seen.len(), 2, "both lines are drawn over 40 requests");
        assert_eq!(reqs, rep_requests(&w, 3, 0, 40, None, 1.5).unwrap());
    }

    #[test]
    fn dataset_parse_reports_line_and_field() {
        let ok = Dataset::parse("{\"prompt\":\"a\",\"output_tokens\":2}\n").unwrap();
        assert_eq!(ok[0].output_tokens, Some(2));
        let (line, msg) = Dataset::parse("{\"prompt\":\"a\"}\n[1]\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(msg.contains("expected a JSON object"), "{msg}");
        let (line, msg) = Dataset::parse("{\"prompt\":\"  \"}").unwrap_err();
        assert_eq!(line, 1);
        assert!(msg.contains("non-empty"), "{msg}");
    }
}
