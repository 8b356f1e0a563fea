//! The `pareto` gate `against: stored` through the whole path: a seeded sim sweep run in child
//! processes (as nextest or a CI job starts them) against one scratch store. The first run has no
//! stored `main` run to compare with and fails saying so; a run labelled `main` stores the
//! reference frontier; a pull request measuring the same space covers every point of it, one whose
//! space drops main's throughput-best combo loses that point and fails naming it.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use common::{child_command, run_child};
use l1_harness::record::RunDir;

/// fp8 is far faster than bf16 on the sim, so it is main's throughput-best frontier point.
const SPEC: &str = "kind: sweep
name: front
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [chat-short]
space:
  dims:
    activation_dtype: [bf16, fp8_e4m3]
measure: { reps: 7 }
gates:
  - { method: pareto, against: stored, label: main, epsilon: 0.05 }
";

#[test]
fn a_pull_request_that_drops_mains_best_combo_loses_its_frontier_point() {
    let dir = l1_testkit::fresh_dir("pareto-stored");
    let _cleanup = common::RemoveOnDrop(dir.clone());
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    let write = |spec: &str| std::fs::write(dir.join("specs/front.yaml"), spec).unwrap();
    let run = |run_id: &str, env: &[(&str, &str)]| -> (bool, String) {
        let mut cmd = child_command(&dir, run_id);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_child(cmd, run_id);
        let (trials, bad) = RunDir::new(&dir.join("target"), run_id).trials();
        assert!(bad.is_empty(), "{bad:?}");
        let g = trials.into_iter().find(|t| t.kind == "gate").unwrap();
        (g.passed, g.message)
    };
    write(SPEC);
    // Nothing labelled `main` is stored yet: nothing to judge against, a clear failure.
    let (ok, msg) = run("main-1", &[("L1_RUN_LABEL", "main")]);
    assert!(!ok, "{msg}");
    assert!(
        msg.contains("pareto against stored `main` results FAILED: no run labelled `main`"),
        "{msg}"
    );
    // The same space on a pull request: every point of main's frontier is covered.
    let (ok, msg) = run("pr-same", &[("L1_RUN_LABEL", "pr")]);
    assert!(ok, "{msg}");
    assert!(
        msg.contains("(run main-1) passed (fail_on_regression)"),
        "{msg}"
    );
    assert!(!msg.contains("LOST"), "{msg}");
    // The pull request drops fp8: main's throughput-best point is lost, and named.
    write(&SPEC.replace("[bf16, fp8_e4m3]", "[bf16]"));
    let (ok, msg) = run("pr-drop", &[("L1_RUN_LABEL", "pr")]);
    assert!(!ok, "{msg}");
    assert!(msg.contains("(run main-1) FAILED"), "{msg}");
    let lost: Vec<&str> = msg.lines().filter(|l| l.contains("LOST")).collect();
    assert_eq!(lost.len(), 1, "{msg}");
    assert!(lost[0].contains("fp8_e4m3"), "{msg}");
    assert!(lost[0].contains("Holm-adjusted p="), "{msg}");
    // A pull request is judged against the newest `main` run, never another pull request's.
    assert!(!msg.contains("run pr-same"), "{msg}");
}
