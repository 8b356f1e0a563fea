//! The trial listing of the report model ([`l1_reports::model::TrialListing`]): every trial
//! record of a run with its measurement's facts, for the formats that list trials one by one
//! (JUnit). It is filled while the report is built (the report model's `build_from`), from
//! the same read of the run directory (the run's [`Accounting`], the measurement records read
//! once each, the stray files), so every report of a run is built from one read.

use l1_reports::model::{
    CacheHitReport, ComparisonRow, GateReport, MeasurementEntry, MeasurementFacts, TrialEntry,
    TrialListing, Unreadable,
};

use std::path::PathBuf;
use std::sync::Arc;

use crate::accounting::Accounting;
use crate::model::{FIDELITY_METRIC, GateVerdict, MeasurementRecord, TrialRecord};
use crate::record::{RecordError, RunDir};

/// Why a trial's measurement record could not be read. `Clone` (the reader caches each
/// record's result, read once per report build).
#[derive(Clone, Debug, thiserror::Error)]
pub enum MeasurementReadError {
    /// The trial names a measurement whose file is not there.
    #[error("{}: measurement record missing", .path.display())]
    Missing { path: PathBuf },
    /// The file is there but could not be read or parsed.
    #[error(transparent)]
    Unreadable(Arc<RecordError>),
}

/// The listing of `acc`'s records; `read` gives a measurement record by key (`Err`: `path: why`
/// with the full path), `strays` are the run's `report_model::stray_files`.
pub fn listing(
    run: &RunDir,
    acc: &Accounting,
    read: &mut dyn FnMut(&str) -> Result<MeasurementRecord, MeasurementReadError>,
    strays: &[Unreadable],
) -> TrialListing {
    let mut unreadable_records: Vec<String> =
        acc.unreadable.iter().map(|u| relative(run, u)).collect();
    unreadable_records.sort();
    let trials = (acc.records.iter())
        .map(|r| entry(run, r, &mut *read))
        .collect();
    TrialListing {
        trials,
        ignored: (acc.ignored.iter())
            .map(|(reason, names)| (reason.clone(), names.clone()))
            .collect(),
        unreadable_records,
        strays: (strays.iter())
            .map(|u| format!("{}: {}", u.file, u.error))
            .collect(),
    }
}

fn entry(
    run: &RunDir,
    r: &TrialRecord,
    read: &mut dyn FnMut(&str) -> Result<MeasurementRecord, MeasurementReadError>,
) -> TrialEntry {
    TrialEntry {
        name: r.name.clone(),
        spec: r.spec.clone(),
        target: r.target.to_string(),
        kind: r.kind.clone(),
        passed: r.passed,
        simulated: r.simulated,
        duration_s: r.duration_s,
        message: r.message.clone(),
        measurement: r.measurement.as_ref().map(|key| MeasurementEntry {
            key: key.clone(),
            read: read(key)
                .map(|m| facts(&m))
                .map_err(|e| relative(run, &e.to_string())),
        }),
        gates: (r.gates.iter())
            .map(|g| GateReport {
                method: g.method.clone(),
                passed: g.passed,
                message: g.message.clone(),
                winner: g.winner.clone(),
                p_best: g.p_best,
                checks: g.checks.clone(),
            })
            .collect(),
        comparisons: comparisons(&r.gates),
        fidelity: crate::fidelity::fidelity_cells(&r.gates)
            .into_iter()
            .collect(),
    }
}

fn facts(m: &MeasurementRecord) -> MeasurementFacts {
    MeasurementFacts {
        reps: m.reps.len(),
        engine_version: m.engine_version.clone(),
        catalog_snapshot: m.catalog_snapshot.clone(),
        harness_version: m.harness_version.clone(),
        simulated: m.simulated,
        error: m.error.clone(),
        cache_hit: m.cache_hit.as_ref().map(|h| CacheHitReport {
            from_run: h.from_run.clone(),
            from_key: h.from_key.clone(),
            measured_unix_s: h.measured_unix_s,
        }),
        hardware_fingerprint: m
            .fingerprints
            .as_ref()
            .map(|f| f.hardware_fingerprint.clone()),
    }
}

/// The speed rows of the first verdict that tabulates a speed metric (every gate tabulates the
/// same measurements; fidelity rows are not a speed metric).
fn comparisons(gates: &[GateVerdict]) -> Vec<ComparisonRow> {
    let Some(g) = gates
        .iter()
        .find(|g| g.rows.iter().any(|row| row.metric != FIDELITY_METRIC))
    else {
        return Vec::new();
    };
    (g.rows.iter())
        .filter(|row| row.metric != FIDELITY_METRIC)
        .map(|row| ComparisonRow {
            combo: row.combo.clone(),
            metric: row.metric.clone(),
            trimmed_mean: row.trimmed_mean,
            improvement: row.improvement,
            improvement_ci: row.improvement_ci,
            yuen_p: row.yuen_p,
            adjusted_p: row.adjusted_p,
            hedges_g: row.hedges_g,
        })
        .collect()
}

/// A problem text with the run directory's path removed, so it names files relative to the run.
pub fn relative(run: &RunDir, problem: &str) -> String {
    problem.replace(&format!("{}/", run.path.display()), "")
}
