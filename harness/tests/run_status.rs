//! Runs that did not finish, and runs whose store fails, read as what they are:
//! - a run still in progress is `unfinished` (its running trial named), not `passed`;
//! - a SIGKILLed run is `unfinished` with the missing trials named, in `l1 report` (exit 2), its
//!   JUnit, and `l1 runs list` (never under `--status passed`, never "running" forever);
//! - with a corrupt store, the end-of-run summary says what libtest says (every trial failed).
//!
//! The runs are real `cargo test` runs of the `kernels` target on scratch specs, with l1's
//! results in a scratch `L1_TARGET_DIR`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::root;

const SIM: &str = "kind: sweep
name: status-sim
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [interactive-single]
space:
  pins: { attention_backend: flash_attn_v3 }
measure: { reps: 5 }
gates:
  - { method: manual }
";

/// A llama.cpp target whose engine never becomes ready: its trial blocks (for up to its startup
/// timeout) until the test kills the run.
const HANGS: &str = "kind: sweep
name: status-hang
targets:
  engines: [llamacpp@2026.10]
  models: [tiny-llama]
  hardware: [cpu]
  workloads: [cpu-smoke]
space:
  pins: { attention_backend: flash_attn_v2 }
measure: { reps: 3, startup_timeout_s: 600 }
gates:
  - { method: manual }
";

/// `cargo test -p l1-harness --test kernels` on `dir/specs`, results in `dir/target`.
fn kernels(dir: &Path, run_id: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO"));
    common::isolate(&mut cmd, &dir.join("target"), run_id);
    cmd.current_dir(root())
        .args(["test", "-p", "l1-harness", "--test", "kernels"])
        .args([
            "--profile",
            common::cargo_profile(),
            "--",
            "--test-threads",
            "2",
        ])
        .env("L1_SPECS", dir.join("specs"))
        .env("L1_ENGINES_DIR", dir.join("engines"))
        .env("L1_PROGRESS", "0");
    cmd
}

/// An engines directory whose `llama-server` is the fixture server that never answers.
fn hanging_engine(engines: &Path) {
    common::fake_llama_server(
        engines,
        "export L1_FIXTURE_VERSION=2026.10.7\nexport L1_FIXTURE_NEVER_READY=1\n",
    );
}

/// The names in the run's start markers.
fn started(run: &Path) -> Vec<String> {
    std::fs::read_dir(run.join("started"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .filter_map(|v| v["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn report(target: &Path, specs: &Path, id: &str) -> (i32, serde_json::Value, String) {
    let (code, out, err) = common::l1(target, &[("L1_SPECS", specs)], &["--json", "report", id]);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, v, err)
}

#[test]
fn in_progress_and_killed_runs_are_unfinished_with_the_missing_trials_named() {
    let scratch = common::results_dir("status-killed");
    let dir = scratch.0.clone();
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    std::fs::write(dir.join("specs/status-sim.yaml"), SIM).unwrap();
    std::fs::write(dir.join("specs/status-hang.yaml"), HANGS).unwrap();
    hanging_engine(&dir.join("engines"));
    let target = dir.join("target");
    let id = format!("status-killed-{}", std::process::id());
    let run: PathBuf = target.join("l1/runs").join(&id);

    // The run. The test SIGKILLs the harness process itself (the `kernels` binary, whose pid the
    // run's plan records): cargo then exits, and the engine dies with its harness
    // (PR_SET_PDEATHSIG).
    let mut child = kernels(&dir, &id)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let harness_pid = || -> Option<u32> {
        let plans = std::fs::read_dir(run.join("plan")).ok()?;
        plans
            .flatten()
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .find_map(|v| v["pid"].as_u64())
            .map(|p| p as u32)
            .filter(|p| *p > 1)
    };
    let kill = |pid: u32| {
        assert!(pid > 1, "refusing to signal pid {pid}");
        let _ = Command::new("kill")
            .args(["-s", "KILL", &pid.to_string()])
            .status();
    };
    // Wait (a guard against hanging, not a timing assertion) until a hanging trial started.
    let t0 = Instant::now();
    let hanging = loop {
        if let Some(n) = started(&run).into_iter().find(|n| n.starts_with("cpu::")) {
            break n;
        }
        if t0.elapsed() > Duration::from_secs(900) || child.try_wait().unwrap().is_some() {
            if let Some(pid) = harness_pid() {
                kill(pid);
            }
            let _ = child.kill();
            panic!("no cpu:: trial started in {}", run.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let pid = harness_pid().expect("the run's plan records its process");

    // In progress: unfinished, the running trial named, exit 2.
    let (code, summary, err) = report(&target, &dir.join("specs"), &id);
    assert_eq!(code, 2, "{summary}\n{err}");
    assert_eq!(summary["status"], "unfinished", "{summary}");
    let unfinished = summary["unfinished"].to_string();
    assert!(
        unfinished.contains(&format!("{hanging} (still running)")),
        "{summary}"
    );

    // SIGKILLed: unfinished, every trial without an outcome named, exit 2.
    kill(pid);
    let _ = child.wait();
    let (code, summary, err) = report(&target, &dir.join("specs"), &id);
    assert_eq!(code, 2, "{summary}\n{err}");
    assert_eq!(summary["status"], "unfinished", "{summary}");
    let names: Vec<String> = summary["unfinished"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with(&hanging) && n.contains("its process is gone")),
        "{names:?}"
    );
    // The three trials of the hanging target never finished (one was running, two waited).
    assert_eq!(
        names.iter().filter(|n| n.starts_with("cpu::")).count(),
        3,
        "{names:?}"
    );
    let text_report = common::l1(
        &target,
        &[("L1_SPECS", &dir.join("specs"))],
        &["report", &id],
    );
    assert!(
        text_report.1.contains("UNFINISHED") && text_report.1.contains("last activity"),
        "{}",
        text_report.1
    );
    let xml = std::fs::read_to_string(run.join("junit.xml")).unwrap();
    assert!(xml.contains("no outcome recorded"), "{xml}");

    // The store: unfinished, with its last activity; never listed as passed.
    let list = common::l1_json(&target, &[], &["runs", "list"]);
    let row = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(row["status"], "unfinished", "{row}");
    assert!(row["last_activity_unix_s"].as_f64().is_some(), "{row}");
    let passed = common::l1_json(&target, &[], &["runs", "list", "--status", "passed"]);
    assert!(
        !passed["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["run_id"] == id.as_str()),
        "{passed}"
    );
    let (_, text, _) = common::l1(&target, &[], &["runs", "list"]);
    assert!(
        text.lines()
            .any(|l| l.contains(&id) && l.contains("unfinished") && l.contains("last activity")),
        "{text}"
    );
    common::assert_isolated(&[&id]);
}

#[test]
fn with_a_corrupt_store_the_summary_agrees_with_libtest() {
    let scratch = common::results_dir("status-corrupt");
    let dir = scratch.0.clone();
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    std::fs::write(dir.join("specs/status-sim.yaml"), SIM).unwrap();
    let store = dir.join("corrupt.sqlite");
    std::fs::write(&store, b"this is not a database, it is a text file").unwrap();
    let id = format!("status-corrupt-{}", std::process::id());
    let out = kernels(&dir, &id).env("L1_STORE", &store).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    // Every trial fails (the store cannot record it), and the summary says so.
    assert!(
        stdout.contains("test result: FAILED. 0 passed; 3 failed; 0 ignored"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!(
            "l1 run {id}: FAILED: 0 trials passed, 3 failed, 0 ignored, 0 filtered out"
        )),
        "{stderr}"
    );
    // `l1 report` with the same corrupt store: the run could not be stored, exit 2.
    let (code, out, err) = common::l1(
        &dir.join("target"),
        &[("L1_STORE", &store), ("L1_SPECS", &dir.join("specs"))],
        &["--json", "report", &id],
    );
    assert_eq!(code, 2, "{out}\n{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["trials_failed"], 3, "{summary}");
    assert!(
        summary["notes"].to_string().contains("results store"),
        "{summary}"
    );
    common::assert_isolated(&[&id]);
}
