//! Quality gates: turn the reps of a target's combos and its baseline into pass/fail with an
//! explanation that carries the numbers.
//!
//! All comparisons use Yuen's trimmed-mean test ([`crate::stats`]). Improvement is expressed as a
//! direction-aware ratio `r` (> 1 is better: candidate/baseline for throughput, baseline/candidate
//! for latency). No difference smaller than the noise floor is claimed, whatever the p-value.
//! Intervals are two-sided at [`stats::per_look_level`]`(α, looks)` and every one-sided claim is
//! at half of it ([`one_sided_level`]), the same rule early termination and `l1 accuracy` use.
//!
//! One shape for every method: each is an [`Evaluator`] in one table ([`evaluator`]), given the
//! same [`Input`]. The methods that judge the combos against the baseline (`topk5`, `pareto`,
//! `regression`, `manual`) share their ranking (`ranked.rs`); `drift` compares the baseline with
//! its calibration; `fidelity` takes the target's fidelity report. [`evaluate_all`] composes
//! output fidelity in: the combos an enforced `fidelity` gate fails are left out of every gate
//! that judges combos.

mod drift;
mod fidelity;
pub mod frontier;
mod manual;
mod pareto;
mod ranked;
pub mod regression;
mod select;
mod text;
mod topk;

#[cfg(test)]
mod frontier_tests;
#[cfg(test)]
mod pareto_tests;
#[cfg(test)]
mod selection_tests;

pub use crate::model::{Arm, GateVerdict, Inconclusive, Row};
use crate::spec::{Gate, GateMethod};
use crate::stats::{self, Comparison, StatsError};
pub use l1_reports::model::RegressionCheck;

/// Why a gate could not be evaluated (a gate that ran and failed is a verdict, not an error).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum GateError {
    #[error("unknown metric `{0}`")]
    UnknownMetric(String),
    #[error(transparent)]
    MissingMetric(#[from] crate::model::MissingMetric),
    #[error("no combo was measured successfully, so no gate can be evaluated")]
    NoCombos,
    /// A comparison of `arm` with the baseline (or the winner) on `metric` could not be made.
    #[error("{arm}: {metric}: {source}")]
    Compare {
        arm: String,
        metric: String,
        source: StatsError,
    },
    /// A statistic of one arm (`baseline` for the baseline) could not be computed.
    #[error("{arm}: {source}")]
    Arm { arm: String, source: StatsError },
    #[error(
        "drift: no calibration of the baseline is recorded for this machine and target; run `l1 calibrate <spec>` first (it measures the baseline over several launches and records it under target/l1/calibration/)"
    )]
    NoCalibration,
    #[error("drift: the calibration has no metric `{0}`")]
    CalibrationMetric(String),
    #[error("the fidelity gate has no probe answers to compare (internal: no report built)")]
    NoFidelityReport,
}

impl GateError {
    fn arm(arm: &str) -> impl Fn(StatsError) -> Self + '_ {
        move |source| Self::Arm {
            arm: arm.to_string(),
            source,
        }
    }
}

impl From<GateError> for String {
    fn from(e: GateError) -> Self {
        e.to_string()
    }
}

/// Settings shared by every gate of a target.
#[derive(Clone, Debug)]
pub struct GateContext {
    pub trim: f64,
    /// Coefficient of variation below which no difference is claimed.
    pub noise_floor: f64,
    /// Launch-to-launch coefficient of variation σ_b/mean, added to every comparison as a known
    /// variance component for the part the reps cannot show (each arm's reps spread round-robin
    /// over its `launches`; see [`stats::Between`] for where the value comes from).
    pub launch_cv: f64,
    /// This machine's recorded calibration of the baseline (for `drift`).
    pub calibration: Option<crate::model::Calibration>,
    /// Planned looks of a group-sequential design (1 = fixed reps). With K > 1 looks every
    /// comparison is made at the per-look level of [`stats::per_look_level`], so stopping early
    /// cannot inflate the error.
    pub looks: usize,
}

impl GateContext {
    fn compare(
        &self,
        candidate: &Arm,
        baseline: &Arm,
        metric: &str,
        confidence: f64,
    ) -> Result<Comparison, GateError> {
        let between = stats::Between {
            cv: self.launch_cv,
            candidate_launches: candidate.launches,
            baseline_launches: baseline.launches,
        };
        stats::compare_with(
            &candidate.values(metric)?,
            &baseline.values(metric)?,
            self.trim,
            confidence,
            between,
        )
        .map_err(|source| GateError::Compare {
            arm: candidate.label.clone(),
            metric: metric.to_string(),
            source,
        })
    }
}

/// The one-sided level of every claim a gate makes (an improvement, a regression, a
/// non-inferiority) for a gate of family level `alpha` in a design of `looks` planned looks: half
/// of [`stats::per_look_level`], i.e. exactly the matching end of the two-sided `1 − level`
/// interval the gate prints. The decision-accuracy benchmark and early termination use the same.
pub fn one_sided_level(alpha: f64, looks: usize) -> f64 {
    stats::per_look_level(alpha, looks) / 2.0
}

/// The default `max_mde`: 10 % (for `regression` at least its largest ε).
pub const DEFAULT_MAX_MDE: f64 = 0.10;

/// Power at which detectable effects and suggested designs are stated.
const POWER: f64 = 0.8;

/// The extra improvement over a gate's threshold it is asked to find: "margin + 2 %".
const PLANNING_EXCESS: f64 = 0.02;

/// What every gate method is given.
pub struct Input<'a> {
    pub gate: &'a Gate,
    pub ctx: &'a GateContext,
    pub baseline: &'a Arm,
    /// The combos it may judge: those an enforced `fidelity` gate fails are left out.
    pub combos: &'a [Arm],
    /// The target's fidelity report, when its gates needed one.
    pub fidelity: Option<&'a crate::fidelity::Report>,
    /// The combos left out for failing output fidelity.
    pub excluded: &'a [String],
}

impl Input<'_> {
    /// The gate's metric (default `output_tokens_per_s`) and what it is.
    fn metric(&self) -> Result<(String, &'static l1_engines::metrics::MetricInfo), GateError> {
        let name = self
            .gate
            .metric
            .as_ref()
            .map(|m| m.value.clone())
            .unwrap_or_else(|| "output_tokens_per_s".into());
        let info = l1_engines::metrics::metric(&name)
            .ok_or_else(|| GateError::UnknownMetric(name.clone()))?;
        Ok((name, info))
    }
}

/// One gate method.
pub trait Evaluator: Sync {
    /// Whether it judges the combos against the baseline: then, when output fidelity left every
    /// combo out, it fails without evaluating, it says which combos were left out, and its rows
    /// carry their fidelity ([`Evaluator::annotate`]).
    fn judges_combos(&self) -> bool;

    /// The verdict.
    fn evaluate(&self, input: &Input<'_>) -> Result<GateVerdict, GateError>;

    /// Add the target's fidelity to a verdict of a gate that judges combos: each row's combo's.
    fn annotate(&self, v: &mut GateVerdict, report: &crate::fidelity::Report) {
        for row in &mut v.rows {
            row.fidelity = report.combos.get(&row.combo).cloned();
        }
    }
}

/// The evaluator of each gate method: the one table a new method is added to.
pub fn evaluator(method: GateMethod) -> &'static dyn Evaluator {
    match method {
        GateMethod::Topk5 => &ranked::Ranked(topk::Topk5),
        GateMethod::Pareto => &ranked::Ranked(pareto::Pareto),
        GateMethod::Regression => &ranked::Ranked(regression::Regression),
        GateMethod::Manual => &ranked::Ranked(manual::Manual),
        GateMethod::Drift => &drift::Drift,
        GateMethod::Fidelity => &fidelity::Fidelity,
    }
}

/// The lower-case name verdicts carry for a method.
fn method_name(method: GateMethod) -> String {
    method.to_string()
}

/// Evaluate one gate without output fidelity (no combo left out; a `fidelity` gate cannot be
/// evaluated this way: [`evaluate_all`] builds its report).
///
/// Every one-sided claim is made at [`one_sided_level`]`(alpha, looks)`. A combo with the same
/// label as the baseline arm is the baseline measured as a combo of the space: it is never a
/// candidate against itself (`manual` still lists it).
pub fn evaluate(
    gate: &Gate,
    ctx: &GateContext,
    baseline: &Arm,
    combos: &[Arm],
) -> Result<GateVerdict, GateError> {
    evaluator(gate.method).evaluate(&Input {
        gate,
        ctx,
        baseline,
        combos,
        fidelity: None,
        excluded: &[],
    })
}

/// Evaluate a target's gates in order, with output fidelity composed in: a `fidelity` gate's
/// verdict comes from `fidelity`, and the combos it fails are left out of every gate that judges
/// combos (they cannot be the winner; the gate's message says which were left out). `manual`
/// lists the fidelity numbers of every combo when they exist, without failing on them.
pub fn evaluate_all(
    gates: &[Gate],
    ctx: &GateContext,
    baseline: &Arm,
    combos: &[Arm],
    fidelity: Option<&crate::fidelity::Report>,
) -> Result<Vec<GateVerdict>, GateError> {
    let enforce = gates.iter().any(|g| g.method == GateMethod::Fidelity);
    let excluded: Vec<String> = match (enforce, fidelity) {
        (true, Some(r)) => r.failing().into_iter().map(str::to_string).collect(),
        _ => Vec::new(),
    };
    let kept: Vec<Arm> = combos
        .iter()
        .filter(|a| !excluded.contains(&a.label))
        .cloned()
        .collect();
    let mut out = Vec::new();
    for gate in gates {
        let e = evaluator(gate.method);
        let judges = e.judges_combos();
        if judges && !excluded.is_empty() && kept.is_empty() {
            let method = method_name(gate.method);
            out.push(GateVerdict::failed(
                method.clone(),
                format!(
                    "{method} failed: every combo fails output fidelity ({}), so none can be the winner",
                    excluded.join(", ")
                ),
            ));
            continue;
        }
        let mut v = e.evaluate(&Input {
            gate,
            ctx,
            baseline,
            combos: &kept,
            fidelity,
            excluded: &excluded,
        })?;
        if judges {
            if !excluded.is_empty() {
                v.message.push_str(&format!(
                    "\n  left out for failing output fidelity (cannot be the winner): {}",
                    excluded.join(", ")
                ));
            }
            if let Some(r) = fidelity {
                e.annotate(&mut v, r);
            }
        }
        out.push(v);
    }
    Ok(out)
}
