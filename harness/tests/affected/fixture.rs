//! The fixture of `affected.rs`: a git repository of specs and catalogs, the commands run on
//! it (`l1`, `git`, the `kernels` binary, `cargo nextest list`), and the brute-force ground
//! truth of one revision read from its raw files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::common;
pub use crate::common::kernels_binary;

pub fn git(dir: &Path, args: &[&str]) -> String {
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

pub fn commit(dir: &Path, message: &str) -> String {
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

pub fn copy_dir(from: &Path, to: &Path) {
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

pub fn edit(path: &Path, from: &str, to: &str) {
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
pub fn edit_catalog(dir: &Path, from: &str, to: &str) {
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

pub fn l1(dir: &Path, args: &[&str]) -> (i32, String, String) {
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
pub fn nextest_list(fx: &Fixture, filterset: &str) -> BTreeSet<String> {
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
pub struct Truth {
    pub contents: BTreeMap<String, String>,
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
            let workload = &workloads["workloads"][parts[5]];
            // The files a workload reads: its dataset, and its probe prompts (its own file,
            // else the bundled default, which the binary of that revision compiles in).
            let file = |rel: &str| std::fs::read_to_string(dir.join(rel)).unwrap_or_default();
            let dataset = workload["dataset"]["path"].as_str().map(file);
            let probes = file(
                workload["probes"]["path"]
                    .as_str()
                    .unwrap_or("catalogs/probes/default.jsonl"),
            );
            let mut c = json!({
                "name": name,
                "measure": spec["measure"],
                "model": models["models"][parts[3]],
                "hardware": hardware["hardware"][parts[4]],
                "workload": workload,
                "dataset": dataset,
                "probes": probes,
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

pub struct Fixture {
    pub dir: common::RemoveOnDrop,
    pub results: common::RemoveOnDrop,
    pub kernels: PathBuf,
}

impl Fixture {
    pub fn path(&self) -> &Path {
        &self.dir.0
    }

    pub fn new() -> Self {
        let dir = common::RemoveOnDrop(l1_testkit::fresh_dir("affected-fixture"));
        let root = common::root();
        let d = dir.0.as_path();
        copy_dir(&root.join("catalogs"), &d.join("catalogs"));
        std::fs::create_dir_all(d.join("specs/sim")).unwrap();
        std::fs::create_dir_all(d.join("specs/cpu")).unwrap();
        std::fs::write(d.join("specs/sim/fx-llama.yaml"), FX_LLAMA).unwrap();
        std::fs::write(d.join("specs/sim/fx-dataset.yaml"), FX_DATASET).unwrap();
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
    pub fn list(&self, args: &[&str]) -> BTreeSet<String> {
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

    pub fn truth(&self) -> Truth {
        Truth::of(self.path(), &self.kernels, &self.results.0)
    }
}

pub const FX_LLAMA: &str = "\
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

/// A spec with one target on a workload that reads a dataset file and one that does not.
pub const FX_DATASET: &str = "\
kind: sweep
name: fx-dataset
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [cpu-dataset, cpu-smoke]
space:
  mode: exhaustive
  dims:
    activation_dtype: [bf16, fp8_e4m3]
measure: { reps: 5 }
gates:
  - { method: topk5, metric: output_tokens_per_s, margin: 0.03 }
";
