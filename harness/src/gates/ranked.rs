//! What the gates that judge combos against the baseline share: the candidates, every
//! candidate's comparison with the baseline as a row, the ranking best first, the probability
//! that the winner is the best, and the closing lines of the verdict (launch component,
//! sequential design, inconclusive mark, selection).

use l1_engines::metrics::{Direction, MetricInfo};

use super::select::probability_of_best;
use super::text::{improvement, inconclusive, launch_note};
use super::{DEFAULT_MAX_MDE, Evaluator, GateError, Input, method_name};
use crate::model::{Arm, GateVerdict, Inconclusive, Row};
use crate::spec::Gate;
use crate::stats::{self, Comparison};

/// A gate method that judges the ranked combos.
pub(super) trait RankedMethod: Sync {
    /// Whether the baseline measured as a combo of the space is left out of the candidates
    /// (a method that tests improvement over the baseline).
    fn excludes_baseline(&self) -> bool {
        false
    }

    /// The gate's `max_mde` when it sets none.
    fn default_max_mde(&self, _gate: &Gate) -> f64 {
        DEFAULT_MAX_MDE
    }

    /// The verdict from the ranking (its closing lines are added by [`Ranked`]).
    fn judge(&self, r: Ranking<'_>, input: &Input<'_>) -> Result<GateVerdict, GateError>;

    /// See [`Evaluator::annotate`].
    fn annotate(&self, v: &mut GateVerdict, report: &crate::fidelity::Report) {
        for row in &mut v.rows {
            row.fidelity = report.combos.get(&row.combo).cloned();
        }
    }
}

/// A [`RankedMethod`] as an [`Evaluator`].
pub(super) struct Ranked<M>(pub M);

/// The ranked candidates of one gate.
pub(super) struct Ranking<'a> {
    pub metric_name: String,
    pub info: &'static MetricInfo,
    /// The candidates (the baseline left out where the method excludes it).
    pub combos: Vec<Arm>,
    /// One row per candidate, in `combos` order.
    pub rows: Vec<Row>,
    /// Each candidate's comparison with the baseline, in `combos` order.
    pub comparisons: Vec<Comparison>,
    /// Candidate indices best first (direction-aware), ties by label.
    pub order: Vec<usize>,
    /// The winner's index and label.
    pub wi: usize,
    pub winner: String,
    pub p_best: f64,
    /// The baseline's trimmed mean of the metric.
    pub base_tm: f64,
    /// Two-sided level of the intervals and the one-sided level of every claim.
    pub level: f64,
    pub one_sided: f64,
    pub max_mde: f64,
    /// What the message says about the baseline among the candidates (may be empty).
    pub self_note: String,
    /// `baseline <metric> <value> <unit>` and the self note.
    pub head: String,
    /// The winner's comparison when it is too wide to decide.
    pub undecided: Option<Inconclusive>,
    pub baseline: &'a Arm,
}

impl<M: RankedMethod> Evaluator for Ranked<M> {
    fn judges_combos(&self) -> bool {
        true
    }

    fn evaluate(&self, input: &Input<'_>) -> Result<GateVerdict, GateError> {
        let (gate, ctx, baseline) = (input.gate, input.ctx, input.baseline);
        let (metric_name, info) = input.metric()?;
        let family_alpha = gate.alpha.unwrap_or(0.05);
        // Two-sided level of the intervals; every one-sided claim is at half of it.
        let level = stats::per_look_level(family_alpha, ctx.looks);
        let one_sided = level / 2.0;
        if input.combos.is_empty() {
            return Err(GateError::NoCombos);
        }
        // `topk5` tests improvement over the baseline, so the baseline measured as a combo of
        // the space is no candidate there. The other gates keep it: for them it may be the
        // winner (keep what is deployed), which they say.
        let is_baseline = |a: &Arm| a.label == baseline.label;
        let exclude = self.0.excludes_baseline();
        let self_note = if exclude && input.combos.iter().any(is_baseline) {
            format!(
                "; {} is the baseline, so it is not a candidate against itself",
                baseline.label
            )
        } else {
            String::new()
        };
        let combos: Vec<Arm> = if exclude {
            input
                .combos
                .iter()
                .filter(|a| !is_baseline(a))
                .cloned()
                .collect()
        } else {
            input.combos.to_vec()
        };
        if combos.is_empty() {
            let method = method_name(gate.method);
            return Ok(GateVerdict::failed(
                method.clone(),
                format!(
                    "{method} failed: no candidate other than the baseline was measured{self_note}"
                ),
            ));
        }
        let max_mde = gate.max_mde.unwrap_or_else(|| self.0.default_max_mde(gate));
        let base = baseline.values(&metric_name)?;
        let base_tm = stats::trimmed_mean(&base, ctx.trim).map_err(GateError::arm("baseline"))?;
        let mut rows = Vec::new();
        let mut comparisons = Vec::new();
        for arm in &combos {
            let v = arm.values(&metric_name)?;
            let c = ctx.compare(arm, baseline, &metric_name, 1.0 - level)?;
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
        let wi = order[0];
        let winner = rows[wi].combo.clone();
        let p_best = probability_of_best(ctx, &combos, &metric_name, info.direction, wi)?;
        let selection = format!(
            "P(winner is the best within ±{:.1} %) = {:.2}",
            ctx.noise_floor * 100.0,
            p_best
        );
        let self_note = if !exclude && winner == baseline.label {
            format!("; the winner {winner} is the baseline itself")
        } else {
            self_note
        };
        let head = format!(
            "baseline {metric_name} {base_tm:.4} {}{self_note}",
            info.unit
        );
        let undecided = inconclusive(&comparisons[wi], &winner, &metric_name, max_mde, level);
        let launch = launch_note(&comparisons[wi]);
        let mut verdict = self.0.judge(
            Ranking {
                metric_name,
                info,
                combos,
                rows,
                comparisons,
                order,
                wi,
                winner: winner.clone(),
                p_best,
                base_tm,
                level,
                one_sided,
                max_mde,
                self_note,
                head,
                undecided,
                baseline,
            },
            input,
        )?;
        verdict.message.push_str(&format!("\n  {launch}"));
        if ctx.looks > 1 {
            verdict.message.push_str(&format!(
                "\n  group-sequential design: {} planned looks, every interval at the per-look level {level:.4} (Pocock's constant boundary for family α {family_alpha}, `stats::per_look_level`), every one-sided claim at {one_sided:.4}",
                ctx.looks
            ));
        }
        if let Some(u) = &verdict.inconclusive {
            verdict.message.push_str(&format!("\n  {}", u.message));
        }
        verdict
            .message
            .push_str(&format!("\n  winner {winner}: {selection}"));
        Ok(verdict)
    }

    fn annotate(&self, v: &mut GateVerdict, report: &crate::fidelity::Report) {
        self.0.annotate(v, report);
    }
}
