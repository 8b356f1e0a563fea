//! The CI templates under `ci/` (docs/src/ci.md, "Templates"), checked three ways:
//!
//! 1. every GitHub workflow passes actionlint (with shellcheck on its `run:` scripts when
//!    shellcheck is installed), and every GitLab file validates against the GitLab CI JSON
//!    schema (`check-jsonschema --builtin-schema vendor.gitlab-ci`, vendored: offline); each
//!    tool also rejects a broken file, so a check that accepts everything fails. Both tools
//!    come from `scripts/setup-doc-tools.sh` (venv `~/.cache/l1/pyvenv-docs`) or `PATH`;
//!    without them the tests skip, except under `L1_REQUIRE_ENGINES=1`;
//! 2. every `l1 …` and `cargo nextest run|archive …` command in ALL templates (GPU ones
//!    included) parses against the current CLIs: run with `--help`
//!    appended, clap rejects an unknown subcommand or flag before it prints the help;
//! 3. the CPU-only GitHub workflows run: [`Runner`] executes their jobs in `needs` order (each
//!    matrix entry, each step's `run:` script with bash as GitHub does) from the repository
//!    root, on a fixture repository of seeded sim specs (`L1_ROOT`), with a scratch store,
//!    target directory and artifact directory, never the repository's `target/l1`. What is
//!    stubbed is listed in [`STUBBED_STEPS`] and [`Runner::uses`]: steps that need the network
//!    or GitHub (the engine install, the PR comment, artifact storage and Pages, emulated by
//!    copying files). The nightly's metrics go to a real Pushgateway on loopback when one is
//!    installed;
//! 4. the CPU-only GitLab pipelines run: [`GitLab`] executes `cpu.gitlab-ci.yml`'s nightly
//!    (a schedule) and two merge-request pipelines on the same kind of fixture, each job in its
//!    own project directory, with artifacts and dotenv reports passed along `needs:`. What is
//!    stubbed is listed in [`STUBBED_GITLAB_LINES`]: the engine install and the MR note.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;
#[path = "ci_templates/gitlab.rs"]
mod gitlab;
#[path = "ci_templates/runner.rs"]
mod runner;

use common::root;
use gitlab::GitLab;
use runner::Runner;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const GITHUB: &[&str] = &[
    "ci/github/nightly.yml",
    "ci/github/pull-request.yml",
    "ci/github/cpu-nightly.yml",
    "ci/github/cpu-pull-request.yml",
    "ci/github/pull-request-ab.yml",
];
const GITLAB: &[&str] = &["ci/gitlab/.gitlab-ci.yml", "ci/gitlab/cpu.gitlab-ci.yml"];

/// Run steps (by `id`) that the runner does not execute, and why. Every one must exist in the
/// CPU workflows, so this list cannot go stale.
const STUBBED_STEPS: &[(&str, &str)] = &[
    (
        "engines",
        "installs the CPU engines from the network (scripts/setup-engines.sh); the fixture specs use the sim engine",
    ),
    (
        "comment",
        "posts the verdict on the pull request through GitHub's API (the test checks the body file it would post)",
    ),
];

/// GitLab `script:` lines (by how they start) that the GitLab runner does not execute, and why.
/// Every one must exist in `ci/gitlab/cpu.gitlab-ci.yml`, so this list cannot go stale.
const STUBBED_GITLAB_LINES: &[(&str, &str)] = &[
    (
        "scripts/setup-engines.sh",
        "installs the CPU engines from the network; the fixture specs use the sim engine",
    ),
    (
        "curl ",
        "posts the verdict as an MR note through GitLab's API (the test reads the body it would post)",
    ),
];

// ---------------------------------------------------------------------------------------------
// 1. actionlint and the GitLab CI schema

/// A tool as `scripts/setup-doc-tools.sh` installs it: on `PATH`, else in the cached venv.
fn doc_tool(name: &str) -> Option<PathBuf> {
    let works = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let on_path = PathBuf::from(name);
    if works(&on_path) {
        return Some(on_path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let venv = cache.join("l1/pyvenv-docs/bin").join(name);
    works(&venv).then_some(venv)
}

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn actionlint(tool: &Path, files: &[PathBuf]) -> std::process::Output {
    Command::new(tool)
        .current_dir(root())
        .arg("-no-color")
        .arg("-config-file")
        .arg(root().join("ci/github/actionlint.yaml"))
        .args(files)
        .output()
        .unwrap()
}

#[test]
fn github_workflows_pass_actionlint() {
    let Some(tool) = doc_tool("actionlint").or_else(|| {
        l1_testkit::skip(
            "actionlint is not installed (scripts/setup-doc-tools.sh installs it into ~/.cache/l1/pyvenv-docs)",
        )
    }) else {
        return;
    };
    let shellcheck = Command::new("shellcheck").arg("--version").output().is_ok();
    eprintln!(
        "actionlint {}; shellcheck on run: scripts: {}",
        tool.display(),
        if shellcheck {
            "yes"
        } else {
            "no (not on PATH)"
        }
    );
    let files: Vec<PathBuf> = GITHUB.iter().map(|f| root().join(f)).collect();
    let out = actionlint(&tool, &files);
    assert!(out.status.success(), "actionlint:\n{}", text(&out));

    // The same check rejects a workflow with an unknown runner label and a bad expression.
    let scratch = common::RemoveOnDrop(l1_testkit::fresh_dir("ci-actionlint"));
    let broken = scratch.0.join("broken.yml");
    let nightly = std::fs::read_to_string(root().join(GITHUB[0])).unwrap();
    let bad = nightly
        .replace("[self-hosted, gpu]", "[self-hosted, gpuu]")
        .replace("github.run_attempt", "github.run_attempmt");
    assert_ne!(bad, nightly);
    std::fs::write(&broken, bad).unwrap();
    let out = actionlint(&tool, &[broken]);
    let t = text(&out);
    assert!(
        !out.status.success(),
        "actionlint accepted a broken workflow"
    );
    assert!(
        t.contains("gpuu") && t.contains("run_attempmt"),
        "actionlint named neither mistake:\n{t}"
    );
}

#[test]
fn gitlab_files_validate_against_the_gitlab_ci_schema() {
    let Some(tool) = doc_tool("check-jsonschema").or_else(|| {
        l1_testkit::skip(
            "check-jsonschema is not installed (scripts/setup-doc-tools.sh installs it into ~/.cache/l1/pyvenv-docs)",
        )
    }) else {
        return;
    };
    let check = |files: &[PathBuf]| {
        Command::new(&tool)
            .args(["--builtin-schema", "vendor.gitlab-ci", "--color", "never"])
            .args(files)
            .output()
            .unwrap()
    };
    let files: Vec<PathBuf> = GITLAB.iter().map(|f| root().join(f)).collect();
    let out = check(&files);
    assert!(out.status.success(), "GitLab CI schema:\n{}", text(&out));

    let scratch = common::RemoveOnDrop(l1_testkit::fresh_dir("ci-gitlab-schema"));
    let broken = scratch.0.join("broken.gitlab-ci.yml");
    let gitlab = std::fs::read_to_string(&files[0]).unwrap();
    let bad = gitlab.replacen("  script:\n", "  scripts:\n", 1);
    assert_ne!(bad, gitlab);
    std::fs::write(&broken, bad).unwrap();
    let out = check(&[broken]);
    assert!(
        !out.status.success() && text(&out).contains("scripts"),
        "the schema accepted a job with `scripts:`:\n{}",
        text(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Every l1 and nextest command line parses

/// The shell script lines of a template: GitHub `run:` blocks, GitLab `script:` items (with the
/// `.`-templates' and `before_script`/`after_script` too).
fn scripts_of(path: &str) -> Vec<String> {
    let raw = std::fs::read_to_string(root().join(path)).unwrap();
    let doc: Value = serde_saphyr::from_str(&raw).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut out = Vec::new();
    if path.starts_with("ci/github/") {
        for job in doc["jobs"].as_object().unwrap().values() {
            for step in job["steps"].as_array().unwrap() {
                if let Some(run) = step["run"].as_str() {
                    out.push(run.to_string());
                }
            }
        }
    } else {
        for job in doc.as_object().unwrap().values() {
            for key in ["before_script", "script", "after_script"] {
                if let Some(lines) = job.get(key).and_then(Value::as_array) {
                    out.extend(lines.iter().filter_map(|l| l.as_str().map(str::to_string)));
                }
            }
        }
    }
    out
}

/// One shell word with its variables and command substitutions replaced by values that parse:
/// `$(…)` is a filterset, `$PARTITION` a partition, the node index, total, budget and round numbers,
/// any other variable `x`.
fn word(w: &str) -> String {
    let mut out = String::new();
    let mut chars = w.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => out.extend(chars.by_ref().take_while(|&c| c != '\'')),
            '"' => {}
            '$' if chars.peek() == Some(&'(') => {
                let mut depth = 0;
                for c in chars.by_ref() {
                    depth += i32::from(c == '(') - i32::from(c == ')');
                    if depth == 0 {
                        break;
                    }
                }
                out.push_str("all()");
            }
            '$' => {
                let braced = chars.peek() == Some(&'{');
                if braced {
                    chars.next();
                }
                let mut name = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' {
                        name.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if braced {
                    for c in chars.by_ref() {
                        if c == '}' {
                            break;
                        }
                    }
                }
                out.push_str(match name.as_str() {
                    "PARTITION" => "hash:1/2",
                    "CI_NODE_INDEX" => "1",
                    "CI_NODE_TOTAL" => "2",
                    "MAX_TRIALS" | "L1_PR_MAX_TRIALS" => "200",
                    "ROUNDS" | "L1_AB_ROUNDS" => "6",
                    "l1" => "l1",
                    _ => "x",
                });
            }
            c => out.push(c),
        }
    }
    out
}

/// The simple commands of a script: continuation lines joined, comments dropped, split into
/// words (quotes and `$(…)` kept whole) and at `|`, `||`, `&&`, `;`, `{`, `}`, with
/// redirections and their targets removed.
fn commands(script: &str) -> Vec<Vec<String>> {
    let joined = script.replace("\\\n", " ");
    let mut cmds = vec![Vec::new()];
    for line in joined.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let mut words: Vec<String> = Vec::new();
        let (mut cur, mut quote, mut depth) = (String::new(), None::<char>, 0);
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (quote, c) {
                (Some(q), c) if c == q && depth == 0 => {
                    quote = None;
                    cur.push(c);
                }
                (None, '\'' | '"') if depth == 0 => {
                    quote = Some(c);
                    cur.push(c);
                }
                (_, '$') if chars.peek() == Some(&'(') => {
                    depth += 1;
                    cur.push(c);
                    cur.push(chars.next().unwrap());
                }
                (_, '(') if depth > 0 => {
                    depth += 1;
                    cur.push(c);
                }
                (_, ')') if depth > 0 => {
                    depth -= 1;
                    cur.push(c);
                }
                (None, ' ' | '\t') if depth == 0 => {
                    if !cur.is_empty() {
                        words.push(std::mem::take(&mut cur));
                    }
                }
                (None, '#') if depth == 0 && cur.is_empty() => break,
                _ => cur.push(c),
            }
        }
        if !cur.is_empty() {
            words.push(cur);
        }
        let mut skip_next = false;
        for w in words {
            if skip_next {
                skip_next = false;
                continue;
            }
            match w.as_str() {
                "|" | "||" | "&&" | ";" | "{" | "}" | "then" | "else" | "fi" | "do" | "done" => {
                    cmds.push(Vec::new());
                }
                ">" | ">>" | "<" | "2>" => skip_next = true,
                w if w.starts_with('>') || w.starts_with("2>") || w == "1>&2" => {}
                w if w.ends_with(';') => {
                    cmds.last_mut()
                        .unwrap()
                        .push(w.trim_end_matches(';').to_string());
                    cmds.push(Vec::new());
                }
                _ => cmds.last_mut().unwrap().push(w),
            }
        }
        cmds.push(Vec::new());
    }
    cmds.retain(|c| !c.is_empty());
    cmds
}

/// An `l1` command's arguments (after the binary), if `cmd` runs l1.
fn l1_args(cmd: &[String]) -> Option<Vec<String>> {
    let exe = word(&cmd[0]);
    (exe == "l1" || exe.ends_with("/l1")).then(|| cmd[1..].iter().map(|w| word(w)).collect())
}

#[test]
fn every_l1_and_nextest_command_in_the_templates_parses() {
    let l1 = env!("CARGO_BIN_EXE_l1");
    let parses = |exe: &str, pre: &[&str], args: &[String]| {
        let out = Command::new(exe)
            .args(pre)
            .args(args)
            .arg("--help")
            .current_dir(root())
            .output()
            .unwrap();
        (out.status.success(), text(&out))
    };
    // The check rejects what it should: an unknown flag before `--help`.
    assert!(!parses(l1, &[], &["report".into(), "--bogus".into()]).0);
    assert!(
        !parses(
            env!("CARGO"),
            &["nextest"],
            &["run".into(), "--bogus".into()]
        )
        .0
    );

    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    for file in GITHUB.iter().chain(GITLAB) {
        for script in scripts_of(file) {
            for cmd in commands(&script) {
                let (what, ok, out) = if let Some(args) = l1_args(&cmd) {
                    let (ok, out) = parses(l1, &[], &args);
                    (format!("l1 {}", args[0]), ok, out)
                } else if cmd.len() > 2
                    && cmd[0] == "cargo"
                    && cmd[1] == "nextest"
                    && ["run", "archive"].contains(&cmd[2].as_str())
                {
                    let args: Vec<String> = cmd[2..].iter().map(|w| word(w)).collect();
                    let (ok, out) = parses(env!("CARGO"), &["nextest"], &args);
                    (format!("cargo nextest {}", cmd[2]), ok, out)
                } else {
                    continue;
                };
                assert!(ok, "{file}: `{}` does not parse:\n{out}", cmd.join(" "));
                *checked.entry(what).or_default() += 1;
            }
        }
    }
    eprintln!("checked: {checked:?}");
    for expected in [
        "l1 report",
        "l1 affected",
        "l1 ab",
        "cargo nextest run",
        "cargo nextest archive",
    ] {
        assert!(
            checked.contains_key(expected),
            "no `{expected}` command was found in the templates: {checked:?}"
        );
    }
    // nightly + PR measure steps in two GitHub and two GitLab flavours each.
    assert_eq!(checked["cargo nextest run"], 8, "{checked:?}");
}

// ---------------------------------------------------------------------------------------------
// 3. The CPU-only workflows run

/// A seeded sim spec of two targets (chat-short, batch-offline), six trials each; `{seed}` is
/// what the fixture pull request changes.
const FIXTURE_SPEC: &str = "kind: sweep
name: ci-sim-{name}
targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [{workload}]
space:
  mode: exhaustive
  dims:
    attention_backend: [flash_attn_v2, flash_attn_v3]
    activation_dtype: [bf16, fp8_e4m3]
baseline: engine-default
measure: { reps: 5, trim: 0.10, seed: {seed} }
gates:
  - { method: topk5, metric: output_tokens_per_s, margin: 0.03, k: 2 }
";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=ci", "-c", "user.email=ci@example.invalid"])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn write_specs(dir: &Path, seed: u32) {
    for (name, workload) in [("chat", "chat-short"), ("batch", "batch-offline")] {
        let spec = FIXTURE_SPEC
            .replace("{name}", name)
            .replace("{workload}", workload)
            .replace("{seed}", &seed.to_string());
        std::fs::write(dir.join(format!("specs/ci-sim-{name}.yaml")), spec).unwrap();
    }
}

/// A fixture repository for `L1_ROOT`: the repository's catalogs and two seeded sim specs,
/// committed at `base`; HEAD changes both specs' seed (two targets affected). Returns the base
/// commit.
fn fixture_repo(dir: &Path) -> String {
    let copy = Command::new("cp")
        .arg("-R")
        .arg(root().join("catalogs"))
        .arg(dir.join("catalogs"))
        .output()
        .unwrap();
    assert!(copy.status.success(), "{}", text(&copy));
    std::fs::create_dir_all(dir.join("specs")).unwrap();
    write_specs(dir, 11);
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "--quiet", "-m", "base"]);
    let base = git(dir, &["rev-parse", "HEAD"]);
    write_specs(dir, 12);
    git(
        dir,
        &["commit", "--quiet", "-am", "change both specs' seed"],
    );
    base
}

/// A real Pushgateway on loopback (Debian's `prometheus-pushgateway`), stopped when dropped;
/// `None` (with the reason printed) when it is not installed, except under
/// `L1_REQUIRE_ENGINES=1`.
struct Pushgateway {
    addr: String,
    child: std::process::Child,
}

impl Pushgateway {
    fn start() -> Option<Self> {
        let bin = ["prometheus-pushgateway", "pushgateway"]
            .into_iter()
            .find(|b| Command::new(b).arg("--version").output().is_ok())
            .or_else(|| {
                l1_testkit::skip(
                    "prometheus-pushgateway is not installed: the nightly's metrics push is not checked",
                )
            })?;
        let addr = format!("127.0.0.1:{}", l1_testkit::free_port());
        let child = Command::new(bin)
            .arg(format!("--web.listen-address={addr}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let gateway = Pushgateway { addr, child };
        let ready = (0..100).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            gateway.get("/-/ready").is_some()
        });
        assert!(ready, "the Pushgateway did not start on {}", gateway.addr);
        Some(gateway)
    }

    fn get(&self, path: &str) -> Option<String> {
        let out = Command::new("curl")
            .args(["--silent", "--fail"])
            .arg(format!("http://{}{path}", self.addr))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn metrics(&self) -> String {
        self.get("/metrics")
            .expect("the Pushgateway answers /metrics")
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `summary.json` that `l1 report` wrote for `run` on the runner of job `job`.
fn summary_json(scratch: &Path, job: &str, run: &str) -> Value {
    let p = scratch
        .join("runners")
        .join(job)
        .join("target/l1/runs")
        .join(run)
        .join("summary.json");
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

#[test]
fn cpu_workflows_run_nightly_then_a_pull_request() {
    let scratch = common::RemoveOnDrop(l1_testkit::fresh_dir("ci-templates-run"));
    let dir = scratch.0.as_path();
    let fixture = dir.join("repo");
    std::fs::create_dir_all(&fixture).unwrap();
    let base = fixture_repo(&fixture);
    let store = dir.join("store.sqlite");
    for (id, _) in STUBBED_STEPS {
        assert!(
            [
                "ci/github/cpu-nightly.yml",
                "ci/github/cpu-pull-request.yml"
            ]
            .iter()
            .any(|f| std::fs::read_to_string(root().join(f))
                .unwrap()
                .contains(&format!("id: {id}\n"))),
            "the stubbed step `{id}` is in no CPU workflow"
        );
    }

    // The nightly: build, two partitions, the report of the whole run from the shared store,
    // its metrics pushed to a real Pushgateway when one is installed.
    let gateway = Pushgateway::start();
    let mut runner = Runner::new(dir, &fixture, &store);
    if let Some(g) = &gateway {
        runner.context.insert(
            "secrets.L1_PUSHGATEWAY".into(),
            format!("http://{}", g.addr),
        );
    }
    runner.run_workflow("ci/github/cpu-nightly.yml");
    assert!(runner.failed.is_empty(), "{:?}", runner.failed);
    if let Some(g) = &gateway {
        let metrics = g.metrics();
        assert!(
            metrics.lines().any(|l| l.starts_with("inferenceiq_l1_")
                && l.contains("instance=\"github-cpu-nightly\"")
                && l.contains("job=\"l1\"")),
            "the report job pushed no metrics:\n{metrics}"
        );
    }
    let nightly = summary_json(dir, "report", "cpu-nightly-4242-1");
    // The report job measured nothing: it restored both partitions' trials from the store.
    assert_eq!(
        (
            &nightly["status"],
            &nightly["trials_passed"],
            &nightly["trials_failed"]
        ),
        (&Value::from("passed"), &Value::from(12), &Value::from(0)),
        "{nightly:#}"
    );
    // Each partition's own run directory holds only its part of the trials.
    let partition_trials: Vec<usize> = (1..=2)
        .map(|k| {
            let trials = dir.join(format!("artifacts/l1-partition-{k}/trials"));
            std::fs::read_dir(&trials).map_or(0, Iterator::count)
        })
        .collect();
    assert!(
        partition_trials.iter().all(|&n| n < 12) && partition_trials.iter().sum::<usize>() == 12,
        "trial records per partition: {partition_trials:?}"
    );
    let md = &runner.summaries["report"];
    assert!(
        md.contains("ci-sim-chat") && md.contains("ci-sim-batch"),
        "{md}"
    );
    assert!(dir.join("runners/report/ci-out/site/index.html").is_file());
    assert!(dir.join("artifacts/l1-report/report.html").is_file());

    // A pull request changing both specs (12 trials) under a budget of 6: one target runs, the
    // other is named as left out; the verdict passes.
    let pr = |base: &str, number: &str| {
        let mut runner = Runner::new(dir, &fixture, &store);
        let ctx = [
            ("github.event.pull_request.base.sha", base),
            ("github.event.pull_request.number", number),
            (
                "github.event.pull_request.head.repo.full_name",
                "example/l1",
            ),
            ("vars.L1_PR_MAX_TRIALS || '200'", "6"),
        ];
        for (k, v) in ctx {
            runner.context.insert(k.into(), v.into());
        }
        runner.run_workflow("ci/github/cpu-pull-request.yml");
        runner
    };
    let runner = pr(&base, "7");
    assert!(runner.failed.is_empty(), "{:?}", runner.failed);
    assert_eq!(runner.needs["select"]["trials"], "6");
    let summary = summary_json(dir, "verdict", "cpu-pr-7-4242-1");
    assert_eq!(
        (&summary["status"], &summary["trials_passed"]),
        (&Value::from("passed"), &Value::from(6)),
        "{summary:#}"
    );
    assert_eq!(runner.comments.len(), 1);
    let comment = &runner.comments[0];
    assert!(comment.contains("ci-sim-batch"), "{comment}");
    let left_out = comment
        .split("Left out by the budget")
        .nth(1)
        .unwrap_or_else(|| panic!("{comment}"));
    assert!(
        left_out.contains("ci-sim-chat") && left_out.contains("6 trial(s)"),
        "{comment}"
    );

    // A pull request adding a combo whose engine crashes: the trial and its gate fail, the
    // verdict is still posted, and the check fails.
    let head = git(&fixture, &["rev-parse", "HEAD"]);
    std::fs::write(
        fixture.join("specs/ci-sim-fault.yaml"),
        "kind: sweep\nname: ci-sim-fault\ntargets:\n  engines: [sim@1.0]\n  models: [llama-3.1-8b]\n  hardware: [h100-sxm]\n  workloads: [chat-short]\nspace:\n  pins: { attention_backend: flash_attn_v3 }\n  knobs: { fault: [crash] }\nmeasure: { reps: 3, seed: 5 }\ngates:\n  - { method: manual }\n",
    )
    .unwrap();
    git(&fixture, &["add", "-A"]);
    git(&fixture, &["commit", "--quiet", "-m", "a crashing combo"]);
    let runner = pr(&head, "8");
    assert_eq!(runner.needs["select"]["trials"], "3", "{:?}", runner.needs);
    assert!(
        runner.failed.iter().any(|f| f.starts_with("measure/"))
            && runner.failed.iter().any(|f| f.starts_with("verdict/"))
            && runner
                .failed
                .iter()
                .all(|f| f.starts_with("measure/") || f.starts_with("verdict/")),
        "the measure step and the verdict's last step fail: {:?}",
        runner.failed
    );
    let summary = summary_json(dir, "verdict", "cpu-pr-8-4242-1");
    assert_eq!(summary["status"], "failed", "{summary:#}");
    assert_eq!(
        runner.comments.len(),
        1,
        "the verdict is posted when the gate fails"
    );
    assert!(
        runner.comments[0].contains("ci-sim-fault"),
        "{}",
        runner.comments[0]
    );
    eprintln!(
        "the failing pull request's comment:\n{}",
        runner.comments[0]
    );
    common::assert_isolated(&["cpu-nightly-4242-1", "cpu-pr-7-4242-1", "cpu-pr-8-4242-1"]);
}

// ---------------------------------------------------------------------------------------------
// 4. The CPU-only GitLab pipelines run

#[test]
fn cpu_gitlab_pipelines_run_nightly_then_merge_requests() {
    const FILE: &str = "ci/gitlab/cpu.gitlab-ci.yml";
    let scratch = common::RemoveOnDrop(l1_testkit::fresh_dir("ci-gitlab-run"));
    let dir = scratch.0.as_path();
    let fixture = dir.join("repo");
    std::fs::create_dir_all(&fixture).unwrap();
    let base = fixture_repo(&fixture);
    let store = dir.join("store.sqlite");
    let yaml = std::fs::read_to_string(root().join(FILE)).unwrap();
    for (line, _) in STUBBED_GITLAB_LINES {
        assert!(
            yaml.contains(&format!("- {line}")) || yaml.contains(&format!("- '{line}")),
            "the stubbed line `{line}…` is in no script of {FILE}"
        );
    }
    let summary = |gl: &GitLab, job: &str, run: &str| -> Value {
        let p = gl.dirs[job]
            .join("target/l1/runs")
            .join(run)
            .join("summary.json");
        serde_json::from_str(
            &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
        .unwrap()
    };

    // The nightly (a pipeline schedule): build, two partitions, the report of the whole run
    // from the shared store, the Pages site.
    let mut nightly = GitLab::new(dir, "schedule", "5151", &store);
    nightly.run_pipeline(FILE, &fixture);
    assert!(nightly.failed.is_empty(), "{:?}", nightly.failed);
    assert!(
        !nightly.dirs.contains_key("select-mr") && nightly.dirs.contains_key("measure-nightly-2"),
        "the nightly ran the nightly's jobs: {:?}",
        nightly.dirs.keys()
    );
    let report = summary(&nightly, "report-nightly", "l1-cpu-5151");
    assert_eq!(
        (
            &report["status"],
            &report["trials_passed"],
            &report["trials_failed"]
        ),
        (&Value::from("passed"), &Value::from(12), &Value::from(0)),
        "{report:#}"
    );
    let partition_trials: Vec<usize> = (1..=2)
        .map(|k| {
            let trials = nightly.dirs[&format!("measure-nightly-{k}")]
                .join("target/l1/runs/l1-cpu-5151/trials");
            std::fs::read_dir(&trials).map_or(0, Iterator::count)
        })
        .collect();
    assert!(
        partition_trials.iter().all(|&n| n < 12) && partition_trials.iter().sum::<usize>() == 12,
        "trial records per partition: {partition_trials:?}"
    );
    assert!(nightly.dirs["pages"].join("public/index.html").is_file());

    // A merge request changing both specs (12 trials) under a budget of 6: one target runs,
    // the other is named as left out; the verdict passes and is posted.
    let mr = |base: &str, pipeline: &str, iid: &str| {
        let mut gl = GitLab::new(dir, "merge_request_event", pipeline, &store);
        for (k, v) in [
            ("CI_MERGE_REQUEST_DIFF_BASE_SHA", base),
            ("CI_MERGE_REQUEST_IID", iid),
            ("L1_PR_MAX_TRIALS", "6"),
        ] {
            gl.variables.insert(k.into(), v.into());
        }
        gl.run_pipeline(FILE, &fixture);
        gl
    };
    let gl = mr(&base, "5152", "3");
    assert!(gl.failed.is_empty(), "{:?}", gl.failed);
    assert!(
        !gl.dirs.contains_key("report-nightly"),
        "{:?}",
        gl.dirs.keys()
    );
    let env = std::fs::read_to_string(gl.dirs["select-mr"].join("select.env")).unwrap();
    assert_eq!(env, "trials=6\nleft_out=6\n");
    let verdict = summary(&gl, "verdict-mr", "l1-cpu-5152");
    assert_eq!(
        (&verdict["status"], &verdict["trials_passed"]),
        (&Value::from("passed"), &Value::from(6)),
        "{verdict:#}"
    );
    assert_eq!(gl.notes.len(), 1, "one MR note");
    let left_out = gl.notes[0]
        .split("Left out by the budget")
        .nth(1)
        .unwrap_or_else(|| panic!("{}", gl.notes[0]));
    assert!(
        gl.notes[0].contains("ci-sim-batch")
            && left_out.contains("ci-sim-chat")
            && left_out.contains("6 trial(s)"),
        "{}",
        gl.notes[0]
    );

    // A merge request adding a combo whose engine crashes: the measure jobs and the verdict
    // job fail, and the verdict is still posted.
    let head = git(&fixture, &["rev-parse", "HEAD"]);
    std::fs::write(
        fixture.join("specs/ci-sim-fault.yaml"),
        "kind: sweep\nname: ci-sim-fault\ntargets:\n  engines: [sim@1.0]\n  models: [llama-3.1-8b]\n  hardware: [h100-sxm]\n  workloads: [chat-short]\nspace:\n  pins: { attention_backend: flash_attn_v3 }\n  knobs: { fault: [crash] }\nmeasure: { reps: 3, seed: 5 }\ngates:\n  - { method: manual }\n",
    )
    .unwrap();
    git(&fixture, &["add", "-A"]);
    git(&fixture, &["commit", "--quiet", "-m", "a crashing combo"]);
    let gl = mr(&head, "5153", "4");
    assert!(
        gl.failed.iter().any(|f| f.starts_with("measure-mr"))
            && gl.failed.contains(&"verdict-mr".to_string())
            && gl
                .failed
                .iter()
                .all(|f| f.starts_with("measure-mr") || f == "verdict-mr"),
        "the measure jobs and the verdict job fail: {:?}",
        gl.failed
    );
    let verdict = summary(&gl, "verdict-mr", "l1-cpu-5153");
    assert_eq!(verdict["status"], "failed", "{verdict:#}");
    assert_eq!(
        gl.notes.len(),
        1,
        "the verdict is posted when the gate fails"
    );
    assert!(gl.notes[0].contains("ci-sim-fault"), "{}", gl.notes[0]);
    common::assert_isolated(&["l1-cpu-5151", "l1-cpu-5152", "l1-cpu-5153"]);
}
