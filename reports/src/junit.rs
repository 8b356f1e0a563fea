//! JUnit XML for a run: one `<testsuite>` per spec target, one `<testcase>` per trial.
//!
//! [`from_report`] builds the plain JUnit model ([`JunitRun`]) from the report model's trial
//! listing; [`render_junit`] renders it through `quick-junit` (the crate cargo-nextest uses),
//! which escapes markup and strips ANSI escapes and control characters from every string.
//!
//! The output is valid against the Jenkins JUnit schema shipped as
//! `reports/schema/junit-10.xsd`, which means two deviations from what `quick-junit` writes on
//! its own: the root `<testsuites>` carries no `skipped` attribute (the schema does not allow
//! one; every `<testsuite>` still has its own), and per-trial values go into the suite's
//! `<properties>` (the schema has no `<properties>` inside `<testcase>`), named
//! `<trial>.<key>`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

/// The Jenkins/Ant JUnit schema the output is checked against (see `reports/schema/SOURCE.md`).
pub const JUNIT_XSD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schema/junit-10.xsd");

/// A run, as JUnit sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JunitRun {
    pub run_id: String,
    /// One per spec target, in output order.
    pub suites: Vec<JunitSuite>,
}

/// One spec target (`<spec>::<engine@ver>::<model>::<hw>::<workload>`), or a synthetic group
/// (`l1::ignored`, `l1::unreadable`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JunitSuite {
    pub name: String,
    /// Name/value pairs, in output order.
    pub properties: Vec<(String, String)>,
    pub cases: Vec<JunitCase>,
    /// Problems that belong to the suite rather than to one trial.
    pub system_err: Option<String>,
}

/// One trial.
#[derive(Clone, Debug, PartialEq)]
pub struct JunitCase {
    /// The trial's last part: `baseline`, `gate` or the combo.
    pub name: String,
    /// The suite's target.
    pub classname: String,
    pub duration_s: f64,
    pub outcome: Outcome,
    /// The trial's own message (measured values, gate tables).
    pub system_out: Option<String>,
    /// What went wrong around the trial (e.g. an unreadable measurement record).
    pub system_err: Option<String>,
}

/// A trial's outcome.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Passed,
    /// The trial ran and its verdict is negative (a gate failed, a measurement errored):
    /// `message` is the one-line explanation, `detail` the full text.
    Failed {
        message: String,
        detail: String,
    },
    /// The result could not be read or evaluated (unreadable record).
    Error {
        message: String,
        detail: String,
    },
    Skipped {
        message: String,
    },
}

/// A combo's output-fidelity properties: `<combo>.fidelity` (`pass`/`FAIL`), and where measured
/// `<combo>.fidelity.exact_match`, `.matched_prefix`, `.logprob_delta` (mean |Δ logprob|, nats),
/// `.topk_js` (bits); `.unjudged` with the reason when nothing could be compared, `.failures`
/// with the failed checks, `.logprobs` = `none` when compared by tokens only.
pub fn fidelity_properties(combo: &str, f: &crate::model::FidelityCell) -> Vec<(String, String)> {
    let k = format!("{combo}.fidelity");
    let mut out = vec![(
        k.clone(),
        if f.passed { "pass" } else { "FAIL" }.to_string(),
    )];
    for (name, v) in [
        ("exact_match", f.exact_match),
        ("matched_prefix", f.matched_prefix),
        ("logprob_delta", f.mean_abs_logprob_delta),
        ("topk_js", f.topk_js_divergence),
    ] {
        if let Some(x) = v.filter(|x| x.is_finite()) {
            out.push((format!("{k}.{name}"), format!("{x:.6}")));
        }
    }
    if f.logprobs.as_deref() == Some("none") {
        out.push((format!("{k}.logprobs"), "none (tokens only)".into()));
    }
    if let Some(u) = &f.unjudged {
        out.push((format!("{k}.unjudged"), u.clone()));
    }
    if !f.failures.is_empty() {
        out.push((format!("{k}.failures"), f.failures.join("; ")));
    }
    out
}

/// The run as JUnit sees it, from the report's trial listing ([`crate::model::TrialListing`]):
/// a suite per spec target (`<spec>::<engine@ver>::<model>::<hw>::<workload>`) with a case per
/// trial (passed, failed, ignored as skipped with its reason, a trial without an outcome as an
/// error), `l1::invalid` with a failed case per spec error, and `l1::unreadable` for every file
/// that could not be read and belongs to no trial ([`crate::model::TrialListing::problems`]).
pub fn from_report(report: &crate::model::RunReport) -> JunitRun {
    use std::collections::{BTreeMap, BTreeSet};

    #[derive(Default)]
    struct Target {
        suite: JunitSuite,
        /// Values seen in the target's measurement records.
        engine_versions: BTreeSet<String>,
        snapshots: BTreeSet<String>,
        harness_versions: BTreeSet<String>,
        hardware_fingerprints: BTreeSet<String>,
        simulated: bool,
    }
    fn first_line(s: &str) -> String {
        s.lines().next().unwrap_or("").to_string()
    }
    fn num(x: f64) -> String {
        format!("{x:.6}")
    }
    fn pct(ratio: f64) -> String {
        format!("{:+.2} %", (ratio - 1.0) * 100.0)
    }

    let listing = &report.records;
    // Problems reported on a trial's own testcase (not repeated under `l1::unreadable`).
    let mut attached = BTreeSet::new();
    let mut targets: BTreeMap<String, Target> = BTreeMap::new();
    // Spec errors: one failed testcase per `invalid::` trial.
    let mut invalid = JunitSuite {
        name: "l1::invalid".into(),
        ..JunitSuite::default()
    };
    for r in listing.trials.iter().filter(|r| r.kind == "invalid") {
        invalid.cases.push(JunitCase {
            name: r.name.clone(),
            classname: "l1::invalid".into(),
            duration_s: r.duration_s,
            outcome: Outcome::Failed {
                message: first_line(&r.message),
                detail: r.message.clone(),
            },
            system_out: None,
            system_err: None,
        });
    }
    for r in listing.trials.iter().filter(|r| r.kind != "invalid") {
        let target = format!("{}::{}", r.spec, r.target);
        let case = r
            .name
            .split_once(&format!("{target}::"))
            .map(|(_, c)| c.to_string())
            .unwrap_or_else(|| r.name.rsplit("::").next().unwrap_or(&r.name).to_string());
        let t = targets.entry(target.clone()).or_default();
        t.suite.name.clone_from(&target);
        t.simulated |= r.simulated;
        let props = &mut t.suite.properties;
        let mut outcome = if r.passed {
            Outcome::Passed
        } else {
            // A gate's explanation: the failed gates' verdicts, else the trial's first line.
            let failed: Vec<String> = (r.gates.iter())
                .filter(|g| !g.passed)
                .map(|g| first_line(&g.message))
                .collect();
            Outcome::Failed {
                message: if failed.is_empty() {
                    first_line(&r.message)
                } else {
                    failed.join("; ")
                },
                detail: r.message.clone(),
            }
        };
        let mut system_err = None;
        if let Some(m) = &r.measurement {
            props.push((format!("{case}.measurement"), m.key.clone()));
            match &m.read {
                Ok(m) => {
                    props.push((format!("{case}.reps"), m.reps.to_string()));
                    if let Some(v) = &m.engine_version {
                        t.engine_versions.insert(v.clone());
                    }
                    t.snapshots.insert(m.catalog_snapshot.clone());
                    t.harness_versions.insert(m.harness_version.clone());
                    t.simulated |= m.simulated;
                    if let Some(e) = &m.error {
                        props.push((format!("{case}.error"), e.clone()));
                    }
                    props.push((
                        format!("{case}.cache_hit"),
                        m.cache_hit.as_ref().map_or("false".into(), |h| {
                            format!("true (run {}, {})", h.from_run, h.from_key)
                        }),
                    ));
                    if let Some(f) = &m.hardware_fingerprint {
                        t.hardware_fingerprints.insert(f.clone());
                    }
                }
                Err(msg) => {
                    attached.insert(msg.clone());
                    system_err = Some(msg.clone());
                    outcome = Outcome::Error {
                        message: msg.clone(),
                        detail: r.message.clone(),
                    };
                }
            }
        }
        for g in &r.gates {
            props.push((
                format!("gate.{}", g.method),
                if g.passed { "pass" } else { "FAIL" }.to_string(),
            ));
            if let Some(w) = &g.winner {
                props.push((format!("gate.{}.winner", g.method), w.clone()));
            }
            if let Some(p) = g.p_best {
                props.push((format!("gate.{}.p_best", g.method), num(p)));
            }
        }
        // Comparisons with the baseline (every gate tabulates the same measurements).
        for row in &r.comparisons {
            let k = format!("{}.{}", row.combo, row.metric);
            props.push((format!("{k}.trimmed_mean"), num(row.trimmed_mean)));
            if let Some(x) = row.improvement {
                props.push((format!("{k}.vs_baseline"), pct(x)));
            }
            if let Some((lo, hi)) = row.improvement_ci {
                props.push((
                    format!("{k}.vs_baseline_ci"),
                    format!("{} {}", pct(lo), pct(hi)),
                ));
            }
            if let Some(p) = row.yuen_p {
                props.push((format!("{k}.yuen_p"), num(p)));
            }
            if let Some(p) = row.adjusted_p {
                props.push((format!("{k}.adjusted_p"), num(p)));
            }
            if let Some(x) = row.hedges_g {
                props.push((format!("{k}.hedges_g"), num(x)));
            }
        }
        for (combo, f) in &r.fidelity {
            props.extend(fidelity_properties(combo, f));
        }
        // A failure or error carries the trial's message as its text already.
        let system_out = matches!(outcome, Outcome::Passed).then(|| r.message.clone());
        t.suite.cases.push(JunitCase {
            name: case,
            classname: target,
            duration_s: r.duration_s,
            outcome,
            system_out,
            system_err,
        });
    }
    // Trials that did not run (ignored: skipped, with the reason) and trials without an outcome
    // (unfinished: an error), each a testcase of its target's suite.
    let suite_and_case = |name: &str| -> (String, String) {
        let parts: Vec<&str> = name.split("::").collect();
        if parts.len() == 7 {
            (parts[1..6].join("::"), parts[6].to_string())
        } else {
            ("l1::other".to_string(), name.to_string())
        }
    };
    let mut not_run = |name: &str, outcome: Outcome| {
        let (suite, case) = suite_and_case(name);
        let t = targets.entry(suite.clone()).or_default();
        t.suite.name.clone_from(&suite);
        t.suite.cases.push(JunitCase {
            name: case,
            classname: suite,
            duration_s: 0.0,
            outcome,
            system_out: None,
            system_err: None,
        });
    };
    for (reason, names) in &listing.ignored {
        for name in names {
            let message = format!("ignored: {reason}");
            not_run(name, Outcome::Skipped { message });
        }
    }
    for line in &report.unfinished {
        let name = line.split(" (").next().unwrap_or(line).to_string();
        let message = format!("no outcome recorded: {line}");
        not_run(
            &name,
            Outcome::Error {
                message,
                detail: String::new(),
            },
        );
    }

    let mut suites = Vec::new();
    for (name, t) in targets {
        let mut head = vec![
            ("run_id".to_string(), report.run_id.clone()),
            ("target".to_string(), name),
            ("simulated".to_string(), t.simulated.to_string()),
        ];
        let joined = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
        for (key, values) in [
            ("engine_version", &t.engine_versions),
            ("catalog_snapshot", &t.snapshots),
            ("harness_version", &t.harness_versions),
            ("hardware_fingerprint", &t.hardware_fingerprints),
        ] {
            if !values.is_empty() {
                head.push((key.into(), joined(values)));
            }
        }
        let mut suite = t.suite;
        head.append(&mut suite.properties);
        suite.properties = head;
        suites.push(suite);
    }
    if !invalid.cases.is_empty() {
        suites.insert(0, invalid);
    }
    let problems = listing.problems();
    let loose: Vec<&String> = problems.iter().filter(|p| !attached.contains(*p)).collect();
    if !loose.is_empty() {
        suites.push(JunitSuite {
            name: "l1::unreadable".into(),
            properties: Vec::new(),
            cases: loose
                .into_iter()
                .map(|p| JunitCase {
                    name: p
                        .split_once(": ")
                        .map_or(p.as_str(), |(f, _)| f)
                        .to_string(),
                    classname: "l1::unreadable".into(),
                    duration_s: 0.0,
                    outcome: Outcome::Error {
                        message: p.clone(),
                        detail: String::new(),
                    },
                    system_out: None,
                    system_err: None,
                })
                .collect(),
            system_err: None,
        });
    }
    JunitRun {
        run_id: report.run_id.clone(),
        suites,
    }
}

/// Render the run as JUnit XML (UTF-8, with an XML declaration).
pub fn render_junit(run: &JunitRun) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new(clean(&format!("l1 run {}", run.run_id)));
    let mut total = Duration::ZERO;
    for s in &run.suites {
        let mut suite = TestSuite::new(clean(&s.name));
        for (k, v) in &s.properties {
            suite.add_property((clean(k), clean(v)));
        }
        let mut time = Duration::ZERO;
        for c in &s.cases {
            let status = match &c.outcome {
                Outcome::Passed => TestCaseStatus::success(),
                Outcome::Failed { message, detail } | Outcome::Error { message, detail } => {
                    let kind = if matches!(c.outcome, Outcome::Failed { .. }) {
                        NonSuccessKind::Failure
                    } else {
                        NonSuccessKind::Error
                    };
                    let mut st = TestCaseStatus::non_success(kind);
                    st.set_message(clean(message));
                    if !detail.is_empty() {
                        st.set_description(clean(detail));
                    }
                    st
                }
                Outcome::Skipped { message } => {
                    let mut st = TestCaseStatus::skipped();
                    st.set_message(clean(message));
                    st
                }
            };
            let mut case = TestCase::new(clean(&c.name), status);
            case.set_classname(clean(&c.classname));
            let d = seconds(c.duration_s);
            time += d;
            case.set_time(d);
            if let Some(out) = &c.system_out {
                case.set_system_out(clean(out));
            }
            if let Some(err) = &c.system_err {
                case.set_system_err(clean(err));
            }
            suite.add_test_case(case);
        }
        suite.set_time(time);
        total += time;
        if let Some(err) = &s.system_err {
            suite.set_system_err(clean(err));
        }
        report.add_test_suite(suite);
    }
    report.set_time(total);
    let xml = report.to_string()?;
    Ok(drop_root_skipped(&xml))
}

/// Remove the `skipped` attribute of the root `<testsuites>` element, which the Jenkins schema
/// does not allow (the per-suite `skipped` counts stay).
fn drop_root_skipped(xml: &str) -> String {
    let Some(start) = xml.find("<testsuites") else {
        return xml.to_string();
    };
    let end = xml[start..].find('>').map_or(xml.len(), |e| start + e);
    let tag = &xml[start..end];
    let Some(a) = tag.find(" skipped=\"") else {
        return xml.to_string();
    };
    let value_end = tag[a + 10..]
        .find('"')
        .map_or(tag.len(), |e| a + 10 + e + 1);
    format!("{}{}{}", &xml[..start + a], &tag[value_end..], &xml[end..])
}

/// Strip ANSI escapes and characters XML 1.0 cannot carry. `quick-junit` removes the escapes
/// and C0 controls; the two non-characters U+FFFE and U+FFFF are removed here.
pub fn clean(s: &str) -> String {
    quick_junit::XmlString::new(s)
        .as_str()
        .replace(['\u{FFFE}', '\u{FFFF}'], "")
}

fn seconds(s: f64) -> Duration {
    if s.is_finite() && s > 0.0 {
        Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
    } else {
        Duration::ZERO
    }
}

/// Why XML could not be validated with `xmllint`.
#[derive(Debug, thiserror::Error)]
pub enum ValidationError {
    #[error("xmllint is not installed (Debian package libxml2-utils)")]
    NoXmllint,
    #[error("failed to run xmllint: {0}")]
    Io(#[from] std::io::Error),
    #[error("not valid against {schema}:\n{output}")]
    Invalid { schema: String, output: String },
}

/// Validate `xml` against an XSD with `xmllint --schema XSD --noout`.
pub fn validate_with_xmllint(xml: &str, xsd: &Path) -> Result<(), ValidationError> {
    use std::io::Write as _;
    let mut child = match Command::new("xmllint")
        .arg("--schema")
        .arg(xsd)
        .args(["--noout", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ValidationError::NoXmllint);
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(xml.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ValidationError::Invalid {
            schema: xsd.display().to_string(),
            output: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

/// For tests: validate against [`JUNIT_XSD`]; without xmllint, print why and return `false`
/// (skipped), unless `L1_REQUIRE_ENGINES=1`, then panic. Panics when the XML is invalid.
pub fn assert_valid_junit(xml: &str) -> bool {
    match validate_with_xmllint(xml, Path::new(JUNIT_XSD)) {
        Ok(()) => true,
        Err(ValidationError::NoXmllint) if !crate::checks::engines_required() => {
            eprintln!(
                "skipping JUnit schema validation: xmllint is not installed \
                 (apt-get install libxml2-utils; required when L1_REQUIRE_ENGINES=1)"
            );
            false
        }
        Err(e) => panic!("JUnit XML validation failed: {e}\n{xml}"),
    }
}

/// For tests: compare `actual` with the snapshot file at `path`; with `L1_UPDATE_SNAPSHOTS=1`,
/// (re)write the file instead. Panics with both texts when they differ.
pub fn assert_snapshot(path: &Path, actual: &str) {
    if std::env::var("L1_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = std::fs::write(path, actual) {
            panic!("failed to write snapshot {}: {e}", path.display());
        }
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "no snapshot {} ({e}); run with L1_UPDATE_SNAPSHOTS=1 to create it",
            path.display()
        )
    });
    assert!(
        expected == actual,
        "snapshot {} differs (L1_UPDATE_SNAPSHOTS=1 rewrites it)\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}
