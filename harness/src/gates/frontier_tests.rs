//! The frontier-loss comparison (`pareto` `against: stored`) on fixed samples.

use super::frontier::frontier_loss;
use super::pareto_tests::ctx;
use super::*;
use crate::spec::RegressionForm;
use l1_engines::Metrics;

const TPS: &str = "output_tokens_per_s";
const LAT: &str = "e2e_p95_ms";

/// 7 reps around (throughput, latency) with fixed ±1 % spreads (different per axis).
fn arm(label: &str, tps: f64, lat: f64) -> Arm {
    const F: [f64; 7] = [1.0, 1.01, 0.99, 1.005, 0.995, 1.002, 0.998];
    let reps = (0..7)
        .map(|i| {
            Metrics::from([
                (TPS.to_string(), tps * F[i]),
                (LAT.to_string(), lat * F[6 - i]),
            ])
        })
        .collect();
    Arm {
        label: label.into(),
        reps,
        launches: 1,
    }
}

fn gate(form: RegressionForm) -> Gate {
    Gate {
        form: Some(form),
        ..Gate::new(GateMethod::Pareto)
    }
}

/// Main's frontier: A (fastest), B, C; D is dominated by B.
fn main_arms() -> Vec<Arm> {
    vec![
        arm("A", 100.0, 100.0),
        arm("B", 90.0, 80.0),
        arm("C", 80.0, 60.0),
        arm("D", 70.0, 90.0),
    ]
}

#[test]
fn the_same_combos_cover_every_point_in_both_forms() {
    for form in [
        RegressionForm::FailOnRegression,
        RegressionForm::NonInferiority,
    ] {
        let r = frontier_loss(&gate(form), &ctx(), &main_arms(), &main_arms()).unwrap();
        let names: Vec<&str> = r.points.iter().map(|p| p.point.as_str()).collect();
        assert_eq!(names, ["A", "B", "C"], "{form:?}");
        for p in &r.points {
            assert!(!p.lost, "{form:?}: {p:?}");
            assert_eq!(p.best, p.point, "{form:?}: {p:?}");
        }
        assert!(r.verdict(&gate(form), "`main` results", 4).passed);
    }
}

#[test]
fn dropping_the_throughput_best_combo_loses_its_point() {
    let now: Vec<Arm> = main_arms().into_iter().skip(1).collect();
    let g = gate(RegressionForm::FailOnRegression);
    let r = frontier_loss(&g, &ctx(), &main_arms(), &now).unwrap();
    let lost: Vec<&str> = r
        .points
        .iter()
        .filter(|p| p.lost)
        .map(|p| p.point.as_str())
        .collect();
    assert_eq!(lost, ["A"]);
    // B is A's best cover: 10 % slower, 20 % better on latency.
    assert_eq!(r.points[0].best, "B");
    assert!((r.points[0].metric_ratio.0 - 0.9).abs() < 1e-9);
    assert!((r.points[0].latency_ratio.0 - 1.25).abs() < 1e-9);
    let v = r.verdict(&g, "`main` results (run main-1)", 4);
    assert!(!v.passed);
    assert!(v.message.contains("FAILED"), "{}", v.message);
    assert!(
        v.message
            .contains("1 of the stored frontier's 3 points lost"),
        "{}",
        v.message
    );
    assert!(v.message.contains("LOST A ("), "{}", v.message);
    assert!(v.message.contains("best cover B"), "{}", v.message);
    assert!(v.message.contains("covered B ("), "{}", v.message);
}

#[test]
fn an_effect_exactly_at_epsilon_is_neither_shown_lost_nor_shown_covered() {
    let eps = 0.05;
    // Every rep of the one combo measured now is ε worse on both axes than the stored point.
    let stored = vec![arm("A", 100.0, 100.0)];
    let now = vec![arm("A'", 100.0 * (1.0 - eps), 100.0 / (1.0 - eps))];
    let fail = frontier_loss(
        &gate(RegressionForm::FailOnRegression),
        &ctx(),
        &stored,
        &now,
    )
    .unwrap();
    let p = &fail.points[0];
    assert!((p.metric_ratio.0 - (1.0 - eps)).abs() < 1e-9, "{p:?}");
    assert!((p.latency_ratio.0 - (1.0 - eps)).abs() < 1e-9, "{p:?}");
    // Each axis' one-sided p is 1/2: Holm over the two axes makes it 1; not lost.
    assert!((p.adjusted_p - 1.0).abs() < 1e-6, "{p:?}");
    assert!(!p.lost);
    let ni = frontier_loss(&gate(RegressionForm::NonInferiority), &ctx(), &stored, &now).unwrap();
    let p = &ni.points[0];
    // At the margin non-inferiority's p is 1/2: not shown covered, so the gate fails.
    assert!((p.adjusted_p - 0.5).abs() < 1e-6, "{p:?}");
    assert!(p.lost);
    assert!(
        !ni.verdict(&gate(RegressionForm::NonInferiority), "x", 1)
            .passed
    );
    // Slightly inside ε (1 %) with these spreads: still not lost under fail_on_regression.
    let inside = vec![arm("A'", 100.0 * 0.96, 100.0 / 0.96)];
    let r = frontier_loss(
        &gate(RegressionForm::FailOnRegression),
        &ctx(),
        &stored,
        &inside,
    )
    .unwrap();
    assert!(!r.points[0].lost);
    // Well beyond ε: lost.
    let beyond = vec![arm("A'", 100.0 * 0.85, 100.0 / 0.85)];
    let r = frontier_loss(
        &gate(RegressionForm::FailOnRegression),
        &ctx(),
        &stored,
        &beyond,
    )
    .unwrap();
    assert!(r.points[0].lost, "{:?}", r.points[0]);
}

#[test]
fn points_are_holm_adjusted_across_the_frontier() {
    // One combo now, a little worse than every stored point: per point the p-value it would get
    // alone, and the Holm adjustment of those across the three points.
    let now = vec![arm("N", 88.0, 82.0)];
    let g = gate(RegressionForm::FailOnRegression);
    let stored = main_arms();
    let all = frontier_loss(&g, &ctx(), &stored, &now).unwrap();
    let alone: Vec<f64> = all
        .points
        .iter()
        .map(|p| {
            let one: Vec<Arm> = stored
                .iter()
                .filter(|a| a.label == p.point)
                .cloned()
                .collect();
            frontier_loss(&g, &ctx(), &one, &now).unwrap().points[0].adjusted_p
        })
        .collect();
    let adjusted: Vec<f64> = all.points.iter().map(|p| p.adjusted_p).collect();
    assert_eq!(adjusted, stats::holm(&alone));
    assert!(adjusted.iter().zip(&alone).any(|(a, r)| a > r), "{alone:?}");
    for (p, a) in all.points.iter().zip(&adjusted) {
        assert_eq!(p.lost, *a < all.one_sided);
    }
}

#[test]
fn nothing_measured_now_loses_every_point() {
    let g = gate(RegressionForm::FailOnRegression);
    let r = frontier_loss(&g, &ctx(), &main_arms(), &[]).unwrap();
    assert!(r.points.iter().all(|p| p.lost));
    assert!(!r.verdict(&g, "x", 4).passed);
}
