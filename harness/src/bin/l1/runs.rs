//! `l1 runs list | show | cancel | delete | follow`: runs in the results store.

use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use l1_harness::record::{RunDir, TrialRecord};
use l1_harness::settings::Settings;
use l1_reports::dates::parse_since;
use l1_store::{RunFilter, RunRow, RunStatus, Store};

use crate::common::{open, stamp};

#[derive(Subcommand)]
pub enum RunsAction {
    /// Runs in the store, newest first.
    List {
        /// Only runs that executed this spec.
        #[arg(long)]
        spec: Option<String>,
        /// Only runs with trials of this engine.
        #[arg(long)]
        engine: Option<String>,
        /// Only runs with this status: unfinished (no verdict: in progress, interrupted or never
        /// reported), passed, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Only runs started since: `7d`, `12h`, `30m`, a date `2026-12-01` or Unix seconds.
        #[arg(long)]
        since: Option<String>,
        /// Only runs labelled so (`L1_RUN_LABEL`, e.g. `main`).
        #[arg(long)]
        label: Option<String>,
        /// Include soft-deleted runs.
        #[arg(long)]
        deleted: bool,
        /// At most this many runs.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Skip this many runs first (the next page: `--offset` plus `--limit`).
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// One run: status, counts, gate verdicts, and per-combo metrics from the stored reps.
    Show {
        /// The run id (as `l1 runs list` shows it).
        id: String,
    },
    /// Ask a running harness to stop: trials that have not started fail with the reason; what
    /// was measured is kept.
    Cancel {
        /// The run id.
        id: String,
    },
    /// Soft-delete a run: hidden from listings and from the cache, kept in the database.
    Delete {
        /// The run id.
        id: String,
    },
    /// Follow a run's progress events (`target/l1/runs/<id>/events.jsonl`) as they happen: the
    /// events so far, then new ones, until the run finishes.
    Follow {
        /// The run id.
        id: String,
        /// Stop after this many seconds without a new event.
        #[arg(long, value_name = "SECONDS")]
        idle_timeout: Option<f64>,
    },
}

fn run_json(r: &RunRow) -> serde_json::Value {
    serde_json::json!({
        "run_id": r.run.run_id,
        "status": r.status.as_str(),
        "mode": r.run.mode,
        "label": r.run.label,
        "started_unix_s": r.run.started_unix_s,
        "updated_unix_s": r.updated_unix_s,
        "last_activity_unix_s": r.updated_unix_s,
        "finished_unix_s": r.finished_unix_s,
        "cancel_requested_unix_s": r.cancel_requested_unix_s,
        "deleted_unix_s": r.deleted_unix_s,
        "trials_passed": r.trials_passed,
        "trials_failed": r.trials_failed,
        "measurements": r.measurements,
        "cache_hits": r.cache_hits,
        "specs": r.specs,
        "engines": r.engines,
        "harness_version": r.run.harness_version,
        "hardware_fingerprint": r.run.hardware_fingerprint,
        "hardware": r.run.hardware,
        "host": r.run.host,
        "catalog_snapshot": r.run.catalog_snapshot,
    })
}

pub fn run(json: bool, settings: &Settings, action: &RunsAction) -> Result<ExitCode> {
    if let RunsAction::Follow { id, idle_timeout } = action {
        let dir = RunDir::new(&settings.target_dir, id);
        let opts = l1_harness::progress::FollowOptions {
            stop_when_finished: true,
            idle_timeout: idle_timeout.map(std::time::Duration::from_secs_f64),
            json,
            ..Default::default()
        };
        let n = l1_harness::progress::follow(&dir.path, &mut std::io::stdout(), opts)
            .with_context(|| format!("failed to follow {}", dir.path.display()))?;
        if n == 0 {
            eprintln!("no events for run {id} under {}", dir.path.display());
            return Ok(ExitCode::from(1));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut store = open(settings)?;
    let now = l1_store::now_unix();
    match action {
        RunsAction::List {
            spec,
            engine,
            status,
            since,
            label,
            deleted,
            limit,
            offset,
        } => {
            let status = match status {
                Some(s) => Some(RunStatus::parse(s).with_context(|| {
                    format!(
                        "--status `{s}` is not a run status; expected one of: {}",
                        RunStatus::NAMES.join(", ")
                    )
                })?),
                None => None,
            };
            let filter = RunFilter {
                spec: spec.clone(),
                engine: engine.clone(),
                status,
                since_unix_s: since.as_deref().map(|s| parse_since(s, now)).transpose()?,
                label: label.clone(),
                include_deleted: *deleted,
                limit: Some(*limit),
                offset: *offset,
            };
            let rows = store.list_runs(&filter)?;
            if json {
                let list: Vec<_> = rows.iter().map(run_json).collect();
                out!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "store": store.location().display(),
                        "offset": offset,
                        "limit": limit,
                        "runs": list,
                    }))?
                );
            } else if rows.is_empty() {
                out!("no runs match in {}", store.location().display());
            } else {
                out!(
                    "{:<34} {:<10} {:<20} {:>6} {:>6} {:>5} {:>5}  specs",
                    "run",
                    "status",
                    "started",
                    "passed",
                    "failed",
                    "meas",
                    "hits"
                );
                for r in &rows {
                    out!(
                        "{:<34} {:<10} {:<20} {:>6} {:>6} {:>5} {:>5}  {}{}{}",
                        r.run.run_id,
                        r.status.as_str(),
                        stamp(r.run.started_unix_s),
                        r.trials_passed,
                        r.trials_failed,
                        r.measurements,
                        r.cache_hits,
                        r.specs.join(","),
                        if r.status == RunStatus::Unfinished {
                            format!(" (last activity {})", stamp(r.updated_unix_s))
                        } else {
                            String::new()
                        },
                        if r.deleted_unix_s.is_some() {
                            " (deleted)"
                        } else {
                            ""
                        }
                    );
                }
                if rows.len() == *limit {
                    out!(
                        "(first {limit} from offset {offset}; `--offset {}` for more)",
                        offset + limit
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsAction::Show { id } => show(json, &mut store, id),
        RunsAction::Follow { .. } => unreachable!("handled above"),
        RunsAction::Cancel { id } => {
            store.request_cancel(id)?;
            if json {
                out!(
                    "{}",
                    serde_json::json!({"run_id": id, "cancel_requested": true})
                );
            } else {
                out!(
                    "run {id}: cancellation requested; trials that have not started will fail with the reason, measured results are kept"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        RunsAction::Delete { id } => {
            store.delete_run(id)?;
            if json {
                out!("{}", serde_json::json!({"run_id": id, "deleted": true}));
            } else {
                out!(
                    "run {id}: deleted (hidden from listings and the cache; `runs list --deleted` still shows it)"
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The metrics `runs show` summarises per combo.
const SHOWN: &[&str] = &[
    "output_tokens_per_s",
    "requests_per_s",
    "ttft_p95_ms",
    "itl_p95_ms",
    "e2e_p95_ms",
];

fn show(json: bool, store: &mut Store, id: &str) -> Result<ExitCode> {
    let Some(run) = store.run(id)? else {
        // Let the store phrase the error (with suggestions).
        store.request_cancel(id)?;
        bail!("unknown run `{id}`");
    };
    let measurements = store.measurements(id)?;
    let trials = store.trials(id)?;
    let mut combos = Vec::new();
    for m in &measurements {
        let mut metrics = serde_json::Map::new();
        for name in SHOWN {
            let values: Vec<f64> = m
                .reps
                .iter()
                .filter_map(|r| r.get(*name).copied())
                .collect();
            if values.is_empty() {
                continue;
            }
            let tm = l1_harness::stats::trimmed_mean(&values, 0.1).ok();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            metrics.insert(
                (*name).into(),
                serde_json::json!({
                    "trimmed_mean_10": tm,
                    "median": sorted[sorted.len() / 2],
                    "min": sorted[0],
                    "max": sorted[sorted.len() - 1],
                }),
            );
        }
        combos.push(serde_json::json!({
            "key": m.key,
            "target": format!("{}@{}::{}::{}::{}", m.engine, m.target_version, m.model, m.hardware, m.workload),
            "spec": m.spec,
            "combo": m.combo,
            "reps": m.reps.len(),
            "simulated": m.simulated,
            "engine_version": m.engine_version,
            "cache_hit_from": m.cache_from.as_ref().map(|(r, k)| format!("{r}/{k}")),
            "error": m.error,
            "metrics": metrics,
        }));
    }
    let gates: Vec<_> = trials
        .iter()
        .filter(|t| t.kind == "gate")
        .map(|t| {
            let rec: Option<TrialRecord> = serde_json::from_str(&t.record).ok();
            serde_json::json!({
                "trial": t.name,
                "passed": t.passed,
                "gates": rec.as_ref().map(|r| r.gates.iter().map(|g| serde_json::json!({
                    "method": g.method, "passed": g.passed, "winner": g.winner,
                })).collect::<Vec<_>>()),
            })
        })
        .collect();
    let failed: Vec<_> = trials
        .iter()
        .filter(|t| !t.passed)
        .map(|t| serde_json::json!({"trial": t.name, "message": t.message.lines().next().unwrap_or("")}))
        .collect();
    if json {
        out!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "run": run_json(&run),
                "gates": gates,
                "failed_trials": failed,
                "measurements": combos,
            }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "run {} [{}] started {}, {} trials passed, {} failed, {} measurements ({} from the cache)",
        run.run.run_id,
        if run.status == RunStatus::Unfinished {
            format!("unfinished, last activity {}", stamp(run.updated_unix_s))
        } else {
            run.status.as_str().to_string()
        },
        stamp(run.run.started_unix_s),
        run.trials_passed,
        run.trials_failed,
        run.measurements,
        run.cache_hits
    );
    out!(
        "  harness {}, catalog {}, host {}, {}",
        run.run.harness_version,
        run.run.catalog_snapshot,
        run.run.host,
        run.run.hardware
    );
    for g in &gates {
        out!(
            "  gate {}: {}",
            g["trial"].as_str().unwrap_or(""),
            if g["passed"].as_bool() == Some(true) {
                "passed"
            } else {
                "FAILED"
            }
        );
        for v in g["gates"].as_array().into_iter().flatten() {
            out!(
                "    {} {} winner {}",
                v["method"].as_str().unwrap_or(""),
                if v["passed"].as_bool() == Some(true) {
                    "pass"
                } else {
                    "FAIL"
                },
                v["winner"].as_str().unwrap_or("-")
            );
        }
    }
    for f in &failed {
        out!(
            "  failed {}: {}",
            f["trial"].as_str().unwrap_or(""),
            f["message"].as_str().unwrap_or("")
        );
    }
    out!(
        "  {:<52} {:>4} {:>12} {:>12}  combo",
        "target",
        "reps",
        "tok/s",
        "ttft p95 ms"
    );
    for c in &combos {
        let m = |name: &str| {
            c["metrics"][name]["trimmed_mean_10"]
                .as_f64()
                .map_or("-".to_string(), |v| format!("{v:.2}"))
        };
        out!(
            "  {:<52} {:>4} {:>12} {:>12}  {}{}{}",
            c["target"].as_str().unwrap_or(""),
            c["reps"],
            m("output_tokens_per_s"),
            m("ttft_p95_ms"),
            c["combo"].as_str().unwrap_or(""),
            if c["cache_hit_from"].is_string() {
                " [cache hit]"
            } else {
                ""
            },
            c["error"]
                .as_str()
                .map(|e| format!(" [error: {}]", e.lines().next().unwrap_or("")))
                .unwrap_or_default()
        );
    }
    out!("  (metrics: 10% trimmed means over the stored reps)");
    Ok(ExitCode::SUCCESS)
}
