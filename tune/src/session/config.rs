//! What a session is asked to do: the objective, its constraints, the acquisition rule, the
//! final-phase re-measurement and their validation.

use serde::{Deserialize, Serialize};

use crate::error::TuneError;
use crate::gp::Ard;

/// Whether larger or smaller is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
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
    /// no reserved final phase ([`Remeasure`] is unused). Suited to flat, noisy tops (the book's
    /// Benchmarks page, *Tuning efficiency*: `docs/src/benchmarks.md`).
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
/// landscapes (`docs/src/benchmarks.md`, *Tuning efficiency*; 100 seeds each) this was the best of the settings
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

    pub(super) fn validate(&self) -> Result<(), TuneError> {
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
