//! `l1 store ingest | check`: put a run directory into the results store; check the store.

use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Subcommand;
use l1_harness::record::RunDir;
use l1_harness::results;
use l1_harness::settings::Settings;

use crate::common::{newest_run, open};

#[derive(Subcommand)]
pub enum StoreAction {
    /// Put a run directory's records into the store (default: the newest run). Idempotent.
    Ingest {
        /// The run id (default: the newest run under `target/l1/runs/`).
        run: Option<String>,
    },
    /// Where the store is, its schema version, and whether every stored measurement is whole.
    Check,
}

pub fn run(json: bool, settings: &Settings, action: &StoreAction) -> Result<ExitCode> {
    let mut store = open(settings)?;
    match action {
        StoreAction::Ingest { run } => {
            let runs_dir = settings.target_dir.join("l1").join("runs");
            let id = match run {
                Some(r) => r.clone(),
                None => newest_run(&runs_dir)
                    .with_context(|| format!("no runs under {}", runs_dir.display()))?,
            };
            let dir = RunDir::new(&settings.target_dir, &id);
            if !dir.path.is_dir() {
                bail!("unknown run `{id}` (no directory {})", dir.path.display());
            }
            let mode = results::cache_mode().map_err(anyhow::Error::msg)?;
            let got = results::ingest(&dir, &mut store, mode)?;
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
            let version = store.current_schema_version()?;
            let incomplete = store.incomplete_measurements()?;
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
