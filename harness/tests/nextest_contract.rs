//! The harness contract, tested through the real runners: `cargo nextest list/run` and
//! `cargo test -- --list` on fixture specs. Checks exact names, the `--exact` fast path (with
//! `L1_FULL_SCAN_FORBIDDEN`, a run that expanded every spec would fail), ignored trials shown as
//! SKIP, a deliberately failing trial failing the run, partitions that cover the list exactly
//! once, and filtersets over dimension values.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use common::root;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

fn nextest(args: &[&str], results: &Path, run_id: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO"));
    common::isolate(&mut cmd, results, run_id);
    cmd.current_dir(root())
        .args(["nextest"])
        .args(args)
        .args([
            "-p",
            "l1-harness",
            "--test",
            "kernels",
            "--cargo-profile",
            common::cargo_profile(),
            "--color",
            "never",
        ])
        .env("L1_SPECS", root().join("harness/tests/fixtures/specs"))
        .env("L1_FULL_SCAN_FORBIDDEN", "1")
        .output()
        .expect("cargo nextest runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn listed(o: &Output) -> BTreeSet<String> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.trim().split_once(' ').map(|(_, n)| n.trim().to_string()))
        .filter(|n| n.contains("::"))
        .collect()
}

const PREFIX: &str = "sim::contract-sim::sim@1.0::llama-3.1-8b::h100-sxm::interactive-single::";

#[test]
fn nextest_lists_runs_skips_fails_partitions_and_filters() {
    // The fixture runs go to a scratch directory, never the user's `target/l1`.
    let results = common::results_dir("contract");
    let results = results.0.as_path();
    let list = nextest(&["list", "--run-ignored", "all"], results, "contract-list");
    assert!(list.status.success(), "{}", text(&list));
    let names = listed(&list);
    let expected_sim: BTreeSet<String> = [
        "act=bf16,attn=flash_attn_v2,fuse=conservative,graph=off,kv=paged,kvdt=auto,mm=cublas",
        "act=bf16,attn=flash_attn_v2,fuse=conservative,graph=per-shape,kv=paged,kvdt=auto,mm=cublas",
        "act=bf16,attn=flash_attn_v3,fuse=conservative,graph=off,kv=paged,kvdt=auto,mm=cublas",
        "act=bf16,attn=flash_attn_v3,fuse=conservative,graph=per-shape,kv=paged,kvdt=auto,mm=cublas",
        "baseline",
        "gate",
    ]
    .iter()
    .map(|leaf| format!("{PREFIX}{leaf}"))
    .collect();
    for n in &expected_sim {
        assert!(names.contains(n), "missing {n} in:\n{}", text(&list));
    }
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("gpu::contract-gpu::vllm@0.13::")),
        "{}",
        text(&list)
    );
    assert_eq!(names.len(), 6 + 5 + 3, "{}", text(&list));

    // Run everything: the fault fixture fails (combo and gate), the GPU fixture is skipped.
    let run = nextest(&["run", "--no-fail-fast"], results, "contract-run");
    let out = text(&run);
    assert!(
        !run.status.success(),
        "a failing trial must fail the run:\n{out}"
    );
    for n in &expected_sim {
        assert!(
            out.lines()
                .any(|l| l.contains("PASS") && l.contains(n.as_str())),
            "{n} should PASS:\n{out}"
        );
    }
    assert!(
        out.lines().any(|l| l.contains("FAIL")
            && l.contains("contract-fault")
            && l.contains("fault=crash")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.contains("FAIL") && l.contains("contract-fault") && l.ends_with("::gate")),
        "{out}"
    );
    assert!(
        out.contains("3 skipped") || out.contains("3 tests skipped") || out.contains("skipped"),
        "{out}"
    );
    assert!(
        !out.contains("L1_FULL_SCAN_FORBIDDEN"),
        "a test process expanded every spec:\n{out}"
    );

    // The run's summary (from the records, plus the reasons nextest's list phase recorded).
    let report = Command::new(env!("CARGO_BIN_EXE_l1"))
        .args([
            "--root",
            root().to_str().unwrap(),
            "--json",
            "report",
            "contract-run",
        ])
        .env("L1_TARGET_DIR", results)
        .env_remove("L1_STORE")
        .env_remove("L1_METRICS_TEXTFILE")
        .env_remove("L1_PUSHGATEWAY")
        .output()
        .unwrap();
    let summary: serde_json::Value =
        serde_json::from_slice(&report.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&report)));
    assert_eq!(summary["trials_failed"], 4, "{summary}");
    assert_eq!(summary["trials_passed"], 7, "{summary}");
    let ignored = summary["ignored"].to_string();
    assert!(
        ignored.contains("hardware `h100-sxm`") && ignored.contains("is not present here"),
        "{summary}"
    );
    assert_eq!(
        summary["filtered_out"], 0,
        "nextest selected every non-ignored trial: {summary}"
    );
    assert_eq!(summary["status"], "failed", "{summary}");
    assert_eq!(
        report.status.code(),
        Some(1),
        "a run with failed trials reports exit 1: {}",
        text(&report)
    );

    // Partitions cover the list exactly once.
    let mut union = BTreeSet::new();
    let mut total = 0;
    for part in ["hash:1/2", "hash:2/2"] {
        let p = nextest(
            &["list", "--run-ignored", "all", "--partition", part],
            results,
            "contract-part",
        );
        assert!(p.status.success(), "{}", text(&p));
        let n = listed(&p);
        total += n.len();
        union.extend(n);
    }
    assert_eq!(union, names);
    assert_eq!(total, names.len());

    // Filtersets over dimension values.
    let f = nextest(
        &[
            "list",
            "-E",
            "test(/attn=flash_attn_v3/) and test(/graph=off/)",
        ],
        results,
        "contract-filter",
    );
    let n = listed(&f);
    assert_eq!(n.len(), 1, "{}", text(&f));
    assert!(
        n.iter()
            .all(|x| x.contains("attn=flash_attn_v3") && x.contains("graph=off"))
    );
    common::assert_isolated(&[
        "contract-list",
        "contract-run",
        "contract-part",
        "contract-filter",
    ]);
}

#[test]
fn libtest_list_format_and_ignored_subset() {
    let results = common::results_dir("contract-libtest");
    let results = results.0.as_path();
    let exe = |extra: &[&str]| {
        let mut cmd = Command::new(env!("CARGO"));
        common::isolate(&mut cmd, results, "contract-libtest-list");
        cmd.current_dir(root())
            .args([
                "test",
                "-q",
                "-p",
                "l1-harness",
                "--test",
                "kernels",
                "--profile",
                common::cargo_profile(),
                "--",
            ])
            .args(["--list", "--format", "terse"])
            .args(extra)
            .env("L1_SPECS", root().join("harness/tests/fixtures/specs"))
            .output()
            .expect("cargo test runs")
    };
    let all = exe(&[]);
    assert!(all.status.success(), "{}", text(&all));
    let stdout = String::from_utf8_lossy(&all.stdout).into_owned();
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.iter().all(|l| l.ends_with(": test")),
        "every list line must end with `: test`:\n{stdout}"
    );
    assert_eq!(lines.len(), 14, "{stdout}");
    // A bad run-level gate override fails loudly instead of being ignored.
    let mut bad = Command::new(env!("CARGO"));
    common::isolate(&mut bad, results, "contract-libtest-list");
    let bad = bad
        .current_dir(root())
        .args([
            "test",
            "-q",
            "-p",
            "l1-harness",
            "--test",
            "kernels",
            "--profile",
            common::cargo_profile(),
            "--",
        ])
        .args(["--list", "--format", "terse"])
        .env("L1_SPECS", root().join("harness/tests/fixtures/specs"))
        .env("L1_GATES", "topk5,best")
        .output()
        .unwrap();
    let bad_list = String::from_utf8_lossy(&bad.stdout).into_owned();
    assert!(
        bad_list.contains("invalid::L1_GATES: test"),
        "{}",
        text(&bad)
    );
    assert!(
        text(&bad).contains("unknown gate method `best`"),
        "{}",
        text(&bad)
    );
    let ignored = exe(&["--ignored"]);
    let ign = String::from_utf8_lossy(&ignored.stdout).into_owned();
    let ign_lines: Vec<&str> = ign.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(ign_lines.len(), 3, "{ign}");
    assert!(
        ign_lines
            .iter()
            .all(|l| l.starts_with("gpu::contract-gpu::") && lines.contains(l)),
        "{ign}"
    );
}
