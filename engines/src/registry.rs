//! The engine table: every engine l1 knows, registered once in [`ENGINES`], and lookups by name.
//!
//! What an engine *exposes* (dimensions, values, knobs, versions) is catalog data
//! (`catalogs/kernels.yaml`, section `engines`); what it *does* is its module's [`Engine`]
//! implementation (see `docs/src/contributing/adding-an-engine.md`). Nothing else in this crate dispatches on an
//! engine's name.

use std::path::{Path, PathBuf};

pub use crate::engine::{Engine, EngineKind};
use crate::error::{EngineError, LaunchError};
use crate::launch::{Launch, LaunchTarget};
use crate::server::Server;

/// Every engine, in one table (the order is the order `l1 catalog` and errors list them in).
pub static ENGINES: &[&dyn Engine] = &[
    &crate::sim::SimEngine,
    &Server {
        module: &crate::vllm::Vllm,
        // The setup script's wrapper; a normal (GPU) install's `vllm` on PATH also works.
        binary: crate::vllm::WRAPPER,
        fallback: Some("vllm"),
    },
    &Server {
        module: &crate::tgi::Tgi,
        binary: crate::tgi::PROGRAM,
        fallback: None,
    },
    &Server {
        module: &crate::trtllm::TrtLlm,
        binary: crate::trtllm::PROGRAM,
        fallback: None,
    },
    &Server {
        module: &crate::triton::Triton,
        // pytriton's bundled tritonserver with the toy model (engines/src/triton.rs); on a GPU
        // host NVIDIA's own `tritonserver`.
        binary: crate::triton::PROGRAM,
        fallback: Some(crate::triton::GPU_PROGRAM),
    },
    &Server {
        module: &crate::sglang::Sglang,
        // The wheel's console script (0.5.5+); its interpreter runs `-m sglang.launch_server`.
        binary: "sglang",
        fallback: None,
    },
    &Server {
        module: &crate::llamacpp::LlamaCpp,
        binary: "llama-server",
        fallback: None,
    },
    &crate::onnxruntime::launch::OnnxRuntime,
];

/// Look an engine up by name.
pub fn engine(name: &str) -> Option<&'static dyn Engine> {
    ENGINES.iter().copied().find(|e| e.name() == name)
}

/// [`engine`], or [`EngineError::Unknown`].
pub fn require(name: &str) -> Result<&'static dyn Engine, EngineError> {
    engine(name).ok_or_else(|| EngineError::Unknown {
        engine: name.to_string(),
    })
}

/// Start a launch of engine `name` for `target` ([`Engine::start`]).
pub fn start(name: &str, target: &LaunchTarget<'_>) -> Result<Box<dyn Launch>, LaunchError> {
    require(name)?.start(target)
}

/// The installed version of engine `name` ([`Engine::installed_version`]).
pub fn installed_version(name: &str, engines_dir: &Path) -> Result<String, EngineError> {
    require(name)?.installed_version(engines_dir)
}

/// The file that identifies the installed engine `name` ([`Engine::installed_program`]).
pub fn installed_program(name: &str, engines_dir: &Path) -> Result<PathBuf, EngineError> {
    require(name)?.installed_program(engines_dir)
}

/// The versions engine `name`'s translator supports ([`Engine::supported_versions`]).
pub fn supported_versions(name: &str) -> Option<&'static [crate::version::VersionRange]> {
    engine(name)?.supported_versions()
}

/// Kept at their old path while the harness imports them from here.
pub use crate::install::{find_engine_binary, find_on_path};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::{Scratch, combo};

    #[test]
    fn every_engine_is_registered_once_and_found_by_name() {
        let names: Vec<&str> = ENGINES.iter().map(|e| e.name()).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        for name in names {
            assert_eq!(engine(name).map(|e| e.name()), Some(name));
        }
        assert!(engine("nope").is_none());
        assert_eq!(
            require("nope").unwrap_err().to_string(),
            "engine `nope`: this build has no launcher for it"
        );
    }

    #[test]
    fn properties_follow_the_kind_not_the_name() {
        for e in ENGINES {
            let sim = e.kind() == EngineKind::Simulated;
            assert_eq!(e.simulated(), sim, "{}", e.name());
            assert_eq!(e.needs_device(), !sim, "{}", e.name());
            assert_eq!(e.concurrent_launches(), sim, "{}", e.name());
            assert_eq!(e.calibratable(), sim, "{}", e.name());
            assert_eq!(e.supported_versions().is_none(), sim, "{}", e.name());
        }
        let sim = engine("sim").unwrap();
        assert!(sim.availability(Path::new("/nonexistent")).is_ok());
        assert!(matches!(
            sim.installed_version(Path::new("/nonexistent")),
            Err(EngineError::BuiltIn { .. })
        ));
        let fallbacks: Vec<(&str, Option<&str>)> = ENGINES
            .iter()
            .map(|e| (e.name(), e.fallback_binary()))
            .filter(|(_, f)| f.is_some())
            .collect();
        assert_eq!(
            fallbacks,
            [
                ("vllm", Some("vllm")),
                ("triton", Some(crate::triton::GPU_PROGRAM))
            ]
        );
    }

    #[test]
    fn the_sim_starts_through_the_table_as_its_own_launch_does() {
        let s = Scratch::cpu("registry-sim", "1.0");
        let c = combo(&[], &[]);
        let mut target = s.target(&c);
        target.seed = 7;
        target.launch = 1;
        let mut launch = start("sim", &target).unwrap();
        assert_eq!(launch.engine_version(), None, "the sim reports no version");
        let sim_target = crate::sim::SimTarget {
            model: &s.model,
            hardware: &s.hardware,
            workload: &s.workload,
        };
        let mut direct = crate::sim::launch(&sim_target, &c, 8).unwrap();
        for i in 0..3 {
            assert_eq!(launch.rep(i).unwrap(), direct.rep(i).unwrap(), "rep {i}");
        }
        let faulty = combo(&[], &[("fault", "launch")]);
        let e = start("sim", &s.target(&faulty)).err().unwrap();
        assert!(matches!(e, LaunchError::Sim(_)), "{e}");
        assert!(
            e.to_string()
                .starts_with("engine failed to launch: engine exited during startup: "),
            "{e}"
        );
    }

    #[test]
    fn a_missing_server_engine_says_where_it_looked() {
        let program = crate::tgi::PROGRAM;
        if crate::install::find_on_path(program).is_some() {
            return; // installed on this host: nothing to check
        }
        let s = Scratch::cpu("registry-missing", "3.3");
        let e = engine("tgi").unwrap().availability(&s.dir).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "engine `tgi` is not installed (`{program}` not found in {} or on PATH; see scripts/setup-engines.sh)",
                s.dir.join("bin").display()
            )
        );
    }

    /// A fake `llama-server` in the scratch engines directory that prints `version_line`.
    fn fake_llama_server(s: &Scratch, version_line: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let bin = s.dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let path = bin.join("llama-server");
        std::fs::write(&path, format!("#!/bin/sh\necho '{version_line}'\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn the_installed_version_is_read_and_a_different_one_is_refused() {
        let s = Scratch::cpu("registry-version", "b1");
        let program = fake_llama_server(&s, "version: 4242 (abcdef)");
        assert_eq!(installed_program("llamacpp", &s.dir).unwrap(), program);
        assert_eq!(installed_version("llamacpp", &s.dir).unwrap(), "4242");
        let c = combo(&[], &[]);
        let e = start("llamacpp", &s.target(&c)).err().unwrap();
        match &e {
            LaunchError::VersionMismatch {
                engine,
                installed,
                wanted,
                program: p,
            } => {
                assert_eq!(
                    (engine.as_str(), installed.as_str(), wanted.as_str()),
                    ("llamacpp", "4242", "b1")
                );
                assert_eq!(p, &program);
            }
            other => panic!("expected a version mismatch, got {other}"),
        }
        assert_eq!(
            e.to_string(),
            format!(
                "engine `llamacpp`: the installed version is `4242` ({}), but this target is for `b1`; name the installed version in the spec or install that one",
                program.display()
            )
        );
    }

    #[test]
    fn an_engine_that_prints_no_version_says_what_it_ran() {
        let s = Scratch::cpu("registry-noversion", "b1");
        let program = fake_llama_server(&s, "hello");
        let e = installed_version("llamacpp", &s.dir).unwrap_err();
        assert!(matches!(e, EngineError::NoVersion { .. }), "{e}");
        assert!(
            e.to_string().starts_with(&format!(
                "`{} --version` printed no `version:` line: ",
                program.display()
            )),
            "{e}"
        );
    }
}
