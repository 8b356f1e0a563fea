//! The `pareto` gate's verdicts and error rates.

use super::*;
use l1_engines::Metrics;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

const TPS: &str = "output_tokens_per_s";
const LAT: &str = "e2e_p95_ms";

/// A fixed design at 10 % trim and a 2 % noise floor, no launch term.
pub(super) fn ctx() -> GateContext {
    GateContext {
        trim: 0.1,
        noise_floor: 0.02,
        launch_cv: 0.0,
        calibration: None,
        looks: 1,
    }
}

/// 7 reps of (throughput, latency), each with its own multiplicative noise.
fn arm(label: &str, tps: f64, lat: f64, cv: f64, rng: &mut rand_chacha::ChaCha8Rng) -> Arm {
    let n = Normal::new(0.0, cv).unwrap();
    let reps = (0..7)
        .map(|_| {
            Metrics::from([
                (TPS.to_string(), tps * (1.0 + n.sample(rng))),
                (LAT.to_string(), lat * (1.0 + n.sample(rng))),
            ])
        })
        .collect();
    Arm {
        label: label.into(),
        reps,
        launches: 1,
    }
}

fn verdict(arms: &[(&str, f64, f64)], cv: f64, seed: u64) -> GateVerdict {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let base = arm("baseline", 800.0, 120.0, cv, &mut rng);
    let combos: Vec<Arm> = arms
        .iter()
        .map(|(l, t, d)| arm(l, *t, *d, cv, &mut rng))
        .collect();
    evaluate(&Gate::new(GateMethod::Pareto), &ctx(), &base, &combos).unwrap()
}

#[test]
fn a_winner_matched_on_throughput_and_beaten_on_latency_fails() {
    let v = verdict(&[("w", 1000.0, 100.0), ("q", 995.0, 70.0)], 0.005, 1);
    assert_eq!(v.winner.as_deref(), Some("w"));
    assert!(!v.passed, "{}", v.message);
    assert!(
        v.message.contains("dominated within noise by q"),
        "{}",
        v.message
    );
    // The point-estimate frontier still lists both (the plot's view).
    assert!(v.rows.iter().all(|r| r.on_frontier), "{:?}", v.rows);
}

#[test]
fn lower_latency_bought_with_throughput_or_within_the_floor_passes() {
    // q is 10 % slower: a trade-off, not a domination.
    let v = verdict(&[("w", 1000.0, 100.0), ("q", 900.0, 70.0)], 0.005, 2);
    assert!(v.passed, "{}", v.message);
    // q's latency is better by less than the noise floor: no claim.
    let v = verdict(&[("w", 1000.0, 100.0), ("q", 1000.0, 99.0)], 0.005, 3);
    assert!(v.passed, "{}", v.message);
}

/// Error rates, measured over 1,000 seeded experiments per cell (7 reps, 2 % floor): with
/// nothing truly dominating the winner (an identical twin, or a twin 1 % better on latency,
/// inside the floor) the gate fails in at most α; a twin 10 % better on latency is found
/// when the per-rep noise (0.5 %) is well under the floor. At 2 % per-rep noise the
/// throughput tie cannot be shown within the floor from 7 reps, so the gate rarely fails:
/// it fails on evidence only, as `regression` does.
#[test]
fn false_failures_stay_below_alpha_and_true_dominations_are_found() {
    let rate_at = |cv: f64, tps_q: f64, lat_q: f64, seed0: u64| {
        let n = 1000;
        let fails = (0..n)
            .filter(|s| {
                !verdict(&[("w", 1000.0, 100.0), ("q", tps_q, lat_q)], cv, seed0 + s).passed
            })
            .count();
        fails as f64 / n as f64
    };
    let rate = |cv: f64, lat_q: f64, seed0: u64| rate_at(cv, 1000.0, lat_q, seed0);
    // Binomial 3σ at n = 1000 around α = 0.05 is 2 points.
    for cv in [0.005, 0.02] {
        let twin = rate(cv, 100.0, 10_000);
        let inside = rate(cv, 99.0, 20_000);
        assert!(twin <= 0.05 + 0.02, "cv {cv}, identical twin: {twin}");
        assert!(
            inside <= 0.05 + 0.02,
            "cv {cv}, 1 % better latency: {inside}"
        );
        // The least favourable null: q exactly at the floor on both axes.
        let edge = rate_at(cv, 1000.0 / 1.02, 100.0 / 1.02, 40_000);
        assert!(edge <= 0.05 + 0.02, "cv {cv}, at the floor: {edge}");
        let real = rate(cv, 90.0, 30_000);
        eprintln!(
            "cv {cv}: false failures {twin:.3} (twin) / {inside:.3} (1 % better latency) / {edge:.3} (at the floor); failures with 10 % better latency {real:.3}"
        );
        if cv < 0.01 {
            // The twin wins half the time (then nothing dominates the winner), so the most
            // a perfect gate can fail is about one half.
            assert!(real >= 0.35, "cv {cv}, 10 % better latency: {real}");
        }
    }
}
