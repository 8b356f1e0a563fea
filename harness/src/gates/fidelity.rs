//! The `fidelity` gate: its verdict is the target's fidelity report's (every combo's greedy
//! answers against the baseline's; see [`crate::fidelity`]).

use super::{Evaluator, GateError, Input};
use crate::model::GateVerdict;

pub(super) struct Fidelity;

impl Evaluator for Fidelity {
    fn judges_combos(&self) -> bool {
        false
    }

    fn evaluate(&self, input: &Input<'_>) -> Result<GateVerdict, GateError> {
        let report = input.fidelity.ok_or(GateError::NoFidelityReport)?;
        Ok(crate::fidelity::verdict(report))
    }
}
