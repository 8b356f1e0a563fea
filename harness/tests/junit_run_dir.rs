//! JUnit XML of a hand-made run directory, through the one report model: the run is read once
//! ([`report_model::build_from`]), JUnit is built from the report's trial listing.

use l1_harness::expand::TargetId;
use l1_harness::gates::{GateVerdict, Row};
use l1_harness::record::{self, RunDir};
use l1_harness::record::{MeasurementRecord, TrialRecord};
use l1_harness::report_model;

fn target(engine: &str) -> TargetId {
    TargetId {
        engine: engine.into(),
        version: "1.0".into(),
        model: "m".into(),
        hardware: "h".into(),
        workload: "w".into(),
    }
}

fn trial(engine: &str, case: &str, kind: &str, passed: bool) -> TrialRecord {
    let t = target(engine);
    TrialRecord {
        schema_version: record::RECORD_SCHEMA_VERSION,
        run_id: "fixture".into(),
        name: format!("sim::s::{t}::{case}"),
        spec: "s".into(),
        target: t,
        kind: kind.into(),
        passed,
        message: format!("sim::s::{engine}::{case}: measured: 3 reps"),
        measurement: None,
        gates: Vec::new(),
        simulated: engine == "sim",
        duration_s: 0.5,
        used: None,
    }
}

fn measurement(key: &str, engine_version: Option<&str>) -> MeasurementRecord {
    let simulated = engine_version.is_none();
    MeasurementRecord {
        schema_version: record::RECORD_SCHEMA_VERSION,
        key: key.into(),
        run_id: "fixture".into(),
        spec: "s".into(),
        target: target("sim"),
        combo: l1_engines::Combo::default(),
        combo_hash: "c".into(),
        catalog_snapshot: "v1-abc".into(),
        harness_version: "0.1.0".into(),
        simulated,
        seed: 1,
        measured_by: "t".into(),
        started_unix_s: 0.0,
        duration_s: 0.5,
        warmup_reps: 0,
        launches: 1,
        looks: 1,
        stopped: None,
        reps: Vec::new(),
        error: None,
        notes: Vec::new(),
        engine_version: engine_version.map(Into::into),
        fingerprints: None,
        cache_hit: None,
        probes: None,
    }
}

/// A hand-made run directory: passed, failed, ignored and simulated trials, a missing
/// measurement, a truncated and a foreign record, a stray file.
fn fixture(root: &std::path::Path) -> RunDir {
    let _ = std::fs::remove_dir_all(root);
    let dir = RunDir::new(root, "fixture");
    let mut base = trial("sim", "baseline", "baseline", true);
    base.measurement = Some("m0".into());
    let mut combo = trial("sim", "attn=flash", "combo", true);
    combo.measurement = Some("m1".into());
    let mut gate = trial("sim", "gate", "gate", false);
    gate.message =
        "sim::s::sim@1.0::m::h::w::gate: gates failed\n\u{1b}[31mtopk5 failed\u{1b}[0m: \
                    the winner <attn=flash> is not within 5 % of the best"
            .into();
    gate.gates = vec![GateVerdict {
        method: "topk5".into(),
        passed: false,
        message: "topk5 failed: the winner <attn=flash> is not within 5 % of the best".into(),
        winner: Some("attn=flash".into()),
        p_best: Some(0.5),
        established_winner: None,
        inconclusive: None,
        checks: Vec::new(),
        rows: vec![Row {
            combo: "attn=flash".into(),
            metric: "output_tokens_per_s".into(),
            trimmed_mean: 101.5,
            improvement: Some(1.015),
            improvement_ci: Some((0.99, 1.04)),
            yuen_p: Some(0.25),
            adjusted_p: Some(0.5),
            hedges_g: Some(0.4),
            mde: None,
            reps: 3,
            on_frontier: true,
            note: String::new(),
            fidelity: None,
        }],
    }];
    // Output fidelity: one combo passes, one fails by tokens only (no logprobs).
    let fid = |combo: &str, passed: bool| {
        use l1_harness::fidelity::{ComboFidelity, Measures, Precision};
        let precision = if passed {
            Precision::Bf16
        } else {
            Precision::Q4
        };
        ComboFidelity {
            combo: combo.into(),
            precision,
            limits: precision.defaults(),
            measures: Measures {
                probes: 8,
                exact_match: Some(if passed { 1.0 } else { 0.5 }),
                matched_prefix: Some(if passed { 1.0 } else { 0.695 }),
                mean_abs_logprob_delta: passed.then_some(0.0032),
                topk_js_divergence: passed.then_some(0.0001),
                logprobs: Some(if passed {
                    l1_engines::probe::LogprobSupport::TopK
                } else {
                    l1_engines::probe::LogprobSupport::None
                }),
                ..Measures::default()
            },
            passed,
            failures: if passed {
                Vec::new()
            } else {
                vec!["matched_prefix 0.695 < 0.750".into()]
            },
            notes: Vec::new(),
        }
    };
    gate.gates.push(GateVerdict {
        method: "fidelity".into(),
        passed: false,
        message: "fidelity failed: 1 of 2 combos change the model's answers".into(),
        winner: None,
        p_best: None,
        established_winner: None,
        inconclusive: None,
        checks: Vec::new(),
        rows: [("attn=flash", true), ("kv=q4_0", false)]
            .into_iter()
            .map(|(c, ok)| Row {
                combo: c.into(),
                metric: "fidelity".into(),
                trimmed_mean: if ok { 1.0 } else { 0.5 },
                improvement: None,
                improvement_ci: None,
                yuen_p: None,
                adjusted_p: None,
                hedges_g: None,
                mde: None,
                reps: 8,
                on_frontier: false,
                note: String::new(),
                fidelity: Some(fid(c, ok)),
            })
            .collect(),
    });
    let mut real = trial("vllm", "baseline", "baseline", true);
    real.measurement = Some("m2".into());
    let mut lost = trial("vllm", "kv=paged", "combo", true);
    lost.measurement = Some("gone".into());
    for t in [&base, &combo, &gate, &real, &lost] {
        dir.write_trial(t).expect("write trial");
    }
    for (k, v) in [("m0", None), ("m1", None), ("m2", Some("0.32.0"))] {
        let mut m = measurement(k, v);
        m.fingerprints = Some(record::Fingerprints {
            hardware_fingerprint: "hw-0123abcd".into(),
            ..Default::default()
        });
        if k == "m1" {
            m.cache_hit = Some(record::CacheHit {
                from_run: "nightly-1".into(),
                from_key: "m1".into(),
                measured_unix_s: 0.0,
            });
        }
        record::write_json_atomic(&dir.measurement_path(k), &m).expect("write measurement");
    }
    let trials = dir.path.join("trials");
    std::fs::write(
        trials.join("truncated.json"),
        "{\"schema_version\": 1, \"na",
    )
    .expect("w");
    std::fs::write(trials.join("foreign.json"), "{\"hello\": \"world\"}").expect("w");
    std::fs::write(trials.join("notes.txt"), "not a record").expect("w");
    std::fs::write(dir.measurement_path("orphan"), "[1, 2").expect("w");
    dir
}

#[test]
fn junit_for_a_hand_made_run_dir_matches_snapshot_and_schema() {
    let root = std::env::temp_dir().join(format!("l1-junit-{}", std::process::id()));
    let dir = fixture(&root);
    // The plan: the recorded trials were selected, three GPU trials ignored.
    let ignored = |leaf: &str| record::PlannedEntry {
        name: format!("gpu::s::vllm@1.0::m::l4::w::{leaf}"),
        status: record::PlanStatus::Ignored,
        ignored: Some("hardware `l4` is not present here".into()),
    };
    let mut trials: Vec<record::PlannedEntry> = ["baseline", "attn=flash", "gate"]
        .into_iter()
        .map(ignored)
        .collect();
    trials.extend(dir.trials().0.iter().map(|t| record::PlannedEntry {
        name: t.name.clone(),
        status: record::PlanStatus::Selected,
        ignored: None,
    }));
    dir.write_plan(
        "libtest-1",
        &record::PlanRecord {
            schema_version: record::RECORD_SCHEMA_VERSION,
            run_id: "fixture".into(),
            runner: "libtest".into(),
            pid: u32::MAX - 1,
            exe: String::new(),
            written_unix_s: 0.0,
            specs: "specs".into(),
            trials,
        },
    )
    .expect("write plan");
    let acc = l1_harness::accounting::Accounting::of(&dir);
    assert_eq!(acc.ignored_count(), 3);
    let report = report_model::build_from(&dir, &acc, &report_model::Sources::default());
    let problems = report.records.problems();
    let run = l1_reports::junit::from_report(&report);
    // Every bad file is named, none is skipped silently.
    for f in [
        "trials/truncated.json",
        "trials/foreign.json",
        "trials/notes.txt",
        "measurements/orphan.json",
        "measurements/gone.json",
    ] {
        assert!(
            problems.iter().any(|p| p.starts_with(f)),
            "{f}: {problems:?}"
        );
    }
    let xml = l1_reports::junit::render_junit(&run).expect("render");
    let _ = std::fs::remove_dir_all(&root);
    assert!(xml.contains("<failure message=\"topk5 failed: the winner &lt;attn=flash&gt;"));
    // One skipped testcase per ignored trial, in its target's suite.
    assert_eq!(
        xml.matches("<skipped message=\"ignored: hardware `l4` is not present here")
            .count(),
        3,
        "{xml}"
    );
    assert!(!xml.contains('\u{1b}'));
    assert!(xml.contains("name=\"attn=flash.cache_hit\" value=\"true (run nightly-1, m1)\""));
    assert!(xml.contains("name=\"baseline.cache_hit\" value=\"false\""));
    assert!(xml.contains("name=\"hardware_fingerprint\" value=\"hw-0123abcd\""));
    // Fidelity: per combo pass/FAIL and its measures; fidelity rows are not a speed metric.
    for p in [
        "name=\"attn=flash.fidelity\" value=\"pass\"",
        "name=\"attn=flash.fidelity.exact_match\" value=\"1.000000\"",
        "name=\"attn=flash.fidelity.logprob_delta\" value=\"0.003200\"",
        "name=\"attn=flash.fidelity.topk_js\" value=\"0.000100\"",
        "name=\"kv=q4_0.fidelity\" value=\"FAIL\"",
        "name=\"kv=q4_0.fidelity.matched_prefix\" value=\"0.695000\"",
        "name=\"kv=q4_0.fidelity.failures\" value=\"matched_prefix 0.695 &lt; 0.750\"",
    ] {
        assert!(xml.contains(p), "{p} missing:\n{xml}");
    }
    assert!(!xml.contains(".fidelity.trimmed_mean"), "{xml}");
    l1_reports::junit::assert_snapshot(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../reports/tests/snapshots/run-dir.junit.xml"),
        &xml,
    );
    l1_reports::junit::assert_valid_junit(&xml);
}
