//! The one interface every engine implements — the sim, the server engines and the in-process
//! ONNX Runtime — and the properties the harness asks of an engine instead of its name. The
//! engines themselves are listed once, in the engine table (`registry.rs`).

use std::path::{Path, PathBuf};

use crate::error::{EngineError, LaunchError};
use crate::launch::{Launch, LaunchTarget};
use crate::process::LaunchCommand;
use crate::version::VersionRange;

/// How an engine is driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// The built-in simulated engine: nothing to install, needs no device.
    Simulated,
    /// A server process launched per trial and driven over HTTP.
    Server {
        /// The executable whose presence says the engine is installed.
        binary: &'static str,
    },
    /// A library driven in-process.
    InProcess {
        /// The shared library that must be loadable.
        library: &'static str,
    },
}

/// What a deployment of a measured combo runs (`l1 apply`): the command line of a server
/// engine, or the settings an application applies to an in-process engine.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Deployment {
    /// The server command (`None` for in-process engines).
    pub command: Option<LaunchCommand>,
    /// What else the deployment needs to know (served model name, port, readiness path; or the
    /// session options of an in-process engine).
    pub settings: serde_json::Value,
    /// Notes for the reader (port and readiness, a program that is not installed here).
    pub notes: Vec<String>,
}

/// One engine l1 can measure.
pub trait Engine: Sync {
    /// The engine's catalog name (`sim`, `vllm`, `onnxruntime`, ...).
    fn name(&self) -> &'static str;

    /// How it is driven.
    fn kind(&self) -> EngineKind;

    /// Whether the engine can run on this machine: `Ok(())`, or why it cannot.
    fn availability(&self, engines_dir: &Path) -> Result<(), EngineError>;

    /// The file that identifies the installed engine (the server's program, ONNX Runtime's
    /// library): while it is unchanged (path, size, modification time), so is the version.
    fn installed_program(&self, engines_dir: &Path) -> Result<PathBuf, EngineError>;

    /// The installed version as the engine itself reports it, without launching it.
    fn installed_version(&self, engines_dir: &Path) -> Result<String, EngineError>;

    /// The versions its translation is written for (`None` for the sim, which translates
    /// nothing). The catalog's versions of the engine must lie inside.
    fn supported_versions(&self) -> Option<&'static [VersionRange]>;

    /// Its translation table (dimension values to flags, environment and config keys), where
    /// its translation is data: the book's engine tables (`docs/src/engines/`) and
    /// `l1 catalog engines` render it.
    fn translation(&self) -> Option<&'static crate::translate::Table> {
        None
    }

    /// Start one launch for `target`: checked against the installed version, warmed up with the
    /// workload's warm-up requests, ready for reps.
    fn start(&self, target: &LaunchTarget<'_>) -> Result<Box<dyn Launch>, LaunchError>;

    /// What a deployment of `target`'s combo runs, serving on `port` (nothing is started).
    fn deployment(&self, target: &LaunchTarget<'_>, port: u16) -> Result<Deployment, LaunchError>;

    /// Whether its results are simulated (records and reports say so).
    fn simulated(&self) -> bool {
        self.kind() == EngineKind::Simulated
    }

    /// Whether its trials need the device they run on (real engines do; the sim does not).
    fn needs_device(&self) -> bool {
        !self.simulated()
    }

    /// Whether a measurement may keep all its launches open at once (the sim), or must run them
    /// one after another, one engine per device (real engines).
    fn concurrent_launches(&self) -> bool {
        self.simulated()
    }

    /// Whether `l1 calibrate` can measure its noise model (only the sim's is a model to fit).
    fn calibratable(&self) -> bool {
        self.simulated()
    }

    /// Another executable that serves the engine when [`EngineKind::Server`]'s `binary` is
    /// absent (a normal vLLM install's `vllm`, NVIDIA's GPU `tritonserver`).
    fn fallback_binary(&self) -> Option<&'static str> {
        None
    }
}

/// Compare an installed version with the spec's: equal, or the spec's is a prefix at a
/// component boundary (`0.32` accepts `0.32.0`).
pub fn version_matches(spec: &str, installed: &str) -> bool {
    installed == spec
        || installed.strip_prefix(spec).is_some_and(|rest| {
            rest.starts_with('.') || rest.starts_with('-') || rest.starts_with('+')
        })
}

impl std::fmt::Debug for dyn Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("name", &self.name())
            .field("kind", &self.kind())
            .finish()
    }
}
