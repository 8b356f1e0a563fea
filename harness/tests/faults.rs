//! Faults and first-hour traps of issue 19, each through the path a user takes:
//!
//! - the kill switch (`ENABLE_L1_KERNEL_TUNING=0`) holds under every libtest and nextest flag that
//!   selects ignored tests: no engine is launched, and the forced trials fail saying why;
//! - `rep_done` progress events are written as each rep finishes, not at the end of the trial;
//! - `l1` finds the repository root from any directory (or says how to point it there), and
//!   `l1 validate` takes files and directories and defaults to `L1_SPECS`.
//!
//! Engines are `l1-fixture-server` behind a `llama-server` wrapper that logs every launch; runs
//! and stores go to scratch directories (`L1_TARGET_DIR`, never the repository's `target/l1`).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{RemoveOnDrop, root};
use l1_harness::record::{self, RunDir};
use l1_harness::suite::{self, Settings};

/// A llama.cpp spec on the CPU host: real-engine trials (ignored under the kill switch).
fn cpu_spec(name: &str, measure: &str) -> String {
    format!(
        "kind: sweep
name: {name}
targets:
  engines: [llamacpp@2026.10]
  models: [tiny-llama]
  hardware: [cpu]
  workloads: [cpu-smoke]
space:
  pins: {{ attention_backend: native }}
measure: {measure}
gates:
  - {{ method: manual }}
"
    )
}

/// A scratch directory: `engines/` whose `llama-server` appends a line to `launches.log` (and,
/// with `snapshot` set, the number of `rep_done` events in that file at launch time) and execs
/// the fixture; `specs/<name>.yaml`; `target/` for the run and the store.
fn scratch(
    tag: &str,
    name: &str,
    measure: &str,
    snapshot: Option<&Path>,
) -> (PathBuf, RemoveOnDrop) {
    let dir = std::env::temp_dir().join(format!("l1-faults-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let engines = dir.join("engines");
    let log = dir.join("launches.log");
    let mut script = String::from("export L1_FIXTURE_VERSION=2026.10.7\n");
    // `--version` probes are logged as such; every other start is a launch.
    script.push_str(&format!(
        "case \" $* \" in *\" --version \"*) echo version >> '{}'; exec '{}' \"$@\";; esac\n",
        log.display(),
        env!("CARGO_BIN_EXE_l1-fixture-server")
    ));
    match snapshot {
        Some(events) => script.push_str(&format!(
            "n=$(grep -c rep_done '{}' 2>/dev/null || true)\necho \"launch ${{n:-0}}\" >> '{}'\n",
            events.display(),
            log.display()
        )),
        None => script.push_str(&format!("echo launch >> '{}'\n", log.display())),
    }
    common::fake_llama_server(&engines, &script);
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    std::fs::write(
        dir.join(format!("specs/{name}.yaml")),
        cpu_spec(name, measure),
    )
    .unwrap();
    (dir.clone(), RemoveOnDrop(dir))
}

fn launches(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("launches.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `cargo <runner args> -p l1-harness --test kernels ...` on the scratch's spec with the kill switch on.
fn kill_switched(dir: &Path, runner: &[&str], after: &[&str], run_id: &str) -> Output {
    let profile = common::cargo_profile();
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(root())
        .args(runner)
        .args(["-p", "l1-harness", "--test", "kernels"]);
    if runner[0] == "nextest" {
        cmd.args([
            "--cargo-profile",
            profile,
            "--color",
            "never",
            "--no-fail-fast",
        ]);
    } else {
        cmd.args(["--profile", profile, "--"]).args(after);
    }
    cmd.env("ENABLE_L1_KERNEL_TUNING", "0")
        .env("L1_SPECS", dir.join("specs"))
        .env("L1_ENGINES_DIR", dir.join("engines"))
        .env("L1_TARGET_DIR", dir.join("target"))
        .env("L1_RUN_ID", run_id)
        .env("L1_FULL_SCAN_FORBIDDEN", "1")
        .env_remove("L1_STORE")
        .env_remove("L1_CACHE")
        .env_remove("NEXTEST_RUN_ID")
        .env_remove("L1_REQUIRE_ENGINES")
        .env_remove("L1_REQUIRE_HARDWARE");
    common::clear_runner_env(&mut cmd);
    // A plain libtest run expands every spec (the scratch holds one): allowed there.
    if runner[0] != "nextest" {
        cmd.env_remove("L1_FULL_SCAN_FORBIDDEN");
    }
    cmd.output().expect("cargo runs")
}

/// The kill switch holds whatever selects the ignored trials: libtest's `--ignored` and
/// `--include-ignored`, nextest's `--run-ignored only` and `--run-ignored all`. No engine is
/// launched; each forced trial fails with the reason (never a pass: nothing was measured).
#[test]
fn the_kill_switch_holds_under_every_flag_that_runs_ignored_trials() {
    let (dir, _keep) = scratch(
        "kill",
        "killswitch",
        "{ reps: 2, startup_timeout_s: 5 }",
        None,
    );
    // The spec works: without the kill switch the same trials would launch the fixture (shown by
    // the lifecycle tests); listed under the kill switch they are ignored, with the reason.
    let cases: [(&[&str], &[&str]); 4] = [
        (&["test"], &["--ignored"]),
        (&["test"], &["--include-ignored"]),
        (&["nextest", "run", "--run-ignored", "only"], &[]),
        (&["nextest", "run", "--run-ignored", "all"], &[]),
    ];
    for (i, (runner, after)) in cases.iter().enumerate() {
        let what = format!("{} {}", runner.join(" "), after.join(" "));
        let out = kill_switched(&dir, runner, after, &format!("kill-{i}"));
        let all = text(&out);
        assert_eq!(
            launches(&dir),
            Vec::<String>::new(),
            "`cargo {what}` with ENABLE_L1_KERNEL_TUNING=0 ran the engine's binary:\n{all}"
        );
        assert!(
            !out.status.success(),
            "`cargo {what}`: trials the kill switch stopped must not pass:\n{all}"
        );
        assert!(
            all.contains("ENABLE_L1_KERNEL_TUNING=0") && all.contains("not run"),
            "`cargo {what}`: the failure must say the kill switch stopped it:\n{all}"
        );
        // Each forced trial is recorded as failed (none as a measured pass), no measurement taken.
        let run = RunDir::new(&dir.join("target"), &format!("kill-{i}"));
        let (records, _) = run.trials();
        assert_eq!(records.len(), 3, "`cargo {what}`: {records:?}\n{all}");
        assert!(
            records.iter().all(|r| !r.passed && r.measurement.is_none()),
            "{records:?}"
        );
        assert!(
            !run.path.join("measurements").is_dir()
                || std::fs::read_dir(run.path.join("measurements"))
                    .unwrap()
                    .count()
                    == 0,
            "`cargo {what}`: a measurement was taken"
        );
    }
}

/// `rep_done` events are written as reps finish: with two launches, reps 1 and 3 (launch 1)
/// are reported before launch 2 starts, and the events follow the order the reps ran in (1, 3,
/// 2, 4), not the order of the record.
#[test]
fn rep_events_are_written_as_reps_finish() {
    let run_id = record::run_id();
    let probe = std::env::temp_dir().join(format!("l1-faults-live-{}", std::process::id()));
    let events = RunDir::new(&probe.join("target"), &run_id)
        .path
        .join("events.jsonl");
    let (dir, _keep) = scratch(
        "live",
        "live",
        "{ reps: 4, launches: 2, startup_timeout_s: 5 }",
        Some(&events),
    );
    assert_eq!(dir, probe);
    let mut settings = Settings::new(&root(), dir.join("specs"), dir.join("target"));
    settings.engines_dir = dir.join("engines");
    let (trials, errors) = suite::plan(&settings, None);
    assert!(errors.is_empty(), "{errors:?}");
    let combo = trials
        .into_iter()
        .find(|t| t.name.ends_with("::baseline"))
        .unwrap();
    let name = combo.name.clone();
    combo.execute().unwrap();
    let log: Vec<String> = launches(&dir)
        .into_iter()
        .filter(|l| l.starts_with("launch"))
        .collect();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0], "launch 0", "{log:?}");
    assert_eq!(
        log[1], "launch 2",
        "when launch 2 started, launch 1's two reps should already be reported: {log:?}"
    );
    let reps: Vec<u64> = std::fs::read_to_string(&events)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "rep_done" && v["trial"] == name.as_str())
        .map(|v| v["rep"].as_u64().unwrap())
        .collect();
    assert_eq!(
        reps,
        [1, 3, 2, 4],
        "rep_done events in the order the reps ran"
    );
}

fn l1_in(cwd: &Path, env: &[(&str, &Path)], args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l1"));
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("L1_ROOT")
        .env_remove("L1_SPECS")
        .env_remove("L1_STORE")
        .env_remove("L1_CACHE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (out.status.code().unwrap_or(-1), text(&out))
}

/// `l1` finds the repository the way cargo finds a manifest: from a subdirectory it walks up to
/// `catalogs/kernels.yaml`; from outside any repository it falls back to the repository it was
/// built from; `L1_ROOT` and `--root` win, and a root without a catalog says how to fix it.
#[test]
fn l1_finds_its_root_from_anywhere_and_says_how_when_it_cannot() {
    let spec = root().join("specs/sim/sim-llama-8b-h100.yaml");
    let spec_arg = spec.to_str().unwrap();
    // From a subdirectory of the repository.
    let (code, out) = l1_in(&root().join("harness/src"), &[], &["validate", spec_arg]);
    assert_eq!(code, 0, "{out}");
    // From outside any repository: the build's repository.
    let elsewhere = std::env::temp_dir().join(format!("l1-faults-cwd-{}", std::process::id()));
    std::fs::create_dir_all(&elsewhere).unwrap();
    let _keep = RemoveOnDrop(elsewhere.clone());
    let (code, out) = l1_in(&elsewhere, &[], &["validate", spec_arg]);
    assert_eq!(code, 0, "{out}");
    // A root without catalogs (L1_ROOT or --root) is an error that says what to do.
    let (code, out) = l1_in(&root(), &[("L1_ROOT", &elsewhere)], &["validate", spec_arg]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("catalogs/kernels.yaml") && out.contains("L1_ROOT") && out.contains("--root"),
        "the error should say what a root holds and how to set it:\n{out}"
    );
}

/// `l1 validate` takes directories (every spec under them) as well as files, and with no
/// argument validates `L1_SPECS` (else `specs/`).
#[test]
fn validate_takes_directories_and_honours_l1_specs() {
    let good = root().join("harness/tests/fixtures/specs");
    let bad = root().join("harness/tests/bad_specs");
    let (code, out) = l1_in(&root(), &[], &["validate", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("contract-sim.yaml") && out.contains("contract-fault.yaml"),
        "{out}"
    );
    let (code, out) = l1_in(&root(), &[("L1_SPECS", &bad)], &["validate"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("near-miss-value.yaml") && out.contains("zero-trials.yaml"),
        "every spec under L1_SPECS should be validated:\n{out}"
    );
    let (code, out) = l1_in(&root(), &[("L1_SPECS", &good)], &["validate"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("contract-sim.yaml") && out.contains("contract-gpu.yaml"),
        "{out}"
    );
}
