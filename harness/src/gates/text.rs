//! The numbers in a gate's words: direction-aware improvement, percentages, suggested
//! designs, the "inconclusive" mark, the launch component and one combo's line.

use l1_engines::metrics::Direction;

use super::POWER;
use crate::model::{Inconclusive, Row};
use crate::stats::{self, Comparison};

pub(super) fn improvement(c: &Comparison, dir: Direction) -> (f64, (f64, f64)) {
    match dir {
        Direction::HigherIsBetter => (c.ratio, c.ratio_ci),
        Direction::LowerIsBetter => (1.0 / c.ratio, (1.0 / c.ratio_ci.1, 1.0 / c.ratio_ci.0)),
    }
}

pub(super) fn pct(r: f64) -> String {
    format!("{:+.1} %", (r - 1.0) * 100.0)
}

pub(super) fn describe_design(d: Option<stats::Design>, current: stats::Design) -> String {
    match d {
        Some(d) if d.launches == current.launches => format!(
            "{} reps per arm in {} launch{}",
            d.reps,
            d.launches,
            if d.launches == 1 { "" } else { "es" }
        ),
        Some(d) => format!(
            "{} launches of {} reps per arm ({} reps cannot get there in {} launch{}: the launch-to-launch variation does not average out within a launch)",
            d.launches,
            d.reps / d.launches.max(1),
            stats::MAX_PLANNED_REPS,
            current.launches,
            if current.launches == 1 { "" } else { "es" }
        ),
        None => format!(
            "more than {} launches per arm (out of reach at this noise)",
            stats::MAX_PLANNED_LAUNCHES
        ),
    }
}

/// The verdict's inconclusive mark for a comparison whose MDE exceeds `max_mde`.
pub(super) fn inconclusive(
    c: &Comparison,
    combo: &str,
    metric: &str,
    max_mde: f64,
    level: f64,
) -> Option<Inconclusive> {
    // A NaN MDE (no spread to judge by) counts as undecided.
    if c.mde.is_finite() && c.mde <= max_mde {
        return None;
    }
    let suggestion = c.design_for(1.0, 1.0 + max_mde, level / 2.0, POWER);
    let message = format!(
        "inconclusive — more reps or launches needed: {combo} vs the baseline on {metric} resolves only ≥ {:.1} % (80 % power), above max_mde {:.1} %; {} would resolve {:.1} %",
        c.mde * 100.0,
        max_mde * 100.0,
        describe_design(suggestion, c.design()),
        max_mde * 100.0
    );
    Some(Inconclusive {
        combo: combo.to_string(),
        metric: metric.to_string(),
        mde: c.mde,
        max_mde,
        suggestion,
        message,
    })
}

/// The launch component a comparison used, for the gate's explanation.
pub(super) fn launch_note(c: &Comparison) -> String {
    let layout = |s: &[usize]| {
        if s.len() <= 1 {
            "1 launch".to_string()
        } else {
            format!("{} launches ({:?} reps)", s.len(), s)
        }
    };
    format!(
        "launch-to-launch CV σ_b = {:.2} % added as a known variance component (candidate in {}, share {:.3} of σ_b²; baseline in {}, share {:.3})",
        c.launch_cv * 100.0,
        layout(&c.candidate_launch_sizes),
        stats::launch_factor(&c.candidate_launch_sizes),
        layout(&c.baseline_launch_sizes),
        stats::launch_factor(&c.baseline_launch_sizes),
    )
}

pub(super) fn describe(r: &Row) -> String {
    describe_p(r, r.adjusted_p)
}

pub(super) fn describe_with(r: &Row, adjusted: f64) -> String {
    describe_p(r, Some(adjusted))
}

fn describe_p(r: &Row, adjusted: Option<f64>) -> String {
    let (imp, ci) = (
        r.improvement.unwrap_or(f64::NAN),
        r.improvement_ci.unwrap_or((f64::NAN, f64::NAN)),
    );
    let mut s = format!(
        "  {}: {} {:.4} ({} vs baseline, CI [{}, {}], Yuen p={:.3}",
        r.combo,
        r.metric,
        r.trimmed_mean,
        pct(imp),
        pct(ci.0),
        pct(ci.1),
        r.yuen_p.unwrap_or(f64::NAN)
    );
    if let Some(a) = adjusted {
        s.push_str(&format!(", Holm-adjusted one-sided p={a:.3}"));
    }
    s.push_str(&format!(
        ", Hedges' g={:.2}, n={}, resolves ≥ {:.1} % vs no change)",
        r.hedges_g.unwrap_or(f64::NAN),
        r.reps,
        r.mde.unwrap_or(f64::NAN) * 100.0
    ));
    s
}
