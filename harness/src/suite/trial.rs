//! One trial's run: the kill switch and availability checks, the store's run entry, the
//! measurement from this run's records (its run directory's, then those other runners of the run
//! stored: [`super::shared`]), the cache (under the store's measurement lock, shared with other
//! runners) or the engine, and the trial's record.

use std::collections::BTreeSet;
use std::time::Instant;

use l1_engines::Combo;
use l1_store::MeasurementLock;
use libtest_mimic::{Failed, Trial};

use super::error::TrialError;
use super::measure::{measure, new_record};
use super::plan::{Leaf, PlannedTrial, TargetPlan};
use super::shared::InRun;
use super::stop::Stopper;
use crate::diag::display_path;
use crate::gates;
use crate::record::{self, MeasurementRecord, Obtained, RECORD_SCHEMA_VERSION, TrialRecord};

impl TargetPlan {
    /// The cache key's target-wide parts, or why they could not be computed (then nothing is
    /// looked up in or offered to the cache).
    pub(super) fn parts(
        &self,
    ) -> Result<
        &crate::fingerprint::TargetParts,
        std::sync::Arc<crate::fingerprint::FingerprintError>,
    > {
        self.parts
            .get_or_init(|| {
                let id = &self.target.id;
                let simulated = self.simulated();
                let engine_version = if simulated {
                    id.version.clone()
                } else {
                    crate::fingerprint::engine_version(
                        &id.engine,
                        &self.engines_dir,
                        &self.settings_target_dir,
                    )?
                };
                let (hardware_fingerprint, hardware) =
                    crate::fingerprint::hardware(&id.hardware, &self.hardware, simulated);
                Ok(crate::fingerprint::TargetParts {
                    catalog_version: self.cats.kernels.catalog.version,
                    engine: id.engine.clone(),
                    engine_version,
                    model_hash: crate::fingerprint::model(
                        &id.model,
                        &self.model,
                        (!simulated).then_some(self.engines_dir.as_path()),
                    )?,
                    hardware_fingerprint,
                    hardware,
                    workload_fingerprint: crate::fingerprint::workload(&self.workload),
                    plan_hash: crate::fingerprint::plan(&self.spec.measure),
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

impl PlannedTrial {
    /// The libtest-mimic trial.
    pub fn into_trial(self) -> Trial {
        let ignored = self.ignored.is_some();
        // No `with_kind`: it would print `[kind] name` and break filters; the class is the
        // first name component instead.
        Trial::test(self.name.clone(), move || self.run()).with_ignored_flag(ignored)
    }

    /// The trial as a listing shows it, without what running it needs: for a process that only
    /// lists (libtest's `--list`), where building the runnable trial for every combo and freeing
    /// it again would cost more than the listing itself. Run by mistake, it fails.
    pub fn into_listed_trial(self) -> Trial {
        let ignored = self.ignored.is_some();
        Trial::test(self.name, || {
            Err("l1: this trial was built for a listing only and cannot run".into())
        })
        .with_ignored_flag(ignored)
    }

    /// Run the trial now, outside libtest (tests and tools).
    pub fn execute(self) -> Result<(), String> {
        self.run()
            .map_err(|f| f.message().unwrap_or("failed").to_string())
    }

    /// Run the trial; whatever happens (an error before the measurement, a store that fails, a
    /// panic), the trial leaves a record of its outcome, so the run's records agree with the
    /// runner's counts (see [`crate::accounting`]).
    fn run(self) -> Result<(), Failed> {
        let start = Instant::now();
        let (name, plan) = (self.name.clone(), self.plan.clone());
        let kind = match &self.leaf {
            Leaf::Combo(_) => "combo",
            Leaf::Baseline => "baseline",
            Leaf::Gate => "gate",
            Leaf::Tune => "tune",
        };
        if let Err(e) = plan.run.mark_started(&name) {
            eprintln!("l1: {name}: start not recorded: {e}");
        }
        // A panic is recorded as the trial's failure, then goes on unwinding (libtest reports
        // it as the failure it is; a caller of `execute` sees it as before).
        let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.run_recorded(start)
        })) {
            Ok(r) => r,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                let _ = Self::record_failure(
                    &plan,
                    &name,
                    kind,
                    format!("{name}: panicked: {why}"),
                    start,
                );
                std::panic::resume_unwind(panic)
            }
        };
        match result {
            Ok(()) => Ok(()),
            Err((message, true)) => Err(message.into()),
            Err((message, false)) => {
                Err(Self::record_failure(&plan, &name, kind, message, start).into())
            }
        }
    }

    /// Write the failed record of a trial that ended before writing its own; the message to
    /// report (with why the record could not be written, if it could not).
    fn record_failure(
        plan: &TargetPlan,
        name: &str,
        kind: &str,
        message: String,
        start: Instant,
    ) -> String {
        let rec = TrialRecord {
            schema_version: RECORD_SCHEMA_VERSION,
            run_id: plan.run.run_id.clone(),
            name: name.to_string(),
            spec: plan.spec.name.clone(),
            target: plan.target.id.clone(),
            kind: kind.into(),
            passed: false,
            message: message.clone(),
            measurement: None,
            gates: Vec::new(),
            simulated: plan.simulated(),
            duration_s: start.elapsed().as_secs_f64(),
            used: Some(plan.spec.used.clone()),
        };
        match plan.run.write_trial(&rec) {
            Ok(()) => {
                crate::progress::trial_finished(&plan.run, &rec);
                message
            }
            Err(e) => format!("{message}\nfailed to write the trial record: {e}"),
        }
    }

    /// The trial itself. `Err((message, recorded))`: whether its failed record is written.
    fn run_recorded(self, start: Instant) -> Result<(), (String, bool)> {
        let p = &self.plan;
        crate::progress::trial_started(&p.run, &self.name);
        if p.killed {
            // The kill switch holds whatever the runner's flags: a trial it stopped, run anyway
            // (`--ignored`, `--include-ignored`, nextest `--run-ignored only|all`), launches
            // nothing (not even a version probe) and fails: it was not run, and a pass would
            // count as measured.
            return Err((
                format!(
                    "{}: not run: ENABLE_L1_KERNEL_TUNING=0 (the kill switch) is set, so no engine is launched, even for trials selected with --ignored, --include-ignored or --run-ignored; unset it (or set ENABLE_L1_KERNEL_TUNING=1) to run them",
                    self.name
                ),
                false,
            ));
        }
        if let Some(reason) = &p.ignore {
            // Forced with --include-ignored / --ignored: run only if the engine can run.
            if let Some(err) = p.engine.and_then(|e| e.availability(&p.engines_dir).err()) {
                return Err((format!("{}: {reason}; {err}", self.name), false));
            }
        }
        // The store: the run (and this spec) recorded once per process; a cancelled run stops.
        if let Err(e) = self.enter_store() {
            return Err((format!("{}: {e}", self.name), false));
        }
        let (kind, result) = match &self.leaf {
            Leaf::Combo(i) => ("combo", self.measured(&p.target.combo(*i))),
            Leaf::Baseline => ("baseline", self.measured(&p.target.baseline)),
            Leaf::Gate => ("gate", self.gate()),
            Leaf::Tune => (
                "tune",
                crate::tuning::run_session(&self)
                    .map(|v| Outcome {
                        passed: v.passed,
                        message: v.message,
                        measurement: None,
                        verdicts: Vec::new(),
                        simulated: v.simulated,
                        cache_hit: false,
                    })
                    .map_err(TrialError::from),
            ),
        };
        let (passed, message, measurement, verdicts, simulated, cache_hit) = match &result {
            Ok(o) => (
                o.passed,
                o.message.clone(),
                o.measurement.clone(),
                o.verdicts.clone(),
                o.simulated,
                o.cache_hit,
            ),
            Err(e) => (false, e.to_string(), None, Vec::new(), p.simulated(), false),
        };
        let rec = TrialRecord {
            schema_version: RECORD_SCHEMA_VERSION,
            run_id: p.run.run_id.clone(),
            name: self.name.clone(),
            spec: p.spec.name.clone(),
            target: p.target.id.clone(),
            kind: kind.into(),
            passed,
            message: message.clone(),
            measurement,
            gates: verdicts,
            simulated,
            duration_s: start.elapsed().as_secs_f64(),
            used: Some(p.spec.used.clone()),
        };
        if let Err(e) = p.run.write_trial(&rec) {
            return Err((
                format!("{message}\nfailed to write the trial record: {e}"),
                false,
            ));
        }
        if let Err(e) = crate::results::with_store(&p.settings_target_dir, |s| {
            s.insert_trial(&crate::results::trial_row(&rec, cache_hit))
        }) {
            // The trial fails (libtest counts it failed): its record is rewritten as failed.
            return Err((
                format!(
                    "{message}\nfailed to store the trial: {e} (its record is kept at {}; `l1 report` ingests it)",
                    p.run.trial_path(&rec.name).display()
                ),
                false,
            ));
        }
        crate::progress::trial_finished(&p.run, &rec);
        eprintln!("{message}");
        if passed { Ok(()) } else { Err((message, true)) }
    }

    /// Record the run, the catalog snapshot and this trial's spec in the store (once per
    /// process), and refuse to run when `l1 runs cancel` stopped the run.
    fn enter_store(&self) -> Result<(), TrialError> {
        static ENTERED: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
        let p = &self.plan;
        let dir = &p.settings_target_dir;
        let run_id = &p.run.run_id;
        crate::results::cache_mode()?;
        // A bad lock timeout fails the trial, as a bad cache mode does (not only where it is used).
        crate::settings::env()
            .lock_timeout
            .clone()
            .map_err(crate::results::ResultsError::from)?;
        // Keyed by the store too: trials of one process may write into several stores (tests
        // with a target directory each), and each store needs its own run row.
        let store = crate::results::location(dir).display();
        let first = ENTERED
            .lock()
            .map(|mut e| e.insert(format!("{store}|{run_id}|{}", p.spec.name)))
            .unwrap_or(true);
        if first {
            let catalog = std::fs::read_to_string(&p.cats.kernels.path).unwrap_or_default();
            crate::results::with_store(dir, |s| {
                s.begin_run(&crate::results::new_run(run_id, &p.spec.snapshot))?;
                s.record_catalog_snapshot(
                    &p.spec.snapshot,
                    i64::from(p.cats.kernels.catalog.version),
                    &catalog,
                )?;
                s.record_spec(
                    run_id,
                    &p.spec.name,
                    &display_path(&p.spec.path),
                    &p.spec.source,
                    &p.spec.rendered,
                )
            })?;
        }
        if let Some(at) = crate::results::with_store(dir, |s| s.cancel_requested(run_id))? {
            return Err(TrialError::Cancelled {
                run_id: run_id.clone(),
                at: record::utc_stamp(at.max(0.0) as u64),
            });
        }
        Ok(())
    }

    /// This run's record of `combo` from the cache, when caching reads and the store has a
    /// valid entry under its key. The sim is never cached: simulating costs less than a lookup.
    ///
    /// Under `L1_CACHE=readwrite` a miss takes the store's measurement lock of the cache key
    /// ([`l1_store::lock`]), waiting while another runner measures the same key and then taking
    /// its measurement from the cache; the lock comes back with the miss and is dropped once
    /// this trial's measurement is stored. No lock under `read` (this runner's measurements are
    /// not offered to the cache, so nobody could reuse them: holding the lock would only make
    /// others wait), `write` (this runner never reads the cache, so another's measurement is of
    /// no use to it) or `off`.
    pub(super) fn cached(
        &self,
        combo: &Combo,
        key: &str,
    ) -> Result<(Option<MeasurementRecord>, Option<MeasurementLock>), crate::results::ResultsError>
    {
        let p = &self.plan;
        let mode = crate::results::cache_mode()?;
        if p.simulated() || !mode.reads() {
            return Ok((None, None));
        }
        // Without its parts (an engine that is not installed) there is no key: measure, and let
        // the launch report what is wrong.
        let Ok(parts) = p.parts() else {
            return Ok((None, None));
        };
        let fp = parts.for_combo(combo);
        let not_before = record::now_unix() - l1_store::CACHE_TTL_S;
        let dir = &p.settings_target_dir;
        let lookup = || {
            let Some(hit) =
                crate::results::with_store(dir, |s| s.cache_lookup(&fp.cache_key, not_before))?
            else {
                return Ok(None);
            };
            let template = new_record(p, combo, key, &self.name, Vec::new(), None, None, 1);
            crate::results::from_cache(&hit, &template).map(Some)
        };
        if !mode.writes() {
            return lookup().map(|hit| (hit, None));
        }
        let location = crate::results::location(dir);
        let req = l1_store::LockRequest {
            location: &location,
            cache_key: &fp.cache_key,
            run_id: &p.run.run_id,
            options: l1_store::LockOptions::new(crate::settings::env().lock_timeout.clone()?),
        };
        let claim = l1_store::lock::claim(
            &req,
            lookup,
            |k, h, r, l| crate::results::with_store(dir, |s| s.try_lock_measurement(k, h, r, l)),
            |k, h| crate::results::with_store(dir, |s| s.release_measurement_lock(k, h)),
        )?;
        match claim {
            l1_store::Claim::Found {
                mut value,
                waited_for,
            } => {
                if let (Some((holder, run)), Some(note)) = (waited_for, value.notes.first_mut()) {
                    note.push_str(&format!(
                        "; waited for runner {holder} (run {run}) measuring it"
                    ));
                }
                Ok((Some(value), None))
            }
            l1_store::Claim::Mine { lock, .. } => {
                if let Some(dead) = lock.took_over() {
                    eprintln!(
                        "{}: took over the measurement lock of cache key {} from {dead}, whose lease ran out (L1_LOCK_TIMEOUT_S)",
                        self.name, fp.cache_key
                    );
                }
                Ok((None, Some(lock)))
            }
        }
    }

    /// The cache's record of `combo`, else a new measurement; `held` receives the store's
    /// measurement lock when this trial took one (see [`Self::cached`]).
    fn measure_or_reuse(
        &self,
        combo: &Combo,
        key: &str,
        stopper: Option<&Stopper>,
        held: &mut Option<MeasurementLock>,
    ) -> MeasurementRecord {
        match self.cached(combo, key) {
            Ok((Some(rec), _)) => {
                crate::progress::cache_hit(&self.plan.run, key);
                return rec;
            }
            Ok((None, lock)) => *held = lock,
            Err(e) => eprintln!("{}: cache lookup failed, measuring instead: {e}", self.name),
        }
        measure(&self.plan, combo, key, &self.name, stopper, 0)
    }

    /// Insert a measurement this trial produced into the store.
    pub(super) fn store_measurement(&self, rec: &MeasurementRecord) -> Result<(), TrialError> {
        let p = &self.plan;
        let mode = crate::results::cache_mode()?;
        crate::results::with_store(&p.settings_target_dir, |s| {
            s.insert_measurement(&crate::results::measurement_row(
                rec,
                crate::results::cacheable(rec, mode),
            ))
        })
        .map(|_| ())
        .map_err(|source| TrialError::StoreMeasurement {
            trial: self.name.clone(),
            key: rec.key.clone(),
            kept: p.run.measurement_path(&rec.key),
            source,
        })
    }

    pub(super) fn key(&self, combo: &Combo) -> String {
        let p = &self.plan;
        let m = &p.spec.measure;
        record::short_hash(
            &format!(
                "{}|{}|{}|reps={}|warmup={}|seed={}|launches={}|seq={:?}",
                p.spec.snapshot,
                p.target.id,
                combo.canonical(),
                m.reps,
                m.warmup_reps,
                m.seed,
                m.launches,
                m.sequential()
            ),
            24,
        )
    }

    /// A fresh measurement of `combo` (a tune session's final re-measurement): replicate `r`
    /// (1, 2, …) has its own record key and rep seeds, never comes from the cache, and is
    /// stored like any measurement. Like [`Self::obtain`], a replicate this run already recorded
    /// (before a kill) is reused, not measured twice.
    pub(crate) fn obtain_replicate(
        &self,
        combo: &Combo,
        replicate: u32,
    ) -> Result<(MeasurementRecord, Obtained), TrialError> {
        let key = record::short_hash(&format!("{}|replicate={replicate}", self.key(combo)), 24);
        let (rec, how) = self.plan.run.obtain(&key, || {
            measure(&self.plan, combo, &key, &self.name, None, replicate)
        })?;
        if how == Obtained::Measured {
            self.store_measurement(&rec)?;
        }
        Ok((rec, how))
    }

    pub(crate) fn obtain(
        &self,
        combo: &Combo,
    ) -> Result<(MeasurementRecord, Obtained), TrialError> {
        let key = self.key(combo);
        // Early termination compares with the baseline at each look, so the baseline comes
        // first (its lock is never held while waiting for a combo's, so no trial deadlocks).
        let stopper = match self.plan.spec.measure.sequential() {
            Some((lo, hi)) if *combo != self.plan.target.baseline => {
                let (base, _) = self.obtain(&self.plan.target.baseline)?;
                if base.error.is_some() {
                    None
                } else {
                    Some(Stopper::new(&self.plan, &base, lo as usize, hi as usize)?)
                }
            }
            _ => None,
        };
        // The store's measurement locks, when this trial took them, are held until the
        // measurement is stored: a runner waiting for it then finds it in the store (the run's
        // lock, `run_held`) or the cache (the cache key's, `held`).
        let (mut held, mut run_held, mut from_run) = (None, None, None);
        let (rec, how) = self.plan.run.obtain(&key, || {
            match self.claim_in_run(&key) {
                Ok(InRun::Stored { rec, waited }) => {
                    from_run = Some(waited);
                    return *rec;
                }
                Ok(InRun::Mine(lock)) => run_held = lock,
                Ok(InRun::Busy) => {}
                Err(e) => eprintln!(
                    "{}: this run's stored measurements could not be read, measuring instead: {e}",
                    self.name
                ),
            }
            self.measure_or_reuse(combo, &key, stopper.as_ref(), &mut held)
        })?;
        // Another runner of this run measured it (and stored it): this run recorded it.
        let how = match from_run {
            Some(true) => Obtained::Waited,
            Some(false) => Obtained::Recorded,
            None => how,
        };
        if how == Obtained::Measured {
            self.store_measurement(&rec)?;
        }
        drop(held);
        drop(run_held);
        Ok((rec, how))
    }

    fn measured(&self, combo: &Combo) -> Result<Outcome, TrialError> {
        let (rec, how) = self.obtain(combo)?;
        let hit;
        let how = match how {
            Obtained::Measured if rec.cache_hit.is_some() => {
                hit = rec
                    .notes
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "cache hit".into());
                hit.as_str()
            }
            Obtained::Measured => "measured",
            Obtained::Waited => "waited for another trial's measurement",
            Obtained::Recorded => "reused this run's recorded measurement",
        };
        let sim_tag = if rec.simulated { " [simulated]" } else { "" };
        let stop = match rec.stopped {
            Some(r) => format!(", stopped early at a planned look ({r:?})").to_lowercase(),
            None if rec.looks > 1 => ", ran to the last look".into(),
            None => String::new(),
        };
        if let Some(err) = &rec.error {
            return Ok(Outcome::fail(
                format!("{}: measurement failed{sim_tag}: {err}", self.name),
                &rec,
            ));
        }
        let tput: Vec<f64> = rec
            .reps
            .iter()
            .filter_map(|r| r.get("output_tokens_per_s").copied())
            .collect();
        let tm = crate::stats::trimmed_mean(&tput, self.plan.spec.measure.trim)?;
        Ok(Outcome::pass(
            format!(
                "{}: {how}{sim_tag}: {} reps{stop}, output_tokens_per_s trimmed mean {tm:.4} (trim {})",
                self.name,
                rec.reps.len(),
                self.plan.spec.measure.trim
            ),
            &rec,
        ))
    }
}

pub(crate) struct Outcome {
    pub(crate) passed: bool,
    pub(crate) message: String,
    pub(crate) measurement: Option<String>,
    pub(crate) verdicts: Vec<gates::GateVerdict>,
    pub(crate) simulated: bool,
    /// The measurement came from the cache.
    pub(crate) cache_hit: bool,
}

impl Outcome {
    fn pass(message: String, rec: &MeasurementRecord) -> Self {
        Self {
            passed: true,
            message,
            measurement: Some(rec.key.clone()),
            verdicts: Vec::new(),
            simulated: rec.simulated,
            cache_hit: rec.cache_hit.is_some(),
        }
    }

    fn fail(message: String, rec: &MeasurementRecord) -> Self {
        Self {
            passed: false,
            message,
            measurement: Some(rec.key.clone()),
            verdicts: Vec::new(),
            simulated: rec.simulated,
            cache_hit: rec.cache_hit.is_some(),
        }
    }
}

/// A tune session measures through its trial: this run's records, the cache, the engine.
impl crate::tuning::Measurer for PlannedTrial {
    fn target(&self) -> crate::tuning::TuneTarget<'_> {
        let p = &self.plan;
        crate::tuning::TuneTarget {
            trial: &self.name,
            spec: &p.spec.name,
            tune: p
                .spec
                .tune
                .as_deref()
                .expect("only a tune spec's target plans a `::tune` trial"),
            id: &p.target.id,
            combos: p.target.combos(),
            baseline: &p.target.baseline,
            run: &p.run,
            store_dir: &p.settings_target_dir,
            trim: p.spec.measure.trim,
            devices: u32::from(p.hardware.device == l1_engines::DeviceKind::Gpu),
            simulated: p.simulated(),
            trial_delay: p.tune_trial_delay,
        }
    }

    fn measure(&self, combo: &Combo) -> Result<MeasurementRecord, crate::tuning::MeasurerError> {
        Ok(self.obtain(combo)?.0)
    }

    fn remeasure(
        &self,
        combo: &Combo,
        replicate: u32,
    ) -> Result<MeasurementRecord, crate::tuning::MeasurerError> {
        Ok(self.obtain_replicate(combo, replicate)?.0)
    }

    fn label(&self, combo: &Combo) -> String {
        super::names::combo_slug(&self.plan.cats, combo)
    }
}
