//! JUnit XML for fixed inputs: snapshot and schema validation (`xmllint`, skipped with a printed
//! reason when it is missing unless `L1_REQUIRE_ENGINES=1`).

use std::path::Path;

use l1_reports::junit::{
    JunitCase, JunitRun, JunitSuite, Outcome, assert_snapshot, assert_valid_junit, render_junit,
};

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
                properties: vec![
                    ("simulated".into(), "true".into()),
                    ("winner".into(), "attn=flash".into()),
                ],
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
