//! The trial layer's one error: why a trial, a measurement through it or a stored tune
//! session's planning failed. The texts are the trials' failure messages (libtest prints them).

use std::path::PathBuf;
use std::sync::Arc;

use super::measure::MeasureError;
use crate::calibration::CalibrationError;
use crate::diag::Diagnostic;
use crate::fingerprint::FingerprintError;
use crate::gates::GateError;
use crate::record::RecordError;
use crate::results::ResultsError;
use crate::stats::StatsError;

/// Why a trial (or what it does for a tune session) failed.
#[derive(Debug, thiserror::Error)]
pub enum TrialError {
    /// A record of this run could not be claimed, read or written.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// The results store (or the cache mode it is used under) failed.
    #[error(transparent)]
    Results(#[from] ResultsError),
    /// Early stopping could not be planned.
    #[error(transparent)]
    Measure(#[from] MeasureError),
    /// The trial's tune session failed.
    #[error(transparent)]
    Tune(#[from] crate::tuning::SessionError),
    /// A summary statistic of the reps could not be computed.
    #[error(transparent)]
    Stats(#[from] StatsError),
    /// `l1 runs cancel` stopped the run (`at`: when, UTC).
    #[error(
        "run `{run_id}` was cancelled with `l1 runs cancel` at {at}: this trial did not run (what the run measured before is kept)"
    )]
    Cancelled { run_id: String, at: String },
    /// A measurement was recorded (at `kept`) but not stored.
    #[error(
        "{trial}: failed to store measurement {key}: {source} (the record is kept at {}; `l1 report` ingests it)",
        .kept.display()
    )]
    StoreMeasurement {
        trial: String,
        key: String,
        kept: PathBuf,
        source: ResultsError,
    },
    /// A `regression` gate against stored results without the cache key to find them.
    #[error("{trial}: regression against stored results needs the cache key: {source}")]
    NoCacheKey {
        trial: String,
        source: Arc<FingerprintError>,
    },
    /// A combo's `regression` gate against its stored measurement could not be evaluated.
    #[error("{trial}: {slug} against {label}: {source}")]
    StoredGate {
        trial: String,
        slug: String,
        label: String,
        source: GateError,
    },
    /// The gate trial's baseline measurement failed (`why`: the measurement's error).
    #[error("{trial}: the baseline measurement failed, so no gate can be evaluated: {why}")]
    BaselineFailed { trial: String, why: String },
    /// The machine's calibration could not be read.
    #[error("{trial}: {source}")]
    Calibration {
        trial: String,
        source: CalibrationError,
    },
    /// The spec's gates could not be evaluated.
    #[error("{trial}: {source}")]
    Gates { trial: String, source: GateError },
    /// A stored tune session without its run.
    #[error("tune session {session} has no run id")]
    NoRunId { session: String },
    /// A stored tune session's spec is nowhere to be found.
    #[error(
        "spec `{spec}` of tune session {session} is neither under {} nor recorded in the store",
        .specs.display()
    )]
    SessionSpecMissing {
        spec: String,
        session: String,
        specs: PathBuf,
    },
    /// The spec restored from the store could not be written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A stored tune session's spec does not plan.
    #[error("{name}: {diagnostic}")]
    Plan {
        name: String,
        diagnostic: Diagnostic,
    },
    /// A stored tune session's spec plans no `::tune` trial for its target.
    #[error("spec `{spec}` has no tune trial for target {target} (is it still a tune spec?)")]
    NoTuneTrial { spec: String, target: String },
}

/// For callers that still report errors as text.
impl From<TrialError> for String {
    fn from(e: TrialError) -> Self {
        e.to_string()
    }
}
