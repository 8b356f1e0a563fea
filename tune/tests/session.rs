//! Session behaviour: legality by construction, seeds first, resume giving the same proposals
//! at every step (through JSON), budgets, constraints, and errors on bad input.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

use l1_tune::landscape::{Landscape, synthetic};
use l1_tune::session::{ProposalKind, TuneState};
use l1_tune::{
    Acquisition, Budget, Constraint, Direction, Observation, Sense, Session, Space, TuneConfig,
    TuneError,
};

fn land() -> Landscape {
    synthetic(7, &[4, 3, 3, 3, 2], 0.02)
}

fn budget() -> Budget {
    Budget::new(None, None, Some(100)).unwrap()
}

fn config(seed: u64) -> TuneConfig {
    let mut c = TuneConfig::new("output_tokens_per_s", Direction::Maximize);
    c.seed = seed;
    c
}

/// A latency-like constraint value for combo `i`: feasible on about half the space.
fn latency(l: &Landscape, i: usize) -> f64 {
    50.0 + 10.0 * l.combos[i][0] as f64 + 3.0 * l.combos[i][1] as f64
}

#[test]
fn proposals_are_legal_new_and_seeds_come_first() {
    let l = land();
    let space = l.space().unwrap();
    let n = space.len();
    let seeds = [5, 17, 5, 40];
    let mut s = Session::new(space, config(1), budget(), &seeds).unwrap();
    let mut seen = Vec::new();
    for step in 0..40 {
        let p = s.propose().unwrap();
        assert!(p.combo < n);
        assert!(
            !seen.contains(&p.combo),
            "step {step}: {} proposed twice",
            p.combo
        );
        match step {
            0 => assert_eq!((p.combo, p.kind), (5, ProposalKind::Seed)),
            1 => assert_eq!((p.combo, p.kind), (17, ProposalKind::Seed)),
            2 => assert_eq!((p.combo, p.kind), (40, ProposalKind::Seed)),
            s if s < 3 + l1_tune::session::DEFAULT_INITIAL_RANDOM as u64 => {
                assert_eq!(p.kind, ProposalKind::Random)
            }
            _ => assert_eq!(p.kind, ProposalKind::Acquisition),
        }
        seen.push(p.combo);
        if step == 12 {
            s.observe_failure(p.combo, "engine did not start", 3.0, 1)
                .unwrap();
        } else {
            s.observe(Observation::new(p.combo, l.evaluate(p.combo, 1, step)))
                .unwrap();
        }
    }
    let best = s.recommend().unwrap();
    assert!(best.interval.0 <= best.predicted && best.predicted <= best.interval.1);
    assert!(!best.observed.is_empty());
    let top = s.model().unwrap().remeasure_candidates(3);
    assert_eq!(top.len(), 3);
    assert_eq!(top[0].combo, best.combo);
    assert_eq!(s.trials(), 40);
}

fn run_with_resume(constrained: bool, acquisition: Acquisition) {
    let l = land();
    let mut cfg = config(3);
    cfg.acquisition = acquisition;
    if constrained {
        cfg.constraints.push(Constraint {
            metric: "ttft_p95_ms".into(),
            sense: Sense::AtMost,
            threshold: 70.0,
        });
    }
    let mut straight = Session::new(l.space().unwrap(), cfg.clone(), budget(), &[2, 9]).unwrap();
    let mut resumed = Session::new(l.space().unwrap(), cfg, budget(), &[2, 9]).unwrap();
    for step in 0..30u64 {
        // Save and restore the resumed session through JSON before every proposal.
        let json = resumed.to_json().unwrap();
        resumed = Session::resume_json(l.space().unwrap(), &json).unwrap();
        assert_eq!(
            resumed.to_json().unwrap(),
            json,
            "JSON round trip changed the state"
        );
        let a = straight.propose().unwrap();
        let b = resumed.propose().unwrap();
        assert_eq!(a, b, "step {step}: resumed session proposed differently");
        // A proposal handed out but never observed (worker killed) is proposed again.
        assert_eq!(resumed.propose().unwrap(), b);
        let mut o = Observation::new(a.combo, l.evaluate(a.combo, 3, step));
        if constrained {
            o.constraints = vec![latency(&l, a.combo)];
        }
        o.elapsed_s = 60.0;
        o.devices = 2;
        straight.observe(o.clone()).unwrap();
        resumed.observe(o).unwrap();
    }
    assert_eq!(straight.state(), resumed.state());
    assert_eq!(straight.recommend(), resumed.recommend());
    assert_eq!(resumed.state().usage.trials, 30);
    assert!((resumed.state().usage.device_s - 3600.0).abs() < 1e-9);
}

#[test]
fn resume_after_every_trial_gives_the_same_next_proposal() {
    run_with_resume(false, Acquisition::ExpectedImprovement);
}

#[test]
fn resume_with_constraints_gives_the_same_next_proposal() {
    run_with_resume(true, Acquisition::ExpectedImprovement);
}

#[test]
fn resume_with_the_knowledge_gradient_gives_the_same_next_proposal() {
    run_with_resume(false, Acquisition::KnowledgeGradient);
    run_with_resume(true, Acquisition::KnowledgeGradient);
}

#[test]
fn the_knowledge_gradient_replicates_measured_combos_and_skips_failed_ones() {
    let l = land();
    let n = l.truth.len();
    let mut cfg = config(5);
    cfg.acquisition = Acquisition::KnowledgeGradient;
    let mut s = Session::new(l.space().unwrap(), cfg, budget(), &[]).unwrap();
    let mut failed = Vec::new();
    let (mut replicates, mut new) = (0, 0);
    for step in 0..60u64 {
        let p = s.propose().unwrap();
        assert!(p.combo < n);
        assert!(
            !failed.contains(&p.combo),
            "step {step}: a failed combo again"
        );
        let measured = s.state().observations.iter().any(|o| o.combo == p.combo);
        if step >= l1_tune::session::DEFAULT_INITIAL_RANDOM as u64 {
            // A measured combo comes back as a re-measurement (so a driver takes a fresh
            // replicate rather than a cache hit), a new one as an acquisition.
            let want = if measured {
                ProposalKind::Remeasure
            } else {
                ProposalKind::Acquisition
            };
            assert_eq!(p.kind, want, "step {step}");
            assert!(p.acquisition_value.is_some_and(|v| v >= 0.0));
            replicates += usize::from(measured);
            new += usize::from(!measured);
        }
        if step % 9 == 5 && !measured {
            s.observe_failure(p.combo, "engine did not start", 3.0, 1)
                .unwrap();
            failed.push(p.combo);
        } else {
            s.observe(Observation::new(p.combo, l.evaluate(p.combo, 5, step)))
                .unwrap();
        }
    }
    // On a noisy landscape (2 % noise) it does both within 60 trials.
    assert!(
        replicates > 0 && new > 0,
        "replicates {replicates}, new {new}"
    );
    let best = s.recommend().unwrap();
    assert!(!failed.contains(&best.combo));
    let regret = l.regret(best.combo);
    assert!(
        regret <= 0.05,
        "reported a combo {:.1} % below the optimum",
        100.0 * regret
    );
}

#[test]
fn constrained_search_prefers_feasible_points_and_reports_one() {
    let l = land();
    let mut cfg = config(5);
    cfg.constraints.push(Constraint {
        metric: "ttft_p95_ms".into(),
        sense: Sense::AtMost,
        threshold: 70.0,
    });
    let mut s = Session::new(l.space().unwrap(), cfg, budget(), &[]).unwrap();
    let mut model_feasible = 0;
    for step in 0..40u64 {
        let p = s.propose().unwrap();
        if p.kind == ProposalKind::Acquisition && latency(&l, p.combo) <= 70.0 {
            model_feasible += 1;
        }
        let mut o = Observation::new(p.combo, l.evaluate(p.combo, 5, step));
        o.constraints = vec![latency(&l, p.combo)];
        s.observe(o).unwrap();
    }
    assert!(
        model_feasible >= 25,
        "only {model_feasible} of 32 model proposals feasible"
    );
    let best = s.recommend().unwrap();
    assert!(best.feasible && latency(&l, best.combo) <= 70.0);
    let b = s.state().best_trial.unwrap();
    assert!(latency(&l, s.state().observations[b].combo) <= 70.0);
    let out = s.model().unwrap().constraint_outlook();
    assert_eq!(out.len(), 1);
    assert!(out[0].feasible_observed > 0);
}

#[test]
fn an_unreachable_constraint_shows_in_the_outlook() {
    let l = land();
    let mut cfg = config(6);
    cfg.constraints.push(Constraint {
        metric: "ttft_p95_ms".into(),
        sense: Sense::AtMost,
        threshold: 10.0,
    });
    let mut s = Session::new(l.space().unwrap(), cfg, budget(), &[]).unwrap();
    for step in 0..15u64 {
        let p = s.propose().unwrap();
        let mut o = Observation::new(p.combo, l.evaluate(p.combo, 6, step));
        o.constraints = vec![latency(&l, p.combo)];
        s.observe(o).unwrap();
    }
    let out = s.model().unwrap().constraint_outlook();
    assert_eq!(out[0].feasible_observed, 0);
    assert!(out[0].max_prob_unevaluated < 1e-3, "{out:?}");
    assert!(!s.recommend().unwrap().feasible);
}

#[test]
fn bad_input_is_a_typed_error() {
    let l = land();
    let space = l.space().unwrap();
    let n = space.len();
    assert!(matches!(
        Session::new(space.clone(), config(0), budget(), &[n]),
        Err(TuneError::UnknownCombo { .. })
    ));
    assert!(Budget::new(None, None, Some(0)).is_err());
    let zero = Budget {
        wall_clock_minutes: Some(0.0),
        gpu_hours: None,
        max_trials: None,
    };
    assert!(matches!(
        Session::new(space.clone(), config(0), zero, &[]),
        Err(TuneError::InvalidBudget(_))
    ));
    let mut s = Session::new(space.clone(), config(0), budget(), &[]).unwrap();
    assert!(s.observe(Observation::new(0, f64::NAN)).is_err());
    assert!(s.observe(Observation::new(0, -1.0)).is_err());
    assert!(s.observe(Observation::new(n + 3, 1.0)).is_err());
    let mut o = Observation::new(0, 1.0);
    o.constraints = vec![1.0];
    assert!(s.observe(o).is_err());
    assert_eq!(s.trials(), 0);
    // A state from another space is refused; so is a future format.
    let other = synthetic(8, &[4, 3, 3, 3, 2], 0.02).space().unwrap();
    let other = Space::new(other.dims().to_vec(), vec![vec![0, 0, 0, 0, 0]]).unwrap();
    let state: TuneState = s.state().clone();
    assert!(matches!(
        Session::resume(other, state.clone()),
        Err(TuneError::SpaceMismatch { .. })
    ));
    let mut future = state;
    future.format = 99;
    assert!(matches!(
        Session::resume(space.clone(), future),
        Err(TuneError::StateVersion { .. })
    ));
    assert!(Session::resume_json(space, "{\"format\": 1}").is_err());
    s.cancel();
    assert!(s.propose().is_err());
}

#[test]
fn a_fully_evaluated_space_says_so() {
    let space = Space::new(
        vec![l1_tune::Dimension::new("a", ["x", "y", "z"])],
        vec![vec![0], vec![1], vec![2]],
    )
    .unwrap();
    let mut c = config(0);
    c.remeasure.top = 0; // no final phase: the session ends when the space does
    let mut s = Session::new(space, c, budget(), &[]).unwrap();
    for v in [1.0, 3.0, 2.0] {
        let p = s.propose().unwrap();
        s.observe(Observation::new(p.combo, v)).unwrap();
    }
    assert_eq!(s.propose(), Err(TuneError::SpaceExhausted));
    assert_eq!(
        s.state().observations[s.state().best_trial.unwrap()].value,
        3.0
    );
}

#[test]
fn minimising_finds_the_smallest() {
    let l = land();
    let mut cfg = TuneConfig::new("e2e_p95_ms", Direction::Minimize);
    cfg.seed = 4;
    let mut s = Session::new(l.space().unwrap(), cfg, budget(), &[]).unwrap();
    // Latency = 1e6 / throughput truth, noiseless: the minimiser should find the true best.
    let lat: Vec<f64> = l.truth.iter().map(|t| 1e6 / t).collect();
    for _ in 0..60 {
        let p = s.propose().unwrap();
        s.observe(Observation::new(p.combo, lat[p.combo])).unwrap();
    }
    let best = s.recommend().unwrap().combo;
    let (opt, _) = l.optimum();
    assert!(
        l.regret(best) <= 0.02,
        "regret {} (optimum {opt})",
        l.regret(best)
    );
}

/// The final phase: the last reserved trials re-measure the combos still in contention for the
/// top (never an unevaluated one, never a failed one), the least-measured first; a clear winner
/// gets no replicates; the best is then the best posterior mean over all measurements.
#[test]
fn the_final_phase_remeasures_the_contenders() {
    let space = Space::new(
        vec![l1_tune::Dimension::new("a", ["w", "x", "y", "z"])],
        vec![vec![0], vec![1], vec![2], vec![3]],
    )
    .unwrap();
    // 10 trials, 30 % reserved: 3 re-measurements after the space (4 combos) is exhausted.
    let mut c = config(3);
    c.remeasure.share = 0.3;
    c.initial_random = 4;
    let b = Budget::new(None, None, Some(10)).unwrap();
    let mut s = Session::new(space.clone(), c.clone(), b.clone(), &[]).unwrap();
    assert_eq!(s.reserved_trials(), 3);
    // w and x within 1 % of each other (in contention); y and z far below.
    let truth = [100.0, 101.0, 60.0, 50.0];
    let mut seen = Vec::new();
    let mut k = 0u32;
    loop {
        let p = match s.propose() {
            Ok(p) => p,
            Err(TuneError::SpaceExhausted) => break,
            Err(e) => panic!("{e}"),
        };
        if seen.len() < 4 {
            assert_ne!(p.kind, ProposalKind::Remeasure, "search comes first");
            seen.push(p.combo);
        } else {
            assert_eq!(p.kind, ProposalKind::Remeasure);
            assert!(p.combo <= 1, "only the contenders are re-measured: {p:?}");
            assert!(s.final_phase());
        }
        // A little deterministic noise so replicates differ.
        k += 1;
        let v = truth[p.combo] * (1.0 + 0.005 * f64::from(k % 3) - 0.005);
        let mut o = Observation::new(p.combo, v);
        o.phase = p.phase();
        s.observe(o).unwrap();
        // A resumed copy proposes the same (the phase is a pure function of the state).
        let r = Session::resume_json(space.clone(), &s.to_json().unwrap()).unwrap();
        assert_eq!(r.propose(), s.propose());
    }
    let r = s.remeasured();
    assert!((1..=3).contains(&r), "{r} re-measurements");
    assert_eq!(
        s.trials(),
        4 + r,
        "search 4, then re-measure until the best is clear"
    );
    let best = s.recommend().unwrap();
    assert!(best.combo <= 1);

    // A clear winner gets no replicates: the reserved trials are not spent.
    // (Each combo measured twice, identically: the model sees no noise and a 2x gap.)
    let mut s = Session::new(space.clone(), c.clone(), b.clone(), &[]).unwrap();
    for i in [0, 1, 2, 3, 0, 1, 2, 3] {
        let v = if i == 0 { 200.0 } else { truth[i] };
        s.observe(Observation::new(i, v)).unwrap();
    }
    assert!(s.final_phase());
    assert_eq!(s.propose(), Err(TuneError::SpaceExhausted));

    // A contender whose re-measurement failed is neither re-measured nor recommended.
    let mut s = Session::new(space.clone(), c.clone(), b.clone(), &[]).unwrap();
    for _ in 0..4 {
        let p = s.propose().unwrap();
        s.observe(Observation::new(p.combo, truth[p.combo]))
            .unwrap();
    }
    let p = s.propose().unwrap();
    assert_eq!(p.kind, ProposalKind::Remeasure);
    s.observe_failure(p.combo, "engine crashed", 1.0, 1)
        .unwrap();
    let best = s.recommend().unwrap();
    assert_ne!(best.combo, p.combo);
    assert!(
        matches!(s.propose(), Err(TuneError::SpaceExhausted))
            || s.propose().unwrap().combo != p.combo
    );
}

/// With a trial budget, the final phase starts when the trials left reach the reserve; the
/// reserve is part of the configuration in the saved state, and a bad share is refused.
#[test]
fn the_reserve_follows_the_budget_and_is_validated() {
    let l = land();
    let mut c = config(1);
    c.remeasure.share = 0.2;
    let b = Budget::new(None, None, Some(30)).unwrap();
    let mut s = Session::new(l.space().unwrap(), c.clone(), b.clone(), &[]).unwrap();
    assert_eq!(s.reserved_trials(), 6);
    let mut kinds = Vec::new();
    for step in 0..30u64 {
        let p = s.propose().unwrap();
        kinds.push(p.kind);
        let mut o = Observation::new(p.combo, l.evaluate(p.combo, 1, step));
        o.phase = p.phase();
        s.observe(o).unwrap();
    }
    assert!(
        kinds[..24].iter().all(|k| *k != ProposalKind::Remeasure),
        "no re-measurement before the last 6 trials: {kinds:?}"
    );
    assert!(s.exhausted().is_some());
    let mut bad = c;
    bad.remeasure.share = 0.9;
    assert!(Session::new(l.space().unwrap(), bad, b, &[]).is_err());
}

/// When every measured combo has failed a re-measurement, nothing is reportable: the knowledge
/// gradient still gives finite scores and proposes a combo that has not failed.
#[test]
fn the_knowledge_gradient_with_nothing_reportable_stays_finite() {
    let l = land();
    let mut cfg = config(2);
    cfg.acquisition = Acquisition::KnowledgeGradient;
    cfg.initial_random = 0;
    let mut s = Session::new(l.space().unwrap(), cfg, budget(), &[3, 8]).unwrap();
    for step in 0..2u64 {
        let p = s.propose().unwrap();
        s.observe(Observation::new(p.combo, l.evaluate(p.combo, 2, step)))
            .unwrap();
    }
    s.observe_failure(3, "re-measurement crashed", 1.0, 1)
        .unwrap();
    s.observe_failure(8, "re-measurement crashed", 1.0, 1)
        .unwrap();
    let p = s.propose().unwrap();
    assert!(p.combo != 3 && p.combo != 8, "{p:?}");
    assert_eq!(p.kind, ProposalKind::Acquisition, "{p:?}");
    assert!(p.acquisition_value.is_some_and(f64::is_finite), "{p:?}");
}
