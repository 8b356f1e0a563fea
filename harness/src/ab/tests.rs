#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;

fn opts(form: RegressionForm) -> Options {
    let side = Side {
        bin: PathBuf::from("/nonexistent"),
        root: PathBuf::from("/nonexistent"),
    };
    let mut o = Options::new(side.clone(), side, vec!["t".into()], PathBuf::from("/tmp"));
    o.form = form;
    o.metrics = vec!["output_tokens_per_s".into(), "ttft_p95_ms".into()];
    o
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// Rounds of `trials`, each round's (base, head) throughput and TTFT from `f(round, trial)`.
fn rounds(
    trials: &[&str],
    n: usize,
    f: impl Fn(usize, &str) -> ((f64, f64), (f64, f64)),
) -> Rounds {
    let mut out = Rounds::default();
    for r in 0..n {
        let mut sides = BTreeMap::new();
        for side in [SideName::Base, SideName::Head] {
            let mut m = BTreeMap::new();
            for t in trials {
                let ((tb, th), (lb, lh)) = f(r, t);
                let (tp, lat) = match side {
                    SideName::Base => (tb, lb),
                    SideName::Head => (th, lh),
                };
                let means = BTreeMap::from([
                    ("output_tokens_per_s".to_string(), tp),
                    ("ttft_p95_ms".to_string(), lat),
                ]);
                m.insert(t.to_string(), Measured::Means(means));
            }
            sides.insert(side, m);
        }
        out.measured.push(sides);
        out.seconds.push(BTreeMap::from([
            (SideName::Base, 1.0),
            (SideName::Head, 1.0),
        ]));
        out.seeds.push(BTreeMap::new());
    }
    out
}

fn compared(trials: &[&str]) -> Resolved {
    Resolved {
        compared: names(trials),
        ..Resolved::default()
    }
}

/// A round-to-round wobble of about ±1 % that cancels in no simple way.
fn wobble(r: usize) -> f64 {
    [1.0, 1.012, 0.991, 1.004, 0.995, 1.009, 0.988, 1.001][r % 8]
}

#[test]
fn a_ten_percent_throughput_loss_fails_and_its_interval_covers_it() {
    let rs = rounds(&["a", "b"], 6, |r, t| {
        let head = if t == "a" { 0.9 } else { 1.0 };
        (
            (100.0, 100.0 * head * wobble(r)),
            (50.0, 50.0 * wobble(r + 3)),
        )
    });
    for form in [
        RegressionForm::NonInferiority,
        RegressionForm::FailOnRegression,
    ] {
        let o = judge(&opts(form), compared(&["a", "b"]), &rs);
        assert_eq!(o.verdict, "failed", "{form:?}: {}", text(&o));
        assert_eq!(o.exit_code, 1);
        let a = &o.trials[0];
        assert!(!a.passed);
        let tp = &a.metrics[0];
        assert!(tp.ratio_ci.0 < 0.9 && 0.9 < tp.ratio_ci.1, "{tp:?}");
        assert!(tp.ratio < 0.91 && tp.ratio > 0.89, "{tp:?}");
        assert!(
            o.trials[1].passed,
            "the unchanged trial passes: {}",
            text(&o)
        );
    }
}

#[test]
fn holm_runs_across_every_trial_metric_pair() {
    // Slight regressions of 6 % on every trial at ε 5 %: each p alone is small, Holm's is m·p
    // at most.
    let rs = rounds(&["a", "b", "c"], 6, |r, _| {
        ((100.0, 94.0 * wobble(r)), (50.0, 50.0))
    });
    let o = judge(
        &opts(RegressionForm::FailOnRegression),
        compared(&["a", "b", "c"]),
        &rs,
    );
    let ps: Vec<f64> = o
        .trials
        .iter()
        .flat_map(|t| t.metrics.iter().map(|m| m.p))
        .collect();
    let adj: Vec<f64> = (o.trials.iter())
        .flat_map(|t| t.metrics.iter().map(|m| m.adjusted_p))
        .collect();
    assert_eq!(adj, crate::stats::holm(&ps), "one family of 6 pairs");
    assert!(adj.iter().zip(&ps).all(|(a, p)| a >= p));
    // Under non-inferiority nothing is adjusted (intersection–union).
    let o = judge(
        &opts(RegressionForm::NonInferiority),
        compared(&["a", "b", "c"]),
        &rs,
    );
    assert!(
        o.trials
            .iter()
            .flat_map(|t| &t.metrics)
            .all(|m| m.adjusted_p == m.p)
    );
}

#[test]
fn identical_sides_pass_even_without_spread() {
    // Paired seeds on the sim: both sides measure exactly the same, every round.
    let rs = rounds(&["a"], 4, |r, _| {
        ((100.0 * wobble(r), 100.0 * wobble(r)), (50.0, 50.0))
    });
    for form in [
        RegressionForm::NonInferiority,
        RegressionForm::FailOnRegression,
    ] {
        let o = judge(&opts(form), compared(&["a"]), &rs);
        assert_eq!(o.verdict, "passed", "{form:?}: {}", text(&o));
        assert_eq!(o.trials[0].metrics[0].ratio_ci, (1.0, 1.0));
    }
}

#[test]
fn latency_is_judged_in_its_own_direction() {
    // TTFT 10 % higher on the head: a regression; 10 % lower: an improvement.
    for (head, fails) in [(1.1, true), (0.9, false)] {
        let rs = rounds(&["a"], 6, |r, _| {
            ((100.0, 100.0), (50.0, 50.0 * head * wobble(r)))
        });
        let o = judge(&opts(RegressionForm::NonInferiority), compared(&["a"]), &rs);
        let ttft = &o.trials[0].metrics[1];
        assert_eq!(!ttft.passed, fails, "{ttft:?}");
        assert!((ttft.improvement - 1.0 / ttft.ratio).abs() < 1e-12);
    }
}

#[test]
fn failures_and_missing_trials_are_never_passed() {
    let mut rs = rounds(&["a", "b"], 3, |_, _| ((100.0, 100.0), (50.0, 50.0)));
    rs.measured[1].get_mut(&SideName::Head).unwrap().insert(
        "a".into(),
        Measured::Failed("engine crashed at rep 2".into()),
    );
    let o = judge(
        &opts(RegressionForm::NonInferiority),
        compared(&["a", "b"]),
        &rs,
    );
    assert_eq!((o.verdict, o.exit_code), ("failed", 1), "{}", text(&o));
    assert_eq!(o.failed[0].side, Some(SideName::Head));
    assert_eq!(o.failed[0].round, Some(2));
    assert!(text(&o).contains("engine crashed at rep 2"));
    // The base failing, or a trial not run: the comparison could not be made.
    rs.measured[1]
        .get_mut(&SideName::Head)
        .unwrap()
        .insert("a".into(), Measured::NotRun("ignored".into()));
    let o = judge(
        &opts(RegressionForm::NonInferiority),
        compared(&["a", "b"]),
        &rs,
    );
    assert_eq!((o.verdict, o.exit_code), ("error", 2), "{}", text(&o));
    let md = markdown(&o);
    assert!(
        md.contains("### Not comparable") && md.contains("round 2"),
        "{md}"
    );
}

#[test]
fn the_selection_is_sorted_against_both_sides() {
    let base = names(&[
        "s::t::a",
        "s::t::b",
        "s::t::baseline",
        "s::t::gate",
        "s::u::x",
    ]);
    let head = names(&[
        "s::t::a",
        "s::t::c",
        "s::t::baseline",
        "s::t::gate",
        "invalid::bad",
    ]);
    let r = resolve(
        &names(&["s::t::gate", "s::u::x", "nope", "s::v::tune"]),
        &base,
        &head,
    );
    assert_eq!(r.compared, names(&["s::t::a", "s::t::baseline"]));
    assert_eq!(r.new_in_head, names(&["s::t::c"]));
    assert_eq!(r.removed, names(&["s::t::b", "s::u::x"]));
    assert_eq!(r.unknown, names(&["nope"]));
    assert_eq!(r.skipped[0].0, "s::v::tune");
    assert_eq!(r.invalid[&SideName::Head], names(&["invalid::bad"]));
}

#[test]
fn selections_read_lines_and_affected_json() {
    let dir = std::env::temp_dir().join(format!("l1-ab-sel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let lines = dir.join("trials.txt");
    std::fs::write(&lines, "# selected\nsim::a\n\n  sim::b  \n").unwrap();
    assert_eq!(
        read_selection(&lines).unwrap(),
        names(&["sim::a", "sim::b"])
    );
    let json = dir.join("affected.json");
    std::fs::write(
        &json,
        r#"{"trials": ["x", "y"], "run_trials": ["x"], "removed_trials": ["z"]}"#,
    )
    .unwrap();
    assert_eq!(read_selection(&json).unwrap(), names(&["x", "z"]));
    std::fs::write(&json, r#"{"targets": []}"#).unwrap();
    assert!(matches!(
        read_selection(&json),
        Err(AbError::SelectionJson { .. })
    ));
    let e = read_selection(&dir.join("missing"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("could not read the trial selection"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rounds_get_their_own_seeds_shared_by_both_sides_when_paired() {
    let mut o = opts(RegressionForm::NonInferiority);
    let seeds: Vec<u64> = (0..6).map(|r| o.seed_of(r, SideName::Base)).collect();
    let mut unique = seeds.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6);
    assert!((0..6).all(|r| o.seed_of(r, SideName::Head) == seeds[r]));
    o.pairing = Pairing::Independent;
    assert!((0..6).all(|r| o.seed_of(r, SideName::Head) != seeds[r]));
    assert!((0..6).all(|r| o.seed_of(r, SideName::Base) == seeds[r]));
}

#[test]
fn bad_options_are_refused_with_the_reason() {
    let o = opts(RegressionForm::NonInferiority);
    let e = o.check().unwrap_err().to_string();
    assert!(
        e.contains("the base binary `/nonexistent` cannot be read"),
        "{e}"
    );
}

#[test]
fn a_baseline_and_its_combo_twin_are_compared_once() {
    let mut rs = rounds(&["s::t::a", "s::t::baseline", "s::t::b"], 2, |_, t| {
        let head = if t == "s::t::b" { 1.0 } else { 0.8 };
        ((100.0, 100.0 * head), (50.0, 50.0))
    });
    for (t, key) in [
        ("s::t::a", "k1"),
        ("s::t::baseline", "k1"),
        ("s::t::b", "k2"),
    ] {
        rs.keys
            .insert(t.into(), (0..4).map(|i| format!("{i}:{key}")).collect());
    }
    let o = judge(
        &opts(RegressionForm::FailOnRegression),
        compared(&["s::t::a", "s::t::b", "s::t::baseline"]),
        &rs,
    );
    let names: Vec<&str> = o.trials.iter().map(|t| t.trial.as_str()).collect();
    assert_eq!(names, ["s::t::a", "s::t::b"]);
    assert_eq!(o.skipped.len(), 1);
    assert!(
        o.skipped[0].1.contains("the same measurement as `s::t::a`"),
        "{:?}",
        o.skipped
    );
}
