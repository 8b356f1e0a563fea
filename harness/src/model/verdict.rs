//! Gate verdicts as trial records carry them: the verdict, its table of rows (one per combo),
//! the "inconclusive" mark, and the measured arms gates are evaluated on.

use l1_engines::Metrics;
use serde::{Deserialize, Serialize};

use super::design::Design;
use super::fidelity::ComboFidelity;

/// The metric of a gate row that carries output fidelity instead of a speed comparison.
pub const FIDELITY_METRIC: &str = "fidelity";

/// A rep of an arm lacks the metric a gate compares on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rep {rep} of {arm} has no metric `{metric}`")]
pub struct MissingMetric {
    pub rep: usize,
    pub arm: String,
    pub metric: String,
}

/// One measured arm (a combo or the baseline).
#[derive(Clone, Debug)]
pub struct Arm {
    pub label: String,
    pub reps: Vec<Metrics>,
    /// Engine launches the reps came from (rep `i` in launch `i mod launches`, the harness's
    /// layout, which fixes each launch's size: `stats::round_robin_sizes`).
    pub launches: usize,
}

impl Arm {
    /// The values of one metric across reps.
    pub fn values(&self, name: &str) -> Result<Vec<f64>, MissingMetric> {
        self.reps
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.get(name).copied().ok_or_else(|| MissingMetric {
                    rep: i,
                    arm: self.label.clone(),
                    metric: name.to_string(),
                })
            })
            .collect()
    }
}

/// A combo's line in a gate's table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Row {
    pub combo: String,
    pub metric: String,
    /// NaN where there is none (a fidelity row); JSON writes NaN as `null`, read back as NaN.
    #[serde(deserialize_with = "nan_if_null")]
    pub trimmed_mean: f64,
    /// Direction-aware improvement ratio over the baseline (> 1 is better) and its interval.
    pub improvement: Option<f64>,
    pub improvement_ci: Option<(f64, f64)>,
    pub yuen_p: Option<f64>,
    pub adjusted_p: Option<f64>,
    pub hedges_g: Option<f64>,
    /// Minimum detectable relative effect at 80 % power for this comparison.
    pub mde: Option<f64>,
    pub reps: usize,
    pub on_frontier: bool,
    pub note: String,
    /// The combo's output fidelity against the baseline, where it was compared.
    #[serde(default)]
    pub fidelity: Option<ComboFidelity>,
}

impl Row {
    /// A combo's fidelity as a gate-table row: metric [`FIDELITY_METRIC`], the exact-match rate
    /// in the trimmed-mean column, the probe count as reps.
    pub fn fidelity(c: &ComboFidelity) -> Self {
        Self {
            combo: c.combo.clone(),
            metric: FIDELITY_METRIC.into(),
            trimmed_mean: c.measures.exact_match.unwrap_or(f64::NAN),
            improvement: None,
            improvement_ci: None,
            yuen_p: None,
            adjusted_p: None,
            hedges_g: None,
            mde: None,
            reps: c.measures.probes,
            on_frontier: false,
            note: if c.passed {
                "fidelity ok".into()
            } else {
                c.failures.join("; ")
            },
            fidelity: Some(c.clone()),
        }
    }
}

/// `null` (how serde_json writes a non-finite number) as NaN.
fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A gate's verdict.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GateVerdict {
    pub method: String,
    pub passed: bool,
    pub message: String,
    pub winner: Option<String>,
    /// Probability that the winner is the true best within the indifference zone (the noise
    /// floor), from the sampling distributions of every combo's trimmed mean.
    pub p_best: Option<f64>,
    pub rows: Vec<Row>,
    /// The winner, only when a gate that tests for improvement established it: `topk5`, whose
    /// one-sided claim that the winner beats the baseline by more than the gate's threshold
    /// holds (Holm-adjusted across all candidates) and whose comparison is not inconclusive.
    /// `None` from every other gate (`regression`, `pareto`, `manual` name a `winner` by point
    /// estimate but do not test that it is better) and from a `topk5` whose winner's claim
    /// failed. What `l1 apply` may write without being forced.
    #[serde(default)]
    pub established_winner: Option<String>,
    /// Set when the winner's comparison is too wide to decide: its minimum detectable effect
    /// exceeds the gate's `max_mde`; says which reps or launches would decide it.
    #[serde(default)]
    pub inconclusive: Option<Inconclusive>,
    /// A `regression` gate's per-metric checks, with the numbers its message states (empty
    /// for every other gate, and in records written before gates wrote them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<l1_reports::model::RegressionCheck>,
}

impl GateVerdict {
    /// A failed verdict with no winner and no table.
    pub fn failed(method: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            method: method.into(),
            passed: false,
            message: message.into(),
            winner: None,
            p_best: None,
            rows: Vec::new(),
            established_winner: None,
            inconclusive: None,
            checks: Vec::new(),
        }
    }
}

/// "Inconclusive — more reps or launches needed": a comparison whose minimum detectable
/// effect (80 % power, at the gate's level, against no change) exceeds the gate's `max_mde`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inconclusive {
    pub combo: String,
    pub metric: String,
    /// The comparison's minimum detectable effect (relative).
    pub mde: f64,
    /// The threshold it exceeds (the gate's `max_mde`).
    pub max_mde: f64,
    /// Reps per arm (at the current number of launches) or launches (of the current reps per
    /// launch) that would bring the MDE down to `max_mde`; `None` when out of reach.
    pub suggestion: Option<Design>,
    /// The sentence the gate message carries.
    pub message: String,
}

impl From<MissingMetric> for String {
    fn from(e: MissingMetric) -> Self {
        e.to_string()
    }
}
