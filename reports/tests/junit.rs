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
