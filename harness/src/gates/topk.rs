//! The `topk5` gate: the top k combos by the metric each beat the baseline by more than the
//! margin (selection-aware: Holm across every candidate).

use super::ranked::{RankedMethod, Ranking};
use super::text::{describe_design, describe_with, pct};
use super::{GateContext, GateError, Input, PLANNING_EXCESS, POWER};
use crate::model::{GateVerdict, Inconclusive, Row};
use crate::spec::Gate;
use crate::stats::{self, Comparison};

pub(super) struct Topk5;

impl RankedMethod for Topk5 {
    fn excludes_baseline(&self) -> bool {
        true
    }

    fn judge(&self, r: Ranking<'_>, input: &Input<'_>) -> Result<GateVerdict, GateError> {
        let Ranking {
            mut rows,
            comparisons,
            order,
            one_sided,
            head,
            undecided,
            p_best,
            ..
        } = r;
        let (mut v, adjusted) = topk5(
            input.gate,
            input.ctx,
            (&rows, &comparisons, &order),
            one_sided,
            &head,
            undecided,
        );
        for (row, a) in rows.iter_mut().zip(adjusted) {
            row.adjusted_p = Some(a);
        }
        v.p_best = Some(p_best);
        v.rows = rows;
        Ok(v)
    }
}

/// The `topk5` gate. Selection-aware: every candidate's one-sided claim "improvement >
/// threshold" is tested and Holm-adjusted across **all N candidates** (not only the k picked by
/// point estimate), and the gate passes when each of the top k by point estimate is among the
/// claims that hold. Holm controls the chance of any false claim among all N at the one-sided
/// level whatever the selection, so the top-k claims inherit it. Returns the verdict (without
/// rows) and every candidate's adjusted p in row order.
fn topk5(
    gate: &Gate,
    ctx: &GateContext,
    (rows, comparisons, order): (&[Row], &[Comparison], &[usize]),
    one_sided: f64,
    head: &str,
    undecided: Option<Inconclusive>,
) -> (GateVerdict, Vec<f64>) {
    let n = rows.len();
    let asked = gate.k.unwrap_or(5) as usize;
    let k = asked.min(n);
    let margin = gate.margin.unwrap_or(0.03);
    let threshold = 1.0 + margin.max(ctx.noise_floor);
    // One-sided test of H0: improvement <= threshold, on the log scale, for every candidate.
    let p: Vec<f64> = rows
        .iter()
        .zip(comparisons)
        .map(|(r, c)| {
            let t = (r.improvement.unwrap_or(0.0).ln() - threshold.ln()) / c.log_ratio_se;
            let p = stats::upper_tail(t, c.yuen_df);
            if p.is_nan() { 1.0 } else { p }
        })
        .collect();
    let adj = stats::holm(&p);
    let top: Vec<usize> = order[..k].to_vec();
    let failing: Vec<usize> = top
        .iter()
        .copied()
        .filter(|&i| adj[i] >= one_sided)
        .collect();
    let passed = failing.is_empty();
    let wi = order[0];
    let winner = rows[wi].combo.clone();
    // What the gate can find: the winner's claim at Holm's strictest step (one-sided level / N,
    // what a lone true winner among N candidates faces), 80 % power.
    let c = &comparisons[wi];
    let strict = one_sided / n as f64;
    let detects = stats::detectable_ratio(threshold, c.log_ratio_se, c.yuen_df, strict, POWER);
    let goal = threshold + PLANNING_EXCESS;
    let needs = c.design_for(threshold, goal, strict, POWER);
    let shrunk = if k < asked {
        format!(
            " (k = {asked} asked, but there {} only {n} candidate{}, so k = {k})",
            if n == 1 { "is" } else { "are" },
            if n == 1 { "" } else { "s" }
        )
    } else {
        String::new()
    };
    let rule = format!(
        "the top {k} combos by {} must each beat the baseline by more than {} (margin {:.1} %, noise floor {:.1} %){shrunk} with one-sided p < {one_sided:.4} Holm-adjusted across all {n} candidates (the top k are picked from them)",
        rows[wi].metric,
        pct(threshold),
        margin * 100.0,
        ctx.noise_floor * 100.0
    );
    let power = format!(
        "this gate detects a true improvement of ≥ {} with 80 % power (the winner's comparison at one-sided level {strict:.5}, Holm's first step over {n}); detecting {} (margin + {:.0} %) with 80 % power needs {}",
        pct(detects),
        pct(goal),
        PLANNING_EXCESS * 100.0,
        describe_design(needs, c.design())
    );
    let message = if passed {
        format!(
            "topk5 passed: {rule}; {head}; winner {winner}:\n{}\n  {power}",
            top.iter()
                .map(|&i| describe_with(&rows[i], adj[i]))
                .collect::<Vec<_>>()
                .join("\n")
        )
    } else {
        format!(
            "topk5 failed: {} of the top {k} do not clear it. {rule}; {head}; failing:\n{}\n  {power}",
            failing.len(),
            failing
                .iter()
                .map(|&i| describe_with(&rows[i], adj[i]))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    let claimed = adj[wi] < one_sided;
    (
        GateVerdict {
            p_best: None,
            method: crate::spec::GateMethod::Topk5.to_string(),
            passed,
            message,
            winner: Some(winner.clone()),
            rows: Vec::new(),
            established_winner: (claimed && undecided.is_none()).then_some(winner),
            inconclusive: undecided,
            checks: Vec::new(),
        },
        adj,
    )
}
