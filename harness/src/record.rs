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
//! The plan and the start markers are what [`crate::accounting`] compares the trial records
//! with: a trial that was planned to run (or started) and has no record did not finish.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use l1_engines::{Combo, Metrics};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalog::hex;
use crate::expand::TargetId;

/// Bumped on any breaking change of the record format.
pub const RECORD_SCHEMA_VERSION: u32 = 1;

/// The harness version, recorded with every result.
pub const HARNESS_VERSION: &str = env!("CARGO_PKG_VERSION");

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
    pub stopped: Option<crate::stats::StopReason>,
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
    /// baseline's are the reference combos are compared with; see `crate::fidelity`).
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

/// A trial's verdict.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrialRecord {
    pub schema_version: u32,
    pub run_id: String,
    pub name: String,
    pub spec: String,
    pub target: TargetId,
    /// `combo`, `baseline` or `gate`.
    pub kind: String,
    pub passed: bool,
    pub message: String,
    /// The measurement this trial used (combo and baseline trials).
    pub measurement: Option<String>,
    /// Gate verdicts (gate trials).
    pub gates: Vec<crate::gates::GateVerdict>,
    pub simulated: bool,
    pub duration_s: f64,
}

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
        for var in ["L1_RUN_ID", "NEXTEST_RUN_ID"] {
            if let Ok(v) = std::env::var(var) {
                let v: String = v
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                    .collect();
                if !v.is_empty() {
                    return v;
                }
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        format!("{}-{:x}", utc_stamp(now.as_secs()), std::process::id())
    })
    .clone()
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time.
pub fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
    pub fn read_measurement(&self, key: &str) -> Result<Option<MeasurementRecord>, String> {
        read_json(&self.measurement_path(key))
    }

    /// Get the measurement `key`: the recorded one, else wait for the trial measuring it, else
    /// measure it with `measure` (holding the measurement's lock, so nobody measures it twice).
    pub fn obtain(
        &self,
        key: &str,
        measure: impl FnOnce() -> MeasurementRecord,
    ) -> Result<(MeasurementRecord, Obtained), String> {
        if let Some(r) = self.read_measurement(key)? {
            return Ok((r, Obtained::Recorded));
        }
        let lock_path = self.lock_path(key);
        create_parent(&lock_path)?;
        let lock = File::create(&lock_path)
            .map_err(|e| format!("failed to create lock {}: {e}", lock_path.display()))?;
        let waited = match lock.try_lock() {
            Ok(()) => false,
            Err(std::fs::TryLockError::WouldBlock) => {
                lock.lock()
                    .map_err(|e| format!("failed to wait for lock {}: {e}", lock_path.display()))?;
                true
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("failed to lock {}: {e}", lock_path.display()));
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
    pub fn try_claim(&self, key: &str) -> Result<Claim, String> {
        if let Some(r) = self.read_measurement(key)? {
            return Ok(Claim::Recorded(Box::new(r)));
        }
        let lock_path = self.lock_path(key);
        create_parent(&lock_path)?;
        let lock = File::create(&lock_path)
            .map_err(|e| format!("failed to create lock {}: {e}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(Claim::Busy),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("failed to lock {}: {e}", lock_path.display()));
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

    pub fn write_trial(&self, record: &TrialRecord) -> Result<(), String> {
        write_json_atomic(&self.trial_path(&record.name), record)
    }

    /// `<run>/plan/<writer>.json`.
    pub fn plan_path(&self, writer: &str) -> PathBuf {
        self.path.join("plan").join(format!("{writer}.json"))
    }

    /// Record what a runner process planned (see [`PlanRecord`]).
    pub fn write_plan(&self, writer: &str, plan: &PlanRecord) -> Result<(), String> {
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
    pub fn mark_started(&self, name: &str) -> Result<(), String> {
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
                        Err(err) => bad.push(err),
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
    pub fn finish(self, record: &MeasurementRecord) -> Result<(), String> {
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

fn create_parent(path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("failed to create {}: {e}", dir.display()))?;
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
                Err(e) => bad.push(e),
            }
        }
    }
    (ok, bad)
}

/// Whether a file is the temporary file of an atomic write in progress
/// ([`write_text_atomic`]'s `<name>.tmp.<pid>.<thread>`): not a record, not a stray.
pub fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().contains(".tmp."))
}

/// Read a JSON file; `Ok(None)` when it does not exist.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: not a valid l1 record: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("failed to read {}: {e}", path.display())),
    }
}

/// Write text to a temporary file in the same directory (named by process and thread, so
/// concurrent writers never share one), flush it to disk, then rename it over the destination:
/// readers see the old file or the whole new one, never a partial write.
pub fn write_text_atomic(path: &Path, text: &str) -> Result<(), String> {
    create_parent(path)?;
    let tmp = path.with_extension(
        format!(
            "tmp.{}.{:?}",
            std::process::id(),
            std::thread::current().id()
        )
        .replace(['(', ')'], ""),
    );
    let mut f =
        File::create(&tmp).map_err(|e| format!("failed to create {}: {e}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("failed to write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| format!("failed to rename {} into place: {e}", tmp.display()))
}

/// Write JSON atomically, as [`write_text_atomic`] does.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    // A signal is tearing the engines down: whatever was being measured ends with the engine's
    // death, which is not the engine's failure. Nothing is written that would read as a result.
    if l1_engines::process::terminating() {
        return Err(format!(
            "the harness is terminating (signal): {} not written",
            path.display()
        ));
    }
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| format!("failed to serialize a record: {e}"))?;
    write_text_atomic(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let err = run.obtain("k2", || record("k2")).unwrap_err();
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
