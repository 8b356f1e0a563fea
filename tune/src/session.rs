//! A tune session: the persisted state (`bayesian_state`), the pure `propose`, `observe`, the
//! best-so-far with its interval, and the candidates to re-measure at the end.
//!
//! Its parts: `config` (what the session is asked to do), `state` (what it persists and
//! hands out), `model` (the fitted surrogates that rank and propose); this file is the session
//! itself.
//!
//! # Purity and resume
//!
//! Everything [`Session::propose`] uses is in [`TuneState`] (plus the space it is checked
//! against by fingerprint): the configuration, the caller's seeds, every observation and
//! failure in order, and the RNG as (seed, trial counter). The surrogate is refit from the
//! observations on every call, deterministically (fixed grids, fixed iteration order, ties
//! broken by the lower combo index), so no fitted state needs saving and a state saved after
//! any trial and restored — through JSON or not — proposes exactly what the uninterrupted
//! session would have. A proposal that was handed out but never observed (the worker died
//! mid-trial) is simply proposed again.
//!
//! # Proposal order
//!
//! 1. The seeds (Tier-1 pareto points) the caller gave, in order, skipping evaluated ones.
//! 2. Random legal combos (uniform over the unevaluated ones) until `initial_random` of them
//!    have been evaluated — at least until two observations exist.
//! 3. Expected improvement of the GP over every unevaluated legal combo, times the probability
//!    that every constraint holds (one GP per constraint); until some observation is feasible,
//!    the probability of feasibility alone.
//! 4. The final phase ([`Remeasure`]): once the budget left (in trials; estimated from the mean
//!    cost so far for time budgets) is down to the reserved share, or every legal combo has been
//!    evaluated, the top `remeasure.top` candidates by posterior mean that are still in
//!    contention (at least a 3 % chance of beating the first) are measured again, the one with the
//!    fewest measurements first; when none is, the search goes on. One noisy measurement cannot
//!    tell the optimum from a neighbour 1–2 % below it; replicates of the few that compete can.
//!
//! With [`Acquisition::KnowledgeGradient`], steps 3 and 4 are one rule instead: the combo (new or
//! measured, never failed) whose single measurement is expected to raise the best posterior
//! mean among the measured combos the most, times the probability of feasibility; picking a
//! measured combo is a re-measurement. There is no reserved final phase (`remeasure` is
//! unused), and a fully measured space goes on being replicated until the budget ends.

mod config;
mod model;
mod state;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::budget::{Budget, Limit, Remaining, Usage};
use crate::error::TuneError;
use crate::gp::{Ard, Gp};
use crate::space::Space;

pub use config::{
    Acquisition, Constraint, DEFAULT_INITIAL_RANDOM, Direction, Objective, Remeasure, Sense,
    TuneConfig,
};
use model::ConstraintModel;
pub use model::Model;
pub use state::{
    ConstraintOutlook, Failure, Observation, Phase, Proposal, ProposalKind, Recommendation,
    TuneState,
};

/// A top candidate is in contention when the model gives it at least this chance of being
/// truly better than the best one. Measured over 100 seeds of the benchmark landscapes (within
/// 1 % at 5 % of the space): 0.25 → 93/99/91/87 %, 0.1 → 94/100/95/90 %, 0.03 → 95/100/97/90 %,
/// 0 (always replicate) → 95/100/99/91 %; but 0 wastes the reserve on a low-noise landscape
/// (`tests/efficiency.rs`: mean regret 3.0 % against 1.0 %), 0.03 does not (1.06 %). Those
/// figures are from the plain Hamming kernel with 8 initial points; with the current defaults
/// (additive + Hamming kernel, 4 initial points) the final phase at 0.03 still pays: 97/100/95/95 %
/// against 86/100/95/91 % without it (seeds 0–99).
const CONTENTION: f64 = 0.03;

/// The state format this build writes and reads.
pub const STATE_FORMAT: u32 = 1;

/// A session: a space plus its state.
#[derive(Clone, Debug)]
pub struct Session {
    space: Space,
    state: TuneState,
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl Session {
    /// Start a session over `space` with `seeds` (indices of legal combos, e.g. the Tier-1
    /// pareto points; duplicates dropped).
    pub fn new(
        space: Space,
        config: TuneConfig,
        budget: Budget,
        seeds: &[usize],
    ) -> Result<Self, TuneError> {
        config.validate()?;
        budget.validate()?;
        let mut s = Vec::new();
        for &i in seeds {
            space.combo(i)?;
            if !s.contains(&i) {
                s.push(i);
            }
        }
        let state = TuneState {
            format: STATE_FORMAT,
            space_fingerprint: space.fingerprint(),
            config,
            budget,
            seeds: s,
            observations: Vec::new(),
            failures: Vec::new(),
            usage: Usage::default(),
            best_trial: None,
            cancelled: false,
        };
        Ok(Self { space, state })
    }

    /// Restore a session from its saved state; the space must be the one it was made for.
    pub fn resume(space: Space, state: TuneState) -> Result<Self, TuneError> {
        if state.format != STATE_FORMAT {
            return Err(TuneError::StateVersion {
                found: state.format,
                expected: STATE_FORMAT,
            });
        }
        let current = space.fingerprint();
        if state.space_fingerprint != current {
            return Err(TuneError::SpaceMismatch {
                saved: state.space_fingerprint,
                current,
            });
        }
        state.config.validate()?;
        state.budget.validate()?;
        let n = space.len();
        let bad = state
            .seeds
            .iter()
            .copied()
            .chain(state.observations.iter().map(|o| o.combo))
            .chain(state.failures.iter().map(|f| f.combo))
            .find(|&i| i >= n);
        if let Some(index) = bad {
            return Err(TuneError::UnknownCombo { index, len: n });
        }
        if state
            .best_trial
            .is_some_and(|b| b >= state.observations.len())
        {
            return Err(TuneError::Serde(
                "best_trial points past the observations".into(),
            ));
        }
        Ok(Self { space, state })
    }

    /// Restore from JSON text.
    pub fn resume_json(space: Space, json: &str) -> Result<Self, TuneError> {
        let state: TuneState =
            serde_json::from_str(json).map_err(|e| TuneError::Serde(e.to_string()))?;
        Self::resume(space, state)
    }

    /// The state as JSON.
    pub fn to_json(&self) -> Result<String, TuneError> {
        serde_json::to_string(&self.state).map_err(|e| TuneError::Serde(e.to_string()))
    }

    pub fn state(&self) -> &TuneState {
        &self.state
    }

    pub fn space(&self) -> &Space {
        &self.space
    }

    /// Mark the session cancelled (persist the state afterwards).
    pub fn cancel(&mut self) {
        self.state.cancelled = true;
    }

    /// Trials finished so far (observations and failures).
    pub fn trials(&self) -> usize {
        self.state.observations.len() + self.state.failures.len()
    }

    /// The first limit reached, if any.
    pub fn exhausted(&self) -> Option<Limit> {
        self.state.budget.exhausted(&self.state.usage)
    }

    pub fn remaining(&self) -> Remaining {
        self.state.budget.remaining(&self.state.usage)
    }

    /// Account for time spent outside trials.
    pub fn record_overhead(&mut self, elapsed_s: f64) {
        self.state.usage.record_overhead(elapsed_s);
    }

    fn transform(&self, v: f64) -> f64 {
        let o = &self.state.config.objective;
        let t = if o.log { v.ln() } else { v };
        match o.direction {
            Direction::Maximize => t,
            Direction::Minimize => -t,
        }
    }

    fn untransform(&self, t: f64) -> f64 {
        let o = &self.state.config.objective;
        let t = match o.direction {
            Direction::Maximize => t,
            Direction::Minimize => -t,
        };
        if o.log { t.exp() } else { t }
    }

    /// Record a finished trial.
    pub fn observe(&mut self, obs: Observation) -> Result<(), TuneError> {
        let index = obs.combo;
        self.space.combo(index)?;
        let bad = |reason: String| TuneError::InvalidObservation { index, reason };
        if !obs.value.is_finite() {
            return Err(bad(format!("objective value {} is not finite", obs.value)));
        }
        if self.state.config.objective.log && obs.value <= 0.0 {
            return Err(bad(format!(
                "objective value {} is not positive (the objective is modelled on a log scale)",
                obs.value
            )));
        }
        let nc = self.state.config.constraints.len();
        if obs.constraints.len() != nc {
            return Err(bad(format!(
                "{} constraint values given, the session has {nc} constraints",
                obs.constraints.len()
            )));
        }
        if let Some(v) = obs.constraints.iter().find(|v| !v.is_finite()) {
            return Err(bad(format!("constraint value {v} is not finite")));
        }
        if self.state.failures.iter().any(|f| f.combo == index) {
            return Err(bad("this combo already failed in this session".into()));
        }
        self.state.usage.record_trial(obs.elapsed_s, obs.devices);
        let feasible = self.feasible_values(&obs.constraints);
        let t = self.transform(obs.value);
        let better = match self.state.best_trial {
            None => true,
            Some(b) => {
                let cur = &self.state.observations[b];
                let cur_feasible = self.feasible_values(&cur.constraints);
                (feasible && !cur_feasible)
                    || (feasible == cur_feasible && t > self.transform(cur.value))
            }
        };
        self.state.observations.push(obs);
        if better {
            self.state.best_trial = Some(self.state.observations.len() - 1);
        }
        Ok(())
    }

    /// Record a trial whose measurement failed; the combo is not proposed again.
    pub fn observe_failure(
        &mut self,
        combo: usize,
        reason: impl Into<String>,
        elapsed_s: f64,
        devices: u32,
    ) -> Result<(), TuneError> {
        self.space.combo(combo)?;
        self.state.usage.record_trial(elapsed_s, devices);
        self.state.failures.push(Failure {
            combo,
            reason: reason.into(),
        });
        Ok(())
    }

    fn feasible_values(&self, values: &[f64]) -> bool {
        self.state
            .config
            .constraints
            .iter()
            .zip(values)
            .all(|(c, &v)| c.holds(v))
    }

    /// Combos evaluated or failed (never proposed again).
    fn done(&self) -> Vec<bool> {
        let mut done = vec![false; self.space.len()];
        for o in &self.state.observations {
            done[o.combo] = true;
        }
        for f in &self.state.failures {
            done[f.combo] = true;
        }
        done
    }

    /// The next combo to measure: a pure function of the state (see the module docs).
    pub fn propose(&self) -> Result<Proposal, TuneError> {
        let done = self.done();
        let needs_model = match self.state.config.acquisition {
            Acquisition::ExpectedImprovement => {
                self.in_final_phase(&done)
                    || (!done.iter().all(|&d| d) && self.phase_proposal(&done).is_none())
            }
            Acquisition::KnowledgeGradient => self.phase_proposal(&done).is_none(),
        };
        let model = if needs_model { self.model() } else { None };
        self.propose_with(model.as_ref())
    }

    /// The next proposal and the best-so-far from one fit of the surrogate (what a driver loop
    /// wants after every trial; `propose` and `recommend` separately fit twice).
    pub fn plan(&self) -> (Result<Proposal, TuneError>, Option<Recommendation>) {
        let model = self.model();
        let best = model.as_ref().and_then(Model::recommend);
        (self.propose_with(model.as_ref()), best)
    }

    /// Seeds and random initial points, or `None` once the model decides.
    fn phase_proposal(&self, done: &[bool]) -> Option<Proposal> {
        if let Some(&s) = self.state.seeds.iter().find(|&&s| !done[s]) {
            return Some(Proposal {
                combo: s,
                kind: ProposalKind::Seed,
                acquisition_value: None,
                prob_feasible: None,
                predicted: None,
            });
        }
        let evaluated = done.iter().filter(|&&d| d).count();
        let seeds_done = self.state.seeds.len();
        let successes = self.state.observations.len();
        if evaluated < seeds_done + self.state.config.initial_random || successes < 2 {
            return self.random_proposal(done);
        }
        None
    }

    /// Trials kept for the final re-measurement (0 when the configuration or an unknown budget
    /// leaves none).
    pub fn reserved_trials(&self) -> usize {
        let r = &self.state.config.remeasure;
        if r.top == 0 || r.share <= 0.0 {
            return 0;
        }
        let Some(left) = self.state.budget.trials_left_estimate(&self.state.usage) else {
            return 0;
        };
        let planned = self.trials() as f64 + left;
        (r.share * planned).ceil() as usize
    }

    /// Re-measurements made so far.
    pub fn remeasured(&self) -> usize {
        self.state
            .observations
            .iter()
            .filter(|o| o.phase == Phase::Remeasure)
            .count()
    }

    /// Whether the next proposal is a re-measurement: the budget left is down to the reserved
    /// trials, or every combo has been evaluated and reserved trials remain.
    fn in_final_phase(&self, done: &[bool]) -> bool {
        let reserved = self.reserved_trials();
        if reserved == 0 || self.state.observations.is_empty() {
            return false;
        }
        let left = self
            .state
            .budget
            .trials_left_estimate(&self.state.usage)
            .unwrap_or(f64::INFINITY);
        left <= reserved as f64 || (done.iter().all(|&d| d) && self.remeasured() < reserved)
    }

    /// Whether the session has entered its final re-measurement phase.
    pub fn final_phase(&self) -> bool {
        self.in_final_phase(&self.done())
    }

    fn remeasure_proposal(&self, model: Option<&Model<'_>>) -> Option<Proposal> {
        let top = self.state.config.remeasure.top;
        let count = |c: usize| {
            self.state
                .observations
                .iter()
                .filter(|o| o.combo == c)
                .count()
        };
        // Only combos still in contention for the top are worth a replicate; when the best is
        // clear, the reserved trials go on searching.
        let m = model?;
        let contenders = m.contenders(top, CONTENTION);
        if contenders.len() < 2 {
            return None;
        }
        let pick = contenders
            .into_iter()
            .enumerate()
            .min_by_key(|(rank, r)| (count(r.combo), *rank))
            .map(|(_, r)| (r.combo, Some(r.predicted)))?;
        Some(Proposal {
            combo: pick.0,
            kind: ProposalKind::Remeasure,
            acquisition_value: None,
            prob_feasible: None,
            predicted: pick.1,
        })
    }

    fn propose_with(&self, model: Option<&Model<'_>>) -> Result<Proposal, TuneError> {
        if self.state.cancelled {
            return Err(TuneError::Cancelled);
        }
        let done = self.done();
        if self.state.config.acquisition == Acquisition::KnowledgeGradient {
            // Replicates are part of the rule, so a fully measured space is not the end: the
            // budget is (or every combo failing).
            if let Some(p) = self.phase_proposal(&done) {
                return Ok(p);
            }
            return model
                .and_then(Model::propose_kg)
                .ok_or(TuneError::SpaceExhausted);
        }
        if self.in_final_phase(&done)
            && let Some(p) = self.remeasure_proposal(model)
        {
            return Ok(p);
        }
        if done.iter().all(|&d| d) {
            return Err(TuneError::SpaceExhausted);
        }
        if let Some(p) = self.phase_proposal(&done) {
            return Ok(p);
        }
        match model {
            Some(m) => m.propose(&done).ok_or(TuneError::SpaceExhausted),
            None => self.random_proposal(&done).ok_or(TuneError::SpaceExhausted),
        }
    }

    fn random_proposal(&self, done: &[bool]) -> Option<Proposal> {
        let open: Vec<usize> = (0..done.len()).filter(|&i| !done[i]).collect();
        if open.is_empty() {
            return None;
        }
        let counter = self.trials() as u64;
        let mut rng =
            ChaCha8Rng::seed_from_u64(splitmix(self.state.config.seed ^ splitmix(counter)));
        let pick = open[rng.random_range(0..open.len())];
        Some(Proposal {
            combo: pick,
            kind: ProposalKind::Random,
            acquisition_value: None,
            prob_feasible: None,
            predicted: None,
        })
    }

    /// Fit the surrogate(s) to the observations so far; `None` without observations.
    pub fn model(&self) -> Option<Model<'_>> {
        let obs = &self.state.observations;
        if obs.is_empty() {
            return None;
        }
        let combos: Vec<&[u16]> = obs
            .iter()
            .map(|o| self.space.combos()[o.combo].as_slice())
            .collect();
        let y: Vec<f64> = obs.iter().map(|o| self.transform(o.value)).collect();
        let dims = self.space.dims().len();
        let gp = Gp::fit(&combos, &y, dims, self.state.config.ard)?;
        let y_sd = {
            let m = y.iter().sum::<f64>() / y.len() as f64;
            (y.iter().map(|v| (v - m).powi(2)).sum::<f64>() / y.len() as f64).sqrt()
        };
        let mut cons = Vec::new();
        for (ci, c) in self.state.config.constraints.iter().enumerate() {
            let vals: Vec<f64> = obs.iter().map(|o| o.constraints[ci]).collect();
            let log = c.threshold > 0.0 && vals.iter().all(|v| *v > 0.0);
            let tv: Vec<f64> = vals.iter().map(|v| if log { v.ln() } else { *v }).collect();
            let g = Gp::fit(&combos, &tv, dims, Ard::Off)?;
            cons.push(ConstraintModel {
                gp: g,
                log,
                constraint: c.clone(),
            });
        }
        Some(Model {
            session: self,
            gp,
            cons,
            xi: self.state.config.xi * y_sd,
        })
    }

    /// The best-so-far by the model (falls back to the best observed value when no model can be
    /// fit).
    pub fn recommend(&self) -> Option<Recommendation> {
        self.model().and_then(|m| m.recommend())
    }
}
