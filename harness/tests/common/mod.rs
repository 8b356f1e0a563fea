//! Scaffolding shared by the harness tests: the repository root (every test binary), and for the
//! tests that run whole suites in child processes and then call the `l1` binary on what they
//! stored (`store_cache`, `tuning`, `engine_lifecycle`), the child-run protocol.
//!
//! A test starts the test-only helper binary `l1-test-child` (workspace package
//! `testkit/child`, built on demand by [`l1_testkit::helper_bin`]) on a scratch directory; the
//! child plans every spec under `<dir>/specs` in a fresh process, as a test runner would start
//! the `kernels` target, and prints one `TRIAL\t<name>\t<pass|fail>\t<message>` line per trial,
//! which [`run_child`] parses. The generic helpers (scratch directories, the cargo profile,
//! runner-environment clearing) live in `l1-testkit` and are re-exported here.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a part; a panic is the report.

use std::path::{Path, PathBuf};
use std::process::Command;

#[allow(unused_imports)] // each test binary uses a part.
pub use l1_testkit::{RemoveOnDrop, Trials, cargo_profile, clear_runner_env};

/// The repository root (catalogs, bundled specs).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Run `cmd` (an `l1-test-child`, see [`child_command`]) to completion and parse its trial
/// lines; the child itself must succeed.
pub fn run_child(mut cmd: Command, what: &str) -> Trials {
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child run {what} failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    l1_testkit::parse_trials(&text)
}

/// A fake llama.cpp install under `engines` for tests: `models/tiny-llama.gguf` (empty, unless
/// the test already wrote one) and an executable `bin/llama-server` that runs the shell `lines`
/// (exports, logging) and then execs the `l1-fixture-server` binary with its arguments.
pub fn fake_llama_server(engines: &Path, lines: &str) {
    std::fs::create_dir_all(engines.join("bin")).unwrap();
    std::fs::create_dir_all(engines.join("models")).unwrap();
    let model = engines.join("models/tiny-llama.gguf");
    if !model.exists() {
        std::fs::write(&model, b"").unwrap();
    }
    l1_testkit::write_executable(
        &engines.join("bin/llama-server"),
        &format!(
            "#!/bin/sh\n{lines}exec '{}' \"$@\"\n",
            env!("CARGO_BIN_EXE_l1-fixture-server")
        ),
    );
}

/// An `l1-test-child` on the scratch directory `dir` as run `run_id`: specs under
/// `<dir>/specs`, results under `<dir>/target`, engines under `<dir>/engines` when the test
/// made that directory (else the default); the parent's store, cache and runner settings
/// removed.
pub fn child_command(dir: &Path, run_id: &str) -> Command {
    let mut cmd = Command::new(l1_testkit::helper_bin("l1-test-child", "l1-test-child"));
    cmd.arg("--root").arg(root()).arg("--dir").arg(dir);
    let engines = dir.join("engines");
    if engines.is_dir() {
        cmd.arg("--engines").arg(engines);
    }
    cmd.env("L1_RUN_ID", run_id)
        .env_remove("L1_STORE")
        .env_remove("L1_CACHE")
        .env_remove("NEXTEST_RUN_ID");
    clear_runner_env(&mut cmd);
    cmd
}

/// A scratch directory for l1's results (`L1_TARGET_DIR`) of a test that runs the `kernels`
/// target or `l1` in a child process: unique per process and `name`, removed when dropped. The
/// project's tests write nothing into the repository's `target/l1` (runs, default store,
/// metrics): see [`assert_isolated`].
pub fn results_dir(name: &str) -> RemoveOnDrop {
    RemoveOnDrop(l1_testkit::fresh_dir(&format!("results-{name}")))
}

/// The environment of a child `cargo test`/`cargo nextest` of the `kernels` target that writes
/// its results into `results` (never the repository's `target/l1`) as run `run_id`: the parent's
/// run, store, cache, metrics and engine settings removed.
pub fn isolate(cmd: &mut Command, results: &Path, run_id: &str) {
    cmd.env("L1_TARGET_DIR", results)
        .env("L1_RUN_ID", run_id)
        .env_remove("NEXTEST_RUN_ID")
        .env_remove("L1_STORE")
        .env_remove("L1_CACHE")
        .env_remove("L1_METRICS_TEXTFILE")
        .env_remove("L1_PUSHGATEWAY")
        .env_remove("L1_REQUIRE_ENGINES")
        .env_remove("L1_REQUIRE_HARDWARE")
        .env_remove("L1_GATES")
        .env_remove("ENABLE_L1_KERNEL_TUNING");
    clear_runner_env(cmd);
}

/// Nothing of the runs `run_ids` reached the repository's `target/l1/runs` (the user's results).
pub fn assert_isolated(run_ids: &[&str]) {
    let runs = root().join("target/l1/runs");
    for id in run_ids {
        assert!(
            !runs.join(id).exists(),
            "the test's run `{id}` wrote into the user's results {}",
            runs.display()
        );
    }
}

/// `l1 <args>` with `CARGO_TARGET_DIR=target` and `env` set (the parent's store and cache
/// settings removed): (exit code, stdout, stderr).
pub fn l1(target: &Path, env: &[(&str, &Path)], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l1"));
    cmd.args(["--root", root().to_str().unwrap()])
        .args(args)
        .env("CARGO_TARGET_DIR", target)
        .env_remove("L1_TARGET_DIR")
        .env_remove("L1_METRICS_TEXTFILE")
        .env_remove("L1_PUSHGATEWAY")
        .env_remove("L1_STORE")
        .env_remove("L1_CACHE")
        .env_remove("L1_TUNE_TRIAL_DELAY_MS");
    clear_runner_env(&mut cmd);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `l1 --json <args>`, which must succeed, parsed.
pub fn l1_json(target: &Path, env: &[(&str, &Path)], args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = l1(target, env, &all);
    assert_eq!(code, 0, "l1 {args:?}: {out}\n{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("l1 {args:?}: {e}: {out}"))
}

/// The `kernels` test binary (the tests that run it as a runner would: `affected`, `ab`,
/// `fleet`), built (or found up to date) by cargo.
pub fn kernels_binary() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root())
        .args([
            "test",
            "--no-run",
            "--message-format=json-render-diagnostics",
            "-p",
            "l1-harness",
            "--test",
            "kernels",
            "--profile",
        ])
        .arg(cargo_profile());
    clear_runner_env(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "building the kernels target: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "kernels")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the kernels executable")
}
