//! Exact accounting, whatever the runner: the `kernels` target run by `cargo test` (one
//! libtest-mimic process) and by `cargo nextest run` (a listing process, then one process per
//! trial), with and without a filter, a spec error (`invalid::` trial), ignored trials (a GPU
//! this machine lacks) and a real-engine failure (llama.cpp required but not installed). Every
//! factor and every pair of factors is covered (a covering array of 6 runs, not the 32 of the
//! full factorial).
//!
//! Each run's counts are parsed from the runner's own output (libtest's `test result: … N
//! passed; M failed; K ignored; 0 measured; F filtered out`, nextest's `Summary […] T tests run:
//! N passed, M failed, S skipped`) and compared with what l1 reports for the run: `l1 --json
//! report` (exit code too), its JUnit XML (one testcase per trial that was not filtered out:
//! ignored ones skipped, spec errors failed), `results.json`, the metrics textfile, and the
//! store's `runs list`. Under `cargo test` the end-of-run summary line is compared too.
//!
//! Everything is written under a scratch `L1_TARGET_DIR`: nothing reaches the repository's
//! `target/l1` (checked at the end).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::root;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Runner {
    Libtest,
    Nextest,
}

/// One run of the matrix.
#[derive(Clone, Copy, Debug)]
struct Case {
    runner: Runner,
    filter: bool,
    invalid: bool,
    ignored: bool,
    engine_fails: bool,
}

/// A covering array of strength 2 for five two-level factors: every pair of levels of every pair
/// of factors appears in some run, and each level in three runs.
const CASES: [Case; 6] = {
    const fn c(r: u8, f: u8, i: u8, g: u8, e: u8) -> Case {
        Case {
            runner: if r == 0 {
                Runner::Libtest
            } else {
                Runner::Nextest
            },
            filter: f == 1,
            invalid: i == 1,
            ignored: g == 1,
            engine_fails: e == 1,
        }
    }
    [
        c(0, 0, 0, 0, 0),
        c(0, 0, 0, 0, 1),
        c(0, 1, 1, 1, 0),
        c(1, 0, 1, 1, 0),
        c(1, 1, 0, 1, 1),
        c(1, 1, 1, 0, 1),
    ]
};

/// The filter: leave out the simulated combos with CUDA graphs per shape (2 of acct-sim's 6
/// trials; no other fixture has them).
const FILTERED: &str = "graph=per-shape";

/// The runner's own counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    passed: usize,
    failed: usize,
    /// libtest: ignored; nextest: skipped (ignored + filtered out).
    ignored: usize,
    /// libtest only.
    filtered_out: usize,
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `N word` → N for each `N word` fragment of a summary line.
fn numbers(line: &str) -> Vec<(usize, String)> {
    line.split([',', ';', ':', '.'])
        .filter_map(|part| {
            let part = part.trim();
            let (n, word) = part.split_once(' ')?;
            Some((n.trim().parse().ok()?, word.trim().to_string()))
        })
        .collect()
}

fn count_of(nums: &[(usize, String)], word: &str) -> usize {
    nums.iter()
        .find(|(_, w)| w == word || w.starts_with(&format!("{word} ")))
        .map_or(0, |(n, _)| *n)
}

/// libtest's `test result: FAILED. 7 passed; 4 failed; 3 ignored; 0 measured; 2 filtered out; …`
fn parse_libtest(out: &str) -> Counts {
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("test result:"))
        .collect();
    assert_eq!(lines.len(), 1, "one libtest result line expected:\n{out}");
    let nums = numbers(lines[0]);
    Counts {
        passed: count_of(&nums, "passed"),
        failed: count_of(&nums, "failed"),
        ignored: count_of(&nums, "ignored"),
        filtered_out: count_of(&nums, "filtered out"),
    }
}

/// nextest's `     Summary [   1.234s] 11 tests run: 7 passed, 4 failed, 3 skipped`.
fn parse_nextest(out: &str) -> (usize, Counts) {
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with("Summary ["))
        .unwrap_or_else(|| panic!("no nextest summary line:\n{out}"));
    let after = line.split_once(']').map_or(line, |(_, r)| r);
    let nums = numbers(after);
    (
        count_of(&nums, "tests run").max(count_of(&nums, "test run")),
        Counts {
            passed: count_of(&nums, "passed"),
            failed: count_of(&nums, "failed"),
            ignored: count_of(&nums, "skipped"),
            filtered_out: 0,
        },
    )
}

/// Run the `kernels` target on `specs` with the runner of `case`.
fn run_kernels(case: &Case, specs: &Path, engines: &Path, results: &Path, run_id: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO"));
    common::isolate(&mut cmd, results, run_id);
    cmd.current_dir(root())
        .env("L1_SPECS", specs)
        .env("L1_ENGINES_DIR", engines)
        .env("L1_PROGRESS", "0");
    if case.engine_fails {
        cmd.env("L1_REQUIRE_ENGINES", "1");
    }
    match case.runner {
        Runner::Libtest => {
            cmd.args(["test", "-p", "l1-harness", "--test", "kernels"])
                .args(["--profile", common::cargo_profile(), "--"]);
            if case.filter {
                cmd.args(["--skip", FILTERED]);
            }
        }
        Runner::Nextest => {
            cmd.args(["nextest", "run", "-p", "l1-harness", "--test", "kernels"])
                .args(["--cargo-profile", common::cargo_profile()])
                .args(["--color", "never", "--no-fail-fast"]);
            if case.filter {
                cmd.args(["-E", &format!("not test(/{FILTERED}/)")]);
            }
        }
    }
    cmd.output().expect("cargo runs")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn check(i: usize, case: &Case) {
    let what = format!("case {i} {case:?}");
    let scratch = common::results_dir(&format!("matrix-{i}"));
    let dir = scratch.0.as_path();
    let (specs, engines, results) = (dir.join("specs"), dir.join("engines"), dir.join("target"));
    std::fs::create_dir_all(&specs).unwrap();
    std::fs::create_dir_all(&engines).unwrap();
    let fixtures = root().join("harness/tests/fixtures/accounting");
    let mut files = vec!["acct-sim"];
    if case.invalid {
        files.push("acct-invalid");
    }
    if case.ignored {
        files.push("acct-gpu");
    }
    if case.engine_fails {
        files.push("acct-cpu");
    }
    for f in &files {
        std::fs::copy(
            fixtures.join(format!("{f}.yaml")),
            specs.join(format!("{f}.yaml")),
        )
        .unwrap();
    }
    let run_id = format!("matrix-{i}-{}", std::process::id());

    // What the fixtures make: acct-sim 6 trials (2 filtered), acct-invalid 1 failed, acct-gpu 3
    // ignored, acct-cpu 3 failed.
    let filtered = if case.filter { 2 } else { 0 };
    let expected = Counts {
        passed: 6 - filtered,
        failed: usize::from(case.invalid) + if case.engine_fails { 3 } else { 0 },
        ignored: if case.ignored { 3 } else { 0 },
        filtered_out: filtered,
    };

    let out = run_kernels(case, &specs, &engines, &results, &run_id);
    let out_text = text(&out);
    let runner = match case.runner {
        Runner::Libtest => parse_libtest(&String::from_utf8_lossy(&out.stdout)),
        Runner::Nextest => {
            let (run, mut c) = parse_nextest(&out_text);
            assert_eq!(run, c.passed + c.failed, "{what}: {out_text}");
            // nextest's skipped = ignored + filtered out.
            c.filtered_out = 0;
            c
        }
    };
    let runner_expected = match case.runner {
        Runner::Libtest => expected,
        Runner::Nextest => Counts {
            ignored: expected.ignored + expected.filtered_out,
            filtered_out: 0,
            ..expected
        },
    };
    assert_eq!(
        runner, runner_expected,
        "{what}: the runner's counts\n{out_text}"
    );
    assert_eq!(
        out.status.success(),
        expected.failed == 0,
        "{what}: the runner's exit status\n{out_text}"
    );
    let status = if expected.failed > 0 {
        "failed"
    } else {
        "passed"
    };

    // The end-of-run summary of a plain `cargo test` run says what libtest said.
    if case.runner == Runner::Libtest {
        let line = format!(
            "l1 run {run_id}: {}{} trials passed, {} failed, {} ignored, {} filtered out",
            if status == "passed" {
                "passed: "
            } else {
                "FAILED: "
            },
            expected.passed,
            expected.failed,
            expected.ignored,
            expected.filtered_out
        );
        assert!(
            out_text.contains(&line),
            "{what}: the summary should read `{line}`:\n{out_text}"
        );
    }

    // `l1 report`: counts, status and exit code.
    let (code, stdout, stderr) = common::l1(
        &results,
        &[("L1_SPECS", specs.as_path())],
        &["--json", "report", &run_id],
    );
    let summary: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{what}: {e}: {stdout}\n{stderr}"));
    let ignored_total: u64 = summary["ignored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g[1].as_u64().unwrap())
        .sum();
    assert_eq!(
        (
            summary["trials_passed"].as_u64().unwrap() as usize,
            summary["trials_failed"].as_u64().unwrap() as usize,
            ignored_total as usize,
            summary["filtered_out"].as_u64().unwrap() as usize,
        ),
        (
            expected.passed,
            expected.failed,
            expected.ignored,
            expected.filtered_out
        ),
        "{what}: l1 report's counts: {summary}"
    );
    assert_eq!(summary["status"], status, "{what}: {summary}");
    assert_eq!(
        summary["unfinished"].as_array().map(Vec::len),
        Some(0),
        "{what}: {summary}"
    );
    assert_eq!(
        code,
        if expected.failed > 0 { 1 } else { 0 },
        "{what}: l1 report's exit code\n{stdout}\n{stderr}"
    );
    if case.ignored {
        assert!(
            summary["ignored"]
                .to_string()
                .contains("is not present here"),
            "{what}: the reason is kept: {summary}"
        );
    }

    // JUnit: a testcase per trial that was not filtered out.
    let run_dir = results.join("l1/runs").join(&run_id);
    let xml = read(&run_dir.join("junit.xml"));
    let n = |tag: &str| xml.matches(tag).count();
    assert_eq!(
        n("<testcase "),
        expected.passed + expected.failed + expected.ignored,
        "{what}: {xml}"
    );
    assert_eq!(n("<failure "), expected.failed, "{what}: {xml}");
    assert_eq!(n("<skipped "), expected.ignored, "{what}: {xml}");
    assert_eq!(n("<error "), 0, "{what}: {xml}");
    if case.invalid {
        assert!(
            xml.contains("name=\"invalid::acct-invalid\""),
            "{what}: the spec error is a failed testcase: {xml}"
        );
    }

    // results.json (what the HTML shows).
    let results_json: serde_json::Value =
        serde_json::from_str(&read(&run_dir.join("results.json"))).unwrap();
    let t = &results_json["totals"];
    assert_eq!(
        (
            t["passed"].as_u64().unwrap() as usize,
            t["failed"].as_u64().unwrap() as usize,
            t["ignored"].as_u64().unwrap() as usize,
            t["filtered_out"].as_u64().unwrap() as usize,
        ),
        (
            expected.passed,
            expected.failed,
            expected.ignored,
            expected.filtered_out
        ),
        "{what}: results.json totals: {t}"
    );
    assert_eq!(t["status"], status, "{what}: {t}");
    assert_eq!(
        t["invalid"].as_u64(),
        Some(u64::from(case.invalid)),
        "{what}: {t}"
    );

    // Metrics: the run counted under its status.
    let prom = read(&results.join("l1/metrics/l1.prom"));
    assert!(
        prom.lines()
            .any(|l| l.contains("runs_total{") && l.contains(&format!("status=\"{status}\""))),
        "{what}: {prom}"
    );

    // The store: the run's status and counts, and the same measurement count as results.json.
    let list = common::l1_json(&results, &[], &["runs", "list"]);
    let row = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == run_id.as_str())
        .unwrap_or_else(|| panic!("{what}: run not in the store: {list}"))
        .clone();
    assert_eq!(row["status"], status, "{what}: {row}");
    assert_eq!(
        (
            row["trials_passed"].as_u64().unwrap() as usize,
            row["trials_failed"].as_u64().unwrap() as usize
        ),
        (expected.passed, expected.failed),
        "{what}: {row}"
    );
    assert_eq!(row["measurements"], t["measurements"], "{what}: {row} {t}");

    common::assert_isolated(&[&run_id]);
}

#[test]
fn counts_agree_with_libtest_and_nextest_across_the_matrix() {
    // Every pair of levels of every pair of factors is covered.
    let levels = |c: &Case| {
        [
            c.runner == Runner::Nextest,
            c.filter,
            c.invalid,
            c.ignored,
            c.engine_fails,
        ]
    };
    for a in 0..5 {
        for b in a + 1..5 {
            for (x, y) in [(false, false), (false, true), (true, false), (true, true)] {
                assert!(
                    CASES.iter().any(|c| levels(c)[a] == x && levels(c)[b] == y),
                    "factors {a},{b} levels ({x},{y}) not covered"
                );
            }
        }
    }
    for (i, case) in CASES.iter().enumerate() {
        check(i, case);
    }
}

#[test]
fn summary_lines_are_parsed() {
    let lt = parse_libtest(
        "running 14 tests\ntest result: FAILED. 7 passed; 4 failed; 3 ignored; 0 measured; 2 filtered out; finished in 0.52s\n",
    );
    assert_eq!(
        lt,
        Counts {
            passed: 7,
            failed: 4,
            ignored: 3,
            filtered_out: 2
        }
    );
    let (run, nt) = parse_nextest(
        "------------\n     Summary [   1.234s] 11 tests run: 7 passed, 4 failed, 3 skipped\n",
    );
    assert_eq!(run, 11);
    assert_eq!((nt.passed, nt.failed, nt.ignored), (7, 4, 3));
    let (run, nt) = parse_nextest("     Summary [   0.2s] 1 test run: 1 passed, 2 skipped\n");
    assert_eq!((run, nt.passed, nt.failed, nt.ignored), (1, 1, 0, 2));
}
