//! The rows the store reads and writes: runs and their filters, measurements with their cache-key
//! parts, trials, cache statistics and tune sessions — plain data, no SQL.

use std::collections::BTreeMap;

/// A run as its first trial (or `l1`) records it.
#[derive(Clone, Debug, PartialEq)]
pub struct NewRun {
    pub run_id: String,
    /// `sweep` or `tune`.
    pub mode: String,
    pub label: Option<String>,
    pub started_unix_s: f64,
    pub harness_version: String,
    pub hardware_fingerprint: String,
    pub hardware: String,
    pub host: String,
    pub catalog_snapshot: String,
}

/// Where a run stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunStatus {
    /// No verdict: trials are still being recorded, or the run ended without one (interrupted,
    /// killed, a nextest run nobody reported, or a report that found trials without an outcome).
    /// Listed with its last activity ([`RunRow::updated_unix_s`]).
    Unfinished,
    /// Every trial asked to run finished and passed.
    Passed,
    /// Every trial asked to run finished and one or more failed.
    Failed,
    /// `l1 runs cancel` asked it to stop.
    Cancelled,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Unfinished => "unfinished",
            RunStatus::Passed => "passed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            // `running` was this status's name before runs without a verdict were told apart.
            "unfinished" | "running" => RunStatus::Unfinished,
            "passed" => RunStatus::Passed,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }

    pub const NAMES: &'static [&'static str] = &["unfinished", "passed", "failed", "cancelled"];
}

/// A run with its counts, as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct RunRow {
    pub run: NewRun,
    pub status: RunStatus,
    pub updated_unix_s: f64,
    pub finished_unix_s: Option<f64>,
    pub cancel_requested_unix_s: Option<f64>,
    pub deleted_unix_s: Option<f64>,
    pub trials_passed: i64,
    pub trials_failed: i64,
    pub measurements: i64,
    pub cache_hits: i64,
    pub specs: Vec<String>,
    pub engines: Vec<String>,
}

/// Filters of `l1 runs list`.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub spec: Option<String>,
    pub engine: Option<String>,
    pub status: Option<RunStatus>,
    pub since_unix_s: Option<f64>,
    pub label: Option<String>,
    pub include_deleted: bool,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// The cache key's parts (see the harness's fingerprints).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct KeyParts {
    pub catalog_version: i64,
    pub model_hash: String,
    pub hardware_fingerprint: String,
    pub workload_fingerprint: String,
    pub plan_hash: String,
    pub cache_key: String,
}

/// One measurement: the raw reps of a combo of a target.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasurementRow {
    pub run_id: String,
    pub key: String,
    pub spec: String,
    pub engine: String,
    pub target_version: String,
    pub engine_version: Option<String>,
    pub model: String,
    pub hardware: String,
    pub workload: String,
    pub combo: String,
    pub combo_hash: String,
    pub catalog_snapshot: String,
    pub parts: Option<KeyParts>,
    pub simulated: bool,
    pub started_unix_s: f64,
    pub duration_s: f64,
    pub error: Option<String>,
    /// (run, key) the reps were copied from, for a cache hit.
    pub cache_from: Option<(String, String)>,
    /// Whether later lookups may use it (a successful, original measurement with caching on).
    pub cacheable: bool,
    /// Per rep: metric → value.
    pub reps: Vec<BTreeMap<String, f64>>,
    /// The whole record as the harness wrote it (JSON).
    pub record: String,
}

/// One trial's verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct TrialRow {
    pub run_id: String,
    pub name: String,
    pub spec: String,
    /// `combo`, `baseline` or `gate`.
    pub kind: String,
    pub engine: String,
    pub target_version: String,
    pub model: String,
    pub hardware: String,
    pub workload: String,
    pub passed: bool,
    pub message: String,
    pub measurement_key: Option<String>,
    pub simulated: bool,
    pub duration_s: f64,
    pub cache_hit: bool,
    pub record: String,
}

/// Which cache entries `l1 cache flush` (and `stats`) considers.
#[derive(Clone, Debug, Default)]
pub struct CacheFilter {
    pub engine: Option<String>,
    pub model: Option<String>,
    pub hardware: Option<String>,
    pub spec: Option<String>,
    pub before_unix_s: Option<f64>,
}

/// What the cache holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CacheStats {
    /// Entries a lookup can return now.
    pub valid: i64,
    /// Older than the TTL.
    pub expired: i64,
    /// Removed by `l1 cache flush`.
    pub flushed: i64,
    /// Measurements answered from the cache (all time).
    pub hits: i64,
    /// Measurements taken for real, with caching on (all time).
    pub misses: i64,
    /// Valid entries per engine.
    pub valid_by_engine: Vec<(String, i64)>,
}

/// A Tier-2 tune session as stored (`tune_sessions`).
#[derive(Clone, Debug, PartialEq)]
pub struct TuneSessionRow {
    pub session_id: String,
    pub run_id: Option<String>,
    pub spec: String,
    /// `engine@version::model::hardware::workload`.
    pub target: String,
    /// `running`, `finished`, `cancelled` or `failed`.
    pub status: String,
    /// JSON.
    pub objective: String,
    /// JSON.
    pub budget: String,
    /// JSON: the optimiser's full state (`l1_tune::Session::to_json`).
    pub bayesian_state: String,
    pub best_trial: Option<i64>,
    pub created_unix_s: f64,
    pub updated_unix_s: f64,
}

/// One trial of a tune session (`tune_trials`).
#[derive(Clone, Debug, PartialEq)]
pub struct TuneTrialRow {
    pub session_id: String,
    pub n: i64,
    /// The combo's label.
    pub combo: String,
    pub measurement_key: Option<String>,
    /// `ok`, `cached`, `remeasured` (a final-phase replicate), `infeasible` or `failed`.
    pub outcome: String,
    pub value: Option<f64>,
    pub created_unix_s: f64,
}

/// The 30-day time-to-live of cache entries.
pub const CACHE_TTL_S: f64 = 30.0 * 86_400.0;
