//! The `manual` gate: no automatic verdict; every combo listed best first with its numbers
//! (and its output fidelity, reported without being enforced) for a person to review.

use super::ranked::{RankedMethod, Ranking};
use super::text::describe;
use super::{GateError, Input};
use crate::model::{GateVerdict, Row};

pub(super) struct Manual;

impl RankedMethod for Manual {
    fn judge(&self, r: Ranking<'_>, _input: &Input<'_>) -> Result<GateVerdict, GateError> {
        let lines: Vec<String> = r.order.iter().map(|&i| describe(&r.rows[i])).collect();
        Ok(GateVerdict {
            p_best: Some(r.p_best),
            method: crate::spec::GateMethod::Manual.to_string(),
            passed: true,
            message: format!(
                "manual review: no automatic verdict; {}; combos best first:\n{}",
                r.head,
                lines.join("\n")
            ),
            winner: Some(r.winner),
            rows: Vec::new(),
            established_winner: None,
            inconclusive: r.undecided,
            checks: Vec::new(),
        })
    }

    /// The fidelity of every combo, listed in the message and as the verdict's rows.
    fn annotate(&self, v: &mut GateVerdict, report: &crate::fidelity::Report) {
        v.message.push_str(&format!(
            "\n  output fidelity against the baseline (reported, not enforced here; reference: {}):",
            report.reference
        ));
        for c in report.combos.values() {
            v.message.push('\n');
            v.message.push_str(&crate::fidelity::describe(c));
        }
        v.rows = report
            .combos
            .values()
            .map(|c| Row {
                note: c.failures.join("; "),
                ..Row::fidelity(c)
            })
            .collect();
    }
}
