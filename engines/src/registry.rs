//! The engine table: every engine l1 knows, how it runs, and whether it can run on this machine.
//!
//! What an engine *exposes* (dimensions, values, knobs, versions) is catalog data
//! (`catalogs/kernels.yaml`, section `engines`); this table holds what is code: how to find the
//! engine here and whether this build can launch it.

use std::path::PathBuf;

/// How an engine is driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineKind {
    /// The built-in simulated engine: nothing to install, needs no device.
    Simulated,
    /// A server process launched per trial and driven over HTTP.
    Server {
        /// The executable that must be on `PATH`.
        binary: &'static str,
    },
    /// A library driven in-process.
    InProcess {
        /// The shared library that must be loadable.
        library: &'static str,
    },
}

/// One engine.
#[derive(Clone, Copy, Debug)]
pub struct EngineInfo {
    pub name: &'static str,
    pub kind: EngineKind,
    /// Whether this build can launch and measure it.
    pub launcher: bool,
}

/// Every engine, in one dispatch table.
pub const ENGINES: &[EngineInfo] = &[
    EngineInfo {
        name: "sim",
        kind: EngineKind::Simulated,
        launcher: true,
    },
    EngineInfo {
        name: "vllm",
        kind: EngineKind::Server { binary: "vllm" },
        launcher: false,
    },
    EngineInfo {
        name: "tgi",
        kind: EngineKind::Server {
            binary: "text-generation-launcher",
        },
        launcher: false,
    },
    EngineInfo {
        name: "trtllm",
        kind: EngineKind::Server {
            binary: "trtllm-serve",
        },
        launcher: false,
    },
    EngineInfo {
        name: "triton",
        kind: EngineKind::Server {
            binary: "tritonserver",
        },
        launcher: false,
    },
    EngineInfo {
        name: "sglang",
        kind: EngineKind::Server { binary: "sglang" },
        launcher: false,
    },
    EngineInfo {
        name: "llamacpp",
        kind: EngineKind::Server {
            binary: "llama-server",
        },
        launcher: false,
    },
    EngineInfo {
        name: "onnxruntime",
        kind: EngineKind::InProcess {
            library: "libonnxruntime.so",
        },
        launcher: false,
    },
];

/// Look an engine up by name.
pub fn engine(name: &str) -> Option<&'static EngineInfo> {
    ENGINES.iter().find(|e| e.name == name)
}

impl EngineInfo {
    /// Whether the engine can run on this machine: `Ok(())`, or the reason it cannot.
    pub fn availability(&self) -> Result<(), String> {
        match self.kind {
            EngineKind::Simulated => Ok(()),
            EngineKind::Server { binary } => {
                if find_on_path(binary).is_none() {
                    return Err(format!(
                        "engine `{}` is not installed (`{binary}` not found on PATH)",
                        self.name
                    ));
                }
                if !self.launcher {
                    return Err(format!(
                        "engine `{}` is installed but this build has no launcher for it",
                        self.name
                    ));
                }
                Ok(())
            }
            EngineKind::InProcess { library } => {
                if !self.launcher {
                    return Err(format!(
                        "engine `{}` runs in-process through `{library}`; this build has no driver for it",
                        self.name
                    ));
                }
                Ok(())
            }
        }
    }

    /// Whether trials of this engine need the device they run on (real engines do; the sim does not).
    pub fn needs_device(&self) -> bool {
        !matches!(self.kind, EngineKind::Simulated)
    }
}

/// The first executable called `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
