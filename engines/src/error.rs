//! What the launch path can fail with, as types: [`EngineError`] (an engine is unknown, not
//! installed, or its installation cannot be read), [`LaunchError`] (a launch did not come up) and
//! [`RepError`] (a rep of a started launch failed). Their `Display` texts are the messages users
//! and reports see.

use std::fmt;
use std::path::PathBuf;

/// Where l1 looked for an engine's program or library.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookedIn {
    /// `<engines dir>/bin`, then `PATH`.
    BinOrPath(PathBuf),
    /// One path (a shared library).
    At(PathBuf),
}

impl fmt::Display for LookedIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookedIn::BinOrPath(bin) => write!(f, "in {} or on PATH", bin.display()),
            LookedIn::At(path) => write!(f, "at {}", path.display()),
        }
    }
}

/// Why an engine cannot be used here, or its installation cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No engine of that name in the engine table.
    #[error("engine `{engine}`: this build has no launcher for it")]
    Unknown { engine: String },
    /// The program or library that identifies the engine is not installed.
    #[error("engine `{engine}` is not installed (`{program}` not found {looked_in}; {hint})")]
    NotInstalled {
        engine: String,
        program: String,
        looked_in: LookedIn,
        /// How to install it.
        hint: String,
    },
    /// The built-in sim has no installed program or version to read.
    #[error("engine `{engine}` is built into l1: it has no installed program or version")]
    BuiltIn { engine: String },
    /// A program an engine module needs is not installed.
    #[error(transparent)]
    Binary(#[from] crate::install::BinaryMissing),
    /// The engine module could not find its program (its message names what it looked for).
    #[error("{0}")]
    Program(String),
    /// The command that reports the installed version could not be run.
    #[error("failed to run `{command}`: {source}")]
    VersionCommand {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// The installed engine's output held no version (`marker` names the line looked for).
    #[error("`{command}` printed no `{marker}` line: {output}")]
    NoVersion {
        command: String,
        marker: String,
        /// The output, clipped.
        output: String,
    },
    /// The installed engine did not say its version (the module's message).
    #[error("{0}")]
    Version(String),
    /// ONNX Runtime's library could not be read.
    #[error(transparent)]
    Library(#[from] OrtError),
}

/// Why a launch did not come up.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The installed engine is not the version the target names.
    #[error(
        "engine `{engine}`: the installed version is `{installed}` ({}), but this target is for `{wanted}`; name the installed version in the spec or install that one",
        program.display()
    )]
    VersionMismatch {
        engine: String,
        installed: String,
        wanted: String,
        /// The program or library whose version was read.
        program: PathBuf,
    },
    /// The combo has no translation for this engine and version.
    #[error(transparent)]
    Translate(#[from] crate::translate::TranslateError),
    /// The target cannot run on this engine as built (hardware it does not drive).
    #[error("engine `{engine}`: {reason}")]
    Unsupported { engine: String, reason: String },
    /// The target's model file is missing.
    #[error(transparent)]
    Model(#[from] ModelMissing),
    /// The engine process did not start or become ready.
    #[error(transparent)]
    Process(#[from] crate::process::ProcessError),
    /// The simulated engine failed to start (fault injection, or a model that does not fit).
    #[error("engine failed to launch: {0}")]
    Sim(#[from] SimError),
    /// ONNX Runtime could not load the library or the model.
    #[error(transparent)]
    Ort(#[from] OrtError),
    /// The load generator's async runtime did not start.
    #[error("failed to start the load generator's runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The HTTP client or the load generator's backend could not be built.
    #[error("{0}")]
    Client(String),
    /// Prompts could not be fitted to the engine's tokenizer.
    #[error("tokenizer calibration failed: {0}")]
    Tokenizer(String),
    /// The warm-up requests could not be built.
    #[error(transparent)]
    Prompts(#[from] PromptError),
    /// Every warm-up request failed (the errors per kind).
    #[error("every warm-up request failed: {errors}")]
    WarmUpFailed { errors: String },
    /// A failure while the engine was up, with the tail of its log.
    #[error("{source}{log}")]
    WithLog {
        source: Box<LaunchError>,
        /// [`crate::process::EngineProcess::log_excerpt`].
        log: String,
    },
}

/// Why a rep of a started launch failed.
#[derive(Debug, thiserror::Error)]
pub enum RepError {
    /// The simulated engine crashed (fault injection).
    #[error(transparent)]
    Sim(#[from] SimError),
    /// The rep's requests could not be built.
    #[error(transparent)]
    Prompts(#[from] PromptError),
    /// The engine process exited while the rep ran.
    #[error("the engine died during the rep: {0}")]
    EngineDied(#[source] crate::process::ProcessError),
    /// Every request of the rep failed.
    #[error("all {requests} requests failed: {errors}")]
    AllFailed { requests: usize, errors: String },
}

/// A request's prompt could not be built (the load generator's prompt fitting, or the engine's
/// tokenize endpoint, failed); the message is theirs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PromptError(pub String);

pub use crate::translate::ModelMissing;

/// Why a simulated launch or rep failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// The engine did not come up (fault injection).
    #[error("engine exited during startup: {message}")]
    LaunchFailed { message: String },
    /// The engine died during a rep (fault injection).
    #[error("engine crashed during rep {rep}: {message}")]
    Crashed { rep: u32, message: String },
    /// A dimension, value or knob the sim does not know. For an unknown dimension or knob name,
    /// `dimension` is `dimension` or `knob` and `value` is the name.
    #[error("the sim engine does not support {dimension}={value} (valid: {valid})")]
    Unsupported {
        dimension: String,
        value: String,
        valid: String,
    },
    /// The weights alone exceed the usable device memory: a real engine fails to load them.
    #[error("the model does not fit: weights need {weights_gib:.1} GiB of {memory_gib:.1} GiB")]
    DoesNotFit { weights_gib: f64, memory_gib: f64 },
}

/// Errors of the ONNX Runtime driver. Every variant that concerns a file names it.
#[derive(Debug, thiserror::Error)]
pub enum OrtError {
    #[error("ONNX Runtime library not found at {} (run scripts/setup-engines.sh onnxruntime, or set ORT_DYLIB_PATH)", path.display())]
    LibraryMissing { path: PathBuf },
    #[error("cannot load the ONNX Runtime library {}: {message}", path.display())]
    LibraryLoad { path: PathBuf, message: String },
    #[error(
        "ONNX Runtime is already loaded from {} in this process; cannot also load {} (the library can be loaded once per process)",
        loaded.display(),
        requested.display()
    )]
    LibraryConflict { requested: PathBuf, loaded: PathBuf },
    #[error("cannot tell the ONNX Runtime version of {}: {reason}", path.display())]
    VersionUnknown { path: PathBuf, reason: String },
    #[error(
        "ONNX Runtime is not initialized: call l1_engines::onnxruntime::init(library) before loading a model"
    )]
    NotInitialized,
    #[error("invalid ONNX Runtime option: {0}")]
    Options(String),
    #[error("ONNX model not found: {}", path.display())]
    ModelMissing { path: PathBuf },
    #[error("cannot load the ONNX model {}: {message}", path.display())]
    ModelLoad { path: PathBuf, message: String },
    #[error("the ONNX model {} is not a decoder LM this driver can run: {reason}", path.display())]
    ModelUnsupported { path: PathBuf, reason: String },
    #[error("invalid generation request: {0}")]
    Input(String),
    #[error("inference failed on {} at decode step {step}: {message}", path.display())]
    Run {
        path: PathBuf,
        step: usize,
        message: String,
    },
}

/// Lets callers that still report errors as text (the harness's fingerprint, while it moves to
/// these types) use `?` on an engine lookup.
impl From<EngineError> for String {
    fn from(e: EngineError) -> Self {
        e.to_string()
    }
}
