//! The whole real-engine path — plan, launch, readiness, warm-up, load, reps, teardown — and
//! every fault, run against `l1-fixture-server` standing in for `llama-server` (same flags and
//! endpoints, known timing, injectable faults), so it runs on every machine. The real engines
//! run the same path in the `kernels` target's `cpu::` trials (specs/cpu/).
//!
//! Each test makes its own engines directory whose `bin/llama-server` is a shell wrapper that
//! sets the fixture's fault variables and execs it.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::root;
use l1_harness::record::{self, MeasurementRecord, RunDir};
use l1_harness::suite::{self, Settings};

const SPEC: &str = "kind: sweep
name: lifecycle
targets:
  engines: [llamacpp@2026.10]
  models: [tiny-llama]
  hardware: [cpu]
  workloads: [cpu-smoke]
space:
  mode: exhaustive
  dims:
    attention_backend: [flash_attn_v2, native]
baseline: engine-default
measure: { reps: 3, startup_timeout_s: 3 }
gates:
  - { method: manual }
";

/// A scratch directory with an engines dir whose `llama-server` runs the fixture with `env`.
struct Scratch {
    dir: PathBuf,
    settings: Settings,
}

impl Scratch {
    fn new(name: &str, env: &[(&str, &str)]) -> Self {
        let dir = l1_testkit::fresh_dir(&format!("life-{name}"));
        let engines = dir.join("engines");
        let mut lines = String::from("export L1_FIXTURE_VERSION=2026.10.7\n");
        for (k, v) in env {
            lines.push_str(&format!("export {k}='{v}'\n"));
        }
        common::fake_llama_server(&engines, &lines);
        std::fs::create_dir_all(dir.join("specs")).unwrap();
        std::fs::write(dir.join("specs/lifecycle.yaml"), SPEC).unwrap();
        let mut settings = Settings::new(&root(), dir.join("specs"), dir.join("target"));
        settings.engines_dir = engines;
        Self { dir, settings }
    }

    /// Run every trial; (name, result) in plan order.
    fn run(&self) -> Vec<(String, Result<(), String>)> {
        let (trials, errors) = suite::plan(&self.settings, None);
        assert!(errors.is_empty(), "{errors:?}");
        trials
            .into_iter()
            .map(|t| {
                assert!(t.ignored.is_none(), "{}: {:?}", t.name, t.ignored);
                (t.name.clone(), t.execute())
            })
            .collect()
    }

    fn records(&self) -> Vec<MeasurementRecord> {
        let run = RunDir::new(&self.settings.target_dir, &record::run_id());
        let Ok(dir) = std::fs::read_dir(run.path.join("measurements")) else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| record::read_json(&e.path()).ok().flatten())
            .collect()
    }

    /// No engine of this scratch directory is left running.
    fn assert_no_engine_left(&self) {
        let marker = self.dir.to_string_lossy().to_string();
        let t0 = Instant::now();
        loop {
            let left: Vec<String> = std::fs::read_dir("/proc")
                .unwrap()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
                .filter(|c| c.contains(&marker) && c.contains("llama-server"))
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "engines left running: {left:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let pids = self.settings.target_dir.join("l1/pids");
        let records = std::fs::read_dir(&pids).map(|d| d.count()).unwrap_or(0);
        assert_eq!(records, 0, "live-engine records left in {}", pids.display());
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn failures(results: &[(String, Result<(), String>)]) -> Vec<(&str, &str)> {
    results
        .iter()
        .filter_map(|(n, r)| r.as_ref().err().map(|e| (n.as_str(), e.as_str())))
        .collect()
}

#[test]
fn full_path_measures_every_combo_and_tears_down() {
    let s = Scratch::new("ok", &[("L1_FIXTURE_TTFT_MS", "3")]);
    let results = s.run();
    assert_eq!(results.len(), 4, "2 combos, baseline, gate");
    assert!(failures(&results).is_empty(), "{:?}", failures(&results));
    assert!(results.iter().all(|(n, _)| {
        n.starts_with("cpu::lifecycle::llamacpp@2026.10::tiny-llama::cpu::cpu-smoke::")
    }));
    let recs = s.records();
    assert_eq!(recs.len(), 2, "the baseline (-fa off) is one of the combos");
    for r in &recs {
        assert!(!r.simulated);
        assert_eq!(r.reps.len(), 3, "{r:?}");
        for rep in &r.reps {
            assert!(rep["output_tokens_per_s"] > 0.0);
            assert_eq!(rep["error_rate"], 0.0);
            // The fixture sends token k at 3 ms + k x 1 ms after the request reached it (a fixed
            // schedule, so a late first token is followed by shorter gaps): every request takes at
            // least 3 + 15 ms, and its first token at least 3 ms.
            assert!(rep["ttft_p50_ms"] >= 3.0, "{rep:?}");
            assert!(rep["e2e_p50_ms"] >= 18.0, "{rep:?}");
            assert!(rep["e2e_p50_ms"] >= rep["ttft_p50_ms"], "{rep:?}");
            assert!(rep["peak_memory_gib"] > 0.0);
            assert!(
                rep["input_tokens_mean"] > 20.0 && rep["input_tokens_mean"] < 40.0,
                "{rep:?}"
            );
        }
        let notes = r.notes.join("\n");
        assert!(notes.contains("engine version: 2026.10.7"), "{notes}");
        assert_eq!(r.engine_version.as_deref(), Some("2026.10.7"));
        assert!(notes.contains("ready after"), "{notes}");
        assert!(
            notes.contains(" -fa on") || notes.contains(" -fa off"),
            "{notes}"
        );
        let log = notes
            .lines()
            .find_map(|l| l.split_once("engine log: "))
            .unwrap()
            .1;
        assert!(Path::new(log).is_file(), "{log}");
    }
    s.assert_no_engine_left();
}

#[test]
fn an_engine_that_rejects_its_flags_fails_with_its_own_error_line() {
    // The fixture refuses `-fa off` (the native combo and the baseline) like an engine refusing a flag.
    let s = Scratch::new("reject", &[("L1_FIXTURE_REJECT_FLAG", "off")]);
    let results = s.run();
    let failed = failures(&results);
    let combo_fail = failed
        .iter()
        .find(|(n, _)| n.ends_with("::attn=native,kvdt=fp16"))
        .unwrap();
    assert!(
        combo_fail.1.contains("error: invalid argument: off"),
        "{}",
        combo_fail.1
    );
    assert!(
        combo_fail.1.contains("engine failed to start"),
        "{}",
        combo_fail.1
    );
    assert!(
        !failed
            .iter()
            .any(|(n, _)| n.contains("::attn=flash_attn_v2")),
        "{failed:?}"
    );
    s.assert_no_engine_left();
}

#[test]
fn a_readiness_timeout_fails_with_the_log_tail() {
    let s = Scratch::new("never", &[("L1_FIXTURE_NEVER_READY", "1")]);
    let results = s.run();
    for (name, r) in &results {
        let e = r.as_ref().unwrap_err();
        if !name.ends_with("::gate") {
            assert!(e.contains("readiness timeout"), "{name}: {e}");
            assert!(e.contains("loading model (forever)"), "{name}: {e}");
        }
    }
    s.assert_no_engine_left();
}

#[test]
fn an_engine_killed_mid_rep_fails_the_trial_and_later_trials_run() {
    // 2 warm-up requests + 8 per rep: the crash comes inside the second rep of every launch.
    let s = Scratch::new("crash", &[("L1_FIXTURE_EXIT_AFTER", "13")]);
    let results = s.run();
    let failed = failures(&results);
    assert_eq!(
        failed.len(),
        4,
        "every trial ran (none skipped): {failed:?}"
    );
    for (name, e) in failed.iter().filter(|(n, _)| !n.ends_with("::gate")) {
        assert!(
            e.contains("the engine died during the rep") && e.contains("simulated crash"),
            "{name}: {e}"
        );
    }
    // The rep measured before the crash is kept in the record.
    assert!(
        s.records()
            .iter()
            .all(|r| r.reps.len() == 1 && r.error.is_some())
    );
    s.assert_no_engine_left();
}

#[test]
fn http_errors_and_malformed_streams_are_counted_and_fail_the_trial() {
    let s = Scratch::new("http500", &[("L1_FIXTURE_FAULT", "http500:4")]);
    let results = s.run();
    let failed = failures(&results);
    let (_, e) = failed
        .iter()
        .find(|(n, _)| n.contains("::attn=flash_attn_v2"))
        .unwrap();
    assert!(
        e.contains("error rate 0.250 exceeds the workload's max_error_rate 0.000"),
        "{e}"
    );
    let rec = s
        .records()
        .into_iter()
        .find(|r| r.combo.dim("attention_backend") == "flash_attn_v2")
        .unwrap();
    assert!(
        rec.notes
            .iter()
            .any(|n| n.contains("2 http_status (e.g. HTTP 500")),
        "{:?}",
        rec.notes
    );
    s.assert_no_engine_left();

    let s = Scratch::new("malformed", &[("L1_FIXTURE_FAULT", "malformed:1")]);
    let results = s.run();
    for (name, r) in &results {
        let e = r.as_ref().unwrap_err();
        if !name.ends_with("::gate") {
            assert!(
                e.contains("failed") && e.contains("malformed"),
                "{name}: {e}"
            );
        }
    }
    s.assert_no_engine_left();
}

#[test]
fn sigterm_tears_engines_down_and_keeps_finished_results() {
    // Slow tokens (8 x 16 x 40 ms ≈ 2.6 s per rep at concurrency 2): the first combo finishes
    // its reps, then the harness is terminated while the second combo's engine is serving.
    let s = Scratch::new("sigterm", &[("L1_FIXTURE_ITL_MS", "25")]);
    // The child (`l1-test-child`) runs the spec's trials in its own process until killed.
    let mut child = common::child_command(&s.dir, &record::run_id())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let pids = s.settings.target_dir.join("l1/pids");
    // Wait for one finished measurement, then for the second engine: an engine group that was
    // not seen before the first measurement was written (the first engine's live record may
    // linger for a moment after its measurement is written).
    let live = || -> std::collections::BTreeSet<std::ffi::OsString> {
        std::fs::read_dir(&pids)
            .map(|d| d.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default()
    };
    let mut first = std::collections::BTreeSet::new();
    while s.records().is_empty() {
        first.extend(live());
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the child never finished its first measurement"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!first.is_empty(), "the first engine was seen running");
    while live().is_subset(&first) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the child never started its second engine"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    rustix_kill(child.id(), 15);
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{status:?}");
    assert!(err.contains("tearing down 1 engine process group"), "{err}");
    s.assert_no_engine_left();
    let recs = s.records();
    assert!(!recs.is_empty() && recs.iter().all(|r| r.reps.len() == 3 && r.error.is_none()));
}

fn rustix_kill(pid: u32, sig: i32) {
    let status = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
