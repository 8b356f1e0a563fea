//! Reports built from a real (simulated) run: the sim engine measures a quick sweep whose
//! combos include crashing ones; the run directory then gets what a real run can hold besides:
//! a cached measurement (as the store writes them), a truncated and a foreign record, a stray
//! file, ignored trials, and hostile text in a gate message. The report model must name every
//! bad file, carry every measured combo's output fidelity (the spec has a `fidelity` gate),
//! `results.json` must validate against its schema (Python `jsonschema`), and the HTML
//! page must load in headless Chromium without console errors, with sortable tables and the
//! hostile text shown as text. The page and its screenshot are kept under
//! `target/l1-test-artifacts/`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use l1_harness::record::{self, CacheHit, MeasurementRecord, RunDir, TrialRecord};
use l1_harness::report_model::{self, Sources};
use l1_harness::suite::{self, Settings};
use l1_reports::checks;

const SPEC: &str = "# A quick sweep for the report tests.
kind: sweep
name: report-check
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [interactive-single]
space:
  mode: quick
  dims:
    attention_backend: [flash_attn_v3, flash_attn_v2, paged_attention]
    activation_dtype: [bf16, fp8_e4m3]
    cuda_graph: [\"off\", per-shape]
  knobs:
    fault: [none, crash]
measure: { reps: 7, trim: 0.15 }
gates:
  - { method: topk5, k: 1 }
  - { method: pareto }
  - { method: fidelity }
";

const HOSTILE: &str = "<script>console.error('injected')</script><img src=x \
                       onerror=\"console.error('xss')\" data-injected=1>";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn artifacts() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("l1-test-artifacts")
}

/// Run the spec with the sim engine into a fresh directory and doctor the run directory.
fn sim_run() -> (PathBuf, RunDir) {
    let dir = std::env::temp_dir().join(format!("l1-reports-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    std::fs::write(dir.join("specs/report-check.yaml"), SPEC).unwrap();
    let settings = Settings::new(&repo_root(), dir.join("specs"), dir.join("target"));
    let (trials, errors) = suite::plan(&settings, None);
    assert!(errors.is_empty(), "{errors:?}");
    assert!(trials.len() > 6, "{}", trials.len());
    // Combos and baseline first, the gate last (as a run usually ends).
    let (gates, others): (Vec<_>, Vec<_>) =
        trials.into_iter().partition(|t| t.name.ends_with("::gate"));
    for t in others.into_iter().chain(gates) {
        let _ = t.execute();
    }
    let run = RunDir::new(&dir.join("target"), &record::run_id());
    // One measurement came from the cache (what the store writes into a run).
    let (records, bad) = run.trials();
    assert!(bad.is_empty(), "{bad:?}");
    let cached: &TrialRecord = records
        .iter()
        .find(|t| t.kind == "combo" && t.passed)
        .unwrap();
    let key = cached.measurement.clone().unwrap();
    let mut m: MeasurementRecord = run.read_measurement(&key).unwrap().unwrap();
    m.cache_hit = Some(CacheHit {
        from_run: "nightly-20260101".into(),
        from_key: key.clone(),
        measured_unix_s: 1_767_225_600.0,
    });
    record::write_json_atomic(&run.measurement_path(&key), &m).unwrap();
    // Hostile text where a gate explains itself.
    let mut gate = records.iter().find(|t| t.kind == "gate").unwrap().clone();
    if let Some(v) = gate.gates.first_mut() {
        v.message = format!("{HOSTILE}\n{}", v.message);
    }
    gate.message = format!("{HOSTILE} {}", gate.message);
    run.write_trial(&gate).unwrap();
    // Bad files.
    std::fs::write(
        run.path.join("trials/truncated.json"),
        "{\"schema_version\": 1, \"na",
    )
    .unwrap();
    std::fs::write(
        run.path.join("measurements/foreign.json"),
        "{\"hello\": \"world\"}",
    )
    .unwrap();
    std::fs::write(run.path.join("trials/notes.txt"), "not a record").unwrap();
    (dir, run)
}

#[test]
fn reports_from_a_real_sim_run_name_bad_files_validate_and_render_in_a_browser() {
    let (dir, run) = sim_run();
    let sources = Sources {
        specs: Some(dir.join("specs")),
        root: Some(dir.clone()),
        ignored: BTreeMap::from([("hardware `l4` is not present here".to_string(), 3)]),
        now_unix_s: None,
    };
    let report = report_model::build(&run, &sources);

    // Nothing skipped silently.
    let files: Vec<&str> = report.unreadable.iter().map(|u| u.file.as_str()).collect();
    for f in [
        "trials/truncated.json",
        "measurements/foreign.json",
        "trials/notes.txt",
    ] {
        assert!(files.contains(&f), "{f} not reported: {files:?}");
    }
    assert_eq!(report.totals.unreadable, report.unreadable.len());
    assert_eq!(report.totals.ignored, 3);
    assert!(report.simulated);
    assert_eq!(report.targets.len(), 1);
    let t = &report.targets[0];
    assert_eq!(t.trim, 0.15, "the spec's trim is used: {:?}", t.notes);
    assert_eq!(t.mode, "quick");
    assert!(
        t.provenance
            .spec_text
            .as_deref()
            .is_some_and(|s| s.contains("report-check"))
    );
    assert_eq!(
        t.provenance.spec_file.as_deref(),
        Some("specs/report-check.yaml")
    );
    assert!(!t.gates.is_empty());
    assert_eq!(report.totals.cache_hits, 1);
    assert_eq!(t.combos.iter().filter(|c| c.cache_hit.is_some()).count(), 1);
    // Crashing combos fail with their error; the others are compared with the baseline.
    assert!(
        t.combos.iter().any(|c| !c.passed && c.error.is_some()),
        "no failed combo"
    );
    for c in t
        .combos
        .iter()
        .filter(|c| !c.is_baseline && c.error.is_none())
    {
        let v = c
            .vs_baseline
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no comparison", c.label));
        assert!(v.improvement_pct.is_finite());
        assert!(c.trimmed_mean.is_some() && c.interval.is_some());
        // 7 reps, trim 0.15: one trimmed at each end.
        assert_eq!((c.reps, c.reps_used), (7, 5), "{}", c.label);
        assert_eq!(c.trimmed.iter().filter(|x| **x).count(), 2);
        let [lo, hi] = c.interval.unwrap();
        let tm = c.trimmed_mean.unwrap();
        assert!(lo <= tm && tm <= hi, "{lo} {tm} {hi}");
    }
    // Output fidelity (the sim's divergence model, against the baseline's probe answers): every
    // measured combo has it, from the `fidelity` gate; the metric stays the speed metric.
    assert_eq!(t.metric.name, "output_tokens_per_s");
    for c in t
        .combos
        .iter()
        .filter(|c| !c.is_baseline && c.error.is_none())
    {
        let f = c
            .fidelity
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no fidelity", c.label));
        assert_eq!((f.gate.as_str(), f.enforced), ("fidelity", true));
        assert!(
            f.probes > 0 && f.exact_match.is_some(),
            "{}: {f:?}",
            c.label
        );
        assert_eq!(f.logprobs.as_deref(), Some("top_k"), "{}", c.label);
    }
    assert!(
        t.combos[0].fidelity.is_none(),
        "the baseline is the reference"
    );
    assert!(t.combos[0].is_baseline, "baseline first");
    assert!(t.combos.iter().any(|c| c.on_frontier));
    assert!(!t.main_effects.is_empty());

    // Combos: the baseline first, then the measured ones best first by the metric (higher is
    // better here), the failed ones last.
    let means: Vec<Option<f64>> = (t.combos[1..].iter())
        .map(|c| c.trimmed_mean.filter(|_| c.passed && c.error.is_none()))
        .collect();
    let first_failed = means.iter().position(Option::is_none).unwrap();
    assert!(first_failed >= 2, "{means:?}");
    assert!(
        means[first_failed..].iter().all(Option::is_none),
        "{means:?}"
    );
    assert!(
        means[..first_failed].windows(2).all(|w| w[0] >= w[1]),
        "not best first: {means:?}"
    );
    // Latency percentiles per measured combo: TTFT, ITL, TPOT, E2E at p50 ≤ p95 ≤ p99 (the
    // trimmed mean over reps keeps the per-rep order).
    for c in t.combos.iter().filter(|c| c.error.is_none()) {
        let l = c
            .latency
            .as_ref()
            .unwrap_or_else(|| panic!("{}: no latency", c.label));
        for (name, p) in [
            ("ttft", &l.ttft_ms),
            ("itl", &l.itl_ms),
            ("tpot", &l.tpot_ms),
            ("e2e", &l.e2e_ms),
        ] {
            let (a, b, c99) = (p.p50.unwrap(), p.p95.unwrap(), p.p99.unwrap());
            assert!(0.0 < a && a <= b && b <= c99, "{} {name}: {p:?}", c.label);
        }
        assert_eq!(c.latency_p95_ms, Some(l.e2e_ms.p95.unwrap()), "{}", c.label);
    }

    // The verdict line: topk5 (k 1) passed, so the winner is established; the terminal's
    // numbers (from the gate's table) equal results.json's winner and its comparison.
    assert_eq!(t.passed, Some(true), "{:?}", t.gates);
    assert!(t.winner_established);
    let (records, _) = run.trials();
    let gate = records.iter().find(|r| r.kind == "gate").unwrap();
    let h = l1_harness::headline::headline(&gate.gates);
    assert_eq!(h.winner, t.winner);
    assert!(h.established);
    let w = t
        .combos
        .iter()
        .find(|c| Some(&c.label) == t.winner.as_ref())
        .unwrap();
    let vs = w.vs_baseline.as_ref().unwrap();
    assert_eq!(vs.source, "gate");
    assert_eq!(h.change_pct, Some(vs.improvement_pct));
    assert_eq!(h.interval_pct, vs.interval_pct);
    assert_eq!(h.p_best, t.p_best);
    let line = l1_reports::verdict::VerdictLine::of_target(t).text();
    let [lo, hi] = vs.interval_pct.unwrap();
    let expect = format!(
        "PASS  {}: winner {} {} % [{}, {}] vs baseline (output_tokens_per_s), P(best) {:.2}",
        t.id,
        w.label,
        l1_reports::verdict::signed(vs.improvement_pct),
        l1_reports::verdict::signed(lo),
        l1_reports::verdict::signed(hi),
        t.p_best.unwrap()
    );
    assert!(line.starts_with(&expect), "{line}\n{expect}");

    // results.json validates against the published schema.
    let json = report.to_json();
    checks::require_or_skip(
        "results.json schema validation",
        checks::validate_json_schema(&json, Path::new(checks::RESULTS_SCHEMA_PATH)),
    );
    let back: l1_reports::model::RunReport = serde_json::from_str(&json).unwrap();
    // (Floats may differ in the last bit: serde_json parses without exact round-trips.)
    assert_eq!(
        back.targets[0].combos.len(),
        t.combos.len(),
        "results.json reads back"
    );
    assert_eq!(back.unreadable, report.unreadable);

    // HTML: hostile text stays text.
    let html = l1_reports::html::render_html(&report).unwrap();
    assert!(!html.contains("<script>console.error"), "unescaped script");
    assert!(!html.contains("<img src=x"), "unescaped img");
    assert!(
        html.contains("&lt;script&gt;console.error("),
        "escaped text missing"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no network references"
    );
    assert!(html.contains(">fidelity</th>"), "no fidelity column");
    let out = artifacts();
    std::fs::create_dir_all(&out).unwrap();
    let page = out.join("report-sim.html");
    std::fs::write(&page, &html).unwrap();
    std::fs::write(out.join("results-sim.json"), &json).unwrap();
    let shot = out.join("report-sim.png");
    let _ = std::fs::remove_file(&shot);
    let json_path = out.join("results-sim.json");
    let outcome = checks::check_in_browser(
        &page,
        &shot,
        &checks::BrowserOptions {
            expect_sim: true,
            results: Some(&json_path),
            summary_shot: Some(&out.join("report-sim-summary.png")),
        },
    );
    if let Ok(r) = &outcome {
        eprintln!("browser checks: {}", r["checks"]);
        assert!(r["checks"]["trimmed_points"].as_u64().unwrap_or(0) > 0);
        assert_eq!(r["checks"]["unreadable_items"].as_u64(), Some(3));
        // The browser read one verdict line (compared with results.json by the driver), and
        // nothing overflowed and axe found nothing serious (else the driver failed).
        let lines = r["checks"]["verdicts"].as_array().unwrap();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["verdict"], "PASS", "{lines:?}");
        assert_eq!(lines[0]["winner"].as_str(), t.winner.as_deref());
        assert_eq!(r["checks"]["latency_tables"].as_u64(), Some(1));
        assert!(shot.is_file(), "screenshot written");
        eprintln!("screenshot: {}", shot.display());
    }
    checks::require_or_skip("the browser check", outcome.map(|_| ()));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sim sweep measured with `trim: {trim}` (9 reps per combo).
fn trim_spec(trim: f64) -> String {
    format!(
        "kind: sweep
name: trim-check
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [interactive-single]
space:
  dims:
    attention_backend: [flash_attn_v3, flash_attn_v2]
measure: {{ reps: 9, trim: {trim} }}
gates:
  - {{ method: topk5, k: 1 }}
"
    )
}

/// The report uses the trim the run used, whatever the spec file says now: a run measured with
/// trim 0.2 keeps trim 0.2 (2 of 9 reps trimmed from each end) after its spec is edited to
/// 0.05, and the spec is not rendered to learn it. Trial records of an older harness, which do
/// not say what the run used, get the default trim and a note saying so.
#[test]
fn the_report_uses_the_trim_the_run_used_not_the_spec_as_edited_since() {
    let dir = std::env::temp_dir().join(format!("l1-reports-trim-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    let spec = dir.join("specs/trim-check.yaml");
    std::fs::write(&spec, trim_spec(0.2)).unwrap();
    let settings = Settings::new(&repo_root(), dir.join("specs"), dir.join("target"));
    let (trials, errors) = suite::plan(&settings, None);
    assert!(errors.is_empty(), "{errors:?}");
    let (gates, others): (Vec<_>, Vec<_>) =
        trials.into_iter().partition(|t| t.name.ends_with("::gate"));
    for t in others.into_iter().chain(gates) {
        let _ = t.execute();
    }
    let run = RunDir::new(&dir.join("target"), &record::run_id());
    let (records, bad) = run.trials();
    assert!(bad.is_empty(), "{bad:?}");
    let used = records[0]
        .used
        .clone()
        .expect("the trial records what the run used");
    assert_eq!(used.trim, 0.2);
    assert_eq!(used.mode, "exhaustive");
    assert_eq!(used.reps, 9);
    assert_eq!(used.gates, ["topk5"]);
    assert_eq!(used.spec_digest.len(), 16);

    // The spec is edited after the run.
    std::fs::write(&spec, trim_spec(0.05)).unwrap();
    let sources = Sources {
        specs: Some(dir.join("specs")),
        root: Some(dir.clone()),
        ..Sources::default()
    };
    let measured = |r: &l1_reports::model::RunReport| -> Vec<usize> {
        r.targets[0]
            .combos
            .iter()
            .filter(|c| c.reps > 0)
            .map(|c| c.reps_used)
            .collect()
    };
    let report = report_model::build(&run, &sources);
    let t = &report.targets[0];
    assert_eq!(
        t.trim, 0.2,
        "the run's trim, not the edited spec's: {:?}",
        t.notes
    );
    assert_eq!(t.mode, "exhaustive");
    let used_reps = measured(&report);
    assert!(!used_reps.is_empty());
    assert!(used_reps.iter().all(|&n| n == 5), "{used_reps:?}");
    assert!(
        t.notes.iter().all(|n| !n.contains("assumed")),
        "{:?}",
        t.notes
    );
    // The spec's text is still shown for provenance (as it is now).
    assert!(
        t.provenance
            .spec_text
            .as_deref()
            .is_some_and(|s| s.contains("trim: 0.05")),
        "{:?}",
        t.provenance.spec_text
    );

    // Records of an older harness: no `used`, and none written for them.
    for mut r in records {
        r.used = None;
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("\"used\""), "{text}");
        run.write_trial(&r).unwrap();
    }
    let report = report_model::build(&run, &sources);
    let t = &report.targets[0];
    assert_eq!(t.trim, report_model::DEFAULT_TRIM);
    assert_eq!(t.mode, "unknown");
    assert!(
        t.notes
            .iter()
            .any(|n| n.contains("trim 0.1 assumed for the intervals")),
        "{:?}",
        t.notes
    );
    let used_reps = measured(&report);
    assert!(used_reps.iter().all(|&n| n == 7), "{used_reps:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
