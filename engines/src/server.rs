//! Server engines: a process per launch, driven over HTTP by the load generator.
//!
//! A launch: translate the combo to a command line for the installed version, spawn the engine
//! (see [`crate::process`]), wait for its readiness probe, fit prompts to its tokenizer, send
//! the workload's warm-up requests, then serve reps. Each rep scrapes the engine's own
//! Prometheus metrics before and after, checks the engine is still alive, and reports the
//! engine tree's peak memory. The engine is torn down when the launch is dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use l1_loadgen::prompts::{self, TokenCounter};
use l1_loadgen::{HttpApi, HttpBackend, RequestSpec, driver, prom, summarize};

use crate::engine::{Deployment, Engine, EngineKind, version_matches};
use crate::error::{EngineError, LaunchError, LookedIn, PromptError, RepError};
use crate::install::{find_engine_binary, find_on_path};
use crate::launch::{
    Launch, LaunchTarget, load_of, rep_metrics, rep_requests, runtime, slo_of, timeout_of, warm_up,
};
use crate::process::{EngineProcess, LaunchCommand, ProcessError};
use crate::{Metrics, Workload};

/// How to run and reach one server engine at one version.
#[derive(Clone, Debug)]
pub struct ServerRecipe {
    pub command: LaunchCommand,
    pub port: u16,
    pub api: HttpApi,
    /// The model name requests carry.
    pub served_model: String,
    /// `GET` path that answers 200 once the engine serves.
    pub ready_path: String,
    /// Prometheus endpoint and the series prefix of the engine's own metrics: a path on the
    /// HTTP base, or an absolute `http://` URL for engines that serve metrics on their own port
    /// (Triton).
    pub metrics: Option<(String, &'static str)>,
    /// `POST` path of a tokenize endpoint and its JSON text field (`content` or `prompt`).
    pub tokenize: Option<(String, &'static str)>,
    /// Whether the server honours `ignore_eos` (exact output lengths).
    pub ignore_eos: bool,
    pub startup_timeout: Duration,
    /// How fidelity probes are sent (see [`crate::probe`]).
    pub probe: crate::probe::ProbeApi,
}

impl ServerRecipe {
    /// The shape most servers share: `program args` with `env`, OpenAI-compatible streaming
    /// completions, ready when `GET /health` answers 200, Prometheus series starting with
    /// `metrics_prefix` on `/metrics`, a `POST /tokenize` taking `tokenize_field`, and requests
    /// served under the model's catalog name with `ignore_eos`.
    #[allow(clippy::too_many_arguments)] // each is one field of the recipe, named at the call
    pub fn openai(
        program: PathBuf,
        args: Vec<String>,
        env: std::collections::BTreeMap<String, String>,
        port: u16,
        served_model: &str,
        metrics_prefix: &'static str,
        tokenize_field: &'static str,
        startup_timeout: Duration,
    ) -> Self {
        Self {
            command: LaunchCommand {
                program,
                args,
                env,
                ..LaunchCommand::default()
            },
            port,
            api: HttpApi::OpenAiCompletions,
            served_model: served_model.to_string(),
            ready_path: "/health".into(),
            metrics: Some(("/metrics".into(), metrics_prefix)),
            tokenize: Some(("/tokenize".into(), tokenize_field)),
            ignore_eos: true,
            startup_timeout,
            probe: crate::probe::ProbeApi::OpenAi { token_ids: false },
        }
    }
}

/// What every server engine provides (one module per engine, registered in the engine table).
pub trait ServerEngine: Sync {
    /// The engine's catalog name.
    fn name(&self) -> &'static str;
    /// The executable to run, found in the engines directory or on `PATH`.
    fn program(&self, engines_dir: &Path) -> Result<PathBuf, EngineError>;
    /// The installed version, from the engine itself.
    fn detect_version(&self, program: &std::path::Path) -> Result<String, EngineError>;
    /// The engine versions the translation is written for (inclusive, by prefix). The catalog's
    /// versions of the engine must lie inside (a test checks it), and `translate` refuses others.
    fn supported_versions(&self) -> &'static [crate::version::VersionRange];
    /// The translation table `translate` reads (see [`crate::translate`]).
    fn translation(&self) -> Option<&'static crate::translate::Table> {
        None
    }
    /// The command line and endpoints for `combo` at `version`.
    fn translate(
        &self,
        target: &LaunchTarget<'_>,
        program: PathBuf,
        port: u16,
    ) -> Result<ServerRecipe, crate::translate::TranslateError>;
}

/// A started server engine.
#[derive(Debug)]
pub struct ServerLaunch {
    process: EngineProcess,
    recipe: ServerRecipe,
    rt: tokio::runtime::Runtime,
    backend: Arc<HttpBackend>,
    base: String,
    workload: Workload,
    seed: u64,
    tokens_per_word: Option<f64>,
    notes: Vec<String>,
    engine_version: Option<String>,
}

impl ServerLaunch {
    /// Start `engine` for `target`, wait until it serves, and send the warm-up requests.
    pub fn start(
        engine: &dyn ServerEngine,
        target: &LaunchTarget<'_>,
    ) -> Result<Self, LaunchError> {
        let program = engine.program(target.engines_dir)?;
        let (log, workdir) = target.log_and_workdir();
        let rt = runtime()?;
        let probe = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| LaunchError::Client(e.to_string()))?;
        // A free port can be taken by another process between `free_port` and the engine's
        // bind (parallel tests, other services): an engine that fails to bind is relaunched on
        // a new port, at most twice, and the record says so.
        let mut relaunched = Vec::new();
        let (process, recipe, startup) = loop {
            let port = crate::process::free_port()?;
            let recipe = engine.translate(target, program.clone(), port)?;
            let mut process =
                EngineProcess::spawn(&recipe.command, &workdir, &log, target.state_dir)?;
            let ready_url = format!("http://127.0.0.1:{}{}", recipe.port, recipe.ready_path);
            let timeout = target.startup_timeout.unwrap_or(recipe.startup_timeout);
            match process.wait_ready(timeout, || {
                rt.block_on(async {
                    matches!(probe.get(&ready_url).send().await, Ok(r) if r.status().is_success())
                })
            }) {
                Ok(startup) => break (process, recipe, startup),
                Err(e) if relaunched.len() < 2 && port_taken(&e) => {
                    drop(process);
                    relaunched.push(format!(
                        "port {port} was taken before the engine bound it; relaunched"
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let base = format!("http://127.0.0.1:{}", recipe.port);
        let mut backend = HttpBackend::new(&base, recipe.api, &recipe.served_model)
            .map_err(LaunchError::Client)?;
        backend.ignore_eos = recipe.ignore_eos;
        let mut launch = Self {
            notes: vec![
                format!("command: {}", recipe.command.display()),
                format!("engine log: {}", log.display()),
                format!("ready after {:.2} s", startup.as_secs_f64()),
            ]
            .into_iter()
            .chain(relaunched)
            .collect(),
            process,
            recipe,
            rt,
            backend: Arc::new(backend),
            base,
            workload: target.workload.clone(),
            seed: target.seed,
            tokens_per_word: None,
            engine_version: None,
        };
        if launch.recipe.tokenize.is_some() {
            let tpw =
                prompts::tokens_per_word(&launch, target.seed).map_err(LaunchError::Tokenizer)?;
            launch.tokens_per_word = Some(tpw);
        }
        // Warm-up: the workload's warm-up requests, excluded from every rep.
        let counter: Option<&dyn TokenCounter> = launch.tokens_per_word.map(|_| &launch as _);
        warm_up(
            &launch.rt,
            launch.backend.clone(),
            &launch.workload,
            launch.seed,
            counter,
            launch.tokens_per_word.unwrap_or(1.0),
        )
        .map_err(|e| LaunchError::WithLog {
            source: Box::new(e),
            log: launch.process.log_excerpt(),
        })?;
        Ok(launch)
    }

    /// The requests of rep `index` (see [`rep_requests`]).
    fn requests(&self, index: u32, n: u32) -> Result<Vec<RequestSpec>, PromptError> {
        let counter: Option<&dyn TokenCounter> = self.tokens_per_word.map(|_| self as _);
        rep_requests(
            &self.workload,
            self.seed,
            index,
            n,
            counter,
            self.tokens_per_word.unwrap_or(1.0),
        )
    }

    fn scrape(&self) -> Option<prom::Scrape> {
        let (path, prefix) = self.recipe.metrics.as_ref()?;
        let url = if path.starts_with("http://") || path.starts_with("https://") {
            path.clone()
        } else {
            format!("{}{path}", self.base)
        };
        let text = self.rt.block_on(async {
            let r = reqwest::Client::builder()
                .no_proxy()
                .build()
                .ok()?
                .get(&url)
                .send()
                .await
                .ok()?;
            r.text().await.ok()
        })?;
        Some(prom::parse(&text, &[prefix]))
    }
}

impl ServerLaunch {
    /// Add a note for the record.
    pub fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    /// Record the engine version the launch runs (a field, and the note `engine version: X`).
    pub fn set_engine_version(&mut self, version: String) {
        self.notes.push(format!("engine version: {version}"));
        self.engine_version = Some(version);
    }
}

impl TokenCounter for ServerLaunch {
    fn count(&self, text: &str) -> Result<usize, String> {
        let Some((path, field)) = &self.recipe.tokenize else {
            return Err("no tokenize endpoint".into());
        };
        let url = format!("{}{path}", self.base);
        self.rt.block_on(async {
            let body = serde_json::json!({ *field: text });
            let r = reqwest::Client::builder()
                .no_proxy()
                .build()
                .map_err(|e| e.to_string())?
                .post(&url)
                .json(&body)
                .send()
                .await
                .map_err(|e| format!("POST {url}: {e}"))?;
            let v: serde_json::Value = r.json().await.map_err(|e| format!("POST {url}: {e}"))?;
            // vLLM/SGLang: {"count": n, "tokens": [...]}; llama.cpp: {"tokens": [...]};
            // TGI: a bare array of token objects.
            v.get("count")
                .and_then(serde_json::Value::as_u64)
                .map(|n| n as usize)
                .or_else(|| v.get("tokens").and_then(|t| t.as_array()).map(Vec::len))
                .or_else(|| v.as_array().map(Vec::len))
                .ok_or_else(|| format!("POST {url}: no `tokens` or `count` in {v}"))
        })
    }
}

/// Whether a failed start reads like a port another process took (bind errors of the servers
/// l1 launches: Python's, Rust's and C++'s wordings).
fn port_taken(error: &ProcessError) -> bool {
    let e = error.to_string().to_ascii_lowercase();
    [
        "address already in use",
        "address in use",
        "errno 98",
        "couldn't bind",
        "could not bind",
        "failed to bind",
    ]
    .iter()
    .any(|m| e.contains(m))
}

impl Launch for ServerLaunch {
    fn rep(&mut self, index: u32) -> Result<Metrics, RepError> {
        let reqs = self.requests(index, self.workload.requests)?;
        let before = self.scrape();
        let run = driver::run(
            &self.rt,
            self.backend.clone(),
            reqs,
            &load_of(&self.workload, self.seed ^ u64::from(index)),
            timeout_of(&self.workload),
        );
        // An engine that died mid-rep fails the trial with its own last words. When requests
        // failed, a dying engine gets a moment to become reapable (see `check_alive_settled`).
        let s = summarize(&run, &slo_of(&self.workload));
        let settle = if s.errors.is_empty() {
            Duration::ZERO
        } else {
            Duration::from_millis(500)
        };
        self.process
            .check_alive_settled(settle)
            .map_err(RepError::EngineDied)?;
        let mut m = rep_metrics(&s, self.process.peak_rss_bytes())?;
        if let (Some(b), Some(a)) = (before, self.scrape()) {
            for (k, v) in prom::delta(&b, &a) {
                if !k.contains("_bucket") {
                    m.insert(k, v);
                }
            }
        }
        crate::launch::note_rep(&mut self.notes, index, &s);
        Ok(m)
    }

    fn engine_version(&self) -> Option<&str> {
        self.engine_version.as_deref()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }

    fn probe(&mut self, set: &crate::probe::ProbeSet) -> crate::probe::ProbeRun {
        let run = crate::probe::run_http(
            &self.rt,
            &self.base,
            &self.recipe.probe,
            &self.recipe.served_model,
            set,
            self.recipe.ignore_eos,
            timeout_of(&self.workload),
        );
        if let Err(e) = self.process.check_alive() {
            let mut run = run;
            run.unsupported = Some(format!("the engine died while answering probes: {e}"));
            return run;
        }
        run
    }
}

/// A server engine's row in the engine table: its module, the executable whose presence says it
/// is installed, and another that serves it when that one is absent.
#[derive(Clone, Copy)]
pub struct Server {
    pub module: &'static dyn ServerEngine,
    /// What the setup script installs (`vllm-serve`, `llama-server`, ...).
    pub binary: &'static str,
    /// A normal install's executable, found on `PATH` (vLLM's `vllm`, NVIDIA's `tritonserver`).
    pub fallback: Option<&'static str>,
}

impl Engine for Server {
    fn name(&self) -> &'static str {
        self.module.name()
    }

    fn kind(&self) -> EngineKind {
        EngineKind::Server {
            binary: self.binary,
        }
    }

    fn availability(&self, engines_dir: &Path) -> Result<(), EngineError> {
        if find_engine_binary(engines_dir, self.binary).is_none()
            && self.fallback.and_then(find_on_path).is_none()
        {
            return Err(EngineError::NotInstalled {
                engine: self.name().to_string(),
                program: self.binary.to_string(),
                looked_in: LookedIn::BinOrPath(engines_dir.join("bin")),
                hint: "see scripts/setup-engines.sh".into(),
            });
        }
        Ok(())
    }

    fn installed_program(&self, engines_dir: &Path) -> Result<PathBuf, EngineError> {
        self.module.program(engines_dir)
    }

    fn installed_version(&self, engines_dir: &Path) -> Result<String, EngineError> {
        self.module
            .detect_version(&self.module.program(engines_dir)?)
    }

    fn supported_versions(&self) -> Option<&'static [crate::version::VersionRange]> {
        Some(self.module.supported_versions())
    }

    fn translation(&self) -> Option<&'static crate::translate::Table> {
        self.module.translation()
    }

    /// The installed version must match the target's (see [`version_matches`]).
    fn start(&self, target: &LaunchTarget<'_>) -> Result<Box<dyn Launch>, LaunchError> {
        let program = self.module.program(target.engines_dir)?;
        let installed = self.module.detect_version(&program)?;
        if !version_matches(target.version, &installed) {
            return Err(LaunchError::VersionMismatch {
                engine: self.name().to_string(),
                installed,
                wanted: target.version.to_string(),
                program,
            });
        }
        let mut launch = ServerLaunch::start(self.module, target)?;
        launch.set_engine_version(installed);
        Ok(Box::new(launch))
    }

    /// The translated command line; a program that is not installed here is written by name.
    fn deployment(&self, target: &LaunchTarget<'_>, port: u16) -> Result<Deployment, LaunchError> {
        let (program, found) = match self.module.program(target.engines_dir) {
            Ok(p) => (p, true),
            Err(_) => (PathBuf::from(self.name()), false),
        };
        let recipe = self.module.translate(target, program, port)?;
        let mut notes = vec![format!(
            "serves on port {port}; readiness: GET {}",
            recipe.ready_path
        )];
        if !found {
            notes.push(format!(
                "`{}` is not installed here: the program is written by name",
                self.name()
            ));
        }
        Ok(Deployment {
            settings: serde_json::json!({
                "served_model": recipe.served_model,
                "port": port,
                "ready_path": recipe.ready_path,
            }),
            command: Some(recipe.command),
            notes,
        })
    }

    fn fallback_binary(&self) -> Option<&'static str> {
        self.fallback
    }
}

/// Run `program args` and take the first word after `marker` in its output (stdout, then
/// stderr), e.g. `version: 6123 (abc)` → `6123`.
pub fn version_from_command(
    program: &Path,
    args: &[&str],
    marker: &str,
) -> Result<String, EngineError> {
    let command = || format!("{} {}", program.display(), args.join(" "));
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| EngineError::VersionCommand {
            command: command(),
            source,
        })?;
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| {
            let rest = l.split_once(marker)?.1.trim();
            rest.split_whitespace().next().map(str::to_string)
        })
        .ok_or_else(|| EngineError::NoVersion {
            command: command(),
            marker: marker.to_string(),
            output: l1_loadgen::protocol::clip(&text),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_ready(log: &str) -> ProcessError {
        ProcessError::NotReady {
            timeout_s: 1.0,
            log: log.to_string(),
        }
    }

    #[test]
    fn bind_failures_are_recognised() {
        assert!(port_taken(&not_ready(
            ": ... OSError: [Errno 98] Address already in use"
        )));
        assert!(port_taken(&not_ready(
            ": error: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 8080"
        )));
        assert!(!port_taken(&not_ready(": error: invalid argument: -fa")));
    }

    #[test]
    fn versions_match_at_component_boundaries() {
        assert!(version_matches("2026.10", "2026.10.11549"));
        assert!(version_matches("0.32", "0.32.0+cpu"));
        assert!(version_matches("b4000", "b4000"));
        assert!(!version_matches("2026.1", "2026.10.11549"));
        assert!(!version_matches("0.32", "0.3"));
    }
}
