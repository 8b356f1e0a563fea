//! The calibration record (`<target>/l1/calibration/<key>.json`): what this machine showed for
//! a target's baseline over several launches.

use std::collections::BTreeMap;

use l1_engines::Combo;
use serde::{Deserialize, Serialize};

use super::target::TargetId;

/// One calibration.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Calibration {
    pub schema_version: u32,
    pub fingerprint: String,
    pub target: TargetId,
    pub combo: Combo,
    pub launches: usize,
    pub reps_per_launch: usize,
    /// Rep-to-rep coefficient of variation inside one launch (pooled), per metric.
    pub cv_within: BTreeMap<String, f64>,
    /// Launch-to-launch coefficient of variation of the launch means, with the part the reps
    /// explain removed (floored at 0), per metric.
    pub cv_between: BTreeMap<String, f64>,
    /// Trimmed mean (10 %) over all reps, per metric: the reference for the `drift` gate.
    pub trimmed_mean: BTreeMap<String, f64>,
    pub measured_unix_s: f64,
    pub simulated: bool,
}
