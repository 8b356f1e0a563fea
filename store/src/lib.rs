//! The l1 results store: runs, catalog snapshots, measurements with their raw per-rep metrics,
//! trials, the measurement cache, tune sessions and the kernel registry, in an embedded SQLite
//! file (the default) or a shared PostgreSQL database (`postgres://…`), with the same schema and
//! versioned migrations on both.
//!
//! The store knows nothing of specs or engines: the harness turns its records into the rows
//! defined here. Every write is one transaction, so a writer killed at any moment leaves either
//! the whole row set or nothing; inserts are idempotent (`ON CONFLICT DO NOTHING` on the natural
//! keys), so records can be ingested again without duplicates. Runners sharing one store measure
//! each cache key once at a time: [`lock`] holds a lease-based lock per key while one measures.

mod cache;
mod db;
pub mod lock;
mod migrate;
mod records;
mod rows;
mod runs;
mod tune;

use std::path::PathBuf;

pub use db::{Cell, Db, Param, Row, Tx};
pub use lock::{Claim, LockOptions, LockRequest, LockRow, LockState, MeasurementLock};
pub use migrate::schema_version;
pub use rows::{
    CACHE_TTL_S, CacheFilter, CacheStats, KeyParts, MeasurementRow, NewRun, RunFilter, RunRow,
    RunStatus, TrialRow, TuneSessionRow, TuneTrialRow,
};

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

/// Seconds since the Unix epoch.
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
