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
        // The setup script's wrapper; a normal (GPU) install's `vllm` on PATH also works.
        kind: EngineKind::Server {
            binary: "vllm-serve",
        },
        launcher: true,
    },
    EngineInfo {
        name: "tgi",
        kind: EngineKind::Server {
            binary: crate::tgi::PROGRAM,
        },
        launcher: true,
    },
    EngineInfo {
        name: "trtllm",
        kind: EngineKind::Server {
            binary: "trtllm-serve",
        },
        launcher: true,
    },
    EngineInfo {
        name: "triton",
        // pytriton's bundled tritonserver with the toy model (engines/src/triton.rs); on a GPU
        // host NVIDIA's own `tritonserver` (see `fallback_binary`).
        kind: EngineKind::Server {
            binary: crate::triton::PROGRAM,
        },
        launcher: true,
    },
    EngineInfo {
        name: "sglang",
        // The wheel's console script (0.5.5+); its interpreter runs `-m sglang.launch_server`.
        kind: EngineKind::Server { binary: "sglang" },
        launcher: true,
    },
    EngineInfo {
        name: "llamacpp",
        kind: EngineKind::Server {
            binary: "llama-server",
        },
        launcher: true,
    },
    EngineInfo {
        name: "onnxruntime",
        kind: EngineKind::InProcess {
            library: "libonnxruntime.so",
        },
        launcher: true,
    },
];

/// Look an engine up by name.
pub fn engine(name: &str) -> Option<&'static EngineInfo> {
    ENGINES.iter().find(|e| e.name == name)
}

impl EngineInfo {
    /// Whether the engine can run on this machine: `Ok(())`, or the reason it cannot.
    pub fn availability(&self, engines_dir: &std::path::Path) -> Result<(), String> {
        match self.kind {
            EngineKind::Simulated => Ok(()),
            EngineKind::Server { binary } => {
                if find_engine_binary(engines_dir, binary).is_none()
                    && fallback_binary(self.name).and_then(find_on_path).is_none()
                {
                    return Err(format!(
                        "engine `{}` is not installed (`{binary}` not found in {} or on PATH; see scripts/setup-engines.sh)",
                        self.name,
                        engines_dir.join("bin").display()
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
                let path = crate::onnxruntime::library_from_env(engines_dir);
                if !path.exists() {
                    return Err(format!(
                        "engine `{}` is not installed (`{library}` not found at {}; see scripts/setup-engines.sh, or set ORT_DYLIB_PATH)",
                        self.name,
                        path.display()
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

/// Start a launch of engine `name` for `target`: the one dispatch from engine names to their
/// modules. The installed version must match the target's (see [`crate::server::version_matches`]).
pub fn start(
    name: &str,
    target: &crate::launch::RealTarget<'_>,
) -> Result<Box<dyn crate::launch::Launch>, String> {
    if name == "onnxruntime" {
        return crate::onnxruntime::launch::OrtLaunch::start(target)
            .map(|l| Box::new(l) as Box<dyn crate::launch::Launch>);
    }
    let server = server_engine(name)
        .ok_or_else(|| format!("engine `{name}`: this build has no launcher for it"))?;
    let program = server.program(target.engines_dir)?;
    let installed = server.detect_version(&program)?;
    if !crate::server::version_matches(target.version, &installed) {
        return Err(format!(
            "engine `{name}`: the installed version is `{installed}` ({}), but this target is for `{}`; name the installed version in the spec or install that one",
            program.display(),
            target.version
        ));
    }
    let mut launch = crate::server::ServerLaunch::start(server, target)?;
    launch.note(format!("engine version: {installed}"));
    Ok(Box::new(launch))
}

/// The installed version of engine `name`, as the engine itself reports it (the server's
/// `--version`, ONNX Runtime's library), without launching it: part of the cache key.
pub fn installed_version(name: &str, engines_dir: &std::path::Path) -> Result<String, String> {
    if name == "onnxruntime" {
        let library = crate::onnxruntime::library_from_env(engines_dir);
        return crate::onnxruntime::library_version(&library).map_err(|e| e.to_string());
    }
    let server = server_engine(name)
        .ok_or_else(|| format!("engine `{name}`: this build has no launcher for it"))?;
    let program = server.program(engines_dir)?;
    server.detect_version(&program)
}

/// The file that identifies the installed engine `name` (the server's program, ONNX Runtime's
/// library): when it is unchanged (path, size, modification time), so is the engine's version.
pub fn installed_program(
    name: &str,
    engines_dir: &std::path::Path,
) -> Result<std::path::PathBuf, String> {
    if name == "onnxruntime" {
        return Ok(crate::onnxruntime::library_from_env(engines_dir));
    }
    server_engine(name)
        .ok_or_else(|| format!("engine `{name}`: this build has no launcher for it"))?
        .program(engines_dir)
}

/// Another executable that serves an engine when its `binary` is absent: a normal vLLM install's
/// `vllm` (run as `vllm serve`) instead of the setup script's `vllm-serve` wrapper.
fn fallback_binary(engine: &str) -> Option<&'static str> {
    match engine {
        "vllm" => Some("vllm"),
        "triton" => Some(crate::triton::GPU_PROGRAM),
        _ => None,
    }
}

/// The server engine module of engine `name`: the one table from names to translators.
pub fn server_engine(name: &str) -> Option<&'static dyn crate::server::ServerEngine> {
    Some(match name {
        "llamacpp" => &crate::llamacpp::LlamaCpp,
        "triton" => &crate::triton::Triton,
        "vllm" => &crate::vllm::Vllm,
        "trtllm" => &crate::trtllm::TrtLlm,
        "tgi" => &crate::tgi::Tgi,
        "sglang" => &crate::sglang::Sglang,
        _ => return None,
    })
}

/// The versions engine `name`'s translator supports (`None` for the sim, which has no
/// translator). ONNX Runtime's are those of its execution-provider options.
pub fn supported_versions(name: &str) -> Option<&'static [crate::version::VersionRange]> {
    match name {
        "onnxruntime" => Some(crate::onnxruntime::providers::SUPPORTED),
        other => server_engine(other).map(|e| e.supported_versions()),
    }
}

/// [`find_engine_binary`], or an error naming the engine (`label`), where it looked, and how to
/// install it (`hint`).
pub fn require_engine_binary(
    engines_dir: &std::path::Path,
    binary: &str,
    label: &str,
    hint: &str,
) -> Result<PathBuf, String> {
    find_engine_binary(engines_dir, binary).ok_or_else(|| {
        format!(
            "{label} is not installed: no `{binary}` in {} or on PATH ({hint})",
            engines_dir.join("bin").display()
        )
    })
}

/// An engine executable: in `<engines dir>/bin` (what the setup script installs), else on `PATH`.
pub fn find_engine_binary(engines_dir: &std::path::Path, name: &str) -> Option<PathBuf> {
    let local = engines_dir.join("bin").join(name);
    if local.is_file() {
        return Some(local);
    }
    find_on_path(name)
}

/// The first executable called `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
