//! The measurement lock: when several runners (threads, processes, machines) sharing one store
//! need the measurement of the same cache key at the same time, one measures and the others
//! wait for it and then read it from the cache.
//!
//! # Design: a lease in a table, on the store's clock
//!
//! A lock is a row of `measurement_locks` (migration 2), keyed by the cache key: the holder (one
//! claim of one process, `<host>/<pid>/<nonce>-<n>`), its run, and an expiry. Taking it is one
//! transaction: a live row means "held" (the caller waits), an expired row is deleted (its holder
//! is dead or stuck) and the caller's row inserted, `ON CONFLICT DO NOTHING` deciding races on
//! PostgreSQL (SQLite's transactions are `IMMEDIATE`, so they do not race). While it measures, the
//! holder's heartbeat thread renews the expiry every quarter lease, on a connection of its own;
//! dropping the [`MeasurementLock`] deletes the row. A holder killed with SIGKILL stops renewing,
//! so its row expires one lease (`L1_LOCK_TIMEOUT_S` in the harness) after its last heartbeat and
//! the next waiter takes over: nobody waits on a dead runner longer than that. The key is any
//! text: besides cache keys, the harness locks a run's own measurement (`run:<run-id>:<key>`),
//! so that runners of one run with their own run directories take it once.
//!
//! Every time is the database's clock (`clock_timestamp()` on PostgreSQL, `julianday('now')` on
//! SQLite), never a runner's, so runners whose clocks disagree still agree on when a lease ran
//! out. The same design serves both backends; PostgreSQL's session advisory locks (released when
//! a session dies) were not used because SQLite has nothing like them, because they are
//! re-entrant within a session (two threads sharing a process's connection would both "hold"
//! one) and because a lock would pin a connection for the whole measurement.
//!
//! The protocol ([`claim`]): look the key up; on a miss take the lock; with the lock look again
//! (the previous holder may have stored it just before releasing); then measure, store and drop
//! the lock — in that order, so a waiter that sees the lock gone finds the measurement. A holder
//! whose measurement failed stores nothing cacheable, so the next waiter measures instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::db::Tx;
use crate::{Location, Store, StoreError};

/// The lease when nothing else is asked for: how long a dead holder can keep others waiting.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(60);

/// How long after its expiry a dead holder's row is swept by the next lock taken on any key
/// (a key nobody asks for again, like a killed runner's run lock, would otherwise keep its row).
pub const SWEEP_EXPIRED_AFTER: Duration = Duration::from_secs(24 * 3600);

/// How a lock is held and waited for.
#[derive(Clone, Debug, PartialEq)]
pub struct LockOptions {
    /// How long a lock outlives its holder's last heartbeat (the holder renews it four times a
    /// lease, so a live holder never loses it to a slow heartbeat or two).
    pub lease: Duration,
}

impl Default for LockOptions {
    fn default() -> Self {
        Self {
            lease: DEFAULT_LOCK_TIMEOUT,
        }
    }
}

impl LockOptions {
    pub fn new(lease: Duration) -> Self {
        Self { lease }
    }

    /// How often the holder renews its lease.
    pub fn heartbeat(&self) -> Duration {
        (self.lease / 4).max(Duration::from_millis(10))
    }

    /// How often a waiter looks again.
    pub fn poll(&self) -> Duration {
        (self.lease / 8).clamp(Duration::from_millis(20), Duration::from_secs(1))
    }
}

/// The outcome of one attempt to take a lock.
#[derive(Clone, Debug, PartialEq)]
pub enum LockState {
    /// The caller holds it now; `took_over`: the holder of an expired lease it replaced.
    Acquired { took_over: Option<String> },
    /// Someone else holds it, for `expires_in_s` more seconds unless renewed.
    Held {
        holder: String,
        run_id: String,
        expires_in_s: f64,
    },
}

/// A lock as the store lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct LockRow {
    pub cache_key: String,
    pub holder: String,
    pub run_id: String,
    pub acquired_unix_s: f64,
    pub expires_unix_s: f64,
    /// Seconds left on the lease by the store's clock (negative: expired, free to take over).
    pub expires_in_s: f64,
}

/// The database's clock, in seconds since the Unix epoch.
fn now_sql(tx: &Tx<'_>) -> &'static str {
    if tx.is_postgres() {
        "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"
    } else {
        "((julianday('now') - 2440587.5) * 86400.0)"
    }
}

impl Store {
    /// One attempt to take the lock of `cache_key` for `holder` (of run `run_id`) with a lease of
    /// `lease`; a lock whose lease ran out is taken over.
    pub fn try_lock_measurement(
        &mut self,
        cache_key: &str,
        holder: &str,
        run_id: &str,
        lease: Duration,
    ) -> Result<LockState, StoreError> {
        self.db.tx(|tx| {
            let now = now_sql(tx);
            let mut took_over = None;
            let current = tx.query(
                &format!(
                    "SELECT holder, run_id, expires_unix_s - {now} FROM measurement_locks WHERE cache_key = ?1"
                ),
                &[cache_key.into()],
            )?;
            if let Some(row) = current.first() {
                let (other, other_run, left) = (row.text(0)?, row.text(1)?, row.real(2)?);
                if left >= 0.0 {
                    return Ok(LockState::Held {
                        holder: other,
                        run_id: other_run,
                        expires_in_s: left,
                    });
                }
                // Expired: its holder stopped renewing. Only that row goes (another waiter may
                // have replaced it since we read it).
                tx.execute(
                    &format!(
                        "DELETE FROM measurement_locks WHERE cache_key = ?1 AND holder = ?2 AND expires_unix_s < {now}"
                    ),
                    &[cache_key.into(), other.as_str().into()],
                )?;
                took_over = Some(other);
            }
            let inserted = tx.execute(
                &format!(
                    "INSERT INTO measurement_locks (cache_key, holder, run_id, acquired_unix_s, expires_unix_s) VALUES (?1, ?2, ?3, {now}, {now} + ?4) ON CONFLICT (cache_key) DO NOTHING"
                ),
                &[
                    cache_key.into(),
                    holder.into(),
                    run_id.into(),
                    lease.as_secs_f64().into(),
                ],
            )?;
            if inserted == 1 {
                sweep(tx, SWEEP_EXPIRED_AFTER)?;
                return Ok(LockState::Acquired { took_over });
            }
            // Another claimant inserted first (PostgreSQL, between our read and our insert).
            let row = tx.query(
                &format!(
                    "SELECT holder, run_id, expires_unix_s - {now} FROM measurement_locks WHERE cache_key = ?1"
                ),
                &[cache_key.into()],
            )?;
            match row.first() {
                Some(r) => Ok(LockState::Held {
                    holder: r.text(0)?,
                    run_id: r.text(1)?,
                    expires_in_s: r.real(2)?,
                }),
                // Released again already: report it held for no time, the caller tries again.
                None => Ok(LockState::Held {
                    holder: String::new(),
                    run_id: String::new(),
                    expires_in_s: 0.0,
                }),
            }
        })
    }

    /// Extend `holder`'s lease on `cache_key` to `lease` from now. `false`: it no longer holds
    /// the lock (its lease ran out and another runner took it over).
    pub fn renew_measurement_lock(
        &mut self,
        cache_key: &str,
        holder: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        self.db.tx(|tx| {
            let now = now_sql(tx);
            Ok(tx.execute(
                &format!(
                    "UPDATE measurement_locks SET expires_unix_s = {now} + ?3 WHERE cache_key = ?1 AND holder = ?2"
                ),
                &[cache_key.into(), holder.into(), lease.as_secs_f64().into()],
            )? == 1)
        })
    }

    /// Release `holder`'s lock on `cache_key`; `false` when it did not hold it (any more).
    pub fn release_measurement_lock(
        &mut self,
        cache_key: &str,
        holder: &str,
    ) -> Result<bool, StoreError> {
        self.db.tx(|tx| {
            Ok(tx.execute(
                "DELETE FROM measurement_locks WHERE cache_key = ?1 AND holder = ?2",
                &[cache_key.into(), holder.into()],
            )? == 1)
        })
    }

    /// Delete the rows whose lease ran out more than `older_than` ago (their holders are dead;
    /// a live holder renews long before its row expires). Taking a lock does this with
    /// [`SWEEP_EXPIRED_AFTER`]; returns how many rows went.
    pub fn sweep_expired_locks(&mut self, older_than: Duration) -> Result<u64, StoreError> {
        self.db.tx(|tx| sweep(tx, older_than))
    }

    /// Every lock row, expired ones included, by cache key.
    pub fn measurement_locks(&mut self) -> Result<Vec<LockRow>, StoreError> {
        self.db.tx(|tx| {
            let now = now_sql(tx);
            tx.query(
                &format!(
                    "SELECT cache_key, holder, run_id, acquired_unix_s, expires_unix_s, expires_unix_s - {now} FROM measurement_locks ORDER BY cache_key"
                ),
                &[],
            )?
            .iter()
            .map(|r| {
                Ok(LockRow {
                    cache_key: r.text(0)?,
                    holder: r.text(1)?,
                    run_id: r.text(2)?,
                    acquired_unix_s: r.real(3)?,
                    expires_unix_s: r.real(4)?,
                    expires_in_s: r.real(5)?,
                })
            })
            .collect()
        })
    }
}

/// Delete the lock rows that expired more than `older_than` ago.
fn sweep(tx: &mut Tx<'_>, older_than: Duration) -> Result<u64, StoreError> {
    let now = now_sql(tx);
    tx.execute(
        &format!("DELETE FROM measurement_locks WHERE expires_unix_s < {now} - ?1"),
        &[older_than.as_secs_f64().into()],
    )
}

/// A new holder name: this host, this process, and a counter (one per claim), with a nonce
/// against a reused process id.
pub fn holder_token() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    static NONCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let nonce = NONCE.get_or_init(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ (d.as_secs() as u32));
        format!("{:08x}", t)
    });
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into());
    format!(
        "{host}/{}/{nonce}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A held measurement lock: renewed by a heartbeat thread (with its own connection to the store)
/// until dropped; dropping it releases the lock. Drop it after the measurement is stored.
#[derive(Debug)]
pub struct MeasurementLock {
    cache_key: String,
    holder: String,
    took_over: Option<String>,
    stop: Option<mpsc::Sender<()>>,
    heartbeat: Option<JoinHandle<()>>,
}

impl MeasurementLock {
    /// Start the heartbeat of a lock `holder` took in the store at `location`.
    pub fn start(
        location: &Location,
        cache_key: &str,
        holder: &str,
        opts: &LockOptions,
        took_over: Option<String>,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<()>();
        let (loc, key, who, lease, every) = (
            location.clone(),
            cache_key.to_string(),
            holder.to_string(),
            opts.lease,
            opts.heartbeat(),
        );
        let heartbeat = std::thread::Builder::new()
            .name("l1-lock-heartbeat".into())
            .spawn(move || heartbeat(&loc, &key, &who, lease, every, &rx));
        let heartbeat = match heartbeat {
            Ok(h) => Some(h),
            Err(e) => {
                eprintln!(
                    "l1: measurement lock {cache_key}: no heartbeat thread ({e}); the lock expires {}s after it was taken",
                    opts.lease.as_secs_f64()
                );
                None
            }
        };
        Self {
            cache_key: cache_key.to_string(),
            holder: holder.to_string(),
            took_over,
            stop: Some(tx),
            heartbeat,
        }
    }

    pub fn cache_key(&self) -> &str {
        &self.cache_key
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The holder whose expired lease this lock replaced (a runner that died holding it).
    pub fn took_over(&self) -> Option<&str> {
        self.took_over.as_deref()
    }
}

impl Drop for MeasurementLock {
    fn drop(&mut self) {
        // Closing the channel wakes the heartbeat, which releases the lock and ends.
        drop(self.stop.take());
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
    }
}

fn heartbeat(
    location: &Location,
    key: &str,
    holder: &str,
    lease: Duration,
    every: Duration,
    stop: &mpsc::Receiver<()>,
) {
    let mut store = match Store::open(location) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!(
                "l1: measurement lock {key}: no heartbeat connection ({e}); the lock expires {}s after it was taken",
                lease.as_secs_f64()
            );
            None
        }
    };
    let mut lost = false;
    // Woken by a timeout: renew. Dropped (or sent to): the measurement is stored, release.
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(every) {
        let Some(s) = store.as_mut() else { continue };
        match s.renew_measurement_lock(key, holder, lease) {
            Ok(true) => {}
            Ok(false) if !lost => {
                lost = true;
                eprintln!(
                    "l1: measurement lock {key}: lost (the lease of {}s ran out and another runner took it over); this measurement may be taken twice",
                    lease.as_secs_f64()
                );
            }
            Ok(false) => {}
            Err(e) => eprintln!("l1: measurement lock {key}: heartbeat failed: {e}"),
        }
    }
    if let Some(s) = store.as_mut()
        && let Err(e) = s.release_measurement_lock(key, holder)
    {
        eprintln!(
            "l1: measurement lock {key}: not released ({e}); it expires {}s after the last heartbeat",
            lease.as_secs_f64()
        );
    }
}

/// What a claim for a cache key is: the same for every caller.
#[derive(Clone, Debug)]
pub struct LockRequest<'a> {
    /// The store the lock lives in (the heartbeat opens its own connection to it).
    pub location: &'a Location,
    pub cache_key: &'a str,
    /// The claimant's run (shown to whoever waits for it).
    pub run_id: &'a str,
    pub options: LockOptions,
}

/// The outcome of [`claim`].
#[derive(Debug)]
pub enum Claim<T> {
    /// The lookup found the measurement. `waited_for`: the holder this claim waited for (another
    /// runner measured it meanwhile), `None` when it was there from the start.
    Found {
        value: T,
        waited_for: Option<(String, String)>,
    },
    /// Nobody has it and nobody is measuring it: the caller measures, stores the measurement,
    /// then drops the lock. `waited_for` as above (the holder died or its measurement failed).
    Mine {
        lock: MeasurementLock,
        waited_for: Option<(String, String)>,
    },
}

/// Obtain the measurement of `req.cache_key` through the lock: `lookup` reads the cache,
/// `try_lock` and `release` run [`Store::try_lock_measurement`] and
/// [`Store::release_measurement_lock`] on the caller's connection. Waits (polling) while another
/// live holder measures it; see the module docs for the protocol.
pub fn claim<T, E>(
    req: &LockRequest<'_>,
    mut lookup: impl FnMut() -> Result<Option<T>, E>,
    mut try_lock: impl FnMut(&str, &str, &str, Duration) -> Result<LockState, E>,
    mut release: impl FnMut(&str, &str) -> Result<bool, E>,
) -> Result<Claim<T>, E> {
    if let Some(value) = lookup()? {
        return Ok(Claim::Found {
            value,
            waited_for: None,
        });
    }
    let holder = holder_token();
    let mut waited_for = None;
    loop {
        match try_lock(req.cache_key, &holder, req.run_id, req.options.lease)? {
            LockState::Acquired { took_over } => {
                // Stored by the previous holder just before it released?
                return match lookup() {
                    Ok(Some(value)) => {
                        let _ = release(req.cache_key, &holder);
                        Ok(Claim::Found { value, waited_for })
                    }
                    Ok(None) => Ok(Claim::Mine {
                        lock: MeasurementLock::start(
                            req.location,
                            req.cache_key,
                            &holder,
                            &req.options,
                            took_over,
                        ),
                        waited_for,
                    }),
                    Err(e) => {
                        let _ = release(req.cache_key, &holder);
                        Err(e)
                    }
                };
            }
            LockState::Held {
                holder: other,
                run_id,
                ..
            } => {
                if waited_for.is_none() && !other.is_empty() {
                    waited_for = Some((other, run_id));
                }
                std::thread::sleep(req.options.poll());
                if let Some(value) = lookup()? {
                    return Ok(Claim::Found { value, waited_for });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_and_poll_follow_the_lease() {
        let o = LockOptions::new(Duration::from_secs(60));
        assert_eq!(o.heartbeat(), Duration::from_secs(15));
        assert_eq!(o.poll(), Duration::from_secs(1));
        let short = LockOptions::new(Duration::from_millis(40));
        assert_eq!(short.heartbeat(), Duration::from_millis(10));
        assert_eq!(short.poll(), Duration::from_millis(20));
    }

    #[test]
    fn holder_tokens_are_unique_and_name_the_process() {
        let (a, b) = (holder_token(), holder_token());
        assert_ne!(a, b);
        assert!(a.contains(&format!("/{}/", std::process::id())), "{a}");
    }
}
