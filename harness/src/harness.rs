//! The entry point of the `kernels` test target: libtest-mimic arguments in, trials out, and the
//! run summary at the end of a plain `cargo test` run.
//!
//! nextest runs the binary once to list and once per test (`--exact NAME`); the `--exact` fast
//! path renders only the spec named in the test name and expands only its target, so one test
//! never pays for all of them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use l1_reports::{GateRow, RunSummary, SUMMARY_SCHEMA_VERSION};
use libtest_mimic::{Arguments, Trial};

use crate::record::{self, RunDir};
use crate::suite::{self, Settings};

/// Run the generated suite. `default_root` is the repository root (the `catalogs/` and `specs/`
/// parent), used when `L1_ROOT` is unset.
pub fn main(default_root: &Path) -> ExitCode {
    let args = Arguments::from_args();
    let settings = Settings::from_env(default_root);
    let only = if args.exact && !args.list {
        args.filter.as_deref().and_then(suite::exact_of_trial)
    } else {
        None
    };
    if only.is_none() && !args.list && std::env::var_os("L1_FULL_SCAN_FORBIDDEN").is_some() {
        eprintln!(
            "l1: L1_FULL_SCAN_FORBIDDEN is set but this invocation would expand every spec (args: {:?})",
            std::env::args().collect::<Vec<_>>()
        );
        return ExitCode::from(3);
    }
    let (planned, errors) = match &only {
        Some((spec, target)) => suite::plan_only(&settings, Some(spec), target.as_deref()),
        None => suite::plan(&settings, None),
    };
    let mut ignored: BTreeMap<String, usize> = BTreeMap::new();
    for t in &planned {
        if let Some(r) = &t.ignored {
            *ignored.entry(r.clone()).or_default() += 1;
        }
    }
    // nextest lists in a process of its own (with the run's id since 0.9.138): record the ignored
    // trials and their reasons there, so `l1 report` can show them for the run.
    if args.list && args.ignored && std::env::var_os("NEXTEST_RUN_ID").is_some() {
        let run = RunDir::new(&settings.target_dir, &record::run_id());
        if let Err(e) = record::write_json_atomic(&run.path.join("ignored.json"), &ignored) {
            eprintln!("l1: {e}");
        }
    }
    let mut trials: Vec<Trial> = Vec::with_capacity(planned.len() + errors.len());
    for (name, diag) in errors {
        if args.list {
            eprintln!("{diag}");
        }
        let text = diag.to_string();
        trials.push(Trial::test(name, move || Err(text.into())));
    }
    trials.extend(planned.into_iter().map(suite::PlannedTrial::into_trial));
    crate::progress::set_total(
        (trials.iter())
            .filter(|t| !args.is_filtered_out(t) && !args.is_ignored(t))
            .count(),
    );
    let listing = args.list;
    let nextest = std::env::var_os("NEXTEST").is_some();
    let conclusion = libtest_mimic::run(&args, trials);
    if !listing && !nextest {
        let run = RunDir::new(&settings.target_dir, &record::run_id());
        let summary = summarize(&run, &ignored);
        eprintln!("\n{}", l1_reports::render_table(&summary));
        if let Err(e) = record::write_json_atomic(&run.path.join("summary.json"), &summary) {
            eprintln!("l1: {e}");
        }
        if run.path.is_dir()
            && let Err(e) = finish_in_store(&settings, &run, summary.trials_failed == 0)
        {
            eprintln!("l1: {e}");
        }
        let sources = crate::report_model::Sources {
            specs: Some(settings.specs.clone()),
            root: Some(settings.root.clone()),
            ignored: ignored.clone(),
            now_unix_s: None,
        };
        match crate::report_model::write_all(&run, &settings.target_dir, &sources) {
            Ok((_, w)) => eprintln!(
                "l1: HTML report {}\nl1: JSON results {}\nl1: metrics {}{}",
                w.html.display(),
                w.json.display(),
                w.metrics.display(),
                w.warnings
                    .iter()
                    .map(|x| format!("\nl1: {x}"))
                    .collect::<String>()
            ),
            Err(e) => eprintln!("l1: failed to write the reports: {e}"),
        }
    }
    if conclusion.has_failed() {
        ExitCode::from(101)
    } else {
        ExitCode::SUCCESS
    }
}

/// Ingest whatever the run's trials wrote but did not store (a trial killed between its record
/// and its insert), and mark the run finished with its verdict.
pub fn finish_in_store(settings: &Settings, run: &RunDir, passed: bool) -> Result<(), String> {
    let mode = crate::results::cache_mode()?;
    crate::results::with_store(&settings.target_dir, |s| {
        crate::results::ingest(run, s, mode)?;
        s.finish_run(&run.run_id, passed)
    })
}

/// Build the run summary from the trial records of a run.
pub fn summarize(run: &RunDir, ignored: &BTreeMap<String, usize>) -> RunSummary {
    let (records, unreadable) = run.trials();
    let mut gates = Vec::new();
    for r in records.iter().filter(|r| r.kind == "gate") {
        gates.push(GateRow {
            target: r.target.to_string(),
            spec: r.spec.clone(),
            passed: r.passed,
            simulated: r.simulated,
            gates: r
                .gates
                .iter()
                .map(|v| (v.method.clone(), v.passed))
                .collect(),
            winner: r.gates.iter().find_map(|v| v.winner.clone()),
        });
    }
    RunSummary {
        schema_version: SUMMARY_SCHEMA_VERSION,
        run_id: run.run_id.clone(),
        trials_passed: records.iter().filter(|r| r.passed).count(),
        trials_failed: records.iter().filter(|r| !r.passed).count(),
        ignored: ignored.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        gates,
        unreadable,
    }
}
