//! `l1 ab` end to end: the real `kernels` binary measured in rounds against two scratch
//! repository roots (copies of the repository's catalogs with a small spec), as a runner would
//! measure main's checkout and a pull request's.
//!
//! - On the seeded sim engine: a head root whose H100 profile has 10 % less memory bandwidth
//!   (the sim's decode is bandwidth-bound, so its throughput drops by about that; the exact
//!   injected ratio is the sim's noiseless prediction, `l1 preview --combos`) is found, and its
//!   ratio interval covers the injected ratio; the A100 target it does not touch passes;
//!   identical roots pass.
//! - The case the mode exists for, on the real-engine path (`l1-fixture-server` as
//!   `llama-server`, whose speed the runner's environment sets, as a runner's hardware would):
//!   main's results stored from a fast runner, the unchanged pull request measured on a slower
//!   runner. `regression against: stored` fails it; `l1 ab` on that runner passes it.
//! - Bad input: a missing binary, an empty selection, an unknown trial, a head whose engine
//!   crashes, a head whose catalog does not load: clear errors and non-zero exits.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::kernels_binary;
use l1_harness::record::RunDir;
use serde_json::Value;

/// Two targets: the H100 one has two combos (and the baseline), the A100 one only the baseline
/// combo (FlashAttention-3 needs Hopper).
const SIM_SPEC: &str = "kind: sweep
name: ab
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm, a100-80gb]
  workloads: [chat-short]
space:
  mode: exhaustive
  dims:
    attention_backend: [flash_attn_v2, flash_attn_v3]
baseline: engine-default
measure: { reps: 5, trim: 0.10 }
gates:
  - { method: manual }
";

const H100_GATE: &str = "sim::ab::sim@1.0::llama-3.1-8b::h100-sxm::chat-short::gate";
const A100_GATE: &str = "sim::ab::sim@1.0::llama-3.1-8b::a100-80gb::chat-short::gate";

/// A repository root under `parent`: the repository's catalogs, `spec` as `specs/<name>.yaml`.
fn scratch_root(parent: &Path, dir: &str, spec_name: &str, spec: &str) -> PathBuf {
    let root = parent.join(dir);
    let cats = root.join("catalogs");
    copy_dir(&common::root().join("catalogs"), &cats);
    std::fs::create_dir_all(root.join("specs")).unwrap();
    std::fs::write(root.join(format!("specs/{spec_name}.yaml")), spec).unwrap();
    root
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// The H100 profile of `root` with `gbps` of memory bandwidth instead of 3350.
fn set_h100_bandwidth(root: &Path, gbps: u32) {
    let path = root.join("catalogs/hardware.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let old = "memory_bandwidth_gbps: 3350";
    assert_eq!(
        text.matches(old).count(),
        1,
        "the H100 profile's bandwidth line"
    );
    std::fs::write(
        &path,
        text.replace(old, &format!("memory_bandwidth_gbps: {gbps}")),
    )
    .unwrap();
}

/// `l1 [--json] ab <args>` with `env`: (exit code, stdout, stderr).
fn l1_ab(json: bool, args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
    let mut all = vec!["ab"];
    all.extend_from_slice(args);
    l1(json, &all, env)
}

/// `l1 [--json] <args>` with `env`: (exit code, stdout, stderr). The user's store, cache and
/// runner settings are removed, so a leak into them would show.
fn l1(json: bool, args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l1"));
    if json {
        cmd.arg("--json");
    }
    cmd.args(args);
    for k in [
        "L1_STORE",
        "L1_CACHE",
        "L1_TARGET_DIR",
        "L1_RUN_ID",
        "L1_RUN_LABEL",
        "L1_ROOT",
    ] {
        cmd.env_remove(k);
    }
    common::clear_runner_env(&mut cmd);
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

/// The sides' arguments: one binary, two roots.
fn sides(bin: &Path, base: &Path, head: &Path) -> Vec<String> {
    [
        "--base-bin",
        bin.to_str().unwrap(),
        "--base-root",
        base.to_str().unwrap(),
        "--head-bin",
        bin.to_str().unwrap(),
        "--head-root",
        head.to_str().unwrap(),
    ]
    .map(str::to_string)
    .to_vec()
}

fn run_ab(args: &[String], env: &[(&str, &Path)]) -> (i32, Value, String) {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = l1_ab(true, &args, env);
    let v = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}\n{err}"));
    (code, v, err)
}

/// The sim's noiseless throughput of each combo of `root`'s spec `spec`, keyed by
/// `<target>::<combo>`.
fn predicted(root: &Path, spec: &str) -> BTreeMap<String, f64> {
    let spec = root.join(format!("specs/{spec}.yaml"));
    let args = [
        "--root",
        root.to_str().unwrap(),
        "preview",
        spec.to_str().unwrap(),
        "--combos",
    ];
    let (code, out, err) = l1(true, &args, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut out = BTreeMap::new();
    for t in v.as_array().unwrap() {
        for c in t["combos"].as_array().unwrap() {
            out.insert(
                format!(
                    "{}::{}",
                    t["target"].as_str().unwrap(),
                    c["combo"].as_str().unwrap()
                ),
                c["predicted_output_tokens_per_s"].as_f64().unwrap(),
            );
        }
    }
    out
}

/// The `metric` verdict of trial `trial` in an outcome.
fn metric<'a>(outcome: &'a Value, trial: &str, metric: &str) -> &'a Value {
    let t = (outcome["trials"].as_array().unwrap().iter())
        .find(|t| t["trial"] == trial)
        .unwrap_or_else(|| panic!("{trial} not compared: {outcome:#}"));
    (t["metrics"].as_array().unwrap().iter())
        .find(|m| m["metric"] == metric)
        .unwrap()
}

fn pair(v: &Value) -> (f64, f64) {
    (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
}

#[test]
fn an_injected_throughput_regression_is_found_and_identical_roots_pass() {
    let dir = common::results_dir("ab-sim");
    let bin = kernels_binary();
    let base = scratch_root(&dir.0, "base", "ab", SIM_SPEC);
    let head = scratch_root(&dir.0, "head", "ab", SIM_SPEC);
    set_h100_bandwidth(&head, 3015); // −10 %
    let selection = dir.0.join("trials.txt");
    std::fs::write(&selection, format!("{H100_GATE}\n{A100_GATE}\n")).unwrap();
    let sel = [
        "--trials".to_string(),
        selection.to_str().unwrap().to_string(),
    ];
    // The injected ratio: the sim's noiseless prediction on each root.
    let (pb, ph) = (predicted(&base, "ab"), predicted(&head, "ab"));
    let injected: BTreeMap<&String, f64> = pb.iter().map(|(k, b)| (k, ph[k] / b)).collect();
    for (k, r) in &injected {
        if k.contains("h100") {
            assert!((0.88..0.93).contains(r), "about −10 %: {k} {r}");
        } else {
            assert_eq!(*r, 1.0, "the A100 profile is untouched: {k}");
        }
    }

    // Independent seeds: every round's ratio carries both sides' noise.
    let mut args = sides(&bin, &base, &head);
    args.extend(sel.clone());
    args.extend(["--seeds", "independent", "--work-dir"].map(str::to_string));
    args.push(dir.0.join("work-independent").to_str().unwrap().to_string());
    let (code, o, err) = run_ab(&args, &[]);
    assert_eq!(code, 1, "a regression exits 1: {o:#}\n{err}");
    assert_eq!(o["verdict"], "failed");
    assert_eq!(
        o["form"], "non_inferiority",
        "the pull-request recipe's form"
    );
    // Three combos; each baseline is its target's flash_attn_v2 combo, compared once.
    assert_eq!(o["trials"].as_array().unwrap().len(), 3, "{o:#}");
    let twins = o["skipped"].as_array().unwrap();
    assert_eq!(twins.len(), 2, "{o:#}");
    assert!(
        twins
            .iter()
            .all(|t| t[0].as_str().unwrap().ends_with("::baseline")
                && t[1].as_str().unwrap().contains("the same measurement as")),
        "{o:#}"
    );
    for t in o["trials"].as_array().unwrap() {
        let name = t["trial"].as_str().unwrap();
        let h100 = name.contains("::h100-sxm::");
        assert_eq!(t["passed"].as_bool().unwrap(), !h100, "{name}: {t:#}");
        let tp = metric(&o, name, "output_tokens_per_s");
        let (lo, hi) = pair(&tp["ratio_ci"]);
        let combo = name.rsplit("::").next().unwrap();
        let target = name
            .split("::")
            .skip(2)
            .take(4)
            .collect::<Vec<_>>()
            .join("::");
        let truth = injected[&format!("{target}::{combo}")];
        assert!(
            lo < truth && truth < hi,
            "{name}: [{lo}, {hi}] covers {truth}"
        );
        assert!(hi - lo < 0.05, "a usable interval: [{lo}, {hi}]");
    }
    // The progress lines on stderr say the order of each round (ABBA).
    assert!(
        err.contains("round 1/6 (base first)") && err.contains("round 2/6 (head first)"),
        "{err}"
    );
    // Every round's runs went into the work directory, none into the repository's.
    // Run ids are `ab-<time>-<pid>-r<round>-<side>`: unique per invocation.
    let mut ids = Vec::new();
    for side in ["base", "head"] {
        let runs = dir.0.join(format!("work-independent/r0-{side}/l1/runs"));
        let found: Vec<String> = std::fs::read_dir(&runs)
            .unwrap_or_else(|e| panic!("{}: {e}", runs.display()))
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("ab-") && n.ends_with(&format!("-r0-{side}")))
            .collect();
        assert_eq!(found.len(), 1, "{found:?} in {}", runs.display());
        ids.extend(found);
    }
    common::assert_isolated(&ids.iter().map(String::as_str).collect::<Vec<_>>());

    // Paired seeds: both sides draw the same noise, so the ratio is the injected one.
    let mut args = sides(&bin, &base, &head);
    args.extend(sel.clone());
    args.extend(["--rounds", "3", "--metrics", "output_tokens_per_s"].map(str::to_string));
    let (code, o, _) = run_ab(&args, &[]);
    assert_eq!(code, 1, "{o:#}");
    let name = format!(
        "{}::act=bf16,attn=flash_attn_v2,fuse=conservative,graph=per-shape,kv=paged,kvdt=auto,mm=cublas",
        H100_GATE.strip_suffix("::gate").unwrap()
    );
    let tp = metric(&o, &name, "output_tokens_per_s");
    let truth = injected[&format!(
        "sim@1.0::llama-3.1-8b::h100-sxm::chat-short::{}",
        "act=bf16,attn=flash_attn_v2,fuse=conservative,graph=per-shape,kv=paged,kvdt=auto,mm=cublas"
    )];
    let r = tp["ratio"].as_f64().unwrap();
    assert!(
        (r / truth - 1.0).abs() < 0.005,
        "paired: {r} vs the injected {truth}"
    );
    let seeds = o["seeds"].as_array().unwrap();
    assert!(
        seeds.iter().all(|s| s[0] == s[1]),
        "paired seeds: {seeds:?}"
    );
    assert_ne!(seeds[0], seeds[1], "each round its own seed");

    // Identical roots pass, in both forms and both seedings.
    let same = scratch_root(&dir.0, "same", "ab", SIM_SPEC);
    for extra in [
        &["--seeds", "independent"][..],
        &["--seeds", "paired"],
        &["--seeds", "independent", "--form", "fail_on_regression"],
    ] {
        let mut args = sides(&bin, &base, &same);
        args.extend(sel.clone());
        args.extend(extra.iter().map(|s| s.to_string()));
        let (code, o, err) = run_ab(&args, &[]);
        assert_eq!(code, 0, "{extra:?}: {o:#}\n{err}");
        assert_eq!(o["verdict"], "passed");
        assert!(o["failed"].as_array().unwrap().is_empty());
    }

    // The Markdown verdict names the regression with its interval.
    let md = dir.0.join("ab.md");
    let mut args = sides(&bin, &base, &head);
    args.extend(sel);
    args.extend(["--rounds", "2", "--markdown", md.to_str().unwrap()].map(str::to_string));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, _) = l1_ab(false, &args, &[]);
    assert_eq!(code, 1);
    assert!(out.contains("l1 ab FAILED"), "{out}");
    let md = std::fs::read_to_string(md).unwrap();
    assert!(
        md.contains("### Regressions") && md.contains("**output_tokens_per_s**: -9."),
        "{md}"
    );
}

/// The real-engine spec of the stored recipe: each combo against main's stored measurement, in
/// the pull-request recipe's form, with an ε wide enough for a shared CPU runner's timing.
const FIXTURE_SPEC: &str = "kind: sweep
name: abfix
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
measure: { reps: 3, startup_timeout_s: 20 }
gates:
  - { method: regression, against: stored, label: main, form: non_inferiority, epsilon: 0.25, metrics: [output_tokens_per_s] }
";

const FIXTURE_GATE: &str = "cpu::abfix::llamacpp@2026.10::tiny-llama::cpu::cpu-smoke::gate";

/// An engines directory whose `llama-server` is the fixture server with `lines` (its timing:
/// a runner's speed).
fn engines(parent: &Path, name: &str, lines: &str) -> PathBuf {
    let dir = parent.join(name);
    common::fake_llama_server(
        &dir,
        &format!("export L1_FIXTURE_VERSION=2026.10.7\n{lines}"),
    );
    dir
}

/// Every trial of `root` with the `kernels` binary as run `run_id`, results in `target`.
fn kernels_run(bin: &Path, root: &Path, target: &Path, run_id: &str, env: &[(&str, &Path)]) {
    let mut cmd = Command::new(bin);
    common::isolate(&mut cmd, target, run_id);
    cmd.env("L1_ROOT", root)
        .env_remove("L1_SPECS")
        .env("L1_PROGRESS", "0")
        .args(["--test-threads", "1"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let _ = cmd.output().unwrap();
}

#[test]
fn a_slower_runner_fails_the_stored_comparison_falsely_and_passes_interleaved() {
    let dir = common::results_dir("ab-runner");
    let bin = kernels_binary();
    let root = scratch_root(&dir.0, "root", "abfix", FIXTURE_SPEC);
    let fast = engines(&dir.0, "fast-runner", "");
    // The slower runner: every token takes 4 ms instead of 1 (its GPU, clocks or neighbours).
    let slow = engines(&dir.0, "slow-runner", "export L1_FIXTURE_ITL_MS=4\n");
    let store = dir.0.join("shared-store.sqlite");

    // Main's nightly on the fast runner records the reference.
    let main_target = dir.0.join("main");
    kernels_run(
        &bin,
        &root,
        &main_target,
        "main-1",
        &[
            ("L1_ENGINES_DIR", fast.as_path()),
            ("L1_STORE", store.as_path()),
            ("L1_RUN_LABEL", Path::new("main")),
        ],
    );
    // The pull request changes nothing, but runs on the slower runner: stored mode fails it.
    let pr_target = dir.0.join("pr");
    kernels_run(
        &bin,
        &root,
        &pr_target,
        "pr-1",
        &[
            ("L1_ENGINES_DIR", slow.as_path()),
            ("L1_STORE", store.as_path()),
            ("L1_CACHE", Path::new("write")),
        ],
    );
    let (trials, bad) = RunDir::new(&pr_target, "pr-1").trials();
    assert!(bad.is_empty(), "{bad:?}");
    let gate = trials.iter().find(|t| t.name == FIXTURE_GATE).unwrap();
    assert!(
        !gate.passed,
        "stored mode blames the pull request for the runner: {}",
        gate.message
    );
    assert!(
        gate.message.contains("not shown within ε") && gate.message.contains("vs run main-1"),
        "{}",
        gate.message
    );

    // Interleaved on the slower runner: main's checkout and the pull request's (the same) pass.
    let head = scratch_root(&dir.0, "head", "abfix", FIXTURE_SPEC);
    let mut args = sides(&bin, &root, &head);
    args.extend(
        [
            "--trial",
            FIXTURE_GATE,
            "--rounds",
            "4",
            "--epsilon",
            "0.25",
            "--metrics",
            "output_tokens_per_s",
        ]
        .map(str::to_string),
    );
    let (code, o, err) = run_ab(&args, &[("L1_ENGINES_DIR", slow.as_path())]);
    assert_eq!(code, 0, "{o:#}\n{err}");
    assert_eq!(
        o["trials"].as_array().unwrap().len(),
        2,
        "two combos (the baseline is one of them): {o:#}"
    );
    for t in o["trials"].as_array().unwrap() {
        assert_eq!(t["passed"], true, "{t:#}");
        assert_eq!(t["metrics"][0]["rounds"].as_array().unwrap().len(), 4);
    }

    // A head whose engine crashes (the fixture exits after 5 requests): a failure, exit 1.
    let crash = dir.0.join("crashing-kernels");
    l1_testkit::write_executable(
        &crash,
        &format!(
            "#!/bin/sh\nexport L1_FIXTURE_EXIT_AFTER=5\nexec '{}' \"$@\"\n",
            bin.display()
        ),
    );
    let mut args = sides(&bin, &root, &head);
    args[5] = crash.to_str().unwrap().to_string();
    args.extend(["--trial", FIXTURE_GATE, "--rounds", "2"].map(str::to_string));
    let (code, o, err) = run_ab(&args, &[("L1_ENGINES_DIR", slow.as_path())]);
    assert_eq!(code, 1, "{o:#}\n{err}");
    assert_eq!(o["verdict"], "failed");
    let failed = o["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 3, "{o:#}");
    assert!(failed.iter().all(|f| f["side"] == "head"), "{o:#}");
    assert!(
        o["trials"].as_array().unwrap().is_empty(),
        "never passed: {o:#}"
    );
    // The same crash on the base side: the comparison cannot be made, exit 2.
    let mut args = sides(&bin, &root, &head);
    args[1] = crash.to_str().unwrap().to_string();
    args.extend(["--trial", FIXTURE_GATE, "--rounds", "2"].map(str::to_string));
    let (code, o, err) = run_ab(&args, &[("L1_ENGINES_DIR", slow.as_path())]);
    assert_eq!(code, 2, "{o:#}\n{err}");
    assert_eq!(o["verdict"], "error");
    assert!(
        (o["errors"].as_array().unwrap().iter())
            .all(|e| e["side"] == "base" && e["why"].as_str().unwrap().starts_with("failed: ")),
        "{o:#}"
    );
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let dir = common::results_dir("ab-bad");
    let bin = kernels_binary();
    let base = scratch_root(&dir.0, "base", "ab", SIM_SPEC);
    let text = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        l1_ab(false, &args, &[])
    };
    // A missing binary.
    let mut args = sides(&dir.0.join("no-such-kernels"), &base, &base);
    args.extend(["--trial", H100_GATE].map(str::to_string));
    let (code, _, err) = text(args);
    assert_eq!(code, 2);
    assert!(
        err.contains("the base binary")
            && err.contains("no-such-kernels")
            && err.contains("cannot be read"),
        "{err}"
    );
    // A root that is not a repository.
    let mut args = sides(&bin, &base, &dir.0);
    args.extend(["--trial", H100_GATE].map(str::to_string));
    let (code, _, err) = text(args);
    assert_eq!(code, 2);
    assert!(
        err.contains("the head root") && err.contains("no catalogs/kernels.yaml"),
        "{err}"
    );
    // An empty selection.
    let empty = dir.0.join("empty.txt");
    std::fs::write(&empty, "# nothing affected\n\n").unwrap();
    let mut args = sides(&bin, &base, &base);
    args.extend(["--trials".to_string(), empty.to_str().unwrap().to_string()]);
    let (code, _, err) = text(args);
    assert_eq!(code, 2);
    assert!(err.contains("no trials selected"), "{err}");
    // One round is no test.
    let mut args = sides(&bin, &base, &base);
    args.extend(["--trial", H100_GATE, "--rounds", "1"].map(str::to_string));
    let (code, _, err) = text(args);
    assert_eq!(code, 2);
    assert!(err.contains("at least 2 rounds"), "{err}");
    // A trial neither side has: not comparable, exit 2, and the rest is still compared.
    let mut args = sides(&bin, &base, &base);
    args.extend(
        [
            "--trial",
            A100_GATE,
            "--trial",
            "sim::ab::nope",
            "--rounds",
            "2",
        ]
        .map(str::to_string),
    );
    let (code, o, _) = run_ab(&args, &[]);
    assert_eq!(code, 2, "{o:#}");
    assert_eq!(o["unknown"][0], "sim::ab::nope");
    assert_eq!(o["trials"].as_array().unwrap().len(), 1, "{o:#}");
    // A head whose catalog does not load: its trials cannot be planned, which fails the head.
    let broken = scratch_root(&dir.0, "broken", "ab", SIM_SPEC);
    let kernels = broken.join("catalogs/kernels.yaml");
    let t = std::fs::read_to_string(&kernels).unwrap();
    std::fs::write(&kernels, t.replacen("default: none", "default: crash", 1)).unwrap();
    let mut args = sides(&bin, &base, &broken);
    args.extend(["--trial", A100_GATE, "--rounds", "2"].map(str::to_string));
    let (code, o, _) = run_ab(&args, &[]);
    assert_eq!(code, 1, "{o:#}");
    assert_eq!(o["failed"][0]["trial"], "invalid::catalogs", "{o:#}");
    assert_eq!(o["failed"][0]["side"], "head");
    assert_eq!(o["removed"].as_array().unwrap().len(), 2, "{o:#}");
}
