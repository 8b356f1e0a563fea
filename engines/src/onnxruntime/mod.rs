//! ONNX Runtime, in-process: a greedy-decoding driver for decoder-only language models exported
//! to ONNX, on ONNX Runtime's C library loaded at run time.
//!
//! # The library
//!
//! The `ort` crate (2.0.0-rc.15, feature `load-dynamic`) links no ONNX Runtime at build time; the
//! C library is `dlopen`ed by [`init`]. `scripts/setup-engines.sh onnxruntime` installs the PyPI
//! wheel `onnxruntime` into `<engines>/venv-ort` and links its
//! `onnxruntime/capi/libonnxruntime.so.1.*` as `<engines>/lib/libonnxruntime.so`
//! ([`default_library`]). `ort` rc.15 needs ONNX Runtime 1.31 or newer.
//!
//! A process can load the library **once**, and ONNX Runtime allows one environment per
//! process: [`init`] loads it and builds the environment the first time and is a no-op when
//! called again with the same file (from any thread); a different file afterwards is an error
//! ([`OrtError::LibraryConflict`]).
//!
//! # The model
//!
//! [`OrtLm::load`] accepts a decoder-only LM with
//! - input `input_ids`: int64 `[batch, seq]` (the driver uses batch 1);
//! - output `logits`: float32 `[batch, seq, vocab]` (or `[batch, vocab]`, the last position);
//! - optionally a KV cache in the Hugging Face Optimum naming: inputs
//!   `past_key_values.{i}.key|value` float32 `[batch, heads, past_seq, head_dim]` (static heads
//!   and head_dim) and outputs `present.{i}.key|value` `[batch, heads, past_seq + seq, head_dim]`.
//!   The positions of `input_ids` are then `past_seq..past_seq + seq`: the model derives
//!   positions and the causal mask from the shapes (no `attention_mask`/`position_ids` inputs).
//!
//! `scripts/engines/make_tiny_onnx_lm.py` builds such a model with random weights
//! (`<engines>/models/tiny-llama.onnx`, [`default_model`]): vocab 512, hidden 256, 2 layers,
//! 4 heads, with a KV cache, and with RMSNorm/SiLU/attention written out as primitive ops so
//! that the optimization levels change the executed graph (109 nodes at `disable`, 107 at
//! `basic`, 76 at `extended`/`all`: SimplifiedLayerNormalization, QuickGelu, FusedMatMul).
//!
//! # Decoding
//!
//! [`OrtLm::generate`] decodes greedily (argmax, ties to the lowest id) and reports each token
//! through a callback right after it is chosen, so the caller can timestamp TTFT and inter-token
//! latencies. With a KV cache ([`OrtOptions::kv_cache`], the default, and a model that has one)
//! the first run takes the whole prompt with empty past tensors and each later run one token;
//! without (the option off, or a model without past inputs) every step re-runs the whole
//! sequence, which is quadratic but needs nothing from the model but `input_ids -> logits`.
//!
//! # Mapping of options to ONNX Runtime
//!
//! | [`OrtOptions`] | ONNX Runtime session option |
//! |---|---|
//! | `opt_level` `disable\|basic\|extended\|all` | `GraphOptimizationLevel` `ORT_DISABLE_ALL\|ORT_ENABLE_BASIC\|ORT_ENABLE_EXTENDED\|ORT_ENABLE_ALL` |
//! | `intra_threads` (0 = ORT's default, one per core) | `SetIntraOpNumThreads` |
//! | `inter_threads` (0 = default) | `SetInterOpNumThreads` (only used with `parallel_execution`) |
//! | `parallel_execution` | `ExecutionMode` `ORT_PARALLEL` / `ORT_SEQUENTIAL` |
//! | `intra_spinning` | `session.intra_op.allow_spinning` |
//!
//! Only the CPU execution provider is used.

pub mod launch;
pub mod providers;

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorElementType, ValueType};

/// The model input holding the token ids.
pub const INPUT_IDS: &str = "input_ids";
/// The model output holding the logits.
pub const LOGITS: &str = "logits";
const PAST_PREFIX: &str = "past_key_values.";
const PRESENT_PREFIX: &str = "present.";

pub use crate::error::OrtError;

// ---------------------------------------------------------------------------------------------
// Options

/// ONNX Runtime's graph optimization level (`GraphOptimizationLevel`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OptLevel {
    /// `ORT_DISABLE_ALL`: the graph runs as written.
    Disable,
    /// `ORT_ENABLE_BASIC`: constant folding, redundant node elimination.
    Basic,
    /// `ORT_ENABLE_EXTENDED`: also complex fusions (layer norm, GELU/QuickGelu, FusedMatMul, attention).
    Extended,
    /// `ORT_ENABLE_ALL`: also layout optimizations (ONNX Runtime's default).
    #[default]
    All,
}

impl OptLevel {
    /// Every level, from least to most optimized.
    pub const ALL: [OptLevel; 4] = [
        OptLevel::Disable,
        OptLevel::Basic,
        OptLevel::Extended,
        OptLevel::All,
    ];

    /// The name [`FromStr`] accepts: `disable`, `basic`, `extended` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            OptLevel::Disable => "disable",
            OptLevel::Basic => "basic",
            OptLevel::Extended => "extended",
            OptLevel::All => "all",
        }
    }

    fn to_ort(self) -> GraphOptimizationLevel {
        match self {
            OptLevel::Disable => GraphOptimizationLevel::Disable,
            OptLevel::Basic => GraphOptimizationLevel::Level1,
            OptLevel::Extended => GraphOptimizationLevel::Level2,
            OptLevel::All => GraphOptimizationLevel::All,
        }
    }
}

impl fmt::Display for OptLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OptLevel {
    type Err = OrtError;

    fn from_str(s: &str) -> Result<Self, OrtError> {
        let t = s.trim().to_ascii_lowercase();
        OptLevel::ALL
            .into_iter()
            .find(|l| l.as_str() == t)
            .ok_or_else(|| {
                let valid: Vec<&str> = OptLevel::ALL.iter().map(|l| l.as_str()).collect();
                OrtError::Options(format!(
                    "unknown optimization level `{s}` (valid: {})",
                    valid.join(", ")
                ))
            })
    }
}

/// Session options (see the module docs for the mapping to ONNX Runtime).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrtOptions {
    pub opt_level: OptLevel,
    /// Threads within an operator; 0 lets ONNX Runtime choose (one per physical core).
    pub intra_threads: usize,
    /// Threads across independent operators with `parallel_execution`; 0 lets ONNX Runtime choose.
    pub inter_threads: usize,
    /// `ORT_PARALLEL` execution mode instead of `ORT_SEQUENTIAL`.
    pub parallel_execution: bool,
    /// Whether idle intra-op threads spin before sleeping (ONNX Runtime's default: yes).
    pub intra_spinning: bool,
    /// Use the model's KV cache when it has one; off re-runs the whole sequence every step.
    pub kv_cache: bool,
    /// Write ONNX Runtime's profiler trace (per-node kernel times) with this file prefix;
    /// [`OrtLm::end_profiling`] closes it. Profiling slows every run: never on a measured session.
    pub profile_prefix: Option<PathBuf>,
}

impl Default for OrtOptions {
    /// ONNX Runtime's defaults: all optimizations, default thread counts, sequential, spinning,
    /// and the KV cache where the model has one.
    fn default() -> Self {
        OrtOptions {
            opt_level: OptLevel::All,
            intra_threads: 0,
            inter_threads: 0,
            parallel_execution: false,
            intra_spinning: true,
            kv_cache: true,
            profile_prefix: None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The library

struct Runtime {
    /// The library as given to the first successful load, and its canonical path.
    library: PathBuf,
    canonical: PathBuf,
    env: Option<Environment>,
}

static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

/// `<engines>/lib/libonnxruntime.so`, where `scripts/setup-engines.sh` links the wheel's library.
pub fn default_library(engines_dir: &Path) -> PathBuf {
    engines_dir.join("lib").join("libonnxruntime.so")
}

/// `<engines>/models/tiny-llama.onnx`, the test model `make_tiny_onnx_lm.py` writes.
pub fn default_model(engines_dir: &Path) -> PathBuf {
    engines_dir.join("models").join("tiny-llama.onnx")
}

/// The library to use: `ORT_DYLIB_PATH` when set and non-empty, else [`default_library`].
pub fn library_from_env(engines_dir: &Path) -> PathBuf {
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => default_library(engines_dir),
    }
}

/// The path with symlinks resolved (the wheel's versioned file), else made absolute: `ort`
/// would look for a relative path beside the executable first.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// `ort`'s load error with the system's reason (`dlerror`), which its message leaves out.
fn load_error_message(e: &ort::LoadDynamicError) -> String {
    match e {
        ort::LoadDynamicError::Dlopen { error, .. } => {
            let mut message = error.to_string();
            let mut source = std::error::Error::source(error);
            while let Some(s) = source {
                message.push_str(": ");
                message.push_str(&s.to_string());
                source = s.source();
            }
            message
        }
        other => other.to_string(),
    }
}

/// Loads ONNX Runtime's C library from `library` and creates the process's environment.
///
/// Idempotent: later calls with the same file (also through another path or symlink) return
/// `Ok` at once, from any thread. A different file once one is loaded gives
/// [`OrtError::LibraryConflict`].
pub fn init(library: &Path) -> Result<(), OrtError> {
    if !library.exists() {
        return Err(OrtError::LibraryMissing {
            path: library.to_path_buf(),
        });
    }
    let canon = canonical(library);
    let mut guard = RUNTIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(rt) = guard.as_mut() {
        if rt.canonical != canon {
            return Err(OrtError::LibraryConflict {
                requested: library.to_path_buf(),
                loaded: rt.library.clone(),
            });
        }
        if rt.env.is_some() {
            return Ok(());
        }
    }
    let builder = ort::init_from(&canon).map_err(|e| OrtError::LibraryLoad {
        path: library.to_path_buf(),
        message: load_error_message(&e),
    })?;
    // The library is loaded for good now, whatever happens to the environment.
    let rt = guard.get_or_insert_with(|| Runtime {
        library: library.to_path_buf(),
        canonical: canon,
        env: None,
    });
    let env = builder
        .with_name("l1")
        .with_telemetry(false)
        .build()
        .map_err(|e| OrtError::LibraryLoad {
            path: library.to_path_buf(),
            message: format!("creating the environment: {e}"),
        })?;
    rt.env = Some(env);
    Ok(())
}

fn environment() -> Result<Environment, OrtError> {
    let guard = RUNTIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    guard
        .as_ref()
        .and_then(|rt| rt.env.clone())
        .ok_or(OrtError::NotInitialized)
}

/// The library loaded by [`init`] in this process, if any.
pub fn loaded_library() -> Option<PathBuf> {
    let guard = RUNTIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    guard
        .as_ref()
        .filter(|rt| rt.env.is_some())
        .map(|rt| rt.library.clone())
}

/// The ONNX Runtime version of `library`, e.g. `"1.32.0"`, without loading it.
///
/// ONNX Runtime's build-info string carries no version, so it is read from the file name the
/// path resolves to (`libonnxruntime.so.1.32.0`, `libonnxruntime.1.32.0.dylib`), else from the
/// wheel's `build_and_package_info.py` beside the library (`__version__ = '1.32.0'`).
pub fn library_version(library: &Path) -> Result<String, OrtError> {
    if !library.exists() {
        return Err(OrtError::LibraryMissing {
            path: library.to_path_buf(),
        });
    }
    let canon = canonical(library);
    let name = canon
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(v) = version_in_file_name(&name) {
        return Ok(v);
    }
    for dir in [canon.parent(), library.parent()].into_iter().flatten() {
        if let Ok(text) = std::fs::read_to_string(dir.join("build_and_package_info.py"))
            && let Some(v) = version_in_package_info(&text)
        {
            return Ok(v);
        }
    }
    Err(OrtError::VersionUnknown {
        path: library.to_path_buf(),
        reason: format!(
            "the file name `{name}` has no version and there is no build_and_package_info.py beside it"
        ),
    })
}

/// The first run of dot-separated numbers with at least two parts: `libonnxruntime.so.1.32.0`
/// → `1.32.0`.
fn version_in_file_name(name: &str) -> Option<String> {
    let parts: Vec<&str> = name.split('.').collect();
    let mut i = 0;
    while i < parts.len() {
        let numeric = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if numeric(parts[i]) {
            let start = i;
            while i < parts.len() && numeric(parts[i]) {
                i += 1;
            }
            if i - start >= 2 {
                return Some(parts[start..i].join("."));
            }
        }
        i += 1;
    }
    None
}

fn version_in_package_info(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line
            .trim()
            .strip_prefix("__version__")?
            .trim_start()
            .strip_prefix('=')?
            .trim();
        let v = rest.trim_matches(|c| c == '\'' || c == '"');
        (!v.is_empty()).then(|| v.to_string())
    })
}

// ---------------------------------------------------------------------------------------------
// The model

/// What [`OrtLm::generate`] returns: the generated ids and the log-probability (log-softmax) of
/// each under the model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Generation {
    pub tokens: Vec<i64>,
    pub logprobs: Vec<f32>,
}

/// The top-k (token id, log-softmax) at one position, best first.
pub type TopK = Vec<(i64, f32)>;

#[derive(Debug)]
struct KvCache {
    /// (past input name, present output name), in the model's input order.
    pairs: Vec<(String, String)>,
    heads: usize,
    head_dim: usize,
}

/// One ONNX Runtime session of a decoder LM. `Send`: it can move to a worker thread.
#[derive(Debug)]
pub struct OrtLm {
    session: Session,
    path: PathBuf,
    options: OrtOptions,
    vocab: usize,
    kv: Option<KvCache>,
    max_positions: Option<usize>,
}

fn tensor_shape(ty: &ValueType) -> Option<(TensorElementType, Vec<i64>)> {
    match ty {
        ValueType::Tensor { ty, shape, .. } => Some((*ty, shape.to_vec())),
        _ => None,
    }
}

impl OrtLm {
    /// Creates a session for the model at `model` (needs [`init`] first).
    pub fn load(model: &Path, opts: &OrtOptions) -> Result<Self, OrtError> {
        if !model.is_file() {
            return Err(OrtError::ModelMissing {
                path: model.to_path_buf(),
            });
        }
        let env = environment()?;
        let opt = |what: &str, e: &dyn fmt::Display| OrtError::Options(format!("{what}: {e}"));
        let mut builder = Session::builder(&env)
            .map_err(|e| opt("creating session options", &e))?
            .with_optimization_level(opts.opt_level.to_ort())
            .map_err(|e| opt("optimization level", &e))?
            .with_intra_threads(opts.intra_threads)
            .map_err(|e| opt("intra-op threads", &e))?
            .with_inter_threads(opts.inter_threads)
            .map_err(|e| opt("inter-op threads", &e))?
            .with_parallel_execution(opts.parallel_execution)
            .map_err(|e| opt("execution mode", &e))?
            .with_intra_op_spinning(opts.intra_spinning)
            .map_err(|e| opt("intra-op spinning", &e))?;
        if let Some(prefix) = &opts.profile_prefix {
            builder = builder
                .with_profiling(prefix)
                .map_err(|e| opt("profiling", &e))?;
        }
        let session = builder
            .commit_from_file(model)
            .map_err(|e| OrtError::ModelLoad {
                path: model.to_path_buf(),
                message: e.to_string(),
            })?;
        Self::from_session(session, model, opts)
    }

    fn from_session(session: Session, model: &Path, opts: &OrtOptions) -> Result<Self, OrtError> {
        let unsupported = |reason: String| OrtError::ModelUnsupported {
            path: model.to_path_buf(),
            reason,
        };
        let output_names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();

        let mut has_ids = false;
        let mut pairs = Vec::new();
        let mut kv_dims: Option<(usize, usize)> = None;
        for input in session.inputs() {
            let name = input.name();
            let (ty, shape) = tensor_shape(input.dtype())
                .ok_or_else(|| unsupported(format!("input `{name}` is not a tensor")))?;
            if name == INPUT_IDS {
                if ty != TensorElementType::Int64 || shape.len() != 2 {
                    return Err(unsupported(format!(
                        "`{INPUT_IDS}` must be int64 [batch, seq], not {ty:?} {shape:?}"
                    )));
                }
                has_ids = true;
            } else if let Some(rest) = name.strip_prefix(PAST_PREFIX) {
                let present = format!("{PRESENT_PREFIX}{rest}");
                if !output_names.contains(&present.as_str()) {
                    return Err(unsupported(format!(
                        "input `{name}` has no matching output `{present}`"
                    )));
                }
                if ty != TensorElementType::Float32
                    || shape.len() != 4
                    || shape[1] <= 0
                    || shape[3] <= 0
                {
                    return Err(unsupported(format!(
                        "`{name}` must be float32 [batch, heads, past_seq, head_dim] with static heads and head_dim, not {ty:?} {shape:?}"
                    )));
                }
                let dims = (shape[1] as usize, shape[3] as usize);
                if kv_dims.is_some_and(|d| d != dims) {
                    return Err(unsupported(format!(
                        "`{name}` has {dims:?} (heads, head_dim), unlike the other past inputs"
                    )));
                }
                kv_dims = Some(dims);
                pairs.push((name.to_string(), present));
            } else {
                return Err(unsupported(format!(
                    "unsupported input `{name}` (the driver feeds `{INPUT_IDS}` and `{PAST_PREFIX}*` only)"
                )));
            }
        }
        if !has_ids {
            return Err(unsupported(format!("no `{INPUT_IDS}` input")));
        }
        let logits = session
            .outputs()
            .iter()
            .find(|o| o.name() == LOGITS)
            .ok_or_else(|| {
                unsupported(format!(
                    "no `{LOGITS}` output (outputs: {})",
                    output_names.join(", ")
                ))
            })?;
        let (ty, shape) = tensor_shape(logits.dtype())
            .ok_or_else(|| unsupported(format!("`{LOGITS}` is not a tensor")))?;
        let vocab = shape.last().copied().unwrap_or(-1);
        if ty != TensorElementType::Float32 || !(2..=3).contains(&shape.len()) || vocab <= 0 {
            return Err(unsupported(format!(
                "`{LOGITS}` must be float32 [batch, seq, vocab] with a static vocab, not {ty:?} {shape:?}"
            )));
        }
        let max_positions = session
            .metadata()
            .ok()
            .and_then(|m| m.custom("l1.max_positions"))
            .and_then(|v| v.parse::<usize>().ok());
        let kv = kv_dims.map(|(heads, head_dim)| KvCache {
            pairs,
            heads,
            head_dim,
        });
        Ok(OrtLm {
            session,
            path: model.to_path_buf(),
            options: opts.clone(),
            vocab: vocab as usize,
            kv,
            max_positions,
        })
    }

    /// The size of the logits' last dimension.
    pub fn vocab_size(&self) -> usize {
        self.vocab
    }

    /// Whether the model has a KV cache (past/present tensors).
    pub fn has_kv_cache(&self) -> bool {
        self.kv.is_some()
    }

    /// Whether [`generate`](Self::generate) uses the KV cache (the model has one and
    /// [`OrtOptions::kv_cache`] is on).
    pub fn uses_kv_cache(&self) -> bool {
        self.kv.is_some() && self.options.kv_cache
    }

    /// The model's position limit, from its `l1.max_positions` metadata (models from
    /// `make_tiny_onnx_lm.py`); `None` when the model does not say.
    pub fn max_positions(&self) -> Option<usize> {
        self.max_positions
    }

    /// The model file.
    pub fn model_path(&self) -> &Path {
        &self.path
    }

    /// The options the session was created with.
    pub fn options(&self) -> &OrtOptions {
        &self.options
    }

    /// Stop profiling (see [`OrtOptions::profile_prefix`]) and return the trace file.
    pub fn end_profiling(&mut self) -> Result<PathBuf, OrtError> {
        self.session
            .end_profiling()
            .map(PathBuf::from)
            .map_err(|e| OrtError::Options(format!("ending the profiler: {e}")))
    }

    /// Greedy-decodes `max_new_tokens` tokens after `prompt` (token ids), calling
    /// `on_token(index, token_id, logprob)` right after each token is chosen (so the caller can
    /// timestamp it: TTFT, inter-token latency). Returns the generated ids and their logprobs
    /// (log-softmax of the chosen token). There is no stop token: exactly `max_new_tokens` come
    /// back.
    pub fn generate(
        &mut self,
        prompt: &[i64],
        max_new_tokens: usize,
        on_token: &mut dyn FnMut(usize, i64, f32),
    ) -> Result<Generation, OrtError> {
        self.generate_top(prompt, max_new_tokens, 0, on_token)
            .map(|(g, _)| g)
    }

    /// [`Self::generate`], also returning the `top_k` most likely tokens (id, log-softmax) at
    /// every position (fidelity probes; `top_k` 0 returns empty lists).
    pub fn generate_top(
        &mut self,
        prompt: &[i64],
        max_new_tokens: usize,
        top_k: usize,
        on_token: &mut dyn FnMut(usize, i64, f32),
    ) -> Result<(Generation, Vec<TopK>), OrtError> {
        let mut tops: Vec<TopK> = Vec::new();
        if prompt.is_empty() {
            return Err(OrtError::Input("the prompt is empty".into()));
        }
        if let Some(&bad) = prompt
            .iter()
            .find(|&&t| t < 0 || t as u64 >= self.vocab as u64)
        {
            return Err(OrtError::Input(format!(
                "token id {bad} is outside the vocabulary 0..{}",
                self.vocab
            )));
        }
        if let Some(max) = self.max_positions
            && prompt.len() + max_new_tokens > max
        {
            return Err(OrtError::Input(format!(
                "prompt ({}) + new tokens ({max_new_tokens}) exceed the model's {max} positions",
                prompt.len()
            )));
        }
        let mut out = Generation {
            tokens: Vec::with_capacity(max_new_tokens),
            logprobs: Vec::with_capacity(max_new_tokens),
        };
        let use_kv = self.uses_kv_cache();
        // The ids fed this step: the whole sequence, or (with the cache) the prompt and then one token.
        let mut sequence: Vec<i64> = prompt.to_vec();
        let mut feed: Vec<i64> = prompt.to_vec();
        let mut past: Vec<DynValue> = Vec::new();
        for step in 0..max_new_tokens {
            let run_err = |message: String| OrtError::Run {
                path: self.path.clone(),
                step,
                message,
            };
            if past.is_empty()
                && let Some(kv) = &self.kv
            {
                // Empty past tensors: the first step with the cache, or every step without it.
                for _ in &kv.pairs {
                    let empty = Tensor::<f32>::from_array((
                        [1usize, kv.heads, 0, kv.head_dim],
                        Vec::<f32>::new(),
                    ))
                    .map_err(|e| run_err(format!("creating an empty past tensor: {e}")))?;
                    past.push(empty.into_dyn());
                }
            }
            let ids = Tensor::<i64>::from_array(([1usize, feed.len()], feed.clone()))
                .map_err(|e| run_err(format!("creating the input_ids tensor: {e}")))?;
            let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> =
                Vec::with_capacity(1 + past.len());
            inputs.push((Cow::Borrowed(INPUT_IDS), ids.into()));
            if let Some(kv) = &self.kv {
                for ((name, _), value) in kv.pairs.iter().zip(past.drain(..)) {
                    inputs.push((Cow::Borrowed(name.as_str()), value.into()));
                }
            }
            let mut outputs = self.session.run(inputs).map_err(|e| OrtError::Run {
                path: self.path.clone(),
                step,
                message: e.to_string(),
            })?;
            let (token, logprob) = {
                let logits = outputs.get(LOGITS).ok_or_else(|| OrtError::Run {
                    path: self.path.clone(),
                    step,
                    message: "no logits output".into(),
                })?;
                let (shape, data) =
                    logits
                        .try_extract_tensor::<f32>()
                        .map_err(|e| OrtError::Run {
                            path: self.path.clone(),
                            step,
                            message: format!("reading logits: {e}"),
                        })?;
                let v = self.vocab;
                let expected = if shape.len() == 3 { feed.len() } else { 1 };
                if shape.first() != Some(&1)
                    || shape.last() != Some(&(v as i64))
                    || data.len() != expected * v
                {
                    return Err(OrtError::Run {
                        path: self.path.clone(),
                        step,
                        message: format!(
                            "logits have shape {:?}, expected [1, {}, {v}]",
                            &shape[..],
                            feed.len()
                        ),
                    });
                }
                let last = &data[data.len() - v..];
                if top_k > 0 {
                    tops.push(top_logprobs(last, top_k));
                }
                greedy(last).ok_or_else(|| OrtError::Run {
                    path: self.path.clone(),
                    step,
                    message: "the logits contain NaN".into(),
                })?
            };
            out.tokens.push(token);
            out.logprobs.push(logprob);
            on_token(step, token, logprob);
            sequence.push(token);
            if use_kv {
                if let Some(kv) = &self.kv {
                    for (_, present) in &kv.pairs {
                        let value =
                            outputs
                                .remove(present.as_str())
                                .ok_or_else(|| OrtError::Run {
                                    path: self.path.clone(),
                                    step,
                                    message: format!("no `{present}` output"),
                                })?;
                        past.push(value);
                    }
                }
                feed.clear();
                feed.push(token);
            } else {
                feed.clone_from(&sequence);
            }
        }
        Ok((out, tops))
    }
}

/// The `k` largest log-softmax values of `logits` with their ids, best first (ties by id).
fn top_logprobs(logits: &[f32], k: usize) -> Vec<(i64, f32)> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = f64::from(max)
        + logits
            .iter()
            .map(|&x| (f64::from(x) - f64::from(max)).exp())
            .sum::<f64>()
            .ln();
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    idx.into_iter()
        .take(k)
        .map(|i| (i as i64, (f64::from(logits[i]) - lse) as f32))
        .collect()
}

/// The argmax (lowest id on ties) and its log-softmax, computed in f64; `None` on NaN.
fn greedy(logits: &[f32]) -> Option<(i64, f32)> {
    let mut best = 0usize;
    for (i, &x) in logits.iter().enumerate() {
        if x.is_nan() {
            return None;
        }
        if x > logits[best] {
            best = i;
        }
    }
    let max = f64::from(logits[best]);
    let sum: f64 = logits.iter().map(|&x| (f64::from(x) - max).exp()).sum();
    Some((best as i64, (-sum.ln()) as f32))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// The installed library and model, or `None` (printing why) when either is missing.
    fn installed() -> Option<(PathBuf, PathBuf)> {
        let dir = crate::install::engines_dir();
        let lib = library_from_env(&dir);
        let model = default_model(&dir);
        for (what, p) in [("ONNX Runtime library", &lib), ("model", &model)] {
            if !p.exists() {
                eprintln!(
                    "skipping: no {what} at {} (scripts/setup-engines.sh onnxruntime installs it)",
                    p.display()
                );
                return None;
            }
        }
        init(&lib).unwrap();
        Some((lib, model))
    }

    fn opts(opt_level: OptLevel, intra_threads: usize) -> OrtOptions {
        OrtOptions {
            opt_level,
            intra_threads,
            ..OrtOptions::default()
        }
    }

    fn prompt(n: usize) -> Vec<i64> {
        // A fixed pseudo-random prompt (LCG) inside the tiny model's 512-token vocabulary.
        let mut x: u64 = 12345;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((x >> 33) % 512) as i64
            })
            .collect()
    }

    fn decode(model: &Path, o: &OrtOptions, p: &[i64], n: usize) -> Generation {
        let mut lm = OrtLm::load(model, o).unwrap();
        lm.generate(p, n, &mut |_, _, _| {}).unwrap()
    }

    #[test]
    fn opt_level_parses_and_lists_choices() {
        for l in OptLevel::ALL {
            assert_eq!(l.as_str().parse::<OptLevel>().unwrap(), l);
            assert_eq!(l.to_string(), l.as_str());
        }
        assert_eq!(
            " Extended ".parse::<OptLevel>().unwrap(),
            OptLevel::Extended
        );
        let err = "fast".parse::<OptLevel>().unwrap_err().to_string();
        assert!(err.contains("`fast`"), "{err}");
        assert!(err.contains("disable, basic, extended, all"), "{err}");
        assert_eq!(OptLevel::default(), OptLevel::All);
    }

    #[test]
    fn version_from_file_names() {
        assert_eq!(
            version_in_file_name("libonnxruntime.so.1.32.0").as_deref(),
            Some("1.32.0")
        );
        assert_eq!(
            version_in_file_name("libonnxruntime.1.31.2.dylib").as_deref(),
            Some("1.31.2")
        );
        assert_eq!(version_in_file_name("libonnxruntime.so.1"), None);
        assert_eq!(version_in_file_name("libonnxruntime.so"), None);
        assert_eq!(
            version_in_package_info("package_name = 'onnxruntime'\n__version__ = '1.32.0'\n")
                .as_deref(),
            Some("1.32.0")
        );
    }

    #[test]
    fn greedy_picks_argmax_with_logsoftmax() {
        let (t, lp) = greedy(&[0.0, 2.0, 2.0, -1.0]).unwrap();
        assert_eq!(t, 1);
        let expected = 2.0 - (1.0f64 + 2.0 * 2f64.exp() + (-1f64).exp()).ln();
        assert!((f64::from(lp) - expected).abs() < 1e-6);
        assert!(greedy(&[0.0, f32::NAN]).is_none());
    }

    #[test]
    fn lm_is_send() {
        fn send<T: Send>() {}
        send::<OrtLm>();
    }

    #[test]
    fn missing_library_is_a_clear_error() {
        let bad = Path::new("/nonexistent/l1/libonnxruntime.so");
        let err = init(bad).unwrap_err();
        assert!(matches!(err, OrtError::LibraryMissing { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("/nonexistent/l1/libonnxruntime.so"),
            "{err}"
        );
        assert!(
            library_version(bad)
                .unwrap_err()
                .to_string()
                .contains("/nonexistent/l1")
        );
    }

    #[test]
    fn garbage_library_is_a_clear_error() {
        // Not a shared object: either dlopen fails (nothing loaded yet) or it conflicts with the
        // library another test loaded; both name the file.
        let dir = std::env::temp_dir().join(format!("l1-ort-badlib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lib = dir.join("libonnxruntime.so.1.99.0");
        std::fs::write(&lib, b"this is not a shared library").unwrap();
        let err = init(&lib).unwrap_err();
        eprintln!("garbage library: {err}");
        assert!(
            matches!(
                err,
                OrtError::LibraryLoad { .. } | OrtError::LibraryConflict { .. }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains(&*lib.to_string_lossy()), "{err}");
        // The version comes from the file name without loading anything.
        assert_eq!(library_version(&lib).unwrap(), "1.99.0");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn library_loads_once_and_reports_its_version() {
        let Some((lib, _)) = installed() else { return };
        // Idempotent, from many threads.
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let lib = lib.clone();
                std::thread::spawn(move || init(&lib))
            })
            .collect();
        for h in handles {
            h.join().unwrap().unwrap();
        }
        let v = library_version(&lib).unwrap();
        eprintln!("ONNX Runtime {v} from {}", lib.display());
        assert!(v.starts_with("1."), "{v}");
        assert_eq!(canonical(&loaded_library().unwrap()), canonical(&lib));
        // The same file through another path (the symlink's target) is the same library ...
        init(&canonical(&lib)).unwrap();
        // ... and another file is refused without being opened.
        let other = std::env::temp_dir().join(format!("l1-ort-other-{}.so", std::process::id()));
        std::fs::write(&other, b"another library").unwrap();
        let err = init(&other).unwrap_err();
        assert!(matches!(err, OrtError::LibraryConflict { .. }), "{err:?}");
        assert!(err.to_string().contains(&*other.to_string_lossy()), "{err}");
        std::fs::remove_file(&other).unwrap();
    }

    #[test]
    fn model_errors_name_the_file() {
        let Some(_) = installed() else { return };
        let missing = Path::new("/nonexistent/l1/tiny.onnx");
        let err = OrtLm::load(missing, &OrtOptions::default()).unwrap_err();
        assert!(matches!(err, OrtError::ModelMissing { .. }), "{err:?}");
        assert!(
            err.to_string().contains("/nonexistent/l1/tiny.onnx"),
            "{err}"
        );

        let garbage =
            std::env::temp_dir().join(format!("l1-ort-garbage-{}.onnx", std::process::id()));
        std::fs::write(&garbage, b"\x08\x07garbage, not a protobuf model").unwrap();
        let err = OrtLm::load(&garbage, &OrtOptions::default()).unwrap_err();
        eprintln!("garbage model: {err}");
        assert!(matches!(err, OrtError::ModelLoad { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&*garbage.to_string_lossy()),
            "{err}"
        );
        std::fs::remove_file(&garbage).unwrap();
    }

    #[test]
    fn generate_rejects_bad_requests() {
        let Some((_, model)) = installed() else {
            return;
        };
        let mut lm = OrtLm::load(&model, &opts(OptLevel::All, 1)).unwrap();
        assert_eq!(lm.vocab_size(), 512);
        eprintln!("model has a KV cache: {}", lm.has_kv_cache());
        let e = lm.generate(&[], 4, &mut |_, _, _| {}).unwrap_err();
        assert!(matches!(e, OrtError::Input(_)), "{e:?}");
        let e = lm.generate(&[1, 512], 4, &mut |_, _, _| {}).unwrap_err();
        assert!(e.to_string().contains("512"), "{e}");
        let e = lm.generate(&[1], 5000, &mut |_, _, _| {}).unwrap_err();
        assert!(e.to_string().contains("2048 positions"), "{e}");
        assert_eq!(
            lm.generate(&[1, 2], 0, &mut |_, _, _| {}).unwrap(),
            Generation::default()
        );
    }

    #[test]
    fn greedy_decode_is_deterministic_and_streams_in_order() {
        let Some((_, model)) = installed() else {
            return;
        };
        let p = prompt(32);
        let o = opts(OptLevel::All, 1);
        let mut lm = OrtLm::load(&model, &o).unwrap();
        let mut seen = Vec::new();
        let a = lm
            .generate(&p, 64, &mut |i, t, lp| seen.push((i, t, lp)))
            .unwrap();
        assert_eq!(a.tokens.len(), 64);
        assert_eq!(a.logprobs.len(), 64);
        assert_eq!(seen.len(), 64, "on_token once per token");
        for (k, (i, t, lp)) in seen.iter().enumerate() {
            assert_eq!(*i, k);
            assert_eq!(*t, a.tokens[k]);
            assert_eq!(lp.to_bits(), a.logprobs[k].to_bits());
            assert!(*lp <= 0.0 && lp.is_finite());
        }
        assert!((0..512).contains(&a.tokens[0]));
        // Same session again, and a fresh session.
        let b = lm.generate(&p, 64, &mut |_, _, _| {}).unwrap();
        assert_eq!(a, b, "same session, same result");
        let c = decode(&model, &o, &p, 64);
        assert_eq!(a.tokens, c.tokens, "fresh session, same tokens");
        let mean_p = a.logprobs.iter().map(|l| f64::from(*l).exp()).sum::<f64>() / 64.0;
        eprintln!(
            "tokens {:?}\nmean chosen-token probability {mean_p:.3}",
            a.tokens
        );
        assert!(mean_p > 0.5, "the tiny model should be peaked: {mean_p}");
    }

    #[test]
    fn opt_levels_threads_and_kv_cache_agree() {
        let Some((_, model)) = installed() else {
            return;
        };
        let p = prompt(32);
        let reference = decode(&model, &opts(OptLevel::Disable, 1), &p, 64);
        let mut variants = Vec::new();
        for l in OptLevel::ALL {
            for t in [1, 2] {
                variants.push((format!("{l} threads={t}"), opts(l, t)));
            }
        }
        variants.push((
            "all, no kv cache".into(),
            OrtOptions {
                kv_cache: false,
                ..opts(OptLevel::All, 1)
            },
        ));
        variants.push((
            "disable, no kv cache".into(),
            OrtOptions {
                kv_cache: false,
                ..opts(OptLevel::Disable, 1)
            },
        ));
        variants.push((
            "all, parallel 2x2".into(),
            OrtOptions {
                parallel_execution: true,
                inter_threads: 2,
                intra_threads: 2,
                ..OrtOptions::default()
            },
        ));
        for (label, o) in variants {
            let g = decode(&model, &o, &p, 64);
            let same = g
                .tokens
                .iter()
                .zip(&reference.tokens)
                .filter(|(a, b)| a == b)
                .count();
            let diff = g
                .logprobs
                .iter()
                .zip(&reference.logprobs)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            eprintln!("{label:24}: exact-match {same}/64 vs disable/1, max |dlogprob| {diff:.2e}");
            assert_eq!(
                g.tokens, reference.tokens,
                "{label}: greedy tokens differ from disable"
            );
            assert!(diff < 1e-3, "{label}: logprobs differ by {diff}");
        }
    }

    /// Time per generated token at opt levels × threads, and the session load time. Not a
    /// correctness test: `cargo test --release -p l1-engines onnxruntime -- --ignored --nocapture
    /// --test-threads=1`. Per rep: a fresh session (load time), a first `generate` on it (cold:
    /// ONNX Runtime plans memory and prepacks weights on the first runs), then a second one
    /// (warm). Medians over the reps after one warm-up rep.
    #[test]
    #[ignore = "measurement; run explicitly"]
    fn measure_time_per_token() {
        let Some((_, model)) = installed() else {
            return;
        };
        let p = prompt(32);
        let n = 64usize;
        let reps: usize = std::env::var("L1_ORT_REPS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        eprintln!(
            "prompt {} tokens, {n} new tokens, {reps} reps (medians)\n\
             | opt level | intra threads | load ms | cold TTFT ms | warm TTFT ms | warm ms/token after the first | warm ms/token overall |\n\
             |---|---|---|---|---|---|---|",
            p.len()
        );
        let med = |v: &mut Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        for l in OptLevel::ALL {
            for t in [1usize, 2] {
                let o = opts(l, t);
                let mut cols: [Vec<f64>; 5] = Default::default();
                for rep in 0..=reps {
                    let t0 = Instant::now();
                    let mut lm = OrtLm::load(&model, &o).unwrap();
                    let load = t0.elapsed().as_secs_f64() * 1e3;
                    let mut stamps = Vec::with_capacity(2 * n);
                    let mut timed = |lm: &mut OrtLm| {
                        stamps.clear();
                        let start = Instant::now();
                        lm.generate(&p, n, &mut |_, _, _| {
                            stamps.push(start.elapsed().as_secs_f64() * 1e3)
                        })
                        .unwrap();
                        (
                            stamps[0],
                            (stamps[n - 1] - stamps[0]) / (n - 1) as f64,
                            stamps[n - 1] / n as f64,
                        )
                    };
                    let (cold_ttft, _, _) = timed(&mut lm);
                    let (ttft, itl, overall) = timed(&mut lm);
                    if rep > 0 {
                        for (c, x) in cols.iter_mut().zip([load, cold_ttft, ttft, itl, overall]) {
                            c.push(x);
                        }
                    }
                }
                let [a, b, c, d, e] = &mut cols;
                eprintln!(
                    "| {l} | {t} | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} |",
                    med(a),
                    med(b),
                    med(c),
                    med(d),
                    med(e)
                );
            }
        }
    }
}
