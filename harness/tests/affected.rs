//! `l1 affected` on a fixture git repository: for each kind of change, its selection equals the
//! ground truth got by brute force, independently of `l1 affected`'s own expansion: the
//! `kernels` target's `--list` at both revisions (the names), and each trial's content read
//! from the raw YAML files of that revision (its spec's `measure` and judging settings, its
//! model, hardware and workload entries, its engine's translator source, its baseline combo
//! computed from the catalog's defaults), compared name by name. Recall and precision must both
//! be 100 %, removed trials must match, and every affected target must carry the right reason.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

/// The `kernels` test binary, built (or found up to date) by cargo.
fn kernels_binary() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(common::root())
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
        .arg(common::cargo_profile());
    common::clear_runner_env(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "building the kernels target: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "kernels")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the kernels executable")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=l1 test",
            "-c",
            "user.email=l1@example.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn commit(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(
        text.contains(from),
        "{} does not contain {from:?}",
        path.display()
    );
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

/// Edit `catalogs/kernels.yaml`, bump its version and record the snapshot (as the catalog's
/// rules require of any change).
fn edit_catalog(dir: &Path, from: &str, to: &str) {
    let path = dir.join("catalogs/kernels.yaml");
    edit(&path, from, to);
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("version: "))
        .unwrap()
        .to_string();
    let n: u32 = line["version: ".len()..].trim().parse().unwrap();
    std::fs::write(
        &path,
        text.replacen(&line, &format!("version: {}", n + 1), 1),
    )
    .unwrap();
    let (code, out, err) = l1(dir, &["catalog", "snapshot"]);
    assert_eq!(code, 0, "l1 catalog snapshot: {out}{err}");
}

fn l1(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l1"));
    cmd.arg("--root")
        .arg(dir)
        .args(args)
        .env("L1_DETECTED_HARDWARE", "cpu")
        .env_remove("L1_ROOT")
        .env_remove("L1_SPECS");
    common::clear_runner_env(&mut cmd);
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What `cargo nextest list -E FILTERSET` lists of the fixture's `kernels` trials.
fn nextest_list(fx: &Fixture, filterset: &str) -> BTreeSet<String> {
    let d = fx.path();
    let mut cmd = Command::new(env!("CARGO"));
    common::isolate(&mut cmd, &fx.results.0, "affected-nextest");
    let out = cmd
        .current_dir(common::root())
        .args(["nextest", "list", "-p", "l1-harness", "--test", "kernels"])
        .args([
            "--cargo-profile",
            common::cargo_profile(),
            "--color",
            "never",
        ])
        .args(["-E", filterset])
        .env("L1_ROOT", d)
        .env("L1_SPECS", d.join("specs"))
        .env("L1_DETECTED_HARDWARE", "cpu")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo nextest list -E '{filterset}': {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().split_once(' ').map(|(_, n)| n.trim().to_string()))
        .filter(|n| n.contains("::"))
        .collect()
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_saphyr::from_str::<Value>(&text).unwrap()
}

/// One revision as the ground truth sees it: the names the `kernels` target lists, and each
/// trial's content from the raw files.
struct Truth {
    contents: BTreeMap<String, String>,
}

impl Truth {
    fn of(dir: &Path, kernels: &Path, results: &Path) -> Self {
        let mut cmd = Command::new(kernels);
        common::isolate(&mut cmd, results, "affected-truth");
        let out = cmd
            .arg("--list")
            .env("L1_ROOT", dir)
            .env("L1_SPECS", dir.join("specs"))
            .env("L1_DETECTED_HARDWARE", "cpu")
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        let names: BTreeSet<String> = listing
            .lines()
            .filter_map(|l| l.strip_suffix(": test"))
            .map(str::to_string)
            .collect();
        assert!(
            !names.is_empty(),
            "the fixture lists trials: {listing}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut specs = BTreeMap::new();
        let mut stack = vec![dir.join("specs")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "yaml") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    if let Ok(doc) = serde_saphyr::from_str::<Value>(&text) {
                        specs.insert(doc["name"].as_str().unwrap_or("").to_string(), doc);
                    }
                }
            }
        }
        let cat = |f: &str| yaml(&dir.join("catalogs").join(f));
        let (kernels_cat, models, hardware, workloads) = (
            cat("kernels.yaml"),
            cat("models.yaml"),
            cat("hardware.yaml"),
            cat("workloads.yaml"),
        );
        let mut contents = BTreeMap::new();
        // Combo and baseline trials first: a gate's content is made of theirs.
        let mut gates = Vec::new();
        for name in &names {
            // A spec that does not load is one failing trial; its content is its name.
            if name.starts_with("invalid::") {
                contents.insert(name.clone(), name.clone());
                continue;
            }
            let parts: Vec<&str> = name.split("::").collect();
            assert_eq!(parts.len(), 7, "{name}");
            let (spec, target, leaf) = (&specs[parts[1]], parts[2], parts[6]);
            let (engine, _) = target.split_once('@').unwrap();
            if leaf == "gate" {
                gates.push(name.clone());
                continue;
            }
            let source = std::fs::read_to_string(dir.join(format!("engines/src/{engine}.rs")))
                .unwrap_or_default();
            let mut c = json!({
                "name": name,
                "measure": spec["measure"],
                "model": models["models"][parts[3]],
                "hardware": hardware["hardware"][parts[4]],
                "workload": workloads["workloads"][parts[5]],
                "translator": source,
            });
            if leaf == "baseline" {
                c["baseline"] = baseline(&kernels_cat, engine, spec);
            }
            contents.insert(name.clone(), c.to_string());
        }
        for name in gates {
            let prefix = name.strip_suffix("gate").unwrap();
            let parts: Vec<&str> = name.split("::").collect();
            let mut settings = specs[parts[1]].clone();
            for k in ["name", "description", "targets", "space"] {
                settings.as_object_mut().unwrap().remove(k);
            }
            let members: Vec<&String> = contents
                .iter()
                .filter(|(n, _)| n.starts_with(prefix))
                .map(|(_, c)| c)
                .collect();
            let c = json!({ "name": name, "settings": settings, "members": members });
            contents.insert(name, c.to_string());
        }
        Self { contents }
    }
}

/// The baseline combo from the raw catalog: the engine's defaults for the dimensions it
/// exposes (overridden by the spec's `baseline: { combo }`), `unset` for the rest, and the
/// defaults of the knobs the spec's space names.
fn baseline(kernels: &Value, engine: &str, spec: &Value) -> Value {
    let entry = &kernels["engines"][engine];
    let named = &spec["baseline"]["combo"];
    let mut dims = serde_json::Map::new();
    for dim in kernels["dimensions"].as_object().unwrap().keys() {
        let v = if entry["exposes"].get(dim).is_some() {
            named
                .get(dim)
                .cloned()
                .unwrap_or_else(|| entry["defaults"][dim].clone())
        } else {
            json!("unset")
        };
        dims.insert(dim.clone(), v);
    }
    let mut knobs = serde_json::Map::new();
    if let Some(k) = spec["space"]["knobs"].as_object() {
        for knob in k.keys() {
            if let Some(d) = entry["knobs"].get(knob) {
                knobs.insert(knob.clone(), d["default"].clone());
            }
        }
    }
    json!({ "dims": dims, "knobs": knobs })
}

struct Fixture {
    dir: common::RemoveOnDrop,
    results: common::RemoveOnDrop,
    kernels: PathBuf,
}

impl Fixture {
    fn path(&self) -> &Path {
        &self.dir.0
    }

    fn new() -> Self {
        let dir = common::RemoveOnDrop(l1_testkit::fresh_dir("affected-fixture"));
        let root = common::root();
        let d = dir.0.as_path();
        copy_dir(&root.join("catalogs"), &d.join("catalogs"));
        std::fs::create_dir_all(d.join("specs/sim")).unwrap();
        std::fs::create_dir_all(d.join("specs/cpu")).unwrap();
        std::fs::write(d.join("specs/sim/fx-llama.yaml"), FX_LLAMA).unwrap();
        let mistral = std::fs::read_to_string(root.join("specs/sim/sim-mistral-l40s-gates.yaml"))
            .unwrap()
            .replace("name: sim-mistral-l40s-gates", "name: fx-mistral");
        std::fs::write(d.join("specs/sim/fx-mistral.yaml"), mistral).unwrap();
        let vllm = std::fs::read_to_string(root.join("specs/cpu/vllm-tiny-cpu.yaml"))
            .unwrap()
            .replace("name: vllm-tiny-cpu", "name: fx-vllm-cpu");
        std::fs::write(d.join("specs/cpu/fx-vllm-cpu.yaml"), vllm).unwrap();
        for (path, text) in [
            ("engines/src/vllm.rs", "//! vLLM's translator (fixture)\n"),
            ("engines/src/sim.rs", "//! The sim engine (fixture)\n"),
            ("harness/src/lib.rs", "//! The harness (fixture)\n"),
            ("docs/src/guide.md", "# Guide\n"),
            ("README.md", "# Fixture\n"),
        ] {
            let p = d.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        git(d, &["init", "-q"]);
        commit(d, "base");
        Self {
            dir,
            results: common::results_dir("affected"),
            kernels: kernels_binary(),
        }
    }

    /// The names the `kernels` target lists for `args` on the fixture's working tree.
    fn list(&self, args: &[&str]) -> BTreeSet<String> {
        let d = self.path();
        let mut cmd = Command::new(&self.kernels);
        common::isolate(&mut cmd, &self.results.0, "affected-list");
        let out = cmd
            .args(args)
            .env("L1_ROOT", d)
            .env("L1_SPECS", d.join("specs"))
            .env("L1_DETECTED_HARDWARE", "cpu")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_suffix(": test"))
            .map(str::to_string)
            .collect()
    }

    fn truth(&self) -> Truth {
        Truth::of(self.path(), &self.kernels, &self.results.0)
    }
}

const FX_LLAMA: &str = "\
kind: sweep
name: fx-llama
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [chat-short, batch-offline]
space:
  mode: exhaustive
  dims:
    attention_backend: all
    activation_dtype: [bf16, fp8_e4m3]
measure: { reps: 7, trim: 0.10 }
gates:
  - { method: topk5, metric: output_tokens_per_s, margin: 0.03 }
";

/// What a case expects besides the selection: the reason every affected (and removed) target
/// carries, as `(kind, field, value)` (`field` empty: any).
struct Expect {
    reason: (&'static str, &'static str, &'static str),
    /// Something must be selected (or, when false, nothing may be).
    selects: bool,
    removes: bool,
    /// Also run the filters through the real runners (nextest's `-E`, libtest's `--exact`).
    runners: bool,
}

fn has_reason(reasons: &Value, (kind, field, value): (&str, &str, &str)) -> bool {
    reasons.as_array().unwrap().iter().any(|r| {
        r["kind"] == kind
            && (field.is_empty()
                || r[field] == value
                || r[field]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == value)))
    })
}

/// Apply `change`, commit it, and compare `l1 affected HEAD~1..HEAD` with the ground truth.
fn check(fx: &Fixture, label: &str, change: impl FnOnce(&Path), expect: Expect) {
    let d = fx.path();
    let before = fx.truth();
    let base = git(d, &["rev-parse", "HEAD"]);
    change(d);
    let head = commit(d, label);
    let after = fx.truth();
    let (code, out, err) = l1(d, &["--json", "affected", "--base", &base, "--head", &head]);
    assert_eq!(code, 0, "{label}: l1 affected failed: {out}{err}");
    let got: Value = serde_json::from_str(&out).unwrap();
    let selected: BTreeSet<String> = got["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let removed: BTreeSet<String> = got["removed_trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let everything = got["everything"] == true;
    // The ground truth: new or changed content; everything for an unclassifiable change.
    let truth: BTreeSet<String> = after
        .contents
        .iter()
        .filter(|(n, c)| everything || before.contents.get(*n) != Some(*c))
        .map(|(n, _)| n.clone())
        .collect();
    let truth_removed: BTreeSet<String> = before
        .contents
        .keys()
        .filter(|n| !after.contents.contains_key(*n))
        .cloned()
        .collect();
    let missed: Vec<_> = truth.difference(&selected).collect();
    let extra: Vec<_> = selected.difference(&truth).collect();
    assert!(
        missed.is_empty() && extra.is_empty(),
        "{label}: recall misses {missed:#?}; precision: extra {extra:#?}"
    );
    assert_eq!(removed, truth_removed, "{label}: removed trials");
    assert_eq!(
        !selected.is_empty(),
        expect.selects,
        "{label}: selected {selected:?}"
    );
    assert_eq!(
        !removed.is_empty(),
        expect.removes,
        "{label}: removed {removed:?}"
    );
    for t in got["targets"].as_array().unwrap() {
        assert!(
            has_reason(&t["reasons"], expect.reason),
            "{label}: target {} lacks reason {:?}: {}",
            t["target"],
            expect.reason,
            t["reasons"]
        );
        assert!(
            !has_reason(&t["reasons"], ("content_changed", "", "")),
            "{label}: an unexplained change of {}",
            t["target"]
        );
    }
    for t in got["removed"].as_array().unwrap() {
        assert!(
            has_reason(&t["reasons"], expect.reason),
            "{label}: removed target {} lacks reason {:?}: {}",
            t["target"],
            expect.reason,
            t["reasons"]
        );
    }
    // The filters CI uses name exactly the selection.
    let filterset = got["nextest_filterset"].as_str().unwrap();
    if everything {
        assert_eq!(filterset, "all()", "{label}");
    } else if selected.is_empty() {
        assert_eq!(filterset, "none()", "{label}");
    } else {
        for t in got["targets"].as_array().unwrap() {
            let target = t["target"].as_str().unwrap();
            assert!(
                filterset.contains(&target.replace('.', "\\.")) || t["whole"] == false,
                "{label}: {filterset}"
            );
        }
    }
    let (code, names, err) = l1(
        d,
        &[
            "affected", "--base", &base, "--head", &head, "--format", "names",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let names: BTreeSet<String> = names.lines().map(str::to_string).collect();
    assert_eq!(names, selected, "{label}: --format names");
    if expect.runners {
        assert_eq!(
            nextest_list(fx, filterset),
            selected,
            "{label}: `cargo nextest list -E '{filterset}'` lists the selection"
        );
        let (code, lines, err) = l1(
            d,
            &[
                "affected", "--base", &base, "--head", &head, "--format", "libtest",
            ],
        );
        assert_eq!(code, 0, "{err}");
        let mut listed = BTreeSet::new();
        for line in lines.lines() {
            let args: Vec<&str> = line.splitn(2, ' ').collect();
            assert_eq!(args[0], "--exact", "{label}: {line}");
            listed.extend(fx.list(&["--list", "--exact", args[1]]));
        }
        assert_eq!(
            listed, selected,
            "{label}: the libtest filters select the selection"
        );
    }
    eprintln!(
        "{label}: {} selected, {} removed (of {} trials)",
        selected.len(),
        removed.len(),
        after.contents.len()
    );
}

#[test]
fn affected_equals_the_brute_force_truth_for_each_kind_of_change() {
    let fx = Fixture::new();
    let yes = |reason| Expect {
        reason,
        selects: true,
        removes: false,
        runners: false,
    };
    check(
        &fx,
        "spec edit",
        |d| edit(&d.join("specs/sim/fx-llama.yaml"), "reps: 7", "reps: 9"),
        Expect {
            runners: true,
            ..yes(("spec_changed", "path", "specs/sim/fx-llama.yaml"))
        },
    );
    check(
        &fx,
        "spec added",
        |d| {
            let text = FX_LLAMA
                .replace("fx-llama", "fx-extra")
                .replace("[chat-short, batch-offline]", "[rag-long]");
            std::fs::write(d.join("specs/sim/fx-extra.yaml"), text).unwrap();
        },
        yes(("spec_added", "path", "specs/sim/fx-extra.yaml")),
    );
    check(
        &fx,
        "spec removed",
        |d| std::fs::remove_file(d.join("specs/sim/fx-extra.yaml")).unwrap(),
        Expect {
            reason: ("spec_removed", "path", "specs/sim/fx-extra.yaml"),
            selects: false,
            removes: true,
            runners: false,
        },
    );
    check(
        &fx,
        "catalog value added",
        |d| {
            edit_catalog(
                d,
                "values: [flash_attn_v2, flash_attn_v3, paged_attention, xformers, native]",
                "values: [flash_attn_v2, flash_attn_v3, paged_attention, xformers, native, flashinfer]",
            );
        },
        Expect {
            runners: true,
            ..yes(("dimension_value_added", "value", "flashinfer"))
        },
    );
    check(
        &fx,
        "catalog value renamed",
        |d| edit_catalog(d, "native, flashinfer]", "native, flashinfer_v2]"),
        Expect {
            reason: ("dimension_value_renamed", "to", "flashinfer_v2"),
            selects: true,
            removes: true,
            runners: false,
        },
    );
    check(
        &fx,
        "catalog value removed",
        |d| edit_catalog(d, "native, flashinfer_v2]", "native]"),
        Expect {
            reason: ("dimension_value_removed", "value", "flashinfer_v2"),
            // The gates of the targets that swept it change too.
            selects: true,
            removes: true,
            runners: false,
        },
    );
    check(
        &fx,
        "rule changed",
        |d| {
            edit_catalog(
                d,
                "requires: { device: gpu, compute_capability: { min: \"8.9\" } }\n    reason: native FP8 GEMM",
                "requires: { device: gpu, compute_capability: { min: \"9.5\" } }\n    reason: native FP8 GEMM",
            );
        },
        Expect {
            reason: ("rule_changed", "rule", "fp8-compute-requires-sm89"),
            selects: true,
            removes: true,
            runners: false,
        },
    );
    check(
        &fx,
        "engine default changed",
        |d| {
            edit_catalog(
                d,
                "    defaults:\n      attention_backend: flash_attn_v2\n      kv_layout: paged\n      matmul_path: cublas",
                "    defaults:\n      attention_backend: paged_attention\n      kv_layout: paged\n      matmul_path: cublas",
            );
        },
        Expect {
            reason: ("engine_defaults_changed", "engine", "sim"),
            selects: true,
            removes: true,
            runners: false,
        },
    );
    check(
        &fx,
        "engine version added",
        |d| edit_catalog(d, "\"0.15\", \"0.22\"", "\"0.15\", \"0.16\", \"0.22\""),
        Expect {
            reason: ("engine_versions_changed", "engine", "vllm"),
            selects: false,
            removes: false,
            runners: false,
        },
    );
    check(
        &fx,
        "engine version bump in a spec",
        |d| {
            edit(
                &d.join("specs/cpu/fx-vllm-cpu.yaml"),
                "vllm@0.32",
                "vllm@0.16",
            )
        },
        Expect {
            reason: ("engine_version_bump", "to", "0.16"),
            selects: true,
            removes: true,
            runners: false,
        },
    );
    check(
        &fx,
        "model profile changed",
        |d| {
            edit(
                &d.join("catalogs/models.yaml"),
                "    intermediate_size: 512\n    vocab_size: 512\n    max_context: 4096",
                "    intermediate_size: 512\n    vocab_size: 512\n    max_context: 8192",
            );
        },
        yes(("model_profile_changed", "model", "tiny-llama")),
    );
    check(
        &fx,
        "hardware profile changed",
        |d| {
            edit(
                &d.join("catalogs/hardware.yaml"),
                "noise_floor_cv: 0.02               # starting point for a datacenter GPU; calibrate\n    launch_cv: 0.01                    # starting point (about half the noise floor); calibrate\n    # nvidia-smi reports the SXM part",
                "noise_floor_cv: 0.025\n    launch_cv: 0.01\n    # nvidia-smi reports the SXM part",
            );
        },
        yes(("hardware_profile_changed", "hardware", "h100-sxm")),
    );
    check(
        &fx,
        "workload profile changed",
        |d| {
            edit(
                &d.join("catalogs/workloads.yaml"),
                "arrival: { concurrency: 16 }\n    requests: 128",
                "arrival: { concurrency: 16 }\n    requests: 96",
            );
        },
        yes(("workload_profile_changed", "workload", "chat-short")),
    );
    check(
        &fx,
        "translator changed",
        |d| {
            edit(
                &d.join("engines/src/vllm.rs"),
                "(fixture)",
                "(fixture, new flag)",
            )
        },
        yes(("translator_changed", "engine", "vllm")),
    );
    check(
        &fx,
        "docs only",
        |d| {
            edit(&d.join("docs/src/guide.md"), "# Guide", "# Guide\n\nMore.");
            edit(&d.join("README.md"), "# Fixture", "# Fixture\n\nMore.");
        },
        Expect {
            reason: ("", "", ""),
            selects: false,
            removes: false,
            runners: false,
        },
    );
    check(
        &fx,
        "unclassifiable change",
        |d| {
            edit(
                &d.join("harness/src/lib.rs"),
                "(fixture)",
                "(fixture, changed)",
            )
        },
        yes(("unclassified", "paths", "harness/src/lib.rs")),
    );
    check(
        &fx,
        "spec broken",
        |d| {
            edit(
                &d.join("specs/sim/fx-mistral.yaml"),
                "kind: sweep",
                "kind: sweep\nbogus_field: 1",
            )
        },
        Expect {
            reason: ("spec_changed", "path", "specs/sim/fx-mistral.yaml"),
            selects: true,
            removes: true,
            runners: true,
        },
    );
}

#[test]
fn bad_revisions_exit_2_with_a_clear_message() {
    let dir = common::RemoveOnDrop(l1_testkit::fresh_dir("affected-badrev"));
    let d = dir.0.as_path();
    copy_dir(&common::root().join("catalogs"), &d.join("catalogs"));
    git(d, &["init", "-q"]);
    commit(d, "base");
    let (code, _, err) = l1(d, &["affected", "--base", "no-such-rev"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("`no-such-rev` is not a revision"),
        "the message names the revision: {err}"
    );
    // Nothing changed: success, nothing selected.
    let (code, out, err) = l1(d, &["affected", "--base", "HEAD", "--format", "nextest"]);
    assert_eq!((code, out.trim()), (0, "none()"), "{err}");
    // A missing --base is a usage error.
    let (code, _, err) = l1(d, &["affected"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--base"), "{err}");
}
