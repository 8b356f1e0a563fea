//! Test support shared by the engine modules' unit tests: a scratch target (model, hardware and
//! workload profiles in a temporary engines directory) and combos from pairs.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

use std::path::PathBuf;

use crate::launch::LaunchTarget;
use crate::translate::check_supported;
use crate::version::VersionRange;
use crate::{Combo, HardwareProfile, ModelProfile, Workload};

/// Each `(dimension, value)` on its own is refused by `err` with the shared message of
/// [`crate::translate::unsupported`]: ``engine `E` has no translation for D = `V` (accepted: …``.
pub fn assert_each_untranslated(
    engine: &str,
    cases: &[(&str, &str)],
    err: impl Fn(&[(&str, &str)]) -> String,
) {
    for &(dim, value) in cases {
        let e = err(&[(dim, value)]);
        assert!(
            e.starts_with(&format!(
                "engine `{engine}` has no translation for {dim} = `{value}` (accepted: "
            )),
            "{e}"
        );
    }
}

/// The `bad` versions are refused naming the engine, the version and `range` (as the error
/// prints the supported ranges); the `ok` ones are accepted.
pub fn assert_version_range(
    engine: &str,
    supported: &[VersionRange],
    range: &str,
    bad: &[&str],
    ok: &[&str],
) {
    for bad in bad {
        let e = check_supported(engine, bad, supported)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(engine) && e.contains(bad) && e.contains(range),
            "{e}"
        );
    }
    for ok in ok {
        assert!(check_supported(engine, ok, supported).is_ok(), "{ok}");
    }
}

/// A combo from `(dimension, value)` and `(knob, value)` pairs.
pub fn combo(dims: &[(&str, &str)], knobs: &[(&str, &str)]) -> Combo {
    Combo {
        dims: dims
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        knobs: knobs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Everything a [`LaunchTarget`] borrows, owned: build one, adjust its fields, then call
/// [`Scratch::target`].
pub struct Scratch {
    pub dir: PathBuf,
    pub model_name: String,
    pub model: ModelProfile,
    pub hardware: HardwareProfile,
    pub workload: Workload,
    pub version: String,
    pub cuda_visible_devices: Option<String>,
}

impl Scratch {
    /// A tiny model (`tiny`: 2 layers, hidden 256, 4 heads / 2 KV heads) on the CPU host, and a
    /// workload of 32 tokens in, 16 out, 2 in flight. `name` keeps test directories apart.
    pub fn cpu(name: &str, version: &str) -> Self {
        // Not emptied first: tests of one process may share a name (and so the directory).
        let dir = l1_testkit::scratch::path(&format!("{name}-unit"));
        std::fs::create_dir_all(dir.join("models")).unwrap();
        let model: ModelProfile = serde_json::from_value(serde_json::json!({
            "display_name": "t", "params_b": 0.001, "layers": 2, "hidden_size": 256,
            "attention_heads": 4, "kv_heads": 2, "head_dim": 64, "intermediate_size": 512,
            "vocab_size": 512, "max_context": 4096
        }))
        .unwrap();
        let hardware: HardwareProfile = serde_json::from_value(serde_json::json!({
            "display_name": "cpu", "device": "cpu", "memory_gib": 24.0,
            "memory_bandwidth_gbps": 50.0, "peak_dense_tflops": {"fp32": 1.0},
            "noise_floor_cv": 0.05, "launch_cv": 0.05
        }))
        .unwrap();
        // From JSON, so fields added to Workload later keep their defaults here.
        let workload: Workload = serde_json::from_value(serde_json::json!({
            "description": "w", "input_tokens": {"fixed": 32}, "output_tokens": {"fixed": 16},
            "arrival": {"concurrency": 2}, "requests": 8, "max_error_rate": 0.0,
            "request_timeout_s": 10.0
        }))
        .unwrap();
        Self {
            dir,
            model_name: "tiny".into(),
            model,
            hardware,
            workload,
            version: version.into(),
            cuda_visible_devices: None,
        }
    }

    /// The same on an H100-class GPU (compute capability 9.0), as device `1`.
    pub fn gpu(name: &str, version: &str) -> Self {
        let mut s = Self::cpu(name, version);
        s.hardware = serde_json::from_value(serde_json::json!({
            "display_name": "NVIDIA H100", "device": "gpu", "compute_capability": "9.0",
            "memory_gib": 80.0, "memory_bandwidth_gbps": 3350.0,
            "peak_dense_tflops": {"bf16": 989.0, "fp16": 989.0, "fp8": 1979.0},
            "noise_floor_cv": 0.02, "launch_cv": 0.01
        }))
        .unwrap();
        s.cuda_visible_devices = Some("1".into());
        s
    }

    /// Create an (empty) model file or directory `models/<model_name><suffix>`.
    pub fn with_model_file(self, suffix: &str) -> Self {
        let p = self
            .dir
            .join("models")
            .join(format!("{}{suffix}", self.model_name));
        if suffix.ends_with("-hf") {
            std::fs::create_dir_all(&p).unwrap();
        } else {
            std::fs::write(&p, b"").unwrap();
        }
        self
    }

    /// The target for `combo`.
    pub fn target<'a>(&'a self, combo: &'a Combo) -> LaunchTarget<'a> {
        LaunchTarget {
            engines_dir: &self.dir,
            model_name: &self.model_name,
            model: &self.model,
            hardware: &self.hardware,
            workload: &self.workload,
            combo,
            version: &self.version,
            run_dir: &self.dir,
            tag: "t".into(),
            state_dir: &self.dir,
            cuda_visible_devices: self.cuda_visible_devices.clone(),
            seed: 0,
            launch: 0,
            startup_timeout: None,
        }
    }
}

/// The Python of venv `venv` under the engines directory, for tests that check generated
/// arguments with an engine's own code. `None` (after saying why) when it is not installed;
/// under `L1_REQUIRE_ENGINES=1` (CI) a missing venv fails the test instead of skipping it.
pub fn engine_python(venv: &str, installs: &str) -> Option<PathBuf> {
    installed(&PathBuf::from(venv).join("bin/python"), installs)
}

/// `rel` under the engines directory when it exists; else `None` after saying why, or a failure
/// under `L1_REQUIRE_ENGINES=1` (CI), where a missing engine must never pass as a skip.
pub fn installed(rel: &std::path::Path, installs: &str) -> Option<PathBuf> {
    let path = crate::launch::engines_dir().join(rel);
    if path.exists() {
        return Some(path);
    }
    l1_testkit::skip(&format!("no {} ({installs} installs it)", path.display()))
}
