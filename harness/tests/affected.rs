//! `l1 affected` on a fixture git repository: for each kind of change, its selection equals the
//! ground truth got by brute force, independently of `l1 affected`'s own expansion: the
//! `kernels` target's `--list` at both revisions (the names), and each trial's content read
//! from the raw files of that revision (its spec's `measure` and judging settings, its model,
//! hardware and workload entries, the dataset and probe prompts its workload reads, its
//! engine's translator source, its baseline combo computed from the catalog's defaults),
//! compared name by name. Recall and precision must both be 100 %, removed trials must match,
//! and every affected target must carry the right reason. Each case is also checked under a
//! budget (`--max-trials`). The fixture and the ground truth are in `affected/fixture.rs`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;
#[path = "affected/fixture.rs"]
mod fixture;

use std::collections::BTreeSet;
use std::path::Path;

use fixture::{FX_LLAMA, Fixture, commit, copy_dir, edit, edit_catalog, git, l1, nextest_list};
use serde_json::Value;

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
    // A budget of the first target's trials keeps whole targets, in order, while they fit,
    // and its filterset names exactly the trials it keeps.
    let targets = got["targets"].as_array().unwrap();
    let budgeted = if targets.is_empty() {
        None
    } else {
        let max = targets[0]["trials"].as_object().unwrap().len();
        let (code, out, err) = l1(
            d,
            &[
                "--json",
                "affected",
                "--base",
                &base,
                "--head",
                &head,
                "--max-trials",
                &max.to_string(),
            ],
        );
        assert_eq!(code, 0, "{label}: {err}");
        let b: Value = serde_json::from_str(&out).unwrap();
        let (mut room, mut kept, mut left_out) = (max, BTreeSet::new(), 0);
        for t in targets {
            let trials = t["trials"].as_object().unwrap();
            if trials.len() <= room {
                room -= trials.len();
                kept.extend(trials.keys().cloned());
            } else {
                left_out += trials.len();
            }
        }
        let run: BTreeSet<String> = b["run_trials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(run, kept, "{label}: the trials a budget of {max} keeps");
        assert_eq!(b["budget"]["kept_trials"], kept.len(), "{label}");
        assert_eq!(b["budget"]["left_out_trials"], left_out, "{label}");
        assert_eq!(b["trials"], got["trials"], "{label}: the selection itself");
        Some((b["nextest_filterset"].as_str().unwrap().to_string(), kept))
    };
    if expect.runners {
        if let Some((filterset, kept)) = &budgeted {
            assert_eq!(
                &nextest_list(fx, filterset),
                kept,
                "{label}: `cargo nextest list -E '{filterset}'` lists what the budget kept"
            );
        }
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
        "dataset file changed",
        |d| {
            edit(
                &d.join("catalogs/datasets/cpu-prompts.jsonl"),
                "reduces memory fragmentation",
                "avoids memory fragmentation",
            );
        },
        Expect {
            runners: true,
            ..yes(("workload_profile_changed", "workload", "cpu-dataset"))
        },
    );
    check(
        &fx,
        "probe set added to a workload",
        |d| {
            std::fs::write(
                d.join("catalogs/probes/fx.jsonl"),
                "{\"prompt\": \"One\"}\n{\"prompt\": \"Two\"}\n",
            )
            .unwrap();
            edit(
                &d.join("catalogs/workloads.yaml"),
                "    requests: 256\n    warmup_requests: 8\n",
                "    requests: 256\n    warmup_requests: 8\n    probes: { path: catalogs/probes/fx.jsonl }\n",
            );
        },
        yes(("workload_profile_changed", "workload", "batch-offline")),
    );
    check(
        &fx,
        "probe file changed",
        |d| edit(&d.join("catalogs/probes/fx.jsonl"), "Two", "Three"),
        Expect {
            runners: true,
            ..yes(("workload_profile_changed", "workload", "batch-offline"))
        },
    );
    check(
        &fx,
        "default probe prompts changed",
        |d| {
            edit(
                &d.join("catalogs/probes/default.jsonl"),
                "The capital of France is",
                "The capital of Italy is",
            );
        },
        yes(("workload_profile_changed", "", "")),
    );
    check(
        &fx,
        "spec moved, content same",
        |d| {
            std::fs::rename(
                d.join("specs/sim/fx-dataset.yaml"),
                d.join("specs/cpu/fx-dataset.yaml"),
            )
            .unwrap();
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
        "spec moved and edited",
        |d| {
            std::fs::rename(
                d.join("specs/cpu/fx-dataset.yaml"),
                d.join("specs/sim/fx-dataset.yaml"),
            )
            .unwrap();
            edit(&d.join("specs/sim/fx-dataset.yaml"), "reps: 5", "reps: 6");
        },
        Expect {
            runners: true,
            ..yes(("spec_renamed", "to", "specs/sim/fx-dataset.yaml"))
        },
    );
    check(
        &fx,
        "spec renamed",
        |d| {
            // A spec's name is its file's name: renaming the file renames its trials.
            std::fs::rename(
                d.join("specs/sim/fx-dataset.yaml"),
                d.join("specs/sim/fx-data.yaml"),
            )
            .unwrap();
            edit(
                &d.join("specs/sim/fx-data.yaml"),
                "name: fx-dataset",
                "name: fx-data",
            );
        },
        Expect {
            reason: ("spec_renamed", "from", "specs/sim/fx-dataset.yaml"),
            selects: true,
            removes: true,
            runners: true,
        },
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
