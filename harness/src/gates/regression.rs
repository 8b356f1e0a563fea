//! The `regression` gate: no metric of the winner regresses against the baseline by more
//! than its ε, in either form (fail on evidence of regression, or pass on evidence of none).

use l1_engines::metrics::metric;
use l1_reports::model::{Finding, RegressionCheck};

use super::ranked::{RankedMethod, Ranking};
use super::text::{describe_design, improvement, inconclusive, pct};
use super::{DEFAULT_MAX_MDE, GateContext, GateError, Input, PLANNING_EXCESS, POWER};
use crate::model::{Arm, GateVerdict};
use crate::spec::{Gate, RegressionForm};
use crate::stats;

pub(super) struct Regression;

impl RankedMethod for Regression {
    /// At least the largest ε: a comparison that resolves ε is decided.
    fn default_max_mde(&self, gate: &Gate) -> f64 {
        let eps = gate.epsilon.unwrap_or(0.05);
        let per = gate
            .epsilons
            .iter()
            .flat_map(|m| m.values().copied())
            .fold(eps, f64::max);
        DEFAULT_MAX_MDE.max(per)
    }

    fn judge(&self, r: Ranking<'_>, input: &Input<'_>) -> Result<GateVerdict, GateError> {
        let mut v = regression(
            input.gate,
            input.ctx,
            r.baseline,
            &r.combos[r.wi],
            &r.winner,
            (r.one_sided, r.level, r.max_mde),
            &r.self_note,
        )?;
        v.p_best = Some(r.p_best);
        v.rows = r.rows;
        Ok(v)
    }
}

/// The metrics a `regression` gate checks when it names none (`l1 ab`'s default too).
pub const DEFAULT_METRICS: [&str; 3] = ["output_tokens_per_s", "ttft_p95_ms", "e2e_p95_ms"];

/// The `regression` gate in either form (see [`RegressionForm`]), for the winner against the
/// baseline.
fn regression(
    gate: &Gate,
    ctx: &GateContext,
    baseline: &Arm,
    arm: &Arm,
    winner: &str,
    (one_sided, level, max_mde): (f64, f64, f64),
    self_note: &str,
) -> Result<GateVerdict, GateError> {
    let form = gate.form.unwrap_or_default();
    let default_eps = gate.epsilon.unwrap_or(0.05);
    let names: Vec<String> = match &gate.metrics {
        Some(m) => m.iter().map(|s| s.value.clone()).collect(),
        None => DEFAULT_METRICS.iter().map(|m| m.to_string()).collect(),
    };
    let m = names.len();
    let mut tested = Vec::new();
    let mut undecided = None;
    for name in &names {
        let mi = metric(name).ok_or_else(|| GateError::UnknownMetric(name.clone()))?;
        let eps = gate
            .epsilons
            .as_ref()
            .and_then(|m| m.get(name).copied())
            .unwrap_or(default_eps)
            .max(ctx.noise_floor);
        let c = ctx.compare(arm, baseline, name, 1.0 - level)?;
        let (imp, ci) = improvement(&c, mi.direction);
        // fail_on_regression, H0: no regression beyond ε (imp >= 1 − ε), a small p is evidence
        // of regression; non_inferiority, H0: a regression of ε or more, a small p is evidence
        // of none. The same test `l1 ab` uses.
        let p = form.one_sided_p(imp.ln(), eps, c.log_ratio_se, c.yuen_df);
        if undecided.is_none() {
            undecided = inconclusive(&c, winner, name, max_mde, level);
        }
        // What this form can find, at its own level (80 % power).
        let plan = match form {
            RegressionForm::FailOnRegression => {
                // Holm's first step over the metrics; in "ratio > bound" terms on 1/imp.
                let strict = one_sided / m as f64;
                let r = stats::detectable_ratio(
                    1.0 / (1.0 - eps),
                    c.log_ratio_se,
                    c.yuen_df,
                    strict,
                    POWER,
                );
                let goal = 1.0 / (1.0 - eps - PLANNING_EXCESS).max(1e-9);
                format!(
                    "detects a regression of ≥ {:.1} % with 80 % power; a {:.1} % one needs {}",
                    (1.0 - 1.0 / r) * 100.0,
                    (eps + PLANNING_EXCESS) * 100.0,
                    describe_design(
                        c.design_for(1.0 / (1.0 - eps), goal, strict, POWER),
                        c.design()
                    )
                )
            }
            RegressionForm::NonInferiority => {
                // Intersection–union: every metric at the one-sided level, no adjustment.
                let se = c.log_ratio_se;
                let t = stats::t_quantile(c.yuen_df, 1.0 - one_sided)
                    + stats::t_quantile(c.yuen_df, POWER);
                format!(
                    "passes a true no-change with 80 % power only for ε ≥ {:.1} %; at ε {:.1} % that needs {}",
                    (1.0 - (-t * se).exp()) * 100.0,
                    eps * 100.0,
                    describe_design(c.design_for(1.0 - eps, 1.0, one_sided, POWER), c.design())
                )
            }
        };
        tested.push((name.clone(), eps, imp, ci, p, plan));
    }
    let ps: Vec<f64> = tested.iter().map(|x| x.4).collect();
    let (adj, rule) = match form {
        RegressionForm::FailOnRegression => (
            stats::holm(&ps),
            format!(
                "fail on evidence of regression: no metric may be shown worse than the baseline by more than its ε (one-sided p < {one_sided:.4}, Holm-adjusted across the {m} metrics)"
            ),
        ),
        RegressionForm::NonInferiority => (
            ps.clone(),
            format!(
                "non-inferiority: every metric must be shown worse than the baseline by less than its ε (the one-sided {:.1} % bound of its change above −ε; intersection–union, so no adjustment)",
                (1.0 - one_sided) * 100.0
            ),
        ),
    };
    let mut lines = Vec::new();
    let mut bad = Vec::new();
    let mut checks = Vec::new();
    for ((name, eps, imp, ci, _, plan), a) in tested.iter().zip(&adj) {
        let (question, fails, finding) = match form {
            RegressionForm::FailOnRegression => ("worse than", *a < one_sided, Finding::Regressed),
            RegressionForm::NonInferiority => (
                "shown better than",
                *a >= one_sided,
                Finding::NotShownWithin,
            ),
        };
        checks.push(RegressionCheck {
            combo: Some(winner.to_string()),
            against_run: None,
            metric: name.clone(),
            change_pct: (imp - 1.0) * 100.0,
            interval_pct: [(ci.0 - 1.0) * 100.0, (ci.1 - 1.0) * 100.0],
            epsilon_pct: eps * 100.0,
            p: *a,
            failing: fails,
            finding,
        });
        let line = format!(
            "{name}: {} [{}, {}], {question} -{:.1} %? one-sided p={a:.3} ({plan})",
            pct(*imp),
            pct(ci.0),
            pct(ci.1),
            eps * 100.0
        );
        if fails {
            bad.push(line.clone());
        }
        lines.push(line);
    }
    let passed = bad.is_empty();
    let form_name = form.name();
    let message = format!(
        "regression {} ({form_name}): winner {winner} against the baseline; {rule} (default ε {:.1} %, never below the noise floor){self_note}; {}",
        if passed { "passed" } else { "failed" },
        default_eps * 100.0,
        if passed {
            lines.join("; ")
        } else {
            match form {
                RegressionForm::FailOnRegression => format!("regressed: {}", bad.join("; ")),
                RegressionForm::NonInferiority => {
                    format!("not shown within ε: {}", bad.join("; "))
                }
            }
        }
    );
    Ok(GateVerdict {
        p_best: None,
        method: crate::spec::GateMethod::Regression.to_string(),
        passed,
        message,
        winner: Some(winner.to_string()),
        rows: Vec::new(),
        established_winner: None,
        inconclusive: undecided,
        checks,
    })
}
