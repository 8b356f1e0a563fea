//! `l1 tune status | resume | cancel | list`: Tier-2 tune sessions in the results store.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use clap::Subcommand;
use l1_harness::settings::Settings;
use l1_harness::tuning;
use l1_store::{Store, TuneSessionRow};

use crate::common::open;

#[derive(Subcommand)]
pub enum TuneAction {
    /// Tune sessions in the store, newest first.
    List,
    /// A session's objective and acquisition, progress, budget burn and best point so far (with
    /// its 95 % interval).
    Status {
        /// The session id (as `l1 tune list` shows it).
        id: String,
    },
    /// Continue a session in this process: runs its remaining trials, then its gate.
    Resume {
        /// The session id.
        id: String,
    },
    /// Mark a session cancelled: a running session stops after its current trial and persists.
    Cancel {
        /// The session id.
        id: String,
    },
}

fn session(store: &mut Store, id: &str) -> Result<TuneSessionRow> {
    if let Some(s) = store.tune_session(id)? {
        return Ok(s);
    }
    let all = store.tune_sessions()?;
    let near: Vec<&TuneSessionRow> = all
        .iter()
        .filter(|s| s.session_id.starts_with(id) || s.session_id.contains(id))
        .collect();
    match near.as_slice() {
        [one] => Ok((*one).clone()),
        [] => bail!(
            "unknown tune session `{id}` in {} (`l1 tune list` shows the {} sessions it holds)",
            store.location().display(),
            all.len()
        ),
        many => bail!(
            "tune session `{id}` is ambiguous: {}",
            many.iter()
                .map(|s| format!("`{}`", s.session_id))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

pub fn run(json: bool, settings: &Settings, action: &TuneAction) -> Result<ExitCode> {
    let mut store = open(settings)?;
    match action {
        TuneAction::List => {
            let all = store.tune_sessions()?;
            if json {
                let rows: Vec<serde_json::Value> = all
                    .iter()
                    .map(|s| {
                        serde_json::json!({
                            "session_id": s.session_id, "run_id": s.run_id, "spec": s.spec,
                            "target": s.target, "status": s.status,
                        })
                    })
                    .collect();
                out!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for s in &all {
                    out!(
                        "{}  {:<9}  {}  {}  run {}",
                        s.session_id,
                        s.status,
                        s.spec,
                        s.target,
                        s.run_id.as_deref().unwrap_or("-")
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TuneAction::Status { id } => {
            let row = session(&mut store, id)?;
            let trials = store.tune_trials(&row.session_id)?;
            drop(store);
            let v = l1_harness::suite::session_status(settings, &row, &trials)
                .map_err(|e| anyhow!(e))?;
            if json {
                out!("{}", serde_json::to_string_pretty(&v)?);
                return Ok(ExitCode::SUCCESS);
            }
            out!("tune session {} ({})", row.session_id, row.status);
            out!("  spec {}  target {}", row.spec, row.target);
            out!("  run  {}", row.run_id.as_deref().unwrap_or("-"));
            out!(
                "  objective {} {}  acquisition {}",
                v["objective"]["direction"].as_str().unwrap_or("?"),
                v["objective"]["metric"].as_str().unwrap_or("?"),
                v["acquisition"].as_str().unwrap_or("?")
            );
            out!(
                "  progress {} trials ({} failed, {} re-measurements) of {} legal combos; budget {} used ({:.0} %): {} s measured, {} trials",
                v["trials"],
                v["failed_trials"],
                v["remeasured_trials"],
                v["legal_combos"],
                v["budget"],
                v["budget_used"].as_f64().unwrap_or(0.0) * 100.0,
                v["usage"]["elapsed_s"]
                    .as_f64()
                    .map_or("?".into(), |x| format!("{x:.1}")),
                v["usage"]["trials"]
            );
            let b = &v["best"];
            if b.is_null() {
                out!("  best so far: none yet");
            } else {
                out!(
                    "  best so far {}: observed {}{}",
                    b["combo"].as_str().unwrap_or("?"),
                    b["observed"],
                    match (b["predicted"].as_f64(), b["interval95"].as_array()) {
                        (Some(p), Some(i)) => format!(
                            ", posterior {p:.4} [{:.4}, {:.4}] 95 %",
                            i.first().and_then(|x| x.as_f64()).unwrap_or(f64::NAN),
                            i.get(1).and_then(|x| x.as_f64()).unwrap_or(f64::NAN)
                        ),
                        _ => String::new(),
                    }
                );
            }
            for t in &trials {
                out!(
                    "  #{:<3} {:<10} {} {}",
                    t.n,
                    t.outcome,
                    t.value.map_or("-".into(), |x| format!("{x:.4}")),
                    t.combo
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TuneAction::Cancel { id } => {
            let row = session(&mut store, id)?;
            store.set_tune_status(&row.session_id, "cancelled", None)?;
            if json {
                out!(
                    "{}",
                    serde_json::json!({"session_id": row.session_id, "status": "cancelled"})
                );
            } else {
                out!(
                    "tune session {} cancelled: a running session stops after its current trial (its state is kept; `l1 tune resume {}` continues it)",
                    row.session_id,
                    row.session_id
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TuneAction::Resume { id } => {
            let row = session(&mut store, id)?;
            drop(store);
            let trial = l1_harness::suite::plan_session(settings, &row).map_err(|e| anyhow!(e))?;
            tuning::reopen(settings, &row).map_err(|e| anyhow!(e))?;
            let name = trial.name.clone();
            let r = trial.execute();
            let (ok, msg) = match &r {
                Ok(()) => (true, "passed".to_string()),
                Err(e) => (false, e.clone()),
            };
            if json {
                out!(
                    "{}",
                    serde_json::json!({"session_id": row.session_id, "trial": name, "passed": ok, "message": msg})
                );
            } else {
                out!("{name}: {}", if ok { "passed" } else { "FAILED" });
                if !ok {
                    out!("{msg}");
                }
            }
            Ok(if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
