//! A small GitHub Actions runner for `ci_templates.rs`: executes a workflow's jobs on this
//! machine, each job (and matrix entry) in its own directory as if on its own runner, with the
//! scenario's expressions, and emulates the artifact and Pages actions by copying files.

use super::{STUBBED_STEPS, root, text};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Executes GitHub workflows the way Actions would, on this machine: jobs in `needs` order,
/// each matrix entry, `run:` steps with `bash --noprofile --norc -eo pipefail`, `${{ … }}`
/// expressions from [`Runner::expression`] (an unknown one fails the test), step and job
/// outputs through `GITHUB_OUTPUT`. `if:` conditions are not evaluated, with one exception: after
/// a step failed, the rest of its job runs only the steps whose `if:` holds `!cancelled()` or
/// `always()`, as on GitHub, and the job's result is `failure`. Every job runs: the scenarios
/// here have something selected, from a branch of the same repository.
pub struct Runner {
    scratch: PathBuf,
    /// Expression text → value: the `github`, `secrets` and `vars` contexts of the scenario.
    pub context: BTreeMap<String, String>,
    /// Variables the test sets over the workflow's own: the fixture root, and per job (and
    /// matrix entry) `L1_CI_OUT` and `L1_TARGET_DIR` under [`Runner::runner`].
    overrides: BTreeMap<String, String>,
    /// The current job's own directory, as if each job ran on its own machine:
    /// `<scratch>/runners/<job>[-<partition>]`.
    runner: PathBuf,
    /// `jobs.<id>.outputs` and results of finished jobs.
    pub needs: BTreeMap<String, BTreeMap<String, String>>,
    /// The bodies the stubbed `comment` step would have posted.
    pub comments: Vec<String>,
    /// Step summaries written, per job.
    pub summaries: BTreeMap<String, String>,
    /// The steps that failed, as `job/step`.
    pub failed: Vec<String>,
}

impl Runner {
    pub fn new(scratch: &Path, fixture: &Path, store: &Path) -> Self {
        let ctx = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect()
        };
        let root = root().to_string_lossy().into_owned();
        Runner {
            scratch: scratch.to_path_buf(),
            context: ctx(&[
                ("github.run_id", "4242"),
                ("github.run_attempt", "1"),
                ("github.workspace", &root),
                ("github.server_url", "https://github.example"),
                ("github.repository", "example/l1"),
                ("github.token", "stub"),
                ("github.event.pull_request.number", "7"),
                ("secrets.L1_STORE", &store.to_string_lossy()),
                // Blank means unset (l1 pushes nothing); the test sets a real one when it can.
                ("secrets.L1_PUSHGATEWAY", ""),
            ]),
            overrides: ctx(&[("L1_ROOT", &fixture.to_string_lossy())]),
            runner: scratch.to_path_buf(),
            needs: BTreeMap::new(),
            comments: Vec::new(),
            summaries: BTreeMap::new(),
            failed: Vec::new(),
        }
    }

    fn expression(
        &self,
        expr: &str,
        env: &BTreeMap<String, String>,
        matrix: &BTreeMap<String, String>,
        steps: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> String {
        if let Some(v) = self.context.get(expr) {
            return v.clone();
        }
        let parts: Vec<&str> = expr.split('.').collect();
        let found = match parts.as_slice() {
            ["env", k] => env.get(*k).cloned(),
            ["matrix", k] => matrix.get(*k).cloned(),
            ["steps", id, "outputs", k] => steps.get(*id).and_then(|o| o.get(*k)).cloned(),
            ["needs", job, "outputs", k] => self.needs.get(*job).and_then(|o| o.get(*k)).cloned(),
            ["needs", job, "result"] => self.needs.get(*job).map(|_| {
                let failed = self
                    .failed
                    .iter()
                    .any(|f| f.starts_with(&format!("{job}/")));
                (if failed { "failure" } else { "success" }).to_string()
            }),
            _ => None,
        };
        found.unwrap_or_else(|| panic!("the test runner does not know `${{{{ {expr} }}}}`"))
    }

    /// `s` with every `${{ expr }}` replaced.
    fn eval(
        &self,
        s: &str,
        env: &BTreeMap<String, String>,
        matrix: &BTreeMap<String, String>,
        steps: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> String {
        let mut out = String::new();
        let mut rest = s;
        while let Some(i) = rest.find("${{") {
            out.push_str(&rest[..i]);
            let end = rest[i..].find("}}").expect("an unclosed ${{") + i;
            out.push_str(&self.expression(rest[i + 3..end].trim(), env, matrix, steps));
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    }

    fn env_layer(
        &self,
        env: &mut BTreeMap<String, String>,
        layer: &Value,
        matrix: &BTreeMap<String, String>,
        steps: &BTreeMap<String, BTreeMap<String, String>>,
    ) {
        if let Some(map) = layer.as_object() {
            for (k, v) in map {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let v = self.eval(&v, env, matrix, steps);
                env.insert(k.clone(), v);
            }
        }
        env.extend(self.overrides.clone());
        let dir = |d: &str| self.runner.join(d).to_string_lossy().into_owned();
        env.insert("L1_CI_OUT".into(), dir("ci-out"));
        env.insert("L1_TARGET_DIR".into(), dir("target"));
    }

    /// Runs every job of `workflow` (a path under the repository root).
    pub fn run_workflow(&mut self, workflow: &str) {
        let raw = std::fs::read_to_string(root().join(workflow)).unwrap();
        let doc: Value = serde_saphyr::from_str(&raw).unwrap_or_else(|e| panic!("{workflow}: {e}"));
        let jobs = doc["jobs"].as_object().unwrap();
        let mut done: Vec<String> = Vec::new();
        while done.len() < jobs.len() {
            let (id, job) = jobs
                .iter()
                .find(|(id, job)| {
                    !done.contains(id) && needs_of(job).iter().all(|n| done.contains(n))
                })
                .unwrap_or_else(|| panic!("{workflow}: a `needs` cycle or an unknown job"));
            let partitions: Vec<BTreeMap<String, String>> =
                match job["strategy"]["matrix"].as_object() {
                    None => vec![BTreeMap::new()],
                    Some(m) => {
                        assert_eq!(m.len(), 1, "{workflow}/{id}: one matrix axis expected");
                        let (axis, values) = m.iter().next().unwrap();
                        values
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|v| BTreeMap::from([(axis.clone(), v.to_string())]))
                            .collect()
                    }
                };
            let mut outputs = BTreeMap::new();
            for matrix in &partitions {
                outputs = self.run_job(workflow, id, job, &doc["env"], matrix);
            }
            self.needs.insert(id.clone(), outputs);
            done.push(id.clone());
        }
    }

    fn run_job(
        &mut self,
        workflow: &str,
        id: &str,
        job: &Value,
        workflow_env: &Value,
        matrix: &BTreeMap<String, String>,
    ) -> BTreeMap<String, String> {
        let what = format!("{workflow} job {id} {matrix:?}");
        eprintln!("=== {what}");
        let name = matrix
            .values()
            .fold(id.to_string(), |n, v| format!("{n}-{v}"));
        self.runner = self.scratch.join("runners").join(name);
        std::fs::create_dir_all(&self.runner).unwrap();
        let mut steps: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut env = BTreeMap::new();
        self.env_layer(&mut env, workflow_env, matrix, &steps);
        self.env_layer(&mut env, &job["env"], matrix, &steps);
        let summary = self.runner.join("step-summary.md");
        let mut failed_here = false;
        for (n, step) in job["steps"].as_array().unwrap().iter().enumerate() {
            let step_id = step["id"]
                .as_str()
                .map_or_else(|| format!("#{n}"), str::to_string);
            let runs_after_failure = step["if"]
                .as_str()
                .is_some_and(|c| c.contains("!cancelled()") || c.contains("always()"));
            if failed_here && !runs_after_failure {
                eprintln!("--- {what}: step {step_id} skipped (an earlier step failed)");
                continue;
            }
            let mut env = env.clone();
            self.env_layer(&mut env, &step["env"], matrix, &steps);
            if let Some(uses) = step["uses"].as_str() {
                let with = |k: &str| {
                    step["with"][k]
                        .as_str()
                        .map(|v| self.eval(v, &env, matrix, &steps))
                };
                self.uses(&what, uses, &with);
                continue;
            }
            let script = step["run"]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: step {step_id} has neither `uses` nor `run`"));
            if let Some((_, why)) = STUBBED_STEPS.iter().find(|(s, _)| *s == step_id) {
                eprintln!("--- {what}: step `{step_id}` stubbed: {why}");
                if step_id == "comment" {
                    let body = env["L1_CI_OUT"].clone() + "/verdict.md";
                    assert!(
                        script.contains("verdict.md"),
                        "{what}: the comment posts {script}"
                    );
                    self.comments.push(std::fs::read_to_string(&body).unwrap());
                }
                continue;
            }
            let output = self.runner.join(format!("output-{step_id}"));
            std::fs::write(&output, "").unwrap();
            eprintln!("--- {what}: step {step_id}:\n{script}");
            let mut cmd = Command::new("bash");
            cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
                .current_dir(root());
            for (k, _) in std::env::vars_os() {
                let k = k.to_string_lossy();
                if k.starts_with("L1_") || k.starts_with("NEXTEST") || k.starts_with("__NEXTEST") {
                    cmd.env_remove(&*k);
                }
            }
            let cargo_dir = Path::new(env!("CARGO")).parent().unwrap().to_path_buf();
            let path = std::env::join_paths(std::iter::once(cargo_dir).chain(
                std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
            ))
            .unwrap();
            cmd.env("PATH", path)
                .envs(&env)
                .env("GITHUB_OUTPUT", &output)
                .env("GITHUB_STEP_SUMMARY", &summary);
            let out = cmd.output().unwrap();
            let t = text(&out);
            eprintln!("{t}");
            if !out.status.success() {
                eprintln!("--- {what}: step {step_id} failed ({})", out.status);
                self.failed.push(format!("{id}/{step_id}"));
                failed_here = true;
            }
            let mut outs = BTreeMap::new();
            for line in std::fs::read_to_string(&output).unwrap().lines() {
                let (k, v) = line.split_once('=').unwrap_or_else(|| {
                    panic!("{what}: step {step_id}: a GITHUB_OUTPUT line that is not k=v: {line}")
                });
                outs.insert(k.to_string(), v.to_string());
            }
            steps.insert(step_id, outs);
        }
        if let Ok(s) = std::fs::read_to_string(&summary) {
            self.summaries.insert(id.to_string(), s);
        }
        job["outputs"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            self.eval(v.as_str().unwrap(), &env, matrix, &steps),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The actions the templates use, emulated: artifacts are copied into and out of
    /// `<scratch>/artifacts/<name>`, the Pages artifact must hold `index.html`; checkout is a
    /// no-op (the test runs in the checkout), Pages deployment a stub. Any other action fails.
    fn uses(&self, what: &str, uses: &str, with: &dyn Fn(&str) -> Option<String>) {
        let action = uses.split('@').next().unwrap();
        let store = |name: &str| self.scratch.join("artifacts").join(name);
        match action {
            "actions/checkout" | "actions/deploy-pages" => {}
            "actions/upload-artifact" => {
                let name = with("name").unwrap();
                let dest = store(&name);
                std::fs::create_dir_all(&dest).unwrap();
                for p in with("path")
                    .unwrap()
                    .lines()
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                {
                    let src = root().join(p);
                    if !src.exists() {
                        assert_eq!(
                            with("if-no-files-found").as_deref(),
                            Some("ignore"),
                            "{what}: artifact {name}: no {p}"
                        );
                        continue;
                    }
                    cp(&src, &dest, src.is_dir());
                }
            }
            "actions/download-artifact" => {
                let name = with("name").unwrap();
                let dest = PathBuf::from(with("path").unwrap());
                assert!(
                    dest.starts_with(&self.scratch),
                    "{what}: a download outside the scratch directory: {}",
                    dest.display()
                );
                std::fs::create_dir_all(&dest).unwrap();
                cp(&store(&name), &dest, true);
            }
            "actions/upload-pages-artifact" => {
                let site = PathBuf::from(with("path").unwrap());
                assert!(
                    site.join("index.html").is_file(),
                    "{what}: the Pages site {} has no index.html",
                    site.display()
                );
            }
            other => panic!("{what}: the test runner does not emulate `{other}`"),
        }
    }
}

/// Copies `src` into `dest`: a directory's contents, or a file.
fn cp(src: &Path, dest: &Path, contents: bool) {
    let mut cmd = Command::new("cp");
    cmd.arg("-R");
    if contents {
        cmd.arg(format!("{}/.", src.display()));
    } else {
        cmd.arg(src);
    }
    let out = cmd.arg(dest).output().unwrap();
    assert!(out.status.success(), "cp {}: {}", src.display(), text(&out));
}

fn needs_of(job: &Value) -> Vec<String> {
    match &job["needs"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}
