//! Selection-aware gates: `topk5`'s error rates, the baseline as a candidate, inconclusive
//! comparisons, the `regression` forms.

use super::pareto_tests::ctx;
use super::*;
use crate::spec::RegressionForm;
use l1_engines::Metrics;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

const TPS: &str = "output_tokens_per_s";

/// 7 reps around `tps` with normal per-rep noise of CV `cv`.
fn arm(label: &str, tps: f64, cv: f64, rng: &mut rand_chacha::ChaCha8Rng) -> Arm {
    let n = Normal::new(0.0, cv).unwrap();
    Arm {
        label: label.into(),
        reps: (0..7)
            .map(|_| Metrics::from([(TPS.to_string(), tps * (1.0 + n.sample(rng)))]))
            .collect(),
        launches: 1,
    }
}

/// The 95 % Wilson score interval of `hits` in `n`.
fn wilson(hits: usize, n: usize) -> (f64, f64) {
    let (p, n, z) = (hits as f64 / n as f64, n as f64, 1.959964);
    let c = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let h = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (c - h, c + h)
}

/// Selection-aware family: 40 combos all exactly at the gate's threshold (1 + margin 3 %),
/// so every improvement claim is false. Over 2,000 seeded experiments the probability of
/// any false claim among the top k (k = 5 and k = 1) must not exceed the gate's one-sided
/// level α/2 = 2.5 %: the 95 % interval's lower end at or below nominal.
#[test]
fn topk5_false_claims_with_40_combos_at_the_threshold_stay_below_nominal() {
    let nominal = 0.025;
    let experiments = 2000;
    for k in [5u32, 1] {
        let gate = Gate {
            margin: Some(0.03),
            k: Some(k),
            ..Gate::new(GateMethod::Topk5)
        };
        let (mut any_claim, mut passes) = (0, 0);
        for s in 0..experiments {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1_000_000 * u64::from(k) + s);
            let base = arm("baseline", 1000.0, 0.02, &mut rng);
            let combos: Vec<Arm> = (0..40)
                .map(|i| arm(&format!("c{i}"), 1030.0, 0.02, &mut rng))
                .collect();
            let v = evaluate(&gate, &ctx(), &base, &combos).unwrap();
            any_claim += usize::from(
                v.rows
                    .iter()
                    .any(|r| r.adjusted_p.is_some_and(|p| p < nominal)),
            );
            passes += usize::from(v.passed);
        }
        let (lo, hi) = wilson(any_claim, experiments as usize);
        let rate = any_claim as f64 / experiments as f64;
        eprintln!(
            "k {k}: some false claim in {:.2} % [{:.2}, {:.2}] of {experiments}; gate passed {:.2} %",
            rate * 100.0,
            lo * 100.0,
            hi * 100.0,
            passes as f64 / experiments as f64 * 100.0
        );
        assert!(
            lo <= nominal,
            "k {k}: false-claim rate {rate:.4} [{lo:.4}, {hi:.4}] above {nominal}"
        );
        assert!(passes <= any_claim);
    }
}

/// A space sweeping `activation_dtype: [bf16, fp8_e4m3]` with baseline bf16: the baseline
/// measured as a combo of the space (same label as the baseline arm) is not a candidate
/// against itself, so k shrinks to the one real candidate, which wins clearly.
#[test]
fn the_baseline_is_not_a_candidate_against_itself() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let bf16 = arm("act=bf16", 1000.0, 0.01, &mut rng);
    let fp8 = arm("act=fp8_e4m3", 1300.0, 0.01, &mut rng);
    let gate = Gate::new(GateMethod::Topk5);
    let v = evaluate(&gate, &ctx(), &bf16, &[bf16.clone(), fp8]).unwrap();
    assert!(v.passed, "{}", v.message);
    assert_eq!(v.winner.as_deref(), Some("act=fp8_e4m3"));
    assert!(
        v.message.contains("act=bf16 is the baseline"),
        "{}",
        v.message
    );
    assert!(v.rows.iter().all(|r| r.combo != "act=bf16"), "{:?}", v.rows);
    assert!(v.message.contains("so k = 1"), "{}", v.message);
    // The winner's claim holds and its comparison is decided: established.
    assert_eq!(v.established_winner.as_deref(), Some("act=fp8_e4m3"));
    assert!(v.inconclusive.is_none(), "{}", v.message);
    // The gate's own power statement and the launch component are in the message.
    assert!(
        v.message
            .contains("this gate detects a true improvement of ≥"),
        "{}",
        v.message
    );
    assert!(
        v.message.contains("(margin + 2 %) with 80 % power needs"),
        "{}",
        v.message
    );
    assert!(
        v.message.contains("launch-to-launch CV σ_b = 0.00 %"),
        "{}",
        v.message
    );
    eprintln!("{}", v.message);
    // Only the baseline in the space: no candidate, a failing verdict that says so.
    let v = evaluate(&gate, &ctx(), &bf16, std::slice::from_ref(&bf16)).unwrap();
    assert!(!v.passed && v.established_winner.is_none(), "{}", v.message);
    assert!(
        v.message.contains("no candidate other than the baseline"),
        "{}",
        v.message
    );
}

fn tps_only() -> Vec<serde_saphyr::Spanned<String>> {
    vec![serde_saphyr::Spanned::new(
        TPS.to_string(),
        serde_saphyr::Location::UNKNOWN,
        serde_saphyr::Location::UNKNOWN,
    )]
}

/// One combo against the baseline, each in its own launch: per-launch factor drawn with CV
/// `launch_cv`, per-rep noise `cv`, `n` reps.
fn launched(
    label: &str,
    tps: f64,
    (n, cv, launch_cv): (usize, f64, f64),
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Arm {
    let b = Normal::new(0.0, launch_cv.max(1e-12)).unwrap().sample(rng);
    let e = Normal::new(0.0, cv).unwrap();
    Arm {
        label: label.into(),
        reps: (0..n)
            .map(|_| Metrics::from([(TPS.to_string(), tps * (1.0 + b) * (1.0 + e.sample(rng)))]))
            .collect(),
        launches: 1,
    }
}

/// Both forms of `regression`, side by side (ε 5 %, 7 reps in one launch per arm, per-rep
/// CV 2 %, launch CV 1 % known to the gate; 2,000 seeded experiments per cell). Each form
/// holds its own error at the boundary (a true regression of exactly ε): `fail_on_regression`
/// fails, and `non_inferiority` passes, in at most the one-sided 2.5 % (95 % interval's lower
/// end). The price of each form is printed: `fail_on_regression` passes most true 8 %
/// regressions, `non_inferiority` fails many true no-changes at 7 reps.
#[test]
fn regression_forms_hold_their_error_rates_at_the_boundary() {
    let experiments = 2000usize;
    let ctx = GateContext {
        launch_cv: 0.01,
        ..ctx()
    };
    let pass_rate = |form: RegressionForm, regression: f64, seed0: u64| {
        let gate = Gate {
            form: Some(form),
            epsilon: Some(0.05),
            metrics: Some(tps_only()),
            ..Gate::new(GateMethod::Regression)
        };
        let passes = (0..experiments as u64)
            .filter(|s| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed0 + s);
                let base = launched("baseline", 1000.0, (7, 0.02, 0.01), &mut rng);
                let c = launched("w", 1000.0 * (1.0 - regression), (7, 0.02, 0.01), &mut rng);
                evaluate(&gate, &ctx, &base, &[c]).unwrap().passed
            })
            .count();
        (passes, wilson(passes, experiments))
    };
    use RegressionForm::{FailOnRegression as Fail, NonInferiority as Ni};
    let nominal = 0.025;
    // At the boundary: fail_on_regression must rarely fail, non_inferiority rarely pass.
    let (p, (_, hi)) = pass_rate(Fail, 0.05, 10_000);
    let fails = experiments - p;
    let (lo_f, hi_f) = wilson(fails, experiments);
    eprintln!(
        "fail_on_regression at a true 5 % regression: fails {:.2} % [{:.2}, {:.2}]",
        fails as f64 / experiments as f64 * 100.0,
        lo_f * 100.0,
        hi_f * 100.0
    );
    assert!(lo_f <= nominal && hi <= 1.0);
    let (p, (lo, hi)) = pass_rate(Ni, 0.05, 20_000);
    eprintln!(
        "non_inferiority at a true 5 % regression: passes {:.2} % [{:.2}, {:.2}]",
        p as f64 / experiments as f64 * 100.0,
        lo * 100.0,
        hi * 100.0
    );
    assert!(
        lo <= nominal,
        "non_inferiority passes {p} of {experiments} at the boundary"
    );
    // The price of each form.
    for (name, form, regression, seed) in [
        ("fail_on_regression", Fail, 0.0, 30_000),
        ("fail_on_regression", Fail, 0.08, 40_000),
        ("fail_on_regression", Fail, 0.10, 50_000),
        ("non_inferiority", Ni, 0.0, 60_000),
        ("non_inferiority", Ni, 0.08, 70_000),
    ] {
        let (p, (lo, hi)) = pass_rate(form, regression, seed);
        eprintln!(
            "{name} at a true {:.0} % regression: passes {:.2} % [{:.2}, {:.2}]",
            regression * 100.0,
            p as f64 / experiments as f64 * 100.0,
            lo * 100.0,
            hi * 100.0
        );
        if form == Ni && regression > 0.05 {
            assert!(hi < 0.01, "non_inferiority passes a true 8 % regression");
        }
        if form == Fail && regression == 0.0 {
            assert!(lo > 0.97, "fail_on_regression fails a true no-change");
        }
    }
}

/// A comparison too wide to decide is marked inconclusive with the design that would decide
/// it, and its winner is not established even where the gate passes; launch-to-launch
/// variation that reps cannot average out makes the suggestion one of launches.
#[test]
fn wide_comparisons_are_inconclusive_and_never_establish_a_winner() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let base = launched("baseline", 1000.0, (5, 0.2, 0.0), &mut rng);
    let c = launched("w", 2000.0, (5, 0.2, 0.0), &mut rng);
    let v = evaluate(
        &Gate::new(GateMethod::Topk5),
        &ctx(),
        &base,
        std::slice::from_ref(&c),
    )
    .unwrap();
    let u = v.inconclusive.as_ref().expect("inconclusive");
    assert!(u.mde > 0.10 && u.max_mde == 0.10, "{u:?}");
    let d = u.suggestion.expect("a suggestion");
    assert!(d.reps > 5 && d.launches == 1, "{d:?}");
    assert!(v.established_winner.is_none(), "{}", v.message);
    assert!(
        v.message
            .contains("inconclusive — more reps or launches needed"),
        "{}",
        v.message
    );
    // A larger max_mde accepts the same comparison as decided.
    let loose = Gate {
        max_mde: Some(5.0),
        ..Gate::new(GateMethod::Topk5)
    };
    let v2 = evaluate(&loose, &ctx(), &base, &[c]).unwrap();
    assert!(v2.inconclusive.is_none(), "{}", v2.message);
    // Reps in one launch cannot average out a 5 % launch-to-launch CV: more launches.
    let ctx5 = GateContext {
        launch_cv: 0.05,
        ..ctx()
    };
    let base = launched("baseline", 1000.0, (7, 0.01, 0.0), &mut rng);
    let c = launched("w", 1000.0, (7, 0.01, 0.0), &mut rng);
    let gate = Gate {
        metrics: Some(tps_only()),
        ..Gate::new(GateMethod::Regression)
    };
    let v = evaluate(&gate, &ctx5, &base, &[c]).unwrap();
    let u = v.inconclusive.as_ref().expect("inconclusive");
    let d = u.suggestion.expect("a suggestion");
    assert!(d.launches > 1, "{d:?}");
    assert!(u.message.contains("launches of"), "{}", u.message);
    assert!(v.message.contains("σ_b = 5.00 %"), "{}", v.message);
    eprintln!("{}", u.message);
}
