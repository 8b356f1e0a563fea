//! One engine launch: started, warmed up, then asked for reps. The simulated engine, server
//! engines (a process per launch, driven over HTTP) and in-process engines all implement
//! [`Launch`], so the harness measures them through one path.

use std::path::{Path, PathBuf};

use crate::{Combo, HardwareProfile, Metrics, ModelProfile, Workload};

/// A started engine.
pub trait Launch {
    /// Run rep `index` (warm-up reps included: the caller discards them) and return its metrics.
    fn rep(&mut self, index: u32) -> Result<Metrics, String>;
    /// What the launch wants recorded: startup time, engine version, command line, log path,
    /// delivered-load warnings.
    fn notes(&self) -> Vec<String> {
        Vec::new()
    }
}

impl Launch for crate::sim::SimLaunch {
    fn rep(&mut self, index: u32) -> Result<Metrics, String> {
        crate::sim::SimLaunch::rep(self, index).map_err(|e| e.to_string())
    }
}

/// The default home of installed engines and their test models: `L1_ENGINES_DIR`, else
/// `~/.cache/l1/engines` (what `scripts/setup-engines.sh` fills). Code below the harness's
/// settings takes the directory as a parameter.
pub fn engines_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("L1_ENGINES_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache").join("l1").join("engines")
}

/// Everything a real engine launch needs to know.
#[derive(Clone, Debug)]
pub struct RealTarget<'a> {
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
    /// Seed of the request sequence (prompts and lengths).
    pub seed: u64,
    /// Overrides the engine's readiness timeout.
    pub startup_timeout: Option<std::time::Duration>,
}

impl RealTarget<'_> {
    /// The model file or directory with extension `ext` (`gguf`, `onnx`, `hf`).
    pub fn model_file(&self, ext: &str) -> Result<PathBuf, String> {
        let dir = self.engines_dir.join("models");
        let p = if ext == "hf" {
            dir.join(format!("{}-hf", self.model_name))
        } else {
            dir.join(format!("{}.{ext}", self.model_name))
        };
        if p.exists() {
            Ok(p)
        } else {
            Err(format!(
                "model `{}` has no {ext} file at {} (run scripts/setup-engines.sh, or set L1_ENGINES_DIR)",
                self.model_name,
                p.display()
            ))
        }
    }

    /// The launch's log file and working directory.
    pub fn log_and_workdir(&self) -> (PathBuf, PathBuf) {
        let base = self.run_dir.join("engines").join(&self.tag);
        (base.join("engine.log"), base.join("wd"))
    }
}
