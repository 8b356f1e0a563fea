//! The versioned schema: the migrations this build knows and applying them once, under a lock,
//! when a store is opened.

use crate::{Param, Store, StoreError, now_unix};

/// The schema versions this build knows, in order: (version, name, SQLite text, PostgreSQL text).
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../migrations/sqlite/0001_init.sql"),
        include_str!("../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "measurement_locks",
        include_str!("../migrations/sqlite/0002_measurement_locks.sql"),
        include_str!("../migrations/postgres/0002_measurement_locks.sql"),
    ),
];

/// The newest schema version this build knows.
pub fn schema_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// A lock id for PostgreSQL's advisory lock around migrations (any constant; "l1 store").
const PG_MIGRATION_LOCK: i64 = 0x006c_3173_746f_7265;

impl Store {
    /// Bring the schema up to date; concurrent openers wait for each other (SQLite's write lock,
    /// PostgreSQL's advisory lock), so migrations run once.
    pub(crate) fn migrate(&mut self) -> Result<(), StoreError> {
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
}
