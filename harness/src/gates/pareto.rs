//! The `pareto` gate: the winner by the metric lies on the metric-versus-latency frontier, and
//! no arm is shown to dominate it within the noise floor.

use l1_engines::metrics::{Direction, metric};

use super::ranked::{RankedMethod, Ranking};
use super::text::{improvement, pct};
use super::{GateContext, GateError, Input};
use crate::model::{Arm, GateVerdict};
use crate::stats;

pub(super) struct Pareto;

impl RankedMethod for Pareto {
    fn judge(&self, r: Ranking<'_>, input: &Input<'_>) -> Result<GateVerdict, GateError> {
        let (gate, ctx) = (input.gate, input.ctx);
        let Ranking {
            metric_name,
            info,
            combos,
            mut rows,
            order,
            wi,
            winner,
            p_best,
            base_tm,
            level,
            one_sided,
            self_note,
            undecided,
            baseline,
            ..
        } = r;
        let lat_name = gate
            .latency_metric
            .as_ref()
            .map(|m| m.value.clone())
            .unwrap_or_else(|| "e2e_p95_ms".into());
        let lat_info =
            metric(&lat_name).ok_or_else(|| GateError::UnknownMetric(lat_name.clone()))?;
        // Points: (metric goodness, latency goodness), both "higher is better" after sign flips.
        let good = |v: f64, d: Direction| {
            if d == Direction::HigherIsBetter {
                v
            } else {
                -v
            }
        };
        let mut pts = Vec::new();
        for (i, arm) in combos.iter().enumerate() {
            let l = stats::trimmed_mean(&arm.values(&lat_name)?, ctx.trim)
                .map_err(GateError::arm(&arm.label))?;
            pts.push((
                good(rows[i].trimmed_mean, info.direction),
                good(l, lat_info.direction),
                l,
            ));
        }
        let bl = stats::trimmed_mean(&baseline.values(&lat_name)?, ctx.trim)
            .map_err(GateError::arm("baseline"))?;
        let base_pt = (good(base_tm, info.direction), good(bl, lat_info.direction));
        let dominated =
            |p: (f64, f64), q: (f64, f64)| q.0 >= p.0 && q.1 >= p.1 && (q.0 > p.0 || q.1 > p.1);
        for i in 0..pts.len() {
            let p = (pts[i].0, pts[i].1);
            let dom = pts
                .iter()
                .enumerate()
                .any(|(j, q)| j != i && dominated(p, (q.0, q.1)))
                || dominated(p, base_pt);
            rows[i].on_frontier = !dom;
            rows[i].note = format!("{lat_name} {:.3}", pts[i].2);
        }
        // The point estimates put the top combo by the metric on the frontier almost by
        // construction; what can tell against it is evidence that another arm is as good
        // on the metric (within the noise floor) and better on latency.
        let mut others: Vec<&Arm> = combos
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != wi)
            .map(|(_, a)| a)
            .collect();
        others.push(baseline);
        let dominators = dominated_within_noise(
            ctx,
            &combos[wi],
            &others,
            (&metric_name, info.direction),
            (&lat_name, lat_info.direction),
            level,
        )?;
        let passed = rows[wi].on_frontier && dominators.is_empty();
        let frontier: Vec<String> = order
            .iter()
            .filter(|&&i| rows[i].on_frontier)
            .map(|&i| {
                format!(
                    "{} ({} {:.4}, {lat_name} {:.3})",
                    rows[i].combo, metric_name, rows[i].trimmed_mean, pts[i].2
                )
            })
            .collect();
        let rule = format!(
            "the winner by {metric_name} must lie on the {metric_name} vs {lat_name} frontier, and no arm may be shown (Holm-adjusted one-sided p < {one_sided:.4}) to be within {:.1} % of it on {metric_name} and better by more than {:.1} % on {lat_name}{self_note}",
            ctx.noise_floor * 100.0,
            ctx.noise_floor * 100.0
        );
        let message = if passed {
            format!(
                "pareto passed: the winner by {metric_name} ({winner}) lies on the frontier and nothing dominates it within noise. {rule}; frontier: {}",
                frontier.join("; ")
            )
        } else if !rows[wi].on_frontier {
            format!(
                "pareto failed: the winner by {metric_name} ({winner}) does not lie on the frontier. {rule}; frontier: {}",
                frontier.join("; ")
            )
        } else {
            format!(
                "pareto failed: the winner by {metric_name} ({winner}) is dominated within noise by {}: {}. {rule}; frontier: {}",
                dominators[0].label,
                dominators
                    .iter()
                    .map(Dominator::describe)
                    .collect::<Vec<_>>()
                    .join("; "),
                frontier.join("; ")
            )
        };
        Ok(GateVerdict {
            p_best: Some(p_best),
            method: crate::spec::GateMethod::Pareto.to_string(),
            passed,
            message,
            winner: Some(winner.clone()),
            rows,
            established_winner: None,
            inconclusive: undecided.clone(),
            checks: Vec::new(),
        })
    }
}

/// An arm shown to be as good as the winner on the metric and better on latency.
#[derive(Debug)]
struct Dominator {
    label: String,
    /// The arm's metric over the winner's, direction-aware (> 1 is better), and the one-sided
    /// p-value that it is not worse by more than the noise floor.
    metric_ratio: f64,
    metric_p: f64,
    /// The arm's latency improvement over the winner (> 1 is better) and the one-sided p-value
    /// that it is better by more than the noise floor.
    latency_ratio: f64,
    latency_p: f64,
    /// Holm-adjusted p of the pair (the larger of the two p-values) across the arms.
    adjusted_p: f64,
}

impl Dominator {
    fn describe(&self) -> String {
        format!(
            "{}: metric {} vs the winner (not worse than the noise floor: p={:.3}), latency {} better (p={:.3}), Holm-adjusted p={:.3}",
            self.label,
            pct(self.metric_ratio),
            self.metric_p,
            pct(self.latency_ratio),
            self.latency_p,
            self.adjusted_p
        )
    }
}

/// The arms that dominate `winner` within noise: on the metric not worse than the noise floor
/// (a one-sided non-inferiority test) *and* on latency better by more than the noise floor (a
/// one-sided test); the pair is an intersection–union test (p = the larger of the two), and the
/// arms are Holm-adjusted, so a winner that nothing truly dominates fails with probability at
/// most `level / 2` (every claim one-sided at half the gate's two-sided level). Best evidence
/// first.
fn dominated_within_noise(
    ctx: &GateContext,
    winner: &Arm,
    others: &[&Arm],
    metric: (&str, Direction),
    latency: (&str, Direction),
    level: f64,
) -> Result<Vec<Dominator>, GateError> {
    let floor = 1.0 + ctx.noise_floor;
    let one_sided = level / 2.0;
    let mut found = Vec::with_capacity(others.len());
    for arm in others {
        let m = ctx.compare(arm, winner, metric.0, 1.0 - level)?;
        let (m_ratio, _) = improvement(&m, metric.1);
        // H0: the arm is worse than the winner by more than the floor (ratio <= 1/floor).
        let m_p = stats::upper_tail((m_ratio.ln() + floor.ln()) / m.log_ratio_se, m.yuen_df);
        let l = ctx.compare(arm, winner, latency.0, 1.0 - level)?;
        let (l_ratio, _) = improvement(&l, latency.1);
        // H0: the arm is not better on latency by more than the floor (ratio <= floor).
        let l_p = stats::upper_tail((l_ratio.ln() - floor.ln()) / l.log_ratio_se, l.yuen_df);
        found.push(Dominator {
            label: arm.label.clone(),
            metric_ratio: m_ratio,
            metric_p: m_p,
            latency_ratio: l_ratio,
            latency_p: l_p,
            adjusted_p: f64::NAN,
        });
    }
    // Intersection–union: the pair's p is the larger; an undefined one claims nothing.
    let pair: Vec<f64> = found
        .iter()
        .map(|d| {
            if d.metric_p.is_nan() || d.latency_p.is_nan() {
                1.0
            } else {
                d.metric_p.max(d.latency_p)
            }
        })
        .collect();
    let adjusted = stats::holm(&pair);
    for (d, a) in found.iter_mut().zip(adjusted) {
        d.adjusted_p = a;
    }
    found.retain(|d| d.adjusted_p < one_sided);
    found.sort_by(|a, b| a.adjusted_p.total_cmp(&b.adjusted_p));
    Ok(found)
}
