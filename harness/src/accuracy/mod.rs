//! Decision accuracy of the harness's statistics, measured on the sim engine's known truth.
//!
//! A **cell** is one design (how the arms are measured and which decision is made) under one
//! noise model and one true effect. Each of its comparisons launches the baseline and the
//! candidate(s) in their own engine launch(es) of the sim (launch-to-launch variation on), runs
//! their reps, scales the candidate's throughput by `1 + effect` (so the truth is known
//! exactly) and records the decisions. Every rate is printed with its 95 % Wilson score
//! interval.
//!
//! Designs:
//!
//! - [`Design::Pair`]: one candidate, `reps` reps over `launches` launches per arm (rep `i` on
//!   launch `i mod L`, as the harness lays them out). Rates: one-sided claims of "better"
//!   (two-sided p < α and a positive difference, nominal α/2) by Yuen's test on the reps alone,
//!   by Yuen's test with the known launch-to-launch component (what the gates use) and by
//!   Welch's test on already-trimmed samples (the known mistake); and the `topk5` gate's verdict
//!   at its default margin (nominal α/2 at its boundary, a true ratio of 1 + max(margin, floor)).
//! - [`Design::Topk`]: `combos` candidates, all at the same true effect, under `topk5` with `k`:
//!   the share of passes, and the share of comparisons with **any** claim that a combo clears
//!   the threshold (Holm-adjusted one-sided p < α/2) — every such claim is false when the effect
//!   is at the threshold.
//! - [`Design::Regression`]: the `regression` gate on throughput in both its forms: how often
//!   the fail-on-regression form fails, and how often the non-inferiority form passes.
//! - [`Design::Sequential`]: the group-sequential design as the harness runs it (`suite.rs`'s
//!   stopper): the baseline at `max_reps`, the candidate looked at after the planned looks at
//!   the per-look level the gates use, stopped by [`stats::sequential_decision`], then judged by
//!   the `topk5` gate with the same number of looks. The fixed design is its one-look case.
//! - [`Design::Frontier`]: the `pareto` gate `against: stored` (`gates::frontier::frontier_loss`,
//!   the gate's own function) in both forms: main's frontier of P points measured in a "main"
//!   run, P combos measured now, each covering its point, with the cell's true shortfall on one
//!   or both axes: how often the fail-on-regression form fails (calls a point lost) and how
//!   often the non-inferiority form passes (calls every point covered).
//!
//! Every claim is one-sided at α/2 (the gates' intervals are two-sided at the per-look level,
//! α for a fixed design), so every error rate's nominal value is α/2 = 2.5 %.
//!
//! Random streams: each cell's seed is derived from (base seed, cell id) by SHA-256, and each
//! comparison draws its launch seeds from its own ChaCha stream of that seed, so cells are
//! independent, a cell's result does not depend on which other cells run or on the number of
//! threads, and the whole run is reproducible.
//!
//! The parts: `cells` (the designs and the published cells), `cell_run` (running one cell),
//! `scenario` (the older one-seed scenario API and the sequential scenario), `sweep` (the
//! whole-sweep benchmark); this file holds the shared constants, the noise models, seeds and
//! the Wilson interval, and [`AccuracyError`] (what a run can fail with).

mod cell_run;
mod cells;
mod scenario;
mod sweep;

use l1_engines::sim::NoiseModel;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::stats;

pub use cell_run::{CellOutcome, FRONTIER_STEP, MAX_FRONTIER_POINTS, run_cell, stop_at_look};
pub use cells::{Cell, Design, FrontierAxes, FrontierShift, TOPK_MARGIN, published_cells};
pub use scenario::{Outcome, Scenario, SequentialOutcome, run, run_sequential};
pub use sweep::{SweepOutcome, run_sweep, sweep_combos};

/// What a decision-accuracy run can fail with. The `Display` texts are the messages `l1 accuracy`
/// prints.
#[derive(Debug, thiserror::Error)]
pub enum AccuracyError {
    /// A cell or scenario names a noise model this module does not have.
    #[error("unknown noise model `{0}`")]
    UnknownNoise(String),
    /// A cell's `launch_cv_factor` is negative or not finite.
    #[error("{cell}: launch_cv_factor must be ≥ 0")]
    LaunchCvFactor { cell: String },
    /// A cell run with zero comparisons.
    #[error("at least one comparison per cell is needed")]
    NoComparisons,
    /// A gate this module builds from YAML did not parse (a bug here, not in user input).
    #[error("internal gate `{yaml}`: {message}")]
    InternalGate { yaml: String, message: String },
    /// The sim failed to launch or to run a rep.
    #[error(transparent)]
    Sim(#[from] l1_engines::sim::SimError),
    /// The sim's metrics lacked the compared metric.
    #[error("the sim reported no `{metric}`")]
    MissingMetric { metric: &'static str },
    /// A comparison's statistics could not be computed.
    #[error(transparent)]
    Stats(#[from] stats::StatsError),
    /// A gate could not be evaluated.
    #[error(transparent)]
    Gate(#[from] crate::gates::GateError),
    /// The manual gate of a sweep picked no winner.
    #[error("no winner")]
    NoWinner,
    /// A frontier cell asks for a number of points its spacing cannot hold (1 to
    /// [`MAX_FRONTIER_POINTS`]).
    #[error("{cell}: a frontier cell needs 1 to {max} points, not {points}", max = MAX_FRONTIER_POINTS)]
    FrontierPointCount { cell: String, points: usize },
    /// An `l1 ab` cell with fewer than 2 rounds (the rounds are the unit of its test).
    #[error("{cell}: an l1 ab cell needs at least 2 rounds, not {rounds}")]
    AbRounds { cell: String, rounds: usize },
    /// `l1 ab`'s test could not be computed on a comparison's rounds.
    #[error("l1 ab's paired test: {why}")]
    Ab { why: String },
    /// Main's measured frontier in a frontier cell lacks some of its points (the points are
    /// spaced so that this does not happen; a change to the spacing or the noise broke that).
    #[error("main's measured frontier has {found} points, expected {expected}")]
    FrontierPoints { expected: usize, found: usize },
    /// A worker thread of a cell run panicked.
    #[error("a worker thread panicked")]
    WorkerPanicked,
}

impl From<AccuracyError> for String {
    fn from(e: AccuracyError) -> Self {
        e.to_string()
    }
}

/// Family-wise significance level of every decision measured here (the gates' default).
pub const ALPHA: f64 = 0.05;
/// Trim of every comparison (the specs' default).
pub const TRIM: f64 = 0.10;
/// The metric compared.
const METRIC: &str = "output_tokens_per_s";
/// The latency axis of the frontier comparison (the `pareto` gate's default `latency_metric`).
const LATENCY: &str = "e2e_p95_ms";
/// The 0.975 normal quantile.
const Z95: f64 = 1.959_963_984_540_054;

/// The 95 % Wilson score interval of `count` successes in `n` trials.
pub fn wilson(count: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (count as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// One measured rate with its 95 % Wilson score interval.
#[derive(Clone, Debug, Serialize)]
pub struct Rate {
    /// Short name, stable across runs (the independent check matches on it).
    pub name: &'static str,
    /// What is counted.
    pub meaning: String,
    pub count: usize,
    pub n: usize,
    pub rate: f64,
    /// 95 % Wilson score interval.
    pub ci95: (f64, f64),
    /// The error rate the procedure promises in this cell, where the rate is an error rate (the
    /// truth is at or beyond the procedure's null).
    pub nominal: Option<f64>,
    /// Whether it holds: the rate is at or below nominal, or nominal lies inside its interval.
    pub holds: Option<bool>,
}

impl Rate {
    fn new(
        name: &'static str,
        meaning: String,
        count: usize,
        n: usize,
        nominal: Option<f64>,
    ) -> Self {
        let ci95 = wilson(count, n);
        let rate = if n == 0 {
            f64::NAN
        } else {
            count as f64 / n as f64
        };
        Self {
            name,
            meaning,
            count,
            n,
            rate,
            ci95,
            nominal,
            holds: nominal.map(|a| rate <= a || ci95.0 <= a),
        }
    }
}

/// The noise models the benchmark runs under.
pub fn noise_model(name: &str) -> Option<NoiseModel> {
    match name {
        "normal" => Some(NoiseModel {
            lognormal: false,
            outlier_p: 0.0,
            outlier_slowdown: 1.0,
        }),
        "lognormal" => Some(NoiseModel {
            lognormal: true,
            outlier_p: 0.0,
            outlier_slowdown: 1.0,
        }),
        "contaminated" => Some(NoiseModel {
            lognormal: false,
            outlier_p: 0.10,
            outlier_slowdown: 1.15,
        }),
        _ => None,
    }
}

/// The per-look (two-sided) level of a design with `looks` planned looks:
/// [`stats::per_look_level`], the one function the gates and the harness's stopper use (one
/// look: α itself). One-sided claims are made at half of it.
pub fn per_look_level(alpha: f64, looks: usize) -> f64 {
    stats::per_look_level(alpha, looks)
}

/// The nominal rate of a false one-sided claim (an improvement, a regression or a
/// non-inferiority) over a whole design: α/2.
pub const ONE_SIDED: f64 = ALPHA / 2.0;

/// The seed of a cell's random stream: SHA-256 of (base seed, cell id).
pub fn cell_seed(base: u64, id: &str) -> u64 {
    let digest = Sha256::digest(format!("l1-accuracy:{base}:{id}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(b)
}
