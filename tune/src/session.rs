//! A tune session: the persisted state (`bayesian_state`), the pure `propose`, `observe`, the
//! best-so-far with its interval, and the candidates to re-measure at the end.
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

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::acquisition::{expected_improvement, expected_max_gain, prob_at_most};
use crate::budget::{Budget, Limit, Remaining, Usage};
use crate::error::TuneError;
use crate::gp::{Ard, Gp, Latent};
use crate::space::Space;

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

/// Whether larger or smaller is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Maximize,
    Minimize,
}

/// What is optimised.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Objective {
    /// Metric name (validated by the caller against the metric registry).
    pub metric: String,
    pub direction: Direction,
    /// Model the logarithm of the metric (throughput and latency are positive and their
    /// effects multiplicative); observations must then be positive.
    #[serde(default = "yes")]
    pub log: bool,
}

fn yes() -> bool {
    true
}

/// Which side of the threshold is feasible.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sense {
    AtMost,
    AtLeast,
}

/// A constraint on another metric, e.g. `ttft_p95_ms` at most 200.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    pub metric: String,
    pub sense: Sense,
    pub threshold: f64,
}

impl Constraint {
    pub fn holds(&self, value: f64) -> bool {
        match self.sense {
            Sense::AtMost => value <= self.threshold,
            Sense::AtLeast => value >= self.threshold,
        }
    }
}

/// Settings of a session; part of its state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneConfig {
    pub objective: Objective,
    #[serde(default)]
    pub constraints: Vec<Constraint>,
    /// Seed of the random initial points.
    #[serde(default)]
    pub seed: u64,
    /// Random legal combos evaluated after the seeds, before the model takes over.
    #[serde(default = "default_initial_random")]
    pub initial_random: usize,
    #[serde(default)]
    pub ard: Ard,
    /// Exploration offset of expected improvement, in units of the objective's standard
    /// deviation over the observations.
    #[serde(default)]
    pub xi: f64,
    /// The final re-measurement of the top candidates.
    #[serde(default)]
    pub remeasure: Remeasure,
    /// How the model picks the next combo once the initial design is done.
    #[serde(default)]
    pub acquisition: Acquisition,
}

/// The acquisition function: how the fitted model picks the next combo.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Acquisition {
    /// Expected improvement over the best posterior mean, among the combos not yet measured;
    /// replicates come only from the final phase ([`Remeasure`]).
    #[default]
    ExpectedImprovement,
    /// Knowledge gradient (Frazier, Powell & Dayanik 2009): the expected rise of the best
    /// posterior mean among the measured combos if `x` is measured once, over every combo that
    /// has not failed, measured or not. One scale values a replicate of a measured combo and a
    /// first look at a new one, so replicates come when they pay, whenever they pay; there is
    /// no reserved final phase ([`Remeasure`] is unused). Suited to flat, noisy tops (README,
    /// *Measured efficiency*).
    KnowledgeGradient,
}

/// The final phase: the last `share` of the budget re-measures the `top` evaluated combos (by
/// posterior mean, feasible first, failed ones excluded), the least-measured first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remeasure {
    /// How many of the best evaluated combos compete for re-measurement (0: none).
    pub top: usize,
    /// Share of the budget's trials kept for it, in [0, 0.5] (0: none).
    pub share: f64,
}

/// Defaults of [`Remeasure`]: the top 2 share the last 20 % of the budget. On the benchmark
/// landscapes (README, *Measured efficiency*; 100 seeds each) this was the best of the settings
/// tried (top 2–5, share 5–30 %): within 1 % of the optimum at 5 % of the space in 95/100/97/90 %
/// of seeds, against 81/99/91/87 % without a final phase; a larger top spreads the replicates
/// too thin.
impl Default for Remeasure {
    fn default() -> Self {
        Self { top: 2, share: 0.2 }
    }
}

fn default_initial_random() -> usize {
    DEFAULT_INITIAL_RANDOM
}

/// Default number of random initial points.
pub const DEFAULT_INITIAL_RANDOM: usize = 4;

impl TuneConfig {
    /// Maximise or minimise `metric` with the defaults (log model, 4 random points, isotropic
    /// kernel, no exploration offset).
    pub fn new(metric: impl Into<String>, direction: Direction) -> Self {
        Self {
            objective: Objective {
                metric: metric.into(),
                direction,
                log: true,
            },
            constraints: Vec::new(),
            seed: 0,
            initial_random: DEFAULT_INITIAL_RANDOM,
            ard: Ard::Off,
            xi: 0.0,
            remeasure: Remeasure::default(),
            acquisition: Acquisition::default(),
        }
    }

    fn validate(&self) -> Result<(), TuneError> {
        let r = &self.remeasure;
        if !(r.share.is_finite() && (0.0..=0.5).contains(&r.share)) {
            return Err(TuneError::InvalidConfig(format!(
                "remeasure.share must be in [0, 0.5], got {}",
                r.share
            )));
        }
        if !(self.xi.is_finite() && self.xi >= 0.0) {
            return Err(TuneError::InvalidConfig(format!(
                "xi must be a non-negative number, got {}",
                self.xi
            )));
        }
        for c in &self.constraints {
            if !c.threshold.is_finite() {
                return Err(TuneError::InvalidConfig(format!(
                    "constraint on `{}` has a non-finite threshold",
                    c.metric
                )));
            }
        }
        Ok(())
    }
}

/// Whether a measurement was part of the search or a re-measurement of a top candidate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Search,
    Remeasure,
}

/// One finished trial: the combo, its objective value (e.g. the trimmed mean of its reps) and
/// the constraint metrics in the order of [`TuneConfig::constraints`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observation {
    pub combo: usize,
    pub value: f64,
    #[serde(default)]
    pub constraints: Vec<f64>,
    #[serde(default)]
    pub phase: Phase,
    /// Seconds the trial took and the devices it held (0 for a cache hit).
    #[serde(default)]
    pub elapsed_s: f64,
    #[serde(default)]
    pub devices: u32,
}

impl Observation {
    /// A search-phase observation without constraint values or cost.
    pub fn new(combo: usize, value: f64) -> Self {
        Self {
            combo,
            value,
            constraints: Vec::new(),
            phase: Phase::Search,
            elapsed_s: 0.0,
            devices: 0,
        }
    }
}

/// A trial whose measurement failed (engine did not start, crashed, …): never proposed again and
/// left out of the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    pub combo: usize,
    pub reason: String,
}

/// The persisted state of a session (the origin's `bayesian_state`). Serialise it after every
/// trial; [`Session::resume`] restores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneState {
    pub format: u32,
    /// [`Space::fingerprint`] of the space the indices refer to.
    pub space_fingerprint: String,
    pub config: TuneConfig,
    pub budget: Budget,
    /// The caller's seed combos (Tier-1 pareto points), proposed first.
    pub seeds: Vec<usize>,
    pub observations: Vec<Observation>,
    pub failures: Vec<Failure>,
    pub usage: Usage,
    /// Index into `observations` of the best feasible observed value (the best-trial pointer).
    pub best_trial: Option<usize>,
    /// Set when the session was cancelled; a cancelled session proposes nothing.
    #[serde(default)]
    pub cancelled: bool,
}

/// Why a combo is proposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalKind {
    Seed,
    Random,
    Acquisition,
    /// A top candidate measured again in the final phase.
    Remeasure,
}

/// The next combo to measure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Proposal {
    pub combo: usize,
    pub kind: ProposalKind,
    /// The acquisition value in the model's units (acquisition proposals): expected
    /// improvement, or the knowledge gradient (see [`Acquisition`]).
    pub acquisition_value: Option<f64>,
    /// Probability that every constraint holds (when there are constraints).
    pub prob_feasible: Option<f64>,
    /// Predicted objective value in the metric's units.
    pub predicted: Option<f64>,
}

impl Proposal {
    /// The phase an observation of this proposal belongs to.
    pub fn phase(&self) -> Phase {
        if self.kind == ProposalKind::Remeasure {
            Phase::Remeasure
        } else {
            Phase::Search
        }
    }
}

/// What the session would report now: the best evaluated combo by the model's posterior mean,
/// with an interval.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    pub combo: usize,
    pub label: String,
    /// Posterior mean of the objective (metric units).
    pub predicted: f64,
    /// 95 % posterior interval of the true value (metric units, low ≤ high).
    pub interval: (f64, f64),
    /// The objective values observed for this combo.
    pub observed: Vec<f64>,
    /// Whether the observations of this combo met every constraint (mean of observed values).
    pub feasible: bool,
}

/// Outlook of one constraint, to tell a caller that no legal point seems to meet it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConstraintOutlook {
    pub metric: String,
    /// Observed combos that met it.
    pub feasible_observed: usize,
    pub observed: usize,
    /// Largest model probability over unevaluated combos that it holds.
    pub max_prob_unevaluated: f64,
}

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

struct ConstraintModel {
    gp: Gp,
    log: bool,
    constraint: Constraint,
}

impl ConstraintModel {
    fn prob(&self, combo: &[u16]) -> f64 {
        let p = self.gp.predict(combo);
        let thr = if self.log {
            self.constraint.threshold.ln()
        } else {
            self.constraint.threshold
        };
        let at_most = prob_at_most(p.mean, p.sd, thr);
        match self.constraint.sense {
            Sense::AtMost => at_most,
            Sense::AtLeast => 1.0 - at_most,
        }
    }
}

/// The fitted surrogates of a session at its current state.
pub struct Model<'a> {
    session: &'a Session,
    gp: Gp,
    cons: Vec<ConstraintModel>,
    xi: f64,
}

impl std::fmt::Debug for Model<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("hyper", self.gp.hyper())
            .finish_non_exhaustive()
    }
}

impl Model<'_> {
    /// The objective GP's hyperparameters.
    pub fn hyper(&self) -> &crate::gp::Hyper {
        self.gp.hyper()
    }

    fn prob_feasible(&self, combo: &[u16]) -> f64 {
        self.cons.iter().map(|c| c.prob(combo)).product()
    }

    /// Distinct observed combos with their posterior mean (model units) and observed
    /// feasibility, in combo order.
    fn observed(&self) -> Vec<(usize, f64, bool)> {
        let s = self.session;
        let mut seen: Vec<usize> = s.state.observations.iter().map(|o| o.combo).collect();
        seen.sort_unstable();
        seen.dedup();
        // A combo that failed after it was measured (a re-measurement crashed) is not
        // recommended.
        seen.retain(|i| !s.state.failures.iter().any(|f| f.combo == *i));
        seen.into_iter()
            .map(|i| {
                let mean = self.gp.predict(&s.space.combos()[i]).mean;
                let obs: Vec<&Observation> = s
                    .state
                    .observations
                    .iter()
                    .filter(|o| o.combo == i)
                    .collect();
                let nc = s.state.config.constraints.len();
                let avg: Vec<f64> = (0..nc)
                    .map(|c| obs.iter().map(|o| o.constraints[c]).sum::<f64>() / obs.len() as f64)
                    .collect();
                (i, mean, s.feasible_values(&avg))
            })
            .collect()
    }

    fn propose(&self, done: &[bool]) -> Option<Proposal> {
        let s = self.session;
        let observed = self.observed();
        let incumbent = observed
            .iter()
            .filter(|o| o.2)
            .map(|o| o.1)
            .fold(f64::NEG_INFINITY, f64::max);
        let has_feasible = incumbent.is_finite();
        let has_cons = !self.cons.is_empty();
        let mut best: Option<(f64, f64, usize, f64, f64)> = None; // score, tiebreak, idx, ei, pof
        for (i, c) in s.space.combos().iter().enumerate() {
            if done[i] {
                continue;
            }
            let p = self.gp.predict(c);
            let pof = if has_cons { self.prob_feasible(c) } else { 1.0 };
            let ei = if has_feasible {
                expected_improvement(p.mean, p.sd, incumbent, self.xi)
            } else {
                0.0
            };
            let score = if has_feasible { ei * pof } else { pof };
            // Secondary key when EI underflows everywhere: an optimistic bound.
            let tie = (p.mean + 2.0 * p.sd) * pof.max(1e-300);
            let score = if score.is_finite() { score } else { 0.0 };
            let tie = if tie.is_finite() {
                tie
            } else {
                f64::NEG_INFINITY
            };
            if best.is_none_or(|b| score > b.0 || (score == b.0 && tie > b.1)) {
                best = Some((score, tie, i, ei, pof));
            }
        }
        best.map(|(_, _, i, ei, pof)| Proposal {
            combo: i,
            kind: ProposalKind::Acquisition,
            acquisition_value: Some(ei),
            prob_feasible: has_cons.then_some(pof),
            predicted: Some(s.untransform(self.gp.predict(&s.space.combos()[i]).mean)),
        })
    }

    /// The combos a report can name (observed, not failed; the feasible ones when any is) as
    /// joint posteriors, and the best posterior mean among them.
    fn reportable(&self) -> (Vec<(usize, Latent)>, f64) {
        let s = self.session;
        let observed = self.observed();
        let any_feasible = observed.iter().any(|o| o.2);
        let set: Vec<(usize, Latent)> = observed
            .iter()
            .filter(|o| o.2 || !any_feasible)
            .map(|o| (o.0, self.gp.latent(&s.space.combos()[o.0])))
            .collect();
        let best = set
            .iter()
            .map(|(_, l)| l.mean)
            .fold(f64::NEG_INFINITY, f64::max);
        (set, best)
    }

    /// Knowledge gradient of measuring combo `x` once: the expected rise of the best posterior
    /// mean among the reportable combos (plus `x`, which a measurement makes reportable), from
    /// the joint posterior and the fitted noise. Unlike expected improvement it values a
    /// replicate of a measured combo and a first look at a new one on one scale, which is what
    /// picking the best of a flat, noisy top needs.
    fn knowledge_gradient(&self, x: usize, reportable: &[(usize, Latent)], best: f64) -> f64 {
        let s = self.session;
        let lx = self.gp.latent(&s.space.combos()[x]);
        let noise = self.gp.noise_sd().powi(2);
        let sd = (lx.var + noise).sqrt();
        if sd.is_nan() || sd <= 0.0 {
            return 0.0;
        }
        let mut a = Vec::with_capacity(reportable.len() + 1);
        let mut b = Vec::with_capacity(reportable.len() + 1);
        for (i, l) in reportable {
            a.push(l.mean);
            b.push(if *i == x { lx.var } else { self.gp.cov(l, &lx) } / sd);
        }
        if !reportable.iter().any(|(i, _)| *i == x) {
            a.push(lx.mean);
            b.push(lx.var / sd);
        }
        // What `x` adds by its current mean alone (when nothing is reportable yet, e.g. every
        // measured combo failed a re-measurement, only the expected gain counts).
        let top = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lift = if best.is_finite() {
            (top - best).max(0.0)
        } else {
            0.0
        };
        expected_max_gain(&a, &b) + lift
    }

    /// The combo (measured or not, never a failed one) with the largest knowledge gradient
    /// times the probability that the constraints hold; a measured one is a re-measurement.
    fn propose_kg(&self) -> Option<Proposal> {
        let s = self.session;
        let done = s.done();
        let failed: Vec<usize> = s.state.failures.iter().map(|f| f.combo).collect();
        let (reportable, best) = self.reportable();
        let has_cons = !self.cons.is_empty();
        let mut pick: Option<(f64, usize, f64)> = None;
        for (i, c) in s.space.combos().iter().enumerate() {
            if failed.contains(&i) {
                continue;
            }
            let pof = if has_cons { self.prob_feasible(c) } else { 1.0 };
            let score = self.knowledge_gradient(i, &reportable, best) * pof;
            if pick.is_none_or(|p| score > p.0) {
                pick = Some((score, i, pof));
            }
        }
        pick.map(|(score, i, pof)| Proposal {
            combo: i,
            kind: if done[i] {
                ProposalKind::Remeasure
            } else {
                ProposalKind::Acquisition
            },
            acquisition_value: Some(score),
            prob_feasible: has_cons.then_some(pof),
            predicted: Some(s.untransform(self.gp.predict(&s.space.combos()[i]).mean)),
        })
    }

    /// The evaluated combos ranked by posterior mean, feasible ones first.
    pub fn ranked(&self) -> Vec<Recommendation> {
        let s = self.session;
        let mut obs = self.observed();
        obs.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.total_cmp(&a.1)).then(a.0.cmp(&b.0)));
        obs.into_iter()
            .map(|(i, _, feasible)| {
                let p = self.gp.predict(&s.space.combos()[i]);
                let lo = s.untransform(p.mean - 1.96 * p.sd);
                let hi = s.untransform(p.mean + 1.96 * p.sd);
                Recommendation {
                    combo: i,
                    label: s.space.label(i),
                    predicted: s.untransform(p.mean),
                    interval: (lo.min(hi), lo.max(hi)),
                    observed: s
                        .state
                        .observations
                        .iter()
                        .filter(|o| o.combo == i)
                        .map(|o| o.value)
                        .collect(),
                    feasible,
                }
            })
            .collect()
    }

    /// The best-so-far: the top of [`Model::ranked`].
    pub fn recommend(&self) -> Option<Recommendation> {
        self.ranked().into_iter().next()
    }

    /// The top `k` candidates to re-measure at the end (feasible first, by posterior mean).
    pub fn remeasure_candidates(&self, k: usize) -> Vec<Recommendation> {
        self.ranked().into_iter().take(k).collect()
    }

    /// Of the top `k` candidates, those still in contention: the first, and every other with at
    /// least `p_min` posterior probability of being truly better than it (treating the two
    /// posteriors as independent, which overstates the chance a little: a conservative choice
    /// for re-measuring). Fewer than two means the best is clear.
    pub fn contenders(&self, k: usize, p_min: f64) -> Vec<Recommendation> {
        let s = self.session;
        let top = self.remeasure_candidates(k);
        let Some(first) = top.first() else {
            return top;
        };
        let p1 = self.gp.predict(&s.space.combos()[first.combo]);
        let feasible = first.feasible;
        top.into_iter()
            .enumerate()
            .filter(|(rank, r)| {
                if *rank == 0 {
                    return true;
                }
                if r.feasible != feasible {
                    return false;
                }
                let p = self.gp.predict(&s.space.combos()[r.combo]);
                let sd = (p1.sd * p1.sd + p.sd * p.sd).sqrt();
                1.0 - prob_at_most(p.mean, sd, p1.mean) >= p_min
            })
            .map(|(_, r)| r)
            .collect()
    }

    /// Per constraint: how many observed combos met it and the best chance an unevaluated
    /// combo has. A constraint no observation met and whose best chance is tiny cannot be
    /// met by any legal point as far as the model can tell.
    pub fn constraint_outlook(&self) -> Vec<ConstraintOutlook> {
        let s = self.session;
        let done = s.done();
        self.cons
            .iter()
            .enumerate()
            .map(|(ci, cm)| {
                let mut seen: Vec<usize> = s.state.observations.iter().map(|o| o.combo).collect();
                seen.sort_unstable();
                seen.dedup();
                let feasible_observed = seen
                    .iter()
                    .filter(|&&i| {
                        let v: Vec<f64> = s
                            .state
                            .observations
                            .iter()
                            .filter(|o| o.combo == i)
                            .map(|o| o.constraints[ci])
                            .collect();
                        cm.constraint.holds(v.iter().sum::<f64>() / v.len() as f64)
                    })
                    .count();
                let max_prob_unevaluated = s
                    .space
                    .combos()
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !done[*i])
                    .map(|(_, c)| cm.prob(c))
                    .fold(0.0, f64::max);
                ConstraintOutlook {
                    metric: cm.constraint.metric.clone(),
                    feasible_observed,
                    observed: seen.len(),
                    max_prob_unevaluated,
                }
            })
            .collect()
    }
}
