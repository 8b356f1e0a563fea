//! The measurement record (`<run>/measurements/<key>.json`): the raw reps of one combo of one
//! target, with what identifies them across runs (the cache key's parts) and where a cached
//! one came from.

use l1_engines::{Combo, Metrics};
use serde::{Deserialize, Serialize};

use super::design::StopReason;
use super::target::TargetId;

/// The raw reps of one combo of one target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MeasurementRecord {
    pub schema_version: u32,
    pub key: String,
    pub run_id: String,
    pub spec: String,
    pub target: TargetId,
    pub combo: Combo,
    pub combo_hash: String,
    pub catalog_snapshot: String,
    pub harness_version: String,
    /// True for the sim engine: every report marks these results as simulated.
    pub simulated: bool,
    pub seed: u64,
    /// The trial that measured it.
    pub measured_by: String,
    pub started_unix_s: f64,
    pub duration_s: f64,
    pub warmup_reps: u32,
    /// How many engine launches the reps were spread over.
    #[serde(default = "one")]
    pub launches: u32,
    /// Planned looks of a group-sequential measurement (1 = a fixed number of reps).
    #[serde(default = "one")]
    pub looks: u32,
    /// Why a sequential measurement stopped before its last look.
    #[serde(default)]
    pub stopped: Option<StopReason>,
    pub reps: Vec<Metrics>,
    /// Set when the measurement failed (launch failure, crash, error rate over the threshold).
    pub error: Option<String>,
    /// What the engine launches reported: command line, engine version, log path, startup
    /// time, load the generator could not deliver, failed requests.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The installed engine's own version as it reported it (e.g. `0.32.0` for a spec's
    /// `vllm@0.32`); `None` for the sim and for launches that failed before detecting it.
    #[serde(default)]
    pub engine_version: Option<String>,
    /// What identifies the measurement across runs: the hashes the cache key is built from.
    /// `None` in records written before the store existed.
    #[serde(default)]
    pub fingerprints: Option<Fingerprints>,
    /// Set when the reps were not measured in this run but taken from the cache.
    #[serde(default)]
    pub cache_hit: Option<CacheHit>,
    /// The launch's greedy answers to the workload's fidelity probes, run after the reps (the
    /// baseline's are the reference combos are compared with; see the fidelity module).
    #[serde(default)]
    pub probes: Option<l1_engines::probe::ProbeRun>,
}

/// The parts of the cache key (the origin's: catalog version, engine, engine version, model
/// hash, hardware fingerprint, workload fingerprint, combo hash) plus the measurement plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprints {
    /// `sha256` of the key's parts; equal keys mean interchangeable measurements.
    pub cache_key: String,
    pub catalog_version: u32,
    pub engine: String,
    /// The installed engine's version where it could be detected before launching, else the
    /// spec's `engine@version`.
    pub engine_version: String,
    pub model_hash: String,
    pub hardware_fingerprint: String,
    /// Human-readable hardware description the fingerprint was computed from.
    pub hardware: String,
    pub workload_fingerprint: String,
    pub combo_hash: String,
    /// Reps, launches, warm-up, seed and sequential plan: a record measured with 3 reps must
    /// not answer for a spec that asks for 15.
    pub plan_hash: String,
}

/// Where a cached measurement came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheHit {
    /// The run that measured it.
    pub from_run: String,
    /// The measurement key in that run.
    pub from_key: String,
    /// When it was measured (Unix seconds).
    pub measured_unix_s: f64,
}

fn one() -> u32 {
    1
}
