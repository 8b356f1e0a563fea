//! The l1 results store: runs, catalog snapshots, measurements with their raw per-rep metrics,
//! trials, the measurement cache, tune sessions and the kernel registry, in an embedded SQLite
//! file (the default) or a shared PostgreSQL database (`postgres://…`), with the same schema and
//! versioned migrations on both.
//!
//! The store knows nothing of specs or engines: the harness turns its records into the rows
//! defined here. Every write is one transaction, so a writer killed at any moment leaves either
//! the whole row set or nothing; inserts are idempotent (`ON CONFLICT DO NOTHING` on the natural
//! keys), so records can be ingested again without duplicates.

mod db;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use db::{Cell, Db, Param, Row};

/// Store failures. Messages say what failed and where (the store's location, never its password).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("failed to open the results store {location}: {message}")]
    Open { location: String, message: String },
    #[error(
        "{location} is not an l1 store: it has tables ({tables}) but no `schema_migrations`; point L1_STORE elsewhere"
    )]
    Foreign { location: String, tables: String },
    #[error(
        "the results store {location} has schema version {found}, newer than this l1 knows ({known}); use a newer l1 or another store"
    )]
    TooNew {
        location: String,
        found: i64,
        known: i64,
    },
    #[error("store query failed ({what}): {message}")]
    Query { what: String, message: String },
    #[error("the results store holds an unreadable value: {0}")]
    Corrupt(String),
    #[error("unknown run `{id}`{hint}")]
    UnknownRun { id: String, hint: String },
}

/// The schema versions this build knows, in order: (version, name, SQLite text, PostgreSQL text).
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[(
    1,
    "init",
    include_str!("../migrations/sqlite/0001_init.sql"),
    include_str!("../migrations/postgres/0001_init.sql"),
)];

/// The newest schema version this build knows.
pub fn schema_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// A lock id for PostgreSQL's advisory lock around migrations (any constant; "l1 store").
const PG_MIGRATION_LOCK: i64 = 0x006c_3173_746f_7265;

/// Where a store lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Location {
    /// `postgres://…` or `postgresql://…` is a PostgreSQL URL; anything else a SQLite file path.
    pub fn parse(text: &str) -> Self {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            Location::Postgres(text.to_string())
        } else {
            Location::Sqlite(PathBuf::from(text))
        }
    }

    /// For messages (passwords redacted).
    pub fn display(&self) -> String {
        match self {
            Location::Sqlite(p) => p.display().to_string(),
            Location::Postgres(u) => db::redact(u),
        }
    }
}

/// An open store.
#[derive(Debug)]
pub struct Store {
    db: Db,
    location: Location,
}

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

const MEASUREMENT_COLUMNS: &str = "m.run_id, m.key, m.spec, m.engine, m.target_version, m.engine_version, m.model, m.hardware, m.workload, m.combo, m.combo_hash, m.catalog_snapshot, m.catalog_version, m.model_hash, m.hardware_fingerprint, m.workload_fingerprint, m.plan_hash, m.cache_key, m.simulated, m.started_unix_s, m.duration_s, m.error, m.cache_from_run, m.cache_from_key, m.cacheable, m.record";

const TRIAL_COLUMNS: &str = "run_id, name, spec, kind, engine, target_version, model, hardware, workload, passed, message, measurement_key, simulated, duration_s, cache_hit, record";

impl Store {
    /// Open (creating when absent) and migrate the store at `location`.
    pub fn open(location: &Location) -> Result<Self, StoreError> {
        let db = match location {
            Location::Sqlite(path) => Db::open_sqlite(path)?,
            Location::Postgres(url) => Db::open_postgres(url)?,
        };
        let mut store = Store {
            db,
            location: location.clone(),
        };
        store.migrate()?;
        Ok(store)
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Bring the schema up to date; concurrent openers wait for each other (SQLite's write lock,
    /// PostgreSQL's advisory lock), so migrations run once.
    fn migrate(&mut self) -> Result<(), StoreError> {
        let location = self.location.display();
        self.db.tx(|tx| {
            let postgres = tx.is_postgres();
            if postgres {
                tx.query(
                    "SELECT CAST(1 AS BIGINT) FROM (SELECT pg_advisory_xact_lock(?1)) AS l",
                    &[Param::from(PG_MIGRATION_LOCK)],
                )?;
            }
            let tables: Vec<String> = if postgres {
                tx.query(
                    "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
                    &[],
                )?
            } else {
                tx.query(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                    &[],
                )?
            }
            .iter()
            .map(|r| r.text(0))
            .collect::<Result<_, _>>()?;
            if !tables.is_empty() && !tables.iter().any(|t| t == "schema_migrations") {
                return Err(StoreError::Foreign {
                    location: location.clone(),
                    tables: tables.join(", "),
                });
            }
            tx.batch(if postgres {
                "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_unix_s DOUBLE PRECISION NOT NULL)"
            } else {
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_unix_s REAL NOT NULL)"
            })?;
            let current = tx
                .query("SELECT MAX(version) FROM schema_migrations", &[])?
                .first()
                .map(|r| r.opt_int(0))
                .transpose()?
                .flatten()
                .unwrap_or(0);
            if current > schema_version() {
                return Err(StoreError::TooNew {
                    location: location.clone(),
                    found: current,
                    known: schema_version(),
                });
            }
            for (version, name, sqlite, pg) in MIGRATIONS {
                if *version <= current {
                    continue;
                }
                tx.batch(if postgres { pg } else { sqlite })?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, name, applied_unix_s) VALUES (?1, ?2, ?3)",
                    &[Param::from(*version), Param::from(*name), Param::from(now_unix())],
                )?;
            }
            Ok(())
        })
    }

    /// The schema version of the open store.
    pub fn current_schema_version(&mut self) -> Result<i64, StoreError> {
        self.db.tx(|tx| {
            tx.query("SELECT MAX(version) FROM schema_migrations", &[])?
                .first()
                .map_or(Ok(0), |r| r.opt_int(0).map(|v| v.unwrap_or(0)))
        })
    }

    /// Record a catalog snapshot (once; later calls with the same id change nothing).
    pub fn record_catalog_snapshot(
        &mut self,
        snapshot: &str,
        version: i64,
        content: &str,
    ) -> Result<(), StoreError> {
        self.db.tx(|tx| {
            tx.execute(
                "INSERT INTO catalog_snapshots (snapshot, version, content, recorded_unix_s) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (snapshot) DO NOTHING",
                &[snapshot.into(), version.into(), content.into(), now_unix().into()],
            )?;
            Ok(())
        })
    }

    /// The recorded catalog snapshots: (snapshot, version, recorded at), newest first.
    pub fn catalog_snapshots(&mut self) -> Result<Vec<(String, i64, f64)>, StoreError> {
        self.db.tx(|tx| {
            tx.query(
                "SELECT snapshot, version, recorded_unix_s FROM catalog_snapshots ORDER BY recorded_unix_s DESC, snapshot",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.int(1)?, r.real(2)?)))
            .collect()
        })
    }

    /// A recorded snapshot's catalog text.
    pub fn catalog_snapshot(&mut self, snapshot: &str) -> Result<Option<String>, StoreError> {
        self.db.tx(|tx| {
            tx.query(
                "SELECT content FROM catalog_snapshots WHERE snapshot = ?1",
                &[snapshot.into()],
            )?
            .first()
            .map(|r| r.text(0))
            .transpose()
        })
    }

    /// Record a run, or note activity on one already recorded.
    pub fn begin_run(&mut self, run: &NewRun) -> Result<(), StoreError> {
        self.db.tx(|tx| {
            tx.execute(
                "INSERT INTO runs (run_id, mode, label, started_unix_s, updated_unix_s, harness_version, hardware_fingerprint, hardware, host, catalog_snapshot) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (run_id) DO UPDATE SET updated_unix_s = ?4",
                &[
                    (&run.run_id).into(),
                    (&run.mode).into(),
                    run.label.clone().into(),
                    run.started_unix_s.into(),
                    (&run.harness_version).into(),
                    (&run.hardware_fingerprint).into(),
                    (&run.hardware).into(),
                    (&run.host).into(),
                    (&run.catalog_snapshot).into(),
                ],
            )?;
            Ok(())
        })
    }

    /// Record a spec of a run (its file, source and rendered text).
    pub fn record_spec(
        &mut self,
        run_id: &str,
        spec: &str,
        path: &str,
        source: &str,
        rendered: &str,
    ) -> Result<(), StoreError> {
        self.db.tx(|tx| {
            tx.execute(
                "INSERT INTO run_specs (run_id, spec, path, source_text, rendered_text) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (run_id, spec) DO NOTHING",
                &[run_id.into(), spec.into(), path.into(), source.into(), rendered.into()],
            )?;
            Ok(())
        })
    }

    /// The specs of a run: (spec, path, source, rendered).
    pub fn run_specs(
        &mut self,
        run_id: &str,
    ) -> Result<Vec<(String, String, String, String)>, StoreError> {
        self.db.tx(|tx| {
            tx.query(
                "SELECT spec, path, source_text, rendered_text FROM run_specs WHERE run_id = ?1 ORDER BY spec",
                &[run_id.into()],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?, r.text(2)?, r.text(3)?)))
            .collect()
        })
    }

    /// Insert a measurement with its per-rep metrics in one transaction. Returns `false` when it
    /// was already stored (the first write wins; records are immutable).
    pub fn insert_measurement(&mut self, m: &MeasurementRow) -> Result<bool, StoreError> {
        self.db.tx(|tx| insert_measurement(tx, m))
    }

    /// Insert a trial's verdict. Returns `false` when it was already stored.
    pub fn insert_trial(&mut self, t: &TrialRow) -> Result<bool, StoreError> {
        self.db.tx(|tx| insert_trial(tx, t))
    }

    /// Insert many rows in one transaction (ingesting a run directory).
    pub fn insert_all(
        &mut self,
        measurements: &[MeasurementRow],
        trials: &[TrialRow],
    ) -> Result<(usize, usize), StoreError> {
        self.db.tx(|tx| {
            let mut nm = 0;
            for m in measurements {
                nm += usize::from(insert_measurement(tx, m)?);
            }
            let mut nt = 0;
            for t in trials {
                nt += usize::from(insert_trial(tx, t)?);
            }
            Ok((nm, nt))
        })
    }

    /// The newest cacheable measurement under `cache_key` measured after `not_before_unix_s`
    /// (now minus the TTL), not flushed, from a run not deleted.
    pub fn cache_lookup(
        &mut self,
        cache_key: &str,
        not_before_unix_s: f64,
    ) -> Result<Option<MeasurementRow>, StoreError> {
        let sql = format!(
            "SELECT {MEASUREMENT_COLUMNS} FROM measurements m JOIN runs r ON r.run_id = m.run_id WHERE m.cache_key = ?1 AND m.cacheable = 1 AND m.error IS NULL AND m.flushed_unix_s IS NULL AND m.started_unix_s >= ?2 AND r.deleted_unix_s IS NULL ORDER BY m.started_unix_s DESC, m.run_id LIMIT 1"
        );
        self.db.tx(|tx| {
            let rows = tx.query(&sql, &[cache_key.into(), not_before_unix_s.into()])?;
            match rows.first() {
                Some(r) => Ok(Some(measurement_from_row(tx, r)?)),
                None => Ok(None),
            }
        })
    }

    /// The newest successful measurement of the same combo, target and machine in the newest
    /// run labelled `label` (e.g. `main`): a stored baseline for regression gating.
    pub fn stored_measurement(
        &mut self,
        label: &str,
        cache_key: &str,
        exclude_run: &str,
    ) -> Result<Option<MeasurementRow>, StoreError> {
        let sql = format!(
            "SELECT {MEASUREMENT_COLUMNS} FROM measurements m JOIN runs r ON r.run_id = m.run_id WHERE r.label = ?1 AND m.cache_key = ?2 AND m.run_id <> ?3 AND m.error IS NULL AND r.deleted_unix_s IS NULL ORDER BY r.started_unix_s DESC, m.started_unix_s DESC LIMIT 1"
        );
        self.db.tx(|tx| {
            let rows = tx.query(&sql, &[label.into(), cache_key.into(), exclude_run.into()])?;
            match rows.first() {
                Some(r) => Ok(Some(measurement_from_row(tx, r)?)),
                None => Ok(None),
            }
        })
    }

    /// What the cache holds at `now`.
    pub fn cache_stats(&mut self, now_unix_s: f64) -> Result<CacheStats, StoreError> {
        let cutoff = now_unix_s - CACHE_TTL_S;
        self.db.tx(|tx| {
            let count = |tx: &mut db::Tx<'_>, cond: &str, params: &[Param]| -> Result<i64, StoreError> {
                let sql = format!(
                    "SELECT COUNT(*) FROM measurements m JOIN runs r ON r.run_id = m.run_id WHERE {cond}"
                );
                tx.query(&sql, params)?
                    .first()
                    .map_or(Ok(0), |r| r.int(0))
            };
            let live = "m.cacheable = 1 AND m.error IS NULL AND r.deleted_unix_s IS NULL";
            let valid = count(
                tx,
                &format!("{live} AND m.flushed_unix_s IS NULL AND m.started_unix_s >= ?1"),
                &[cutoff.into()],
            )?;
            let expired = count(
                tx,
                &format!("{live} AND m.flushed_unix_s IS NULL AND m.started_unix_s < ?1"),
                &[cutoff.into()],
            )?;
            let flushed = count(tx, &format!("{live} AND m.flushed_unix_s IS NOT NULL"), &[])?;
            let hits = count(tx, "m.cache_from_run IS NOT NULL", &[])?;
            let misses = count(tx, "m.cacheable = 1", &[])?;
            let valid_by_engine = tx
                .query(
                    &format!(
                        "SELECT m.engine, COUNT(*) FROM measurements m JOIN runs r ON r.run_id = m.run_id WHERE {live} AND m.flushed_unix_s IS NULL AND m.started_unix_s >= ?1 GROUP BY m.engine ORDER BY m.engine"
                    ),
                    &[cutoff.into()],
                )?
                .iter()
                .map(|r| Ok((r.text(0)?, r.int(1)?)))
                .collect::<Result<_, StoreError>>()?;
            Ok(CacheStats {
                valid,
                expired,
                flushed,
                hits,
                misses,
                valid_by_engine,
            })
        })
    }

    /// Flush the cache entries matching `filter`; returns how many were flushed. The
    /// measurements stay in the history; they only stop answering lookups.
    pub fn cache_flush(
        &mut self,
        filter: &CacheFilter,
        now_unix_s: f64,
    ) -> Result<u64, StoreError> {
        let mut conds = vec![
            "cacheable = 1".to_string(),
            "flushed_unix_s IS NULL".to_string(),
        ];
        let mut params: Vec<Param> = vec![now_unix_s.into()];
        for (col, val) in [
            ("engine", &filter.engine),
            ("model", &filter.model),
            ("hardware", &filter.hardware),
            ("spec", &filter.spec),
        ] {
            if let Some(v) = val {
                params.push(v.into());
                conds.push(format!("{col} = ?{}", params.len()));
            }
        }
        if let Some(before) = filter.before_unix_s {
            params.push(before.into());
            conds.push(format!("started_unix_s < ?{}", params.len()));
        }
        let sql = format!(
            "UPDATE measurements SET flushed_unix_s = ?1 WHERE {}",
            conds.join(" AND ")
        );
        self.db.tx(|tx| tx.execute(&sql, &params))
    }

    /// Ask a run to stop: its trials check this before measuring.
    pub fn request_cancel(&mut self, run_id: &str) -> Result<(), StoreError> {
        self.require_run(run_id)?;
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE runs SET cancel_requested_unix_s = ?2 WHERE run_id = ?1 AND cancel_requested_unix_s IS NULL",
                &[run_id.into(), now_unix().into()],
            )?;
            Ok(())
        })
    }

    /// When cancellation of `run_id` was requested, if it was.
    pub fn cancel_requested(&mut self, run_id: &str) -> Result<Option<f64>, StoreError> {
        self.db.tx(|tx| {
            Ok(tx
                .query(
                    "SELECT cancel_requested_unix_s FROM runs WHERE run_id = ?1",
                    &[run_id.into()],
                )?
                .first()
                .map(|r| r.opt_real(0))
                .transpose()?
                .flatten())
        })
    }

    /// Mark a run finished with its final status (the end-of-run report does this).
    pub fn finish_run(&mut self, run_id: &str, passed: bool) -> Result<(), StoreError> {
        self.finish_run_status(run_id, if passed { "passed" } else { "failed" })
    }

    /// Record a run's verdict as its report found it: `passed`, `failed`, or `unfinished`
    /// (trials without an outcome: the run keeps no finish time and lists as unfinished).
    pub fn finish_run_status(&mut self, run_id: &str, status: &str) -> Result<(), StoreError> {
        let finished = status != "unfinished";
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE runs SET finished_unix_s = ?2, updated_unix_s = ?3, final_status = ?4 WHERE run_id = ?1",
                &[
                    run_id.into(),
                    finished.then(now_unix).into(),
                    now_unix().into(),
                    status.into(),
                ],
            )?;
            Ok(())
        })
    }

    /// Soft-delete a run: hidden from listings and the cache, kept in the database.
    pub fn delete_run(&mut self, run_id: &str) -> Result<(), StoreError> {
        self.require_run(run_id)?;
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE runs SET deleted_unix_s = ?2 WHERE run_id = ?1 AND deleted_unix_s IS NULL",
                &[run_id.into(), now_unix().into()],
            )?;
            Ok(())
        })
    }

    fn require_run(&mut self, run_id: &str) -> Result<(), StoreError> {
        if self.run(run_id)?.is_some() {
            return Ok(());
        }
        let ids: Vec<String> = self
            .list_runs(&RunFilter {
                include_deleted: true,
                ..RunFilter::default()
            })?
            .into_iter()
            .map(|r| r.run.run_id)
            .collect();
        let near: Vec<&String> = ids
            .iter()
            .filter(|id| id.starts_with(run_id) || id.contains(run_id))
            .take(5)
            .collect();
        Err(StoreError::UnknownRun {
            id: run_id.to_string(),
            hint: if near.is_empty() {
                format!(
                    " in {} (`l1 runs list` shows the {} runs it holds)",
                    self.location.display(),
                    ids.len()
                )
            } else {
                format!(
                    "; did you mean {}?",
                    near.iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        })
    }

    /// One run, deleted or not.
    pub fn run(&mut self, run_id: &str) -> Result<Option<RunRow>, StoreError> {
        let rows = self.runs_where("r.run_id = ?1", vec![run_id.into()])?;
        Ok(rows.into_iter().next())
    }

    /// Runs matching `filter`, newest first.
    pub fn list_runs(&mut self, filter: &RunFilter) -> Result<Vec<RunRow>, StoreError> {
        let mut conds = vec!["1 = 1".to_string()];
        let mut params: Vec<Param> = Vec::new();
        if !filter.include_deleted {
            conds.push("r.deleted_unix_s IS NULL".into());
        }
        if let Some(since) = filter.since_unix_s {
            params.push(since.into());
            conds.push(format!("r.started_unix_s >= ?{}", params.len()));
        }
        if let Some(label) = &filter.label {
            params.push(label.into());
            conds.push(format!("r.label = ?{}", params.len()));
        }
        if let Some(spec) = &filter.spec {
            params.push(spec.into());
            let n = params.len();
            conds.push(format!(
                "(EXISTS (SELECT 1 FROM trials t WHERE t.run_id = r.run_id AND t.spec = ?{n}) OR EXISTS (SELECT 1 FROM run_specs s WHERE s.run_id = r.run_id AND s.spec = ?{n}))"
            ));
        }
        if let Some(engine) = &filter.engine {
            params.push(engine.into());
            conds.push(format!(
                "EXISTS (SELECT 1 FROM trials t WHERE t.run_id = r.run_id AND t.engine = ?{})",
                params.len()
            ));
        }
        let mut rows = self.runs_where(&conds.join(" AND "), params)?;
        if let Some(status) = filter.status {
            rows.retain(|r| r.status == status);
        }
        let rows = rows.into_iter().skip(filter.offset);
        Ok(match filter.limit {
            Some(n) => rows.take(n).collect(),
            None => rows.collect(),
        })
    }

    fn runs_where(&mut self, cond: &str, params: Vec<Param>) -> Result<Vec<RunRow>, StoreError> {
        let sql = format!(
            "SELECT r.run_id, r.mode, r.label, r.started_unix_s, r.harness_version, r.hardware_fingerprint, r.hardware, r.host, r.catalog_snapshot, r.updated_unix_s, r.finished_unix_s, r.final_status, r.cancel_requested_unix_s, r.deleted_unix_s, \
             (SELECT COUNT(*) FROM trials t WHERE t.run_id = r.run_id AND t.passed = 1), \
             (SELECT COUNT(*) FROM trials t WHERE t.run_id = r.run_id AND t.passed = 0), \
             (SELECT COUNT(*) FROM measurements m WHERE m.run_id = r.run_id), \
             (SELECT COUNT(*) FROM measurements m WHERE m.run_id = r.run_id AND m.cache_from_run IS NOT NULL) \
             FROM runs r WHERE {cond} ORDER BY r.started_unix_s DESC, r.run_id DESC"
        );
        self.db.tx(|tx| {
            let rows = tx.query(&sql, &params)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let run_id = r.text(0)?;
                let specs = tx
                    .query(
                        "SELECT DISTINCT spec FROM trials WHERE run_id = ?1 UNION SELECT spec FROM run_specs WHERE run_id = ?1 ORDER BY 1",
                        &[(&run_id).into()],
                    )?
                    .iter()
                    .map(|x| x.text(0))
                    .collect::<Result<_, _>>()?;
                let engines = tx
                    .query(
                        "SELECT DISTINCT engine FROM trials WHERE run_id = ?1 ORDER BY 1",
                        &[(&run_id).into()],
                    )?
                    .iter()
                    .map(|x| x.text(0))
                    .collect::<Result<_, _>>()?;
                let cancel = r.opt_real(12)?;
                let status = match (r.opt_text(11)?.as_deref(), cancel) {
                    (_, Some(_)) => RunStatus::Cancelled,
                    (Some("passed"), None) => RunStatus::Passed,
                    (Some("failed"), None) => RunStatus::Failed,
                    _ => RunStatus::Unfinished,
                };
                out.push(RunRow {
                    run: NewRun {
                        run_id,
                        mode: r.text(1)?,
                        label: r.opt_text(2)?,
                        started_unix_s: r.real(3)?,
                        harness_version: r.text(4)?,
                        hardware_fingerprint: r.text(5)?,
                        hardware: r.text(6)?,
                        host: r.text(7)?,
                        catalog_snapshot: r.text(8)?,
                    },
                    status,
                    updated_unix_s: r.real(9)?,
                    finished_unix_s: r.opt_real(10)?,
                    cancel_requested_unix_s: cancel,
                    deleted_unix_s: r.opt_real(13)?,
                    trials_passed: r.int(14)?,
                    trials_failed: r.int(15)?,
                    measurements: r.int(16)?,
                    cache_hits: r.int(17)?,
                    specs,
                    engines,
                });
            }
            Ok(out)
        })
    }

    /// Every measurement of a run (with reps), by key.
    pub fn measurements(&mut self, run_id: &str) -> Result<Vec<MeasurementRow>, StoreError> {
        let sql = format!(
            "SELECT {MEASUREMENT_COLUMNS} FROM measurements m WHERE m.run_id = ?1 ORDER BY m.key"
        );
        self.db.tx(|tx| {
            let rows = tx.query(&sql, &[run_id.into()])?;
            rows.iter().map(|r| measurement_from_row(tx, r)).collect()
        })
    }

    /// Every trial of a run, by name.
    pub fn trials(&mut self, run_id: &str) -> Result<Vec<TrialRow>, StoreError> {
        let sql = format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE run_id = ?1 ORDER BY name");
        self.db.tx(|tx| {
            tx.query(&sql, &[run_id.into()])?
                .iter()
                .map(|r| {
                    Ok(TrialRow {
                        run_id: r.text(0)?,
                        name: r.text(1)?,
                        spec: r.text(2)?,
                        kind: r.text(3)?,
                        engine: r.text(4)?,
                        target_version: r.text(5)?,
                        model: r.text(6)?,
                        hardware: r.text(7)?,
                        workload: r.text(8)?,
                        passed: r.flag(9)?,
                        message: r.text(10)?,
                        measurement_key: r.opt_text(11)?,
                        simulated: r.flag(12)?,
                        duration_s: r.real(13)?,
                        cache_hit: r.flag(14)?,
                        record: r.text(15)?,
                    })
                })
                .collect()
        })
    }

    /// Integrity counts for tests and `l1 store check`: measurements whose rep count differs
    /// from their stored per-rep rows (a half-written measurement would show here).
    pub fn incomplete_measurements(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        self.db.tx(|tx| {
            tx.query(
                "SELECT m.run_id, m.key FROM measurements m WHERE m.reps <> (SELECT COUNT(DISTINCT rm.rep) FROM rep_metrics rm WHERE rm.run_id = m.run_id AND rm.key = m.key) ORDER BY 1, 2",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?)))
            .collect()
        })
    }

    /// Create a tune session, or return the one already stored under its id (the stored one
    /// wins: a re-run resumes it).
    pub fn begin_tune_session(
        &mut self,
        row: &TuneSessionRow,
    ) -> Result<TuneSessionRow, StoreError> {
        self.db.tx(|tx| {
            tx.execute(
                "INSERT INTO tune_sessions (session_id, run_id, spec, target, status, objective, budget, bayesian_state, best_trial, created_unix_s, updated_unix_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (session_id) DO NOTHING",
                &[
                    (&row.session_id).into(),
                    row.run_id.clone().into(),
                    (&row.spec).into(),
                    (&row.target).into(),
                    (&row.status).into(),
                    (&row.objective).into(),
                    (&row.budget).into(),
                    (&row.bayesian_state).into(),
                    Param::Int(row.best_trial),
                    row.created_unix_s.into(),
                    row.updated_unix_s.into(),
                ],
            )?;
            tune_session_in(tx, &row.session_id)?.ok_or_else(|| {
                StoreError::Corrupt(format!("tune session {} vanished", row.session_id))
            })
        })
    }

    /// Persist a session after a trial: its new state and best-trial pointer, and the trial's
    /// row, in one transaction (a writer killed at any moment leaves both or neither). A session
    /// already `cancelled` keeps that status.
    pub fn record_tune_trial(
        &mut self,
        session_id: &str,
        bayesian_state: &str,
        best_trial: Option<i64>,
        trial: &TuneTrialRow,
    ) -> Result<(), StoreError> {
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE tune_sessions SET bayesian_state = ?2, best_trial = ?3, updated_unix_s = ?4 WHERE session_id = ?1",
                &[
                    session_id.into(),
                    bayesian_state.into(),
                    Param::Int(best_trial),
                    now_unix().into(),
                ],
            )?;
            tx.execute(
                "INSERT INTO tune_trials (session_id, n, combo, measurement_key, outcome, value, created_unix_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (session_id, n) DO NOTHING",
                &[
                    session_id.into(),
                    trial.n.into(),
                    (&trial.combo).into(),
                    trial.measurement_key.clone().into(),
                    (&trial.outcome).into(),
                    Param::Real(trial.value),
                    trial.created_unix_s.into(),
                ],
            )?;
            Ok(())
        })
    }

    /// Set a session's status (`running`, `finished`, `cancelled`, `failed`), optionally with
    /// its final state. `running` and `finished` never overwrite `cancelled`.
    pub fn set_tune_status(
        &mut self,
        session_id: &str,
        status: &str,
        bayesian_state: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.db.tx(|tx| {
            let keep_cancelled = if status == "cancelled" {
                ""
            } else {
                " AND status <> 'cancelled'"
            };
            let n = match bayesian_state {
                Some(state) => tx.execute(
                    &format!("UPDATE tune_sessions SET status = ?2, bayesian_state = ?3, updated_unix_s = ?4 WHERE session_id = ?1{keep_cancelled}"),
                    &[session_id.into(), status.into(), state.into(), now_unix().into()],
                )?,
                None => tx.execute(
                    &format!("UPDATE tune_sessions SET status = ?2, updated_unix_s = ?3 WHERE session_id = ?1{keep_cancelled}"),
                    &[session_id.into(), status.into(), now_unix().into()],
                )?,
            };
            Ok(n > 0)
        })
    }

    /// Reopen a session for `l1 tune resume`: status `running` (even when cancelled) and the
    /// given state (with its cancelled flag cleared by the caller).
    pub fn reopen_tune_session(
        &mut self,
        session_id: &str,
        bayesian_state: &str,
    ) -> Result<bool, StoreError> {
        self.db.tx(|tx| {
            let n = tx.execute(
                "UPDATE tune_sessions SET status = 'running', bayesian_state = ?2, updated_unix_s = ?3 WHERE session_id = ?1",
                &[session_id.into(), bayesian_state.into(), now_unix().into()],
            )?;
            Ok(n > 0)
        })
    }

    /// One tune session.
    pub fn tune_session(&mut self, session_id: &str) -> Result<Option<TuneSessionRow>, StoreError> {
        self.db.tx(|tx| tune_session_in(tx, session_id))
    }

    /// Every tune session, newest first.
    pub fn tune_sessions(&mut self) -> Result<Vec<TuneSessionRow>, StoreError> {
        self.db.tx(|tx| {
            let ids = tx.query(
                "SELECT session_id FROM tune_sessions ORDER BY created_unix_s DESC, session_id",
                &[],
            )?;
            let mut out = Vec::new();
            for r in &ids {
                if let Some(s) = tune_session_in(tx, &r.text(0)?)? {
                    out.push(s);
                }
            }
            Ok(out)
        })
    }

    /// A session's trials, in order.
    pub fn tune_trials(&mut self, session_id: &str) -> Result<Vec<TuneTrialRow>, StoreError> {
        self.db.tx(|tx| {
            tx.query(
                "SELECT session_id, n, combo, measurement_key, outcome, value, created_unix_s FROM tune_trials WHERE session_id = ?1 ORDER BY n",
                &[session_id.into()],
            )?
            .iter()
            .map(|r| {
                Ok(TuneTrialRow {
                    session_id: r.text(0)?,
                    n: r.int(1)?,
                    combo: r.text(2)?,
                    measurement_key: r.opt_text(3)?,
                    outcome: r.text(4)?,
                    value: r.opt_real(5)?,
                    created_unix_s: r.real(6)?,
                })
            })
            .collect()
        })
    }

    /// Successful measurements of `spec` for one target (any run not deleted, newest run
    /// first): what a tune spec's `seed_from` reads.
    pub fn spec_measurements(
        &mut self,
        spec: &str,
        engine: &str,
        target_version: &str,
        model: &str,
        hardware: &str,
        workload: &str,
    ) -> Result<Vec<MeasurementRow>, StoreError> {
        let sql = format!(
            "SELECT {MEASUREMENT_COLUMNS} FROM measurements m JOIN runs r ON r.run_id = m.run_id WHERE m.spec = ?1 AND m.engine = ?2 AND m.target_version = ?3 AND m.model = ?4 AND m.hardware = ?5 AND m.workload = ?6 AND m.error IS NULL AND r.deleted_unix_s IS NULL ORDER BY r.started_unix_s DESC, m.key"
        );
        self.db.tx(|tx| {
            let rows = tx.query(
                &sql,
                &[
                    spec.into(),
                    engine.into(),
                    target_version.into(),
                    model.into(),
                    hardware.into(),
                    workload.into(),
                ],
            )?;
            rows.iter().map(|r| measurement_from_row(tx, r)).collect()
        })
    }

    /// Run arbitrary read-only SQL returning rows (tests and diagnostics).
    pub fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        self.db.tx(|tx| tx.query(sql, params))
    }

    /// Run a statement in its own transaction (tests and maintenance).
    pub fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        self.db.tx(|tx| tx.execute(sql, params))
    }

    /// Run `f` inside one transaction (tests: hold a transaction open).
    pub fn transaction<T>(
        &mut self,
        f: impl FnOnce(&mut db::Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.db.tx(f)
    }
}

pub use db::Tx;

fn insert_measurement(tx: &mut db::Tx<'_>, m: &MeasurementRow) -> Result<bool, StoreError> {
    let parts = m.parts.clone().unwrap_or_default();
    let has_parts = m.parts.is_some();
    let opt = |s: &str| -> Param {
        if has_parts {
            s.into()
        } else {
            Param::Text(None)
        }
    };
    let (from_run, from_key) = match &m.cache_from {
        Some((r, k)) => (Some(r.clone()), Some(k.clone())),
        None => (None, None),
    };
    let inserted = tx.execute(
        "INSERT INTO measurements (run_id, key, spec, engine, target_version, engine_version, model, hardware, workload, combo, combo_hash, catalog_snapshot, catalog_version, model_hash, hardware_fingerprint, workload_fingerprint, plan_hash, cache_key, simulated, started_unix_s, duration_s, reps, error, cache_from_run, cache_from_key, cacheable, record, ingested_unix_s) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28) ON CONFLICT (run_id, key) DO NOTHING",
        &[
            (&m.run_id).into(),
            (&m.key).into(),
            (&m.spec).into(),
            (&m.engine).into(),
            (&m.target_version).into(),
            m.engine_version.clone().into(),
            (&m.model).into(),
            (&m.hardware).into(),
            (&m.workload).into(),
            (&m.combo).into(),
            (&m.combo_hash).into(),
            (&m.catalog_snapshot).into(),
            Param::Int(has_parts.then_some(parts.catalog_version)),
            opt(&parts.model_hash),
            opt(&parts.hardware_fingerprint),
            opt(&parts.workload_fingerprint),
            opt(&parts.plan_hash),
            opt(&parts.cache_key),
            m.simulated.into(),
            m.started_unix_s.into(),
            m.duration_s.into(),
            (m.reps.len() as i64).into(),
            m.error.clone().into(),
            from_run.into(),
            from_key.into(),
            (m.cacheable && m.error.is_none() && m.cache_from.is_none() && has_parts).into(),
            (&m.record).into(),
            now_unix().into(),
        ],
    )?;
    if inserted == 0 {
        return Ok(false);
    }
    // One statement per chunk of rows rather than per value: on PostgreSQL every statement is a
    // round trip (15 reps × 12 metrics was 180 of them).
    let rows: Vec<(i64, &String, f64)> = m
        .reps
        .iter()
        .enumerate()
        .flat_map(|(i, rep)| rep.iter().map(move |(k, v)| (i as i64, k, *v)))
        .filter(|(_, _, v)| v.is_finite())
        .collect();
    for chunk in rows.chunks(REP_ROWS_PER_INSERT) {
        let mut sql =
            String::from("INSERT INTO rep_metrics (run_id, key, rep, metric, value) VALUES ");
        let mut params: Vec<Param> = Vec::with_capacity(chunk.len() * 5);
        for (j, (rep, metric, value)) in chunk.iter().enumerate() {
            let b = j * 5;
            if j > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(?{}, ?{}, ?{}, ?{}, ?{})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            ));
            params.extend([
                (&m.run_id).into(),
                (&m.key).into(),
                (*rep).into(),
                (*metric).into(),
                (*value).into(),
            ]);
        }
        tx.execute(&sql, &params)?;
    }
    Ok(true)
}

/// Rep-metric rows per `INSERT` statement (5 parameters each: well under SQLite's and
/// PostgreSQL's limits on bound parameters).
const REP_ROWS_PER_INSERT: usize = 200;

fn insert_trial(tx: &mut db::Tx<'_>, t: &TrialRow) -> Result<bool, StoreError> {
    let n = tx.execute(
        &format!(
            "INSERT INTO trials ({TRIAL_COLUMNS}, ingested_unix_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) ON CONFLICT (run_id, name) DO NOTHING"
        ),
        &[
            (&t.run_id).into(),
            (&t.name).into(),
            (&t.spec).into(),
            (&t.kind).into(),
            (&t.engine).into(),
            (&t.target_version).into(),
            (&t.model).into(),
            (&t.hardware).into(),
            (&t.workload).into(),
            t.passed.into(),
            (&t.message).into(),
            t.measurement_key.clone().into(),
            t.simulated.into(),
            t.duration_s.into(),
            t.cache_hit.into(),
            (&t.record).into(),
            now_unix().into(),
        ],
    )?;
    // The run's last activity (what `l1 runs list` shows for a run without a verdict).
    tx.execute(
        "UPDATE runs SET updated_unix_s = ?2 WHERE run_id = ?1 AND updated_unix_s < ?2",
        &[(&t.run_id).into(), now_unix().into()],
    )?;
    Ok(n > 0)
}

fn tune_session_in(
    tx: &mut db::Tx<'_>,
    session_id: &str,
) -> Result<Option<TuneSessionRow>, StoreError> {
    let rows = tx.query(
        "SELECT session_id, run_id, spec, target, status, objective, budget, bayesian_state, best_trial, created_unix_s, updated_unix_s FROM tune_sessions WHERE session_id = ?1",
        &[session_id.into()],
    )?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(TuneSessionRow {
        session_id: r.text(0)?,
        run_id: r.opt_text(1)?,
        spec: r.text(2)?,
        target: r.text(3)?,
        status: r.text(4)?,
        objective: r.text(5)?,
        budget: r.text(6)?,
        bayesian_state: r.text(7)?,
        best_trial: r.opt_int(8)?,
        created_unix_s: r.real(9)?,
        updated_unix_s: r.real(10)?,
    }))
}

fn measurement_from_row(tx: &mut db::Tx<'_>, r: &Row) -> Result<MeasurementRow, StoreError> {
    let run_id = r.text(0)?;
    let key = r.text(1)?;
    let reps_rows = tx.query(
        "SELECT rep, metric, value FROM rep_metrics WHERE run_id = ?1 AND key = ?2 ORDER BY rep, metric",
        &[(&run_id).into(), (&key).into()],
    )?;
    let mut reps: Vec<BTreeMap<String, f64>> = Vec::new();
    for x in &reps_rows {
        let i = usize::try_from(x.int(0)?)
            .map_err(|_| StoreError::Corrupt(format!("negative rep index in {run_id}/{key}")))?;
        while reps.len() <= i {
            reps.push(BTreeMap::new());
        }
        reps[i].insert(x.text(1)?, x.real(2)?);
    }
    let parts = match r.opt_text(17)? {
        Some(cache_key) => Some(KeyParts {
            catalog_version: r.opt_int(12)?.unwrap_or(0),
            model_hash: r.opt_text(13)?.unwrap_or_default(),
            hardware_fingerprint: r.opt_text(14)?.unwrap_or_default(),
            workload_fingerprint: r.opt_text(15)?.unwrap_or_default(),
            plan_hash: r.opt_text(16)?.unwrap_or_default(),
            cache_key,
        }),
        None => None,
    };
    let cache_from = match (r.opt_text(22)?, r.opt_text(23)?) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    };
    Ok(MeasurementRow {
        run_id,
        key,
        spec: r.text(2)?,
        engine: r.text(3)?,
        target_version: r.text(4)?,
        engine_version: r.opt_text(5)?,
        model: r.text(6)?,
        hardware: r.text(7)?,
        workload: r.text(8)?,
        combo: r.text(9)?,
        combo_hash: r.text(10)?,
        catalog_snapshot: r.text(11)?,
        parts,
        simulated: r.flag(18)?,
        started_unix_s: r.real(19)?,
        duration_s: r.real(20)?,
        error: r.opt_text(21)?,
        cache_from,
        cacheable: r.flag(24)?,
        reps,
        record: r.text(25)?,
    })
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
