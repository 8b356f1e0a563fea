//! Tier 2 in the harness: `kind: tune` specs (validation), and the session driver behind each
//! tune spec target's one generated test (`<class>::<spec>::<target>::tune`).
//!
//! The driver creates or resumes the target's session in the results store (the id is a hash of
//! run id, spec and target, so a re-run of the same run resumes), then loops: propose (a pure
//! function of the stored state), measure through the normal measurement path
//! ([`PlannedTrial::obtain`]: this run's records, the cache, the engine), observe, persist the
//! whole state plus a `tune_trials` row in one transaction. A process killed at any moment
//! therefore resumes with the same next proposal, and a combo measured before the kill is reused
//! from the run directory instead of being measured again.

use l1_engines::Combo;
use l1_engines::metrics::{metric, metric_names};
use l1_store::{TuneSessionRow, TuneTrialRow};
use l1_tune::{
    Budget, Constraint, Direction, Objective, Observation, Phase, Sense, Session, Space,
    TuneConfig, TuneError,
};

use crate::diag::Diagnostic;
use crate::record::{MeasurementRecord, short_hash};
use crate::spec::{LoadedSpec, Mode, Spec, SpecKind};
use crate::suite::{Outcome, PlannedTrial, combo_slug};

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
    /// The settings of a tune spec (`None` for a sweep). Call after [`validate_spec`].
    pub fn from_spec(spec: &Spec) -> Option<Self> {
        if spec.kind != SpecKind::Tune {
            return None;
        }
        let o = spec.objective.as_ref()?;
        let b = spec.budget.clone().unwrap_or_default();
        let mut config = TuneConfig::new(o.metric.value.clone(), o.direction);
        config.seed = spec.measure.seed;
        config.acquisition = spec.acquisition.unwrap_or_default();
        if let Some(r) = &spec.remeasure {
            config.remeasure.top = r.top.unwrap_or(config.remeasure.top);
            config.remeasure.share = r.share.unwrap_or(config.remeasure.share);
        }
        config.constraints = spec
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
            seed_from: spec.seed_from.as_ref().map(|s| s.value.clone()),
            margin: spec
                .gate
                .as_ref()
                .and_then(|g| g.margin)
                .unwrap_or(DEFAULT_MARGIN),
        })
    }
}

/// Validate the tune fields of a spec: required and checked on `kind: tune`, refused on sweeps.
pub fn validate_spec(ls: &LoadedSpec) -> Result<(), Diagnostic> {
    let spec = &ls.spec;
    if spec.kind != SpecKind::Tune {
        for (field, set) in [
            ("objective", spec.objective.is_some()),
            ("constraints", !spec.constraints.is_empty()),
            ("budget", spec.budget.is_some()),
            ("seed_from", spec.seed_from.is_some()),
            ("gate", spec.gate.is_some()),
            ("remeasure", spec.remeasure.is_some()),
            ("acquisition", spec.acquisition.is_some()),
        ] {
            if set {
                return Err(ls
                    .diag_find(
                        format!("`{field}` is a tune spec field; this spec is `kind: sweep`"),
                        field,
                        field,
                    )
                    .field(field)
                    .expected("`kind: tune`, or remove the field (sweeps use `gates`)"));
            }
        }
        return Ok(());
    }
    if crate::diag::find_key_line(&ls.rendered.text, "gates", 1).is_some() {
        return Err(ls
            .diag_find("tune specs take `gate: { margin }`, not `gates`", "gates", "gates")
            .field("gates")
            .expected("`gate: { margin: 0.03 }` (the recommended point must beat the baseline by the margin)"));
    }
    if spec.space.mode == Mode::Quick
        && crate::diag::find_key_line(&ls.rendered.text, "mode", 1).is_some()
    {
        return Err(ls
            .diag_find(
                "tune specs search every legal combo; `mode: quick` does not apply",
                "mode",
                "quick",
            )
            .field("space.mode")
            .choices(["exhaustive"]));
    }
    let Some(o) = &spec.objective else {
        return Err(ls
            .diag_find("a tune spec needs an objective", "kind", "tune")
            .field("objective")
            .expected("`objective: { metric: output_tokens_per_s, direction: maximize }`"));
    };
    if metric(&o.metric.value).is_none() {
        return Err(ls
            .diag_span(
                format!("objective names unknown metric `{}`", o.metric.value),
                &o.metric,
            )
            .field("objective.metric")
            .choices(metric_names()));
    }
    for (i, c) in spec.constraints.iter().enumerate() {
        let field = format!("constraints[{i}]");
        if metric(&c.metric.value).is_none() {
            return Err(ls
                .diag_span(
                    format!("constraint names unknown metric `{}`", c.metric.value),
                    &c.metric,
                )
                .field(format!("{field}.metric"))
                .choices(metric_names()));
        }
        let threshold = match (c.at_most, c.at_least) {
            (Some(x), None) | (None, Some(x)) => x,
            _ => {
                return Err(ls
                    .diag_span(
                        format!(
                            "constraint on `{}` needs exactly one of `at_most` and `at_least`",
                            c.metric.value
                        ),
                        &c.metric,
                    )
                    .field(field)
                    .expected("`{ metric: ttft_p95_ms, at_most: 200 }`"));
            }
        };
        // Every metric is non-negative: such a constraint no legal point can meet.
        let impossible = !threshold.is_finite() || c.at_most.is_some_and(|x| x < 0.0);
        if impossible {
            return Err(ls
                .diag_span(
                    format!(
                        "no legal point can meet the constraint on `{}` (threshold {threshold}): metrics are finite and non-negative",
                        c.metric.value
                    ),
                    &c.metric,
                )
                .field(field)
                .expected("a finite threshold a measurement can meet"));
        }
    }
    let b = spec.budget.clone().unwrap_or_default();
    let budget = Budget {
        wall_clock_minutes: b.minutes,
        gpu_hours: b.gpu_hours,
        max_trials: b.max_trials,
    };
    if let Err(e) = budget.validate() {
        let d = if spec.budget.is_some() {
            ls.diag_find(format!("{e}"), "budget", "budget")
        } else {
            ls.diag_find(format!("a tune spec needs a budget ({e})"), "kind", "tune")
        };
        return Err(d
            .field("budget")
            .expected("at least one of `minutes`, `gpu_hours`, `max_trials`, each positive, e.g. `budget: { max_trials: 25 }`"));
    }
    if let Some(m) = spec.gate.as_ref().and_then(|g| g.margin)
        && !(0.0..1.0).contains(&m)
    {
        return Err(ls
            .diag_find(
                format!("gate margin {m} is outside [0, 1)"),
                "gate",
                "margin",
            )
            .field("gate.margin")
            .expected("a relative improvement, e.g. 0.03 for 3 %"));
    }
    if let Some(share) = spec.remeasure.as_ref().and_then(|r| r.share)
        && !(share.is_finite() && (0.0..=0.5).contains(&share))
    {
        return Err(ls
            .diag_find(
                format!("remeasure share {share} is outside [0, 0.5]"),
                "remeasure",
                "share",
            )
            .field("remeasure.share")
            .expected("the share of the budget kept for re-measuring the top candidates, e.g. 0.1 (0: none)"));
    }
    if spec.acquisition == Some(l1_tune::Acquisition::KnowledgeGradient) && spec.remeasure.is_some()
    {
        return Err(ls
            .diag_find(
                "`remeasure` does not apply with `acquisition: knowledge_gradient` (it replicates whenever a replicate pays, with no reserved final phase)",
                "remeasure",
                "remeasure",
            )
            .field("remeasure")
            .expected("remove `remeasure`, or use `acquisition: expected_improvement`"));
    }
    if let Some(s) = &spec.seed_from
        && (s.value.is_empty()
            || !s
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return Err(ls
            .diag_span(format!("seed_from `{}` is not a spec name", s.value), s)
            .field("seed_from")
            .expected("the name of a sweep spec whose results are in the store"));
    }
    Ok(())
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
fn seeds(t: &PlannedTrial, ts: &TuneSpec) -> Result<(Vec<usize>, Vec<String>), String> {
    let p = &t.plan;
    let mut out = Vec::new();
    let mut notes = Vec::new();
    if let Some(i) = p.target.combos.iter().position(|c| *c == p.target.baseline) {
        out.push(i);
    }
    let Some(from) = &ts.seed_from else {
        return Ok((out, notes));
    };
    let id = &p.target.id;
    let rows = crate::results::with_store(&p.settings_target_dir, |s| {
        s.spec_measurements(
            from,
            &id.engine,
            &id.version,
            &id.model,
            &id.hardware,
            &id.workload,
        )
    })?;
    let trim = p.spec.measure.trim;
    let mut scored: Vec<(f64, usize)> = Vec::new();
    for r in &rows {
        let Some(i) = p
            .target
            .combos
            .iter()
            .position(|c| c.canonical() == r.combo)
        else {
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

fn fail(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Why the loop stopped.
enum Stop {
    Budget(l1_tune::Limit),
    SpaceExhausted,
    Cancelled,
}

/// Run (or resume) the tune session of a tune spec target: the body of its `::tune` test.
pub(crate) fn run_trial(t: &PlannedTrial) -> Result<Outcome, String> {
    let p = &t.plan;
    let ts = p
        .spec
        .tune
        .as_ref()
        .ok_or_else(|| format!("{}: not a tune spec", t.name))?;
    let dir = &p.settings_target_dir;
    let target = p.target.id.to_string();
    let sid = session_id(&p.run.run_id, &p.spec.name, &target);
    let space = space_of(&p.target.combos).map_err(|e| format!("{}: {e}", t.name))?;
    let stored = crate::results::with_store(dir, |s| s.tune_session(&sid))?;
    let mut notes = Vec::new();
    let stored = match stored {
        Some(row) => row,
        None => {
            let (seeds, n) = seeds(t, ts)?;
            notes = n;
            let fresh = Session::new(space.clone(), ts.config.clone(), ts.budget.clone(), &seeds)
                .map_err(|e| format!("{}: {e}", t.name))?;
            let now = crate::record::now_unix();
            let row = TuneSessionRow {
                session_id: sid.clone(),
                run_id: Some(p.run.run_id.clone()),
                spec: p.spec.name.clone(),
                target: target.clone(),
                status: "running".into(),
                objective: objective_json(&ts.config),
                budget: serde_json::to_string(&ts.budget).map_err(fail)?,
                bayesian_state: fresh.to_json().map_err(fail)?,
                best_trial: None,
                created_unix_s: now,
                updated_unix_s: now,
            };
            crate::results::with_store(dir, |s| s.begin_tune_session(&row))?
        }
    };
    let mut session = Session::resume_json(space, &stored.bayesian_state)
        .map_err(|e| format!("{}: session {sid}: {e}", t.name))?;
    let resumed = session.trials();
    if stored.status == "cancelled" {
        session.cancel();
    } else {
        crate::results::with_store(dir, |s| s.set_tune_status(&sid, "running", None))?;
    }
    eprintln!(
        "{}: tune session {sid} ({}){}",
        t.name,
        if resumed > 0 {
            format!("resumed after {resumed} trials")
        } else {
            "new".into()
        },
        notes.iter().map(|n| format!("; {n}")).collect::<String>()
    );
    let stop = match drive(t, ts, &sid, &mut session) {
        Ok(s) => s,
        Err(e) => {
            let _ = crate::results::with_store(dir, |s| {
                s.set_tune_status(&sid, "failed", session.to_json().ok().as_deref())
            });
            return Err(format!("{}: tune session {sid}: {e}", t.name));
        }
    };
    verdict(t, ts, &sid, &session, &stop)
}

/// Propose, measure, observe and persist until the budget, the space or a cancellation stops it.
fn drive(
    t: &PlannedTrial,
    ts: &TuneSpec,
    sid: &str,
    session: &mut Session,
) -> Result<Stop, String> {
    let p = &t.plan;
    let dir = &p.settings_target_dir;
    let trim = p.spec.measure.trim;
    let devices = u32::from(p.hardware.device == l1_engines::DeviceKind::Gpu);
    let pace = std::env::var("L1_TUNE_TRIAL_DELAY_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    loop {
        if session.state().cancelled {
            return Ok(Stop::Cancelled);
        }
        let status = crate::results::with_store(dir, |s| s.tune_session(sid))?
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
            Err(e) => return Err(e.to_string()),
        };
        let combo = &p.target.combos[prop.combo];
        let label = combo_slug(&p.cats, combo);
        let n = session.trials();
        let phase = prop.phase();
        let (rec, _) = if phase == Phase::Remeasure {
            let replicate = session
                .state()
                .observations
                .iter()
                .filter(|o| o.combo == prop.combo)
                .count();
            t.obtain_replicate(combo, replicate as u32)?
        } else {
            t.obtain(combo)?
        };
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
                session
                    .observe(Observation {
                        combo: prop.combo,
                        value: v,
                        constraints: cv,
                        phase,
                        elapsed_s: elapsed,
                        devices,
                    })
                    .map_err(fail)?;
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
                session
                    .observe_failure(prop.combo, reason, elapsed, devices)
                    .map_err(fail)?;
                ("failed", None)
            }
        };
        let state = session.to_json().map_err(fail)?;
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
        crate::results::with_store(dir, |s| s.record_tune_trial(sid, &state, best, &row))?;
        let burn = 1.0 - session.remaining().fraction;
        crate::progress::emit(
            &p.run,
            &crate::progress::Event::TuneTrial {
                ts: crate::record::now_unix(),
                pid: std::process::id(),
                trial: format!("{}#{n}", t.name),
                outcome: outcome.into(),
                combo: label.clone(),
                value: stored_value,
                budget_used: burn,
            },
        );
        eprintln!(
            "{}: tune trial {n} ({:?}) {label}: {outcome}{} [budget {:.0} % used]",
            t.name,
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
                    return Err(format!(
                        "no legal point can meet the constraint on `{}`: none of {} evaluated combos met it, and the model gives every unevaluated combo under {:.0} % chance (best {:.2e}); relax the constraint",
                        o.metric,
                        o.observed,
                        OUTLOOK_HOPELESS * 100.0,
                        o.max_prob_unevaluated
                    ));
                }
            }
        }
        if let Some(ms) = pace {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }
}

/// The gate: the recommended point against the baseline's measurement.
fn verdict(
    t: &PlannedTrial,
    ts: &TuneSpec,
    sid: &str,
    session: &Session,
    stop: &Stop,
) -> Result<Outcome, String> {
    let p = &t.plan;
    let dir = &p.settings_target_dir;
    let state = session.to_json().map_err(fail)?;
    let status = if matches!(stop, Stop::Cancelled) {
        "cancelled"
    } else {
        "finished"
    };
    crate::results::with_store(dir, |s| s.set_tune_status(sid, status, Some(&state)))?;
    let metric_name = &ts.config.objective.metric;
    let why = match stop {
        Stop::Budget(l) => format!("budget reached ({l})"),
        Stop::SpaceExhausted => "every legal combo evaluated".into(),
        Stop::Cancelled => "cancelled with `l1 tune cancel`".into(),
    };
    let head = format!(
        "{}: tune session {sid}: {} trials of {} legal combos, {why}",
        t.name,
        session.trials(),
        p.target.combos.len()
    );
    let Some(best) = session.recommend() else {
        return Ok(Outcome {
            passed: false,
            message: format!("{head}; no trial succeeded, so there is no best point"),
            measurement: None,
            verdicts: Vec::new(),
            simulated: p.target.id.engine == "sim",
            cache_hit: false,
        });
    };
    let (base, _) = t.obtain(&p.target.baseline)?;
    let simulated = base.simulated;
    let base_value = match (
        &base.error,
        metric_value(&base, metric_name, p.spec.measure.trim),
    ) {
        (None, Some(v)) => v,
        (err, _) => {
            return Err(format!(
                "{head}; the baseline measurement failed, so the gate cannot be evaluated: {}",
                err.clone()
                    .unwrap_or_else(|| format!("no `{metric_name}` values"))
            ));
        }
    };
    let best_label = combo_slug(&p.cats, &p.target.combos[best.combo]);
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
    Ok(Outcome {
        passed,
        message,
        measurement: None,
        verdicts: Vec::new(),
        simulated,
        cache_hit: false,
    })
}

/// Objective helper for callers outside the crate (status output).
pub fn objective_of(json: &str) -> Option<Objective> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    serde_json::from_value(v.get("objective")?.clone()).ok()
}

/// The `::tune` trial of a stored session, planned in the session's run: the spec is found
/// under `settings.specs`, else rebuilt from the text the store recorded with the run.
pub fn plan_session(
    settings: &crate::suite::Settings,
    row: &TuneSessionRow,
) -> Result<PlannedTrial, String> {
    let run_id = row
        .run_id
        .clone()
        .ok_or_else(|| format!("tune session {} has no run id", row.session_id))?;
    let mut settings = settings.clone();
    if crate::spec::find_by_name(&settings.specs, &row.spec).is_none() {
        let specs = crate::results::with_store(&settings.target_dir, |s| s.run_specs(&run_id))?;
        let Some((_, path, source, _)) = specs.into_iter().find(|s| s.0 == row.spec) else {
            return Err(format!(
                "spec `{}` of tune session {} is neither under {} nor recorded in the store",
                row.spec,
                row.session_id,
                settings.specs.display()
            ));
        };
        let file = std::path::Path::new(&path)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{}.yaml", row.spec));
        let dir = settings
            .target_dir
            .join("l1")
            .join("tune")
            .join(&row.session_id);
        std::fs::create_dir_all(&dir).map_err(fail)?;
        std::fs::write(dir.join(&file), source).map_err(fail)?;
        settings.specs = dir;
    }
    let (trials, errors) =
        crate::suite::plan_in_run(&settings, Some(&row.spec), Some(&row.target), &run_id);
    if let Some((name, d)) = errors.into_iter().next() {
        return Err(format!("{name}: {d}"));
    }
    trials
        .into_iter()
        .find(|t| t.name.ends_with("::tune") && t.name.contains(&row.target))
        .ok_or_else(|| {
            format!(
                "spec `{}` has no tune trial for target {} (is it still a tune spec?)",
                row.spec, row.target
            )
        })
}

/// Clear a stored session's cancelled flag and mark it running (`l1 tune resume`).
pub fn reopen(settings: &crate::suite::Settings, row: &TuneSessionRow) -> Result<(), String> {
    let mut state: l1_tune::TuneState = serde_json::from_str(&row.bayesian_state).map_err(fail)?;
    state.cancelled = false;
    let json = serde_json::to_string(&state).map_err(fail)?;
    crate::results::with_store(&settings.target_dir, |s| {
        s.reopen_tune_session(&row.session_id, &json)
    })?;
    Ok(())
}

/// A stored session's progress, budget burn and best-so-far (with its interval when the
/// session's space can be rebuilt), as JSON.
pub fn status_json(
    settings: &crate::suite::Settings,
    row: &TuneSessionRow,
    trials: &[TuneTrialRow],
) -> Result<serde_json::Value, String> {
    let state: l1_tune::TuneState = serde_json::from_str(&row.bayesian_state).map_err(fail)?;
    let remaining = state.budget.remaining(&state.usage);
    let objective = &state.config.objective;
    let mut best = serde_json::Value::Null;
    let mut space_len = serde_json::Value::Null;
    if let Ok(t) = plan_session(settings, row)
        && let Ok(space) = space_of(&t.plan.target.combos)
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
