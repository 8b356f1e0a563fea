//! The `drift` gate: the baseline (the deployed combo) measured now against this machine's
//! recorded calibration of it (`l1 calibrate`).

use super::{Evaluator, GateContext, GateError, Input};
use crate::model::{Arm, GateVerdict};
use crate::stats;

/// Minor drift starts at 5 %, significant drift at 15 % (the origin's calibration thresholds).
const DRIFT_MINOR: f64 = 0.05;
const DRIFT_SIGNIFICANT: f64 = 0.15;

/// The `drift` gate: the baseline (the deployed combo) measured now against this machine's
/// recorded calibration of it.
pub(super) struct Drift;

impl Evaluator for Drift {
    fn judges_combos(&self) -> bool {
        false
    }

    fn evaluate(&self, input: &Input<'_>) -> Result<GateVerdict, GateError> {
        let (metric_name, _) = input.metric()?;
        drift(input.ctx, input.baseline, &metric_name)
    }
}

fn drift(ctx: &GateContext, baseline: &Arm, metric_name: &str) -> Result<GateVerdict, GateError> {
    let Some(cal) = &ctx.calibration else {
        return Err(GateError::NoCalibration);
    };
    let reference = cal
        .trimmed_mean
        .get(metric_name)
        .copied()
        .ok_or_else(|| GateError::CalibrationMetric(metric_name.to_string()))?;
    let now = stats::trimmed_mean(&baseline.values(metric_name)?, ctx.trim)
        .map_err(GateError::arm("baseline"))?;
    let change = now / reference - 1.0;
    let size = change.abs();
    let (passed, level) = if size > DRIFT_SIGNIFICANT {
        (false, "significant drift (fails)")
    } else if size > DRIFT_MINOR {
        (true, "minor drift (warning)")
    } else {
        (true, "no drift")
    };
    Ok(GateVerdict {
        p_best: None,
        method: crate::spec::GateMethod::Drift.to_string(),
        passed,
        message: format!(
            "drift {}: {level}: the baseline's {metric_name} is {now:.4} now against {reference:.4} calibrated ({:+.1} %; minor above ±{:.0} %, significant above ±{:.0} %; calibration of {} launches × {} reps)",
            if passed { "passed" } else { "failed" },
            change * 100.0,
            DRIFT_MINOR * 100.0,
            DRIFT_SIGNIFICANT * 100.0,
            cal.launches,
            cal.reps_per_launch
        ),
        winner: None,
        rows: Vec::new(),
        established_winner: None,
        inconclusive: None,
        checks: Vec::new(),
    })
}
