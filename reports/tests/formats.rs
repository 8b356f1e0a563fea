//! The report formats for a fixed model: `results.json` (snapshot, JSON Schema via Python's
//! `jsonschema`), the HTML page (escaping, banner, named bad files), the Prometheus exposition
//! (`promtool check metrics`, a real Pushgateway on loopback), and the Grafana dashboard and
//! alert rules under `ci/monitoring/` (`promtool check rules`, `promtool test rules`). External
//! tools missing: skipped with a printed reason, unless `L1_REQUIRE_ENGINES=1`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use l1_reports::checks::{self, CheckError, require_or_skip};
use l1_reports::junit::assert_snapshot;
use l1_reports::model::*;
use l1_reports::prometheus::{self, MetricsState, RunContribution};

const HOSTILE: &str = "attn=<img src=x onerror=alert(1)>,kv=\"paged\"&co";

fn combo(label: &str, values: &[f64], vs: Option<f64>) -> ComboReport {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|a, b| values[*a].total_cmp(&values[*b]));
    let mut trimmed = vec![false; n];
    if n >= 5 {
        trimmed[order[0]] = true;
        trimmed[order[n - 1]] = true;
    }
    let kept: Vec<f64> = (0..n).filter(|i| !trimmed[*i]).map(|i| values[i]).collect();
    let tm = kept.iter().sum::<f64>() / kept.len().max(1) as f64;
    ComboReport {
        label: label.into(),
        trial: format!("sim::s::sim@1.0::m::h100-sxm::chat::{label}"),
        is_baseline: label == "baseline",
        is_winner: false,
        passed: true,
        message: format!("{label}: measured [simulated]: {n} reps"),
        dims: label
            .split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        knobs: BTreeMap::new(),
        measurement: Some(format!("m-{}", label.len())),
        error: None,
        simulated: true,
        engine_version: None,
        duration_s: 1.5,
        reps: n,
        reps_used: kept.len(),
        values: values.to_vec(),
        trimmed,
        trimmed_mean: Some(tm),
        interval: Some([tm - 2.0, tm + 2.0]),
        vs_baseline: vs.map(|v| VsBaseline {
            improvement_pct: v,
            interval_pct: Some([v - 1.5, v + 1.5]),
            p: Some(0.01),
            adjusted_p: Some(0.03),
            effect_size: Some(1.2),
            source: "gate".into(),
        }),
        throughput: Some(tm),
        latency_p95_ms: Some(10_000.0 / tm),
        on_frontier: false,
        cache_hit: None,
        logs: Vec::new(),
        fidelity: None,
        latency: None,
    }
}

fn fidelity(passed: bool, exact: f64, prefix: f64) -> FidelityCell {
    FidelityCell {
        passed,
        gate: "fidelity".into(),
        enforced: true,
        precision: "fp8".into(),
        probes: 8,
        exact_match: Some(exact),
        matched_prefix: Some(prefix),
        mean_first_divergence: Some(prefix * 16.0),
        divergence_positions: if exact < 1.0 { vec![0, 11] } else { vec![] },
        mean_abs_logprob_delta: Some(if passed { 0.0032 } else { 0.2184 }),
        topk_js_divergence: Some(if passed { 0.0001 } else { 0.0412 }),
        logprobs: Some("top_k".into()),
        limits: FidelityLimits {
            min_exact_match: 0.5,
            min_matched_prefix: 0.75,
            max_logprob_delta: 0.15,
            max_topk_divergence: 0.03,
        },
        failures: Vec::new(),
        notes: Vec::new(),
        unjudged: None,
        failed_probes: Vec::new(),
        length_mismatches: Vec::new(),
    }
}

/// A run with a simulated target (passed, a cached combo, a failed combo, hostile text) and a
/// real-engine target without a gate trial, ignored trials and unreadable files.
fn fixed_report() -> RunReport {
    let base = combo(
        "baseline",
        &[100.0, 101.0, 99.5, 100.5, 98.0, 103.0, 100.2],
        None,
    );
    let mut fast = combo(
        "attn=flash_attn_v3,kv=paged",
        &[110.0, 111.0, 109.5, 110.5, 108.0, 113.0, 110.2],
        Some(10.1),
    );
    fast.is_winner = true;
    fast.on_frontier = true;
    let pct = |p50: f64| Percentiles {
        p50: Some(p50),
        p95: Some(p50 * 1.5),
        p99: Some(p50 * 2.0),
    };
    fast.latency = Some(LatencyReport {
        ttft_ms: pct(40.0),
        itl_ms: pct(8.0),
        tpot_ms: pct(8.5),
        e2e_ms: Percentiles {
            p99: None,
            ..pct(900.0)
        },
    });
    fast.fidelity = Some(fidelity(true, 1.0, 1.0));
    let mut cached = combo(
        "attn=flash_attn_v2,kv=paged",
        &[104.0, 105.0, 103.5, 104.5, 102.0, 107.0, 104.2],
        Some(4.0),
    );
    cached.cache_hit = Some(CacheHitReport {
        from_run: "nightly-20260101".into(),
        from_key: "abc123".into(),
        measured_unix_s: 1_767_225_600.0,
    });
    // Passes by tokens alone: the engine returned no logprobs.
    let mut tokens_only = fidelity(true, 0.875, 0.953);
    tokens_only.logprobs = Some("none".into());
    tokens_only.mean_abs_logprob_delta = None;
    tokens_only.topk_js_divergence = None;
    tokens_only.notes =
        vec!["not measured: the engine returned no logprobs; compared by tokens only".into()];
    cached.fidelity = Some(tokens_only);
    let mut hostile = combo(HOSTILE, &[90.0, 91.0, 89.0, 90.5, 88.0], Some(-10.0));
    hostile.message = format!("{HOSTILE}</td></tr><script>alert(2)</script>");
    let mut bad = fidelity(false, 0.125, 0.359);
    bad.precision = "q4".into();
    bad.failures = vec![
        "exact_match 0.125 < 0.500".into(),
        "matched_prefix 0.359 < 0.750 \"><script>alert(4)</script>".into(),
    ];
    hostile.fidelity = Some(bad);
    let mut failed = combo("attn=xformers,kv=paged", &[95.0, 80.0], None);
    failed.passed = false;
    failed.error = Some("rep 3: engine crashed (SIGSEGV)".into());
    failed.logs = vec!["/tmp/l1/engine-logs/x.log".into()];
    failed.fidelity = Some(FidelityCell {
        passed: false,
        unjudged: Some("the baseline record has no reference answers <i>cached</i>".into()),
        ..fidelity(false, 0.0, 0.0)
    });
    failed.fidelity.as_mut().unwrap().exact_match = None;
    failed.fidelity.as_mut().unwrap().matched_prefix = None;
    let sim = TargetReport {
        id: "s::sim@1.0::m::h100-sxm::chat".into(),
        spec: "s".into(),
        engine: "sim".into(),
        engine_version: "1.0".into(),
        model: "m".into(),
        hardware: "h100-sxm".into(),
        workload: "chat".into(),
        simulated: true,
        mode: "quick".into(),
        passed: Some(false),
        metric: MetricRef {
            name: "output_tokens_per_s".into(),
            unit: "tok/s".into(),
            higher_is_better: true,
        },
        latency_metric: "e2e_p95_ms".into(),
        trim: 0.1,
        baseline: Some("baseline".into()),
        winner: Some("attn=flash_attn_v3,kv=paged".into()),
        winner_established: false,
        p_best: Some(0.93),
        inconclusive: None,
        gates: vec![
            GateReport {
                method: "topk5".into(),
                passed: false,
                message: "topk5 failed: <b>2 of 3</b> do not clear \"the margin\"".into(),
                winner: Some("attn=flash_attn_v3,kv=paged".into()),
                p_best: Some(0.93),
                checks: Vec::new(),
            },
            GateReport {
                method: "pareto".into(),
                passed: true,
                message: "pareto passed".into(),
                winner: None,
                p_best: None,
                checks: Vec::new(),
            },
        ],
        combos: vec![base, fast, cached, hostile, failed],
        main_effects: vec![MainEffect {
            dimension: "attention_backend".into(),
            levels: vec![
                EffectLevel {
                    value: "flash_attn_v3".into(),
                    mean_improvement_pct: 10.1,
                    combos: 1,
                },
                EffectLevel {
                    value: "flash_attn_v2".into(),
                    mean_improvement_pct: 4.0,
                    combos: 1,
                },
            ],
        }],
        provenance: TargetProvenance {
            catalog_snapshots: vec!["v3-abc".into()],
            engine_versions: vec!["sim (simulated)".into()],
            hardware_fingerprints: vec!["hw-0123".into()],
            harness_versions: vec!["0.1.0".into()],
            spec_file: Some("specs/s.yaml".into()),
            spec_text: Some("kind: sweep\nname: s # </pre><script>alert(3)</script>\n".into()),
        },
        notes: vec![],
    };
    let mut real = sim.clone();
    real.id = "s::vllm@0.11::m::cpu::chat".into();
    real.engine = "vllm".into();
    real.engine_version = "0.11".into();
    real.simulated = false;
    real.passed = None;
    real.gates = vec![];
    real.winner = None;
    real.combos = vec![combo("baseline", &[20.0, 21.0, 19.0], None)];
    real.main_effects = vec![];
    real.notes = vec!["no gate trial in this run".into()];
    RunReport {
        schema_version: RESULTS_SCHEMA_VERSION,
        run_id: "fixed-1".into(),
        generated_unix_s: 1_767_312_000.0,
        harness_version: "0.1.0".into(),
        simulated: true,
        totals: Totals {
            trials: 8,
            passed: 6,
            failed: 2,
            ignored: 3,
            unreadable: 2,
            measurements: 6,
            cache_hits: 1,
            duration_s: 9.0,
            ..Totals::default()
        },
        targets: vec![sim, real],
        ignored: vec![IgnoredGroup {
            reason: "hardware `l4` is not present here".into(),
            count: 3,
        }],
        invalid: Vec::new(),
        unfinished: Vec::new(),
        last_activity_unix_s: None,
        unreadable: vec![
            Unreadable {
                file: "trials/truncated.json".into(),
                error: "not a valid l1 record: EOF".into(),
            },
            Unreadable {
                file: "measurements/foreign.json".into(),
                error: "not a valid l1 record: missing field `schema_version`".into(),
            },
        ],
        provenance: Provenance {
            catalog_snapshots: vec!["v3-abc".into()],
            engine_versions: vec!["sim (simulated)".into(), "vllm 0.11.0".into()],
            hardware_fingerprints: vec!["hw-0123".into()],
            hardware: vec!["1x H100 SXM".into()],
            harness_versions: vec!["0.1.0".into()],
        },
        records: Default::default(),
    }
}

fn snapshots() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn results_json_for_fixed_input_matches_snapshot_and_schema() {
    let json = fixed_report().to_json();
    assert_snapshot(&snapshots().join("fixed.results.json"), &json);
    require_or_skip(
        "results.json schema validation",
        checks::validate_json_schema(&json, Path::new(checks::RESULTS_SCHEMA_PATH)),
    );
    // The embedded schema is the file.
    assert_eq!(
        RESULTS_SCHEMA,
        std::fs::read_to_string(checks::RESULTS_SCHEMA_PATH).unwrap()
    );
}

#[test]
fn the_schema_rejects_what_it_forbids() {
    // Guards against a validator that accepts anything.
    let mut v: serde_json::Value = serde_json::from_str(&fixed_report().to_json()).unwrap();
    v["schema_version"] = 2.into();
    v["targets"][0]["combos"][0]["reps"] = (-1).into();
    v["targets"][0]["surprise"] = true.into();
    match checks::validate_json_schema(&v.to_string(), Path::new(checks::RESULTS_SCHEMA_PATH)) {
        Err(CheckError::Failed { output, .. }) => {
            for needle in ["/schema_version", "/targets/0/combos/0/reps", "surprise"] {
                assert!(output.contains(needle), "{needle} not reported:\n{output}");
            }
        }
        Err(CheckError::Missing(t))
            if std::env::var("L1_REQUIRE_ENGINES").as_deref() != Ok("1") =>
        {
            eprintln!("skipping: {t} is not installed");
        }
        other => panic!("expected schema violations, got {other:?}"),
    }
}

#[test]
fn html_escapes_everything_and_shows_what_matters() {
    let html = l1_reports::html::render_html(&fixed_report()).unwrap();
    for bad in [
        "<img src=x",
        "<script>alert",
        "<b>2 of 3</b>",
        "</pre><script>",
        "<i>cached",
    ] {
        assert!(!html.contains(bad), "unescaped `{bad}`");
    }
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("id=\"simulated-banner\""));
    // (minijinja's HTML escaping writes `/` as `&#x2f;`; browsers show it as `/`.)
    assert!(html.contains("truncated.json") && html.contains("foreign.json"));
    assert!(html.contains("no gate trial"));
    assert!(html.contains("href=\"file://&#x2f;tmp&#x2f;l1&#x2f;engine-logs&#x2f;x.log\""));
    assert!(html.contains("hit · nightly-20260101"));
    assert!(html.contains("class=\"frontier\"") || html.contains("path class=\"frontier\""));
    assert!(!html.contains("http://") && !html.contains("https://"));
    // Output fidelity: the column, its cells with their tooltips, and the pareto marker.
    assert!(html.contains(">fidelity</th>"), "no fidelity column");
    assert!(html.contains("<span class=\"mark\">✓</span> exact 1.000 · prefix 1.000"));
    assert!(html.contains("<span class=\"mark\">✗</span> exact 0.125 · prefix 0.359"));
    assert!(html.contains("tokens only</span>"));
    assert!(html.contains("not judged: the baseline record has no reference answers &lt;i&gt;"));
    assert!(html.contains("mean |Δ logprob|: 0.2184 nats (max 0.15)"));
    assert!(html.contains("failure: matched_prefix 0.359 &lt; 0.750 &quot;&gt;&lt;script&gt;"));
    assert!(
        html.contains("<span class=\"tag base\">baseline</span>")
            && html.contains(">reference</span>")
    );
    // The failing combos (hostile, and the unjudged one) are ringed on the plot, with a legend.
    assert_eq!(html.matches("<circle class=\"fidelity-ring\"").count(), 2);
    assert!(html.contains("fails output fidelity</div>"));
    // The verdict lines lead the summary: a FAIL row names no winner; the target without a
    // gate trial says so. The latency table shows the percentiles, `–` where absent.
    let verdicts =
        &html[html.find("id=\"verdicts\"").unwrap()..html.find("class=\"cards\"").unwrap()];
    assert!(verdicts.contains("no winner (failed: topk5)"), "{verdicts}");
    assert!(
        !verdicts.contains("v-winner"),
        "a FAIL row names a winner: {verdicts}"
    );
    assert!(verdicts.contains("no gate trial in this run"));
    assert!(html.contains("id=\"latency-0\""), "no latency table");
    for cell in [">40.00<", ">60.00<", ">80.00<", ">900.0<", ">1350<"] {
        assert!(html.contains(cell), "latency cell {cell} missing");
    }
    // The gate's explanation is shown whole in the target's section.
    assert!(html.contains("<pre class=\"gate-text\">topk5 failed: &lt;b&gt;2 of 3&lt;&#x2f;b&gt; do not clear &quot;the margin&quot;</pre>"));
    // Exactly one script element: ours.
    assert_eq!(html.matches("<script").count(), 1);
    let out = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"))
        .join("l1-test-artifacts");
    std::fs::create_dir_all(&out).unwrap();
    let page = out.join("report-fixed.html");
    std::fs::write(&page, &html).unwrap();
    let json = out.join("results-fixed.json");
    std::fs::write(&json, fixed_report().to_json()).unwrap();
    let r = checks::check_in_browser(
        &page,
        &out.join("report-fixed.png"),
        &checks::BrowserOptions {
            expect_sim: true,
            results: Some(&json),
            summary_shot: None,
        },
    );
    require_or_skip("the browser check of the fixed report", r.map(|_| ()));
}

fn fixed_state() -> MetricsState {
    let r = fixed_report();
    let mut s = MetricsState::default();
    let mut first = RunContribution::from_report(&r, "quick", 95.0);
    first.tune_trials = [("ok".to_string(), 3), ("remeasured".to_string(), 1)].into();
    first.tune_budget_used = [("tune-a::sim@1.0::m::h::w".to_string(), 0.5)].into();
    s.record("fixed-1", first);
    let mut ok = r.clone();
    ok.totals.failed = 0;
    ok.totals.unreadable = 0;
    ok.generated_unix_s += 86_400.0;
    let mut second = RunContribution::from_report(&ok, "exhaustive", 4000.0);
    second.tune_trials = [("ok".to_string(), 2), ("failed".to_string(), 1)].into();
    second.tune_budget_used = [("tune-a::sim@1.0::m::h::w".to_string(), 1.0)].into();
    s.record("fixed-2", second);
    s
}

#[test]
fn the_exposition_counts_runs_and_passes_promtool() {
    let text = fixed_state().exposition();
    assert_snapshot(&snapshots().join("fixed.metrics.prom"), &text);
    for line in [
        "inferenceiq_l1_runs_total{mode=\"quick\",status=\"failed\"} 1",
        "inferenceiq_l1_runs_total{mode=\"exhaustive\",status=\"passed\"} 1",
        "inferenceiq_l1_run_duration_seconds_bucket{le=\"120\"} 1",
        "inferenceiq_l1_run_duration_seconds_bucket{le=\"+Inf\"} 2",
        "inferenceiq_l1_run_duration_seconds_count 2",
        // 6 measured combos per report (5 + 1), twice; one cached each time.
        "inferenceiq_l1_combo_evaluations_total 12",
        "inferenceiq_l1_cache_hits_total 2",
        "inferenceiq_l1_cache_misses_total 10",
        "inferenceiq_l1_quality_gate_rejections_total{reason=\"topk5\"} 2",
        "# TYPE inferenceiq_l1_tune_trials_total counter",
        // Tune trials add up over runs; the budget gauge is the newer run's.
        "inferenceiq_l1_tune_trials_total{outcome=\"ok\"} 5",
        "inferenceiq_l1_tune_trials_total{outcome=\"failed\"} 1",
        "inferenceiq_l1_tune_trials_total{outcome=\"remeasured\"} 1",
        "inferenceiq_l1_tune_budget_used_ratio{spec=\"tune-a\",target=\"sim@1.0::m::h::w\"} 1",
        "# TYPE inferenceiq_l1_registry_entries gauge",
    ] {
        assert!(text.contains(line), "missing `{line}`:\n{text}");
    }
    let dir = std::env::temp_dir().join(format!("l1-prom-{}", std::process::id()));
    let file = dir.join("l1.prom");
    l1_reports::atomic::write(&file, text.as_bytes()).unwrap();
    require_or_skip("promtool check metrics", checks::promtool("metrics", &file));
    // The checker finds real problems (guards against one that accepts anything).
    let bad = dir.join("bad.prom");
    std::fs::write(
        &bad,
        "# TYPE x_total counter\nx_total{a=\"1\"} 1\nx_total{a=\"1\"} 2\n",
    )
    .unwrap();
    if let Err(CheckError::Missing(_)) = checks::promtool("metrics", &file) {
    } else {
        assert!(
            checks::promtool("metrics", &bad).is_err(),
            "duplicate series accepted"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_textfile_accumulates_runs_and_counts_a_rerun_once() {
    let dir = std::env::temp_dir().join(format!("l1-textfile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let file = dir.join("metrics/l1.prom");
    let r = fixed_report();
    let c = RunContribution::from_report(&r, "quick", 30.0);
    prometheus::update_textfile(&file, "a", c.clone()).unwrap();
    prometheus::update_textfile(&file, "a", c.clone()).unwrap();
    let text = prometheus::update_textfile(&file, "b", c).unwrap();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    assert!(
        text.contains("inferenceiq_l1_runs_total{mode=\"quick\",status=\"failed\"} 2"),
        "{text}"
    );
    // Only the textfile ends in .prom (the collector reads *.prom only).
    let proms: Vec<_> = std::fs::read_dir(dir.join("metrics"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "prom"))
        .collect();
    assert_eq!(proms.len(), 1);
    // A corrupt state file is an error naming it, not a silent reset of the counters.
    std::fs::write(prometheus::state_path(&file), "{").unwrap();
    let err = prometheus::update_textfile(&file, "c", RunContribution::default()).unwrap_err();
    assert!(err.to_string().contains("l1.prom.state.json"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A free loopback port (bind to 0, read it, release it).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(addr: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

#[test]
fn metrics_push_to_a_real_pushgateway() {
    let bin = ["prometheus-pushgateway", "pushgateway"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok()
        });
    let Some(bin) = bin else {
        require_or_skip(
            "the Pushgateway test",
            Err(CheckError::Missing(
                "prometheus-pushgateway (Debian package)".into(),
            )),
        );
        return;
    };
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = std::process::Command::new(bin)
        .arg(format!("--web.listen-address={addr}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let ready = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        http_get(&addr, "/-/ready").is_some_and(|r| r.contains(" 200 "))
    });
    let result = std::panic::catch_unwind(|| {
        assert!(ready, "pushgateway did not become ready on {addr}");
        let text = fixed_state().exposition();
        prometheus::push(&format!("http://{addr}/"), "ci host/1", &text).unwrap();
        let metrics = http_get(&addr, "/metrics").unwrap();
        let line = metrics
            .lines()
            .find(|l| l.starts_with("inferenceiq_l1_cache_hits_total{"))
            .unwrap_or_else(|| panic!("not pushed:\n{metrics}"));
        assert!(
            line.contains("job=\"l1\"") && line.contains("instance=\"ci host/1\""),
            "{line}"
        );
        assert!(line.ends_with(" 2"), "{line}");
        // A bad push is an error with the gateway's answer, not silence.
        let err = prometheus::push(&format!("http://{addr}"), "x", "not metrics {").unwrap_err();
        assert!(err.to_string().contains("HTTP 400"), "{err}");
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

#[test]
fn dashboard_and_alert_rules_use_exposed_metrics_and_pass_promtool() {
    let dir = repo().join("ci/monitoring");
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("grafana-l1-kernel-tuning.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dash["uid"], "iiq-l1-kernel-tuning");
    let titles: Vec<&str> = dash["panels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    for t in [
        "Run throughput",
        "Cache hit rate",
        "Quality-gate rejection rate",
        "Tune budget burn",
        "Registry queue depth",
    ] {
        assert!(titles.contains(&t), "no panel `{t}`: {titles:?}");
    }
    // Every metric a panel or rule queries is one the exposition declares.
    let exposed = fixed_state().exposition();
    let rules = std::fs::read_to_string(dir.join("l1-alerts.rules.yml")).unwrap();
    let text = format!("{dash}\n{rules}");
    let mut names = 0;
    for (i, _) in text.match_indices("inferenceiq_l1_") {
        let name: String = text[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if name == "inferenceiq_l1_" {
            continue; // the prefix in prose
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name);
        assert!(
            exposed.contains(&format!("# TYPE {family} ")),
            "`{name}` is not exposed"
        );
        names += 1;
    }
    assert!(names >= 10, "{names}");
    require_or_skip(
        "promtool check rules",
        checks::promtool("rules", &dir.join("l1-alerts.rules.yml")),
    );
    let test = std::process::Command::new("promtool")
        .args(["test", "rules"])
        .arg(dir.join("l1-alerts.test.yml"))
        .output();
    match test {
        Ok(o) => assert!(
            o.status.success(),
            "promtool test rules:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => {
            require_or_skip(
                "promtool test rules",
                Err(CheckError::Missing("promtool".into())),
            );
        }
    }
}
