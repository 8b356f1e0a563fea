//! Quality gates: turn the reps of a target's combos and its baseline into pass/fail with an
//! explanation that carries the numbers.
//!
//! All comparisons use Yuen's trimmed-mean test ([`crate::stats`]). Improvement is expressed as a
//! direction-aware ratio `r` (> 1 is better: candidate/baseline for throughput, baseline/candidate
//! for latency). No difference smaller than the noise floor is claimed, whatever the p-value.

use l1_engines::Metrics;
use l1_engines::metrics::{Direction, metric};
use serde::{Deserialize, Serialize};

use crate::spec::{Gate, GateMethod};
use crate::stats::{self, Comparison};

/// One measured arm (a combo or the baseline).
#[derive(Clone, Debug)]
pub struct Arm {
    pub label: String,
    pub reps: Vec<Metrics>,
    /// Engine launches the reps came from.
    pub launches: usize,
}

impl Arm {
    /// The values of one metric across reps.
    pub fn values(&self, name: &str) -> Result<Vec<f64>, String> {
        self.reps
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.get(name)
                    .copied()
                    .ok_or_else(|| format!("rep {i} of {} has no metric `{name}`", self.label))
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
    pub fidelity: Option<crate::fidelity::ComboFidelity>,
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
}

/// Settings shared by every gate of a target.
#[derive(Clone, Debug)]
pub struct GateContext {
    pub trim: f64,
    /// Coefficient of variation below which no difference is claimed.
    pub noise_floor: f64,
    /// Launch-to-launch coefficient of variation, added to every comparison as a known
    /// variance component (each arm is one engine launch).
    pub launch_cv: f64,
    /// This machine's recorded calibration of the baseline (for `drift`).
    pub calibration: Option<crate::calibration::Calibration>,
    /// Planned looks of a group-sequential design (1 = fixed reps). With K > 1 looks every
    /// comparison is made at Pocock's per-look level, so stopping early cannot inflate the error.
    pub looks: usize,
}

impl GateContext {
    fn compare(
        &self,
        candidate: &Arm,
        baseline: &Arm,
        metric: &str,
        confidence: f64,
    ) -> Result<Comparison, String> {
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
        .map_err(|e| format!("{}: {metric}: {e}", candidate.label))
    }
}

fn improvement(c: &Comparison, dir: Direction) -> (f64, (f64, f64)) {
    match dir {
        Direction::HigherIsBetter => (c.ratio, c.ratio_ci),
        Direction::LowerIsBetter => (1.0 / c.ratio, (1.0 / c.ratio_ci.1, 1.0 / c.ratio_ci.0)),
    }
}

fn pct(r: f64) -> String {
    format!("{:+.1} %", (r - 1.0) * 100.0)
}

/// Evaluate one gate.
pub fn evaluate(
    gate: &Gate,
    ctx: &GateContext,
    baseline: &Arm,
    combos: &[Arm],
) -> Result<GateVerdict, String> {
    let metric_name = gate
        .metric
        .as_ref()
        .map(|m| m.value.clone())
        .unwrap_or_else(|| "output_tokens_per_s".into());
    let info = metric(&metric_name).ok_or_else(|| format!("unknown metric `{metric_name}`"))?;
    let family_alpha = gate.alpha.unwrap_or(0.05);
    let alpha = stats::pocock_level(family_alpha, ctx.looks);
    if gate.method == GateMethod::Drift {
        return drift(ctx, baseline, &metric_name);
    }
    if combos.is_empty() {
        return Err("no combo was measured successfully, so no gate can be evaluated".into());
    }
    let base = baseline.values(&metric_name)?;
    let base_tm = stats::trimmed_mean(&base, ctx.trim).map_err(|e| format!("baseline: {e}"))?;
    let mut rows = Vec::new();
    let mut comparisons = Vec::new();
    for arm in combos {
        let v = arm.values(&metric_name)?;
        let c = ctx.compare(arm, baseline, &metric_name, 1.0 - alpha)?;
        let (imp, ci) = improvement(&c, info.direction);
        rows.push(Row {
            combo: arm.label.clone(),
            metric: metric_name.clone(),
            trimmed_mean: c.candidate_trimmed_mean,
            improvement: Some(imp),
            improvement_ci: Some(ci),
            yuen_p: Some(c.yuen_p),
            adjusted_p: None,
            hedges_g: Some(match info.direction {
                Direction::HigherIsBetter => c.hedges_g,
                Direction::LowerIsBetter => -c.hedges_g,
            }),
            mde: Some(c.mde),
            reps: v.len(),
            on_frontier: false,
            note: String::new(),
            fidelity: None,
        });
        comparisons.push(c);
    }
    // Rank best first (direction-aware), ties by label for stability.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (
            rows[a].improvement.unwrap_or(0.0),
            rows[b].improvement.unwrap_or(0.0),
        );
        y.total_cmp(&x)
            .then_with(|| rows[a].combo.cmp(&rows[b].combo))
    });
    let winner = rows[order[0]].combo.clone();
    let p_best = probability_of_best(ctx, combos, &metric_name, info.direction, order[0])?;
    let selection = format!(
        "P(winner is the best within ±{:.1} %) = {:.2}",
        ctx.noise_floor * 100.0,
        p_best
    );
    let head = format!("baseline {metric_name} {base_tm:.4} {}", info.unit);

    let mut verdict = match gate.method {
        GateMethod::Drift => unreachable!("drift is evaluated before the combos are ranked"),
        GateMethod::Fidelity => {
            return Err(
                "the fidelity gate needs the probe answers: evaluate it with `evaluate_all`".into(),
            );
        }
        GateMethod::Manual => {
            let lines: Vec<String> = order.iter().map(|&i| describe(&rows[i])).collect();
            GateVerdict {
                p_best: Some(p_best),
                method: "manual".into(),
                passed: true,
                message: format!(
                    "manual review: no automatic verdict; {head}; combos best first:\n{}",
                    lines.join("\n")
                ),
                winner: Some(winner.clone()),
                rows: Vec::new(),
            }
        }
        GateMethod::Topk5 => {
            let k = (gate.k.unwrap_or(5) as usize).min(rows.len());
            let margin = gate.margin.unwrap_or(0.03);
            let threshold = 1.0 + margin.max(ctx.noise_floor);
            // One-sided test of H0: improvement <= threshold, on the log scale.
            let top: Vec<usize> = order[..k].to_vec();
            let p: Vec<f64> = top
                .iter()
                .map(|&i| {
                    let c = &comparisons[i];
                    let t =
                        (rows[i].improvement.unwrap_or(0.0).ln() - threshold.ln()) / c.log_ratio_se;
                    stats::upper_tail(t, c.yuen_df)
                })
                .collect();
            let adj = stats::holm(&p);
            let mut failing = Vec::new();
            for (j, &i) in top.iter().enumerate() {
                rows[i].adjusted_p = Some(adj[j]);
                if adj[j] >= alpha {
                    failing.push(i);
                }
            }
            let passed = failing.is_empty();
            let rule = format!(
                "the top {k} combos by {metric_name} must each beat the baseline by more than {} (margin {:.1} %, noise floor {:.1} %) with Holm-adjusted one-sided p < {alpha:.3}",
                pct(threshold),
                margin * 100.0,
                ctx.noise_floor * 100.0
            );
            let message = if passed {
                format!(
                    "topk5 passed: {rule}; {head}; winner {winner}:\n{}",
                    top.iter()
                        .map(|&i| describe(&rows[i]))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            } else {
                format!(
                    "topk5 failed: {} of the top {k} do not clear it. {rule}; {head}; failing:\n{}",
                    failing.len(),
                    failing
                        .iter()
                        .map(|&i| describe(&rows[i]))
                        .collect::<Vec<_>>()
                        .join("\n")
                )
            };
            GateVerdict {
                p_best: Some(p_best),
                method: "topk5".into(),
                passed,
                message,
                winner: Some(winner.clone()),
                rows,
            }
        }
        GateMethod::Pareto => {
            let lat_name = gate
                .latency_metric
                .as_ref()
                .map(|m| m.value.clone())
                .unwrap_or_else(|| "e2e_p95_ms".into());
            let lat_info =
                metric(&lat_name).ok_or_else(|| format!("unknown metric `{lat_name}`"))?;
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
                    .map_err(|e| format!("{}: {e}", arm.label))?;
                pts.push((
                    good(rows[i].trimmed_mean, info.direction),
                    good(l, lat_info.direction),
                    l,
                ));
            }
            let bl = stats::trimmed_mean(&baseline.values(&lat_name)?, ctx.trim)
                .map_err(|e| format!("baseline: {e}"))?;
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
            let wi = order[0];
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
                alpha,
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
                "the winner by {metric_name} must lie on the {metric_name} vs {lat_name} frontier, and no arm may be shown (Holm-adjusted p < {alpha:.3}) to be within {:.1} % of it on {metric_name} and better by more than {:.1} % on {lat_name}",
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
            GateVerdict {
                p_best: Some(p_best),
                method: "pareto".into(),
                passed,
                message,
                winner: Some(winner.clone()),
                rows,
            }
        }
        GateMethod::Regression => {
            let default_eps = gate.epsilon.unwrap_or(0.05);
            let names: Vec<String> = match &gate.metrics {
                Some(m) => m.iter().map(|s| s.value.clone()).collect(),
                None => vec![
                    "output_tokens_per_s".into(),
                    "ttft_p95_ms".into(),
                    "e2e_p95_ms".into(),
                ],
            };
            let wi = order[0];
            let arm = &combos[wi];
            // One-sided test per metric of H0: the winner is not worse than the baseline by more
            // than ε (never less than the noise floor), Holm-adjusted across the metrics: a
            // regression claim fails a pull request, so false claims are what must be controlled.
            let mut tested = Vec::new();
            for name in &names {
                let mi = metric(name).ok_or_else(|| format!("unknown metric `{name}`"))?;
                let eps = gate
                    .epsilons
                    .as_ref()
                    .and_then(|m| m.get(name).copied())
                    .unwrap_or(default_eps)
                    .max(ctx.noise_floor);
                let c = ctx.compare(arm, baseline, name, 1.0 - alpha)?;
                let (imp, ci) = improvement(&c, mi.direction);
                let t = ((1.0 - eps).ln() - imp.ln()) / c.log_ratio_se;
                tested.push((name.clone(), eps, imp, ci, stats::upper_tail(t, c.yuen_df)));
            }
            let adj = stats::holm(&tested.iter().map(|x| x.4).collect::<Vec<_>>());
            let mut lines = Vec::new();
            let mut bad = Vec::new();
            for ((name, eps, imp, ci, _), a) in tested.iter().zip(&adj) {
                let line = format!(
                    "{name}: {} [{}, {}], worse than -{:.1} %? Holm-adjusted one-sided p={a:.3}",
                    pct(*imp),
                    pct(ci.0),
                    pct(ci.1),
                    eps * 100.0
                );
                if *a < alpha {
                    bad.push(line.clone());
                }
                lines.push(line);
            }
            let eps = default_eps;
            let passed = bad.is_empty();
            let message = format!(
                "regression {}: winner {winner} against the baseline, no metric may be significantly worse by more than its ε (default {:.1} %, never below the noise floor; α={alpha:.3}); {}",
                if passed { "passed" } else { "failed" },
                eps * 100.0,
                if passed {
                    lines.join("; ")
                } else {
                    format!("regressed: {}", bad.join("; "))
                }
            );
            GateVerdict {
                p_best: Some(p_best),
                method: "regression".into(),
                passed,
                message,
                winner: Some(winner.clone()),
                rows,
            }
        }
    };
    if ctx.looks > 1 {
        verdict.message.push_str(&format!(
            "\n  group-sequential design: {} planned looks, every comparison at Pocock's per-look level {alpha:.4} (family α {family_alpha})",
            ctx.looks
        ));
    }
    verdict
        .message
        .push_str(&format!("\n  winner {winner}: {selection}"));
    Ok(verdict)
}

/// Evaluate a target's gates in order, with output fidelity composed in: a `fidelity` gate's
/// verdict comes from `fidelity`, and the combos it fails are left out of every other gate (they
/// cannot be the winner; the gate's message says which were left out). `manual` lists the
/// fidelity numbers of every combo when they exist, without failing on them.
pub fn evaluate_all(
    gates: &[Gate],
    ctx: &GateContext,
    baseline: &Arm,
    combos: &[Arm],
    fidelity: Option<&crate::fidelity::Report>,
) -> Result<Vec<GateVerdict>, String> {
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
    for g in gates {
        if g.method == GateMethod::Fidelity {
            let report = fidelity.ok_or(
                "the fidelity gate has no probe answers to compare (internal: no report built)",
            )?;
            out.push(crate::fidelity::verdict(report));
            continue;
        }
        if g.method != GateMethod::Drift && !excluded.is_empty() && kept.is_empty() {
            out.push(GateVerdict {
                method: format!("{:?}", g.method).to_lowercase(),
                passed: false,
                message: format!(
                    "{} failed: every combo fails output fidelity ({}), so none can be the winner",
                    format!("{:?}", g.method).to_lowercase(),
                    excluded.join(", ")
                ),
                winner: None,
                p_best: None,
                rows: Vec::new(),
            });
            continue;
        }
        let mut v = evaluate(g, ctx, baseline, &kept)?;
        if g.method != GateMethod::Drift && !excluded.is_empty() {
            v.message.push_str(&format!(
                "\n  left out for failing output fidelity (cannot be the winner): {}",
                excluded.join(", ")
            ));
        }
        if let Some(r) = fidelity {
            for row in &mut v.rows {
                row.fidelity = r.combos.get(&row.combo).cloned();
            }
            if g.method == GateMethod::Manual {
                v.message.push_str(&format!(
                    "\n  output fidelity against the baseline (reported, not enforced here; reference: {}):",
                    r.reference
                ));
                for c in r.combos.values() {
                    v.message.push('\n');
                    v.message.push_str(&crate::fidelity::describe(c));
                }
                v.rows = r
                    .combos
                    .values()
                    .map(|c| Row {
                        note: c.failures.join("; "),
                        ..crate::fidelity::row(c)
                    })
                    .collect();
            }
        }
        out.push(v);
    }
    Ok(out)
}

/// Minor drift starts at 5 %, significant drift at 15 % (the origin's calibration thresholds).
const DRIFT_MINOR: f64 = 0.05;
const DRIFT_SIGNIFICANT: f64 = 0.15;

/// The `drift` gate: the baseline (the deployed combo) measured now against this machine's
/// recorded calibration of it.
fn drift(ctx: &GateContext, baseline: &Arm, metric_name: &str) -> Result<GateVerdict, String> {
    let Some(cal) = &ctx.calibration else {
        return Err(
            "drift: no calibration of the baseline is recorded for this machine and target; run `l1 calibrate <spec>` first (it measures the baseline over several launches and records it under target/l1/calibration/)"
            .into());
    };
    let reference = cal
        .trimmed_mean
        .get(metric_name)
        .copied()
        .ok_or_else(|| format!("drift: the calibration has no metric `{metric_name}`"))?;
    let now = stats::trimmed_mean(&baseline.values(metric_name)?, ctx.trim)
        .map_err(|e| format!("baseline: {e}"))?;
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
        method: "drift".into(),
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
    })
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
/// most `alpha`. Best evidence first.
fn dominated_within_noise(
    ctx: &GateContext,
    winner: &Arm,
    others: &[&Arm],
    metric: (&str, Direction),
    latency: (&str, Direction),
    alpha: f64,
) -> Result<Vec<Dominator>, String> {
    let floor = 1.0 + ctx.noise_floor;
    let mut found = Vec::with_capacity(others.len());
    for arm in others {
        let m = ctx.compare(arm, winner, metric.0, 1.0 - alpha)?;
        let (m_ratio, _) = improvement(&m, metric.1);
        // H0: the arm is worse than the winner by more than the floor (ratio <= 1/floor).
        let m_p = stats::upper_tail((m_ratio.ln() + floor.ln()) / m.log_ratio_se, m.yuen_df);
        let l = ctx.compare(arm, winner, latency.0, 1.0 - alpha)?;
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
    found.retain(|d| d.adjusted_p < alpha);
    found.sort_by(|a, b| a.adjusted_p.total_cmp(&b.adjusted_p));
    Ok(found)
}

/// Ranking and selection: the probability that the combo at `winner` is the true best within
/// the indifference zone (the noise floor), by drawing every combo's trimmed mean from its
/// sampling distribution (normal, with the Yuen standard error plus the launch component) with a
/// fixed seed.
fn probability_of_best(
    ctx: &GateContext,
    combos: &[Arm],
    metric: &str,
    direction: Direction,
    winner: usize,
) -> Result<f64, String> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let mut dists = Vec::with_capacity(combos.len());
    for arm in combos {
        let (m, se) =
            stats::trimmed_mean_se(&arm.values(metric)?, ctx.trim, ctx.launch_cv, arm.launches)
                .map_err(|e| format!("{}: {e}", arm.label))?;
        let sign = if direction == Direction::HigherIsBetter {
            1.0
        } else {
            -1.0
        };
        dists.push((sign * m, se.max(1e-12)));
    }
    let zone = ctx.noise_floor * dists[winner].0.abs();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5E1EC7);
    let draws = 4000;
    let mut hits = 0;
    let mut values = vec![0.0; dists.len()];
    for _ in 0..draws {
        for (v, (m, se)) in values.iter_mut().zip(&dists) {
            *v = Normal::new(*m, *se)
                .map(|n| n.sample(&mut rng))
                .unwrap_or(*m);
        }
        let best = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if values[winner] >= best - zone {
            hits += 1;
        }
    }
    Ok(hits as f64 / draws as f64)
}

fn describe(r: &Row) -> String {
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
    if let Some(a) = r.adjusted_p {
        s.push_str(&format!(", Holm-adjusted one-sided p={a:.3}"));
    }
    s.push_str(&format!(
        ", Hedges' g={:.2}, n={}, resolves ≥ {:.1} %)",
        r.hedges_g.unwrap_or(f64::NAN),
        r.reps,
        r.mde.unwrap_or(f64::NAN) * 100.0
    ));
    s
}

#[cfg(test)]
mod pareto_tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};

    const TPS: &str = "output_tokens_per_s";
    const LAT: &str = "e2e_p95_ms";

    fn ctx() -> GateContext {
        GateContext {
            trim: 0.1,
            noise_floor: 0.02,
            launch_cv: 0.0,
            calibration: None,
            looks: 1,
        }
    }

    /// 7 reps of (throughput, latency), each with its own multiplicative noise.
    fn arm(label: &str, tps: f64, lat: f64, cv: f64, rng: &mut rand_chacha::ChaCha8Rng) -> Arm {
        let n = Normal::new(0.0, cv).unwrap();
        let reps = (0..7)
            .map(|_| {
                Metrics::from([
                    (TPS.to_string(), tps * (1.0 + n.sample(rng))),
                    (LAT.to_string(), lat * (1.0 + n.sample(rng))),
                ])
            })
            .collect();
        Arm {
            label: label.into(),
            reps,
            launches: 1,
        }
    }

    fn verdict(arms: &[(&str, f64, f64)], cv: f64, seed: u64) -> GateVerdict {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let base = arm("baseline", 800.0, 120.0, cv, &mut rng);
        let combos: Vec<Arm> = arms
            .iter()
            .map(|(l, t, d)| arm(l, *t, *d, cv, &mut rng))
            .collect();
        evaluate(&Gate::new(GateMethod::Pareto), &ctx(), &base, &combos).unwrap()
    }

    #[test]
    fn a_winner_matched_on_throughput_and_beaten_on_latency_fails() {
        let v = verdict(&[("w", 1000.0, 100.0), ("q", 995.0, 70.0)], 0.005, 1);
        assert_eq!(v.winner.as_deref(), Some("w"));
        assert!(!v.passed, "{}", v.message);
        assert!(
            v.message.contains("dominated within noise by q"),
            "{}",
            v.message
        );
        // The point-estimate frontier still lists both (the plot's view).
        assert!(v.rows.iter().all(|r| r.on_frontier), "{:?}", v.rows);
    }

    #[test]
    fn lower_latency_bought_with_throughput_or_within_the_floor_passes() {
        // q is 10 % slower: a trade-off, not a domination.
        let v = verdict(&[("w", 1000.0, 100.0), ("q", 900.0, 70.0)], 0.005, 2);
        assert!(v.passed, "{}", v.message);
        // q's latency is better by less than the noise floor: no claim.
        let v = verdict(&[("w", 1000.0, 100.0), ("q", 1000.0, 99.0)], 0.005, 3);
        assert!(v.passed, "{}", v.message);
    }

    /// Error rates, measured over 1,000 seeded experiments per cell (7 reps, 2 % floor): with
    /// nothing truly dominating the winner (an identical twin, or a twin 1 % better on latency,
    /// inside the floor) the gate fails in at most α; a twin 10 % better on latency is found
    /// when the per-rep noise (0.5 %) is well under the floor. At 2 % per-rep noise the
    /// throughput tie cannot be shown within the floor from 7 reps, so the gate rarely fails:
    /// it fails on evidence only, as `regression` does.
    #[test]
    fn false_failures_stay_below_alpha_and_true_dominations_are_found() {
        let rate_at = |cv: f64, tps_q: f64, lat_q: f64, seed0: u64| {
            let n = 1000;
            let fails = (0..n)
                .filter(|s| {
                    !verdict(&[("w", 1000.0, 100.0), ("q", tps_q, lat_q)], cv, seed0 + s).passed
                })
                .count();
            fails as f64 / n as f64
        };
        let rate = |cv: f64, lat_q: f64, seed0: u64| rate_at(cv, 1000.0, lat_q, seed0);
        // Binomial 3σ at n = 1000 around α = 0.05 is 2 points.
        for cv in [0.005, 0.02] {
            let twin = rate(cv, 100.0, 10_000);
            let inside = rate(cv, 99.0, 20_000);
            assert!(twin <= 0.05 + 0.02, "cv {cv}, identical twin: {twin}");
            assert!(
                inside <= 0.05 + 0.02,
                "cv {cv}, 1 % better latency: {inside}"
            );
            // The least favourable null: q exactly at the floor on both axes.
            let edge = rate_at(cv, 1000.0 / 1.02, 100.0 / 1.02, 40_000);
            assert!(edge <= 0.05 + 0.02, "cv {cv}, at the floor: {edge}");
            let real = rate(cv, 90.0, 30_000);
            eprintln!(
                "cv {cv}: false failures {twin:.3} (twin) / {inside:.3} (1 % better latency) / {edge:.3} (at the floor); failures with 10 % better latency {real:.3}"
            );
            if cv < 0.01 {
                // The twin wins half the time (then nothing dominates the winner), so the most
                // a perfect gate can fail is about one half.
                assert!(real >= 0.35, "cv {cv}, 10 % better latency: {real}");
            }
        }
    }
}
