//! `l1 runs`, `l1 cache`, `l1 apply`, `l1 store` and `l1 catalog snapshots | diff`: the commands
//! that read and change the results store.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use l1_harness::profiles::Catalogs;
use l1_harness::record::{self, MeasurementRecord, RunDir, TrialRecord};
use l1_harness::results;
use l1_harness::suite::{Settings, combo_slug};
use l1_store::{CacheFilter, RunFilter, RunRow, RunStatus, Store};

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
        /// unfinished (no verdict: in progress, interrupted or never reported), passed, failed or
        /// cancelled.
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
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long, default_value_t = 0)]
        offset: usize,
    },
    /// One run: status, counts, gate verdicts, and per-combo metrics from the stored reps.
    Show { id: String },
    /// Ask a running harness to stop: trials that have not started fail with the reason; what
    /// was measured is kept.
    Cancel { id: String },
    /// Soft-delete a run: hidden from listings and from the cache, kept in the database.
    Delete { id: String },
    /// Follow a run's progress events (`target/l1/runs/<id>/events.jsonl`) as they happen: the
    /// events so far, then new ones, until the run finishes.
    Follow {
        id: String,
        /// Stop after this many seconds without a new event.
        #[arg(long, value_name = "SECONDS")]
        idle_timeout: Option<f64>,
    },
}

#[derive(Subcommand)]
pub enum CacheAction {
    /// Valid, expired and flushed entries, hits and misses.
    Stats,
    /// Stop entries from answering lookups (they stay in the history). Give a filter or `--all`.
    Flush {
        #[arg(long)]
        engine: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        hardware: Option<String>,
        #[arg(long)]
        spec: Option<String>,
        /// Only entries measured before this time (same forms as `runs list --since`).
        #[arg(long)]
        before: Option<String>,
        /// Flush every entry.
        #[arg(long)]
        all: bool,
    },
}

#[derive(Subcommand)]
pub enum StoreAction {
    /// Put a run directory's records into the store (default: the newest run). Idempotent.
    Ingest { run: Option<String> },
    /// Where the store is, its schema version, and whether every stored measurement is whole.
    Check,
}

fn open(settings: &Settings) -> Result<Store> {
    let loc = results::location(&settings.target_dir);
    Store::open(&loc).map_err(|e| anyhow::anyhow!("{e}"))
}

/// `7d`, `12h`, `30m`, `2026-12-01`, `2026-12-01T10:00:00Z` or Unix seconds → Unix seconds.
pub fn parse_time(text: &str, now: f64) -> Result<f64> {
    let t = text.trim();
    if let Some((n, unit)) = t
        .char_indices()
        .last()
        .filter(|(_, c)| matches!(c, 'd' | 'h' | 'm' | 's'))
        .map(|(i, c)| (&t[..i], c))
        && let Ok(n) = n.parse::<f64>()
    {
        let secs = match unit {
            'd' => 86_400.0,
            'h' => 3_600.0,
            'm' => 60.0,
            _ => 1.0,
        };
        return Ok(now - n * secs);
    }
    if let Ok(v) = t.parse::<f64>() {
        return Ok(v);
    }
    // YYYY-MM-DD[THH:MM[:SS][Z]]
    let (date, time) = t.split_once('T').unwrap_or((t, "00:00:00"));
    let d: Vec<i64> = date.split('-').filter_map(|x| x.parse().ok()).collect();
    let tm: Vec<i64> = time
        .trim_end_matches('Z')
        .split(':')
        .filter_map(|x| x.parse().ok())
        .collect();
    if d.len() == 3 && (2..=3).contains(&tm.len()) {
        let (y, m, day) = (d[0], d[1], d[2]);
        // Days from civil (Howard Hinnant's algorithm).
        let y2 = if m <= 2 { y - 1 } else { y };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let secs = days * 86_400 + tm[0] * 3600 + tm[1] * 60 + tm.get(2).copied().unwrap_or(0);
        return Ok(secs as f64);
    }
    bail!(
        "`{text}` is not a time: expected a duration ago (`7d`, `12h`, `30m`), a date (`2026-12-01`, `2026-12-01T10:00Z`) or Unix seconds"
    )
}

fn stamp(t: f64) -> String {
    let s = record::utc_stamp(t.max(0.0) as u64);
    // 20261202T101500Z -> 2026-12-02 10:15:00Z
    format!(
        "{}-{}-{} {}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    )
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

pub fn runs(json: bool, settings: &Settings, action: &RunsAction) -> Result<ExitCode> {
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
                since_unix_s: since.as_deref().map(|s| parse_time(s, now)).transpose()?,
                label: label.clone(),
                include_deleted: *deleted,
                limit: Some(*limit),
                offset: *offset,
            };
            let rows = store
                .list_runs(&filter)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
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
            store
                .request_cancel(id)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
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
            store.delete_run(id).map_err(|e| anyhow::anyhow!("{e}"))?;
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
    let err = |e: l1_store::StoreError| anyhow::anyhow!("{e}");
    let Some(run) = store.run(id).map_err(err)? else {
        // Let the store phrase the error (with suggestions).
        store.request_cancel(id).map_err(err)?;
        bail!("unknown run `{id}`");
    };
    let measurements = store.measurements(id).map_err(err)?;
    let trials = store.trials(id).map_err(err)?;
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

pub fn cache(json: bool, settings: &Settings, action: &CacheAction) -> Result<ExitCode> {
    let mut store = open(settings)?;
    let now = l1_store::now_unix();
    match action {
        CacheAction::Stats => {
            let s = store.cache_stats(now).map_err(|e| anyhow::anyhow!("{e}"))?;
            let mode = results::cache_mode().map_err(anyhow::Error::msg)?;
            let rate = if s.hits + s.misses > 0 {
                s.hits as f64 / (s.hits + s.misses) as f64
            } else {
                0.0
            };
            if json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "store": store.location().display(),
                        "mode": format!("{mode:?}").to_lowercase(),
                        "ttl_days": l1_store::CACHE_TTL_S / 86_400.0,
                        "valid": s.valid,
                        "expired": s.expired,
                        "flushed": s.flushed,
                        "hits": s.hits,
                        "misses": s.misses,
                        "hit_rate": rate,
                        "valid_by_engine": s.valid_by_engine.iter().map(|(e, n)| serde_json::json!({"engine": e, "valid": n})).collect::<Vec<_>>(),
                    }))?
                );
            } else {
                out!(
                    "cache in {} (L1_CACHE={}, TTL 30 days)",
                    store.location().display(),
                    format!("{mode:?}").to_lowercase()
                );
                out!(
                    "  entries: {} valid, {} expired, {} flushed",
                    s.valid,
                    s.expired,
                    s.flushed
                );
                out!(
                    "  all time: {} hits, {} real measurements offered to the cache (hit rate {:.1}%)",
                    s.hits,
                    s.misses,
                    rate * 100.0
                );
                for (e, n) in &s.valid_by_engine {
                    out!("  {e}: {n} valid");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Flush {
            engine,
            model,
            hardware,
            spec,
            before,
            all,
        } => {
            let filter = CacheFilter {
                engine: engine.clone(),
                model: model.clone(),
                hardware: hardware.clone(),
                spec: spec.clone(),
                before_unix_s: before.as_deref().map(|b| parse_time(b, now)).transpose()?,
            };
            let any = filter.engine.is_some()
                || filter.model.is_some()
                || filter.hardware.is_some()
                || filter.spec.is_some()
                || filter.before_unix_s.is_some();
            if !any && !all {
                bail!(
                    "say what to flush: --engine, --model, --hardware, --spec, --before, or --all"
                );
            }
            let n = store
                .cache_flush(&filter, now)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                out!("{}", serde_json::json!({"flushed": n}));
            } else {
                out!("flushed {n} cache entries (the measurements stay in the history)");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub fn store_cmd(json: bool, settings: &Settings, action: &StoreAction) -> Result<ExitCode> {
    let mut store = open(settings)?;
    match action {
        StoreAction::Ingest { run } => {
            let runs_dir = settings.target_dir.join("l1").join("runs");
            let id = match run {
                Some(r) => r.clone(),
                None => crate::newest_run(&runs_dir)
                    .with_context(|| format!("no runs under {}", runs_dir.display()))?,
            };
            let dir = RunDir::new(&settings.target_dir, &id);
            if !dir.path.is_dir() {
                bail!("unknown run `{id}` (no directory {})", dir.path.display());
            }
            let mode = results::cache_mode().map_err(anyhow::Error::msg)?;
            let got =
                results::ingest(&dir, &mut store, mode).map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                out!(
                    "{}",
                    serde_json::json!({
                        "run_id": id,
                        "measurements_new": got.measurements_new,
                        "measurements_seen": got.measurements_seen,
                        "trials_new": got.trials_new,
                        "trials_seen": got.trials_seen,
                        "unreadable": got.problems,
                    })
                );
            } else {
                out!(
                    "run {id}: {} of {} measurements and {} of {} trials were new to {}",
                    got.measurements_new,
                    got.measurements_seen,
                    got.trials_new,
                    got.trials_seen,
                    store.location().display()
                );
                for p in &got.problems {
                    out!("  unreadable record: {p}");
                }
            }
            Ok(if got.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        StoreAction::Check => {
            let err = |e: l1_store::StoreError| anyhow::anyhow!("{e}");
            let version = store.current_schema_version().map_err(err)?;
            let incomplete = store.incomplete_measurements().map_err(err)?;
            if json {
                out!(
                    "{}",
                    serde_json::json!({
                        "store": store.location().display(),
                        "schema_version": version,
                        "incomplete_measurements": incomplete,
                    })
                );
            } else {
                out!(
                    "store {} (schema version {version}): {} incomplete measurements",
                    store.location().display(),
                    incomplete.len()
                );
                for (r, k) in &incomplete {
                    out!("  {r}/{k}");
                }
            }
            Ok(if incomplete.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

/// `l1 catalog snapshots`: the snapshot files under `catalogs/snapshots/` and those the store
/// recorded with results.
pub fn catalog_snapshots(json: bool, root: &Path, settings: &Settings) -> Result<ExitCode> {
    let dir = root.join("catalogs").join("snapshots");
    let mut files: Vec<(String, String)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let p = e.path();
            if let Ok(text) = std::fs::read_to_string(&p)
                && let Ok(l) = l1_harness::catalog::LoadedCatalog::from_text(&p, &text)
            {
                files.push((l.snapshot, p.display().to_string()));
            }
        }
    }
    files.sort();
    let stored = open(settings)?
        .catalog_snapshots()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if json {
        out!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "files": files.iter().map(|(s, p)| serde_json::json!({"snapshot": s, "path": p})).collect::<Vec<_>>(),
                "stored": stored.iter().map(|(s, v, t)| serde_json::json!({"snapshot": s, "version": v, "recorded_unix_s": t})).collect::<Vec<_>>(),
            }))?
        );
    } else {
        out!("snapshot files ({}):", dir.display());
        for (s, p) in &files {
            out!("  {s}  {p}");
        }
        out!("recorded with results in the store:");
        for (s, _, t) in &stored {
            out!("  {s}  first used {}", stamp(*t));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A catalog by name: a snapshot id (`v3-…` or `v3`) from the files or the store, `current`, or
/// a path to a catalog file.
fn catalog_text(root: &Path, settings: &Settings, name: &str) -> Result<(String, String)> {
    let current = root.join("catalogs").join("kernels.yaml");
    if name == "current" {
        let text = std::fs::read_to_string(&current)
            .with_context(|| format!("failed to read {}", current.display()))?;
        return Ok((current.display().to_string(), text));
    }
    let as_path = PathBuf::from(name);
    if as_path.is_file() {
        let text = std::fs::read_to_string(&as_path)?;
        return Ok((name.to_string(), text));
    }
    let dir = root.join("catalogs").join("snapshots");
    let mut known = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            if let Ok(text) = std::fs::read_to_string(&p)
                && let Ok(l) = l1_harness::catalog::LoadedCatalog::from_text(&p, &text)
            {
                let version = format!("v{}", l.catalog.version);
                if l.snapshot == name || version == name {
                    return Ok((format!("{} ({})", l.snapshot, p.display()), text));
                }
                known.push(l.snapshot);
            }
        }
    }
    if let Ok(mut store) = open(settings)
        && let Ok(Some(text)) = store.catalog_snapshot(name)
    {
        return Ok((format!("{name} (from the store)"), text));
    }
    bail!(
        "no catalog `{name}`: expected `current`, a file, or a snapshot id ({})",
        known.join(", ")
    )
}

/// `l1 catalog diff A B`: a line diff of two catalogs.
pub fn catalog_diff(
    json: bool,
    root: &Path,
    settings: &Settings,
    a: &str,
    b: &str,
) -> Result<ExitCode> {
    let (la, ta) = catalog_text(root, settings, a)?;
    let (lb, tb) = catalog_text(root, settings, b)?;
    let diff = similar::TextDiff::from_lines(&ta, &tb);
    if json {
        let changes: Vec<_> = diff
            .iter_all_changes()
            .filter(|c| c.tag() != similar::ChangeTag::Equal)
            .map(|c| {
                serde_json::json!({
                    "op": if c.tag() == similar::ChangeTag::Delete { "-" } else { "+" },
                    "old_line": c.old_index().map(|i| i + 1),
                    "new_line": c.new_index().map(|i| i + 1),
                    "text": c.value().trim_end_matches('\n'),
                })
            })
            .collect();
        out!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"a": la, "b": lb, "changes": changes})
            )?
        );
    } else {
        out!(
            "{}",
            diff.unified_diff()
                .context_radius(2)
                .header(&la, &lb)
                .to_string()
                .trim_end()
        );
    }
    Ok(if ta == tb {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `l1 apply RUN [--out DIR]`: per target of the run, the winning combo (the gate's winner, else
/// the baseline) written as the engine's launch artifact with provenance.
pub fn apply(
    json: bool,
    root: &Path,
    settings: &Settings,
    run: &str,
    out_dir: Option<&Path>,
    force: bool,
) -> Result<ExitCode> {
    let mut store = open(settings)?;
    let err = |e: l1_store::StoreError| anyhow::anyhow!("{e}");
    let Some(run_row) = store.run(run).map_err(err)? else {
        store.delete_run(run).map_err(err)?; // phrases the unknown-run error with suggestions
        bail!("unknown run `{run}`");
    };
    let cats = Catalogs::load(root).map_err(|d| anyhow::anyhow!("{d}"))?;
    let trials = store.trials(run).map_err(err)?;
    let measurements: Vec<MeasurementRecord> = store
        .measurements(run)
        .map_err(err)?
        .iter()
        .map(|m| serde_json::from_str(&m.record))
        .collect::<Result<_, _>>()
        .context("a stored measurement record does not parse")?;
    let out_dir = out_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| settings.target_dir.join("l1").join("apply").join(run));
    let mut written = Vec::new();
    let mut skipped = Vec::new();
    for t in trials.iter().filter(|t| t.kind == "gate") {
        let rec: TrialRecord = serde_json::from_str(&t.record)
            .with_context(|| format!("stored trial {} does not parse", t.name))?;
        let of_target: Vec<&MeasurementRecord> = measurements
            .iter()
            .filter(|m| m.target == rec.target && m.spec == rec.spec && m.error.is_none())
            .collect();
        // Only a winner a gate that tests for improvement established is applied; anything
        // else (pareto/regression/manual only, a failed or inconclusive improvement gate)
        // is explained and written only with --force.
        let headline = l1_harness::headline::headline(&rec.gates);
        let established = l1_harness::headline::established_winner(&rec.gates).is_some();
        if rec.passed && !established && !force {
            let best = headline.winner.as_deref().unwrap_or("the baseline");
            skipped.push(format!(
                "{}: no established winner: {}{}; nothing written (`l1 apply --force` writes {best} anyway)",
                t.name,
                l1_harness::headline::why_not_established(&rec.gates),
                headline
                    .inconclusive
                    .as_deref()
                    .map(|i| format!("; inconclusive — {i}"))
                    .unwrap_or_default(),
            ));
            continue;
        }
        let winner_label = rec.gates.iter().find_map(|g| g.winner.clone());
        let chosen = match &winner_label {
            Some(label) => of_target
                .iter()
                .find(|m| combo_slug(&cats, &m.combo) == *label)
                .copied(),
            None => of_target
                .iter()
                .find(|m| m.measured_by.ends_with("::baseline"))
                .copied(),
        };
        let Some(chosen) = chosen else {
            skipped.push(format!(
                "{}: no measurement of the winner `{}` in the run",
                t.name,
                winner_label.as_deref().unwrap_or("baseline")
            ));
            continue;
        };
        if !rec.passed {
            skipped.push(format!(
                "{}: the gate failed; nothing is applied from a failed gate",
                t.name
            ));
            continue;
        }
        if chosen.simulated {
            skipped.push(format!(
                "{}: simulated results (sim engine): there is no engine to configure",
                t.name
            ));
            continue;
        }
        let slug = format!("{}--{}", rec.spec, rec.target)
            .replace("::", "--")
            .replace(['/', '@', ' '], "_");
        let dir = out_dir.join(slug);
        let artifact = launch_artifact(&cats, settings, chosen)?;
        std::fs::create_dir_all(dir.join("files"))
            .with_context(|| format!("failed to create {}", dir.display()))?;
        for (rel, content) in &artifact.files {
            let p = dir.join("files").join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&p, content)
                .with_context(|| format!("failed to write {}", p.display()))?;
        }
        let provenance = serde_json::json!({
            "run_id": run,
            "spec": rec.spec,
            "target": rec.target.to_string(),
            "combo": chosen.combo,
            "combo_slug": combo_slug(&cats, &chosen.combo),
            "chosen_by": if established {
                format!("established winner ({})", l1_reports::verdict::IMPROVEMENT_GATES.join(", "))
            } else {
                format!(
                    "forced (--force): {} not established: {}",
                    winner_label.as_deref().unwrap_or("baseline"),
                    l1_harness::headline::why_not_established(&rec.gates)
                )
            },
            "established": established,
            "change_vs_baseline_pct": headline.change_pct,
            "interval_pct": headline.interval_pct,
            "p_best": headline.p_best,
            "measurement": chosen.key,
            "reps": chosen.reps.len(),
            "engine_version": chosen.engine_version,
            "catalog_snapshot": chosen.catalog_snapshot,
            "harness_version": chosen.harness_version,
            "hardware": run_row.run.hardware,
            "hardware_fingerprint": run_row.run.hardware_fingerprint,
            "measured_unix_s": chosen.started_unix_s,
        });
        let launch = serde_json::json!({
            "engine": rec.target.engine,
            "program": artifact.program,
            "args": artifact.args,
            "env": artifact.env,
            "files": artifact.files.keys().collect::<Vec<_>>(),
            "settings": artifact.settings,
            "notes": artifact.notes,
            "provenance": provenance,
        });
        record::write_json_atomic(&dir.join("launch.json"), &launch).map_err(anyhow::Error::msg)?;
        let mut sh = String::from("#!/bin/sh\n");
        sh.push_str(&format!(
            "# Written by `l1 apply {run}`: {} for {}.\n# Config files are under files/ (relative to the working directory the engine starts in).\n",
            combo_slug(&cats, &chosen.combo),
            rec.target
        ));
        for n in &artifact.notes {
            sh.push_str(&format!("# {n}\n"));
        }
        for (k, v) in &artifact.env {
            sh.push_str(&format!("export {k}={}\n", shell_quote(v)));
        }
        if !artifact.program.is_empty() {
            sh.push_str("exec ");
            sh.push_str(&shell_quote(&artifact.program));
            for a in &artifact.args {
                sh.push(' ');
                sh.push_str(&shell_quote(a));
            }
            sh.push_str(" \"$@\"\n");
        }
        std::fs::write(dir.join("launch.sh"), sh)?;
        written.push((t.name.clone(), dir));
    }
    if json {
        out!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "run_id": run,
                "written": written.iter().map(|(t, d)| serde_json::json!({"gate": t, "dir": d.display().to_string()})).collect::<Vec<_>>(),
                "skipped": skipped,
            }))?
        );
    } else {
        for (t, d) in &written {
            out!("{t}: wrote {}/launch.sh and launch.json", d.display());
        }
        for s in &skipped {
            out!("skipped {s}");
        }
    }
    Ok(if written.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

struct Artifact {
    program: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    files: BTreeMap<String, String>,
    settings: serde_json::Value,
    notes: Vec<String>,
}

/// The port written into applied launch commands (the deployment changes it as it needs).
const APPLY_PORT: u16 = 8000;

fn launch_artifact(
    cats: &Catalogs,
    settings: &Settings,
    m: &MeasurementRecord,
) -> Result<Artifact> {
    let id = &m.target;
    let model = cats
        .models
        .get(&id.model)
        .with_context(|| format!("model `{}` is not in the catalog", id.model))?;
    let hardware = cats
        .hardware
        .get(&id.hardware)
        .with_context(|| format!("hardware `{}` is not in the catalog", id.hardware))?;
    let workload = cats
        .workloads
        .get(&id.workload)
        .with_context(|| format!("workload `{}` is not in the catalog", id.workload))?;
    let run_dir = std::env::temp_dir();
    let target = l1_engines::launch::RealTarget {
        engines_dir: &settings.engines_dir,
        model_name: &id.model,
        model,
        hardware,
        workload,
        combo: &m.combo,
        version: &id.version,
        run_dir: &run_dir,
        tag: "apply".into(),
        state_dir: &run_dir,
        cuda_visible_devices: None,
        seed: m.seed,
        startup_timeout: None,
    };
    if id.engine == "onnxruntime" {
        let (opts, slots) = l1_engines::onnxruntime::launch::translate(&m.combo, workload)
            .map_err(anyhow::Error::msg)?;
        return Ok(Artifact {
            program: String::new(),
            args: Vec::new(),
            env: BTreeMap::new(),
            files: BTreeMap::new(),
            settings: serde_json::json!({
                "session_options": format!("{opts:?}"),
                "sessions": slots,
            }),
            notes: vec![
                "ONNX Runtime runs in-process: apply these session options in the application that loads the model".into(),
            ],
        });
    }
    let server = l1_engines::registry::server_engine(&id.engine)
        .with_context(|| format!("engine `{}` has no translator in this build", id.engine))?;
    let (program, found) = match server.program(&settings.engines_dir) {
        Ok(p) => (p, true),
        Err(_) => (PathBuf::from(server.name()), false),
    };
    let recipe = server
        .translate(&target, program, APPLY_PORT)
        .map_err(|e| anyhow::anyhow!("translating the winner for {}: {e}", id))?;
    let mut notes = vec![format!(
        "serves on port {APPLY_PORT}; readiness: GET {}",
        recipe.ready_path
    )];
    if !found {
        notes.push(format!(
            "`{}` is not installed here: the program is written by name",
            server.name()
        ));
    }
    Ok(Artifact {
        program: recipe.command.program.display().to_string(),
        args: recipe.command.args.clone(),
        env: recipe.command.env.clone(),
        files: recipe.command.files.clone(),
        settings: serde_json::json!({
            "served_model": recipe.served_model,
            "port": APPLY_PORT,
            "ready_path": recipe.ready_path,
        }),
        notes,
    })
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
