//! The statistics' saved vocabulary: why a sequential measurement stopped, and a measurement
//! design (reps over launches) as gate verdicts suggest it.

use serde::{Deserialize, Serialize};

/// Why a sequential measurement stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The whole interval is above the gate's threshold.
    Win,
    /// The whole interval is below the gate's threshold: this combo cannot pass.
    Loss,
    /// The interval lies within ± the noise floor: equivalent to the baseline.
    Futility,
    /// The interval is narrower than the noise floor: more reps cannot change the verdict much.
    Precision,
}

/// How one arm is measured: `reps` spread round-robin over `launches` engine launches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Design {
    pub reps: usize,
    pub launches: usize,
}
