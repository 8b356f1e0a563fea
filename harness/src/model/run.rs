//! What a run directory records besides results: the plan each runner process wrote
//! (`<run>/plan/<writer>.json`) and the start marker of each trial (`<run>/started/<id>.json`),
//! which accounting compares the trial records with.

use serde::{Deserialize, Serialize};

/// How the process that planned a run saw one trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanStatus {
    /// Left out by the runner's filter (libtest's `filtered out`): no record is expected.
    FilteredOut,
    /// Ignored (with its reason) and not asked for: no record is expected.
    Ignored,
    /// Listed for nextest, which selects by itself: a record is expected once nextest starts it.
    Listed,
    /// Selected to run (libtest): a record is expected.
    Selected,
}

/// One trial of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedEntry {
    pub name: String,
    pub status: PlanStatus,
    /// Why it is ignored (set for every trial the suite marks ignored, whatever its status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

/// The trials a runner process knew about (`<run>/plan/<writer>.json`): written by a plain
/// `cargo test` run before its trials start (with libtest's selection) and by nextest's listing
/// process (every trial, nextest selects later).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    pub schema_version: u32,
    pub run_id: String,
    /// `libtest` or `nextest`.
    pub runner: String,
    pub pid: u32,
    /// The executable that planned (`/proc/<pid>/exe`), to tell a live run from a reused pid.
    #[serde(default)]
    pub exe: String,
    pub written_unix_s: f64,
    /// The specs file or directory planned.
    pub specs: String,
    pub trials: Vec<PlannedEntry>,
}

/// A trial began (`<run>/started/<trial-id>.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StartedMarker {
    pub name: String,
    pub pid: u32,
    #[serde(default)]
    pub exe: String,
    pub started_unix_s: f64,
}
