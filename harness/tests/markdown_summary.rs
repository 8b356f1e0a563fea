//! `l1 report --markdown` on a real run: a seeded sim sweep under `cargo test` (a target that
//! passes, one whose `regression` gate fails, a real-engine target ignored for its hardware, a
//! spec the libtest filter leaves out). The summary's counts equal libtest's own, its verdict row
//! of every target equals `results.json`, the regression is listed with its ratio, interval and
//! ε, the exit code is the failed run's (1), `--markdown -` writes the same summary to stdout,
//! and markdownlint-cli2 accepts it (skipped with the reason when it is not installed, unless
//! `L1_REQUIRE_ENGINES=1`).
//!
//! Results go to a scratch `L1_TARGET_DIR`, never the repository's `target/l1`.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use std::path::Path;
use std::process::Command;

use common::root;

/// Passes: fp8 beats the bf16 engine default by far more than topk5's margin.
const PASS: &str = "kind: sweep
name: mdsum-pass
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [chat-short]
space:
  dims:
    activation_dtype: [bf16, fp8_e4m3]
measure: { reps: 7 }
gates:
  - { method: topk5 }
";

/// Fails: the baseline is the fast fp8 combo, so the only candidate (bf16) regresses on both
/// metrics by far more than ε. The vllm target needs an H100 (ignored here).
const REGRESS: &str = "kind: sweep
name: mdsum-regress
targets:
  engines: [sim@1.0, vllm@0.11]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [chat-short]
space:
  dims:
    activation_dtype: [bf16]
baseline: { combo: { activation_dtype: fp8_e4m3 } }
measure: { reps: 7 }
gates:
  - { method: regression, epsilon: 0.05, epsilons: { ttft_p95_ms: 0.10 }, metrics: [output_tokens_per_s, ttft_p95_ms] }
";

/// Left out by the libtest filter `mdsum`.
const OTHER: &str = "kind: sweep
name: other
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [interactive-single]
space:
  pins: { attention_backend: flash_attn_v3 }
measure: { reps: 3 }
gates:
  - { method: manual }
";

/// libtest's `test result: … N passed; M failed; K ignored; 0 measured; F filtered out; …` as
/// (passed, failed, ignored, filtered out).
fn libtest_counts(out: &str) -> [usize; 4] {
    let line = out
        .lines()
        .find(|l| l.starts_with("test result:"))
        .unwrap_or_else(|| panic!("no libtest result line:\n{out}"));
    let count = |word: &str| -> usize {
        line.split(';')
            .map(|p| p.trim().trim_start_matches("test result:").trim())
            .map(|p| p.rsplit(". ").next().unwrap_or(p))
            .find_map(|p| p.strip_suffix(word)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no `{word}` in {line}"))
    };
    [
        count("passed"),
        count("failed"),
        count("ignored"),
        count("filtered out"),
    ]
}

/// The cells of a table row, `\|` kept inside its cell.
fn cells(row: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut prev = ' ';
    for c in row.trim().trim_start_matches('|').chars() {
        if c == '|' && prev != '\\' {
            out.push(cur.trim().to_string());
            cur.clear();
        } else {
            cur.push(c);
        }
        prev = c;
    }
    out
}

fn signed(x: f64) -> String {
    l1_reports::verdict::signed(x)
}

#[test]
fn the_markdown_summary_agrees_with_libtest_and_results_json() {
    let scratch = common::results_dir("markdown-summary");
    let dir = scratch.0.clone();
    let specs = dir.join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    for (name, text) in [
        ("mdsum-pass", PASS),
        ("mdsum-regress", REGRESS),
        ("other", OTHER),
    ] {
        std::fs::write(specs.join(format!("{name}.yaml")), text).unwrap();
    }
    let target = dir.join("target");
    let id = format!("mdsum-{}", std::process::id());

    // The run: `cargo test` of the `kernels` target, filtered to the two `mdsum` specs.
    let mut cmd = Command::new(env!("CARGO"));
    common::isolate(&mut cmd, &target, &id);
    let out = cmd
        .current_dir(root())
        .args(["test", "-p", "l1-harness", "--test", "kernels"])
        .args(["--profile", common::cargo_profile(), "--", "mdsum"])
        .env("L1_SPECS", &specs)
        .env("L1_PROGRESS", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !out.status.success(),
        "the regression fails the run:\n{stdout}"
    );
    let [passed, failed, ignored, filtered] = libtest_counts(&stdout);
    assert!(
        failed >= 1 && ignored >= 1 && filtered >= 1,
        "the run has every kind of count:\n{stdout}"
    );

    // The summary, to a file beside the run, with the CI's artifact link.
    let md_path = dir.join("summary.md");
    let url = "https://ci.example/artifacts/l1 (run 7)";
    let (code, _, err) = common::l1(
        &target,
        &[("L1_SPECS", &specs)],
        &[
            "report",
            &id,
            "--markdown",
            md_path.to_str().unwrap(),
            "--artifact-url",
            url,
        ],
    );
    assert_eq!(
        code, 1,
        "a failed run exits 1 with the summary written: {err}"
    );
    let md = std::fs::read_to_string(&md_path).unwrap();

    // First line: the status and libtest's counts.
    let first = md.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            "## ❌ l1 run `{id}`: FAILED — {passed} passed, {failed} failed, {ignored} ignored, {filtered} filtered out"
        ),
        "{md}"
    );
    assert!(
        md.contains("[HTML report](https://ci.example/artifacts/l1%20%28run%207%29)"),
        "{md}"
    );

    // Every target of results.json has one row with its verdict and the winner's numbers.
    let results: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(target.join("l1/runs").join(&id).join("results.json")).unwrap(),
    )
    .unwrap();
    let targets = results["targets"].as_array().unwrap();
    assert_eq!(targets.len(), 2, "{results:#}");
    let rows: Vec<Vec<String>> = md
        .lines()
        .skip_while(|l| !l.starts_with("| Verdict"))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(cells)
        .collect();
    assert_eq!(rows.len(), targets.len(), "{md}");
    for t in targets {
        let id = t["id"].as_str().unwrap();
        let row = (rows.iter())
            .find(|r| r[1].starts_with(&format!("`{id}`")))
            .unwrap_or_else(|| panic!("no row for {id}:\n{md}"));
        let verdict = match (t["passed"].as_bool(), t["inconclusive"].is_string()) {
            (Some(false), _) => "❌ FAIL",
            (Some(true), true) => "⚠️ inconclusive",
            (Some(true), false) => "✅ PASS",
            (None, _) => "no gate trial",
        };
        assert_eq!(row[0], verdict, "{id}: {row:?}");
        let gates: Vec<String> = (t["gates"].as_array().unwrap().iter())
            .map(|g| {
                let ok = if g["passed"].as_bool().unwrap() {
                    "✓"
                } else {
                    "✗"
                };
                format!("{} {ok}", g["method"].as_str().unwrap())
            })
            .collect();
        assert_eq!(row[2], gates.join(" · "), "{id}");
        if t["passed"].as_bool() == Some(true) {
            let winner = t["winner"].as_str().unwrap();
            let combo = (t["combos"].as_array().unwrap().iter())
                .find(|c| c["label"] == winner)
                .unwrap();
            let vs = &combo["vs_baseline"];
            let ci = vs["interval_pct"].as_array().unwrap();
            let change = format!(
                "`{winner}` {} % [{}, {}]",
                signed(vs["improvement_pct"].as_f64().unwrap()),
                signed(ci[0].as_f64().unwrap()),
                signed(ci[1].as_f64().unwrap())
            );
            assert!(row[3].contains(&change), "{id}: {change} in {row:?}");
        } else {
            assert_eq!(row[3], "no winner", "{id}");
        }
    }

    // The failing regression: its metrics, ratios, intervals and ε, as the gate's message says.
    let regress = (targets.iter())
        .find(|t| t["spec"] == "mdsum-regress")
        .unwrap();
    assert_eq!(regress["passed"], false, "{regress:#}");
    let reg_rows: Vec<Vec<String>> = md
        .lines()
        .skip_while(|l| !l.starts_with("| Target | Combo"))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(cells)
        .collect();
    let metrics: Vec<&str> = reg_rows.iter().map(|r| r[2].as_str()).collect();
    assert_eq!(metrics, ["`output_tokens_per_s`", "`ttft_p95_ms`"], "{md}");
    let message = regress["gates"][0]["message"].as_str().unwrap();
    for r in &reg_rows {
        // `-27.1 % [-29.5, -24.6]` → the message's `-27.1 % [-29.5 %, -24.6 %]`.
        let (change, ci) = r[4].split_once(" % ").unwrap();
        let ci = ci.trim_matches(['[', ']']).replace(", ", " %, ");
        let stated = format!("{}: {change} % [{ci} %]", r[2].trim_matches('`'));
        assert!(message.contains(&stated), "{stated} not in {message}");
        let ratio: f64 = r[3].split_whitespace().next().unwrap().parse().unwrap();
        let change: f64 = change.parse().unwrap();
        assert!((ratio - (1.0 + change / 100.0)).abs() < 5e-4, "{r:?}");
        assert!(ratio < 0.95, "a real regression: {r:?}");
        assert_eq!(r[7], "regressed");
    }
    assert_eq!(reg_rows[0][5], "5.0 %");
    assert_eq!(reg_rows[1][5], "10.0 %");
    // The gate recorded those numbers as structured checks (what the summary reads); the
    // message states the same numbers, rounded, and the old reader of messages agrees.
    let recorded: Vec<l1_reports::model::RegressionCheck> =
        serde_json::from_value(regress["gates"][0]["checks"].clone()).unwrap();
    let parsed =
        l1_reports::markdown::regression::checks(message, regress["gates"][0]["winner"].as_str());
    assert_eq!(recorded.len(), 2, "{regress:#}");
    assert_eq!(parsed.len(), recorded.len(), "{message}");
    for ((c, p), r) in recorded.iter().zip(&parsed).zip(&reg_rows) {
        assert_eq!(
            (&c.metric, c.failing, c.finding),
            (&p.metric, p.failing, p.finding)
        );
        assert_eq!(r[2].trim_matches('`'), c.metric);
        let near = |a: f64, b: f64| (a - b).abs() <= 0.05 + 1e-9;
        assert!(near(c.change_pct, p.change_pct), "{c:?} vs {p:?}");
        assert!(
            near(c.interval_pct[0], p.interval_pct[0])
                && near(c.interval_pct[1], p.interval_pct[1]),
            "{c:?} vs {p:?}"
        );
        assert!(
            near(c.epsilon_pct, p.epsilon_pct) && (c.p - p.p).abs() <= 5e-4,
            "{c:?} vs {p:?}"
        );
        assert_eq!(c.combo, p.combo);
    }

    // What did not run: the ignored vllm trials by reason, the filtered-out spec.
    let not_run = md
        .split("### Not run")
        .nth(1)
        .unwrap_or_else(|| panic!("{md}"));
    let ignored_listed: usize = (not_run.lines())
        .filter_map(|l| l.strip_prefix("- **")?.split_once("** ignored:"))
        .map(|(n, _)| n.parse::<usize>().unwrap())
        .sum();
    assert_eq!(ignored_listed, ignored, "{md}");
    assert!(
        not_run.contains(&format!("- **{filtered}** filtered out")),
        "{md}"
    );

    // `--markdown -`: the same summary on stdout (the text table on stderr); with `--json`, a
    // usage error.
    let (code, stdout, stderr) = common::l1(
        &target,
        &[("L1_SPECS", &specs)],
        &["report", &id, "--markdown", "-", "--artifact-url", url],
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stdout.trim_end(), md.trim_end());
    assert!(stderr.contains(&format!("l1 run {id}: FAILED")), "{stderr}");
    let (code, _, stderr) = common::l1(
        &target,
        &[("L1_SPECS", &specs)],
        &["--json", "report", &id, "--markdown", "-"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("both write to stdout"), "{stderr}");
    // Without a URL the link is report.html's path relative to the summary.
    let (code, _, err) = common::l1(
        &target,
        &[("L1_SPECS", &specs)],
        &["report", &id, "--markdown", md_path.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
    let md2 = std::fs::read_to_string(&md_path).unwrap();
    let link = format!("[HTML report](target/l1/runs/{id}/report.html)");
    assert!(md2.contains(&link), "{link} in {md2}");

    lint(&md_path);
    common::assert_isolated(&[&id]);
}

fn lint(md: &Path) {
    use l1_reports::checks;
    checks::require_or_skip(
        "markdownlint-cli2 on the Markdown summary",
        checks::markdownlint(md),
    );
}
