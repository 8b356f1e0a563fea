//! The `drift` gate against a recorded calibration: missing calibration is a clear error, no
//! drift passes, 5–15 % passes with a warning, more than 15 % fails.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

use std::path::{Path, PathBuf};

use l1_harness::calibration;
use l1_harness::detect::Detected;
use l1_harness::profiles::Catalogs;
use l1_harness::record::{self, RunDir};
use l1_harness::suite::{self, Settings};

const SPEC: &str = "kind: sweep
name: drift-check
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [interactive-single]
space:
  pins: { attention_backend: flash_attn_v3 }
gates:
  - { method: drift }
";

fn gate_result(settings: &Settings) -> (Result<(), String>, String) {
    let (trials, errors) = suite::plan(settings, None);
    assert!(errors.is_empty(), "{errors:?}");
    let gate = trials
        .into_iter()
        .find(|t| t.name.ends_with("::gate"))
        .unwrap();
    let name = gate.name.clone();
    let result = gate.execute();
    let run = RunDir::new(&settings.target_dir, &record::run_id());
    let message = run
        .trials()
        .0
        .into_iter()
        .find(|r| r.name == name)
        .map(|r| r.message)
        .unwrap_or_default();
    (result, message)
}

#[test]
fn drift_gate_follows_the_calibration() {
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let dir = std::env::temp_dir().join(format!("l1-drift-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    std::fs::write(dir.join("specs/drift-check.yaml"), SPEC).unwrap();
    let settings = Settings::new(root.clone().as_ref(), dir.join("specs"), dir.join("target"));
    let (r, _) = gate_result(&settings);
    let err = r.unwrap_err();
    assert!(
        err.contains("no calibration of the baseline is recorded") && err.contains("l1 calibrate"),
        "{err}"
    );

    // Calibrate the baseline as `l1 calibrate` does.
    let cats = Catalogs::load(&root).unwrap();
    let target = l1_harness::expand::TargetId {
        engine: "sim".into(),
        version: "1.0".into(),
        model: "llama-3.1-8b".into(),
        hardware: "h100-sxm".into(),
        workload: "interactive-single".into(),
    };
    let detected = Detected::detect(&cats.hardware);
    let fp = calibration::fingerprint("h100-sxm", &detected, "sim");
    let mut baseline = l1_engines::Combo::default();
    for (dim, v) in [
        ("activation_dtype", "bf16"),
        ("attention_backend", "flash_attn_v3"),
        ("cuda_graph", "per-shape"),
        ("fusion_strategy", "conservative"),
        ("kv_cache_dtype", "auto"),
        ("kv_layout", "paged"),
        ("matmul_path", "cublas"),
    ] {
        baseline.dims.insert(dim.into(), v.into());
    }
    // The spec pins attention to fa3, but the baseline is the engine default (fa2).
    baseline
        .dims
        .insert("attention_backend".into(), "flash_attn_v2".into());
    let c = calibration::calibrate_sim(
        &cats.models["llama-3.1-8b"],
        &cats.hardware["h100-sxm"],
        &cats.workloads["interactive-single"],
        &target,
        &baseline,
        &fp,
        6,
        7,
        1,
    )
    .unwrap();
    assert!(
        c.cv_within["output_tokens_per_s"] > 0.005 && c.cv_within["output_tokens_per_s"] < 0.06
    );
    calibration::save(&settings.target_dir, &c).unwrap();
    let (r, msg) = gate_result(&settings);
    assert!(r.is_ok(), "{r:?}");
    assert!(msg.contains("no drift"), "{msg}");

    // The deployed combo is now 10 % slower than calibrated: a warning.
    let mut slower = c.clone();
    let tm = slower.trimmed_mean.get_mut("output_tokens_per_s").unwrap();
    *tm /= 0.9;
    calibration::save(&settings.target_dir, &slower).unwrap();
    let (r, msg) = gate_result(&settings);
    assert!(r.is_ok(), "{r:?}");
    assert!(msg.contains("minor drift (warning)"), "{msg}");

    // 20 % slower: significant, the gate fails with the numbers.
    let mut much = c.clone();
    *much.trimmed_mean.get_mut("output_tokens_per_s").unwrap() /= 0.8;
    calibration::save(&settings.target_dir, &much).unwrap();
    let (r, _) = gate_result(&settings);
    let err = r.unwrap_err();
    // About -20 % (the run's own noise moves it by a few percent either way).
    let pct: f64 = err
        .split("calibrated (")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or(f64::NAN);
    assert!(
        err.contains("significant drift (fails)") && (-30.0..-15.0).contains(&pct),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
