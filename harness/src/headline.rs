//! What a target's verdict line ([`VerdictLine`], the one shape every summary shows) says, from
//! its gate trial's verdicts: the winner, whether a gate that tests for improvement established
//! it, and the winner's change against the baseline with its interval and P(best), as the gate
//! tabulated them.
//!
//! The numbers come from the same row the report model's `vs_baseline` takes for the winner
//! (the first verdict that tabulates a speed metric), so the terminal summary, the HTML page and
//! `results.json` agree. `l1 apply` writes a winner only where [`established_winner`] names it.

use l1_reports::verdict::{IMPROVEMENT_GATES, VerdictLine};

use crate::model::{FIDELITY_METRIC, GateVerdict};

/// The winner a gate that tests for improvement (`topk5`) established (the verdict's
/// `established_winner`: its one-sided claim over the baseline held and was not
/// inconclusive), when it is the gates' winner and that gate passed. `None` when only gates
/// that do not test for improvement ran (`pareto`, `regression`, `manual`, `drift`,
/// `fidelity`), when the improvement gate failed, or its comparison was inconclusive.
pub fn established_winner(gates: &[GateVerdict]) -> Option<&str> {
    let winner = gates.iter().find_map(|v| v.winner.as_deref())?;
    gates
        .iter()
        .any(|v| {
            v.passed
                && IMPROVEMENT_GATES.contains(&v.method.as_str())
                && v.established_winner.as_deref() == Some(winner)
        })
        .then_some(winner)
}

/// Why no winner is established, in a sentence: which gates ran and what they lacked.
pub fn why_not_established(gates: &[GateVerdict]) -> String {
    let ran: Vec<String> = gates
        .iter()
        .map(|v| {
            format!(
                "{} {}",
                v.method,
                if v.passed { "passed" } else { "failed" }
            )
        })
        .collect();
    let improvement: Vec<&GateVerdict> = gates
        .iter()
        .filter(|v| IMPROVEMENT_GATES.contains(&v.method.as_str()))
        .collect();
    let why = if gates.is_empty() {
        "the gate trial holds no gate verdicts".to_string()
    } else if improvement.is_empty() {
        format!(
            "no gate that tests for improvement over the baseline ({}) ran; the others do not establish a winner",
            IMPROVEMENT_GATES.join(", ")
        )
    } else if improvement.iter().any(|v| !v.passed) {
        "the improvement gate failed: the best combo was not shown to beat the baseline".to_string()
    } else if let Some(i) = gates.iter().find_map(|v| v.inconclusive.as_ref()) {
        format!("the comparison is inconclusive: {}", inconclusive_text(i))
    } else if improvement.iter().all(|v| v.established_winner.is_none()) {
        "the improvement gate did not establish its winner".to_string()
    } else {
        "the improvement gate named a different combo than the first gate".to_string()
    };
    if ran.is_empty() {
        why
    } else {
        format!("{why} (gates: {})", ran.join(", "))
    }
}

/// The verdict line of a gate trial's verdicts: its winner, whether it is established, its
/// numbers and the gates that ran and failed. The line's `target`, `passed` and `simulated` are
/// the trial's, for the caller to set.
pub fn headline(gates: &[GateVerdict]) -> VerdictLine {
    let winner = gates.iter().find_map(|v| v.winner.clone());
    let speed = gates
        .iter()
        .find(|v| v.rows.iter().any(|r| r.metric != FIDELITY_METRIC));
    let metric = speed.and_then(|v| {
        v.rows
            .iter()
            .find(|r| r.metric != FIDELITY_METRIC)
            .map(|r| r.metric.clone())
    });
    let row = speed.and_then(|v| {
        v.rows
            .iter()
            .find(|r| Some(&r.combo) == winner.as_ref() && Some(&r.metric) == metric.as_ref())
    });
    let change_pct = row
        .and_then(|r| r.improvement)
        .filter(|x| x.is_finite())
        .map(|x| (x - 1.0) * 100.0);
    let interval_pct = change_pct.and(
        row.and_then(|r| r.improvement_ci)
            .filter(|(a, b)| a.is_finite() && b.is_finite())
            .map(|(a, b)| [(a - 1.0) * 100.0, (b - 1.0) * 100.0]),
    );
    VerdictLine {
        established: established_winner(gates).is_some(),
        p_best: gates
            .iter()
            .filter(|v| v.winner.is_some() && v.winner == winner)
            .find_map(|v| v.p_best.filter(|p| p.is_finite())),
        inconclusive: inconclusive(gates),
        winner,
        metric,
        change_pct,
        interval_pct,
        gates: gates.iter().map(|v| v.method.clone()).collect(),
        failed: (gates.iter())
            .filter(|v| !v.passed)
            .map(|v| v.method.clone())
            .collect(),
        ..VerdictLine::default()
    }
}

/// The gates' inconclusive marker, where one says the comparison could not decide:
/// `more reps or launches needed (suggest N reps per arm): …`.
pub fn inconclusive(gates: &[GateVerdict]) -> Option<String> {
    gates
        .iter()
        .find_map(|v| v.inconclusive.as_ref())
        .map(inconclusive_text)
}

/// The short form of an inconclusive mark, with the suggested reps or launches.
pub fn inconclusive_text(i: &crate::model::Inconclusive) -> String {
    let suggest = match i.suggestion {
        Some(d) if d.launches <= 1 => format!("suggest {} reps per arm", d.reps),
        Some(d) => format!(
            "suggest {} reps per arm over {} launches",
            d.reps, d.launches
        ),
        None => "out of reach at this noise".to_string(),
    };
    format!(
        "more reps or launches needed ({suggest}): the winner's comparison on {} resolves only ≥ {:.1} % (80 % power), above max_mde {:.1} %",
        i.metric,
        i.mde * 100.0,
        i.max_mde * 100.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gates::Row;

    fn row(combo: &str, metric: &str, imp: f64) -> Row {
        Row {
            combo: combo.into(),
            metric: metric.into(),
            trimmed_mean: 100.0,
            improvement: Some(imp),
            improvement_ci: Some((imp - 0.02, imp + 0.03)),
            yuen_p: Some(0.01),
            adjusted_p: None,
            hedges_g: None,
            mde: None,
            reps: 7,
            on_frontier: true,
            note: String::new(),
            fidelity: None,
        }
    }

    fn verdict(method: &str, passed: bool, winner: Option<&str>, rows: Vec<Row>) -> GateVerdict {
        GateVerdict {
            method: method.into(),
            passed,
            message: format!("{method} {passed}"),
            winner: winner.map(str::to_string),
            p_best: Some(0.9),
            rows,
            established_winner: (method == "topk5" && passed)
                .then(|| winner.map(str::to_string))
                .flatten(),
            inconclusive: None,
            checks: Vec::new(),
        }
    }

    #[test]
    fn topk5_passing_establishes_the_winner_and_gives_its_numbers() {
        let g = vec![
            verdict("fidelity", true, None, vec![row("a", FIDELITY_METRIC, 1.0)]),
            verdict(
                "topk5",
                true,
                Some("a"),
                vec![
                    row("b", "output_tokens_per_s", 1.05),
                    row("a", "output_tokens_per_s", 1.123),
                ],
            ),
        ];
        let h = headline(&g);
        assert_eq!(h.winner.as_deref(), Some("a"));
        assert!(h.established);
        assert_eq!(h.metric.as_deref(), Some("output_tokens_per_s"));
        assert!((h.change_pct.unwrap() - 12.3).abs() < 1e-9);
        let [lo, hi] = h.interval_pct.unwrap();
        assert!((lo - 10.3).abs() < 1e-9 && (hi - 15.3).abs() < 1e-9);
        assert_eq!(h.p_best, Some(0.9));
        assert_eq!(established_winner(&g), Some("a"));
    }

    #[test]
    fn pareto_and_regression_alone_or_a_failed_topk5_establish_nothing() {
        let rows = || vec![row("a", "output_tokens_per_s", 2.779)];
        let only = vec![
            verdict("regression", true, Some("a"), rows()),
            verdict("pareto", true, Some("a"), rows()),
        ];
        assert_eq!(established_winner(&only), None);
        let why = why_not_established(&only);
        assert!(why.contains("no gate that tests for improvement"), "{why}");
        assert!(why.contains("regression passed, pareto passed"), "{why}");
        let h = headline(&only);
        assert!(!h.established && h.winner.as_deref() == Some("a"));
        let failed = vec![verdict("topk5", false, Some("a"), rows())];
        assert_eq!(established_winner(&failed), None);
        assert!(why_not_established(&failed).contains("the improvement gate failed"));
        assert_eq!(established_winner(&[]), None);
        // A passing topk5 whose comparison was too wide to decide establishes nothing, and the
        // line and apply say so with the suggested reps.
        let mut wide = verdict("topk5", true, Some("a"), rows());
        wide.established_winner = None;
        wide.inconclusive = Some(crate::gates::Inconclusive {
            combo: "a".into(),
            metric: "output_tokens_per_s".into(),
            mde: 0.412,
            max_mde: 0.05,
            suggestion: Some(crate::stats::Design {
                reps: 41,
                launches: 1,
            }),
            message: String::new(),
        });
        let g = vec![wide];
        assert_eq!(established_winner(&g), None);
        let h = headline(&g);
        assert!(!h.established);
        let i = h.inconclusive.unwrap();
        assert!(
            i.starts_with(
                "more reps or launches needed (suggest 41 reps per arm): the winner's comparison on output_tokens_per_s resolves only ≥ 41.2 %"
            ),
            "{i}"
        );
        let why = why_not_established(&g);
        assert!(
            why.contains("inconclusive") && why.contains("suggest 41 reps"),
            "{why}"
        );
    }
}
