//! One store for many runners (issue 23), against one real PostgreSQL server (`L1_TEST_POSTGRES`,
//! an admin URL: `scripts/start-postgres.sh` prints one; without it these tests skip, and fail
//! under `L1_REQUIRE_ENGINES=1` or `L1_REQUIRE_POSTGRES=1`).
//!
//! - Partitions agree with one process: a seeded sim spec runs as three nextest partitions
//!   (`cargo nextest archive` once, then three concurrent `cargo nextest run --archive-file …
//!   --extract-to <own dir> --partition hash:k/3`, each with its own target directory, as three
//!   runners would) into one store under one `L1_RUN_ID`; `l1 report` for the run from a fourth
//!   directory; its trials, gate verdicts, winners and stored measurements equal those of a
//!   single-process run of the same spec into a fresh store, and no measurement is taken twice:
//!   every measurement key is taken by one runner (a gate takes what another partition stored,
//!   or waits for what it is measuring; `suite::shared`), as many as one process takes.
//! - The measurement lock: runners that need the same cache keys at once measure each key once,
//!   counted from the store's measurement rows (a measurement taken has no `cache_from_run`),
//!   and one runner SIGKILLed while holding a key's lock delays the others only until its lease
//!   (`L1_LOCK_TIMEOUT_S`) runs out; runners under `L1_CACHE=write` or `read` take no lock.
//!   `l1-fixture-server` stands in for `llama-server`.
//!
//! Nothing here asserts on time: waits have generous deadlines that only turn a hang into a
//! failure.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::kernels_binary;
use l1_store::{Location, Store};

/// Every child gets this long before it counts as hung.
const DEADLINE: Duration = Duration::from_secs(900);

/// The admin URL of the test server, or `None` (skipped, with the reason) when there is none.
fn postgres_admin(test: &str) -> Option<String> {
    if let Ok(url) = std::env::var("L1_TEST_POSTGRES")
        && !url.trim().is_empty()
    {
        return Some(url);
    }
    let required = ["L1_REQUIRE_ENGINES", "L1_REQUIRE_POSTGRES"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|x| x == "1"));
    assert!(
        !required,
        "{test}: L1_TEST_POSTGRES is not set, and L1_REQUIRE_ENGINES/L1_REQUIRE_POSTGRES=1 requires it (.ci/run starts a server and sets it)"
    );
    eprintln!(
        "{test}: SKIPPED: L1_TEST_POSTGRES is not set (an admin URL of a running PostgreSQL server: `export L1_TEST_POSTGRES=$(scripts/start-postgres.sh)`)"
    );
    None
}

/// A fresh database on the test server; its URL.
fn fresh_database(admin: &str, name: &str) -> String {
    let name = format!("l1t_fleet_{name}_{}", std::process::id()).to_lowercase();
    let mut client = postgres::Client::connect(admin, postgres::NoTls)
        .unwrap_or_else(|e| panic!("L1_TEST_POSTGRES={admin}: cannot connect: {e}"));
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    format!("{base}/{name}")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A child process that is SIGKILLed, with everything it started, if the test ends (a failed
/// assertion) while it still runs.
struct Guard(Option<Child>);

impl Guard {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }

    fn take(mut self) -> Child {
        self.0.take().unwrap()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0
            && c.try_wait().ok().flatten().is_none()
        {
            kill_tree(c);
        }
    }
}

/// SIGKILL `child`, then what it started (which nobody will stop now).
fn kill_tree(child: &mut Child) {
    let below = descendants(child.id());
    let _ = child.kill();
    let _ = child.wait();
    for pid in below {
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
}

/// Wait for `child` (output piped), killing it after [`DEADLINE`].
fn finish(child: Guard, what: &str) -> Output {
    let mut child = child.take();
    let t0 = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t0.elapsed() > DEADLINE {
            kill_tree(&mut child);
            let out = child.wait_with_output().unwrap();
            panic!("{what} hung (killed after {DEADLINE:?}):\n{}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// The processes below `pid` (children first found through `/proc/<pid>/stat`'s parent field).
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let p: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `pid (comm) state ppid …`; comm may contain spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        for (c, _) in parents.iter().filter(|(_, pp)| *pp == p) {
            out.push(*c);
            frontier.push(*c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Three partitions agree with one process.

const SIM_SPEC: &str = "kind: sweep
name: fleet-sim
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [chat-short, batch-offline]
space:
  mode: exhaustive
  dims:
    attention_backend: [flash_attn_v2, flash_attn_v3]
    activation_dtype: [bf16, fp8_e4m3]
baseline: engine-default
measure: { reps: 5, trim: 0.10, seed: 11 }
gates:
  - { method: topk5, metric: output_tokens_per_s, margin: 0.03, k: 2 }
  - { method: pareto }
";

/// What a run left in the store: its measurements (key → combo, error, reps) and its trials
/// (name → passed and, per gate, method, passed, winner).
#[derive(Debug, PartialEq)]
struct Stored {
    measurements: BTreeMap<String, (String, Option<String>, String)>,
    trials: BTreeMap<String, (bool, Vec<serde_json::Value>)>,
}

fn stored(url: &str, run_id: &str) -> Stored {
    let mut s = Store::open(&Location::Postgres(url.into())).unwrap();
    let measurements = s
        .measurements(run_id)
        .unwrap()
        .into_iter()
        .map(|m| {
            let reps = serde_json::to_string(&m.reps).unwrap();
            (m.key, (m.combo, m.error, reps))
        })
        .collect();
    let trials = s
        .trials(run_id)
        .unwrap()
        .into_iter()
        .map(|t| {
            let rec: serde_json::Value = serde_json::from_str(&t.record).unwrap();
            let gates = rec["gates"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|g| {
                    serde_json::json!({
                        "method": g["method"],
                        "passed": g["passed"],
                        "winner": g["winner"],
                        "established_winner": g["established_winner"],
                        "p_best": g["p_best"],
                    })
                })
                .collect();
            (t.name, (t.passed, gates))
        })
        .collect();
    Stored {
        measurements,
        trials,
    }
}

/// `l1 report <run>` from a directory of its own (a fourth machine), reading the run from the
/// store at `url`: (exit code, output).
fn report(url: &str, run_id: &str, dir: &Path) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l1"));
    cmd.args(["--root", common::root().to_str().unwrap(), "report", run_id])
        .env("L1_TARGET_DIR", dir)
        .env("L1_STORE", url)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("L1_METRICS_TEXTFILE")
        .env_remove("L1_PUSHGATEWAY")
        .env_remove("L1_CACHE")
        .env_remove("L1_RUN_ID");
    common::clear_runner_env(&mut cmd);
    let out = cmd.output().unwrap();
    (out.status.code().unwrap_or(-1), text(&out))
}

#[test]
fn three_partitions_sharing_one_postgres_store_agree_with_one_process() {
    let Some(admin) = postgres_admin("fleet partitions") else {
        return;
    };
    let scratch = common::RemoveOnDrop(l1_testkit::fresh_dir("fleet-partitions"));
    let dir = scratch.0.as_path();
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    std::fs::write(specs.join("fleet-sim.yaml"), SIM_SPEC).unwrap();
    let shared = fresh_database(&admin, "parts");
    let fresh = fresh_database(&admin, "single");
    let root = common::root();

    // Build once.
    let archive = dir.join("kernels.tar.zst");
    let mut cmd = Command::new(env!("CARGO"));
    common::isolate(&mut cmd, &dir.join("build-results"), "fleet-archive");
    let out = cmd
        .current_dir(&root)
        .args([
            "nextest",
            "archive",
            "-p",
            "l1-harness",
            "--test",
            "kernels",
        ])
        .args([
            "--cargo-profile",
            common::cargo_profile(),
            "--color",
            "never",
        ])
        .arg("--archive-file")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(out.status.success(), "nextest archive: {}", text(&out));

    // Three runners at once, each with its own extraction and target directory, one run id.
    let run_id = "fleet-partitioned";
    let runners: Vec<(String, Guard)> = (1..=3)
        .map(|k| {
            let runner = dir.join(format!("runner-{k}"));
            std::fs::create_dir_all(runner.join("extract")).unwrap();
            let mut cmd = Command::new(env!("CARGO"));
            common::isolate(&mut cmd, &runner.join("results"), run_id);
            cmd.current_dir(&runner)
                .args(["nextest", "run", "--color", "never", "--no-fail-fast"])
                .arg("--no-tests=pass")
                .arg("--archive-file")
                .arg(&archive)
                .arg("--extract-to")
                .arg(runner.join("extract"))
                .arg("--workspace-remap")
                .arg(&root)
                .args(["--partition", &format!("hash:{k}/3")])
                .env("L1_STORE", &shared)
                .env("L1_SPECS", &specs)
                .env("L1_ROOT", &root)
                .env("L1_FULL_SCAN_FORBIDDEN", "1")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            (
                format!("partition {k}/3"),
                Guard(Some(cmd.spawn().unwrap())),
            )
        })
        .collect();
    let mut ran = 0;
    // Per measurement key, the runners that took it themselves.
    let mut taken: BTreeMap<String, usize> = BTreeMap::new();
    for (k, (what, child)) in runners.into_iter().enumerate() {
        let out = finish(child, &what);
        let run_dir = dir.join(format!("runner-{}/results/l1/runs/{run_id}", k + 1));
        for key in taken_by(&run_dir) {
            *taken.entry(key).or_default() += 1;
        }
        let t = text(&out);
        assert!(out.status.success(), "{what}: {t}");
        // nextest's summary: `N tests run: N passed`.
        let n: usize = t
            .lines()
            .find_map(|l| {
                let (n, rest) = l
                    .trim()
                    .split_once(" tests run:")
                    .or_else(|| l.trim().split_once(" test run:"))?;
                rest.contains("passed")
                    .then(|| n.rsplit(' ').next()?.parse().ok())?
            })
            .unwrap_or(0);
        ran += n;
    }

    // The same spec in one process, into a fresh store.
    let single = dir.join("single");
    std::fs::create_dir_all(single.join("specs")).unwrap();
    std::fs::write(single.join("specs/fleet-sim.yaml"), SIM_SPEC).unwrap();
    let mut cmd = common::child_command(&single, "fleet-single");
    cmd.env("L1_STORE", &fresh);
    let trials = common::run_child(cmd, "single process");
    assert!(trials.iter().all(|(_, ok, _)| *ok), "{trials:?}");
    assert_eq!(
        ran,
        trials.len(),
        "the three partitions ran every trial exactly once"
    );

    let many = stored(&shared, run_id);
    let one = stored(&fresh, "fleet-single");
    assert_eq!(many.trials.len(), trials.len());
    assert!(
        many.trials.keys().any(|n| n.ends_with("::gate")),
        "{:?}",
        many.trials.keys()
    );
    assert!(
        many.trials
            .values()
            .flat_map(|(_, g)| g)
            .any(|g| g["winner"].is_string()),
        "the gates name winners: {many:?}"
    );
    assert_eq!(
        many.measurements, one.measurements,
        "the stored measurements"
    );
    assert_eq!(many.trials, one.trials, "the trials, verdicts and winners");

    // No measurement taken twice: counted from the store, one original measurement (no
    // `cache_from_run`) per distinct cache key of the run; counted from the runners, every key
    // taken by exactly one of them (a gate whose combos another partition measured, or was
    // measuring, takes their records from the store instead of simulating them again), as in
    // the single process.
    let mut s = Store::open(&Location::Postgres(shared.clone())).unwrap();
    let row = &s
        .query(
            "SELECT COUNT(*), COUNT(DISTINCT cache_key) FROM measurements WHERE run_id = ?1 AND cache_from_run IS NULL",
            &[run_id.into()],
        )
        .unwrap()[0];
    let (originals, distinct) = (row.int(0).unwrap() as usize, row.int(1).unwrap() as usize);
    assert_eq!((originals, distinct), (many.measurements.len(), originals));
    let measured: usize = taken.values().sum();
    eprintln!(
        "fleet partitions: {ran} trials over 3 partitions, {distinct} distinct cache keys, {measured} measurements taken across the runners"
    );
    assert_eq!(
        taken.keys().collect::<BTreeSet<_>>(),
        many.measurements.keys().collect::<BTreeSet<_>>(),
        "every stored measurement was taken by a runner"
    );
    assert_eq!(
        measured, distinct,
        "measurements taken equal the distinct cache keys: {taken:?}"
    );
    let single_taken = taken_by(&single.join("target/l1/runs/fleet-single"));
    assert_eq!(single_taken.len(), measured, "as many as one process takes");
    assert!(s.measurement_locks().unwrap().is_empty());

    // `l1 report` for each run, from a directory that holds neither: both from the store alike.
    let (code_many, out_many) = report(&shared, run_id, &dir.join("reporter-many"));
    let (code_one, out_one) = report(&fresh, "fleet-single", &dir.join("reporter-one"));
    assert_eq!(code_many, 0, "l1 report {run_id}: {out_many}");
    assert_eq!(code_one, 0, "l1 report fleet-single: {out_one}");
    let results = |reporter: &str, id: &str| -> serde_json::Value {
        let path = dir
            .join(reporter)
            .join("l1/runs")
            .join(id)
            .join("results.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    };
    let winners = |v: &serde_json::Value| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        collect_winners(v, &mut out);
        out
    };
    let (rm, ro) = (
        results("reporter-many", run_id),
        results("reporter-one", "fleet-single"),
    );
    assert!(!winners(&rm).is_empty(), "{rm}");
    assert_eq!(winners(&rm), winners(&ro), "the report's winners");
}

/// The measurement keys a runner took itself: the records in its run directory that one of its
/// own trials measured (`measured_by`). A record another runner of the run measured, which this
/// one took from the store, names that runner's trial.
fn taken_by(run_dir: &Path) -> Vec<String> {
    let own: BTreeSet<String> = json_records(run_dir, "trials")
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!own.is_empty(), "{}: no trial records", run_dir.display());
    json_records(run_dir, "measurements")
        .iter()
        .filter(|m| own.contains(m["measured_by"].as_str().unwrap()))
        .map(|m| m["key"].as_str().unwrap().to_string())
        .collect()
}

/// The JSON records under `<run_dir>/<sub>` (none when it does not exist).
fn json_records(run_dir: &Path, sub: &str) -> Vec<serde_json::Value> {
    let Ok(entries) = std::fs::read_dir(run_dir.join(sub)) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap())
        .collect()
}

/// Every `winner` string anywhere in a report.
fn collect_winners(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if k == "winner"
                    && let Some(w) = x.as_str()
                {
                    out.insert(w.to_string());
                }
                collect_winners(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_winners(x, out)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Two runners of one run, one after the other, sharing a store (SQLite, no server needed):
// whichever measures a key first, the other takes its record from the store, faults included.

const FAULT_SPEC: &str = "kind: sweep
name: fleet-faults
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [interactive-single]
space:
  dims:
    cuda_graph: [\"off\", per-shape]
  knobs:
    fault: [none, crash, errors]
measure: { reps: 7, launches: 3, warmup_reps: 1 }
gates:
  - { method: manual }
";

/// One runner: the `kernels` binary with libtest `args`, results under `<dir>/<name>`, run
/// `run_id`, the store `store` (`None`: the target directory's own), `L1_LOCK_TIMEOUT_S=lease`.
/// Its run directory and its output.
fn kernels_runner(
    bin: &Path,
    dir: &Path,
    name: &str,
    run_id: &str,
    store: Option<&Path>,
    lease: &str,
    args: &[&str],
) -> (PathBuf, String) {
    let results = dir.join(name);
    let mut cmd = Command::new(bin);
    common::isolate(&mut cmd, &results, run_id);
    cmd.args(args)
        .args(["--test-threads", "2"])
        .env("L1_SPECS", dir.join("specs"))
        .env("L1_ROOT", common::root())
        .env("L1_LOCK_TIMEOUT_S", lease);
    if let Some(store) = store {
        cmd.env("L1_STORE", store);
    }
    let out = cmd.output().unwrap();
    // Trials of faulty combos fail (exit 101); anything else is not a test run.
    assert!(
        matches!(out.status.code(), Some(0 | 101)) && text(&out).contains("test result:"),
        "{name}: {}",
        text(&out)
    );
    (results.join("l1/runs").join(run_id), text(&out))
}

/// A run directory's measurements: key → (reps, error, launches) as JSON.
fn measurement_records(run_dir: &Path) -> BTreeMap<String, serde_json::Value> {
    json_records(run_dir, "measurements")
        .into_iter()
        .map(|m| {
            let r = serde_json::json!([m["reps"], m["error"], m["launches"]]);
            (m["key"].as_str().unwrap().to_string(), r)
        })
        .collect()
}

/// A run directory's trials: name → passed.
fn trial_outcomes(run_dir: &Path) -> BTreeMap<String, bool> {
    json_records(run_dir, "trials")
        .into_iter()
        .map(|t| (t["name"].as_str().unwrap().into(), t["passed"] == true))
        .collect()
}

#[test]
fn a_run_split_over_two_runners_takes_each_measurement_once_whichever_runs_first() {
    let scratch = common::RemoveOnDrop(l1_testkit::fresh_dir("fleet-split"));
    let dir = scratch.0.as_path();
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    std::fs::write(dir.join("specs/fleet-faults.yaml"), FAULT_SPEC).unwrap();
    let bin = kernels_binary();

    // One process runs everything: the reference.
    let (single, _) = kernels_runner(&bin, dir, "single", "fleet-split-single", None, "60", &[]);
    let reference = measurement_records(&single);
    let outcomes = trial_outcomes(&single);
    assert_eq!(reference.len(), 6, "6 combos, the baseline among them");
    assert!(
        reference
            .values()
            .any(|r| r[1].as_str().is_some_and(|e| e.contains("crashed"))),
        "{reference:?}"
    );

    // Two runners of one run, each with its own target directory, one store: the combo trials
    // on one, the gate on the other, in both orders.
    let (combos, gate): (&[&str], &[&str]) = (&["--skip", "::gate"], &["::gate"]);
    for (order, one, two) in [("combos-first", combos, gate), ("gate-first", gate, combos)] {
        let run_id = format!("fleet-split-{order}");
        let store = dir.join(format!("{order}.sqlite"));
        let runner = |name: &str, args: &[&str]| {
            kernels_runner(&bin, dir, name, &run_id, Some(&store), "60", args).0
        };
        let a = runner(&format!("{order}-a"), one);
        let b = runner(&format!("{order}-b"), two);
        let taken = (taken_by(&a).len(), taken_by(&b).len());
        eprintln!("fleet split ({order}): {taken:?} measurements taken by the two runners");
        assert_eq!(
            taken,
            (reference.len(), 0),
            "{order}: the second takes none"
        );
        // Each runner's records, the ones it took from the store included, are the single
        // process's; so are the trials' outcomes (the crashed combo fails on either runner).
        for run_dir in [&a, &b] {
            assert_eq!(measurement_records(run_dir), reference, "{order}");
        }
        let mut both = trial_outcomes(&a);
        both.extend(trial_outcomes(&b));
        assert_eq!(both, outcomes, "{order}: the trials' outcomes");
        let mut s = Store::open(&Location::Sqlite(store)).unwrap();
        assert!(s.measurement_locks().unwrap().is_empty(), "{order}");
        assert_eq!(s.measurements(&run_id).unwrap().len(), reference.len());
    }

    // A runner of the run died while measuring a key (its lock of the run's key stays, never
    // renewed): the runner that needs the key waits one lease, takes the lock over and measures
    // it; nothing else changes.
    let run_id = "fleet-split-dead";
    let store = dir.join("dead.sqlite");
    let key = reference.keys().next().unwrap().clone();
    let mut s = Store::open(&Location::Sqlite(store.clone())).unwrap();
    assert_eq!(
        s.try_lock_measurement(
            &format!("run:{run_id}:{key}"),
            "elsewhere/1/x-0",
            run_id,
            Duration::from_secs(1)
        )
        .unwrap(),
        l1_store::LockState::Acquired { took_over: None }
    );
    let (run_dir, out) = kernels_runner(&bin, dir, "dead-b", run_id, Some(&store), "1", &[]);
    let took_over =
        format!("took over the measurement lock of {key} (run {run_id}) from elsewhere/1/x-0");
    assert!(out.contains(&took_over), "{out}");
    assert_eq!(taken_by(&run_dir).len(), reference.len());
    assert_eq!(measurement_records(&run_dir), reference);
    assert_eq!(trial_outcomes(&run_dir), outcomes);
    assert!(s.measurement_locks().unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Runners needing the same measurements at once, one of them killed while holding a lock.

const ENGINE_SPEC: &str = "kind: sweep
name: fleet-engine
targets:
  engines: [llamacpp@2026.10]
  models: [tiny-llama]
  hardware: [cpu]
  workloads: [cpu-smoke]
space:
  mode: exhaustive
  dims:
    attention_backend: [flash_attn_v2, native]
    kv_cache_dtype: [fp16, q8_0]
baseline: engine-default
measure: { reps: 3, startup_timeout_s: 600 }
gates:
  - { method: manual }
";

/// A runner's own scratch directory (specs, engines, target), its `llama-server` running the
/// shell `lines` first.
fn runner_dir(parent: &Path, name: &str, lines: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    std::fs::write(dir.join("specs/fleet-engine.yaml"), ENGINE_SPEC).unwrap();
    std::fs::create_dir_all(dir.join("engines/models")).unwrap();
    std::fs::write(dir.join("engines/models/tiny-llama.gguf"), b"weights v1").unwrap();
    common::fake_llama_server(
        &dir.join("engines"),
        &format!("export L1_FIXTURE_VERSION=2026.10.7\n{lines}"),
    );
    dir
}

fn runner(dir: &Path, run_id: &str, store: &str, lease_s: &str) -> Command {
    let mut cmd = common::child_command(dir, run_id);
    cmd.env("L1_STORE", store)
        .env("L1_LOCK_TIMEOUT_S", lease_s)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn runners_needing_the_same_keys_measure_each_once_even_when_one_dies_holding_a_lock() {
    let Some(admin) = postgres_admin("fleet lock") else {
        return;
    };
    let scratch = common::RemoveOnDrop(l1_testkit::fresh_dir("fleet-lock"));
    let dir = scratch.0.as_path();
    let url = fresh_database(&admin, "lock");
    let loc = Location::Postgres(url.clone());
    let lease = "5";

    // The doomed runner: its engine never becomes ready, so it holds its first key's lock
    // (heartbeating) until it is killed.
    let doomed = runner_dir(dir, "doomed", "export L1_FIXTURE_NEVER_READY=1\n");
    let mut x = Guard(Some(
        runner(&doomed, "fleet-doomed", &url, lease)
            .spawn()
            .unwrap(),
    ));
    let mut s = Store::open(&loc).unwrap();
    let t0 = Instant::now();
    let locked = loop {
        let rows = s.measurement_locks().unwrap();
        // Its cache key's lock (it takes its run's lock of the measurement first).
        if let Some(r) = rows
            .into_iter()
            .find(|r| r.run_id == "fleet-doomed" && !r.cache_key.starts_with("run:"))
        {
            break r;
        }
        if let Some(status) = x.child().try_wait().unwrap() {
            let out = x.take().wait_with_output().unwrap();
            panic!(
                "the doomed runner exited ({status}) before taking a lock: {}",
                text(&out)
            );
        }
        assert!(
            t0.elapsed() < DEADLINE,
            "the doomed runner never took a measurement lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // SIGKILL: no release, no more heartbeats; then its engine, which nobody will stop now.
    kill_tree(x.child());
    let doomed_locks = s.measurement_locks().unwrap();
    assert_eq!(
        doomed_locks
            .iter()
            .map(|r| (
                r.run_id.as_str(),
                r.cache_key.starts_with("run:fleet-doomed:")
            ))
            .collect::<Vec<_>>(),
        [("fleet-doomed", false), ("fleet-doomed", true)],
        "the dead runner's locks (its cache key's and its run's) stay until their lease runs out: {doomed_locks:?}"
    );

    // Three runners needing every key of the same spec at once.
    let ids = ["fleet-a", "fleet-b", "fleet-c"];
    let children: Vec<(String, Guard)> = ids
        .iter()
        .map(|id| {
            let d = runner_dir(dir, id, "");
            let child = runner(&d, id, &url, lease).spawn().unwrap();
            (id.to_string(), Guard(Some(child)))
        })
        .collect();
    for (id, child) in children {
        let out = finish(child, id.as_str());
        assert!(out.status.success(), "{id}: {}", text(&out));
        let trials = l1_testkit::parse_trials(&String::from_utf8_lossy(&out.stdout));
        assert!(!trials.is_empty(), "{id}: {}", text(&out));
        assert!(trials.iter().all(|(_, ok, _)| *ok), "{id}: {trials:?}");
    }

    // Counted from the store: per cache key, the measurements taken (no `cache_from_run`) and
    // the records of it (one per runner).
    let rows = s
        .query(
            "SELECT cache_key, run_id, cache_from_run IS NULL AND error IS NULL FROM measurements WHERE run_id IN ('fleet-a', 'fleet-b', 'fleet-c', 'fleet-doomed') AND cache_key IS NOT NULL",
            &[],
        )
        .unwrap();
    let mut taken: BTreeMap<String, usize> = BTreeMap::new();
    let mut records: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &rows {
        let key = r.text(0).unwrap();
        *taken.entry(key.clone()).or_default() += usize::from(r.flag(2).unwrap());
        records.entry(key).or_default().insert(r.text(1).unwrap());
    }
    let distinct = records.len();
    let measured: usize = taken.values().sum();
    eprintln!(
        "fleet lock: {} measurement rows, {measured} measurements taken, {distinct} distinct cache keys",
        rows.len()
    );
    assert!(distinct >= 2, "{records:?}");
    assert_eq!(
        measured, distinct,
        "measurements taken equal the distinct cache keys: {taken:?}"
    );
    assert!(taken.values().all(|n| *n == 1), "{taken:?}");
    for (key, runs) in &records {
        assert_eq!(
            runs.len(),
            3,
            "{key}: every live runner recorded it (measured or from the cache): {runs:?}"
        );
        assert!(
            !runs.contains("fleet-doomed"),
            "the killed runner stored nothing"
        );
    }
    assert_eq!(
        taken.get(&locked.cache_key),
        Some(&1),
        "the key the killed runner held was measured once, by a survivor"
    );
    // No lock is left behind but the dead runner's lock of its own run's measurement, expired:
    // nobody else of that run needed it.
    let left = s.measurement_locks().unwrap();
    assert!(
        left.iter()
            .all(|r| r.cache_key.starts_with("run:fleet-doomed:") && r.expires_in_s < 0.0),
        "{left:?}"
    );

    // `L1_CACHE=write` and `read` take no lock: with every key locked by a live-looking holder
    // for an hour, a `write` runner measures every key again and a `read` runner takes every key
    // from the cache, neither waiting (a wait would last the hour and trip the deadline).
    for key in records.keys() {
        assert_eq!(
            s.try_lock_measurement(
                key,
                "elsewhere/1/x-0",
                "fleet-other",
                Duration::from_secs(3600)
            )
            .unwrap(),
            l1_store::LockState::Acquired { took_over: None }
        );
    }
    for (mode, measured) in [("write", distinct), ("read", 0)] {
        let id = format!("fleet-{mode}");
        let d = runner_dir(dir, &id, "");
        let child = runner(&d, &id, &url, lease)
            .env("L1_CACHE", mode)
            .spawn()
            .unwrap();
        let out = finish(Guard(Some(child)), &id);
        assert!(out.status.success(), "{id}: {}", text(&out));
        let trials = l1_testkit::parse_trials(&String::from_utf8_lossy(&out.stdout));
        assert!(trials.iter().all(|(_, ok, _)| *ok), "{id}: {trials:?}");
        let n = s
            .query(
                "SELECT COUNT(*) FROM measurements WHERE run_id = ?1 AND cache_from_run IS NULL",
                &[id.as_str().into()],
            )
            .unwrap()[0]
            .int(0)
            .unwrap();
        assert_eq!(n as usize, measured, "L1_CACHE={mode}");
    }
    assert_eq!(
        s.measurement_locks()
            .unwrap()
            .iter()
            .filter(|r| r.run_id == "fleet-other")
            .count(),
        distinct
    );
}

#[test]
fn a_bad_lock_timeout_fails_the_trials_with_the_accepted_form() {
    let scratch = common::RemoveOnDrop(l1_testkit::fresh_dir("fleet-badlease"));
    let dir = scratch.0.as_path();
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    std::fs::write(dir.join("specs/fleet-sim.yaml"), SIM_SPEC).unwrap();
    let mut cmd = common::child_command(dir, "fleet-badlease");
    cmd.env("L1_LOCK_TIMEOUT_S", "soon");
    let trials = common::run_child(cmd, "bad L1_LOCK_TIMEOUT_S");
    assert!(!trials.is_empty());
    for (name, ok, message) in &trials {
        assert!(
            !ok && message.contains("L1_LOCK_TIMEOUT_S=`soon`")
                && message.contains("a positive number of seconds"),
            "{name}: {message}"
        );
    }
}
