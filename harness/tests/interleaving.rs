//! A gate trial that must measure the baseline and the combos itself (a partitioned run put the
//! combo trials elsewhere) interleaves their launches; its records are identical to those the
//! combo trials would have written, faults included, so it never matters which trial measured.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use l1_harness::record::{self, MeasurementRecord, RunDir};
use l1_harness::suite::{self, Settings};

const SPEC: &str = "kind: sweep
name: interleave-check
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [interactive-single]
space:
  dims:
    cuda_graph: [\"off\", per-shape]
  knobs:
    fault: [none, crash, errors]
measure: { reps: 7, launches: 3, warmup_reps: 1 }
gates:
  - { method: manual }
";

fn records(dir: &Path) -> BTreeMap<String, (Vec<l1_engines::Metrics>, Option<String>, u32)> {
    let run = RunDir::new(dir, &record::run_id());
    std::fs::read_dir(run.path.join("measurements"))
        .unwrap()
        .flatten()
        .map(|e| {
            let r: MeasurementRecord = record::read_json(&e.path()).unwrap().unwrap();
            (r.key.clone(), (r.reps, r.error, r.launches))
        })
        .collect()
}

#[test]
fn interleaved_measurements_equal_separate_ones() {
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let dir = std::env::temp_dir().join(format!("l1-interleave-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    std::fs::write(dir.join("specs/interleave-check.yaml"), SPEC).unwrap();
    let settings = |t: &str| Settings::new(root.clone().as_ref(), dir.join("specs"), dir.join(t));
    // A: only the gate runs, so it measures everything itself, interleaved.
    let (trials, errors) = suite::plan(&settings("a"), None);
    assert!(errors.is_empty(), "{errors:?}");
    let gate = trials
        .into_iter()
        .find(|t| t.name.ends_with("::gate"))
        .unwrap();
    let _ = gate.execute();
    // B: every combo trial measures its own, then the gate.
    let (trials, _) = suite::plan(&settings("b"), None);
    for t in trials {
        let _ = t.execute();
    }
    let (a, b) = (records(&dir.join("a")), records(&dir.join("b")));
    assert_eq!(a.len(), 6, "6 combos, one of which is the baseline");
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (key, ra) in &a {
        assert_eq!(
            ra, &b[key],
            "measurement {key} differs between interleaved and separate"
        );
    }
    assert!(
        a.values()
            .any(|r| r.1.as_deref().is_some_and(|e| e.contains("crashed")))
    );
    assert!(
        a.values()
            .any(|r| r.1.as_deref().is_some_and(|e| e.contains("error rate")))
    );
    assert!(
        a.values()
            .any(|r| r.1.is_none() && r.0.len() == 7 && r.2 == 3)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
