//! Exact accounting of a run, whatever the runner: every trial the runner knew is passed,
//! failed, ignored (with its reason), filtered out, or unfinished, and the counts equal the
//! runner's own.
//!
//! Three kinds of files in the run directory feed it (see the record module):
//! - the **plan** (`plan/<writer>.json`): the trials a runner process knew about. A plain
//!   `cargo test` run writes it before its trials start, with libtest's selection (selected,
//!   ignored, filtered out: the same `Arguments` decide it that libtest uses). nextest's listing
//!   process writes every trial (nextest applies filters and partitions itself, later);
//! - the **start markers** (`started/<trial-id>.json`): a trial began, in which process;
//! - the **trial records** (`trials/<trial-id>.json`): a trial's outcome. Every trial that runs
//!   writes one, whatever happens to it: a spec error (`invalid::` trials), a store that fails,
//!   a panic.
//!
//! From them:
//!
//! | count        | cargo test (libtest)                      | nextest                                    |
//! |--------------|-------------------------------------------|--------------------------------------------|
//! | passed       | records that passed                       | records that passed                        |
//! | failed       | records that failed                       | records that failed                        |
//! | ignored      | planned ignored, no record                | listed ignored, not started, no record     |
//! | filtered out | planned filtered out, no record           | listed, not ignored, not started, no record|
//! | unfinished   | planned selected (or started), no record  | started, no record                         |
//!
//! libtest prints the first four (`N passed; M failed; K ignored; 0 measured; F filtered out`);
//! nextest prints `N passed, M failed, S skipped` where `S` = ignored + filtered out (trials it
//! did not select for a filter, a partition or `--run-ignored`). A run with an unfinished trial
//! is `unfinished`; else a run with a failed trial is `failed`; else `passed`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{PlanStatus, StartedMarker, TrialRecord};
use crate::record::RunDir;

/// A run's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every trial that was asked to run finished and passed.
    Passed,
    /// Every trial that was asked to run finished, and one or more failed.
    Failed,
    /// A trial that was asked to run (or started) has no outcome: the run is in progress, was
    /// interrupted, or its records were lost.
    Unfinished,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Unfinished => "unfinished",
        }
    }
}

/// Why a trial that should have an outcome has none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Its process is still alive.
    Running,
    /// It started in a process that is gone (killed, crashed) without writing its outcome.
    Interrupted,
    /// It was selected but never started, and the planning process is gone.
    NotStarted,
    /// Selected, not started yet, the planning process still alive.
    Pending,
}

/// A run's accounting (see the module docs).
#[derive(Clone, Debug, Default)]
pub struct Accounting {
    /// `libtest`, `nextest`, both (`libtest+nextest`) or `unknown` (no plan: records only).
    pub runner: String,
    /// Trials the plans name.
    pub planned: usize,
    pub passed: usize,
    pub failed: usize,
    /// Ignored trials that did not run, by reason, with their names.
    pub ignored: BTreeMap<String, Vec<String>>,
    /// Trials left out by the runner's filter, partition or selection.
    pub filtered_out: usize,
    /// Trials that should have an outcome and have none, by name.
    pub unfinished: BTreeMap<String, Missing>,
    /// When the run last wrote anything (Unix seconds).
    pub last_activity_unix_s: Option<f64>,
    /// The trial records, sorted by name.
    pub records: Vec<TrialRecord>,
    /// Trial records, plans and start markers that could not be read (`path: why`).
    pub unreadable: Vec<String>,
}

impl Accounting {
    /// Account for `run` from its plans, start markers and trial records.
    pub fn of(run: &RunDir) -> Self {
        let (records, mut unreadable) = run.trials();
        let (plans, bad_plans) = run.plans();
        let (started, bad_started) = run.started();
        unreadable.extend(bad_plans);
        unreadable.extend(bad_started);

        let runners: BTreeSet<&str> = plans.iter().map(|p| p.runner.as_str()).collect();
        let runner = if runners.is_empty() {
            "unknown".to_string()
        } else {
            runners.into_iter().collect::<Vec<_>>().join("+")
        };
        // One status per trial over every plan: the strongest claim wins (a trial one process
        // selected is expected even if another listed it as filtered out).
        let mut planned: BTreeMap<&str, (PlanStatus, Option<&str>)> = BTreeMap::new();
        for p in &plans {
            for t in &p.trials {
                let e = planned
                    .entry(t.name.as_str())
                    .or_insert((t.status, t.ignored.as_deref()));
                if t.status > e.0 {
                    e.0 = t.status;
                }
                if e.1.is_none() {
                    e.1 = t.ignored.as_deref();
                }
            }
        }
        // Whether the process that planned a libtest selection is still running.
        let planner_alive = plans
            .iter()
            .any(|p| p.runner == "libtest" && crate::record::process_alive(p.pid, &p.exe));
        let recorded: BTreeSet<&str> = records.iter().map(|r| r.name.as_str()).collect();
        let starts: BTreeMap<&str, &StartedMarker> =
            started.iter().map(|m| (m.name.as_str(), m)).collect();

        let mut acc = Accounting {
            runner,
            planned: planned.len(),
            passed: records.iter().filter(|r| r.passed).count(),
            failed: records.iter().filter(|r| !r.passed).count(),
            last_activity_unix_s: run.last_activity(),
            ..Accounting::default()
        };
        let started_state = |m: &StartedMarker| {
            if crate::record::process_alive(m.pid, &m.exe) {
                Missing::Running
            } else {
                Missing::Interrupted
            }
        };
        for (name, (status, reason)) in &planned {
            if recorded.contains(name) {
                continue;
            }
            if let Some(m) = starts.get(name) {
                acc.unfinished.insert((*name).to_string(), started_state(m));
                continue;
            }
            match status {
                PlanStatus::Selected => {
                    let state = if planner_alive {
                        Missing::Pending
                    } else {
                        Missing::NotStarted
                    };
                    acc.unfinished.insert((*name).to_string(), state);
                }
                PlanStatus::Ignored => acc
                    .ignored
                    .entry(reason.unwrap_or("ignored").to_string())
                    .or_default()
                    .push((*name).to_string()),
                // nextest listed it and never started it: not selected (a filter, a partition,
                // or an ignored trial without `--run-ignored`).
                PlanStatus::Listed if reason.is_some() => acc
                    .ignored
                    .entry(reason.unwrap_or("ignored").to_string())
                    .or_default()
                    .push((*name).to_string()),
                PlanStatus::Listed | PlanStatus::FilteredOut => acc.filtered_out += 1,
            }
        }
        // Started outside any plan (a nextest run whose listing wrote no plan) and never finished.
        for (name, m) in &starts {
            if !recorded.contains(name) && !planned.contains_key(name) {
                acc.unfinished.insert((*name).to_string(), started_state(m));
            }
        }
        acc.records = records;
        acc.unreadable = unreadable;
        acc
    }

    /// Ignored trials that did not run.
    pub fn ignored_count(&self) -> usize {
        self.ignored.values().map(Vec::len).sum()
    }

    /// Ignored trials by reason (reason, count).
    pub fn ignored_by_reason(&self) -> Vec<(String, usize)> {
        self.ignored
            .iter()
            .map(|(r, v)| (r.clone(), v.len()))
            .collect()
    }

    pub fn verdict(&self) -> Verdict {
        if !self.unfinished.is_empty() {
            Verdict::Unfinished
        } else if self.failed > 0 {
            Verdict::Failed
        } else {
            Verdict::Passed
        }
    }

    /// The unfinished trials as `name (why)` lines.
    pub fn unfinished_lines(&self) -> Vec<String> {
        self.unfinished
            .iter()
            .map(|(n, m)| {
                let why = match m {
                    Missing::Running => "still running",
                    Missing::Interrupted => "started, its process is gone without an outcome",
                    Missing::NotStarted => "selected, never started, the run's process is gone",
                    Missing::Pending => "selected, not started yet",
                };
                format!("{n} ({why})")
            })
            .collect()
    }
}

/// The exit code of a command that judges a run (`l1 report`): 0 every trial and gate passed,
/// 1 a trial or gate failed, 2 the run is unfinished or could not be read (missing trials,
/// unreadable records, a store error).
pub fn exit_code(verdict: Verdict, unreadable: bool, store_error: bool) -> u8 {
    if verdict == Verdict::Unfinished || unreadable || store_error {
        2
    } else if verdict == Verdict::Failed {
        1
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{PlanRecord, PlannedEntry, RECORD_SCHEMA_VERSION, TargetId};

    fn rec(run: &RunDir, name: &str, passed: bool) {
        run.write_trial(&TrialRecord {
            schema_version: RECORD_SCHEMA_VERSION,
            run_id: run.run_id.clone(),
            name: name.into(),
            spec: "s".into(),
            target: TargetId {
                engine: "sim".into(),
                version: "1.0".into(),
                model: "m".into(),
                hardware: "h".into(),
                workload: "w".into(),
            },
            kind: "combo".into(),
            passed,
            message: String::new(),
            measurement: None,
            gates: Vec::new(),
            simulated: true,
            duration_s: 0.0,
            used: None,
        })
        .unwrap();
    }

    fn plan(run: &RunDir, writer: &str, runner: &str, pid: u32, trials: &[(&str, PlanStatus)]) {
        run.write_plan(
            writer,
            &PlanRecord {
                schema_version: RECORD_SCHEMA_VERSION,
                run_id: run.run_id.clone(),
                runner: runner.into(),
                pid,
                exe: String::new(),
                written_unix_s: 0.0,
                specs: "specs".into(),
                trials: trials
                    .iter()
                    .map(|(n, s)| PlannedEntry {
                        name: (*n).into(),
                        status: *s,
                        ignored: (*s == PlanStatus::Ignored || n.starts_with("gpu"))
                            .then(|| "no GPU".to_string()),
                    })
                    .collect(),
            },
        )
        .unwrap();
    }

    fn scratch(name: &str) -> (std::path::PathBuf, RunDir) {
        let dir = std::env::temp_dir().join(format!("l1-acc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = RunDir::new(&dir, "r");
        (dir, run)
    }

    /// A pid that is not running (the exe check makes a reused one not count either).
    const GONE: u32 = u32::MAX - 1;

    #[test]
    fn libtest_counts_passed_failed_ignored_filtered_and_missing() {
        let (dir, run) = scratch("libtest");
        use PlanStatus::*;
        plan(
            &run,
            "libtest-1",
            "libtest",
            GONE,
            &[
                ("a", Selected),
                ("b", Selected),
                ("c", Selected),
                ("gpu-d", Ignored),
                ("e", FilteredOut),
                ("f", FilteredOut),
            ],
        );
        rec(&run, "a", true);
        rec(&run, "b", false);
        let acc = Accounting::of(&run);
        assert_eq!((acc.passed, acc.failed), (1, 1));
        assert_eq!(acc.ignored_by_reason(), vec![("no GPU".to_string(), 1)]);
        assert_eq!(acc.filtered_out, 2);
        assert_eq!(
            acc.unfinished,
            BTreeMap::from([("c".to_string(), Missing::NotStarted)])
        );
        assert_eq!(acc.verdict(), Verdict::Unfinished);
        // Its outcome arrives: the run is complete, and failed.
        rec(&run, "c", true);
        let acc = Accounting::of(&run);
        assert_eq!(acc.verdict(), Verdict::Failed);
        assert_eq!(exit_code(acc.verdict(), false, false), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn nextest_counts_started_trials_without_outcome_as_unfinished() {
        let (dir, run) = scratch("nextest");
        use PlanStatus::*;
        plan(
            &run,
            "nextest",
            "nextest",
            GONE,
            &[
                ("a", Listed),
                ("b", Listed),
                ("c", Listed),
                ("gpu-d", Listed),
            ],
        );
        rec(&run, "a", true);
        // `b` started in a process that is gone.
        crate::record::write_json_atomic(
            &run.started_path("b"),
            &StartedMarker {
                name: "b".into(),
                pid: GONE,
                exe: "/nonexistent".into(),
                started_unix_s: 0.0,
            },
        )
        .unwrap();
        let acc = Accounting::of(&run);
        assert_eq!(acc.passed, 1);
        assert_eq!(acc.filtered_out, 1, "`c` was not selected by nextest");
        assert_eq!(acc.ignored_count(), 1);
        assert_eq!(acc.unfinished.get("b"), Some(&Missing::Interrupted));
        assert_eq!(exit_code(acc.verdict(), false, false), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn temporary_files_of_writes_in_progress_are_neither_records_nor_strays() {
        let (dir, run) = scratch("tmp");
        rec(&run, "a", true);
        // What `write_text_atomic` leaves while a trial or measurement is being written.
        let trials = run.path.join("trials");
        std::fs::write(trials.join("0123abcd.tmp.4242.ThreadId17"), "{\"schema_v").unwrap();
        std::fs::create_dir_all(run.path.join("measurements")).unwrap();
        std::fs::write(
            run.path.join("measurements/k1.tmp.4242.ThreadId3"),
            "{\"schema_v",
        )
        .unwrap();
        std::fs::write(trials.join("notes.txt"), "not a record").unwrap();
        let acc = Accounting::of(&run);
        assert!(acc.unreadable.is_empty(), "{:?}", acc.unreadable);
        let strays = crate::report_model::stray_files(&run, &BTreeSet::new());
        assert_eq!(
            strays.iter().map(|u| u.file.as_str()).collect::<Vec<_>>(),
            ["trials/notes.txt"],
            "only the foreign file is a stray: {strays:?}"
        );
        let report = crate::report_model::build(&run, &crate::report_model::Sources::default());
        assert_eq!(report.totals.unreadable, 1, "{:?}", report.unreadable);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_run_with_only_passes_passes_and_one_without_plan_counts_records() {
        let (dir, run) = scratch("plain");
        rec(&run, "a", true);
        let acc = Accounting::of(&run);
        assert_eq!(acc.runner, "unknown");
        assert_eq!(acc.verdict(), Verdict::Passed);
        assert_eq!(exit_code(acc.verdict(), false, false), 0);
        assert_eq!(exit_code(acc.verdict(), true, false), 2);
        assert_eq!(exit_code(acc.verdict(), false, true), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
