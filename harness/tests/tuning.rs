//! Tier 2 through the harness: the bundled sim tune spec's generated test passes with its
//! session in the store; a tune process SIGKILLed at random points resumes with the same
//! proposals as an uninterrupted run; bad tune specs give clear errors before any engine starts;
//! `l1 tune status | cancel | resume` work on a populated store. Each run is a child process
//! (`l1-test-child`, see `common::child_command`) with its own `L1_RUN_ID`, as nextest would
//! start it.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{Trials, child_command, root, run_child};
use l1_harness::suite::{self, Settings};
use l1_store::{Location, Store, TuneTrialRow};

const SPEC: &str = "sim-tune-llama-8b-h100";
const TARGET: &str = "sim@1.0::llama-3.1-8b::h100-sxm::chat-short";

struct Scratch {
    dir: PathBuf,
    _cleanup: common::RemoveOnDrop,
}

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = l1_testkit::fresh_dir(&format!("tune-{name}"));
        std::fs::create_dir_all(dir.join("specs")).unwrap();
        std::fs::copy(
            root().join(format!("specs/sim/{SPEC}.yaml")),
            dir.join(format!("specs/{SPEC}.yaml")),
        )
        .unwrap();
        Self {
            _cleanup: common::RemoveOnDrop(dir.clone()),
            dir,
        }
    }

    fn target(&self) -> PathBuf {
        self.dir.join("target")
    }

    fn child(&self, run_id: &str, env: &[(&str, &str)]) -> Command {
        let mut cmd = child_command(&self.dir, run_id);
        cmd.env_remove("L1_TUNE_TRIAL_DELAY_MS");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// One complete run in a child process: (trial, passed, message) per trial.
    fn run(&self, run_id: &str) -> Trials {
        run_child(self.child(run_id, &[]), run_id)
    }

    /// Start a run and SIGKILL it once it has reported trial `after` (plus a few milliseconds,
    /// so the kill lands anywhere in the next trial: measuring, persisting, or sleeping).
    fn run_killed(&self, run_id: &str, after: usize, jitter_ms: u64) {
        let mut child = self
            .child(run_id, &[("L1_TUNE_TRIAL_DELAY_MS", "15")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let needle = format!("tune trial {after} ");
        let mut seen = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains(&needle) {
                seen = true;
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(jitter_ms));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(seen, "run {run_id} never reached trial {after}");
        assert!(!status.success(), "run {run_id} finished before the kill");
    }

    fn store(&self) -> Store {
        Store::open(&Location::Sqlite(self.target().join("l1/store.sqlite"))).unwrap()
    }

    fn trials(&self, run_id: &str) -> Vec<TuneTrialRow> {
        let sid = l1_harness::tuning::session_id(run_id, SPEC, TARGET);
        self.store().tune_trials(&sid).unwrap()
    }

    /// `l1 <args>` against this scratch directory: (exit code, stdout, stderr).
    fn l1(&self, args: &[&str]) -> (i32, String, String) {
        let specs = self.dir.join("specs");
        common::l1(&self.target(), &[("L1_SPECS", specs.as_path())], args)
    }

    fn l1_json(&self, args: &[&str]) -> serde_json::Value {
        let specs = self.dir.join("specs");
        common::l1_json(&self.target(), &[("L1_SPECS", specs.as_path())], args)
    }
}

fn sequence(rows: &[TuneTrialRow]) -> Vec<(i64, String, String, Option<f64>)> {
    rows.iter()
        .map(|r| (r.n, r.combo.clone(), r.outcome.clone(), r.value))
        .collect()
}

#[test]
fn the_bundled_sim_tune_spec_passes_and_its_session_is_in_the_store() {
    let s = Scratch::new("bundled");
    let out = s.run("t1");
    assert_eq!(out.len(), 1, "one tune test per target: {out:?}");
    let (name, passed, msg) = &out[0];
    assert_eq!(name, &format!("sim::{SPEC}::{TARGET}::tune"));
    assert!(passed, "{msg}");

    let sid = l1_harness::tuning::session_id("t1", SPEC, TARGET);
    let mut store = s.store();
    let row = store.tune_session(&sid).unwrap().expect("session stored");
    assert_eq!(row.status, "finished");
    assert_eq!(row.run_id.as_deref(), Some("t1"));
    let state: l1_tune::TuneState = serde_json::from_str(&row.bayesian_state).unwrap();
    assert_eq!(state.usage.trials, 25, "max_trials 25");
    assert_eq!(
        state.observations.len() + state.failures.len(),
        25,
        "every trial is in the state"
    );
    assert!(row.best_trial.is_some());
    let trials = store.tune_trials(&sid).unwrap();
    assert_eq!(trials.len(), 25);
    // The search never repeats a combo; only the final phase measures one again.
    let (again, search): (Vec<_>, Vec<_>) = trials.iter().partition(|t| t.outcome == "remeasured");
    let mut combos: Vec<&String> = search.iter().map(|t| &t.combo).collect();
    combos.sort();
    combos.dedup();
    assert_eq!(combos.len(), search.len(), "no combo is searched twice");
    assert!(
        again.iter().all(|t| combos.contains(&&t.combo)),
        "only searched combos are re-measured"
    );
    // The tune test's verdict is a trial row of the run, like every other test.
    let tr = store.trials("t1").unwrap();
    assert!(tr.iter().any(|t| t.kind == "tune" && t.passed), "{tr:?}");
    // Progress events: one TuneTrial per trial.
    let events = std::fs::read_to_string(s.target().join("l1/runs/t1/events.jsonl")).unwrap();
    assert_eq!(
        events.matches("\"event\":\"tune_trial\"").count(),
        25,
        "{events}"
    );
}

#[test]
fn a_tune_run_killed_at_random_points_resumes_with_the_same_proposals() {
    let s = Scratch::new("kill");
    // The uninterrupted reference (another run id: the sim's measurements depend only on the
    // spec's seed, the target and the combo, so both runs see the same values).
    let reference = s.run("ref");
    assert!(reference[0].1, "{reference:?}");
    let want = sequence(&s.trials("ref"));
    assert_eq!(want.len(), 25);

    // Kill points: three, spread over the run, jittered by this process's id.
    let pid = u64::from(std::process::id());
    let points = [
        (2 + pid % 3) as usize,
        (8 + (pid / 3) % 4) as usize,
        (15 + (pid / 7) % 5) as usize,
    ];
    let mut last = 0;
    for (i, &after) in points.iter().enumerate() {
        s.run_killed("k", after, (pid / (i as u64 + 1)) % 41);
        let got = sequence(&s.trials("k"));
        assert!(
            got.len() > after && got.len() >= last,
            "progress is kept: {got:?}"
        );
        assert_eq!(
            got[..],
            want[..got.len()],
            "after kill {i} (trial {after}) the persisted trials are a prefix of the reference"
        );
        last = got.len();
    }
    // Finish it: the test re-run continues the same session (same run id, spec and target).
    let out = s.run("k");
    assert!(out[0].1, "{out:?}");
    let got = sequence(&s.trials("k"));
    assert_eq!(got, want, "same proposals, same values, nothing repeated");
    let sid = l1_harness::tuning::session_id("k", SPEC, TARGET);
    let row = s.store().tune_session(&sid).unwrap().unwrap();
    let state: l1_tune::TuneState = serde_json::from_str(&row.bayesian_state).unwrap();
    assert_eq!(state.usage.trials, 25, "no trial counted twice");
}

#[test]
fn l1_tune_status_cancel_and_resume_on_a_populated_store() {
    let s = Scratch::new("cmds");
    // A session killed part-way, then continued with `l1 tune resume`.
    s.run_killed("c1", 4, 3);
    let sid = l1_harness::tuning::session_id("c1", SPEC, TARGET);
    let list = s.l1_json(&["tune", "list"]);
    assert_eq!(list[0]["session_id"], sid.as_str(), "{list}");

    let st = s.l1_json(&["tune", "status", &sid]);
    assert_eq!(st["spec"], SPEC);
    assert_eq!(st["target"], TARGET);
    assert_eq!(st["status"], "running", "killed: never finished");
    let done = st["trials"].as_u64().unwrap();
    assert!(done >= 5, "{st}");
    assert!(st["best"]["interval95"].is_array(), "{st}");
    assert!(st["budget_used"].as_f64().unwrap() > 0.0, "{st}");
    assert_eq!(st["legal_combos"], 480, "{st}");

    // Cancel: marked, and a re-run of the test stops at once (no new trial) and fails saying so.
    let c = s.l1_json(&["tune", "cancel", &sid]);
    assert_eq!(c["status"], "cancelled");
    let out = s.run("c1");
    assert!(!out[0].1, "a cancelled session's test fails: {out:?}");
    assert!(out[0].2.contains("cancelled"), "{}", out[0].2);
    assert_eq!(
        s.trials("c1").len() as u64,
        done,
        "no trial after the cancel"
    );
    let st = s.l1_json(&["tune", "status", &sid]);
    assert_eq!(st["status"], "cancelled");

    // Resume: continues in-process to the budget and passes.
    let (code, out, err) = s.l1(&["tune", "resume", &sid]);
    assert_eq!(code, 0, "{out}\n{err}");
    let st = s.l1_json(&["tune", "status", &sid]);
    assert_eq!(st["status"], "finished", "{st}");
    assert_eq!(st["trials"], 25);
    let (code, text, _) = s.l1(&["tune", "status", &sid]);
    assert_eq!(code, 0);
    assert!(
        text.contains("best so far") && text.contains("95 %"),
        "{text}"
    );

    // Unknown ids are clear errors.
    let (code, _, err) = s.l1(&["tune", "status", "tune-nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("unknown tune session"), "{err}");
}

fn plan_error(name: &str, body: &str) -> String {
    let dir = l1_testkit::fresh_dir(&format!("tune-bad-{name}"));
    let file = dir.join(format!("{name}.yaml"));
    std::fs::write(&file, format!("kind: tune\nname: {name}\n{body}")).unwrap();
    let settings = Settings::new(&root(), file, dir.join("target"));
    let (trials, errors) = suite::plan(&settings, None);
    assert!(trials.is_empty(), "{name}: no trial may be planned");
    assert_eq!(errors.len(), 1, "{name}: {errors:?}");
    assert!(
        !dir.join("target/l1").exists(),
        "{name}: nothing ran, nothing was stored"
    );
    let _ = std::fs::remove_dir_all(&dir);
    errors[0].1.to_string()
}

const TARGETS: &str = "targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [chat-short]
space:
  dims: { attention_backend: all }
";

#[test]
fn zero_budget_unknown_metric_and_impossible_constraint_are_clear_errors() {
    let e = plan_error(
        "zero-budget",
        &format!(
            "{TARGETS}objective: {{ metric: output_tokens_per_s, direction: maximize }}\nbudget: {{ max_trials: 0 }}\n"
        ),
    );
    assert!(e.contains("maximum trials must be at least 1"), "{e}");
    assert!(
        e.contains("zero-budget.yaml") && e.contains("budget"),
        "{e}"
    );

    let e = plan_error(
        "empty-budget",
        &format!(
            "{TARGETS}objective: {{ metric: output_tokens_per_s, direction: maximize }}\nbudget: {{}}\n"
        ),
    );
    assert!(e.contains("no limit set"), "{e}");

    let e = plan_error(
        "no-budget",
        &format!("{TARGETS}objective: {{ metric: output_tokens_per_s, direction: maximize }}\n"),
    );
    assert!(e.contains("needs a budget"), "{e}");

    let e = plan_error(
        "bad-metric",
        &format!(
            "{TARGETS}objective: {{ metric: tokens_per_sec, direction: maximize }}\nbudget: {{ max_trials: 5 }}\n"
        ),
    );
    assert!(e.contains("unknown metric `tokens_per_sec`"), "{e}");
    assert!(e.contains("objective.metric"), "{e}");
    assert!(
        e.contains("output_tokens_per_s") && e.contains("ttft_p95_ms"),
        "lists the valid metrics: {e}"
    );
    assert!(e.contains("bad-metric.yaml:10:"), "points at the line: {e}");

    let e = plan_error(
        "bad-direction",
        &format!(
            "{TARGETS}objective: {{ metric: output_tokens_per_s, direction: upward }}\nbudget: {{ max_trials: 5 }}\n"
        ),
    );
    assert!(e.contains("upward") && e.contains("maximize"), "{e}");

    let e = plan_error(
        "impossible",
        &format!(
            "{TARGETS}objective: {{ metric: output_tokens_per_s, direction: maximize }}\nconstraints:\n  - {{ metric: ttft_p95_ms, at_most: -1 }}\nbudget: {{ max_trials: 5 }}\n"
        ),
    );
    assert!(e.contains("no legal point can meet the constraint"), "{e}");

    let e = plan_error(
        "with-gates",
        &format!(
            "{TARGETS}objective: {{ metric: output_tokens_per_s, direction: maximize }}\nbudget: {{ max_trials: 5 }}\ngates: [{{ method: manual }}]\n"
        ),
    );
    assert!(e.contains("not `gates`"), "{e}");

    let e = plan_error(
        "typo",
        &format!(
            "{TARGETS}objective: {{ metric: output_tokens_per_s, direction: maximize }}\nbudget: {{ max_trial: 5 }}\n"
        ),
    );
    assert!(e.contains("max_trial"), "unknown fields are rejected: {e}");

    let e = plan_error(
        "bad-share",
        &format!(
            "{TARGETS}objective: {{ metric: output_tokens_per_s, direction: maximize }}\nbudget: {{ max_trials: 5 }}\nremeasure: {{ top: 2, share: 0.8 }}\n"
        ),
    );
    assert!(e.contains("remeasure share 0.8 is outside [0, 0.5]"), "{e}");
    assert!(
        e.contains("remeasure.share") && e.contains("bad-share.yaml:"),
        "{e}"
    );

    let e = plan_error(
        "bad-acquisition",
        &format!(
            "{TARGETS}objective: {{ metric: output_tokens_per_s, direction: maximize }}\nbudget: {{ max_trials: 5 }}\nacquisition: thompson\n"
        ),
    );
    assert!(
        e.contains("thompson")
            && e.contains("expected_improvement")
            && e.contains("knowledge_gradient"),
        "names the valid choices: {e}"
    );

    let e = plan_error(
        "kg-remeasure",
        &format!(
            "{TARGETS}objective: {{ metric: output_tokens_per_s, direction: maximize }}\nbudget: {{ max_trials: 5 }}\nacquisition: knowledge_gradient\nremeasure: {{ top: 2, share: 0.2 }}\n"
        ),
    );
    assert!(
        e.contains("does not apply") && e.contains("kg-remeasure.yaml:"),
        "{e}"
    );
}

/// The final phase through the harness: once the small space is exhausted, the reserved trials
/// re-measure the top candidates as *fresh* measurements (their own record keys and rep seeds,
/// never the cache or the search measurement), recorded as `remeasured` trials, reported with
/// the budget in the progress events, counted in `tune_trials_total`, and shown by `l1 tune
/// status`; `l1 validate` counts the tune spec as one test.
#[test]
fn the_final_phase_remeasures_top_candidates_as_fresh_measurements() {
    let s = Scratch::new("remeasure");
    let name = "sim-tune-remeasure";
    let (sid, trials) = run_small_tune(
        &s,
        name,
        "budget: { max_trials: 12 }\nremeasure: { top: 3, share: 0.5 }\n",
    );
    let search: Vec<&TuneTrialRow> = trials
        .iter()
        .filter(|t| t.outcome != "remeasured")
        .collect();
    let again: Vec<&TuneTrialRow> = trials
        .iter()
        .filter(|t| t.outcome == "remeasured")
        .collect();
    // The space (5 combos) is exhausted first; the final phase then re-measures contenders while
    // the reserve (half of 12) lasts and, once the trials left are within it, to the budget's end.
    assert!(
        !again.is_empty() && search.len() + again.len() <= 12,
        "the final phase re-measures contenders within the budget: {trials:#?}"
    );
    assert!(
        trials
            .iter()
            .position(|t| t.outcome == "remeasured")
            .unwrap()
            >= search.len(),
        "re-measurements come after the search: {trials:#?}"
    );
    assert_replicates_are_fresh(&s, "r1", &trials);
    let state = stored_state(&s, &sid);
    assert_eq!(
        state
            .observations
            .iter()
            .filter(|o| o.phase == l1_tune::Phase::Remeasure)
            .count(),
        again.len()
    );

    let events = std::fs::read_to_string(s.target().join("l1/runs/r1/events.jsonl")).unwrap();
    assert!(events.contains("\"outcome\":\"remeasured\""), "{events}");
    assert!(events.contains("\"budget_used\":"), "{events}");
    let (code, out_text, err) = s.l1(&["report", "r1"]);
    assert_eq!(code, 0, "{out_text}{err}");
    // Terminal progress: each tune trial with its outcome, combo, value and budget burn.
    let (code, follow, err) = s.l1(&["runs", "follow", "r1", "--idle-timeout", "5"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        follow
            .lines()
            .any(|l| l.contains("tune") && l.contains("remeasured") && l.contains("% used]")),
        "{follow}"
    );
    let prom = std::fs::read_to_string(s.target().join("l1/metrics/l1.prom")).unwrap();
    let line = format!(
        "inferenceiq_l1_tune_trials_total{{outcome=\"remeasured\"}} {}",
        again.len()
    );
    assert!(prom.contains(&line), "{line}\n{prom}");
    assert!(
        prom.contains(&format!(
            "inferenceiq_l1_tune_budget_used_ratio{{spec=\"{name}\",target=\"{TARGET}\"}}"
        )),
        "{prom}"
    );

    let status = s.l1_json(&["tune", "status", &sid]);
    assert_eq!(status["remeasured_trials"], again.len(), "{status}");

    let (code, out_text, err) = s.l1(&[
        "validate",
        s.dir.join(format!("specs/{name}.yaml")).to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out_text.contains("(1 trials)"),
        "one test per tune target: {out_text}"
    );
}

/// Run, in a child process as run `r1`, a tune spec named `name` over the 5-combo `TARGETS`
/// space with `settings` (budget and tune options) added; its session id and trials.
fn run_small_tune(s: &Scratch, name: &str, settings: &str) -> (String, Vec<TuneTrialRow>) {
    std::fs::remove_file(s.dir.join(format!("specs/{SPEC}.yaml"))).unwrap();
    std::fs::write(
        s.dir.join(format!("specs/{name}.yaml")),
        format!(
            "kind: tune\nname: {name}\n{TARGETS}baseline: engine-default\nobjective: {{ metric: output_tokens_per_s, direction: maximize }}\n{settings}gate: {{ margin: 0.0 }}\nmeasure: {{ reps: 3, seed: 11 }}\n"
        ),
    )
    .unwrap();
    let out = s.run("r1");
    assert_eq!(out.len(), 1, "{out:?}");
    let sid = l1_harness::tuning::session_id("r1", name, TARGET);
    let trials = s.store().tune_trials(&sid).unwrap();
    (sid, trials)
}

/// The session state (`bayesian_state`) the store holds.
fn stored_state(s: &Scratch, sid: &str) -> l1_tune::TuneState {
    serde_json::from_str(&s.store().tune_session(sid).unwrap().unwrap().bayesian_state).unwrap()
}

/// Every trial of a session is its own measurement (own record key, in the run's records and the
/// store), and a `remeasured` trial draws new reps of a combo the search measured before.
fn assert_replicates_are_fresh(s: &Scratch, run: &str, trials: &[TuneTrialRow]) {
    let mut keys: Vec<&str> = trials
        .iter()
        .map(|t| t.measurement_key.as_deref().unwrap())
        .collect();
    keys.sort_unstable();
    keys.dedup();
    assert_eq!(
        keys.len(),
        trials.len(),
        "every trial is its own measurement"
    );
    for (i, r) in trials.iter().enumerate() {
        if r.outcome != "remeasured" {
            continue;
        }
        let first = trials[..i]
            .iter()
            .find(|t| t.combo == r.combo && t.outcome != "remeasured")
            .unwrap_or_else(|| panic!("{} was re-measured without being searched", r.combo));
        assert_ne!(first.value, r.value, "a replicate draws new reps: {r:?}");
        let rec = s.target().join(format!(
            "l1/runs/{run}/measurements/{}.json",
            r.measurement_key.as_deref().unwrap()
        ));
        assert!(rec.exists(), "{}", rec.display());
    }
    let stored: Vec<String> = s
        .store()
        .measurements(run)
        .unwrap()
        .into_iter()
        .map(|m| m.key)
        .collect();
    for k in &keys {
        assert!(stored.iter().any(|m| m == k), "{k} in the store");
    }
}

/// `acquisition: knowledge_gradient` through the harness: replicates come from the acquisition
/// itself (no reserved phase), as fresh measurements, and a fully measured space is replicated
/// until the budget ends instead of stopping.
#[test]
fn the_knowledge_gradient_replicates_as_fresh_measurements_to_the_end_of_the_budget() {
    let s = Scratch::new("kg");
    let (sid, trials) = run_small_tune(
        &s,
        "sim-tune-kg",
        "budget: { max_trials: 10 }\nacquisition: knowledge_gradient\n",
    );
    assert_eq!(
        trials.len(),
        10,
        "the budget, not the 5-combo space, ends it: {trials:#?}"
    );
    let again = trials.iter().filter(|t| t.outcome == "remeasured").count();
    assert!(
        again >= 5,
        "at least the trials past the space are replicates: {trials:#?}"
    );
    assert_replicates_are_fresh(&s, "r1", &trials);
    let state = stored_state(&s, &sid);
    assert_eq!(
        state.config.acquisition,
        l1_tune::Acquisition::KnowledgeGradient
    );
    let status = s.l1_json(&["tune", "status", &sid]);
    assert_eq!(status["remeasured_trials"], again, "{status}");
    assert_eq!(status["acquisition"], "knowledge_gradient", "{status}");
    assert!(status["remeasure"].is_null(), "no reserved phase: {status}");
    let (code, text, err) = s.l1(&["tune", "status", &sid]);
    assert_eq!(code, 0, "{err}");
    assert!(text.contains("acquisition knowledge_gradient"), "{text}");
}

#[test]
fn seed_from_seeds_the_session_with_the_stored_sweep_points() {
    let s = Scratch::new("seeded");
    std::fs::copy(
        root().join("specs/sim/sim-llama-8b-h100.yaml"),
        s.dir.join("specs/sim-llama-8b-h100.yaml"),
    )
    .unwrap();
    // Specs run in name order: the sweep first, so its measurements are in the store when the
    // tune test starts.
    let out = s.run("s1");
    let tune = out.iter().find(|t| t.0.ends_with("::tune")).unwrap();
    assert!(tune.1, "{tune:?}");
    let sid = l1_harness::tuning::session_id("s1", SPEC, TARGET);
    let row = s.store().tune_session(&sid).unwrap().unwrap();
    let state: l1_tune::TuneState = serde_json::from_str(&row.bayesian_state).unwrap();
    assert_eq!(
        state.seeds.len(),
        4,
        "the baseline plus the sweep's 3 best points: {:?}",
        state.seeds
    );
    let trials = s.trials("s1");
    assert!(trials.len() == 25);
}
