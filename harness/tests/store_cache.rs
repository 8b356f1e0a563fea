//! The results store and the cache through the whole real-engine path, and the `l1` commands on
//! the store this populates. `l1-fixture-server` stands in for `llama-server` (same flags and
//! endpoints), so this runs on every machine. Each run is a child process (`l1-test-child`, see
//! `common::child_command`) with its own `L1_RUN_ID`, as nextest or a nightly job would start
//! them.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use std::path::PathBuf;

use common::{Trials, child_command, root, run_child};
use l1_harness::record::{MeasurementRecord, RunDir};
use l1_harness::suite::{self, Settings};

const SPEC: &str = "kind: sweep
name: cached
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
measure: { reps: 3, startup_timeout_s: 10 }
gates:
  - { method: manual }
";

struct Scratch {
    dir: PathBuf,
    _cleanup: common::RemoveOnDrop,
}

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = l1_testkit::fresh_dir(&format!("store-{name}"));
        std::fs::create_dir_all(dir.join("engines/bin")).unwrap();
        std::fs::create_dir_all(dir.join("engines/models")).unwrap();
        std::fs::write(dir.join("engines/models/tiny-llama.gguf"), b"weights v1").unwrap();
        std::fs::create_dir_all(dir.join("specs")).unwrap();
        std::fs::write(dir.join("specs/cached.yaml"), SPEC).unwrap();
        let s = Self {
            _cleanup: common::RemoveOnDrop(dir.clone()),
            dir,
        };
        s.engine_version("2026.10.7");
        s
    }

    /// (Re)write the fake `llama-server`, reporting `version`.
    fn engine_version(&self, version: &str) {
        self.engine(version, "");
    }

    /// (Re)write the fake `llama-server` with extra shell lines (fixture timing).
    fn engine(&self, version: &str, extra: &str) {
        common::fake_llama_server(
            &self.dir.join("engines"),
            &format!("export L1_FIXTURE_VERSION={version}\n{extra}"),
        );
    }

    fn target(&self) -> PathBuf {
        self.dir.join("target")
    }

    /// One run in a child process: (trial, passed, message) per trial.
    fn run(&self, run_id: &str, env: &[(&str, &str)]) -> Trials {
        let mut cmd = child_command(&self.dir, run_id);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run_child(cmd, run_id)
    }

    fn records(&self, run_id: &str) -> Vec<MeasurementRecord> {
        let run = RunDir::new(&self.target(), run_id);
        std::fs::read_dir(run.path.join("measurements"))
            .unwrap()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .map(|e| l1_harness::record::read_json(&e.path()).unwrap().unwrap())
            .collect()
    }

    /// `l1 <args>` against this scratch directory's store: (exit code, stdout, stderr).
    fn l1(&self, args: &[&str]) -> (i32, String, String) {
        let engines = self.dir.join("engines");
        common::l1(
            &self.target(),
            &[("L1_ENGINES_DIR", engines.as_path())],
            args,
        )
    }

    fn l1_json(&self, args: &[&str]) -> serde_json::Value {
        let engines = self.dir.join("engines");
        common::l1_json(
            &self.target(),
            &[("L1_ENGINES_DIR", engines.as_path())],
            args,
        )
    }
}

fn hits(records: &[MeasurementRecord]) -> usize {
    records.iter().filter(|r| r.cache_hit.is_some()).count()
}

#[test]
fn the_cache_skips_launches_until_something_in_its_key_changes() {
    let s = Scratch::new("cache");
    let first = s.run("r1", &[]);
    assert!(first.iter().all(|(_, ok, _)| *ok), "{first:?}");
    let r1 = s.records("r1");
    assert_eq!(
        r1.len(),
        2,
        "two combos; the baseline is one of them (the engine default)"
    );
    assert_eq!(hits(&r1), 0);
    assert!(r1.iter().all(|r| r.fingerprints.is_some()));
    assert!(RunDir::new(&s.target(), "r1").path.join("engines").is_dir());

    // Nothing changed: every measurement is a hit, no engine is launched, the test output says so.
    let second = s.run("r2", &[]);
    assert!(second.iter().all(|(_, ok, _)| *ok), "{second:?}");
    let r2 = s.records("r2");
    assert_eq!(hits(&r2), 2, "{r2:?}");
    assert!(
        !RunDir::new(&s.target(), "r2").path.join("engines").exists(),
        "a cached run launches no engine"
    );
    for r in &r2 {
        let hit = r.cache_hit.as_ref().unwrap();
        assert_eq!(hit.from_run, "r1");
        let orig = r1.iter().find(|o| o.key == hit.from_key).unwrap();
        assert_eq!(r.reps, orig.reps, "the cached reps are the measured ones");
        assert!(r.notes[0].starts_with("cache hit: reps measured by run r1"));
    }

    // L1_CACHE=off and write: no lookup. read: lookups, but its own measurements are not offered.
    for mode in ["off", "write"] {
        let id = format!("r-{mode}");
        s.run(&id, &[("L1_CACHE", mode)]);
        assert_eq!(hits(&s.records(&id)), 0, "L1_CACHE={mode}");
    }
    let id = "r-read";
    s.run(id, &[("L1_CACHE", "read")]);
    assert_eq!(hits(&s.records(id)), 2, "L1_CACHE=read takes hits");
    // A bad mode fails the trials with the choices.
    let bad = s.run("r-bad", &[("L1_CACHE", "sometimes")]);
    assert!(
        bad.iter()
            .filter(|(n, _, _)| !n.ends_with("::gate"))
            .all(|(_, ok, m)| !ok && m.contains("off, read, write, readwrite")),
        "{bad:?}"
    );

    // Invalidation: an engine version bump measures again; so does a changed model file.
    s.engine_version("2026.10.8");
    s.run("r3", &[]);
    let r3 = s.records("r3");
    assert_eq!(hits(&r3), 0, "engine version bump");
    assert!(
        r3.iter()
            .all(|r| r.fingerprints.as_ref().unwrap().engine_version == "2026.10.8")
    );
    s.run("r4", &[]);
    assert_eq!(
        hits(&s.records("r4")),
        2,
        "r3's measurements are cached in turn"
    );
    std::fs::write(s.dir.join("engines/models/tiny-llama.gguf"), b"weights v2").unwrap();
    s.run("r5", &[]);
    assert_eq!(hits(&s.records("r5")), 0, "model change");

    // The l1 commands on the store this made.
    let list = s.l1_json(&["runs", "list"]);
    let runs = list["runs"].as_array().unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r["run_id"].as_str().unwrap()).collect();
    for id in ["r1", "r2", "r3", "r4", "r5", "r-off"] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }
    let r2row = runs.iter().find(|r| r["run_id"] == "r2").unwrap();
    assert_eq!(r2row["cache_hits"], 2);
    assert_eq!(r2row["trials_passed"], 4);
    let page = s.l1_json(&["runs", "list", "--limit", "2", "--offset", "1"]);
    assert_eq!(page["runs"].as_array().unwrap().len(), 2);
    let filtered = s.l1_json(&["runs", "list", "--engine", "vllm"]);
    assert!(filtered["runs"].as_array().unwrap().is_empty());
    let (code, _, err) = s.l1(&["runs", "list", "--status", "sleeping"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("unfinished, passed, failed, cancelled"),
        "{err}"
    );
    let (code, _, err) = s.l1(&["runs", "list", "--since", "last tuesday"]);
    assert_eq!(code, 2);
    assert!(err.contains("`7d`"), "{err}");

    let show = s.l1_json(&["runs", "show", "r1"]);
    assert_eq!(show["measurements"].as_array().unwrap().len(), 2);
    assert!(
        show["measurements"][0]["metrics"]["output_tokens_per_s"]["trimmed_mean_10"].is_number()
    );
    let (code, text, _) = s.l1(&["runs", "show", "r2"]);
    assert_eq!(code, 0);
    assert!(text.contains("[cache hit]"), "{text}");
    let (code, _, err) = s.l1(&["runs", "show", "r9"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown run `r9`"), "{err}");

    let stats = s.l1_json(&["cache", "stats"]);
    assert_eq!(
        stats["hits"].as_i64().unwrap(),
        6,
        "r2, r-read and r4: {stats}"
    );
    assert_eq!(
        stats["valid"].as_i64().unwrap(),
        8,
        "r1, r-write, r3, r5: {stats}"
    );

    // apply: the manual gate tests for no improvement, so no winner is established: apply
    // explains it and writes nothing (exit 1); `--force` writes the launch anyway.
    let out = s.dir.join("apply");
    let (code, text, _) = s.l1(&["apply", "r1", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("no established winner") && text.contains("manual passed"),
        "{text}"
    );
    assert!(text.contains("--force"), "{text}");
    assert!(!out.exists(), "nothing written without --force");
    let applied = s.l1_json(&["apply", "r1", "--out", out.to_str().unwrap(), "--force"]);
    let written = applied["written"].as_array().unwrap();
    assert_eq!(written.len(), 1, "{applied}");
    let dir = PathBuf::from(written[0]["dir"].as_str().unwrap());
    let launch: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("launch.json")).unwrap()).unwrap();
    let args: Vec<&str> = launch["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.contains(&"--port") && args.contains(&"8000"),
        "{args:?}"
    );
    assert_eq!(launch["provenance"]["run_id"], "r1");
    assert_eq!(launch["provenance"]["established"], false);
    assert!(
        launch["provenance"]["chosen_by"]
            .as_str()
            .unwrap()
            .starts_with("forced (--force)"),
        "{launch}"
    );
    assert!(launch["provenance"]["hardware_fingerprint"].is_string());
    let sh = std::fs::read_to_string(dir.join("launch.sh")).unwrap();
    assert!(sh.starts_with("#!/bin/sh") && sh.contains("exec "), "{sh}");

    // Flushing empties the cache for the engine: the next run measures.
    let flushed = s.l1_json(&["cache", "flush", "--engine", "llamacpp"]);
    assert_eq!(flushed["flushed"].as_u64().unwrap(), 8);
    let (code, _, err) = s.l1(&["cache", "flush"]);
    assert_eq!(code, 2);
    assert!(err.contains("--all"), "{err}");
    s.run("r6", &[]);
    assert_eq!(hits(&s.records("r6")), 0, "flushed");

    // Soft delete hides a run from listings, not from `--deleted`.
    let _ = s.l1_json(&["runs", "delete", "r6"]);
    let list = s.l1_json(&["runs", "list"]);
    assert!(
        !list["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["run_id"] == "r6")
    );
    let list = s.l1_json(&["runs", "list", "--deleted"]);
    assert!(
        list["runs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["run_id"] == "r6")
    );
    // A deleted run's entries no longer answer: r7 measures again.
    s.run("r7", &[]);
    assert_eq!(hits(&s.records("r7")), 0, "r6 was deleted");

    // Cancel: the run's remaining trials fail with the reason and run nothing.
    let _ = s.l1_json(&["runs", "cancel", "r7"]);
    let cancelled = s.run("r7", &[]);
    assert!(
        cancelled
            .iter()
            .all(|(_, ok, m)| !ok && m.contains("was cancelled with `l1 runs cancel`")),
        "{cancelled:?}"
    );
    let list = s.l1_json(&["runs", "list", "--status", "cancelled"]);
    assert_eq!(list["runs"][0]["run_id"], "r7");

    // The store holds the run dir's records, and `store check` finds every measurement whole.
    let check = s.l1_json(&["store", "check"]);
    assert!(
        check["incomplete_measurements"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn report_restores_a_run_measured_elsewhere_from_the_store() {
    let s = Scratch::new("restore");
    s.run("elsewhere", &[]);
    // The run directory is gone (another runner measured it; the store is shared).
    std::fs::remove_dir_all(RunDir::new(&s.target(), "elsewhere").path).unwrap();
    let (code, out, err) = s.l1(&["report", "elsewhere"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("restored 6 records from the store"), "{err}");
    assert!(out.contains("4 trials passed"), "{out}");
    let (code, _, err) = s.l1(&["report", "nowhere"]);
    assert_eq!(code, 2);
    assert!(err.contains("not in the store"), "{err}");
}

#[test]
fn regression_against_stored_main_results_fails_a_slower_change() {
    let s = Scratch::new("stored");
    // The spec gates each combo against its own measurement on main (a 50 % regression allowed,
    // an honest margin on a shared machine; the slow engine is several times slower).
    std::fs::write(
        s.dir.join("specs/cached.yaml"),
        SPEC.replace(
            "  - { method: manual }",
            "  - { method: regression, against: stored, label: main, epsilon: 0.5, metrics: [output_tokens_per_s] }",
        ),
    )
    .unwrap();
    // The gate trial's verdict and message, from its record.
    let gate = |run_id: &str| -> (String, bool, String) {
        let (trials, bad) = RunDir::new(&s.target(), run_id).trials();
        assert!(bad.is_empty(), "{bad:?}");
        let g = trials.into_iter().find(|t| t.kind == "gate").unwrap();
        (g.name, g.passed, g.message)
    };
    // The first run on main has nothing to compare with: it passes and says so.
    s.run("main-1", &[("L1_RUN_LABEL", "main")]);
    let (_, ok, msg) = gate("main-1");
    assert!(ok, "{msg}");
    assert!(
        msg.contains("0 combos compared") && msg.contains("nothing stored for"),
        "{msg}"
    );
    // A pull request with the same engine: compared combo by combo, passes.
    s.run("pr-same", &[("L1_CACHE", "write")]);
    let (_, ok, msg) = gate("pr-same");
    assert!(ok, "{msg}");
    assert!(msg.contains("2 combos compared, 0 regressed"), "{msg}");
    // A pull request whose engine got slower (same version, so the same cache key): fails.
    s.engine("2026.10.7", "export L1_FIXTURE_ITL_MS=12\n");
    s.run("pr-slow", &[("L1_CACHE", "write")]);
    let (_, ok, msg) = gate("pr-slow");
    assert!(!ok, "{msg}");
    assert!(msg.contains("regressed: output_tokens_per_s"), "{msg}");
    assert!(msg.contains("vs run main-1"), "{msg}");
    // The non-inferiority form (the pull-request recipe of `docs/src/ci.md`) against the same stored main
    // results: the slow engine is not shown to be within ε, the unchanged engine is.
    std::fs::write(
        s.dir.join("specs/cached.yaml"),
        SPEC.replace(
            "  - { method: manual }",
            "  - { method: regression, against: stored, label: main, form: non_inferiority, epsilon: 0.5, metrics: [output_tokens_per_s] }",
        ),
    )
    .unwrap();
    s.run("pr-slow-ni", &[("L1_CACHE", "write")]);
    let (_, ok, msg) = gate("pr-slow-ni");
    assert!(!ok, "{msg}");
    assert!(msg.contains("not shown within ε"), "{msg}");
    s.engine_version("2026.10.7");
    s.run("pr-same-ni", &[("L1_CACHE", "write")]);
    let (_, ok, msg) = gate("pr-same-ni");
    assert!(ok, "{msg}");
    assert!(
        msg.contains("2 combos compared, 0 not shown within ε"),
        "{msg}"
    );
    // A bad `against` is a spec error with the choices.
    std::fs::write(
        s.dir.join("specs/cached.yaml"),
        SPEC.replace(
            "  - { method: manual }",
            "  - { method: regression, against: yesterday }",
        ),
    )
    .unwrap();
    let mut settings = Settings::new(&root(), s.dir.join("specs"), s.dir.join("target"));
    settings.engines_dir = s.dir.join("engines");
    let (_, errors) = suite::plan(&settings, None);
    let text = format!("{:?}", errors);
    assert!(
        text.contains("baseline") && text.contains("stored"),
        "{text}"
    );
}
