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
use l1_loadgen::{HttpApi, HttpBackend, Load, RequestSpec, Slo, driver, prom, summarize};

use crate::launch::{Launch, RealTarget};
use crate::process::{EngineProcess, LaunchCommand};
use crate::{Arrival, Metrics, Workload};

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
    fn program(&self, engines_dir: &Path) -> Result<PathBuf, String>;
    /// The installed version, from the engine itself.
    fn detect_version(&self, program: &std::path::Path) -> Result<String, String>;
    /// The engine versions the translation is written for (inclusive, by prefix). The catalog's
    /// versions of the engine must lie inside (a test checks it), and `translate` refuses others.
    fn supported_versions(&self) -> &'static [crate::version::VersionRange];
    /// The command line and endpoints for `combo` at `version`.
    fn translate(
        &self,
        target: &RealTarget<'_>,
        program: PathBuf,
        port: u16,
    ) -> Result<ServerRecipe, String>;
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
}

/// Build the one HTTP runtime a launch uses.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("failed to start the load generator's runtime: {e}"))
}

impl ServerLaunch {
    /// Start `engine` for `target`, wait until it serves, and send the warm-up requests.
    pub fn start(engine: &dyn ServerEngine, target: &RealTarget<'_>) -> Result<Self, String> {
        let program = engine.program(target.engines_dir)?;
        let (log, workdir) = target.log_and_workdir();
        let rt = runtime()?;
        let probe = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| e.to_string())?;
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
                Err(e) => return Err(e),
            }
        };
        let base = format!("http://127.0.0.1:{}", recipe.port);
        let mut backend = HttpBackend::new(&base, recipe.api, &recipe.served_model)?;
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
        };
        if launch.recipe.tokenize.is_some() {
            let tpw = prompts::tokens_per_word(&launch, target.seed)
                .map_err(|e| format!("tokenizer calibration failed: {e}"))?;
            launch.tokens_per_word = Some(tpw);
        }
        // Warm-up: the workload's warm-up requests, excluded from every rep.
        let counter: Option<&dyn TokenCounter> = launch.tokens_per_word.map(|_| &launch as _);
        crate::launch::warm_up(
            &launch.rt,
            launch.backend.clone(),
            &launch.workload,
            launch.seed,
            counter,
            launch.tokens_per_word.unwrap_or(1.0),
        )
        .map_err(|e| format!("{e}{}", launch.process.log_excerpt()))?;
        Ok(launch)
    }

    /// The requests of rep `index` (see [`crate::launch::rep_requests`]).
    fn requests(&self, index: u32, n: u32) -> Result<Vec<RequestSpec>, String> {
        let counter: Option<&dyn TokenCounter> = self.tokens_per_word.map(|_| self as _);
        crate::launch::rep_requests(
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
fn port_taken(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
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

/// The load generator's arrival for a workload.
pub fn load_of(w: &Workload, seed: u64) -> Load {
    match w.arrival {
        Arrival::Concurrency(n) => Load::Closed { concurrency: n },
        Arrival::Poisson { rate } => Load::Poisson { rate, seed },
    }
}

/// The workload's per-request timeout.
pub fn timeout_of(w: &Workload) -> Duration {
    Duration::from_secs_f64(w.request_timeout_s.clamp(0.001, 86_400.0))
}

/// The workload's SLOs for the load generator.
pub fn slo_of(w: &Workload) -> Slo {
    Slo {
        ttft_ms: w.slo.ttft_ms,
        tpot_ms: w.slo.tpot_ms,
        e2e_ms: w.slo.e2e_ms,
    }
}

/// Turn a rep's summary into metrics, failing the rep when every request failed.
pub fn rep_metrics(s: &l1_loadgen::RepSummary, mem_bytes: u64) -> Result<Metrics, String> {
    if s.requests > 0 && s.metrics.get("error_rate").copied() == Some(1.0) {
        return Err(format!(
            "all {} requests failed: {}",
            s.requests,
            s.error_text()
        ));
    }
    let mut m: Metrics = s.metrics.clone();
    m.insert(
        "peak_memory_gib".into(),
        mem_bytes as f64 / (1u64 << 30) as f64,
    );
    Ok(m)
}

impl Launch for ServerLaunch {
    fn rep(&mut self, index: u32) -> Result<Metrics, String> {
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
            .map_err(|e| format!("the engine died during the rep: {e}"))?;
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

/// Compare an installed version with the spec's: equal, or the spec's is a prefix at a
/// component boundary (`0.32` accepts `0.32.0`).
pub fn version_matches(spec: &str, installed: &str) -> bool {
    installed == spec
        || installed.strip_prefix(spec).is_some_and(|rest| {
            rest.starts_with('.') || rest.starts_with('-') || rest.starts_with('+')
        })
}

/// A dimension value an engine cannot express: the error names the engine, dimension, value and
/// what it accepts.
pub fn unsupported(engine: &str, dim: &str, value: &str, accepted: &[&str]) -> String {
    format!(
        "engine `{engine}` has no translation for {dim} = `{value}` (accepted: {})",
        accepted.join(", ")
    )
}

/// Run `program args` and take the first word after `marker` in its output (stdout, then
/// stderr), e.g. `version: 6123 (abc)` → `6123`.
pub fn version_from_command(program: &Path, args: &[&str], marker: &str) -> Result<String, String> {
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "failed to run `{} {}`: {e}",
                program.display(),
                args.join(" ")
            )
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
        .ok_or_else(|| {
            format!(
                "`{} {}` printed no `{marker}` line: {}",
                program.display(),
                args.join(" "),
                l1_loadgen::protocol::clip(&text)
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_failures_are_recognised() {
        assert!(port_taken(
            "engine failed to start: ... OSError: [Errno 98] Address already in use"
        ));
        assert!(port_taken(
            "error: couldn't bind HTTP server socket, hostname: 127.0.0.1, port: 8080"
        ));
        assert!(!port_taken("error: invalid argument: -fa"));
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
