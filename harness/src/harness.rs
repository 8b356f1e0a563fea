//! The entry point of the `kernels` test target: libtest-mimic arguments in, trials out, and the
//! run summary at the end of a plain `cargo test` run.
//!
//! nextest runs the binary once to list and once per test (`--exact NAME`); the `--exact` fast
//! path renders only the spec named in the test name and expands only its target, so one test
//! never pays for all of them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use l1_reports::{GateRow, RunSummary, SUMMARY_SCHEMA_VERSION};
use libtest_mimic::{Arguments, Trial};

use crate::accounting::Accounting;
use crate::record::{self, PlanRecord, PlanStatus, PlannedEntry, RunDir, TrialRecord};
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
    let env = crate::settings::env();
    if only.is_none() && !args.list && env.full_scan_forbidden {
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
    let run = RunDir::new(&settings.target_dir, &record::run_id());
    let mut trials: Vec<Trial> = Vec::with_capacity(planned.len() + errors.len());
    // (name, why it is ignored) of every trial, in the order libtest gets them.
    let mut names: Vec<(String, Option<String>)> = Vec::with_capacity(trials.capacity());
    for (name, diag) in errors {
        if args.list {
            eprintln!("{diag}");
        }
        names.push((name.clone(), None));
        trials.push(invalid_trial(
            &run,
            &settings.target_dir,
            name,
            diag.to_string(),
        ));
    }
    let listing = args.list;
    // A plain listing needs no accounting: neither the names kept for the plan nor the
    // targets' plans freed one by one when libtest-mimic drops the trials at exit.
    let plain_listing = listing && !env.nextest_run;
    let mut targets: Vec<std::sync::Arc<suite::TargetPlan>> = Vec::new();
    for t in planned {
        if plain_listing {
            if targets
                .last()
                .is_none_or(|p| !std::sync::Arc::ptr_eq(p, &t.plan))
            {
                targets.push(t.plan.clone());
            }
            trials.push(t.into_listed_trial());
        } else {
            names.push((t.name.clone(), t.ignored.clone()));
            trials.push(t.into_trial());
        }
    }
    // nextest lists in a process of its own (`--list`, and `--list --ignored`), with the run's
    // id since 0.9.138, then runs each test in a process of its own: the listing records every
    // trial (nextest selects among them itself), each trial process its start and outcome.
    let nextest = env.nextest;
    if listing && env.nextest_run {
        let entries = names
            .iter()
            .map(|(name, ignored)| PlannedEntry {
                name: name.clone(),
                status: PlanStatus::Listed,
                ignored: ignored.clone(),
            })
            .collect();
        if let Err(e) = run.write_plan("nextest", &plan_record(&run, "nextest", &settings, entries))
        {
            eprintln!("l1: {e}");
        }
    }
    // A plain `cargo test` run: the plan is libtest's own selection, decided by the same
    // `Arguments` libtest-mimic applies.
    let mut selected = 0;
    if !listing && !nextest {
        let entries: Vec<PlannedEntry> = names
            .iter()
            .zip(&trials)
            .map(|((name, ignored), trial)| PlannedEntry {
                name: name.clone(),
                status: if args.is_filtered_out(trial) {
                    PlanStatus::FilteredOut
                } else if args.is_ignored(trial) {
                    PlanStatus::Ignored
                } else {
                    PlanStatus::Selected
                },
                ignored: ignored.clone(),
            })
            .collect();
        selected = entries
            .iter()
            .filter(|e| e.status != PlanStatus::FilteredOut)
            .count();
        // A run that selects nothing (`cargo test --workspace some_other_test`) leaves nothing.
        if selected > 0 {
            let writer = format!("libtest-{}", std::process::id());
            if let Err(e) =
                run.write_plan(&writer, &plan_record(&run, "libtest", &settings, entries))
            {
                eprintln!("l1: {e}");
            }
        }
    }
    crate::progress::set_total(
        (trials.iter())
            .filter(|t| !args.is_filtered_out(t) && !args.is_ignored(t))
            .count(),
    );
    let conclusion = libtest_mimic::run(&args, trials);
    // The process ends right after a listing: its expanded targets need not be freed.
    std::mem::forget(targets);
    if !listing && !nextest && selected > 0 {
        let acc = Accounting::of(&run);
        let mut summary = summarize(&run, &acc);
        // The records must tell what libtest told: a trial that could not write its outcome
        // (a full disk, a signal) shows here.
        let libtest = (
            conclusion.num_passed as usize,
            conclusion.num_failed as usize,
            conclusion.num_ignored as usize,
            conclusion.num_filtered_out as usize,
        );
        let ours = (
            summary.trials_passed,
            summary.trials_failed,
            summary.ignored_total(),
            summary.filtered_out,
        );
        if libtest != ours {
            summary.notes.push(format!(
                "the run's records disagree with libtest: libtest {} passed, {} failed, {} ignored, {} filtered out; records {} passed, {} failed, {} ignored, {} filtered out",
                libtest.0, libtest.1, libtest.2, libtest.3, ours.0, ours.1, ours.2, ours.3
            ));
            if summary.status == "passed" {
                summary.status = "failed".into();
            }
        }
        eprintln!("\n{}", l1_reports::render_table(&summary));
        if let Err(e) = record::write_json_atomic(&run.path.join("summary.json"), &summary) {
            eprintln!("l1: {e}");
        }
        if let Err(e) = finish_in_store(&settings, &run, &summary.status) {
            eprintln!("l1: {e}");
        }
        let sources = crate::report_model::Sources {
            specs: Some(settings.specs.clone()),
            root: Some(settings.root.clone()),
            ignored: Default::default(),
            now_unix_s: None,
        };
        match crate::report_model::write_all(&run, &acc, &settings.target_dir, &sources, None) {
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

fn plan_record(
    run: &RunDir,
    runner: &str,
    settings: &Settings,
    trials: Vec<PlannedEntry>,
) -> PlanRecord {
    PlanRecord {
        schema_version: record::RECORD_SCHEMA_VERSION,
        run_id: run.run_id.clone(),
        runner: runner.into(),
        pid: std::process::id(),
        exe: record::current_exe(),
        written_unix_s: record::now_unix(),
        specs: settings.specs.display().to_string(),
        trials,
    }
}

/// The trial of a spec error (`invalid::<file>`): it fails with the diagnostic and records its
/// outcome like any trial, so the run's records, its JUnit and its verdict show the failure.
fn invalid_trial(run: &RunDir, target_dir: &Path, name: String, text: String) -> Trial {
    let (run, target_dir): (RunDir, PathBuf) = (run.clone(), target_dir.to_path_buf());
    Trial::test(name.clone(), move || {
        let rec = TrialRecord {
            schema_version: record::RECORD_SCHEMA_VERSION,
            run_id: run.run_id.clone(),
            spec: name.strip_prefix("invalid::").unwrap_or(&name).to_string(),
            name,
            target: crate::expand::TargetId {
                engine: String::new(),
                version: String::new(),
                model: String::new(),
                hardware: String::new(),
                workload: String::new(),
            },
            kind: "invalid".into(),
            passed: false,
            message: text.clone(),
            measurement: None,
            gates: Vec::new(),
            simulated: false,
            duration_s: 0.0,
            used: None,
        };
        let mut message = text;
        if let Err(e) = run.write_trial(&rec) {
            message.push_str(&format!("\nfailed to write the trial record: {e}"));
        } else if let Err(e) = crate::results::with_store(&target_dir, |s| {
            s.begin_run(&crate::results::new_run(&run.run_id, ""))?;
            s.insert_trial(&crate::results::trial_row(&rec, false))
        }) {
            message.push_str(&format!(
                "\nfailed to store the trial: {e} (its record is kept; `l1 report` ingests it)"
            ));
        }
        Err(message.into())
    })
}

/// Ingest whatever the run's trials wrote but did not store (a trial killed between its record
/// and its insert), and mark the run with its status (`passed`, `failed`, `unfinished`).
pub fn finish_in_store(
    settings: &Settings,
    run: &RunDir,
    status: &str,
) -> Result<(), crate::results::ResultsError> {
    let mode = crate::results::cache_mode()?;
    crate::results::with_store(&settings.target_dir, |s| {
        crate::results::ingest(run, s, mode)?;
        s.finish_run_status(run.run_id.as_str(), status)
    })
}

/// A gate trial's verdict-line numbers and failed-gate explanations (complete) for the summary.
fn gate_row_verdict(r: &TrialRecord) -> GateRow {
    let h = crate::headline::headline(&r.gates);
    let mut failures: Vec<String> = (r.gates.iter())
        .filter(|v| !v.passed)
        .map(|v| v.message.clone())
        .collect();
    if r.gates.is_empty() && !r.passed {
        failures.push(r.message.clone());
    }
    GateRow {
        winner_established: h.established,
        metric: h.metric,
        change_pct: h.change_pct,
        interval_pct: h.interval_pct,
        p_best: h.p_best,
        inconclusive: h.inconclusive,
        failures,
        ..GateRow::default()
    }
}

/// Build the run summary from the run's accounting (plans, start markers, trial records).
pub fn summarize(run: &RunDir, acc: &Accounting) -> RunSummary {
    let records = &acc.records;
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
            ..gate_row_verdict(r)
        });
    }
    RunSummary {
        schema_version: SUMMARY_SCHEMA_VERSION,
        run_id: run.run_id.clone(),
        status: acc.verdict().as_str().into(),
        runner: acc.runner.clone(),
        trials_passed: acc.passed,
        trials_failed: acc.failed,
        ignored: acc.ignored_by_reason(),
        filtered_out: acc.filtered_out,
        unfinished: acc.unfinished_lines(),
        last_activity_unix_s: acc.last_activity_unix_s,
        gates,
        unreadable: acc.unreadable.clone(),
        notes: Vec::new(),
    }
}
