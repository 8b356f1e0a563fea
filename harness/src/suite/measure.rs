//! Measuring one combo: reps spread over launches, warm-up, the rep checks, early stopping at
//! planned looks (a [`Stopper`]), and the gate's interleaved measurement of every arm.
//!
//! Every engine, the sim included, is measured through [`Launch`] objects from the engines
//! crate's table ([`l1_engines::registry::start`]). How the launches are scheduled is a property
//! of the engine's row, never of its name: an engine that can keep all of a measurement's
//! launches open at once ([`Engine::concurrent_launches`], the sim) runs them side by side, rep
//! `i` on launch `i mod L`, and may stop early at a planned look; the others run one launch
//! after another (holding their device when they [need one](Engine::needs_device)) and run
//! every planned rep.
//!
//! [`Engine::concurrent_launches`]: l1_engines::registry::Engine::concurrent_launches
//! [`Engine::needs_device`]: l1_engines::registry::Engine::needs_device

use std::collections::BTreeSet;
use std::time::Instant;

use l1_engines::Combo;
use l1_engines::Metrics;
use l1_engines::launch::{Launch, LaunchTarget};
use l1_engines::probe::ProbeRun;
use l1_engines::{LaunchError, RepError};

use super::error::TrialError;
use super::plan::{PlannedTrial, TargetPlan};
use super::shared::InRun;
use super::stop::Stopper;
use crate::device::DeviceLock;
use crate::record::{self, MeasurementRecord, RECORD_SCHEMA_VERSION};

/// Why a measurement failed: its record keeps the text, reps measured before the failure are
/// kept.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// The engine table could not start launch `launch` (0-based).
    #[error("launch {}: {source}", .launch + 1)]
    Launch { launch: u32, source: LaunchError },
    /// Warm-up rep `rep` of launch `launch` (0-based) failed.
    #[error("launch {}: warm-up rep {rep}: {source}", .launch + 1)]
    WarmUp {
        launch: u32,
        rep: u32,
        source: RepError,
    },
    /// Rep `index` (0-based position in the measurement) failed.
    #[error("rep {}: {source}", .index + 1)]
    Rep { index: u32, source: RepError },
    /// Rep `index` reported a metric that is NaN or infinite.
    #[error("rep {}: metric `{metric}` is not finite ({value})", .index + 1)]
    NotFinite {
        index: u32,
        metric: String,
        value: f64,
    },
    /// Rep `index` failed more requests than the workload allows.
    #[error(
        "rep {}: error rate {rate:.3} exceeds the workload's max_error_rate {max:.3}",
        .index + 1
    )]
    ErrorRate { index: u32, rate: f64, max: f64 },
    /// The early-stopping rule names a metric l1 does not know.
    #[error("unknown metric `{metric}`")]
    UnknownMetric { metric: String },
    /// The device could not be acquired.
    #[error("{0}")]
    Device(String),
}

impl PlannedTrial {
    /// Measure every unrecorded, unclaimed combo of `combos` with their launches interleaved
    /// (launch 1 of every arm, then launch 2 of every arm, ...). Records are identical to those
    /// of separate measurements (each rep depends only on its seed, launch and index), so it does
    /// not matter which trial measured what. Combos another trial is measuring, or another runner
    /// of this run ([`super::shared`]), are left to it; those another runner of the run stored
    /// are taken from the store.
    pub(super) fn measure_interleaved(&self, combos: &[Combo]) -> Result<(), TrialError> {
        let p = &self.plan;
        let mut mine = Vec::new();
        let mut seen = BTreeSet::new();
        for combo in combos {
            let key = self.key(combo);
            if !seen.insert(key.clone()) {
                continue;
            }
            let record::Claim::Mine(lock) = p.run.try_claim(&key)? else {
                continue;
            };
            // Another runner of this run (another partition) may have stored it, or be
            // measuring it now: then it is this run's record, or left to that runner.
            match self.try_claim_in_run(&key) {
                Ok(InRun::Stored { rec, .. }) => lock.finish(&rec)?,
                Ok(InRun::Busy) => drop(lock),
                Ok(InRun::Mine(shared)) => mine.push((combo, key, lock, shared)),
                Err(e) => {
                    eprintln!(
                        "{}: this run's stored measurements could not be read, measuring instead: {e}",
                        self.name
                    );
                    mine.push((combo, key, lock, None));
                }
            }
        }
        if mine.is_empty() {
            return Ok(());
        }
        let n_launches = p.spec.measure.launches.max(1);
        let t0 = Instant::now();
        let started = record::now_unix();
        let mut per_arm: Vec<Vec<LaunchRun>> = mine.iter().map(|_| Vec::new()).collect();
        for l in 0..n_launches {
            for (i, (combo, key, _, _)) in mine.iter().enumerate() {
                let last = l + 1 == n_launches;
                per_arm[i].push(run_launch(p, combo, key, seed_of(p, combo), l, None, last));
            }
        }
        let elapsed = t0.elapsed().as_secs_f64() / mine.len() as f64;
        for ((combo, key, lock, shared), launches) in mine.into_iter().zip(per_arm) {
            let mut out = Measured::default();
            let error = out
                .in_measurement_order(p, launches)
                .err()
                .map(|e| e.to_string());
            let mut rec = new_record(p, combo, &key, &self.name, Vec::new(), error, None, 1);
            out.fill(&mut rec);
            rec.started_unix_s = started;
            rec.duration_s = elapsed;
            lock.finish(&rec)?;
            self.store_measurement(&rec)?;
            // Stored: a runner of this run waiting for it finds it now.
            drop(shared);
        }
        Ok(())
    }
}

/// The seed of a measurement (the sim's noise, real engines' request sequence): the spec's seed
/// mixed with a hash of the target and the combo. Unlike the measurement key it leaves out the
/// catalog snapshot, so recording a new catalog version does not re-draw every simulated result.
pub(super) fn seed_of(p: &TargetPlan, combo: &Combo) -> u64 {
    let h = record::short_hash(&format!("{}|{}", p.target.id, combo.canonical()), 16);
    p.spec.measure.seed ^ u64::from_str_radix(&h, 16).unwrap_or(0)
}

/// Measure one combo of a target: its launches (each warmed up, warm-up reps discarded), then
/// the reps, scheduled as the engine's row says (see the module docs).
pub(super) fn measure(
    p: &TargetPlan,
    combo: &Combo,
    key: &str,
    trial: &str,
    stopper: Option<&Stopper>,
    replicate: u32,
) -> MeasurementRecord {
    let started = record::now_unix();
    let t0 = Instant::now();
    // A replicate draws other rep seeds (prompts, and the sim's noise), as a new launch would.
    let seed = seed_of(p, combo) ^ u64::from(replicate).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut out = Measured::default();
    let result = if p.concurrent_launches() {
        out.side_by_side(p, combo, key, seed, stopper)
    } else if p.needs_device() {
        // Such engines hold their device for the whole measurement: one engine per device.
        match crate::device::acquire(&p.settings_target_dir, p.hardware.device) {
            Ok(lock) => out.one_after_another(p, combo, key, seed, Some(&lock)),
            Err(e) => Err(MeasureError::Device(e.into())),
        }
    } else {
        out.one_after_another(p, combo, key, seed, None)
    };
    let error = result.err().map(|e| e.to_string());
    let looks = stopper.map_or(1, |s| s.looks.len() as u32);
    let mut rec = new_record(p, combo, key, trial, Vec::new(), error, None, looks);
    out.fill(&mut rec);
    rec.started_unix_s = started;
    rec.duration_s = t0.elapsed().as_secs_f64();
    rec
}

#[allow(clippy::too_many_arguments)]
pub(super) fn new_record(
    p: &TargetPlan,
    combo: &Combo,
    key: &str,
    trial: &str,
    reps: Vec<Metrics>,
    error: Option<String>,
    stopped: Option<crate::stats::StopReason>,
    looks: u32,
) -> MeasurementRecord {
    let m = &p.spec.measure;
    let simulated = p.simulated();
    MeasurementRecord {
        schema_version: RECORD_SCHEMA_VERSION,
        key: key.to_string(),
        run_id: p.run.run_id.clone(),
        spec: p.spec.name.clone(),
        target: p.target.id.clone(),
        combo: combo.clone(),
        combo_hash: record::short_hash(&combo.canonical(), 12),
        catalog_snapshot: p.spec.snapshot.clone(),
        harness_version: record::HARNESS_VERSION.into(),
        simulated,
        seed: seed_of(p, combo),
        measured_by: trial.to_string(),
        started_unix_s: 0.0,
        duration_s: 0.0,
        warmup_reps: m.warmup_reps,
        launches: m.launches.max(1),
        looks,
        stopped,
        reps,
        error,
        notes: Vec::new(),
        engine_version: None,
        fingerprints: p.parts().ok().map(|parts| parts.for_combo(combo)),
        cache_hit: None,
        // A simulated engine's answers are a function of the combo (its divergence model), so
        // every record of it carries them, a failed measurement's too; a real engine answers
        // after its last launch's reps.
        probes: simulated.then(|| crate::fidelity::sim_probes(&p.workload, combo)),
    }
}

/// What one measurement's launches produced, in measurement order.
#[derive(Default)]
struct Measured {
    reps: Vec<Metrics>,
    stopped: Option<crate::stats::StopReason>,
    /// The launches' notes, each prefixed with its launch number.
    notes: Vec<String>,
    /// The version the first launch that reported one ran.
    engine_version: Option<String>,
    probes: Option<ProbeRun>,
}

impl Measured {
    /// Put the measurement into its record (the probes only when a launch answered them).
    fn fill(self, rec: &mut MeasurementRecord) {
        rec.reps = self.reps;
        rec.stopped = self.stopped;
        rec.notes = self.notes;
        rec.engine_version = self.engine_version;
        if self.probes.is_some() {
            rec.probes = self.probes;
        }
    }

    /// What launch `l` reports: its notes and version, and its probe answers.
    fn take_from(&mut self, l: u32, launch: &dyn Launch, probes: Option<ProbeRun>) {
        self.notes.extend(
            launch
                .notes()
                .into_iter()
                .map(|n| format!("launch {}: {n}", l + 1)),
        );
        if self.engine_version.is_none() {
            self.engine_version = launch.engine_version().map(str::to_string);
        }
        if probes.is_some() {
            self.probes = probes;
        }
    }

    /// What a launch run on its own reported (its notes, version and probe answers).
    fn absorb(&mut self, other: Measured) {
        self.notes.extend(other.notes);
        if self.engine_version.is_none() {
            self.engine_version = other.engine_version;
        }
        if other.probes.is_some() {
            self.probes = other.probes;
        }
    }

    /// All launches open at once, rep `i` on launch `i mod L`, every rep checked as it comes and
    /// a stop possible at each planned look; the first failure ends the measurement.
    fn side_by_side(
        &mut self,
        p: &TargetPlan,
        combo: &Combo,
        key: &str,
        seed: u64,
        stopper: Option<&Stopper>,
    ) -> Result<(), MeasureError> {
        let m = &p.spec.measure;
        let n_launches = m.launches.max(1);
        let mut launches = Vec::new();
        for l in 0..n_launches {
            let failed = match start_launch(p, combo, key, seed, l, None) {
                Ok(mut launch) => {
                    let warm = warm_up(p, launch.as_mut(), l);
                    launches.push(launch);
                    warm.err()
                }
                Err(e) => Some(e),
            };
            if let Some(e) = failed {
                for (l, launch) in launches.iter().enumerate() {
                    self.take_from(l as u32, launch.as_ref(), None);
                }
                return Err(e);
            }
        }
        // The baseline and fixed designs run every rep; a combo under early termination may
        // stop at a look.
        let total = m.full_reps();
        let mut result = Ok(());
        for i in 0..total {
            let launch = &mut launches[(i % n_launches) as usize];
            let r = launch
                .rep(m.warmup_reps + i / n_launches)
                .map_err(|source| MeasureError::Rep { index: i, source });
            result = r.and_then(|r| {
                crate::progress::rep_done(&p.run, i + 1, total);
                accept_rep(p, i, r, &mut self.reps)
            });
            if result.is_err() {
                break;
            }
            if let Some(reason) = stopper.and_then(|s| s.check(&self.reps))
                && self.reps.len() < total as usize
            {
                self.stopped = Some(reason);
                break;
            }
        }
        let last = launches.len() - 1;
        for (l, launch) in launches.iter_mut().enumerate() {
            let probes = (result.is_ok() && l == last)
                .then(|| crate::fidelity::run_probes(launch.as_mut(), &p.workload));
            self.take_from(l as u32, launch.as_ref(), probes);
        }
        result
    }

    /// Launches one after another, each running reps `i ≡ l (mod L)`; the fidelity probes after
    /// the last launch's reps. Every planned rep runs (a stop would need reps from every launch
    /// at each look); the first failure ends the measurement, keeping what earlier launches
    /// measured.
    fn one_after_another(
        &mut self,
        p: &TargetPlan,
        combo: &Combo,
        key: &str,
        seed: u64,
        lock: Option<&DeviceLock>,
    ) -> Result<(), MeasureError> {
        let n_launches = p.spec.measure.launches.max(1);
        let mut all = Vec::new();
        let mut failure = None;
        for l in 0..n_launches {
            let run = run_launch(p, combo, key, seed, l, lock, l + 1 == n_launches);
            self.absorb(run.reported);
            all.extend(run.reps);
            if let Some((_, e)) = run.failure {
                failure = Some(e);
                break;
            }
        }
        all.sort_by_key(|(i, _)| *i);
        for (i, r) in all {
            accept_rep(p, i, r, &mut self.reps)?;
        }
        failure.map_or(Ok(()), Err)
    }

    /// Launches run separately (the gate's interleaving), taken in measurement order with the
    /// same checks, stopping at the same first failure, as [`Self::side_by_side`].
    fn in_measurement_order(
        &mut self,
        p: &TargetPlan,
        mut launches: Vec<LaunchRun>,
    ) -> Result<(), MeasureError> {
        // A launch that did not start (or warm up) fails the whole measurement.
        if let Some(failed) = launches
            .iter_mut()
            .find(|l| matches!(l.failure, Some((None, _))))
            && let Some((_, e)) = failed.failure.take()
        {
            return Err(e);
        }
        let mut all: Vec<(u32, Result<Metrics, MeasureError>)> = Vec::new();
        for run in launches {
            self.absorb(run.reported);
            all.extend(run.reps.into_iter().map(|(i, r)| (i, Ok(r))));
            if let Some((Some(i), e)) = run.failure {
                all.push((i, Err(e)));
            }
        }
        all.sort_by_key(|(i, _)| *i);
        for (i, r) in all {
            r.and_then(|r| accept_rep(p, i, r, &mut self.reps))?;
        }
        Ok(())
    }
}

/// One launch `l` of a measurement, run to its end.
struct LaunchRun {
    /// Its reps, each with its position `i` in the measurement.
    reps: Vec<(u32, Metrics)>,
    /// Why it ended early: a failed start or warm-up (`None`), or a failed rep (`Some(i)`).
    failure: Option<(Option<u32>, MeasureError)>,
    /// Its notes, version and probe answers.
    reported: Measured,
}

/// Launch `l` of a measurement: started and warmed up, then its reps `i ≡ l (mod L)` (rep index
/// `warmup + i / L`) until one fails; when `probe`, the fidelity probes after all its reps.
fn run_launch(
    p: &TargetPlan,
    combo: &Combo,
    key: &str,
    seed: u64,
    l: u32,
    lock: Option<&DeviceLock>,
    probe: bool,
) -> LaunchRun {
    let mut run = LaunchRun {
        reps: Vec::new(),
        failure: None,
        reported: Measured::default(),
    };
    let mut launch = match start_launch(p, combo, key, seed, l, lock) {
        Ok(launch) => launch,
        Err(e) => {
            run.failure = Some((None, e));
            return run;
        }
    };
    let m = &p.spec.measure;
    let n_launches = m.launches.max(1);
    if let Err(e) = warm_up(p, launch.as_mut(), l) {
        run.failure = Some((None, e));
    }
    let reps = if run.failure.is_some() {
        0..0
    } else {
        l..m.full_reps()
    };
    for i in reps.step_by(n_launches as usize) {
        match launch.rep(m.warmup_reps + i / n_launches) {
            Ok(r) => {
                // Reported as it finishes: the record keeps measurement order.
                crate::progress::rep_done(&p.run, i + 1, m.full_reps());
                run.reps.push((i, r));
            }
            Err(e) => {
                run.failure = Some((
                    Some(i),
                    MeasureError::Rep {
                        index: i,
                        source: e,
                    },
                ));
                break;
            }
        }
    }
    // Fidelity probes: after the reps, outside every measured window.
    let probes = (probe && run.failure.is_none())
        .then(|| crate::fidelity::run_probes(launch.as_mut(), &p.workload));
    run.reported.take_from(l, launch.as_ref(), probes);
    run
}

/// Launch `l` of a measurement, from the engine table.
fn start_launch(
    p: &TargetPlan,
    combo: &Combo,
    key: &str,
    seed: u64,
    l: u32,
    lock: Option<&DeviceLock>,
) -> Result<Box<dyn Launch>, MeasureError> {
    let m = &p.spec.measure;
    let state = p.settings_target_dir.join("l1");
    let target = LaunchTarget {
        engines_dir: &p.engines_dir,
        model_name: &p.target.id.model,
        model: &p.model,
        hardware: &p.hardware,
        workload: &p.workload,
        combo,
        version: &p.target.id.version,
        run_dir: &p.run.path,
        tag: format!("{}-launch{}", &key[..16.min(key.len())], l + 1),
        state_dir: &state,
        cuda_visible_devices: lock.and_then(|l| l.cuda_visible_devices.clone()),
        seed,
        launch: l,
        // Validated at expansion: in (0, 86400] seconds.
        startup_timeout: m.startup_timeout_s.map(std::time::Duration::from_secs_f64),
    };
    l1_engines::registry::start(&p.target.id.engine, &target)
        .map_err(|source| MeasureError::Launch { launch: l, source })
}

/// Launch `l`'s warm-up reps, whose results are discarded.
fn warm_up(p: &TargetPlan, launch: &mut dyn Launch, l: u32) -> Result<(), MeasureError> {
    for i in 0..p.spec.measure.warmup_reps {
        launch.rep(i).map_err(|source| MeasureError::WarmUp {
            launch: l,
            rep: i,
            source,
        })?;
    }
    Ok(())
}

/// Keep rep `i` (0-based) if its metrics are finite, and fail the measurement when its error
/// rate exceeds the workload's threshold (the rep is kept: it was measured).
fn accept_rep(
    p: &TargetPlan,
    i: u32,
    r: Metrics,
    reps: &mut Vec<Metrics>,
) -> Result<(), MeasureError> {
    if let Some((name, v)) = r.iter().find(|(_, v)| !v.is_finite()) {
        return Err(MeasureError::NotFinite {
            index: i,
            metric: name.clone(),
            value: *v,
        });
    }
    let rate = r.get("error_rate").copied().unwrap_or(0.0);
    reps.push(r);
    if rate > p.workload.max_error_rate {
        return Err(MeasureError::ErrorRate {
            index: i,
            rate,
            max: p.workload.max_error_rate,
        });
    }
    Ok(())
}
