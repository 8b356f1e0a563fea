//! Tier 2 in the harness: `kind: tune` specs (validation), and the session driver behind each
//! tune spec target's one generated test (`<class>::<spec>::<target>::tune`).
//!
//! The driver creates or resumes the target's session in the results store (the id is a hash of
//! run id, spec and target, so a re-run of the same run resumes), then loops: propose (a pure
//! function of the stored state), measure through the normal measurement path (a [`Measurer`],
//! which the suite's trial layer implements: this run's records, the cache, the engine), observe, persist the
//! whole state plus a `tune_trials` row in one transaction. A process killed at any moment
//! therefore resumes with the same next proposal, and a combo measured before the kill is reused
//! from the run directory instead of being measured again.

use l1_engines::Combo;
use l1_store::{TuneSessionRow, TuneTrialRow};
use l1_tune::{
    Budget, Constraint, Direction, Objective, Observation, Phase, Sense, Session, Space,
    TuneConfig, TuneError,
};

use crate::model::TargetId;
use crate::record::RunDir;
use crate::record::{MeasurementRecord, short_hash};
use crate::spec::{Spec, SpecKind};

/// Why a [`Measurer`] could not measure: the trial layer's own error, boxed so that tuning does
/// not depend on the suite that implements it.
pub type MeasurerError = Box<dyn std::error::Error + Send + Sync>;

/// What a tune session needs from the trial that runs it, implemented by the suite's trial layer:
/// the target, and measurements through the normal measurement path (this run's records, the
/// cache, the engine).
pub trait Measurer {
    /// The target, its combos and where its results go.
    fn target(&self) -> TuneTarget<'_>;
    /// The measurement of `combo`: this run's record, the cache's, or a fresh one.
    fn measure(&self, combo: &Combo) -> Result<MeasurementRecord, MeasurerError>;
    /// A fresh measurement of `combo`, replicate `replicate` (1, 2, …): its own record and rep
    /// seeds, never from the cache.
    fn remeasure(&self, combo: &Combo, replicate: u32) -> Result<MeasurementRecord, MeasurerError>;
    /// A combo's label in trial names and messages.
    fn label(&self, combo: &Combo) -> String;
}

/// The target a tune session runs on, as its [`Measurer`] describes it.
#[derive(Clone, Copy, Debug)]
pub struct TuneTarget<'a> {
    /// The trial's name (`<class>::<spec>::<target>::tune`), for messages.
    pub trial: &'a str,
    pub spec: &'a str,
    pub tune: &'a TuneSpec,
    pub id: &'a TargetId,
    /// The legal combos (the search space, in the expansion's order) and the baseline.
    pub combos: &'a [Combo],
    pub baseline: &'a Combo,
    pub run: &'a RunDir,
    /// The target directory whose store holds the session.
    pub store_dir: &'a std::path::Path,
    /// The spec's trim of its trimmed means.
    pub trim: f64,
    /// Devices one measurement occupies (budget accounting).
    pub devices: u32,
    pub simulated: bool,
    /// `L1_TUNE_TRIAL_DELAY_MS`: a pause after each trial (tests use it to cancel mid-session).
    pub trial_delay: Option<std::time::Duration>,
}

/// How a tune session's gate ended: the `::tune` trial's outcome.
#[derive(Clone, Debug)]
pub struct TuneVerdict {
    pub passed: bool,
    pub message: String,
    pub simulated: bool,
}

/// The gate margin when the spec gives none.
pub const DEFAULT_MARGIN: f64 = 0.03;

/// Observations after which a constraint nobody met is checked for hopelessness.
const OUTLOOK_AFTER: usize = 6;

/// Below this probability for every unevaluated combo, a constraint is deemed unmeetable.
const OUTLOOK_HOPELESS: f64 = 0.01;

/// A tune spec's validated settings.
#[derive(Clone, Debug)]
pub struct TuneSpec {
    pub config: TuneConfig,
    pub budget: Budget,
    pub seed_from: Option<String>,
    pub margin: f64,
}

impl TuneSpec {
    /// The settings of a tune spec (`None` for a sweep). Call on a validated spec.
    pub fn from_spec(spec: &Spec) -> Option<Self> {
        let SpecKind::Tune(t) = &spec.kind else {
            return None;
        };
        let (o, b) = (&t.objective, &t.budget);
        let mut config = TuneConfig::new(o.metric.value.clone(), o.direction);
        config.seed = spec.measure.seed;
        config.acquisition = t.acquisition;
        if let Some(r) = &t.remeasure {
            config.remeasure.top = r.top.unwrap_or(config.remeasure.top);
            config.remeasure.share = r.share.unwrap_or(config.remeasure.share);
        }
        config.constraints = t
            .constraints
            .iter()
            .filter_map(|c| {
                let (sense, threshold) = match (c.at_most, c.at_least) {
                    (Some(x), None) => (Sense::AtMost, x),
                    (None, Some(x)) => (Sense::AtLeast, x),
                    _ => return None,
                };
                Some(Constraint {
                    metric: c.metric.value.clone(),
                    sense,
                    threshold,
                })
            })
            .collect();
        Some(Self {
            config,
            budget: Budget {
                wall_clock_minutes: b.minutes,
                gpu_hours: b.gpu_hours,
                max_trials: b.max_trials,
            },
            seed_from: t.seed_from.as_ref().map(|s| s.value.clone()),
            margin: t.gate.margin.unwrap_or(DEFAULT_MARGIN),
        })
    }
}

/// The session id of a tune spec target in a run: the same run, spec and target give the same id.
pub fn session_id(run_id: &str, spec: &str, target: &str) -> String {
    format!(
        "tune-{}",
        short_hash(&format!("{run_id}|{spec}|{target}"), 16)
    )
}

/// A combo as (name, value) pairs over the tuner's dimensions: each catalog dimension, then each
/// knob as `knob.<name>`.
pub fn named_values(c: &Combo) -> Vec<(String, String)> {
    c.dims
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain(
            c.knobs
                .iter()
                .map(|(k, v)| (format!("knob.{k}"), v.clone())),
        )
        .collect()
}

/// The optimiser's space for a target's legal combos: one dimension per catalog dimension and
/// per knob, values sorted; combo `i` of the space is `combos[i]`.
pub fn space_of(combos: &[Combo]) -> Result<Space, TuneError> {
    let mut names: Vec<String> = Vec::new();
    let named = named_values;
    for c in combos {
        for (k, _) in named(c) {
            if !names.contains(&k) {
                names.push(k);
            }
        }
    }
    let mut values: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    let rows: Vec<Vec<String>> = combos
        .iter()
        .map(|c| {
            let m: std::collections::BTreeMap<String, String> = named(c).into_iter().collect();
            names
                .iter()
                .map(|n| m.get(n).cloned().unwrap_or_else(|| "unset".into()))
                .collect()
        })
        .collect();
    for r in &rows {
        for (i, v) in r.iter().enumerate() {
            if !values[i].contains(v) {
                values[i].push(v.clone());
            }
        }
    }
    for v in &mut values {
        v.sort();
    }
    let dims = names
        .into_iter()
        .zip(values)
        .map(|(n, v)| l1_tune::Dimension::new(n, v))
        .collect();
    Space::from_named(dims, &rows)
}

/// The trimmed mean of `name` over a measurement's reps.
fn metric_value(rec: &MeasurementRecord, name: &str, trim: f64) -> Option<f64> {
    let v: Vec<f64> = rec
        .reps
        .iter()
        .filter_map(|r| r.get(name).copied())
        .filter(|x| x.is_finite())
        .collect();
    crate::stats::trimmed_mean(&v, trim).ok()
}

fn trimmed(reps: &[std::collections::BTreeMap<String, f64>], name: &str, trim: f64) -> Option<f64> {
    let v: Vec<f64> = reps
        .iter()
        .filter_map(|r| r.get(name).copied())
        .filter(|x| x.is_finite())
        .collect();
    crate::stats::trimmed_mean(&v, trim).ok()
}

/// Seeds: the baseline (when it is a legal combo of the space), then up to 3 best feasible
/// points of the `seed_from` sweep's stored results for the same target.
fn seeds(t: &TuneTarget<'_>) -> Result<(Vec<usize>, Vec<String>), SessionError> {
    let ts = t.tune;
    let mut out = Vec::new();
    let mut notes = Vec::new();
    if let Some(i) = t.combos.iter().position(|c| c == t.baseline) {
        out.push(i);
    }
    let Some(from) = &ts.seed_from else {
        return Ok((out, notes));
    };
    let id = t.id;
    let rows = store(crate::results::with_store(t.store_dir, |s| {
        s.spec_measurements(
            from,
            &id.engine,
            &id.version,
            &id.model,
            &id.hardware,
            &id.workload,
        )
    }))?;
    let trim = t.trim;
    let mut scored: Vec<(f64, usize)> = Vec::new();
    for r in &rows {
        let Some(i) = t.combos.iter().position(|c| c.canonical() == r.combo) else {
            continue;
        };
        if scored.iter().any(|s| s.1 == i) {
            continue;
        }
        let Some(v) = trimmed(&r.reps, &ts.config.objective.metric, trim) else {
            continue;
        };
        let feasible = ts
            .config
            .constraints
            .iter()
            .all(|c| trimmed(&r.reps, &c.metric, trim).is_some_and(|x| c.holds(x)));
        if !feasible {
            continue;
        }
        let score = match ts.config.objective.direction {
            Direction::Maximize => v,
            Direction::Minimize => -v,
        };
        scored.push((score, i));
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let picked: Vec<usize> = scored.iter().take(3).map(|s| s.1).collect();
    if picked.is_empty() {
        notes.push(format!(
            "seed_from `{from}`: no stored result for this target; seeding with random points"
        ));
    } else {
        notes.push(format!(
            "seed_from `{from}`: {} best stored points of {} measured",
            picked.len(),
            scored.len()
        ));
    }
    for i in picked {
        if !out.contains(&i) {
            out.push(i);
        }
    }
    Ok((out, notes))
}

fn objective_json(config: &TuneConfig) -> String {
    serde_json::json!({
        "objective": config.objective,
        "constraints": config.constraints,
        "seed": config.seed,
    })
    .to_string()
}

/// Why a tune session could not run, finish or report. The texts are what the `::tune` trial
/// and `l1 tune` print.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The results store failed (its own text).
    #[error(transparent)]
    Store(#[from] crate::results::ResultsError),
    /// Measuring a combo through the trial failed (the trial's text).
    #[error("{0}")]
    Measure(MeasurerError),
    /// The optimizer refused (an invalid space, a bad observation, a corrupt state).
    #[error(transparent)]
    Tune(#[from] TuneError),
    /// A session's stored state could not be read or written.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// No legal point can meet a constraint: none met it, and the model gives every unevaluated
    /// combo under [`OUTLOOK_HOPELESS`].
    #[error(
        "no legal point can meet the constraint on `{metric}`: none of {observed} evaluated combos met it, and the model gives every unevaluated combo under {:.0} % chance (best {best:.2e}); relax the constraint",
        OUTLOOK_HOPELESS * 100.0
    )]
    Unmeetable {
        metric: String,
        observed: usize,
        best: f64,
    },
    /// The baseline's measurement failed, so the gate cannot be evaluated.
    #[error("{head}; the baseline measurement failed, so the gate cannot be evaluated: {why}")]
    Baseline { head: String, why: String },
    /// `context`: the trial (and session) the error happened in.
    #[error("{context}: {source}")]
    In {
        context: String,
        source: Box<SessionError>,
    },
}

impl SessionError {
    fn within(self, context: impl Into<String>) -> Self {
        Self::In {
            context: context.into(),
            source: Box::new(self),
        }
    }
}

/// The store's answer, its error text kept as the store gave it.
fn store<T>(r: Result<T, crate::results::ResultsError>) -> Result<T, SessionError> {
    r.map_err(SessionError::Store)
}

/// Why the loop stopped.
enum Stop {
    Budget(l1_tune::Limit),
    SpaceExhausted,
    Cancelled,
}

/// Run (or resume) the tune session of a tune spec target: the body of its `::tune` test.
pub fn run_session(m: &dyn Measurer) -> Result<TuneVerdict, SessionError> {
    let t = m.target();
    let ts = t.tune;
    let dir = t.store_dir;
    let target = t.id.to_string();
    let sid = session_id(&t.run.run_id, t.spec, &target);
    let space = space_of(t.combos).map_err(|e| SessionError::from(e).within(t.trial))?;
    let stored = store(crate::results::with_store(dir, |s| s.tune_session(&sid)))?;
    let mut notes = Vec::new();
    let stored = match stored {
        Some(row) => row,
        None => {
            let (seeds, n) = seeds(&t)?;
            notes = n;
            let fresh = Session::new(space.clone(), ts.config.clone(), ts.budget.clone(), &seeds)
                .map_err(|e| SessionError::from(e).within(t.trial))?;
            let now = crate::record::now_unix();
            let row = TuneSessionRow {
                session_id: sid.clone(),
                run_id: Some(t.run.run_id.clone()),
                spec: t.spec.to_string(),
                target: target.clone(),
                status: "running".into(),
                objective: objective_json(&ts.config),
                budget: serde_json::to_string(&ts.budget)?,
                bayesian_state: fresh.to_json()?,
                best_trial: None,
                created_unix_s: now,
                updated_unix_s: now,
            };
            store(crate::results::with_store(dir, |s| {
                s.begin_tune_session(&row)
            }))?
        }
    };
    let mut session = Session::resume_json(space, &stored.bayesian_state)
        .map_err(|e| SessionError::from(e).within(format!("{}: session {sid}", t.trial)))?;
    let resumed = session.trials();
    if stored.status == "cancelled" {
        session.cancel();
    } else {
        store(crate::results::with_store(dir, |s| {
            s.set_tune_status(&sid, "running", None)
        }))?;
    }
    eprintln!(
        "{}: tune session {sid} ({}){}",
        t.trial,
        if resumed > 0 {
            format!("resumed after {resumed} trials")
        } else {
            "new".into()
        },
        notes.iter().map(|n| format!("; {n}")).collect::<String>()
    );
    let stop = match drive(m, &sid, &mut session) {
        Ok(s) => s,
        Err(e) => {
            let _ = crate::results::with_store(dir, |s| {
                s.set_tune_status(&sid, "failed", session.to_json().ok().as_deref())
            });
            return Err(e.within(format!("{}: tune session {sid}", t.trial)));
        }
    };
    verdict(m, &sid, &session, &stop)
}

/// Propose, measure, observe and persist until the budget, the space or a cancellation stops it.
fn drive(m: &dyn Measurer, sid: &str, session: &mut Session) -> Result<Stop, SessionError> {
    let t = m.target();
    let ts = t.tune;
    let dir = t.store_dir;
    let (trim, devices) = (t.trim, t.devices);
    loop {
        if session.state().cancelled {
            return Ok(Stop::Cancelled);
        }
        let status = store(crate::results::with_store(dir, |s| s.tune_session(sid)))?
            .map(|r| r.status)
            .unwrap_or_default();
        if status == "cancelled" {
            session.cancel();
            return Ok(Stop::Cancelled);
        }
        if let Some(limit) = session.exhausted() {
            return Ok(Stop::Budget(limit));
        }
        let prop = match session.propose() {
            Ok(prop) => prop,
            Err(TuneError::SpaceExhausted) => return Ok(Stop::SpaceExhausted),
            Err(TuneError::Cancelled) => return Ok(Stop::Cancelled),
            Err(e) => return Err(e.into()),
        };
        let combo = &t.combos[prop.combo];
        let label = m.label(combo);
        let n = session.trials();
        let phase = prop.phase();
        let rec = if phase == Phase::Remeasure {
            let replicate = session
                .state()
                .observations
                .iter()
                .filter(|o| o.combo == prop.combo)
                .count();
            m.remeasure(combo, replicate as u32)
        } else {
            m.measure(combo)
        }
        .map_err(SessionError::Measure)?;
        // A cache hit is a free evaluation; a measurement reused from this run's records (taken
        // before a kill) cost what it cost.
        let elapsed = if rec.cache_hit.is_some() {
            0.0
        } else {
            rec.duration_s
        };
        let value = metric_value(&rec, &ts.config.objective.metric, trim);
        let cons: Option<Vec<f64>> = ts
            .config
            .constraints
            .iter()
            .map(|c| metric_value(&rec, &c.metric, trim))
            .collect();
        let (outcome, stored_value) = match (&rec.error, value, cons) {
            (None, Some(v), Some(cv)) if v.is_finite() && v > 0.0 => {
                let feasible = ts
                    .config
                    .constraints
                    .iter()
                    .zip(&cv)
                    .all(|(c, x)| c.holds(*x));
                session.observe(Observation {
                    combo: prop.combo,
                    value: v,
                    constraints: cv,
                    phase,
                    elapsed_s: elapsed,
                    devices,
                })?;
                let o = if !feasible {
                    "infeasible"
                } else if phase == Phase::Remeasure {
                    "remeasured"
                } else if rec.cache_hit.is_some() {
                    "cached"
                } else {
                    "ok"
                };
                (o, Some(v))
            }
            (err, v, _) => {
                let reason = match err {
                    Some(e) => e.clone(),
                    None => format!(
                        "no usable `{}` value ({v:?}) or constraint metric in the reps",
                        ts.config.objective.metric
                    ),
                };
                session.observe_failure(prop.combo, reason, elapsed, devices)?;
                ("failed", None)
            }
        };
        let state = session.to_json()?;
        let best = session.state().best_trial.map(|b| b as i64);
        let row = TuneTrialRow {
            session_id: sid.to_string(),
            n: n as i64,
            combo: label.clone(),
            measurement_key: Some(rec.key.clone()),
            outcome: outcome.into(),
            value: stored_value,
            created_unix_s: crate::record::now_unix(),
        };
        store(crate::results::with_store(dir, |s| {
            s.record_tune_trial(sid, &state, best, &row)
        }))?;
        let burn = 1.0 - session.remaining().fraction;
        crate::progress::emit(
            t.run,
            &crate::progress::Event::TuneTrial {
                ts: crate::record::now_unix(),
                pid: std::process::id(),
                trial: format!("{}#{n}", t.trial),
                outcome: outcome.into(),
                combo: label.clone(),
                value: stored_value,
                budget_used: burn,
            },
        );
        eprintln!(
            "{}: tune trial {n} ({:?}) {label}: {outcome}{} [budget {:.0} % used]",
            t.trial,
            prop.kind,
            stored_value
                .map(|v| format!(" {} {v:.4}", ts.config.objective.metric))
                .unwrap_or_default(),
            burn * 100.0
        );
        // A constraint nobody met after the initial points, with no real chance anywhere left.
        if !ts.config.constraints.is_empty()
            && session.state().observations.len() >= OUTLOOK_AFTER
            && let Some(model) = session.model()
        {
            for o in model.constraint_outlook() {
                if o.feasible_observed == 0 && o.max_prob_unevaluated < OUTLOOK_HOPELESS {
                    return Err(SessionError::Unmeetable {
                        metric: o.metric.clone(),
                        observed: o.observed,
                        best: o.max_prob_unevaluated,
                    });
                }
            }
        }
        if let Some(pause) = t.trial_delay {
            std::thread::sleep(pause);
        }
    }
}

/// The gate: the recommended point against the baseline's measurement.
fn verdict(
    m: &dyn Measurer,
    sid: &str,
    session: &Session,
    stop: &Stop,
) -> Result<TuneVerdict, SessionError> {
    let t = m.target();
    let ts = t.tune;
    let dir = t.store_dir;
    let state = session.to_json()?;
    let status = if matches!(stop, Stop::Cancelled) {
        "cancelled"
    } else {
        "finished"
    };
    store(crate::results::with_store(dir, |s| {
        s.set_tune_status(sid, status, Some(&state))
    }))?;
    let metric_name = &ts.config.objective.metric;
    let why = match stop {
        Stop::Budget(l) => format!("budget reached ({l})"),
        Stop::SpaceExhausted => "every legal combo evaluated".into(),
        Stop::Cancelled => "cancelled with `l1 tune cancel`".into(),
    };
    let head = format!(
        "{}: tune session {sid}: {} trials of {} legal combos, {why}",
        t.trial,
        session.trials(),
        t.combos.len()
    );
    let Some(best) = session.recommend() else {
        return Ok(TuneVerdict {
            passed: false,
            message: format!("{head}; no trial succeeded, so there is no best point"),
            simulated: t.simulated,
        });
    };
    let base = m.measure(t.baseline).map_err(SessionError::Measure)?;
    let simulated = base.simulated;
    let base_value = match (&base.error, metric_value(&base, metric_name, t.trim)) {
        (None, Some(v)) => v,
        (err, _) => {
            return Err(SessionError::Baseline {
                head,
                why: err
                    .clone()
                    .unwrap_or_else(|| format!("no `{metric_name}` values")),
            });
        }
    };
    let best_label = m.label(&t.combos[best.combo]);
    let observed = best.observed.iter().sum::<f64>() / best.observed.len().max(1) as f64;
    let m = ts.margin;
    let (needed, beats) = match ts.config.objective.direction {
        Direction::Maximize => {
            let need = base_value * (1.0 + m);
            (need, observed >= need)
        }
        Direction::Minimize => {
            let need = base_value * (1.0 - m);
            (need, observed <= need)
        }
    };
    let passed = beats && best.feasible && !matches!(stop, Stop::Cancelled);
    let dir_word = match ts.config.objective.direction {
        Direction::Maximize => "at least",
        Direction::Minimize => "at most",
    };
    let mut message = format!(
        "{head}\n  best point {}: {metric_name} {observed:.4} observed ({} measurement(s)), posterior {:.4} [{:.4}, {:.4}] 95 %{}\n  baseline {metric_name} {base_value:.4}; the gate needs {dir_word} {needed:.4} (margin {:.1} %)\n  tune gate {}",
        best_label,
        best.observed.len(),
        best.predicted,
        best.interval.0,
        best.interval.1,
        if best.feasible {
            String::new()
        } else {
            " — it does NOT meet the constraints".into()
        },
        m * 100.0,
        if passed { "passed" } else { "FAILED" }
    );
    if !passed {
        let reason = if matches!(stop, Stop::Cancelled) {
            "the session was cancelled before its budget ran out"
        } else if !best.feasible {
            "no evaluated point meets the constraints"
        } else {
            "the best point does not beat the baseline by the margin"
        };
        message.push_str(&format!(": {reason}"));
    }
    Ok(TuneVerdict {
        passed,
        message,
        simulated,
    })
}

/// Objective helper for callers outside the crate (status output).
pub fn objective_of(json: &str) -> Option<Objective> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    serde_json::from_value(v.get("objective")?.clone()).ok()
}

/// Clear a stored session's cancelled flag and mark it running (`l1 tune resume`).
pub fn reopen(
    settings: &crate::settings::Settings,
    row: &TuneSessionRow,
) -> Result<(), SessionError> {
    let mut state: l1_tune::TuneState = serde_json::from_str(&row.bayesian_state)?;
    state.cancelled = false;
    let json = serde_json::to_string(&state)?;
    store(crate::results::with_store(&settings.target_dir, |s| {
        s.reopen_tune_session(&row.session_id, &json)
    }))?;
    Ok(())
}

/// A stored session's progress, budget burn and best-so-far (with its interval when the
/// session's space can be rebuilt), as JSON.
///
/// `combos`: the target's legal combos in the expansion's order (the session's space), when
/// its spec can still be planned (see `suite::session_status`).
pub fn status_json(
    row: &TuneSessionRow,
    trials: &[TuneTrialRow],
    combos: Option<&[Combo]>,
) -> Result<serde_json::Value, SessionError> {
    let state: l1_tune::TuneState = serde_json::from_str(&row.bayesian_state)?;
    let remaining = state.budget.remaining(&state.usage);
    let objective = &state.config.objective;
    let mut best = serde_json::Value::Null;
    let mut space_len = serde_json::Value::Null;
    if let Some(combos) = combos
        && let Ok(space) = space_of(combos)
    {
        space_len = serde_json::json!(space.len());
        if let Ok(session) = Session::resume(space, state.clone())
            && let Some(r) = session.recommend()
        {
            best = serde_json::json!({
                "combo": r.label,
                "observed": r.observed,
                "predicted": r.predicted,
                "interval95": [r.interval.0, r.interval.1],
                "feasible": r.feasible,
            });
        }
    }
    if best.is_null()
        && let Some(b) = state.best_trial.and_then(|b| state.observations.get(b))
    {
        let label = trials
            .iter()
            .find(|t| t.value == Some(b.value))
            .map(|t| t.combo.clone())
            .unwrap_or_else(|| format!("combo #{}", b.combo));
        best = serde_json::json!({ "combo": label, "observed": [b.value] });
    }
    Ok(serde_json::json!({
        "session_id": row.session_id,
        "run_id": row.run_id,
        "spec": row.spec,
        "target": row.target,
        "status": row.status,
        "objective": objective,
        "constraints": state.config.constraints,
        "budget": state.budget,
        "usage": state.usage,
        "remaining": remaining,
        "budget_used": 1.0 - remaining.fraction,
        "trials": trials.len(),
        "failed_trials": state.failures.len(),
        "remeasured_trials": state.observations.iter().filter(|o| o.phase == Phase::Remeasure).count(),
        // The knowledge gradient has no reserved final phase: its `remeasure` is unused.
        "remeasure": (state.config.acquisition == l1_tune::Acquisition::ExpectedImprovement)
            .then_some(&state.config.remeasure),
        "acquisition": state.config.acquisition,
        "legal_combos": space_len,
        "best": best,
        "history": trials.iter().map(|t| serde_json::json!({
            "n": t.n, "combo": t.combo, "outcome": t.outcome, "value": t.value,
            "measurement_key": t.measurement_key,
        })).collect::<Vec<_>>(),
        "updated_unix_s": row.updated_unix_s,
    }))
}
