//! The `pareto` gate `against: stored`: does a change lose a point of the stored reference run's
//! throughput–latency frontier? Each point of the reference's frontier is compared with every
//! combo measured now, with the one-sided Yuen test form of the `regression` gate.

use l1_engines::metrics::{Direction, metric};

use super::text::{improvement, pct};
use super::{GateContext, GateError, one_sided_level};
use crate::model::{Arm, GateVerdict};
use crate::spec::{Gate, GateMethod, RegressionForm};
use crate::stats;

/// A ratio (> 1 is better) with its two-sided interval.
pub type Ratio = (f64, (f64, f64));

/// How one stored frontier point fares against the combos measured now.
#[derive(Clone, Debug, PartialEq)]
pub struct PointCover {
    /// The stored combo on the reference's frontier.
    pub point: String,
    /// Its trimmed means: (metric, latency).
    pub means: (f64, f64),
    /// The combo measured now that covers it best (the one whose test decides the point).
    pub best: String,
    /// The best cover's metric and latency ratios over the point (> 1 is better), with their
    /// two-sided intervals.
    pub metric_ratio: Ratio,
    pub latency_ratio: Ratio,
    /// The point's p-value after the adjustment of the form (see [`frontier_loss`]).
    pub adjusted_p: f64,
    /// Whether the form judges the point lost (`fail_on_regression`: shown lost;
    /// `non_inferiority`: not shown covered).
    pub lost: bool,
}

/// The reference's frontier points and how each is covered now.
#[derive(Clone, Debug, PartialEq)]
pub struct FrontierLoss {
    pub points: Vec<PointCover>,
    pub epsilon: f64,
    pub one_sided: f64,
    pub form: RegressionForm,
}

/// The indices of the arms on the frontier of (metric, latency) trimmed means (both directions
/// from the metric catalog), best metric first, with each arm's trimmed means.
fn frontier(
    ctx: &GateContext,
    arms: &[Arm],
    (m, md): (&str, Direction),
    (l, ld): (&str, Direction),
) -> Result<Vec<(usize, f64, f64)>, GateError> {
    let good = |v: f64, d: Direction| {
        if d == Direction::HigherIsBetter {
            v
        } else {
            -v
        }
    };
    let mut pts = Vec::with_capacity(arms.len());
    for a in arms {
        let mv = stats::trimmed_mean(&a.values(m)?, ctx.trim).map_err(GateError::arm(&a.label))?;
        let lv = stats::trimmed_mean(&a.values(l)?, ctx.trim).map_err(GateError::arm(&a.label))?;
        pts.push((good(mv, md), good(lv, ld), mv, lv));
    }
    let dominated = |p: &(f64, f64, f64, f64), q: &(f64, f64, f64, f64)| {
        q.0 >= p.0 && q.1 >= p.1 && (q.0 > p.0 || q.1 > p.1)
    };
    let mut on: Vec<usize> = (0..pts.len())
        .filter(|&i| !pts.iter().any(|q| dominated(&pts[i], q)))
        .collect();
    on.sort_by(|&a, &b| pts[b].0.total_cmp(&pts[a].0));
    Ok(on.into_iter().map(|i| (i, pts[i].2, pts[i].3)).collect())
}

/// For every point of `stored`'s frontier, whether the arms of `now` still cover it: a combo
/// covers a point when it is within ε of it on both axes (not worse by ε or more on the metric,
/// nor on latency).
///
/// Per (point, combo) and axis the test is the `regression` gate's one-sided Yuen test of
/// `log(ratio) = log(1 − ε)`, in the gate's `form`:
/// - `fail_on_regression` (default): a point is lost only on evidence. A combo is shown not to
///   cover the point when either axis is shown worse than ε (Holm over the two axes: the pair's p
///   is twice the smaller); the point is shown lost when every combo is (intersection–union: the
///   point's p is the largest over the combos, and the combo with it is the best cover); the points
///   are Holm-adjusted. Falsely failing a change whose every stored point is truly covered happens
///   with probability at most the one-sided level.
/// - `non_inferiority`: a point counts as covered only when some combo is shown within ε on both
///   axes (intersection–union over the axes: the pair's p is the larger; Bonferroni over the
///   combos, since any one of them may cover it); the gate passes only when every point is shown
///   covered (intersection–union over the points, so no adjustment across them).
pub fn frontier_loss(
    gate: &Gate,
    ctx: &GateContext,
    stored: &[Arm],
    now: &[Arm],
) -> Result<FrontierLoss, GateError> {
    let m_name = gate
        .metric
        .as_ref()
        .map_or_else(|| "output_tokens_per_s".to_string(), |m| m.value.clone());
    let l_name = gate
        .latency_metric
        .as_ref()
        .map_or_else(|| "e2e_p95_ms".to_string(), |m| m.value.clone());
    let mi = metric(&m_name).ok_or_else(|| GateError::UnknownMetric(m_name.clone()))?;
    let li = metric(&l_name).ok_or_else(|| GateError::UnknownMetric(l_name.clone()))?;
    let form = gate.form.unwrap_or_default();
    let eps = gate.epsilon.unwrap_or(0.05).max(ctx.noise_floor);
    let one_sided = one_sided_level(gate.alpha.unwrap_or(0.05), ctx.looks);
    let level = 2.0 * one_sided;
    let front = frontier(
        ctx,
        stored,
        (&m_name, mi.direction),
        (&l_name, li.direction),
    )?;
    let mut points = Vec::with_capacity(front.len());
    let mut raw = Vec::with_capacity(front.len());
    for (si, mv, lv) in front {
        let point = &stored[si];
        // (pair p, combo, metric ratio and interval, latency ratio and interval)
        let mut best: Option<(f64, &Arm, Ratio, Ratio)> = None;
        for arm in now {
            let mc = ctx.compare(arm, point, &m_name, 1.0 - level)?;
            let lc = ctx.compare(arm, point, &l_name, 1.0 - level)?;
            let mr = improvement(&mc, mi.direction);
            let lr = improvement(&lc, li.direction);
            let z = |r: f64, se: f64| (r.ln() - (1.0 - eps).ln()) / se;
            let (zm, zl) = (z(mr.0, mc.log_ratio_se), z(lr.0, lc.log_ratio_se));
            let nan1 = |p: f64| if p.is_nan() { 1.0 } else { p };
            let pair = match form {
                // H0: within ε on this axis; small p = evidence of a loss beyond ε.
                RegressionForm::FailOnRegression => {
                    let pm = nan1(stats::upper_tail(-zm, mc.yuen_df));
                    let pl = nan1(stats::upper_tail(-zl, lc.yuen_df));
                    (2.0 * pm.min(pl)).min(1.0)
                }
                // H0: worse by ε or more on this axis; small p = evidence of being within ε.
                RegressionForm::NonInferiority => {
                    let pm = nan1(stats::upper_tail(zm, mc.yuen_df));
                    let pl = nan1(stats::upper_tail(zl, lc.yuen_df));
                    pm.max(pl)
                }
            };
            let better = match (&best, form) {
                (None, _) => true,
                (Some(b), RegressionForm::FailOnRegression) => pair > b.0,
                (Some(b), RegressionForm::NonInferiority) => pair < b.0,
            };
            if better {
                best = Some((pair, arm, mr, lr));
            }
        }
        let (p, label, mr, lr) = match best {
            Some((p, arm, mr, lr)) => (p, arm.label.clone(), mr, lr),
            // Nothing measured now covers anything.
            None => (
                match form {
                    RegressionForm::FailOnRegression => 0.0,
                    RegressionForm::NonInferiority => 1.0,
                },
                "(no combo measured)".to_string(),
                (f64::NAN, (f64::NAN, f64::NAN)),
                (f64::NAN, (f64::NAN, f64::NAN)),
            ),
        };
        let p = match form {
            RegressionForm::FailOnRegression => p,
            RegressionForm::NonInferiority => (p * now.len().max(1) as f64).min(1.0),
        };
        raw.push(p);
        points.push(PointCover {
            point: point.label.clone(),
            means: (mv, lv),
            best: label,
            metric_ratio: mr,
            latency_ratio: lr,
            adjusted_p: p,
            lost: false,
        });
    }
    let adjusted = match form {
        RegressionForm::FailOnRegression => stats::holm(&raw),
        RegressionForm::NonInferiority => raw,
    };
    for (pc, a) in points.iter_mut().zip(adjusted) {
        pc.adjusted_p = a;
        pc.lost = match form {
            RegressionForm::FailOnRegression => a < one_sided,
            RegressionForm::NonInferiority => a >= one_sided,
        };
    }
    Ok(FrontierLoss {
        points,
        epsilon: eps,
        one_sided,
        form,
    })
}

impl FrontierLoss {
    /// The verdict: fails when some stored frontier point is lost; the message lists every point,
    /// its best cover now, both ratios with intervals and the adjusted p. `reference` names the
    /// stored run (e.g. "`main` results (run main-1)").
    pub fn verdict(&self, gate: &Gate, reference: &str, stored_combos: usize) -> GateVerdict {
        let m_name = gate
            .metric
            .as_ref()
            .map_or("output_tokens_per_s", |m| m.value.as_str());
        let l_name = gate
            .latency_metric
            .as_ref()
            .map_or("e2e_p95_ms", |m| m.value.as_str());
        let lost = self.points.iter().filter(|p| p.lost).count();
        let passed = lost == 0;
        let form_name = self.form.name();
        let (rule, adj, lost_word) = match self.form {
            RegressionForm::FailOnRegression => (
                format!(
                    "a point is lost when every combo measured now is shown worse than it by more than ε on {m_name} or {l_name} (one-sided Yuen, Holm over the two axes; Holm-adjusted across the points, p < {:.4})",
                    self.one_sided
                ),
                "Holm-adjusted p",
                "LOST",
            ),
            RegressionForm::NonInferiority => (
                format!(
                    "a point counts as covered only when some combo measured now is shown within ε of it on both {m_name} and {l_name} (one-sided Yuen, intersection–union over the axes, Bonferroni over the combos, p < {:.4}; every point must be covered, so no adjustment across them)",
                    self.one_sided
                ),
                "adjusted p",
                "NOT SHOWN COVERED",
            ),
        };
        let mut message = format!(
            "pareto against stored {reference} {} ({form_name}): {} of the stored frontier's {} points lost (frontier of {stored_combos} stored combos, ε {:.1} %); {rule}",
            if passed { "passed" } else { "FAILED" },
            lost,
            self.points.len(),
            self.epsilon * 100.0
        );
        for p in &self.points {
            message.push_str(&format!(
                "\n    {} {} ({m_name} {:.4}, {l_name} {:.3}): best cover {}: {m_name} {} [{}, {}], {l_name} {} [{}, {}], {adj}={:.3}",
                if p.lost { lost_word } else { "covered" },
                p.point,
                p.means.0,
                p.means.1,
                p.best,
                pct(p.metric_ratio.0),
                pct(p.metric_ratio.1.0),
                pct(p.metric_ratio.1.1),
                pct(p.latency_ratio.0),
                pct(p.latency_ratio.1.0),
                pct(p.latency_ratio.1.1),
                p.adjusted_p
            ));
        }
        GateVerdict {
            method: GateMethod::Pareto.to_string(),
            passed,
            message,
            winner: None,
            p_best: None,
            rows: Vec::new(),
            established_winner: None,
            inconclusive: None,
            checks: Vec::new(),
        }
    }
}
