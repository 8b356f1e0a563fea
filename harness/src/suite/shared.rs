//! One run over many runners: a measurement that another runner of the same run (a partition
//! with a target directory of its own) stored in the shared store is used, never taken again,
//! and two runners that need it at the same moment take it once, under the store's lease lock
//! ([`l1_store::lock`]) of the run and the measurement key.
//!
//! This is the run directory's rule ("a measurement this run recorded is reused") carried to
//! runners that share a store but not a run directory; it is not the cache. It holds for every
//! engine, the sim included, and under every `L1_CACHE` mode, because a run's own records are
//! not cache entries: nothing crosses from one run to another (the sim is still never cached,
//! so an edited spec or a new harness simulates afresh), and a record is reused exactly as the
//! run directory reuses it, a failed measurement's included.
//!
//! It is skipped where it could find nothing: when the store is this target directory's own
//! default file, every runner writing into it shares the run directory too, whose file locks
//! already make trials wait for each other.

use l1_store::{Claim, LockState, MeasurementLock};

use super::plan::PlannedTrial;
use crate::record::MeasurementRecord;
use crate::results::{self, ResultsError};

/// How [`PlannedTrial::claim_in_run`] and [`PlannedTrial::try_claim_in_run`] found the
/// measurement of a key.
#[derive(Debug)]
pub(super) enum InRun {
    /// Another runner of this run stored it; `waited`: this one waited while it measured.
    Stored {
        rec: Box<MeasurementRecord>,
        waited: bool,
    },
    /// Nobody has stored it: this runner measures it, holding the lock (`None`: no store shared
    /// with other run directories, so no lock to take), stores it, then drops the lock.
    Mine(Option<MeasurementLock>),
    /// Another runner of this run is measuring it now ([`PlannedTrial::try_claim_in_run`]
    /// only); [`PlannedTrial::claim_in_run`] waits for it.
    Busy,
}

impl PlannedTrial {
    /// Whether other runners of this run may store into this runner's store from other run
    /// directories: the store is not the target directory's default file.
    fn shares_run(&self) -> bool {
        let dir = &self.plan.settings_target_dir;
        results::location(dir) != l1_store::Location::Sqlite(dir.join("l1").join("store.sqlite"))
    }

    /// The store's lock name of measurement `key` of this run. A cache key is a bare hash, so
    /// the two never meet in the lock table.
    fn run_lock_name(&self, key: &str) -> String {
        format!("run:{}:{key}", self.plan.run.run_id)
    }

    /// This run's stored record of `key`, when another runner stored it.
    fn run_stored(&self, key: &str) -> Result<Option<MeasurementRecord>, ResultsError> {
        let p = &self.plan;
        let row = results::with_store(&p.settings_target_dir, |s| {
            s.run_measurement(&p.run.run_id, key)
        })?;
        row.map(|r| {
            serde_json::from_str(&r.record).map_err(|source| ResultsError::Parse {
                what: "stored measurement",
                run_id: r.run_id.clone(),
                key: r.key.clone(),
                source,
            })
        })
        .transpose()
    }

    fn lock_options(&self) -> Result<l1_store::LockOptions, ResultsError> {
        Ok(l1_store::LockOptions::new(
            crate::settings::env().lock_timeout.clone()?,
        ))
    }

    /// Tell the runner's stderr that a dead runner's lease on `key` ran out and this one took
    /// its measurement over.
    fn note_take_over(&self, key: &str, lock: &MeasurementLock) {
        if let Some(dead) = lock.took_over() {
            eprintln!(
                "{}: took over the measurement lock of {key} (run {}) from {dead}, whose lease ran out (L1_LOCK_TIMEOUT_S)",
                self.name, self.plan.run.run_id
            );
        }
    }

    /// The measurement `key` as this run has it in the store: stored by another
    /// runner, else the lock to measure it under, waiting (polling, at most a lease past a dead
    /// holder's last heartbeat) while another runner of the run measures it.
    pub(super) fn claim_in_run(&self, key: &str) -> Result<InRun, ResultsError> {
        if !self.shares_run() {
            return Ok(InRun::Mine(None));
        }
        let p = &self.plan;
        let dir = &p.settings_target_dir;
        let location = results::location(dir);
        let name = self.run_lock_name(key);
        let req = l1_store::LockRequest {
            location: &location,
            cache_key: &name,
            run_id: &p.run.run_id,
            options: self.lock_options()?,
        };
        let claim = l1_store::lock::claim(
            &req,
            || self.run_stored(key),
            |k, h, r, l| results::with_store(dir, |s| s.try_lock_measurement(k, h, r, l)),
            |k, h| results::with_store(dir, |s| s.release_measurement_lock(k, h)),
        )?;
        Ok(match claim {
            Claim::Found { value, waited_for } => InRun::Stored {
                rec: Box::new(value),
                waited: waited_for.is_some(),
            },
            Claim::Mine { lock, .. } => {
                self.note_take_over(key, &lock);
                InRun::Mine(Some(lock))
            }
        })
    }

    /// [`Self::claim_in_run`] without waiting: [`InRun::Busy`] while another runner of the run
    /// holds the key's lock (the gate's interleaved measurement leaves such combos to their
    /// runner, as it leaves those another trial of this runner is measuring).
    pub(super) fn try_claim_in_run(&self, key: &str) -> Result<InRun, ResultsError> {
        if !self.shares_run() {
            return Ok(InRun::Mine(None));
        }
        if let Some(rec) = self.run_stored(key)? {
            return Ok(InRun::Stored {
                rec: Box::new(rec),
                waited: false,
            });
        }
        let p = &self.plan;
        let dir = &p.settings_target_dir;
        let name = self.run_lock_name(key);
        let options = self.lock_options()?;
        let holder = l1_store::lock::holder_token();
        let state = results::with_store(dir, |s| {
            s.try_lock_measurement(&name, &holder, &p.run.run_id, options.lease)
        })?;
        let LockState::Acquired { took_over } = state else {
            return Ok(InRun::Busy);
        };
        // Stored by the previous holder just before it released?
        let again = self.run_stored(key);
        if !matches!(again, Ok(None)) {
            let _ = results::with_store(dir, |s| s.release_measurement_lock(&name, &holder));
        }
        if let Some(rec) = again? {
            return Ok(InRun::Stored {
                rec: Box::new(rec),
                waited: false,
            });
        }
        let lock =
            MeasurementLock::start(&results::location(dir), &name, &holder, &options, took_over);
        self.note_take_over(key, &lock);
        Ok(InRun::Mine(Some(lock)))
    }
}
