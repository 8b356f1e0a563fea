//! Decision accuracy on the sim engine's known truth (`l1_harness::accuracy`), with fixed seeds
//! (deterministic). Every error rate is asserted where it is hardest to hold — at the boundary of
//! the procedure's null — and every power at a stated effect, each with the tolerance of its 95 %
//! Wilson interval: a rate "holds" when its interval reaches down to the nominal level, and a
//! power "holds" when its interval reaches up to the stated value. The stated powers are the
//! published table's (`docs/src/statistics.md`, "Measured error rates", 20,000 comparisons per
//! cell) less a few points, so a change that costs real power fails here.
//!
//! Fewer comparisons than the published table (so the whole file takes well under a minute in
//! release on two cores), which widens the intervals, not the claims.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

use std::path::Path;

use l1_harness::accuracy::{self, Cell, CellOutcome, Rate};
use l1_harness::profiles::Catalogs;

fn cells() -> Vec<Cell> {
    accuracy::published_cells()
}

/// Run the published cell `id` with `n` comparisons (base seed 42, two threads) on the workload
/// `l1 accuracy` uses (any closed-loop workload gives the same counts; see
/// `the_workload_does_not_change_the_counts`).
fn run(id: &str, n: usize) -> CellOutcome {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cats = Catalogs::load(root).unwrap();
    let cell = cells()
        .into_iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no published cell `{id}`"));
    let o = accuracy::run_cell(
        &cats.models["llama-3.1-8b"],
        &cats.hardware["h100-sxm"],
        &cats.workloads["cpu-smoke"],
        &cell,
        n,
        42,
        2,
    )
    .unwrap();
    for r in &o.rates {
        eprintln!(
            "{id} {}: {:.2} % [{:.2}, {:.2}] (nominal {:?})",
            r.name,
            r.rate * 100.0,
            r.ci95.0 * 100.0,
            r.ci95.1 * 100.0,
            r.nominal
        );
    }
    o
}

fn rate<'a>(o: &'a CellOutcome, name: &str) -> &'a Rate {
    o.rates.iter().find(|r| r.name == name).unwrap_or_else(|| {
        panic!(
            "{}: no rate `{name}` (has {:?})",
            o.cell.id,
            o.rates.iter().map(|r| r.name).collect::<Vec<_>>()
        )
    })
}

/// The error rate is at most `nominal` within its 95 % interval.
fn assert_holds(o: &CellOutcome, name: &str, nominal: f64) {
    let r = rate(o, name);
    assert!(
        r.ci95.0 <= nominal,
        "{} {name}: {:.2} % [{:.2}, {:.2}] over {} comparisons exceeds its nominal {:.1} %",
        o.cell.id,
        r.rate * 100.0,
        r.ci95.0 * 100.0,
        r.ci95.1 * 100.0,
        r.n,
        nominal * 100.0
    );
    assert_eq!(r.nominal, Some(nominal), "{} {name}: nominal", o.cell.id);
    assert_eq!(r.holds, Some(true));
}

/// The power is at least `stated` within its 95 % interval.
fn assert_power(o: &CellOutcome, name: &str, stated: f64) {
    let r = rate(o, name);
    assert!(
        r.ci95.1 >= stated,
        "{} {name}: power {:.2} % [{:.2}, {:.2}] over {} comparisons, below the stated {:.1} %",
        o.cell.id,
        r.rate * 100.0,
        r.ci95.0 * 100.0,
        r.ci95.1 * 100.0,
        r.n,
        stated * 100.0
    );
    assert_eq!(
        r.nominal, None,
        "{} {name}: a power has no nominal",
        o.cell.id
    );
}

#[test]
fn wilson_interval_matches_known_values() {
    // Newcombe (1998), Table I: 81/263 -> [0.2553, 0.3662]; 0/10 -> [0, 0.2775]; 10/10 -> [0.7225, 1].
    let (lo, hi) = accuracy::wilson(81, 263);
    assert!(
        (lo - 0.2553).abs() < 5e-4 && (hi - 0.3662).abs() < 5e-4,
        "{lo} {hi}"
    );
    let (lo, hi) = accuracy::wilson(0, 10);
    assert!(lo.abs() < 1e-12 && (hi - 0.2775).abs() < 5e-4, "{lo} {hi}");
    let (lo, hi) = accuracy::wilson(10, 10);
    assert!(
        (lo - 0.7225).abs() < 5e-4 && (hi - 1.0).abs() < 1e-12,
        "{lo} {hi}"
    );
}

#[test]
fn cells_have_independent_streams_and_results_do_not_depend_on_threads() {
    let all = cells();
    let mut seeds: Vec<u64> = all.iter().map(|c| accuracy::cell_seed(42, &c.id)).collect();
    seeds.sort_unstable();
    seeds.dedup();
    assert_eq!(seeds.len(), all.len(), "cell ids and seeds are unique");
    assert_ne!(
        accuracy::cell_seed(42, &all[0].id),
        accuracy::cell_seed(43, &all[0].id)
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cats = Catalogs::load(root).unwrap();
    let (m, h, w) = (
        &cats.models["llama-3.1-8b"],
        &cats.hardware["h100-sxm"],
        &cats.workloads["cpu-smoke"],
    );
    let cell = all.iter().find(|c| c.id == "pair-normal-7x1@+4").unwrap();
    let one = accuracy::run_cell(m, h, w, cell, 300, 42, 1).unwrap();
    let three = accuracy::run_cell(m, h, w, cell, 300, 42, 3).unwrap();
    let counts = |o: &CellOutcome| o.rates.iter().map(|r| r.count).collect::<Vec<_>>();
    assert_eq!(counts(&one), counts(&three));
    let other = accuracy::run_cell(m, h, w, cell, 300, 7, 2).unwrap();
    assert_ne!(
        counts(&one),
        counts(&other),
        "another base seed, another draw"
    );
}

/// The workload only sets the truth the noise multiplies: the same cell on two closed-loop
/// workloads makes the same decisions.
#[test]
fn the_workload_does_not_change_the_counts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cats = Catalogs::load(root).unwrap();
    let cell = cells()
        .into_iter()
        .find(|c| c.id == "regression-7x1@-5")
        .unwrap();
    let counts = |w: &str| {
        let o = accuracy::run_cell(
            &cats.models["llama-3.1-8b"],
            &cats.hardware["h100-sxm"],
            &cats.workloads[w],
            &cell,
            200,
            42,
            2,
        )
        .unwrap();
        o.rates.iter().map(|r| r.count).collect::<Vec<_>>()
    };
    assert_eq!(counts("cpu-smoke"), counts("interactive-single"));
}

/// Yuen's test with the launch-to-launch component keeps its one-sided false claims at α/2 with
/// all reps in one launch and with reps spread over three; ignoring the component does not.
#[test]
fn yuen_with_the_launch_term_holds_its_level_with_one_and_several_launches() {
    let one = run("pair-normal-7x1@+0", 4000);
    assert_holds(&one, "yuen", 0.025);
    let r = rate(&one, "yuen_reps_only");
    assert!(
        r.ci95.0 > 0.025,
        "the reps-only test must be measurably liberal: {:.4}",
        r.rate
    );
    let three = run("pair-normal-15x3@+0", 2000);
    assert_holds(&three, "yuen", 0.025);
}

/// The topk5 gate's size at its boundary (a true win exactly at 1 + margin) is at most α, and
/// it finds a true win of margin + 3 % (3× the floor) at its stated power.
#[test]
fn gate_size_at_its_boundary_and_power_at_three_times_the_floor() {
    let boundary = run("pair-normal-7x1@+3", 4000);
    assert_holds(&boundary, "topk5_passes", 0.025);
    let win = run("pair-normal-7x1@+6", 2000);
    assert_power(&win, "topk5_passes", 0.30);
    assert_power(&win, "yuen", 0.85);
}

/// Forty combos all exactly at the threshold: the probability that topk5 makes any claim that a
/// combo clears it (every such claim is false) is at most α.
#[test]
fn topk5_selection_among_forty_combos_at_the_threshold_holds_alpha() {
    let o = run("topk-40-k5@+3", 600);
    assert_holds(&o, "any_claim", 0.025);
    assert_holds(&o, "topk5_passes", 0.025);
}

/// The regression gate's two forms, each at its boundary (a true regression of exactly ε = 5 %)
/// and at its stated power.
#[test]
fn regression_gate_forms_hold_their_error_rates() {
    let at_eps = run("regression-7x1@-5", 4000);
    assert_holds(&at_eps, "fail_on_regression_fails", 0.025);
    assert_holds(&at_eps, "non_inferiority_passes", 0.025);
    let none = run("regression-7x1@+0", 2000);
    assert_holds(&none, "fail_on_regression_fails", 0.025);
    assert_power(&none, "non_inferiority_passes", 0.75);
    let ten = run("regression-7x1@-10", 2000);
    assert_power(&ten, "fail_on_regression_fails", 0.80);
}

/// The frontier comparison (`pareto` `against: stored`, `gates::frontier::frontier_loss`) at the
/// pull-request recipe's 7 reps in one launch per arm, each form at its boundary (a cover whose
/// true shortfall is exactly ε = 5 %): one point on one axis, four points all at ε on both axes
/// (the fail-on-regression form's Holm across the points), and one of four points at ε (the
/// non-inferiority form's binding case: the other points covered).
#[test]
fn frontier_comparison_holds_its_error_rates_at_the_boundary() {
    let one = run("frontier-1pt-tps-7x1@-5", 4000);
    assert_holds(&one, "fail_on_regression_fails", 0.025);
    assert_holds(&one, "non_inferiority_passes", 0.025);
    let all = run("frontier-4pt-all-both-7x1@-5", 2000);
    assert_holds(&all, "fail_on_regression_fails", 0.025);
    assert_holds(&all, "non_inferiority_passes", 0.025);
    let first = run("frontier-4pt-one-tps-7x1@-5", 2000);
    assert_holds(&first, "fail_on_regression_fails", 0.025);
    assert_holds(&first, "non_inferiority_passes", 0.025);
}

/// `l1 ab`'s paired test holds its level at the boundary (a true change of exactly −ε) in both
/// forms, at 3 and 6 rounds, and also when the launch-to-launch variation is twice the assumed
/// one: every round launches both sides afresh, so the rounds' spread carries that variation.
/// The stored comparison (`regression`, one launch per arm) under the same noise exceeds its
/// level, which is the case for the interleaved mode. Clear regressions are found and no change
/// is shown within ε.
#[test]
fn ab_holds_its_error_rates_at_the_boundary_where_the_stored_comparison_does_not() {
    for (cell, n) in [
        ("ab-6r-7x1@-5", 4000),
        ("ab-3r-7x1@-5", 2000),
        ("ab-6r-7x1@-5-sb2x", 4000),
    ] {
        let o = run(cell, n);
        assert_holds(&o, "fail_on_regression_fails", 0.025);
        assert_holds(&o, "non_inferiority_passes", 0.025);
    }
    let stored = run("regression-7x1@-5-sb2x", 4000);
    for name in ["fail_on_regression_fails", "non_inferiority_passes"] {
        let r = rate(&stored, name);
        assert!(
            r.ci95.0 > 0.05,
            "the stored comparison with σ_b 2× the assumed: {name} {:.2} % [{:.2}, {:.2}], expected well above its 2.5 %",
            r.rate * 100.0,
            r.ci95.0 * 100.0,
            r.ci95.1 * 100.0
        );
    }
    assert_power(&run("ab-6r-7x1@-10", 500), "fail_on_regression_fails", 0.97);
    assert_power(&run("ab-6r-7x1@+0", 500), "non_inferiority_passes", 0.97);
}

/// The frontier comparison's per-axis test is the `regression` gate's: with one point and one
/// combo, the non-inferiority form at ε is the regression gate's non-inferiority test on that
/// axis (the latency axis, truly unchanged, is shown within ε whenever throughput is, since one
/// slowdown multiplies both), so their rates agree within their intervals. The
/// fail-on-regression form doubles the smaller of the two axes' p (Holm), so at ε on one axis
/// it claims a loss at about α/4, half the regression gate's α/2.
#[test]
fn frontier_per_axis_test_is_the_regression_gates() {
    let frontier = run("frontier-1pt-tps-7x1@-5", 4000);
    let regression = run("regression-7x1@-5", 4000);
    let (f, r) = (
        rate(&frontier, "non_inferiority_passes"),
        rate(&regression, "non_inferiority_passes"),
    );
    assert!(
        f.ci95.0 <= r.ci95.1 && r.ci95.0 <= f.ci95.1,
        "non-inferiority at ε: frontier {:.2} % [{:.2}, {:.2}] vs regression {:.2} % [{:.2}, {:.2}]",
        f.rate * 100.0,
        f.ci95.0 * 100.0,
        f.ci95.1 * 100.0,
        r.rate * 100.0,
        r.ci95.0 * 100.0,
        r.ci95.1 * 100.0
    );
    let f = rate(&frontier, "fail_on_regression_fails");
    let quarter = accuracy::ALPHA / 4.0;
    assert!(
        f.ci95.0 <= quarter && quarter <= f.ci95.1,
        "fail-on-regression at ε on one axis: {:.2} % [{:.2}, {:.2}], expected about α/4",
        f.rate * 100.0,
        f.ci95.0 * 100.0,
        f.ci95.1 * 100.0
    );
}

/// The frontier comparison's power: a cover 10 % short (2ε) of main's single point is called
/// lost, and so is main's fastest point of four when its cover is 15 % short; a change that
/// moves nothing is shown to cover one point.
#[test]
fn frontier_comparison_finds_clear_losses() {
    let ten = run("frontier-1pt-tps-7x1@-10", 1000);
    assert_power(&ten, "fail_on_regression_fails", 0.70);
    let fifteen = run("frontier-4pt-one-tps-7x1@-15", 500);
    assert_power(&fifteen, "fail_on_regression_fails", 0.97);
    let none = run("frontier-1pt-both-7x1@+0", 1000);
    assert_power(&none, "non_inferiority_passes", 0.75);
    assert_holds(&none, "fail_on_regression_fails", 0.025);
}

/// The group-sequential design judged by the gate at the per-look level the gates use: its size
/// at the gate's boundary holds α, the fixed design is its one-look case (level α), and it uses
/// fewer candidate reps than the fixed design of the same maximum.
#[test]
fn sequential_design_holds_the_gate_level_and_saves_reps() {
    let seq = run("seq-3..7@+3", 3000);
    assert_holds(&seq, "topk5_passes", 0.025);
    assert_eq!(seq.looks, [3, 4, 5, 6, 7]);
    assert!(seq.per_look_level < 0.05);
    assert!((seq.per_look_level - accuracy::per_look_level(0.05, 5)).abs() < 1e-15);
    let fixed = run("seq-7..7@+6", 1000);
    assert_eq!(fixed.looks, [7]);
    assert!((fixed.per_look_level - 0.05).abs() < 1e-15);
    let early = run("seq-3..7@+6", 1000);
    assert!(
        early.mean_candidate_reps < 7.0,
        "sequential 3..7 at a 6 % win used {:.2} reps on average",
        early.mean_candidate_reps
    );
}

#[test]
fn sweeps_pick_a_winner_within_the_noise_floor_of_the_true_best() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cats = Catalogs::load(root).unwrap();
    let target = l1_engines::sim::SimTarget {
        model: &cats.models["llama-3.1-8b"],
        hardware: &cats.hardware["h100-sxm"],
        workload: &cats.workloads["chat-short"],
    };
    let o = accuracy::run_sweep(&target, &accuracy::sweep_combos(), 7, 60, 42).unwrap();
    let floor = cats.hardware["h100-sxm"].noise_floor_cv;
    assert!(
        o.within_floor >= 0.9,
        "winner within the floor in {:.2} of sweeps",
        o.within_floor
    );
    assert!(
        o.mean_regret < floor / 2.0,
        "mean regret {:.4}",
        o.mean_regret
    );
    // The reported probability of best is honest: not more confident than the outcome.
    assert!(
        o.mean_reported_p_best <= o.within_floor + 0.05,
        "reported {:.3} vs actual {:.3}",
        o.mean_reported_p_best,
        o.within_floor
    );
}

/// Bad cell inputs are typed errors (no panic) whose messages are the ones `l1 accuracy` prints.
#[test]
fn bad_cells_are_typed_errors_with_their_messages() {
    use l1_harness::accuracy::AccuracyError;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let cats = Catalogs::load(root).unwrap();
    let (m, h, w) = (
        &cats.models["llama-3.1-8b"],
        &cats.hardware["h100-sxm"],
        &cats.workloads["cpu-smoke"],
    );
    let good = cells().into_iter().next().unwrap();
    let e = accuracy::run_cell(m, h, w, &good, 0, 42, 1).unwrap_err();
    assert!(matches!(e, AccuracyError::NoComparisons), "{e:?}");
    assert_eq!(e.to_string(), "at least one comparison per cell is needed");

    let negative = Cell {
        launch_cv_factor: -1.0,
        ..good.clone()
    };
    let e = accuracy::run_cell(m, h, w, &negative, 10, 42, 1).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{}: launch_cv_factor must be ≥ 0", good.id)
    );

    let frontier = cells()
        .into_iter()
        .find(|c| c.id == "frontier-1pt-both-7x1@+0")
        .unwrap();
    for points in [0, accuracy::MAX_FRONTIER_POINTS + 1] {
        let mut bad = frontier.clone();
        if let accuracy::Design::Frontier { points: p, .. } = &mut bad.design {
            *p = points;
        }
        let e = accuracy::run_cell(m, h, w, &bad, 10, 42, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: a frontier cell needs 1 to {} points, not {points}",
                frontier.id,
                accuracy::MAX_FRONTIER_POINTS
            )
        );
    }

    let ab = cells()
        .into_iter()
        .find(|c| c.id == "ab-6r-7x1@+0")
        .unwrap();
    for rounds in [0, 1] {
        let mut bad = ab.clone();
        if let accuracy::Design::Ab { rounds: r, .. } = &mut bad.design {
            *r = rounds;
        }
        let e = accuracy::run_cell(m, h, w, &bad, 10, 42, 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "{}: an l1 ab cell needs at least 2 rounds, not {rounds}",
                ab.id
            )
        );
    }

    let unknown = Cell {
        noise: "no-such-noise",
        ..good
    };
    let e = accuracy::run_cell(m, h, w, &unknown, 10, 42, 1).unwrap_err();
    assert!(matches!(e, AccuracyError::UnknownNoise(_)), "{e:?}");
    assert_eq!(e.to_string(), "unknown noise model `no-such-noise`");
}
