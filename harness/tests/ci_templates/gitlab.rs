//! A small GitLab CI runner for `ci_templates.rs`: executes a pipeline of a `.gitlab-ci.yml` on
//! this machine, each job (and `parallel:` instance) in its own project directory as if on its
//! own runner, with artifacts and dotenv reports passed along `needs:`.

use super::{STUBBED_GITLAB_LINES, root, text};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Executes one pipeline of a GitLab CI file the way GitLab would, on this machine:
///
/// - the workflow's and each job's `rules:` are evaluated for the pipeline's
///   `CI_PIPELINE_SOURCE` (`if:` clauses of `$VAR == "value"` joined by `||`; a workflow rule's
///   `changes:` counts as matched: the scenarios change specs). `extends:` is merged as GitLab
///   does (hashes deep-merged, anything else replaced), in stage order, then file order;
/// - a job runs when its rule's `when` is `always`, or when no job before it failed
///   (`on_success`); its `needs:` must have run;
/// - each job and `parallel:` instance (`CI_NODE_INDEX`/`CI_NODE_TOTAL`) gets its own project
///   directory `<scratch>/gitlab/<pipeline>/<job>[-<k>]` (`CI_PROJECT_DIR`): the checkout there
///   is links to the repository's files (but `target`) and to the fixture repository's data and
///   history (`catalogs`, `specs`, `.git`), and its `script:` lines run there, in one
///   bash with `-eo pipefail`, as GitLab's shell executor does. The one exception is the
///   `build` job, which runs in the repository itself: cargo builds there, into the shared
///   target directory (a second checkout would rebuild the workspace). Its outputs go to
///   `$L1_CI_OUT`, which is the job's own `ci-out`;
/// - the artifacts of each job in `needs:` are copied into the job's directory at the same
///   paths, and their `artifacts:reports:dotenv` files become variables;
/// - the lines in [`STUBBED_GITLAB_LINES`] are not run: the engine install (network) and the MR
///   note (GitLab's API; the body it would post is kept in [`GitLab::notes`]).
pub struct GitLab {
    scratch: PathBuf,
    /// Project CI/CD variables and the pipeline's predefined ones.
    pub variables: BTreeMap<String, String>,
    /// Jobs that ran, with their artifact paths (relative) and dotenv variables.
    ran: BTreeMap<String, Ran>,
    /// The MR notes the stubbed `curl` would have posted.
    pub notes: Vec<String>,
    /// Jobs that failed (`job` or `job k/n`).
    pub failed: Vec<String>,
    /// The project directory of each job that ran (`job` or `job-k`).
    pub dirs: BTreeMap<String, PathBuf>,
}

#[derive(Default)]
struct Ran {
    /// The directories of its instances.
    dirs: Vec<PathBuf>,
    artifacts: Vec<String>,
    dotenv: BTreeMap<String, String>,
}

impl GitLab {
    /// A pipeline from `source` (`schedule`, `merge_request_event`, …) with id `pipeline`.
    pub fn new(scratch: &Path, source: &str, pipeline: &str, store: &Path) -> Self {
        let variables = [
            ("CI_PIPELINE_SOURCE", source),
            ("CI_PIPELINE_ID", pipeline),
            ("CI_PROJECT_ID", "17"),
            ("CI_API_V4_URL", "https://gitlab.example/api/v4"),
            ("CI_PAGES_URL", "https://example.gitlab.example/l1"),
            ("CI_JOB_URL", "https://gitlab.example/example/l1/-/jobs/1"),
            ("L1_STORE", &store.to_string_lossy()),
            ("L1_PUSHGATEWAY", ""),
            ("L1_GITLAB_TOKEN", "stub"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        GitLab {
            scratch: scratch.join("gitlab").join(pipeline),
            variables,
            ran: BTreeMap::new(),
            notes: Vec::new(),
            failed: Vec::new(),
            dirs: BTreeMap::new(),
        }
    }

    /// Runs the pipeline of `file` (a path under the repository root) on the fixture `fixture`.
    pub fn run_pipeline(&mut self, file: &str, fixture: &Path) {
        let raw = std::fs::read_to_string(root().join(file)).unwrap();
        let doc: Value = serde_saphyr::from_str(&raw).unwrap_or_else(|e| panic!("{file}: {e}"));
        let top = doc.as_object().unwrap();
        assert!(
            self.rule_when(&doc["workflow"]["rules"]).is_some(),
            "{file}: the workflow's rules run no pipeline for {}",
            self.variables["CI_PIPELINE_SOURCE"]
        );
        let stages: Vec<String> = doc["stages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        let globals = &doc["variables"];
        let mut any_failed = false;
        for stage in &stages {
            // The stage's jobs in the pipeline, run in `needs` order (file order otherwise).
            let mut pending: Vec<(String, Value, String)> = Vec::new();
            for (name, job) in top {
                if name.starts_with('.') || job.get("script").is_none() {
                    continue;
                }
                let job = resolve(top, job);
                if job["stage"].as_str() != Some(stage) {
                    continue;
                }
                let when = match job.get("rules") {
                    None => Some("on_success".to_string()),
                    Some(rules) => self.rule_when(rules),
                };
                if let Some(when) = when {
                    pending.push((name.clone(), job, when));
                }
            }
            while !pending.is_empty() {
                let i = pending
                    .iter()
                    .position(|(_, job, _)| {
                        needs_of(job)
                            .iter()
                            .all(|n| self.ran.contains_key(n) || !pending.iter().any(|p| &p.0 == n))
                    })
                    .unwrap_or_else(|| panic!("{file}: a `needs` cycle in stage {stage}"));
                let (name, job, when) = pending.remove(i);
                if when != "always" && any_failed {
                    eprintln!("=== {file} job {name}: skipped (an earlier job failed)");
                    continue;
                }
                let needs = needs_of(&job);
                for n in &needs {
                    assert!(
                        self.ran.contains_key(n),
                        "{file}: job {name} needs {n}, which did not run"
                    );
                }
                let total = job["parallel"].as_u64().unwrap_or(0);
                let instances: Vec<Option<(u64, u64)>> = if total == 0 {
                    vec![None]
                } else {
                    (1..=total).map(|k| Some((k, total))).collect()
                };
                let mut ran = Ran::default();
                for node in instances {
                    let ok =
                        self.run_job(file, &name, &job, globals, &needs, node, fixture, &mut ran);
                    if !ok {
                        any_failed = true;
                        self.failed.push(match node {
                            None => name.clone(),
                            Some((k, n)) => format!("{name} {k}/{n}"),
                        });
                    }
                }
                self.ran.insert(name, ran);
            }
        }
    }

    /// The `when` of the first rule that matches, if any.
    fn rule_when(&self, rules: &Value) -> Option<String> {
        for rule in rules.as_array().unwrap() {
            let holds = rule["if"].as_str().is_none_or(|c| self.condition(c));
            if holds {
                let when = rule["when"].as_str().unwrap_or("on_success");
                return (when != "never").then(|| when.to_string());
            }
        }
        None
    }

    /// A rule's `if:`: `$VAR == "value"` clauses joined by `||` (anything else fails the test).
    fn condition(&self, c: &str) -> bool {
        c.split("||").any(|clause| {
            let (var, value) = clause
                .trim()
                .split_once("==")
                .unwrap_or_else(|| panic!("the test runner does not evaluate `{c}`"));
            let var = var.trim().strip_prefix('$').unwrap();
            let value = value.trim().trim_matches('"');
            self.variables.get(var).map(String::as_str) == Some(value)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn run_job(
        &mut self,
        file: &str,
        name: &str,
        job: &Value,
        globals: &Value,
        needs: &[String],
        node: Option<(u64, u64)>,
        fixture: &Path,
        ran: &mut Ran,
    ) -> bool {
        let dir_name = node.map_or_else(|| name.to_string(), |(k, _)| format!("{name}-{k}"));
        let project = self.scratch.join(&dir_name);
        std::fs::create_dir_all(&project).unwrap();
        // The checkout: the repository's files, with the fixture's data and history.
        for e in std::fs::read_dir(root()).unwrap() {
            let name = e.unwrap().file_name();
            let fixture_part = ["catalogs", "specs", ".git"].map(std::ffi::OsStr::new);
            if name != "target" && !fixture_part.contains(&name.as_os_str()) {
                std::os::unix::fs::symlink(root().join(&name), project.join(&name)).unwrap();
            }
        }
        for link in ["catalogs", "specs", ".git"] {
            std::os::unix::fs::symlink(fixture.join(link), project.join(link)).unwrap();
        }
        // Artifacts of the jobs it needs, at the same paths; their dotenv variables.
        let mut vars = self.variables.clone();
        let mut dotenv = BTreeMap::new();
        for n in needs {
            let dep = &self.ran[n];
            for d in &dep.dirs {
                for a in &dep.artifacts {
                    let src = d.join(a.trim_end_matches('/'));
                    if src.exists() {
                        let dest = project.join(a.trim_end_matches('/'));
                        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                        cp(&src, &dest);
                    }
                }
            }
            dotenv.extend(dep.dotenv.clone());
        }
        vars.insert(
            "CI_PROJECT_DIR".into(),
            project.to_string_lossy().into_owned(),
        );
        if let Some((k, n)) = node {
            vars.insert("CI_NODE_INDEX".into(), k.to_string());
            vars.insert("CI_NODE_TOTAL".into(), n.to_string());
        }
        for layer in [globals, &job["variables"]] {
            if let Some(m) = layer.as_object() {
                for (k, v) in m {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    let v = expand(&v, &vars);
                    vars.insert(k.clone(), v);
                }
            }
        }
        // Project variables and those from upstream dotenv reports take precedence over the
        // file's, as on GitLab.
        vars.extend(self.variables.clone());
        vars.extend(dotenv);
        // As an absolute path: the same directory, also for the build job, which runs in the
        // repository.
        let ci_out = project.join(&vars["L1_CI_OUT"]);
        vars.insert("L1_CI_OUT".into(), ci_out.to_string_lossy().into_owned());
        let note = project.join(".mr-note.md");
        let mut lines = Vec::new();
        for line in job["script"].as_array().unwrap() {
            let line = line.as_str().unwrap();
            match STUBBED_GITLAB_LINES
                .iter()
                .find(|(s, _)| line.starts_with(s))
            {
                Some((s, why)) => {
                    eprintln!("--- {file} job {dir_name}: `{s}…` stubbed: {why}");
                    if s.starts_with("curl") {
                        assert!(line.contains("verdict.md"), "the MR note posts {line}");
                        lines.push(format!("cp \"$L1_CI_OUT/verdict.md\" '{}'", note.display()));
                    }
                }
                None => lines.push(line.to_string()),
            }
        }
        let script = lines.join("\n");
        eprintln!("=== {file} job {dir_name}:\n{script}");
        let cwd = if name == "build" {
            root()
        } else {
            project.clone()
        };
        let mut cmd = Command::new("bash");
        cmd.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
            .current_dir(cwd);
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if k.starts_with("L1_") || k.starts_with("NEXTEST") || k.starts_with("__NEXTEST") {
                cmd.env_remove(&*k);
            }
        }
        let cargo_dir = Path::new(env!("CARGO")).parent().unwrap().to_path_buf();
        let path = std::env::join_paths(std::iter::once(cargo_dir).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))
        .unwrap();
        let out = cmd.env("PATH", path).envs(&vars).output().unwrap();
        eprintln!("{}", text(&out));
        if note.is_file() {
            self.notes.push(std::fs::read_to_string(&note).unwrap());
        }
        // Artifacts (paths relative to the project directory) and the dotenv report.
        let artifacts = &job["artifacts"];
        ran.artifacts = artifacts["paths"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| expand(p.as_str().unwrap(), &vars))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(junit) = artifacts["reports"]["junit"].as_str() {
            ran.artifacts.push(expand(junit, &vars));
        }
        if let Some(env) = artifacts["reports"]["dotenv"].as_str() {
            let body = std::fs::read_to_string(project.join(env))
                .unwrap_or_else(|e| panic!("{file} job {dir_name}: dotenv {env}: {e}"));
            for l in body.lines().filter(|l| !l.trim().is_empty()) {
                let (k, v) = l.split_once('=').unwrap_or_else(|| {
                    panic!("{file} job {dir_name}: a dotenv line that is not k=v: {l}")
                });
                ran.dotenv.insert(k.to_string(), v.to_string());
            }
        }
        ran.dirs.push(project.clone());
        self.dirs.insert(dir_name.clone(), project);
        if !out.status.success() {
            eprintln!("--- {file} job {dir_name} failed ({})", out.status);
        }
        out.status.success()
    }
}

/// `job` with its `extends:` merged in (recursively; later templates and the job win).
fn resolve(top: &Map<String, Value>, job: &Value) -> Value {
    let parents: Vec<String> = match &job["extends"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().map(|v| v.as_str().unwrap().to_string()).collect(),
        _ => Vec::new(),
    };
    let mut merged = Value::Object(Map::new());
    for p in parents {
        let parent = top
            .get(&p)
            .unwrap_or_else(|| panic!("extends an unknown `{p}`"));
        merge(&mut merged, &resolve(top, parent));
    }
    let mut own = job.clone();
    own.as_object_mut().unwrap().remove("extends");
    merge(&mut merged, &own);
    merged
}

/// GitLab's `extends` merge: hashes deep-merged, anything else replaced.
fn merge(into: &mut Value, from: &Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        a.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (into, from) => *into = from.clone(),
    }
}

/// `$NAME` and `${NAME}` in `s` replaced from `vars` (unknown: empty), as GitLab expands
/// variables in `variables:` values and artifact paths.
fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
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
            assert_eq!(chars.next(), Some('}'), "an unclosed ${{ in {s}");
        }
        out.push_str(vars.get(&name).map_or("", String::as_str));
    }
    out
}

fn needs_of(job: &Value) -> Vec<String> {
    job["needs"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| {
                    v.as_str()
                        .or_else(|| v["job"].as_str())
                        .unwrap()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Copies `src` (a file or directory) to `dest`, merging into an existing directory.
fn cp(src: &Path, dest: &Path) {
    let mut cmd = Command::new("cp");
    cmd.arg("-R");
    if src.is_dir() {
        std::fs::create_dir_all(dest).unwrap();
        cmd.arg(format!("{}/.", src.display())).arg(dest);
    } else {
        cmd.arg(src).arg(dest);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "cp {}: {}", src.display(), text(&out));
}
