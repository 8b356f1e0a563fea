//! Early termination of one combo's measurement: the [`Stopper`] compares the combo's reps so
//! far with the baseline's at each planned look (Pocock's per-look level).

use super::measure::MeasureError;
use super::plan::TargetPlan;
use crate::record::MeasurementRecord;
use crate::spec::GateMethod;

/// The early-termination rule of one combo's measurement: compares the combo's reps so far with
/// the baseline's at each planned look (Pocock's per-look level) on the first gate's metric and
/// threshold.
#[derive(Debug)]
pub(super) struct Stopper {
    base: Vec<f64>,
    base_launches: usize,
    metric: String,
    direction: l1_engines::Direction,
    threshold: f64,
    floor: f64,
    pub(super) looks: Vec<usize>,
    level: f64,
    trim: f64,
    launch_cv: f64,
    launches: usize,
}

impl Stopper {
    pub(super) fn new(
        p: &TargetPlan,
        base: &MeasurementRecord,
        lo: usize,
        hi: usize,
    ) -> Result<Self, MeasureError> {
        let gate = p.spec.gates.first();
        let metric = gate
            .and_then(|g| g.metric.as_ref().map(|m| m.value.clone()))
            .unwrap_or_else(|| "output_tokens_per_s".into());
        let info =
            l1_engines::metrics::metric(&metric).ok_or_else(|| MeasureError::UnknownMetric {
                metric: metric.clone(),
            })?;
        let m = &p.spec.measure;
        let floor = m.noise_floor.unwrap_or(p.hardware.noise_floor_cv);
        let threshold = match gate {
            Some(g) if g.method == GateMethod::Topk5 => 1.0 + g.margin.unwrap_or(0.03).max(floor),
            _ => 1.0 + floor,
        };
        let alpha = gate.and_then(|g| g.alpha).unwrap_or(0.05);
        let looks = crate::stats::planned_looks(lo, hi);
        Ok(Self {
            base: base
                .reps
                .iter()
                .map(|r| r.get(&metric).copied().unwrap_or(f64::NAN))
                .collect(),
            base_launches: base.launches.max(1) as usize,
            metric,
            direction: info.direction,
            threshold,
            floor,
            level: crate::stats::per_look_level(alpha, looks.len()),
            looks,
            trim: m.trim,
            launch_cv: m.launch_cv.unwrap_or(p.hardware.launch_cv),
            launches: m.launches.max(1) as usize,
        })
    }

    /// The stop decision after `reps`, at planned looks only.
    pub(super) fn check(&self, reps: &[l1_engines::Metrics]) -> Option<crate::stats::StopReason> {
        if !self.looks.contains(&reps.len()) {
            return None;
        }
        let v: Vec<f64> = reps
            .iter()
            .map(|r| r.get(&self.metric).copied().unwrap_or(f64::NAN))
            .collect();
        let between = crate::stats::Between {
            cv: self.launch_cv,
            candidate_launches: self.launches.min(v.len()),
            baseline_launches: self.base_launches,
        };
        let c = crate::stats::compare_with(&v, &self.base, self.trim, 1.0 - self.level, between)
            .ok()?;
        let ci = match self.direction {
            l1_engines::Direction::HigherIsBetter => c.ratio_ci,
            l1_engines::Direction::LowerIsBetter => (1.0 / c.ratio_ci.1, 1.0 / c.ratio_ci.0),
        };
        crate::stats::sequential_decision(ci, self.threshold, self.floor)
    }
}
