//! The run's event stream (`<run>/events.jsonl`): one JSON object per line, tagged by `event`.

use serde::{Deserialize, Serialize};

/// One event of the stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    TrialStarted {
        ts: f64,
        pid: u32,
        trial: String,
    },
    RepDone {
        ts: f64,
        pid: u32,
        trial: String,
        rep: u32,
        of: u32,
    },
    CacheHit {
        ts: f64,
        pid: u32,
        trial: String,
        key: String,
    },
    TrialFinished {
        ts: f64,
        pid: u32,
        trial: String,
        kind: String,
        passed: bool,
        duration_s: f64,
        message: String,
    },
    GateVerdict {
        ts: f64,
        pid: u32,
        trial: String,
        method: String,
        passed: bool,
        winner: Option<String>,
        message: String,
    },
    /// A tune session's trial (Tier 2).
    TuneTrial {
        ts: f64,
        pid: u32,
        trial: String,
        outcome: String,
        /// The combo's label.
        #[serde(default)]
        combo: String,
        /// The objective value (none for a failed trial).
        #[serde(default)]
        value: Option<f64>,
        /// Share of the session's budget used after this trial, in [0, 1].
        #[serde(default)]
        budget_used: f64,
    },
    RunFinished {
        ts: f64,
        pid: u32,
        passed: usize,
        failed: usize,
    },
}
