//! The harness's side of the results store ([`l1_store`]): where it is (`L1_STORE`), the cache
//! mode (`L1_CACHE`), records turned into rows, ingesting a run directory into the store and
//! restoring one from it.
//!
//! Each trial writes its record under `target/l1/runs/<run-id>/` first (the trial's output,
//! written atomically), then inserts it into the store. If the process dies between the two, the
//! record is still on disk and `l1 report` (or the end of a plain `cargo test` run) ingests it;
//! inserts are idempotent, so ingesting twice changes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use l1_store::{Location, MeasurementRow, NewRun, Store, StoreError, TrialRow};

use crate::record::{self, CacheHit, MeasurementRecord, RunDir, TrialRecord};

pub use crate::settings::CacheMode;

/// Why the store (or the cache mode it is used under) failed, or a record in it or for it could
/// not be used. The texts are what trials and `l1` print.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// `L1_CACHE` is not a cache mode.
    #[error(transparent)]
    CacheMode(#[from] crate::settings::BadSetting),
    #[error("the harness is terminating (signal): nothing is stored")]
    Terminating,
    #[error("the results store's connection was poisoned by a panic")]
    Poisoned,
    /// The store could not be opened (its own text).
    #[error("{0}")]
    Open(StoreError),
    #[error("the results store is not open")]
    NotOpen,
    /// What the store failed at, named by its location.
    #[error("results store {location}: {source}")]
    Store {
        location: String,
        source: StoreError,
    },
    /// A read from a store given by the caller (its own text).
    #[error("{0}")]
    Read(StoreError),
    /// A measurement or trial record in the store (`what`) does not parse.
    #[error("{what} {run_id}/{key} does not parse: {source}")]
    Parse {
        what: &'static str,
        run_id: String,
        key: String,
        source: serde_json::Error,
    },
    /// A restored record could not be written.
    #[error(transparent)]
    Write(#[from] crate::record::RecordError),
}

/// For callers that still report errors as text.
impl From<ResultsError> for String {
    fn from(e: ResultsError) -> Self {
        e.to_string()
    }
}

/// `L1_CACHE` of this process, read once.
pub fn cache_mode() -> Result<CacheMode, ResultsError> {
    Ok(crate::settings::env().cache.clone()?)
}

/// The store's location: `L1_STORE` (a path or a `postgres://` URL), else
/// `<target>/l1/store.sqlite`.
pub fn location(target_dir: &Path) -> Location {
    match &crate::settings::env().store {
        Some(v) => Location::parse(v),
        None => Location::Sqlite(target_dir.join("l1").join("store.sqlite")),
    }
}

type Open = Mutex<BTreeMap<String, Store>>;

/// Run `f` on this process's connection to the store of `target_dir` (opened and migrated on
/// first use; one connection per process, shared by libtest's threads).
pub fn with_store<T>(
    target_dir: &Path,
    f: impl FnOnce(&mut Store) -> Result<T, StoreError>,
) -> Result<T, ResultsError> {
    static OPEN: OnceLock<Open> = OnceLock::new();
    if l1_engines::process::terminating() {
        return Err(ResultsError::Terminating);
    }
    let loc = location(target_dir);
    let id = loc.display();
    let open = OPEN.get_or_init(|| Mutex::new(BTreeMap::new()));
    let mut guard = open.lock().map_err(|_| ResultsError::Poisoned)?;
    if !guard.contains_key(&id) {
        let store = Store::open(&loc).map_err(ResultsError::Open)?;
        guard.insert(id.clone(), store);
    }
    let store = guard.get_mut(&id).ok_or(ResultsError::NotOpen)?;
    f(store).map_err(|source| ResultsError::Store {
        location: id,
        source,
    })
}

/// The run as the store records it.
pub fn new_run(run_id: &str, catalog_snapshot: &str) -> NewRun {
    let m = crate::fingerprint::machine();
    NewRun {
        run_id: run_id.to_string(),
        mode: "sweep".into(),
        label: crate::settings::env().run_label.clone(),
        started_unix_s: record::now_unix(),
        harness_version: record::HARNESS_VERSION.into(),
        hardware_fingerprint: m.fingerprint.clone(),
        hardware: m.description.clone(),
        host: hostname(),
        catalog_snapshot: catalog_snapshot.to_string(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// A measurement record as a store row. `cacheable`: whether later runs may take it from the
/// cache (caching writes on, a real engine, measured here, no error, fingerprints known).
pub fn measurement_row(rec: &MeasurementRecord, cacheable: bool) -> MeasurementRow {
    MeasurementRow {
        run_id: rec.run_id.clone(),
        key: rec.key.clone(),
        spec: rec.spec.clone(),
        engine: rec.target.engine.clone(),
        target_version: rec.target.version.clone(),
        engine_version: rec.engine_version.clone(),
        model: rec.target.model.clone(),
        hardware: rec.target.hardware.clone(),
        workload: rec.target.workload.clone(),
        combo: rec.combo.canonical(),
        combo_hash: rec.combo_hash.clone(),
        catalog_snapshot: rec.catalog_snapshot.clone(),
        parts: rec.fingerprints.as_ref().map(|f| l1_store::KeyParts {
            catalog_version: i64::from(f.catalog_version),
            model_hash: f.model_hash.clone(),
            hardware_fingerprint: f.hardware_fingerprint.clone(),
            workload_fingerprint: f.workload_fingerprint.clone(),
            plan_hash: f.plan_hash.clone(),
            cache_key: f.cache_key.clone(),
        }),
        simulated: rec.simulated,
        started_unix_s: rec.started_unix_s,
        duration_s: rec.duration_s,
        error: rec.error.clone(),
        cache_from: rec
            .cache_hit
            .as_ref()
            .map(|h| (h.from_run.clone(), h.from_key.clone())),
        cacheable,
        reps: rec.reps.clone(),
        record: serde_json::to_string(rec).unwrap_or_default(),
    }
}

/// A trial record as a store row.
pub fn trial_row(rec: &TrialRecord, cache_hit: bool) -> TrialRow {
    TrialRow {
        run_id: rec.run_id.clone(),
        name: rec.name.clone(),
        spec: rec.spec.clone(),
        kind: rec.kind.clone(),
        engine: rec.target.engine.clone(),
        target_version: rec.target.version.clone(),
        model: rec.target.model.clone(),
        hardware: rec.target.hardware.clone(),
        workload: rec.target.workload.clone(),
        passed: rec.passed,
        message: rec.message.clone(),
        measurement_key: rec.measurement.clone(),
        simulated: rec.simulated,
        duration_s: rec.duration_s,
        cache_hit,
        record: serde_json::to_string(rec).unwrap_or_default(),
    }
}

/// Whether a measurement may answer later cache lookups.
pub fn cacheable(rec: &MeasurementRecord, mode: CacheMode) -> bool {
    mode.writes()
        && !rec.simulated
        && rec.error.is_none()
        && rec.cache_hit.is_none()
        && rec.fingerprints.is_some()
}

/// A cached measurement re-labelled for this run: the same reps and provenance, marked as a hit.
pub fn from_cache(
    hit: &MeasurementRow,
    template: &MeasurementRecord,
) -> Result<MeasurementRecord, ResultsError> {
    let original: MeasurementRecord =
        serde_json::from_str(&hit.record).map_err(|source| ResultsError::Parse {
            what: "cached measurement",
            run_id: hit.run_id.clone(),
            key: hit.key.clone(),
            source,
        })?;
    let mut rec = original;
    rec.cache_hit = Some(CacheHit {
        from_run: hit.run_id.clone(),
        from_key: hit.key.clone(),
        measured_unix_s: hit.started_unix_s,
    });
    rec.notes.insert(
        0,
        format!(
            "cache hit: reps measured by run {} ({}) at {}, no engine launched",
            hit.run_id,
            hit.key,
            record::utc_stamp(hit.started_unix_s.max(0.0) as u64)
        ),
    );
    rec.run_id = template.run_id.clone();
    rec.key = template.key.clone();
    rec.spec = template.spec.clone();
    rec.measured_by = template.measured_by.clone();
    rec.fingerprints = template.fingerprints.clone();
    rec.catalog_snapshot = template.catalog_snapshot.clone();
    rec.harness_version = template.harness_version.clone();
    Ok(rec)
}

/// What ingesting a run directory did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    pub measurements_new: usize,
    pub trials_new: usize,
    pub measurements_seen: usize,
    pub trials_seen: usize,
    /// Files that could not be read (named), never skipped silently.
    pub problems: Vec<String>,
}

/// Put every record of `run` into the store (idempotent). The run row is created if no trial
/// created it (records written before the store existed, or by a harness that died early).
pub fn ingest(run: &RunDir, store: &mut Store, mode: CacheMode) -> Result<Ingested, StoreError> {
    let (trials, mut problems) = run.trials();
    let mut measurements = Vec::new();
    if let Ok(entries) = std::fs::read_dir(run.path.join("measurements")) {
        let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if p.extension().is_some_and(|x| x == "json") {
                match record::read_json::<MeasurementRecord>(&p) {
                    Ok(Some(r)) => measurements.push(r),
                    Ok(None) => {}
                    Err(e) => problems.push(e.to_string()),
                }
            }
        }
    }
    let snapshot = measurements
        .first()
        .map(|m| m.catalog_snapshot.clone())
        .unwrap_or_default();
    let mut run_row = new_run(&run.run_id, &snapshot);
    if let Some(t) = measurements
        .iter()
        .map(|m| m.started_unix_s)
        .filter(|t| *t > 0.0)
        .reduce(f64::min)
    {
        run_row.started_unix_s = t;
    }
    store.begin_run(&run_row)?;
    let cache_hits: BTreeMap<&str, bool> = measurements
        .iter()
        .map(|m| (m.key.as_str(), m.cache_hit.is_some()))
        .collect();
    let m_rows: Vec<MeasurementRow> = measurements
        .iter()
        .map(|m| measurement_row(m, cacheable(m, mode)))
        .collect();
    let t_rows: Vec<TrialRow> = trials
        .iter()
        .map(|t| {
            let hit = t
                .measurement
                .as_deref()
                .and_then(|k| cache_hits.get(k).copied())
                .unwrap_or(false);
            trial_row(t, hit)
        })
        .collect();
    let (nm, nt) = store.insert_all(&m_rows, &t_rows)?;
    Ok(Ingested {
        measurements_new: nm,
        trials_new: nt,
        measurements_seen: m_rows.len(),
        trials_seen: t_rows.len(),
        problems,
    })
}

/// Write a stored run's records into `run`'s directory (for reports of a run measured on
/// another machine that shares the store). Existing files are left alone. Returns how many
/// files were written.
pub fn restore(run: &RunDir, store: &mut Store) -> Result<usize, ResultsError> {
    let measurements = store
        .measurements(&run.run_id)
        .map_err(ResultsError::Read)?;
    let trials = store.trials(&run.run_id).map_err(ResultsError::Read)?;
    let mut written = 0;
    for m in &measurements {
        let path = run.measurement_path(&m.key);
        if !path.exists() {
            let rec: MeasurementRecord =
                serde_json::from_str(&m.record).map_err(|source| ResultsError::Parse {
                    what: "stored measurement",
                    run_id: m.run_id.clone(),
                    key: m.key.clone(),
                    source,
                })?;
            record::write_json_atomic(&path, &rec)?;
            written += 1;
        }
    }
    for t in &trials {
        let path = run.trial_path(&t.name);
        if !path.exists() {
            let rec: TrialRecord =
                serde_json::from_str(&t.record).map_err(|source| ResultsError::Parse {
                    what: "stored trial",
                    run_id: t.run_id.clone(),
                    key: t.name.clone(),
                    source,
                })?;
            record::write_json_atomic(&path, &rec)?;
            written += 1;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_modes_parse_with_choices() {
        assert_eq!(CacheMode::parse("read").unwrap(), CacheMode::Read);
        assert!(CacheMode::parse("readwrite").unwrap().reads());
        assert!(!CacheMode::parse("off").unwrap().writes());
        let err = CacheMode::parse("yes").unwrap_err().to_string();
        assert!(err.contains("off, read, write, readwrite"), "{err}");
    }
}
