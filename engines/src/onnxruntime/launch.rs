//! ONNX Runtime as an l1 engine: a combo becomes [`OrtOptions`], a launch loads the model into
//! a pool of sessions, and the load generator drives them in-process through [`OrtBackend`], so
//! TTFT, inter-token latency, throughput and errors are measured exactly as for server engines.
//!
//! # Mapping of catalog dimensions (CPU execution provider)
//!
//! | dimension / knob | value | ONNX Runtime |
//! |---|---|---|
//! | `fusion_strategy` | `none` | `GraphOptimizationLevel::ORT_DISABLE_ALL` |
//! | | `conservative` | `ORT_ENABLE_BASIC` (constant folding, redundant-node elimination) |
//! | | `aggressive`, `unset` | `ORT_ENABLE_ALL` (ONNX Runtime's default: basic + extended fusions + layout) |
//! | `cuda_graph` | `off`, `unset` | nothing (the CPU EP has no graphs) |
//! | knob `threads` | n | `SetIntraOpNumThreads(n)` |
//! | knob `spinning` | `on`/`off` | `session.intra_op.allow_spinning` `1`/`0` |
//! | knob `slots` | n | n sessions, so n requests decode at once (default: the workload's concurrency, 4 for open loop) |
//!
//! Any other value is refused with the engine, dimension, value and what is accepted; there is
//! no silent fallback. `cuda_graph: per-shape` (the CUDA EP's `enable_cuda_graph`) and GPU
//! hardware need the CUDA/TensorRT execution providers, which this build does not drive; the
//! catalog's `cuda-graph-requires-gpu` rule prunes the former on CPU before it gets here. ONNX
//! Runtime computes in the dtype the model was exported in (reduced precision is a TensorRT EP
//! option), so the catalog does not list `activation_dtype` for it.
//!
//! # Prompts and tokens
//!
//! The model takes token ids and ONNX Runtime has no tokenizer: prompts are turned into ids by
//! [`prompt_ids`], a word-level hash into the model's vocabulary, padded or cut to the request's
//! exact input length. Output tokens are what the driver decoded (exact: greedy, no stop token).
//!
//! # Concurrency
//!
//! A session decodes one request at a time; the pool holds `slots` sessions (like llama.cpp's
//! `-np` slots). Requests beyond that wait for a free session, and the wait counts in their TTFT.
//! A request that times out keeps its session until the decode ends, so the pool never shrinks.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use l1_loadgen::{
    Backend, BoxFuture, ErrorKind, RequestError, RequestSpec, Streamed, driver, summarize,
};

use super::{OptLevel, OrtError, OrtLm, OrtOptions};
use crate::combo::UNSET;
use crate::engine::{Deployment, Engine, EngineKind, version_matches};
use crate::error::{EngineError, LaunchError, LookedIn, RepError};
use crate::launch::{
    Launch, LaunchTarget, load_of, rep_metrics, rep_requests, runtime, slo_of, timeout_of, warm_up,
};
use crate::translate::{TranslateError, unsupported};
use crate::{Arrival, Combo, DeviceKind, Metrics, Workload};

const ENGINE: &str = "onnxruntime";
/// The shared library that is ONNX Runtime.
const LIBRARY: &str = "libonnxruntime.so";

/// Session options and pool size for `combo`.
pub fn translate(
    combo: &Combo,
    workload: &Workload,
) -> Result<(OrtOptions, usize), TranslateError> {
    let mut opts = OrtOptions {
        opt_level: match combo.dim("fusion_strategy") {
            "none" => OptLevel::Disable,
            "conservative" => OptLevel::Basic,
            "aggressive" | UNSET => OptLevel::All,
            other => {
                return Err(unsupported(
                    ENGINE,
                    "fusion_strategy",
                    other,
                    &["none", "conservative", "aggressive", "unset"],
                ));
            }
        },
        ..OrtOptions::default()
    };
    match combo.dim("cuda_graph") {
        "off" | UNSET => {}
        other => {
            return Err(
                unsupported(ENGINE, "cuda_graph", other, &["off", "unset"]).because(
                    "(CUDA graphs need the CUDA execution provider, which this build does not drive)",
                ),
            );
        }
    }
    for (dim, value) in &combo.dims {
        if !matches!(dim.as_str(), "fusion_strategy" | "cuda_graph") && value != UNSET {
            return Err(unsupported(ENGINE, dim, value, &["unset"]));
        }
    }
    let mut slots = match workload.arrival {
        Arrival::Concurrency(n) => n.max(1) as usize,
        Arrival::Poisson { .. } => 4,
    };
    for (knob, value) in &combo.knobs {
        let number = || {
            value
                .parse::<usize>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| TranslateError::BadKnob {
                    engine: None,
                    knob: knob.clone(),
                    value: value.clone(),
                    expected: "a positive integer".into(),
                })
        };
        match knob.as_str() {
            "threads" => opts.intra_threads = number()?,
            "slots" => slots = number()?,
            "spinning" => {
                opts.intra_spinning = match value.as_str() {
                    "on" => true,
                    "off" => false,
                    other => {
                        return Err(unsupported(ENGINE, "knob spinning", other, &["on", "off"]));
                    }
                }
            }
            other => {
                return Err(unsupported(
                    ENGINE,
                    "knob",
                    other,
                    &["threads", "spinning", "slots"],
                ));
            }
        }
    }
    Ok((opts, slots))
}

/// Token ids for `prompt`: each whitespace-separated word hashed (FNV-1a) into `0..vocab`,
/// repeated or cut to exactly `len` ids (at least one).
pub fn prompt_ids(prompt: &str, len: u32, vocab: usize) -> Vec<i64> {
    let words: Vec<i64> = prompt
        .split_whitespace()
        .map(|w| {
            let h = w.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            (h % vocab.max(1) as u64) as i64
        })
        .collect();
    let words = if words.is_empty() { vec![0] } else { words };
    words
        .iter()
        .copied()
        .cycle()
        .take(len.max(1) as usize)
        .collect()
}

/// The in-process backend: a pool of sessions behind the load generator's [`Backend`].
#[derive(Debug)]
pub struct OrtBackend {
    pool: Arc<Mutex<Vec<OrtLm>>>,
    permits: Arc<tokio::sync::Semaphore>,
    vocab: usize,
}

impl OrtBackend {
    /// A backend over `sessions` (at least one).
    pub fn new(sessions: Vec<OrtLm>) -> Self {
        let vocab = sessions.first().map_or(1, OrtLm::vocab_size);
        Self {
            permits: Arc::new(tokio::sync::Semaphore::new(sessions.len())),
            pool: Arc::new(Mutex::new(sessions)),
            vocab,
        }
    }
}

impl Backend for OrtBackend {
    fn send<'a>(&'a self, req: &'a RequestSpec) -> BoxFuture<'a, Result<Streamed, RequestError>> {
        Box::pin(async move {
            let t0 = Instant::now();
            let ids = prompt_ids(&req.prompt, req.target_input_tokens, self.vocab);
            let n_in = ids.len() as u32;
            let engine_err = |m: String| RequestError::new(ErrorKind::Engine, m);
            let permit = self
                .permits
                .clone()
                .acquire_owned()
                .await
                .map_err(|e| engine_err(format!("the session pool is closed: {e}")))?;
            let pool = self.pool.clone();
            let max_new = req.max_tokens as usize;
            // The session and the permit go back when the decode ends, even if this request
            // timed out and its future was dropped meanwhile.
            let job = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let Some(mut lm) = pool.lock().unwrap_or_else(|e| e.into_inner()).pop() else {
                    return Err("no free session (the pool lost one to a panic)".to_string());
                };
                let mut times = Vec::with_capacity(max_new);
                let result = lm.generate(&ids, max_new, &mut |_, _, _| times.push(t0.elapsed()));
                pool.lock().unwrap_or_else(|e| e.into_inner()).push(lm);
                result.map(|g| (g, times)).map_err(|e| e.to_string())
            });
            let (generation, times) = job
                .await
                .map_err(|e| engine_err(format!("the decoding thread failed: {e}")))?
                .map_err(engine_err)?;
            Ok(Streamed {
                chunk_times: times,
                end: t0.elapsed(),
                usage_input_tokens: Some(n_in),
                usage_output_tokens: Some(generation.tokens.len() as u32),
                text: generation
                    .tokens
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                logprobs: generation.logprobs,
            })
        })
    }
}

/// A started in-process ONNX Runtime engine.
#[derive(Debug)]
pub struct OrtLaunch {
    rt: tokio::runtime::Runtime,
    backend: Arc<OrtBackend>,
    workload: Workload,
    seed: u64,
    notes: Vec<String>,
    engine_version: String,
}

impl OrtLaunch {
    /// Load the library (once per process) and `slots` sessions of the target's model, check
    /// the version, and send the warm-up requests.
    pub fn start(target: &LaunchTarget<'_>) -> Result<Self, LaunchError> {
        if target.hardware.device != DeviceKind::Cpu {
            return Err(LaunchError::Unsupported {
                engine: ENGINE.into(),
                reason: format!(
                    "this build drives the CPU execution provider only; hardware `{}` needs the CUDA or TensorRT provider",
                    target.hardware.display_name
                ),
            });
        }
        let (opts, slots) = translate(target.combo, target.workload)?;
        let library = super::library_from_env(target.engines_dir);
        let installed = super::library_version(&library).map_err(EngineError::Library)?;
        if !version_matches(target.version, &installed) {
            return Err(LaunchError::VersionMismatch {
                engine: ENGINE.into(),
                installed,
                wanted: target.version.to_string(),
                program: library,
            });
        }
        super::init(&library)?;
        let model = target.model_file("onnx")?;
        let t0 = Instant::now();
        let sessions = (0..slots)
            .map(|_| OrtLm::load(&model, &opts))
            .collect::<Result<Vec<_>, _>>()?;
        let loaded = t0.elapsed();
        let mut launch = Self {
            notes: vec![
                format!("engine version: {installed} ({})", library.display()),
                format!(
                    "session options: graph optimization {}, intra-op threads {}, spinning {}, {slots} session(s), KV cache {}",
                    opts.opt_level,
                    if opts.intra_threads == 0 {
                        "default".to_string()
                    } else {
                        opts.intra_threads.to_string()
                    },
                    if opts.intra_spinning { "on" } else { "off" },
                    if sessions[0].uses_kv_cache() {
                        "on"
                    } else {
                        "off"
                    },
                ),
                format!("model: {}", model.display()),
                format!("ready after {:.2} s", loaded.as_secs_f64()),
            ],
            rt: runtime()?,
            backend: Arc::new(OrtBackend::new(sessions)),
            workload: target.workload.clone(),
            seed: target.seed,
            engine_version: installed,
        };
        warm_up(
            &launch.rt,
            launch.backend.clone(),
            &launch.workload,
            launch.seed,
            None,
            1.0,
        )?;
        launch
            .notes
            .push("in-process: peak_memory_gib is the harness process's peak RSS".into());
        let (_, workdir) = target.log_and_workdir();
        match kernel_breakdown(&model, &opts, &launch.workload, launch.seed, &workdir) {
            Ok(note) => launch.notes.push(note),
            Err(e) => launch
                .notes
                .push(format!("kernel-time breakdown unavailable: {e}")),
        }
        Ok(launch)
    }
}

impl OrtLaunch {
    /// Greedy answers with top-k from one session of the pool (taken while no rep runs).
    fn answer_probes(&self, set: &crate::probe::ProbeSet) -> crate::probe::ProbeRun {
        use crate::probe::{ProbeAnswer, ProbeFailure, ProbeRun, Step};
        const PROTOCOL: &str = "ONNX Runtime in-process greedy decode (log-softmax of the logits)";
        let t0 = Instant::now();
        let Some(mut lm) = self
            .backend
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
        else {
            return ProbeRun::unsupported(set, PROTOCOL, "no free session in the pool");
        };
        let answers = set
            .prompts
            .iter()
            .enumerate()
            .map(|(i, prompt)| {
                // The word hash gives one id per word (see `prompt_ids`).
                let n = prompt.split_whitespace().count().max(1) as u32;
                let ids = prompt_ids(prompt, n, lm.vocab_size());
                match lm.generate_top(
                    &ids,
                    set.max_tokens as usize,
                    set.top_k as usize,
                    &mut |_, _, _| {},
                ) {
                    Ok((g, tops)) => ProbeAnswer {
                        index: i,
                        prompt_tokens: Some(n),
                        steps: g
                            .tokens
                            .iter()
                            .zip(&g.logprobs)
                            .enumerate()
                            .map(|(k, (t, lp))| Step {
                                token: format!("id:{t}"),
                                logprob: Some(f64::from(*lp)),
                                top: tops
                                    .get(k)
                                    .map(|v| {
                                        v.iter()
                                            .map(|(id, l)| (format!("id:{id}"), f64::from(*l)))
                                            .collect()
                                    })
                                    .unwrap_or_default(),
                            })
                            .collect(),
                        finish_reason: Some("length".into()),
                        failure: None,
                        error: None,
                    },
                    Err(e) => {
                        let kind = if matches!(&e, OrtError::Input(m) if m.contains("positions")) {
                            ProbeFailure::ContextExceeded
                        } else {
                            ProbeFailure::Engine
                        };
                        ProbeAnswer {
                            index: i,
                            prompt_tokens: Some(n),
                            steps: Vec::new(),
                            finish_reason: None,
                            failure: Some(kind),
                            error: Some(e.to_string()),
                        }
                    }
                }
            })
            .collect();
        self.backend
            .pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(lm);
        let mut run = ProbeRun::from_answers(set, PROTOCOL, answers);
        run.duration_s = t0.elapsed().as_secs_f64();
        run
    }
}

/// Why the kernel-time breakdown is unavailable (the launch notes it and goes on).
#[derive(Debug, thiserror::Error)]
pub enum BreakdownError {
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Ort(#[from] OrtError),
    #[error(transparent)]
    Prompts(#[from] crate::error::PromptError),
    #[error("not a profiler trace: {0}")]
    NotATrace(#[source] serde_json::Error),
    #[error("the trace has no kernel events")]
    NoKernelEvents,
}

/// Kernel time per operator type from ONNX Runtime's profiler: a separate profiling session
/// (same options) decodes two of the workload's requests before the reps, so profiling never
/// slows a measured run. Returns the note, e.g. `kernel time (ONNX Runtime profiler, ...):
/// MatMul 48.1 %, ...`, with the trace's path.
fn kernel_breakdown(
    model: &std::path::Path,
    opts: &OrtOptions,
    w: &Workload,
    seed: u64,
    workdir: &std::path::Path,
) -> Result<String, BreakdownError> {
    let io = |path: &std::path::Path| {
        let path = path.to_path_buf();
        move |source| BreakdownError::Io { path, source }
    };
    std::fs::create_dir_all(workdir).map_err(io(workdir))?;
    let profiled = OrtOptions {
        profile_prefix: Some(workdir.join("ort-profile")),
        ..opts.clone()
    };
    let mut lm = OrtLm::load(model, &profiled)?;
    for r in rep_requests(w, seed, u32::MAX - 1, 2, None, 1.0)? {
        let ids = prompt_ids(&r.prompt, r.target_input_tokens, lm.vocab_size());
        lm.generate(&ids, r.max_tokens as usize, &mut |_, _, _| {})?;
    }
    let trace = lm.end_profiling()?;
    let trace = if trace.is_absolute() {
        trace
    } else {
        workdir.join(trace.file_name().unwrap_or_default())
    };
    let text = std::fs::read_to_string(&trace)
        .or_else(|_| std::fs::read_to_string(trace.file_name().unwrap_or_default()))
        .map_err(io(&trace))?;
    let shares = op_shares(&text)?;
    let top: Vec<String> = shares
        .iter()
        .take(6)
        .map(|(op, share)| format!("{op} {:.1} %", share * 100.0))
        .collect();
    Ok(format!(
        "kernel time (ONNX Runtime profiler, 2 requests outside the reps): {} ({})",
        top.join(", "),
        trace.display()
    ))
}

/// Shares of kernel time per operator type in an ONNX Runtime profile (Chrome trace JSON:
/// `Node` events named `<node>_kernel_time` with `args.op_name`), largest first.
pub fn op_shares(trace_json: &str) -> Result<Vec<(String, f64)>, BreakdownError> {
    let events: Vec<serde_json::Value> =
        serde_json::from_str(trace_json).map_err(BreakdownError::NotATrace)?;
    let mut per_op: std::collections::BTreeMap<String, f64> = Default::default();
    for e in &events {
        let is_kernel = e.get("cat").and_then(|c| c.as_str()) == Some("Node")
            && e.get("name")
                .and_then(|n| n.as_str())
                .is_some_and(|n| n.ends_with("_kernel_time"));
        if !is_kernel {
            continue;
        }
        let op = e
            .pointer("/args/op_name")
            .and_then(|o| o.as_str())
            .unwrap_or("?");
        let dur = e
            .get("dur")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0);
        *per_op.entry(op.to_string()).or_default() += dur;
    }
    let total: f64 = per_op.values().sum();
    if total <= 0.0 {
        return Err(BreakdownError::NoKernelEvents);
    }
    let mut out: Vec<(String, f64)> = per_op.into_iter().map(|(k, v)| (k, v / total)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(out)
}

impl Launch for OrtLaunch {
    fn rep(&mut self, index: u32) -> Result<Metrics, RepError> {
        let reqs = rep_requests(
            &self.workload,
            self.seed,
            index,
            self.workload.requests,
            None,
            1.0,
        )?;
        let run = driver::run(
            &self.rt,
            self.backend.clone(),
            reqs,
            &load_of(&self.workload, self.seed ^ u64::from(index)),
            timeout_of(&self.workload),
        );
        let s = summarize(&run, &slo_of(&self.workload));
        let m = rep_metrics(&s, crate::process::own_peak_rss_bytes())?;
        crate::launch::note_rep(&mut self.notes, index, &s);
        Ok(m)
    }

    fn probe(&mut self, set: &crate::probe::ProbeSet) -> crate::probe::ProbeRun {
        self.answer_probes(set)
    }

    fn engine_version(&self) -> Option<&str> {
        Some(&self.engine_version)
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}

/// ONNX Runtime's row in the engine table: a library driven in-process.
#[derive(Clone, Copy, Debug)]
pub struct OnnxRuntime;

impl Engine for OnnxRuntime {
    fn name(&self) -> &'static str {
        ENGINE
    }

    fn kind(&self) -> EngineKind {
        EngineKind::InProcess { library: LIBRARY }
    }

    fn availability(&self, engines_dir: &std::path::Path) -> Result<(), EngineError> {
        let path = super::library_from_env(engines_dir);
        if !path.exists() {
            return Err(EngineError::NotInstalled {
                engine: ENGINE.into(),
                program: LIBRARY.into(),
                looked_in: LookedIn::At(path),
                hint: "see scripts/setup-engines.sh, or set ORT_DYLIB_PATH".into(),
            });
        }
        Ok(())
    }

    fn installed_program(
        &self,
        engines_dir: &std::path::Path,
    ) -> Result<std::path::PathBuf, EngineError> {
        Ok(super::library_from_env(engines_dir))
    }

    fn installed_version(&self, engines_dir: &std::path::Path) -> Result<String, EngineError> {
        Ok(super::library_version(&super::library_from_env(
            engines_dir,
        ))?)
    }

    /// Those of its execution-provider options.
    fn supported_versions(&self) -> Option<&'static [crate::version::VersionRange]> {
        Some(super::providers::SUPPORTED)
    }

    fn start(&self, target: &LaunchTarget<'_>) -> Result<Box<dyn Launch>, LaunchError> {
        Ok(Box::new(OrtLaunch::start(target)?))
    }

    /// The session options an application applies when it loads the model.
    fn deployment(&self, target: &LaunchTarget<'_>, _port: u16) -> Result<Deployment, LaunchError> {
        let (opts, slots) = translate(target.combo, target.workload)?;
        Ok(Deployment {
            command: None,
            settings: serde_json::json!({
                "session_options": format!("{opts:?}"),
                "sessions": slots,
            }),
            notes: vec![
                "ONNX Runtime runs in-process: apply these session options in the application that loads the model".into(),
            ],
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Dist;
    use crate::testing::combo;

    fn workload(arrival: Arrival) -> Workload {
        Workload {
            description: "w".into(),
            input_tokens: Dist::Fixed(8),
            output_tokens: Dist::Fixed(4),
            arrival,
            requests: 4,
            warmup_requests: 0,
            slo: crate::Slo::default(),
            max_error_rate: 0.0,
            request_timeout_s: 10.0,
            dataset: None,
            probes: None,
        }
    }

    #[test]
    fn fusion_strategy_maps_to_optimization_levels() {
        let w = workload(Arrival::Concurrency(2));
        for (value, level) in [
            ("none", OptLevel::Disable),
            ("conservative", OptLevel::Basic),
            ("aggressive", OptLevel::All),
            ("unset", OptLevel::All),
        ] {
            let (o, slots) = translate(
                &combo(&[("fusion_strategy", value), ("cuda_graph", "off")], &[]),
                &w,
            )
            .unwrap();
            assert_eq!(o.opt_level, level, "{value}");
            assert_eq!(slots, 2);
        }
    }

    #[test]
    fn knobs_set_threads_spinning_and_slots() {
        let w = workload(Arrival::Poisson { rate: 1.0 });
        let (o, slots) = translate(
            &combo(
                &[],
                &[("threads", "1"), ("spinning", "off"), ("slots", "3")],
            ),
            &w,
        )
        .unwrap();
        assert_eq!((o.intra_threads, o.intra_spinning, slots), (1, false, 3));
        let (_, slots) = translate(&combo(&[], &[]), &w).unwrap();
        assert_eq!(slots, 4, "open loop defaults to 4 sessions");
    }

    #[test]
    fn unexpressible_values_are_refused_with_the_reason() {
        let w = workload(Arrival::Concurrency(1));
        let e = translate(&combo(&[("cuda_graph", "per-shape")], &[]), &w)
            .unwrap_err()
            .to_string();
        assert!(e.contains("onnxruntime") && e.contains("cuda_graph") && e.contains("per-shape"));
        assert!(e.contains("CUDA execution provider"), "{e}");
        let e = translate(&combo(&[("activation_dtype", "fp16")], &[]), &w)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("activation_dtype = `fp16`") && e.contains("accepted: unset"),
            "{e}"
        );
        let e = translate(&combo(&[("fusion_strategy", "max")], &[]), &w)
            .unwrap_err()
            .to_string();
        assert!(e.contains("none, conservative, aggressive"), "{e}");
        let e = translate(&combo(&[], &[("threads", "0")]), &w)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("knob threads: expected a positive integer"),
            "{e}"
        );
        let e = translate(&combo(&[], &[("spinning", "maybe")]), &w)
            .unwrap_err()
            .to_string();
        assert!(e.contains("on, off"), "{e}");
        let e = translate(&combo(&[], &[("batch", "2")]), &w)
            .unwrap_err()
            .to_string();
        assert!(e.contains("knob = `batch`"), "{e}");
    }

    #[test]
    fn kernel_shares_come_from_node_kernel_events() {
        let trace = r#"[
          {"cat":"Session","name":"model_run","dur":1000},
          {"cat":"Node","name":"a_kernel_time","dur":30,"args":{"op_name":"MatMul"}},
          {"cat":"Node","name":"a_fence_before","dur":99,"args":{"op_name":"MatMul"}},
          {"cat":"Node","name":"b_kernel_time","dur":10,"args":{"op_name":"Add"}},
          {"cat":"Node","name":"c_kernel_time","dur":60,"args":{"op_name":"MatMul"}}
        ]"#;
        let s = op_shares(trace).unwrap();
        assert_eq!(s[0].0, "MatMul");
        assert!((s[0].1 - 0.9).abs() < 1e-9 && (s[1].1 - 0.1).abs() < 1e-9);
        assert!(matches!(
            op_shares("[]").unwrap_err(),
            BreakdownError::NoKernelEvents
        ));
        assert!(op_shares("{").is_err());
    }

    #[test]
    fn prompt_ids_have_the_exact_length_and_stay_in_the_vocabulary() {
        let ids = prompt_ids("the quick brown fox", 10, 512);
        assert_eq!(ids.len(), 10);
        assert!(ids.iter().all(|&i| (0..512).contains(&i)));
        assert_eq!(ids[0], ids[4], "words repeat to fill the length");
        assert_eq!(prompt_ids("a b c", 2, 512).len(), 2);
        assert_eq!(prompt_ids("", 3, 512), vec![0, 0, 0]);
        assert_eq!(
            prompt_ids("same words", 4, 512),
            prompt_ids("same words", 4, 512)
        );
    }
}
