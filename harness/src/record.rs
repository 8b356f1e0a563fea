//! Result records under `target/l1/runs/<run-id>/`: one per measurement (the raw reps of one
//! combo of one target) and one per trial (its verdict). Written atomically (temporary file, then
//! rename), so a trial killed mid-way leaves nothing that reads as a result.
//!
//! Layout:
//! ```text
//! target/l1/runs/<run-id>/measurements/<key>.json   raw per-rep metrics, provenance
//! target/l1/runs/<run-id>/trials/<trial-id>.json     verdict of each trial
//! target/l1/runs/<run-id>/locks/<key>.lock           held while a measurement is in progress
//! target/l1/runs/<run-id>/plan/<writer>.json         the trials the runner knew and their status
//! target/l1/runs/<run-id>/started/<trial-id>.json    a trial began (process, time)
//! ```
//!
//! The record types are the saved formats of [`crate::model`]; this module reads and writes
//! them. The plan and the start markers are what accounting compares the trial records with: a
//! trial that was planned to run (or started) and has no record did not finish.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::catalog::hex;

/// Why a record could not be read or written. The messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("failed to create {}: {source}", .path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to create lock {}: {source}", .path.display())]
    CreateLock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to wait for lock {}: {source}", .path.display())]
    WaitLock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to lock {}: {source}", .path.display())]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file exists but is not a record (our writes are atomic, so we did not write it).
    #[error("{}: not a valid l1 record: {source}", .path.display())]
    Invalid {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("failed to read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] l1_reports::atomic::WriteError),
    /// A signal is tearing the engines down: nothing is written that would read as a result.
    #[error("the harness is terminating (signal): {} not written", .path.display())]
    Terminating { path: PathBuf },
    #[error("failed to serialize a record: {0}")]
    Serialize(serde_json::Error),
}

impl From<RecordError> for String {
    fn from(e: RecordError) -> Self {
        e.to_string()
    }
}

pub use crate::model::{
    CacheHit, Fingerprints, HARNESS_VERSION, MeasurementRecord, PlanRecord, PlanStatus,
    PlannedEntry, RECORD_SCHEMA_VERSION, StartedMarker, TrialRecord, UsedSettings,
};

/// What a spec's trials record as used: its trim, its mode (`tune` for a tune spec), its planned
/// reps, the gate methods the run applies (`gates`, after any `L1_GATES` override) and the
/// digest of its rendered text.
pub fn used_settings(
    spec: &crate::spec::Spec,
    gates: &[crate::spec::Gate],
    rendered: &str,
) -> UsedSettings {
    UsedSettings {
        trim: spec.measure.trim,
        mode: match &spec.kind {
            crate::spec::SpecKind::Tune(_) => "tune".into(),
            crate::spec::SpecKind::Sweep(s) => s.mode.to_string(),
        },
        reps: spec.measure.full_reps(),
        gates: gates.iter().map(|g| g.method.to_string()).collect(),
        spec_digest: short_hash(rendered, 16),
    }
}

/// This process's executable, as `/proc/<pid>/exe` shows it.
pub fn current_exe() -> String {
    std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Whether process `pid` is alive and still runs `exe` (so a reused pid does not count).
pub fn process_alive(pid: u32, exe: &str) -> bool {
    let Ok(link) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
        return false;
    };
    let link = link.display().to_string();
    exe.is_empty() || link == exe || link.strip_suffix(" (deleted)") == Some(exe)
}

/// Hash a string to `len` hex characters.
pub fn short_hash(text: &str, len: usize) -> String {
    let h = hex(&Sha256::digest(text.as_bytes()));
    h[..len.min(h.len())].to_string()
}

/// The run id: `L1_RUN_ID`, else `NEXTEST_RUN_ID`, else generated once per process.
pub fn run_id() -> String {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        if let Some(id) = &crate::settings::env().run_id {
            return id.clone();
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        format!("{}-{:x}", utc_stamp(now.as_secs()), std::process::id())
    })
    .clone()
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time ([`l1_reports::dates`], the one date formatter).
pub fn utc_stamp(secs: u64) -> String {
    l1_reports::dates::run_stamp(secs)
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// One run's directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub run_id: String,
    pub path: PathBuf,
}

impl RunDir {
    /// `<target>/l1/runs/<run-id>`.
    pub fn new(target_dir: &Path, run_id: &str) -> Self {
        Self {
            run_id: run_id.to_string(),
            path: target_dir.join("l1").join("runs").join(run_id),
        }
    }

    pub fn measurement_path(&self, key: &str) -> PathBuf {
        self.path.join("measurements").join(format!("{key}.json"))
    }

    pub fn trial_path(&self, name: &str) -> PathBuf {
        self.path
            .join("trials")
            .join(format!("{}.json", short_hash(name, 20)))
    }

    fn lock_path(&self, key: &str) -> PathBuf {
        self.path.join("locks").join(format!("{key}.lock"))
    }

    /// Read a measurement record if one exists. A file that does not parse is an error (it
    /// was not written by us: our writes are atomic).
    pub fn read_measurement(&self, key: &str) -> Result<Option<MeasurementRecord>, RecordError> {
        read_json(&self.measurement_path(key))
    }

    /// Get the measurement `key`: the recorded one, else wait for the trial measuring it, else
    /// measure it with `measure` (holding the measurement's lock, so nobody measures it twice).
    pub fn obtain(
        &self,
        key: &str,
        measure: impl FnOnce() -> MeasurementRecord,
    ) -> Result<(MeasurementRecord, Obtained), RecordError> {
        if let Some(r) = self.read_measurement(key)? {
            return Ok((r, Obtained::Recorded));
        }
        let lock_path = self.lock_path(key);
        create_parent(&lock_path)?;
        let lock = File::create(&lock_path).map_err(|source| RecordError::CreateLock {
            path: lock_path.clone(),
            source,
        })?;
        let waited = match lock.try_lock() {
            Ok(()) => false,
            Err(std::fs::TryLockError::WouldBlock) => {
                lock.lock().map_err(|source| RecordError::WaitLock {
                    path: lock_path.clone(),
                    source,
                })?;
                true
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(RecordError::Lock {
                    path: lock_path,
                    source: e,
                });
            }
        };
        if let Some(r) = self.read_measurement(key)? {
            return Ok((
                r,
                if waited {
                    Obtained::Waited
                } else {
                    Obtained::Recorded
                },
            ));
        }
        let record = measure();
        write_json_atomic(&self.measurement_path(key), &record)?;
        drop(lock);
        Ok((record, Obtained::Measured))
    }

    /// Claim a measurement without blocking: its record if one exists, else its lock if nobody
    /// holds it (the caller then measures and calls [`Claim::finish`]), else `Busy` (another
    /// trial is measuring it: [`RunDir::obtain`] waits for it).
    pub fn try_claim(&self, key: &str) -> Result<Claim, RecordError> {
        if let Some(r) = self.read_measurement(key)? {
            return Ok(Claim::Recorded(Box::new(r)));
        }
        let lock_path = self.lock_path(key);
        create_parent(&lock_path)?;
        let lock = File::create(&lock_path).map_err(|source| RecordError::CreateLock {
            path: lock_path.clone(),
            source,
        })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(Claim::Busy),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(RecordError::Lock {
                    path: lock_path,
                    source: e,
                });
            }
        }
        // Measured between our read and our lock?
        if let Some(r) = self.read_measurement(key)? {
            return Ok(Claim::Recorded(Box::new(r)));
        }
        Ok(Claim::Mine(MeasurementLock {
            _file: lock,
            path: self.measurement_path(key),
        }))
    }

    pub fn write_trial(&self, record: &TrialRecord) -> Result<(), RecordError> {
        write_json_atomic(&self.trial_path(&record.name), record)
    }

    /// `<run>/plan/<writer>.json`.
    pub fn plan_path(&self, writer: &str) -> PathBuf {
        self.path.join("plan").join(format!("{writer}.json"))
    }

    /// Record what a runner process planned (see [`PlanRecord`]).
    pub fn write_plan(&self, writer: &str, plan: &PlanRecord) -> Result<(), RecordError> {
        write_json_atomic(&self.plan_path(writer), plan)
    }

    /// Every plan of the run, sorted by writer; unreadable files are reported.
    pub fn plans(&self) -> (Vec<PlanRecord>, Vec<String>) {
        read_all(&self.path.join("plan"))
    }

    pub fn started_path(&self, name: &str) -> PathBuf {
        self.path
            .join("started")
            .join(format!("{}.json", short_hash(name, 20)))
    }

    /// Mark trial `name` as started by this process.
    pub fn mark_started(&self, name: &str) -> Result<(), RecordError> {
        write_json_atomic(
            &self.started_path(name),
            &StartedMarker {
                name: name.to_string(),
                pid: std::process::id(),
                exe: current_exe(),
                started_unix_s: now_unix(),
            },
        )
    }

    /// Every start marker of the run; unreadable files are reported.
    pub fn started(&self) -> (Vec<StartedMarker>, Vec<String>) {
        read_all(&self.path.join("started"))
    }

    /// The newest modification time (Unix seconds) of the run's records, plans, start markers
    /// and event stream: when the run last did something.
    pub fn last_activity(&self) -> Option<f64> {
        let mut newest: Option<f64> = None;
        let mut see = |p: &Path| {
            if let Some(t) = std::fs::metadata(p)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            {
                let t = t.as_secs_f64();
                newest = Some(newest.map_or(t, |n: f64| n.max(t)));
            }
        };
        for sub in ["trials", "measurements", "plan", "started"] {
            if let Ok(entries) = std::fs::read_dir(self.path.join(sub)) {
                for e in entries.flatten() {
                    see(&e.path());
                }
            }
        }
        see(&self.path.join("events.jsonl"));
        newest
    }

    /// Every trial record of the run, sorted by name; unreadable files are reported, not skipped.
    pub fn trials(&self) -> (Vec<TrialRecord>, Vec<String>) {
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        if let Ok(entries) = std::fs::read_dir(self.path.join("trials")) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "json") {
                    match read_json::<TrialRecord>(&p) {
                        Ok(Some(r)) => ok.push(r),
                        Ok(None) => {}
                        Err(err) => bad.push(err.to_string()),
                    }
                }
            }
        }
        ok.sort_by(|a, b| a.name.cmp(&b.name));
        (ok, bad)
    }
}

/// The outcome of [`RunDir::try_claim`].
#[derive(Debug)]
pub enum Claim {
    Recorded(Box<MeasurementRecord>),
    /// This trial holds the measurement's lock and must measure it.
    Mine(MeasurementLock),
    /// Another trial is measuring it.
    Busy,
}

/// A held measurement lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct MeasurementLock {
    _file: File,
    path: PathBuf,
}

impl MeasurementLock {
    /// Write the record (atomically) and release the lock.
    pub fn finish(self, record: &MeasurementRecord) -> Result<(), RecordError> {
        write_json_atomic(&self.path, record)
    }
}

/// How a measurement was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Obtained {
    /// It was already recorded in this run.
    Recorded,
    /// Another trial was measuring it; we waited for its record.
    Waited,
    /// This trial measured it.
    Measured,
}

fn create_parent(path: &Path) -> Result<(), RecordError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| RecordError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// Every `.json` record of a directory, sorted by file name; unreadable files are reported.
fn read_all<T: serde::de::DeserializeOwned>(dir: &Path) -> (Vec<T>, Vec<String>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
        {
            match read_json::<T>(p) {
                Ok(Some(r)) => ok.push(r),
                Ok(None) => {}
                Err(e) => bad.push(e.to_string()),
            }
        }
    }
    (ok, bad)
}

/// Whether a file is the temporary file of an atomic write in progress
/// ([`write_text_atomic`]'s `<name>.tmp.<random>`): not a record, not a stray.
pub fn is_temporary(path: &Path) -> bool {
    l1_reports::atomic::is_temporary(path)
}

/// Read a JSON file; `Ok(None)` when it does not exist.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, RecordError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| RecordError::Invalid {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(RecordError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Write text atomically ([`l1_reports::atomic`], the one atomic writer: a temporary file in the
/// same directory, flushed to disk, then renamed over the destination): readers see the old file
/// or the whole new one, never a partial write.
pub fn write_text_atomic(path: &Path, text: &str) -> Result<(), RecordError> {
    Ok(l1_reports::atomic::write(path, text.as_bytes())?)
}

/// Write JSON atomically, as [`write_text_atomic`] does.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), RecordError> {
    // A signal is tearing the engines down: whatever was being measured ends with the engine's
    // death, which is not the engine's failure. Nothing is written that would read as a result.
    if l1_engines::process::terminating() {
        return Err(RecordError::Terminating {
            path: path.to_path_buf(),
        });
    }
    let text = serde_json::to_string_pretty(value).map_err(RecordError::Serialize)?;
    write_text_atomic(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TargetId;
    use l1_engines::Combo;

    #[test]
    fn a_measurement_is_taken_once_however_many_trials_need_it() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let dir = std::env::temp_dir().join(format!("l1-obtain-{}", std::process::id()));
        let run = RunDir::new(&dir, "r");
        let measured = Arc::new(AtomicUsize::new(0));
        let record = |key: &str| MeasurementRecord {
            schema_version: RECORD_SCHEMA_VERSION,
            key: key.into(),
            run_id: "r".into(),
            spec: "s".into(),
            target: TargetId {
                engine: "sim".into(),
                version: "1.0".into(),
                model: "m".into(),
                hardware: "h".into(),
                workload: "w".into(),
            },
            combo: Combo::default(),
            combo_hash: "c".into(),
            catalog_snapshot: "v1-x".into(),
            harness_version: HARNESS_VERSION.into(),
            simulated: true,
            seed: 1,
            measured_by: "t".into(),
            started_unix_s: 0.0,
            duration_s: 0.0,
            warmup_reps: 0,
            launches: 1,
            looks: 1,
            stopped: None,
            reps: vec![],
            error: None,
            notes: Vec::new(),
            engine_version: None,
            fingerprints: None,
            cache_hit: None,
            probes: None,
        };
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (run, measured) = (run.clone(), measured.clone());
                std::thread::spawn(move || {
                    let (r, how) = run
                        .obtain("k1", || {
                            measured.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(30));
                            record("k1")
                        })
                        .unwrap();
                    assert_eq!(r.key, "k1");
                    how
                })
            })
            .collect();
        let hows: Vec<Obtained> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(measured.load(Ordering::SeqCst), 1);
        assert_eq!(hows.iter().filter(|h| **h == Obtained::Measured).count(), 1);
        // A foreign or truncated file is an error naming the file, not a silent re-measurement.
        std::fs::write(
            run.measurement_path("k2"),
            "{\"schema_version\": 1, \"key\"",
        )
        .unwrap();
        let err = run.obtain("k2", || record("k2")).unwrap_err().to_string();
        assert!(
            err.contains("k2.json") && err.contains("not a valid l1 record"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn utc_stamp_is_civil_time() {
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_795_000_000), "20261118T110640Z");
    }
}
