//! The trial record (`<run>/trials/<id>.json`): a trial's verdict, and the settings the run
//! judged it with, so that reports never have to read the spec again.

use serde::{Deserialize, Serialize};

use super::target::TargetId;
use super::verdict::GateVerdict;

/// A trial's verdict.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrialRecord {
    pub schema_version: u32,
    pub run_id: String,
    pub name: String,
    pub spec: String,
    pub target: TargetId,
    /// `combo`, `baseline` or `gate`.
    pub kind: String,
    pub passed: bool,
    pub message: String,
    /// The measurement this trial used (combo and baseline trials).
    pub measurement: Option<String>,
    /// Gate verdicts (gate trials).
    pub gates: Vec<GateVerdict>,
    pub simulated: bool,
    pub duration_s: f64,
    /// What the run used: trim, mode, planned reps, gates, the spec's digest. `None` in records
    /// written before it was recorded (reports then assume the default trim and say so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used: Option<UsedSettings>,
}

/// The settings a run judged a trial with, as they were when it ran (the spec file may have
/// changed since).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsedSettings {
    /// `measure.trim`: the fraction trimmed from each end before every trimmed mean.
    pub trim: f64,
    /// The space's mode (`exhaustive`, `quick`), `tune` for a tune spec.
    pub mode: String,
    /// Planned reps per combo (`max_reps` with early stopping, else `reps`).
    pub reps: u32,
    /// The gate methods in order, as the run applied them (after an `L1_GATES` override).
    pub gates: Vec<String>,
    /// `sha256` of the rendered spec text (16 hex characters).
    pub spec_digest: String,
}
