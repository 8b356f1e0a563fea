//! Scaffolding shared by the harness tests: the repository root (every test binary), and for the
//! tests that run whole suites in child processes and then call the `l1` binary on what they
//! stored (`store_cache`, `tuning`), the child-run protocol.
//!
//! A test starts its own test binary again with `--exact child_run` and a scratch directory in
//! an environment variable; the child plans every spec under `<dir>/specs` and prints one
//! `TRIAL\t<name>\t<pass|fail>\t<message>` line per trial, which [`run_child`] parses.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a part; a panic is the report.

use std::path::{Path, PathBuf};
use std::process::Command;

use l1_harness::suite::{self, Settings};

/// The repository root (catalogs, bundled specs).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Removes a scratch directory when dropped, unless the test is failing (kept for inspection).
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A child run's trials: (name, passed, message).
pub type Trials = Vec<(String, bool, String)>;

/// Run `cmd` (a child of this test binary, see the module docs) to completion and parse its
/// trial lines; the child itself must succeed.
pub fn run_child(mut cmd: Command, what: &str) -> Trials {
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child run {what} failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter_map(|l| l.strip_prefix("TRIAL\t"))
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let name = f.next().unwrap_or("").to_string();
            let passed = f.next() == Some("pass");
            let msg = f.next().unwrap_or("").replace("\\n", "\n");
            (name, passed, msg)
        })
        .collect()
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
    let bin = engines.join("bin/llama-server");
    let script = format!(
        "#!/bin/sh\n{lines}exec '{}' \"$@\"\n",
        env!("CARGO_BIN_EXE_l1-fixture-server")
    );
    std::fs::write(&bin, script).unwrap();
    let mut perms = std::fs::metadata(&bin).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&bin, perms).unwrap();
}

/// The cargo profile this test was built with, so nested `cargo test`/`cargo nextest` runs reuse
/// its build instead of compiling another profile.
pub fn cargo_profile() -> &'static str {
    let exe = std::env::current_exe().unwrap_or_default();
    if exe.components().any(|c| c.as_os_str() == "release") {
        "release"
    } else {
        "dev"
    }
}

/// Remove the outer test runner's nextest variables (`NEXTEST`, `NEXTEST_RUN_ID`, …) from a child
/// command, so a nested `cargo test` or `l1` behaves as it would from a user's shell whether the
/// suite itself runs under `cargo test` or `cargo nextest run`.
pub fn clear_runner_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let name = k.to_string_lossy();
        if name.starts_with("NEXTEST") || name.starts_with("__NEXTEST") {
            cmd.env_remove(&k);
        }
    }
}

/// A child of this test binary running only `child_run`, with `dir_var` pointing at `dir` and
/// the run id set; the store and cache settings of the parent are removed.
pub fn child_command(dir_var: &str, dir: &Path, run_id: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_run", "--nocapture", "--test-threads", "1"])
        .env(dir_var, dir)
        .env("L1_RUN_ID", run_id)
        .env_remove("L1_STORE")
        .env_remove("L1_CACHE")
        .env_remove("NEXTEST_RUN_ID");
    clear_runner_env(&mut cmd);
    cmd
}

/// The child side: plan every spec under `<dir>/specs` (target `<dir>/target`, engines under
/// `engines_dir` when given) and print one trial line per trial. Does nothing unless `dir_var`
/// is set, so the parent's own `child_run` test passes trivially.
pub fn child_main(dir_var: &str, engines_dir: Option<&str>) {
    let Ok(dir) = std::env::var(dir_var) else {
        return;
    };
    let dir = PathBuf::from(dir);
    let mut settings = Settings::new(&root(), dir.join("specs"), dir.join("target"));
    if let Some(e) = engines_dir {
        settings.engines_dir = dir.join(e);
    }
    let (trials, errors) = suite::plan(&settings, None);
    assert!(errors.is_empty(), "{errors:?}");
    for t in trials {
        let name = t.name.clone();
        let r = t.execute();
        let (ok, msg) = match &r {
            Ok(()) => ("pass", String::new()),
            Err(e) => ("fail", e.replace('\n', "\\n")),
        };
        // A newline first: libtest printed `test child_run ... ` without one.
        println!("\nTRIAL\t{name}\t{ok}\t{msg}");
    }
}

/// A scratch directory for l1's results (`L1_TARGET_DIR`) of a test that runs the `kernels`
/// target or `l1` in a child process: unique per process and `name`, removed when dropped. The
/// project's tests write nothing into the repository's `target/l1` (runs, default store,
/// metrics): see [`assert_isolated`].
pub fn results_dir(name: &str) -> RemoveOnDrop {
    let d = std::env::temp_dir().join(format!("l1-results-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    RemoveOnDrop(d)
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
