//! One small SQL surface over SQLite (rusqlite) and PostgreSQL (postgres): statements are written
//! once with `?1`-style placeholders, parameters are [`Param`]s, rows come back as [`Row`]s of
//! [`Cell`]s. Every statement runs inside a transaction ([`Db::tx`]); SQLite's are `IMMEDIATE`,
//! so concurrent writers queue on the database lock (with a busy timeout) instead of failing.

use std::path::Path;
use std::time::Duration;

use crate::StoreError;

/// A statement parameter. `None` binds SQL `NULL` of the column's type.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    Int(Option<i64>),
    Real(Option<f64>),
    Text(Option<String>),
}

impl From<i64> for Param {
    fn from(v: i64) -> Self {
        Param::Int(Some(v))
    }
}
impl From<u32> for Param {
    fn from(v: u32) -> Self {
        Param::Int(Some(i64::from(v)))
    }
}
impl From<bool> for Param {
    fn from(v: bool) -> Self {
        Param::Int(Some(i64::from(v)))
    }
}
impl From<f64> for Param {
    fn from(v: f64) -> Self {
        Param::Real(Some(v))
    }
}
impl From<Option<f64>> for Param {
    fn from(v: Option<f64>) -> Self {
        Param::Real(v)
    }
}
impl From<&str> for Param {
    fn from(v: &str) -> Self {
        Param::Text(Some(v.to_string()))
    }
}
impl From<&String> for Param {
    fn from(v: &String) -> Self {
        Param::Text(Some(v.clone()))
    }
}
impl From<String> for Param {
    fn from(v: String) -> Self {
        Param::Text(Some(v))
    }
}
impl From<Option<String>> for Param {
    fn from(v: Option<String>) -> Self {
        Param::Text(v)
    }
}
impl From<Option<&str>> for Param {
    fn from(v: Option<&str>) -> Self {
        Param::Text(v.map(str::to_string))
    }
}

/// A value read back.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

/// One result row.
#[derive(Clone, Debug)]
pub struct Row(pub Vec<Cell>);

impl Row {
    fn cell(&self, i: usize) -> Result<&Cell, StoreError> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::Corrupt(format!("row has no column {i}")))
    }

    pub fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL, expected a number")))
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(*v)),
            other => Err(StoreError::Corrupt(format!(
                "column {i} is {other:?}, expected an integer"
            ))),
        }
    }

    pub fn real(&self, i: usize) -> Result<f64, StoreError> {
        self.opt_real(i)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL, expected a number")))
    }

    pub fn opt_real(&self, i: usize) -> Result<Option<f64>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Real(v) => Ok(Some(*v)),
            Cell::Int(v) => Ok(Some(*v as f64)),
            other => Err(StoreError::Corrupt(format!(
                "column {i} is {other:?}, expected a number"
            ))),
        }
    }

    pub fn text(&self, i: usize) -> Result<String, StoreError> {
        self.opt_text(i)?
            .ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL, expected text")))
    }

    pub fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(v) => Ok(Some(v.clone())),
            other => Err(StoreError::Corrupt(format!(
                "column {i} is {other:?}, expected text"
            ))),
        }
    }

    pub fn flag(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.int(i)? != 0)
    }
}

/// An open connection.
pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::Client>),
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Db::Sqlite(_) => "Db::Sqlite",
            Db::Postgres(_) => "Db::Postgres",
        })
    }
}

/// How long a writer waits for another process's write lock (SQLite) before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

impl Db {
    pub fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
                location: path.display().to_string(),
                message: format!("cannot create {}: {e}", dir.display()),
            })?;
        }
        let open_err = |e: rusqlite::Error| StoreError::Open {
            location: path.display().to_string(),
            message: e.to_string(),
        };
        let conn = rusqlite::Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // WAL: readers never block the writer; FULL: a committed result survives a crash of the
        // machine, not only of the process. The first statement that reads the file is here, so
        // a file that is not a database fails now, naming the file.
        // Switching a new file to WAL while other processes open it too (nextest starts a run's
        // trials at once, each opening the store) can answer "database is locked" without
        // waiting on the busy handler: retried here for as long as a writer would wait.
        let t0 = std::time::Instant::now();
        loop {
            match conn.execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
            ) {
                Ok(()) => break,
                Err(e)
                    if matches!(
                        e.sqlite_error_code(),
                        Some(
                            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                        )
                    ) && t0.elapsed() < BUSY_TIMEOUT =>
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(sqlite_open_error(path, e)),
            }
        }
        Ok(Db::Sqlite(conn))
    }

    pub fn open_postgres(url: &str) -> Result<Self, StoreError> {
        let client =
            postgres::Client::connect(url, postgres::NoTls).map_err(|e| StoreError::Open {
                location: redact(url),
                message: pg_message(&e),
            })?;
        Ok(Db::Postgres(Box::new(client)))
    }

    /// Run `f` in one transaction, committed when it returns `Ok`, rolled back otherwise (and
    /// when the process dies half-way: nothing of it is ever visible).
    pub fn tx<T>(
        &mut self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match self {
            Db::Sqlite(conn) => {
                let t = conn
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(|e| sqlite_err("begin a transaction", e))?;
                let mut tx = Tx::Sqlite(t);
                let out = f(&mut tx)?;
                match tx {
                    Tx::Sqlite(t) => t.commit().map_err(|e| sqlite_err("commit", e))?,
                    Tx::Postgres(_) => unreachable!("a SQLite transaction stays one"),
                }
                Ok(out)
            }
            Db::Postgres(client) => {
                let t = client
                    .transaction()
                    .map_err(|e| pg_err("begin a transaction", e))?;
                let mut tx = Tx::Postgres(t);
                let out = f(&mut tx)?;
                match tx {
                    Tx::Postgres(t) => t.commit().map_err(|e| pg_err("commit", e))?,
                    Tx::Sqlite(_) => unreachable!("a PostgreSQL transaction stays one"),
                }
                Ok(out)
            }
        }
    }
}

/// An open transaction.
pub enum Tx<'a> {
    Sqlite(rusqlite::Transaction<'a>),
    Postgres(postgres::Transaction<'a>),
}

impl Tx<'_> {
    pub fn is_postgres(&self) -> bool {
        matches!(self, Tx::Postgres(_))
    }

    /// Run statements without parameters (migrations).
    pub fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(t) => t
                .execute_batch(sql)
                .map_err(|e| sqlite_err("run a batch", e)),
            Tx::Postgres(t) => t.batch_execute(sql).map_err(|e| pg_err("run a batch", e)),
        }
    }

    /// Run one statement; returns the number of rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Param]) -> Result<u64, StoreError> {
        match self {
            Tx::Sqlite(t) => {
                let mut stmt = t
                    .prepare_cached(sql)
                    .map_err(|e| sqlite_err(first_words(sql), e))?;
                stmt.execute(rusqlite::params_from_iter(params.iter().map(sqlite_value)))
                    .map(|n| n as u64)
                    .map_err(|e| sqlite_err(first_words(sql), e))
            }
            Tx::Postgres(t) => {
                let boxed = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    boxed.iter().map(|b| b.as_ref()).collect();
                t.execute(dollar_placeholders(sql).as_str(), &refs)
                    .map_err(|e| pg_err(first_words(sql), e))
            }
        }
    }

    /// Run a query and read every row.
    pub fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>, StoreError> {
        match self {
            Tx::Sqlite(t) => {
                let mut stmt = t
                    .prepare_cached(sql)
                    .map_err(|e| sqlite_err(first_words(sql), e))?;
                let n = stmt.column_count();
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(params.iter().map(sqlite_value)))
                    .map_err(|e| sqlite_err(first_words(sql), e))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(|e| sqlite_err(first_words(sql), e))? {
                    let mut cells = Vec::with_capacity(n);
                    for i in 0..n {
                        use rusqlite::types::ValueRef;
                        let v = r.get_ref(i).map_err(|e| sqlite_err(first_words(sql), e))?;
                        cells.push(match v {
                            ValueRef::Null => Cell::Null,
                            ValueRef::Integer(x) => Cell::Int(x),
                            ValueRef::Real(x) => Cell::Real(x),
                            ValueRef::Text(b) | ValueRef::Blob(b) => {
                                Cell::Text(String::from_utf8_lossy(b).into_owned())
                            }
                        });
                    }
                    out.push(Row(cells));
                }
                Ok(out)
            }
            Tx::Postgres(t) => {
                let boxed = pg_params(params);
                let refs: Vec<&(dyn postgres::types::ToSql + Sync)> =
                    boxed.iter().map(|b| b.as_ref()).collect();
                let rows = t
                    .query(dollar_placeholders(sql).as_str(), &refs)
                    .map_err(|e| pg_err(first_words(sql), e))?;
                rows.iter().map(pg_row).collect()
            }
        }
    }
}

fn sqlite_value(p: &Param) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match p {
        Param::Int(Some(v)) => Value::Integer(*v),
        Param::Real(Some(v)) => Value::Real(*v),
        Param::Text(Some(v)) => Value::Text(v.clone()),
        Param::Int(None) | Param::Real(None) | Param::Text(None) => Value::Null,
    }
}

fn pg_params(params: &[Param]) -> Vec<Box<dyn postgres::types::ToSql + Sync>> {
    params
        .iter()
        .map(|p| -> Box<dyn postgres::types::ToSql + Sync> {
            match p {
                Param::Int(v) => Box::new(*v),
                Param::Real(v) => Box::new(*v),
                Param::Text(v) => Box::new(v.clone()),
            }
        })
        .collect()
}

fn pg_row(r: &postgres::Row) -> Result<Row, StoreError> {
    use postgres::types::Type;
    let mut cells = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let bad = |e: postgres::Error| StoreError::Corrupt(format!("column {}: {e}", col.name()));
        let ty = col.type_();
        let cell = if *ty == Type::INT8 {
            r.try_get::<_, Option<i64>>(i).map_err(bad)?.map(Cell::Int)
        } else if *ty == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)
                .map_err(bad)?
                .map(|v| Cell::Int(i64::from(v)))
        } else if *ty == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)
                .map_err(bad)?
                .map(|v| Cell::Int(i64::from(v)))
        } else if *ty == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)
                .map_err(bad)?
                .map(|v| Cell::Int(i64::from(v)))
        } else if *ty == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i).map_err(bad)?.map(Cell::Real)
        } else if *ty == Type::FLOAT4 {
            r.try_get::<_, Option<f32>>(i)
                .map_err(bad)?
                .map(|v| Cell::Real(f64::from(v)))
        } else if *ty == Type::TEXT || *ty == Type::VARCHAR || *ty == Type::NAME {
            r.try_get::<_, Option<String>>(i)
                .map_err(bad)?
                .map(Cell::Text)
        } else {
            return Err(StoreError::Corrupt(format!(
                "column {} has type {ty}, which the store does not use (cast it in the query)",
                col.name()
            )));
        };
        cells.push(cell.unwrap_or(Cell::Null));
    }
    Ok(Row(cells))
}

/// `?1` → `$1` (the statements contain no `?` inside string literals).
fn dollar_placeholders(sql: &str) -> String {
    sql.replace('?', "$")
}

fn first_words(sql: &str) -> &str {
    let s = sql.trim_start();
    let end = s
        .char_indices()
        .filter(|(_, c)| c.is_whitespace())
        .nth(2)
        .map_or(s.len(), |(i, _)| i);
    &s[..end]
}

fn sqlite_open_error(path: &Path, e: rusqlite::Error) -> StoreError {
    let not_db = matches!(
        &e,
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase
    );
    StoreError::Open {
        location: path.display().to_string(),
        message: if not_db {
            format!(
                "{e}: the file is corrupted or is not an l1 store (move it away to start a new store; the run records under target/l1/runs/ can be ingested again with `l1 store ingest`)"
            )
        } else {
            e.to_string()
        },
    }
}

pub fn sqlite_err(what: &str, e: rusqlite::Error) -> StoreError {
    let corrupt = matches!(
        &e,
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
    );
    if corrupt {
        StoreError::Corrupt(format!("{what}: {e}"))
    } else {
        StoreError::Query {
            what: what.to_string(),
            message: e.to_string(),
        }
    }
}

pub fn pg_err(what: &str, e: postgres::Error) -> StoreError {
    StoreError::Query {
        what: what.to_string(),
        message: pg_message(&e),
    }
}

/// The server's own message (`e.to_string()` alone is often just "db error").
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

/// A connection URL without its password, for messages.
pub fn redact(url: &str) -> String {
    // postgres://user:password@host/db
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((creds, host)) = rest.split_once('@')
        && let Some((user, _)) = creds.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_redaction() {
        assert_eq!(
            dollar_placeholders("SELECT a FROM t WHERE b = ?1 AND c = ?2"),
            "SELECT a FROM t WHERE b = $1 AND c = $2"
        );
        assert_eq!(
            redact("postgres://l1:secret@127.0.0.1:5432/l1"),
            "postgres://l1:***@127.0.0.1:5432/l1"
        );
        assert_eq!(redact("postgres://127.0.0.1/l1"), "postgres://127.0.0.1/l1");
        assert_eq!(
            first_words("  INSERT INTO runs (a) VALUES"),
            "INSERT INTO runs"
        );
    }
}
