//! A session's persisted state and what it hands out: observations, failures, proposals,
//! recommendations and the constraint outlook.

use serde::{Deserialize, Serialize};

use crate::budget::{Budget, Usage};

use super::TuneConfig;

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
/// trial; [`Session::resume`](super::Session::resume) restores it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneState {
    pub format: u32,
    /// [`Space::fingerprint`](crate::space::Space::fingerprint) of the space the indices refer to.
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
    /// improvement, or the knowledge gradient (see [`Acquisition`](super::Acquisition)).
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
