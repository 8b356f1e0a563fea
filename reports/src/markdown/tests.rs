//! The Markdown summary on fixed report models: a passing run, a failing regression, an
//! unfinished run, ignored and filtered-out trials, hostile names, the size limit.

use std::collections::BTreeMap;

use super::*;
use crate::model::*;

const REGRESSED: &str = "regression failed (fail_on_regression): winner attn=flash_attn_v3 against the baseline; fail on evidence of regression: no metric may be shown worse than the baseline by more than its ε (one-sided p < 0.0250, Holm-adjusted across the 2 metrics) (default ε 5.0 %, never below the noise floor); regressed: ttft_p95_ms: -18.8 % [-22.0 %, -15.9 %], worse than -10.0 %? one-sided p=0.001 (detects a regression of ≥ 4.1 % with 80 % power; a 11.0 % one needs 7 reps per arm in 1 launch)";

fn combo(label: &str, vs: Option<(f64, [f64; 2])>) -> ComboReport {
    ComboReport {
        label: label.into(),
        trial: format!("sim::s::t::{label}"),
        is_baseline: label == "baseline",
        is_winner: false,
        passed: true,
        message: String::new(),
        dims: BTreeMap::new(),
        knobs: BTreeMap::new(),
        measurement: None,
        error: None,
        simulated: true,
        engine_version: None,
        duration_s: 1.0,
        reps: 7,
        reps_used: 5,
        values: Vec::new(),
        trimmed: Vec::new(),
        trimmed_mean: Some(100.0),
        interval: None,
        vs_baseline: vs.map(|(v, ci)| VsBaseline {
            improvement_pct: v,
            interval_pct: Some(ci),
            p: Some(0.01),
            adjusted_p: Some(0.02),
            effect_size: Some(1.0),
            source: "gate".into(),
        }),
        throughput: None,
        latency_p95_ms: None,
        on_frontier: false,
        cache_hit: None,
        logs: Vec::new(),
        fidelity: None,
        latency: None,
    }
}

fn gate(method: &str, passed: bool, message: &str, winner: Option<&str>) -> GateReport {
    GateReport {
        method: method.into(),
        passed,
        message: message.into(),
        winner: winner.map(Into::into),
        p_best: None,
        checks: Vec::new(),
    }
}

/// A passing topk5 target whose winner is established, +10.1 % [+8.6, +11.6].
fn target(id: &str, passed: Option<bool>) -> TargetReport {
    let winner = "attn=flash_attn_v3";
    TargetReport {
        id: id.into(),
        spec: id.split("::").next().unwrap_or("s").into(),
        engine: "sim".into(),
        engine_version: "1.0".into(),
        model: "m".into(),
        hardware: "h100-sxm".into(),
        workload: "chat".into(),
        simulated: true,
        mode: "quick".into(),
        passed,
        metric: MetricRef {
            name: "output_tokens_per_s".into(),
            unit: "tok/s".into(),
            higher_is_better: true,
        },
        latency_metric: "e2e_p95_ms".into(),
        trim: 0.1,
        baseline: Some("baseline".into()),
        winner: Some(winner.into()),
        winner_established: passed == Some(true),
        p_best: Some(0.968),
        inconclusive: None,
        gates: vec![gate(
            "topk5",
            passed != Some(false),
            "topk5 passed",
            Some(winner),
        )],
        combos: vec![
            combo("baseline", None),
            combo(winner, Some((10.1, [8.6, 11.6]))),
        ],
        main_effects: Vec::new(),
        provenance: TargetProvenance::default(),
        notes: Vec::new(),
    }
}

fn report(targets: Vec<TargetReport>, totals: Totals) -> RunReport {
    RunReport {
        schema_version: RESULTS_SCHEMA_VERSION,
        run_id: "r1".into(),
        generated_unix_s: 0.0,
        harness_version: "0.1.0".into(),
        simulated: true,
        totals,
        targets,
        ignored: Vec::new(),
        invalid: Vec::new(),
        unfinished: Vec::new(),
        last_activity_unix_s: None,
        unreadable: Vec::new(),
        provenance: Provenance::default(),
        records: TrialListing::default(),
    }
}

fn totals(status: &str, passed: usize, failed: usize) -> Totals {
    Totals {
        trials: passed + failed,
        passed,
        failed,
        status: status.into(),
        ..Totals::default()
    }
}

fn md(r: &RunReport) -> String {
    Markdown {
        report_link: Some("report.html".into()),
        ..Markdown::default()
    }
    .render(r)
}

/// The lines of the table that follows the line starting with `head`.
fn table<'a>(text: &'a str, head: &str) -> Vec<&'a str> {
    (text.lines())
        .skip_while(|l| !l.starts_with(head))
        .take_while(|l| l.starts_with('|'))
        .collect()
}

/// Cell separators of a table row: `|` not escaped by a backslash.
fn separators(row: &str) -> usize {
    let b = row.as_bytes();
    (0..b.len())
        .filter(|&i| b[i] == b'|' && (i == 0 || b[i - 1] != b'\\'))
        .count()
}

#[test]
fn a_passing_run_leads_with_its_status_and_counts_and_shows_each_winner() {
    let r = report(
        vec![target("s::sim@1.0::m::h100-sxm::chat", Some(true))],
        totals("passed", 3, 0),
    );
    let m = md(&r);
    let first = m.lines().next().unwrap();
    assert_eq!(
        first,
        "## ✅ l1 run `r1`: PASSED — 3 passed, 0 failed, 0 ignored, 0 filtered out"
    );
    assert!(m.contains("[HTML report](report.html)"), "{m}");
    let t = table(&m, "| Verdict");
    assert_eq!(t.len(), 3, "{m}");
    assert!(
        t[2].starts_with("| ✅ PASS | `s::sim@1.0::m::h100-sxm::chat` (sim) | topk5 ✓ | winner `attn=flash_attn_v3` +10.1 % [+8.6, +11.6] (output\\_tokens\\_per\\_s), P(best) 0.97 | — |"),
        "{}",
        t[2]
    );
    for section in ["### Regressions", "### Not run", "### Unfinished"] {
        assert!(!m.contains(section), "{m}");
    }
}

#[test]
fn a_failing_regression_shows_the_metric_ratio_interval_and_epsilon() {
    let mut t = target("pr::sim@1.0::m::h100-sxm::chat", Some(false));
    t.gates = vec![
        gate("regression", false, REGRESSED, Some("attn=flash_attn_v3")),
        gate(
            "pareto",
            false,
            "pareto failed: the baseline is dominated\n  more",
            None,
        ),
    ];
    let ok = target("pr::sim@1.0::m::h100-sxm::long", Some(true));
    // The passing target comes first in the model; the failing one leads the table.
    let r = report(vec![ok, t], totals("failed", 6, 1));
    let m = md(&r);
    assert!(
        m.starts_with("## ❌ l1 run `r1`: FAILED — 6 passed, 1 failed"),
        "{m}"
    );
    let rows = table(&m, "| Verdict");
    assert_eq!(rows.len(), 4, "{m}");
    assert!(
        rows[2].starts_with("| ❌ FAIL | `pr::sim@1.0::m::h100-sxm::chat`"),
        "{m}"
    );
    assert!(
        rows[2].contains("| regression ✗ · pareto ✗ | no winner |"),
        "{m}"
    );
    assert!(
        rows[2]
            .ends_with("| `ttft_p95_ms` 0.812 [0.780, 0.841] (-18.8 %, ε 10.0 %) **regressed** |"),
        "{}",
        rows[2]
    );
    assert!(rows[3].starts_with("| ✅ PASS |"), "{m}");
    let reg = table(&m, "| Target | Combo");
    assert_eq!(reg.len(), 3, "{m}");
    assert_eq!(
        reg[2],
        "| `pr::sim@1.0::m::h100-sxm::chat` | `attn=flash_attn_v3` vs baseline | `ttft_p95_ms` | 0.812 [0.780, 0.841] | -18.8 % [-22.0, -15.9] | 10.0 % | 0.001 | regressed |"
    );
    // The regression is explained in its table; the pareto failure gets its first line.
    assert!(m.contains("### Other failed gates\n\n- `pr::sim@1.0::m::h100-sxm::chat`: **pareto** failed: the baseline is dominated\n"), "{m}");
    assert!(!m.contains("**regression** failed"), "{m}");
    for t in [&rows, &reg] {
        for row in t.iter() {
            assert_eq!(separators(row), separators(t[0]), "{row}");
        }
    }
}

#[test]
fn an_unfinished_or_failed_run_never_reads_as_passed() {
    let t = target("s::sim@1.0::m::h::w", Some(true));
    // Unfinished: a trial has no outcome, whatever the recorded status says.
    let mut r = report(vec![t.clone()], totals("", 2, 0));
    r.unfinished = vec!["sim::s::x::gate (started, its process is gone without an outcome)".into()];
    r.totals.unfinished = 1;
    let m = md(&r);
    assert!(
        m.starts_with("## ⏳ l1 run `r1`: UNFINISHED — 2 passed, 0 failed, 0 ignored, 0 filtered out, 1 unfinished\n"),
        "{m}"
    );
    assert!(!m.contains("PASSED"), "{m}");
    assert!(m.contains("### Unfinished\n\n1 trial(s) asked to run have no outcome:\n\n- `sim::s::x::gate (started, its process is gone without an outcome)`\n"), "{m}");
    // Failed trials or unreadable files without a recorded status: failed.
    let r = report(vec![t.clone()], totals("", 2, 1));
    assert!(md(&r).contains(": FAILED —"));
    let mut r = report(vec![t.clone()], totals("passed", 2, 0));
    r.totals.unreadable = 1;
    r.unreadable = vec![Unreadable {
        file: "trials/x.json".into(),
        error: "truncated".into(),
    }];
    let m = md(&r);
    assert!(
        m.contains(": FAILED —") && m.contains("**1 file(s) could not be read**"),
        "{m}"
    );
    assert!(
        m.contains("### Files that could not be read\n\n- `trials/x.json`: truncated\n"),
        "{m}"
    );
    // A status this version does not know is shown, never as passed.
    let r = report(vec![t], totals("aborted", 2, 0));
    assert!(md(&r).contains(": UNKNOWN —"));
}

#[test]
fn ignored_trials_are_grouped_by_reason_and_filtered_out_counted() {
    let mut r = report(
        vec![target("s::vllm@0.11::m::h100-sxm::chat", None)],
        totals("passed", 0, 0),
    );
    r.ignored = vec![
        IgnoredGroup {
            reason: "engine vllm is not installed".into(),
            count: 4,
        },
        IgnoredGroup {
            reason: "needs hardware h100-sxm (this machine: cpu)".into(),
            count: 2,
        },
    ];
    r.totals.ignored = 6;
    r.totals.filtered_out = 9;
    let m = md(&r);
    assert!(
        m.starts_with("## ✅ l1 run `r1`: PASSED — 0 passed, 0 failed, 6 ignored, 9 filtered out"),
        "{m}"
    );
    assert!(m.contains("### Not run\n\n- **4** ignored: engine vllm is not installed\n- **2** ignored: needs hardware h100-sxm (this machine: cpu)\n- **9** filtered out by the runner's filter, partition or selection\n"), "{m}");
    let rows = table(&m, "| Verdict");
    assert!(
        rows[2].starts_with("| no gate trial |")
            && rows[2].contains("| no gate trial in this run |"),
        "{m}"
    );
}

#[test]
fn names_and_reasons_cannot_break_the_table_or_format() {
    let id = "a|b::sim@1.0::m`x``y::*bold*::<script>alert(1)</script>";
    let mut t = target(id, Some(false));
    t.gates = vec![gate(
        "topk5",
        false,
        "topk5 failed: *x* | [link](http://e) @team #1",
        None,
    )];
    let mut r = report(vec![t], totals("failed", 0, 1));
    r.ignored = vec![IgnoredGroup {
        reason: "needs <b>GPU</b> | _maybe_ @here".into(),
        count: 1,
    }];
    r.totals.ignored = 1;
    let m = md(&r);
    let rows = table(&m, "| Verdict");
    assert_eq!(separators(rows[2]), separators(rows[0]), "{}", rows[2]);
    // The id is one code span with a fence longer than its backticks, `|` escaped in the cell.
    assert!(
        rows[2].contains("```a\\|b::sim@1.0::m`x``y::*bold*::<script>alert(1)</script>```"),
        "{}",
        rows[2]
    );
    assert!(
        m.contains("needs \\<b\\>GPU\\</b\\> \\| \\_maybe\\_ \\@here"),
        "{m}"
    );
    assert!(
        m.contains("**topk5** failed: \\*x\\* \\| \\[link\\](http://e) \\@team \\#1"),
        "{m}"
    );
    assert!(!m.contains("<script>alert(1)</script>\n"), "{m}");
    assert_eq!(code("`x`", false), "`` `x` ``");
    assert_eq!(code("", false), "`  `");
    assert_eq!(text("a\nb", false), "a b");
    assert_eq!(link_target("https://x/a b(1)"), "https://x/a%20b%281%29");
}

#[test]
fn a_big_run_is_cut_to_the_limit_failures_first_and_says_how_many_rows_were_left_out() {
    let mut targets: Vec<TargetReport> = (0..3000)
        .map(|i| target(&format!("s::sim@1.0::m::h::w{i:04}"), Some(true)))
        .collect();
    let mut bad = target("s::sim@1.0::m::h::zz-failing", Some(false));
    bad.gates = vec![gate(
        "regression",
        false,
        REGRESSED,
        Some("attn=flash_attn_v3"),
    )];
    targets.push(bad);
    let mut r = report(targets, totals("failed", 3000, 1));
    r.ignored = vec![IgnoredGroup {
        reason: "no GPU".into(),
        count: 7,
    }];
    let full = Markdown {
        max_bytes: usize::MAX,
        ..Markdown::default()
    }
    .render(&r);
    assert!(full.len() > DEFAULT_MAX_BYTES, "{}", full.len());
    assert!(!full.contains("left out"));
    let m = md(&r);
    assert!(m.len() <= DEFAULT_MAX_BYTES, "{}", m.len());
    let rows = table(&m, "| Verdict");
    let shown = rows.len() - 2;
    assert!(shown > 100, "{shown}");
    assert!(
        rows[2].contains("zz-failing"),
        "the failing target leads: {}",
        rows[2]
    );
    assert!(
        m.contains(&format!("_… {} more targets left out to keep this summary under {DEFAULT_MAX_BYTES} bytes; the HTML report has them all._", 3001 - shown)),
        "{}",
        &m[m.len() - 2000..]
    );
    // The sections after the table keep their rows.
    assert!(
        m.contains("### Regressions") && m.contains("- **7** ignored: no GPU"),
        "{m}"
    );
    // Even a limit below the fixed parts is kept, on a character boundary.
    for max in [100, 300, 1000] {
        let m = Markdown {
            max_bytes: max,
            ..Markdown::default()
        }
        .render(&r);
        assert!(m.len() <= max, "{max}: {}", m.len());
    }
}

#[test]
fn an_inconclusive_pass_is_marked_and_explained() {
    let mut t = target("s::sim@1.0::m::h::w", Some(true));
    t.inconclusive = Some("more reps or launches needed (suggest 21 reps)".into());
    t.winner_established = false;
    let m = md(&report(vec![t], totals("passed", 3, 0)));
    let rows = table(&m, "| Verdict");
    assert!(rows[2].starts_with("| ⚠️ inconclusive |"), "{m}");
    assert!(
        rows[2].contains("best `attn=flash_attn_v3`") && rows[2].contains("not established"),
        "{m}"
    );
    assert!(m.contains("### Inconclusive\n\n- `s::sim@1.0::m::h::w`: more reps or launches needed (suggest 21 reps)\n"), "{m}");
}

/// markdownlint-cli2 accepts the summaries of the fixed models (skipped with the reason when it
/// is not installed, unless `L1_REQUIRE_ENGINES=1`).
#[test]
fn markdownlint_accepts_the_summaries() {
    let mut bad = target("pr::sim@1.0::m::h100-sxm::chat", Some(false));
    bad.gates = vec![
        gate("regression", false, REGRESSED, Some("attn=flash_attn_v3")),
        gate("pareto", false, "pareto failed: x", None),
    ];
    let mut inconclusive = target("a|b::sim@1.0::m`x``y::*bold*::<i>w</i>", Some(true));
    inconclusive.inconclusive = Some("more reps <needed>".into());
    let mut r = report(
        vec![target("s::sim@1.0::m::h::w", Some(true)), bad, inconclusive],
        totals("failed", 4, 1),
    );
    r.ignored = vec![IgnoredGroup {
        reason: "needs <b>GPU</b> | _maybe_".into(),
        count: 2,
    }];
    r.totals.filtered_out = 3;
    r.unfinished = vec!["x::gate (still running)".into()];
    r.totals.unfinished = 1;
    let dir = tempfile::tempdir().unwrap();
    for (i, m) in [md(&r), md(&report(Vec::new(), totals("passed", 0, 0)))]
        .iter()
        .enumerate()
    {
        let path = dir.path().join(format!("summary-{i}.md"));
        std::fs::write(&path, m).unwrap();
        crate::checks::require_or_skip("markdownlint-cli2", crate::checks::markdownlint(&path));
    }
}

#[test]
fn recorded_checks_are_used_and_a_message_without_numbers_still_gets_its_row() {
    // A gate that recorded its checks: the row shows them even when the message states none
    // (the parser is the fallback for runs recorded before gates wrote checks).
    let mut g = gate(
        "regression",
        false,
        "regression failed: see the HTML report",
        Some("attn=x"),
    );
    g.checks = vec![RegressionCheck {
        combo: Some("attn=x".into()),
        against_run: Some("main-7".into()),
        metric: "e2e_p95_ms".into(),
        change_pct: -12.345,
        interval_pct: [-15.01, -9.6],
        epsilon_pct: 5.0,
        p: 0.0004,
        failing: true,
        finding: Finding::NotShownWithin,
    }];
    let mut t = target("pr::sim@1.0::m::h100-sxm::chat", Some(false));
    t.gates = vec![g];
    let m = md(&report(vec![t], totals("failed", 2, 1)));
    let reg = table(&m, "| Target | Combo");
    assert_eq!(reg.len(), 3, "{m}");
    assert_eq!(
        reg[2],
        "| `pr::sim@1.0::m::h100-sxm::chat` | `attn=x` vs run `main-7` | `e2e_p95_ms` | 0.877 [0.850, 0.904] | -12.3 % [-15.0, -9.6] | 5.0 % | 0.000 | not shown within ε |"
    );
    // Explained by its checks, so not repeated under "Other failed gates".
    assert!(!m.contains("**regression** failed"), "{m}");
    // A recorded check wins over the message's numbers.
    let mut both = gate("regression", false, REGRESSED, Some("attn=flash_attn_v3"));
    both.checks = vec![RegressionCheck {
        combo: Some("attn=flash_attn_v3".into()),
        against_run: None,
        metric: "ttft_p95_ms".into(),
        change_pct: -30.0,
        interval_pct: [-33.0, -27.0],
        epsilon_pct: 10.0,
        p: 0.001,
        failing: true,
        finding: Finding::Regressed,
    }];
    let mut t = target("pr::sim@1.0::m::h100-sxm::chat", Some(false));
    t.gates = vec![both];
    let m = md(&report(vec![t], totals("failed", 2, 1)));
    assert!(
        m.contains("0.700 [0.670, 0.730] | -30.0 % [-33.0, -27.0]"),
        "{m}"
    );
    assert!(!m.contains("-18.8"), "{m}");
}
