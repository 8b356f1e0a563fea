//! Early termination, end to end and in distribution.
//!
//! - The bundled `sim-early-stop` spec: clear winners and losers stop at an early planned look,
//!   the baseline gets every rep, and the gate passes at Pocock's per-look level.
//! - On the sim engine's known truth (fixed seeds): the group-sequential design keeps false
//!   "better" claims near α/2 with no true difference, and at a 3× noise-floor win it uses far
//!   fewer reps than its maximum while finding the win more often than the fixed 7-rep design.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

use std::path::Path;

use l1_harness::accuracy::{self, Scenario};
use l1_harness::profiles::Catalogs;
use l1_harness::record::{self, MeasurementRecord, RunDir};
use l1_harness::suite::{self, Settings};

#[test]
fn bundled_spec_stops_clear_cases_early() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target_dir = std::env::temp_dir().join(format!("l1-early-{}", std::process::id()));
    let settings = Settings::new(
        root.to_path_buf().as_ref(),
        root.join("specs/sim/sim-early-stop.yaml"),
        target_dir.clone(),
    );
    let (trials, errors) = suite::plan(&settings, None);
    assert!(errors.is_empty(), "{errors:?}");
    for t in trials {
        let name = t.name.clone();
        t.execute().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let run = RunDir::new(&target_dir, &record::run_id());
    let mut records: Vec<MeasurementRecord> = Vec::new();
    for e in std::fs::read_dir(run.path.join("measurements"))
        .unwrap()
        .flatten()
    {
        records.push(record::read_json(&e.path()).unwrap().unwrap());
    }
    assert_eq!(
        records.len(),
        6,
        "5 combos + the baseline (which is also a combo of the space)"
    );
    let stopped: Vec<&MeasurementRecord> = records.iter().filter(|r| r.stopped.is_some()).collect();
    assert!(
        stopped.len() >= 3,
        "clear winners and losers should stop early: {:?}",
        records
            .iter()
            .map(|r| (r.reps.len(), r.stopped))
            .collect::<Vec<_>>()
    );
    assert!(stopped.iter().all(|r| r.reps.len() < 15 && r.looks == 5));
    assert!(
        records.iter().any(|r| r.reps.len() == 15),
        "the baseline gets every rep"
    );
    let _ = std::fs::remove_dir_all(&target_dir);
}

#[test]
fn sequential_design_saves_reps_without_raising_false_claims() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cats = Catalogs::load(root).unwrap();
    let (m, h, w) = (
        &cats.models["llama-3.1-8b"],
        &cats.hardware["h100-sxm"],
        &cats.workloads["interactive-single"],
    );
    let n = 1000;
    let tolerance = 3.0 * (0.025f64 * 0.975 / n as f64).sqrt();
    let target = l1_engines::sim::SimTarget {
        model: m,
        hardware: h,
        workload: w,
    };
    let null = accuracy::run_sequential(&target, "normal", 0.0, (3, 15), n, 42).unwrap();
    assert!(
        null.yuen <= 0.025 + tolerance,
        "false claims {:.4}",
        null.yuen
    );
    assert!(null.gate <= 0.025, "gate false claims {:.4}", null.gate);
    let win = accuracy::run_sequential(&target, "normal", 3.0, (3, 15), n, 43).unwrap();
    let fixed = accuracy::run(
        m,
        h,
        w,
        &Scenario {
            noise: "normal",
            effect_floors: 3.0,
            reps: 7,
            launches: 1,
        },
        n,
        43,
    )
    .unwrap();
    assert!(
        win.yuen_mean_reps < 7.0,
        "mean reps {:.2} at a 3× floor win",
        win.yuen_mean_reps
    );
    assert!(
        win.yuen >= fixed.yuen - 0.02,
        "sequential power {:.3} vs fixed-7 {:.3}",
        win.yuen,
        fixed.yuen
    );
}
