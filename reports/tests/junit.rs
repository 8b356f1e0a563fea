//! JUnit XML for fixed inputs: snapshot and schema validation (`xmllint`, skipped with a printed
//! reason when it is missing unless `L1_REQUIRE_ENGINES=1`).

use std::path::Path;

use l1_reports::junit::{
    JunitCase, JunitRun, JunitSuite, Outcome, assert_snapshot, assert_valid_junit,
    fidelity_properties, render_junit,
};
use l1_reports::model::FidelityCell;

fn case(name: &str, classname: &str, duration_s: f64, outcome: Outcome) -> JunitCase {
    JunitCase {
        name: name.into(),
        classname: classname.into(),
        duration_s,
        outcome,
        system_out: None,
        system_err: None,
    }
}

fn fidelity_pass() -> FidelityCell {
    FidelityCell {
        passed: true,
        gate: "fidelity".into(),
        enforced: true,
        precision: "bf16".into(),
        probes: 8,
        exact_match: Some(1.0),
        matched_prefix: Some(1.0),
        mean_abs_logprob_delta: Some(0.0032),
        topk_js_divergence: Some(0.0001),
        logprobs: Some("top_k".into()),
        ..FidelityCell::default()
    }
}

/// Fails, by tokens only (no logprobs), with markup in its failure text.
fn fidelity_fail() -> FidelityCell {
    FidelityCell {
        passed: false,
        precision: "q4".into(),
        exact_match: Some(0.5),
        matched_prefix: Some(0.695),
        logprobs: Some("none".into()),
        mean_abs_logprob_delta: None,
        topk_js_divergence: None,
        failures: vec!["matched_prefix 0.695 < 0.750 <kv=\"q4_0\">".into()],
        ..fidelity_pass()
    }
}

fn fixed_run() -> JunitRun {
    let t = "s::sim@1.0::m::h100::chat";
    let mut passed = case("baseline", t, 1.25, Outcome::Passed);
    passed.system_out = Some("measured: 5 reps, \u{1b}[1mtok_s\u{1b}[0m 100.0\u{7}".into());
    let gate = case(
        "gate",
        t,
        0.0004,
        Outcome::Failed {
            message: "topk5 failed: winner <attn=flash> & baseline \"differ\"".into(),
            detail: "topk5 failed: ...\n  attn=flash: +3.0 % (p=0.2)\u{0}\u{FFFF}".into(),
        },
    );
    let mut unread = case(
        "attn=flash",
        t,
        2.0,
        Outcome::Error {
            message: "measurements/abc.json: not a valid l1 record: EOF".into(),
            detail: String::new(),
        },
    );
    unread.system_err = Some("measurement abc unreadable".into());
    JunitRun {
        run_id: "fixed-1".into(),
        suites: vec![
            JunitSuite {
                name: t.into(),
                properties: [
                    ("simulated".to_string(), "true".to_string()),
                    ("winner".into(), "attn=flash".into()),
                ]
                .into_iter()
                .chain(fidelity_properties("attn=flash", &fidelity_pass()))
                .chain(fidelity_properties("kv=q4_0", &fidelity_fail()))
                .collect(),
                cases: vec![passed, gate, unread],
                system_err: None,
            },
            JunitSuite {
                name: "l1::ignored".into(),
                properties: vec![],
                cases: vec![case(
                    "hardware `l4` is not present here",
                    "l1::ignored",
                    0.0,
                    Outcome::Skipped {
                        message: "hardware `l4` is not present here (3 trials)".into(),
                    },
                )],
                system_err: Some("ignored.json records counts per reason".into()),
            },
        ],
    }
}

#[test]
fn junit_for_fixed_input_matches_snapshot_and_schema() {
    let xml = render_junit(&fixed_run()).expect("render");
    assert!(!xml.contains('\u{1b}') && !xml.contains('\u{0}') && !xml.contains('\u{7}'));
    assert!(xml.contains("&lt;attn=flash&gt; &amp; baseline"), "{xml}");
    for p in [
        "name=\"attn=flash.fidelity\" value=\"pass\"",
        "name=\"attn=flash.fidelity.exact_match\" value=\"1.000000\"",
        "name=\"attn=flash.fidelity.matched_prefix\" value=\"1.000000\"",
        "name=\"attn=flash.fidelity.logprob_delta\" value=\"0.003200\"",
        "name=\"attn=flash.fidelity.topk_js\" value=\"0.000100\"",
        "name=\"kv=q4_0.fidelity\" value=\"FAIL\"",
        "name=\"kv=q4_0.fidelity.logprobs\" value=\"none (tokens only)\"",
        "value=\"matched_prefix 0.695 &lt; 0.750 &lt;kv=&quot;q4_0&quot;&gt;\"",
    ] {
        assert!(xml.contains(p), "{p} missing:\n{xml}");
    }
    assert!(!xml.contains("kv=q4_0.fidelity.logprob_delta"), "{xml}");
    assert!(
        !xml.contains("<testsuites name=\"l1 run fixed-1\" tests=\"4\" skipped"),
        "{xml}"
    );
    assert_snapshot(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/fixed.junit.xml"),
        &xml,
    );
    assert_valid_junit(&xml);
}

#[test]
fn the_schema_check_rejects_what_the_schema_forbids() {
    // Guards against a validator that accepts anything: a testcase without a name is invalid.
    let bad = "<?xml version=\"1.0\"?><testsuites><testsuite name=\"s\" tests=\"1\" \
               failures=\"0\" errors=\"0\"><testcase classname=\"c\"/></testsuite></testsuites>";
    match l1_reports::junit::validate_with_xmllint(bad, Path::new(l1_reports::junit::JUNIT_XSD)) {
        Err(l1_reports::junit::ValidationError::Invalid { .. }) => {}
        Err(l1_reports::junit::ValidationError::NoXmllint)
            if std::env::var("L1_REQUIRE_ENGINES").as_deref() != Ok("1") =>
        {
            eprintln!("skipping: xmllint is not installed (libxml2-utils)");
        }
        other => panic!("expected a schema violation, got {other:?}"),
    }
}

/// A report whose trial listing holds every kind of case JUnit shows.
fn listed_report() -> l1_reports::model::RunReport {
    use l1_reports::model::{
        ComparisonRow, GateReport, MeasurementEntry, MeasurementFacts, TrialEntry, TrialListing,
    };
    let target = "sim@1.0::m::h::w";
    let trial = |case: &str, kind: &str, passed: bool| TrialEntry {
        name: format!("sim::s::{target}::{case}"),
        spec: "s".into(),
        target: target.into(),
        kind: kind.into(),
        passed,
        simulated: true,
        duration_s: 0.5,
        message: format!("{case}: measured\nsecond line"),
        ..TrialEntry::default()
    };
    let facts = MeasurementFacts {
        reps: 3,
        catalog_snapshot: "v1-abc".into(),
        harness_version: "0.1.0".into(),
        simulated: true,
        hardware_fingerprint: Some("hw-1".into()),
        ..MeasurementFacts::default()
    };
    let mut base = trial("baseline", "baseline", true);
    base.measurement = Some(MeasurementEntry {
        key: "m0".into(),
        read: Ok(facts),
    });
    let mut lost = trial("attn=flash", "combo", true);
    lost.measurement = Some(MeasurementEntry {
        key: "gone".into(),
        read: Err("measurements/gone.json: measurement record missing".into()),
    });
    let mut gate = trial("gate", "gate", false);
    gate.gates = vec![GateReport {
        method: "topk5".into(),
        passed: false,
        message: "topk5 failed: not within 5 %\ndetails".into(),
        winner: Some("attn=flash".into()),
        p_best: Some(0.5),
        checks: Vec::new(),
    }];
    gate.comparisons = vec![ComparisonRow {
        combo: "attn=flash".into(),
        metric: "output_tokens_per_s".into(),
        trimmed_mean: 101.5,
        improvement: Some(1.015),
        improvement_ci: Some((0.99, 1.04)),
        ..ComparisonRow::default()
    }];
    let invalid = TrialEntry {
        name: "invalid::bad.yaml".into(),
        kind: "invalid".into(),
        message: "bad.yaml:3: unknown field\n  = help: …".into(),
        ..TrialEntry::default()
    };
    let mut report: l1_reports::model::RunReport = serde_json::from_str(
        &std::fs::read_to_string(snapshot("fixed.results.json")).expect("read"),
    )
    .expect("results.json");
    report.run_id = "listed-1".into();
    report.unfinished = vec!["sim::s::sim@1.0::m::h::w::kv=paged (interrupted)".into()];
    report.records = TrialListing {
        trials: vec![invalid, base, lost, gate],
        ignored: vec![(
            "hardware `l4` is not present here".into(),
            vec!["gpu::s::vllm@1.0::m::l4::w::baseline".into()],
        )],
        unreadable_records: vec!["trials/truncated.json: not a valid l1 record: EOF".into()],
        strays: vec!["trials/notes.txt: not an l1 record (records are .json); not read".into()],
    };
    report
}

fn snapshot(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name)
}

#[test]
fn junit_from_the_report_lists_every_trial_and_every_problem_once() {
    use l1_reports::junit::from_report;
    let report = listed_report();
    let run = from_report(&report);
    let names: Vec<&str> = run.suites.iter().map(|s| s.name.as_str()).collect();
    // Spec errors first, then targets in order, then files that belong to no trial.
    assert_eq!(
        names,
        [
            "l1::invalid",
            "s::sim@1.0::m::h::w",
            "s::vllm@1.0::m::l4::w",
            "l1::unreadable"
        ]
    );
    let sim = &run.suites[1];
    let case = |n: &str| sim.cases.iter().find(|c| c.name == n).unwrap();
    assert_eq!(case("baseline").outcome, Outcome::Passed);
    assert_eq!(
        case("baseline").system_out.as_deref(),
        Some("baseline: measured\nsecond line")
    );
    // The missing measurement is the trial's error, not an `l1::unreadable` case.
    assert!(matches!(
        &case("attn=flash").outcome,
        Outcome::Error { message, .. } if message == "measurements/gone.json: measurement record missing"
    ));
    // A failed gate explains itself by its failed verdicts' first lines.
    assert!(matches!(
        &case("gate").outcome,
        Outcome::Failed { message, .. } if message == "topk5 failed: not within 5 %"
    ));
    // The unfinished trial is an error in its target's suite.
    assert!(matches!(
        &case("kv=paged").outcome,
        Outcome::Error { message, .. } if message.starts_with("no outcome recorded: ")
    ));
    let prop = |k: &str| {
        sim.properties
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(prop("run_id"), Some("listed-1"));
    assert_eq!(prop("hardware_fingerprint"), Some("hw-1"));
    assert_eq!(prop("baseline.reps"), Some("3"));
    assert_eq!(prop("baseline.cache_hit"), Some("false"));
    assert_eq!(prop("gate.topk5"), Some("FAIL"));
    assert_eq!(prop("gate.topk5.p_best"), Some("0.500000"));
    assert_eq!(
        prop("attn=flash.output_tokens_per_s.vs_baseline_ci"),
        Some("-1.00 % +4.00 %")
    );
    assert!(matches!(
        &run.suites[2].cases[0].outcome,
        Outcome::Skipped { message } if message == "ignored: hardware `l4` is not present here"
    ));
    let loose: Vec<&str> = run.suites[3]
        .cases
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(loose, ["trials/truncated.json", "trials/notes.txt"]);
    assert_eq!(
        report.records.problems(),
        [
            "trials/truncated.json: not a valid l1 record: EOF",
            "measurements/gone.json: measurement record missing",
            "trials/notes.txt: not an l1 record (records are .json); not read",
        ]
    );
    assert_valid_junit(&render_junit(&run).expect("render"));
}

#[test]
fn every_reporter_writes_its_format_from_the_one_model() {
    use l1_reports::reporter::{Html, Json, Junit, Prometheus, Reporter};
    let report = listed_report();
    let dir = std::env::temp_dir().join(format!("l1-reporters-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let metrics = Prometheus {
        mode: "quick".into(),
        wall_s: 9.0,
        ..Prometheus::default()
    };
    let reporters: [(&dyn Reporter, &str); 4] = [
        (&Junit, "junit.xml"),
        (&Html, "report.html"),
        (&Json, "results.json"),
        (&metrics, "metrics/l1.prom"),
    ];
    for (r, file) in reporters {
        let out = dir.join(file);
        let wrote = r
            .write(&report, &out)
            .unwrap_or_else(|e| panic!("{}: {e}", r.name()));
        assert_eq!(wrote.path, out);
        assert_eq!(wrote.what, r.name());
        assert!(wrote.warnings.is_empty(), "{:?}", wrote.warnings);
    }
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect(f);
    let junit = render_junit(&l1_reports::junit::from_report(&report)).expect("render");
    assert_eq!(read("junit.xml"), junit);
    assert_eq!(
        read("report.html"),
        l1_reports::html::render_html(&report).expect("html")
    );
    // results.json is the model without its trial listing (the targets show the trials).
    assert_eq!(read("results.json"), report.to_json());
    assert!(!read("results.json").contains("records"));
    // The metrics count this one run under the reporter's mode, and its state is kept beside.
    let prom = read("metrics/l1.prom");
    assert!(
        prom.contains("inferenceiq_l1_runs_total{mode=\"quick\",status=\"failed\"} 1"),
        "{prom}"
    );
    assert!(dir.join("metrics/l1.prom.state.json").is_file());
    // A destination that cannot be written is an error naming it, not a panic.
    let blocked = dir.join("junit.xml").join("under-a-file.xml");
    let e = Junit.write(&report, &blocked).unwrap_err().to_string();
    assert!(e.starts_with("failed to create "), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
