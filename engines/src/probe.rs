//! Fidelity probes: a fixed set of prompts decoded greedily, with per-token log-probabilities
//! (and the top-k alternatives where the engine offers them), after a launch's performance reps.
//! The baseline's answers are the reference a combo's answers are compared with (the comparison
//! and the gate live in the harness, `harness/src/fidelity.rs`).
//!
//! Protocols: llama.cpp's native `POST /completion` (`n_probs`: token ids, logprobs and top-k),
//! OpenAI-compatible `POST /v1/completions` (`logprobs: k`; vLLM is asked for token ids with
//! `return_tokens_as_token_ids`), ONNX Runtime in-process (log-softmax of its own logits), and the
//! sim's deterministic divergence model (`sim/fidelity.rs`). An engine that answers without
//! logprobs yields tokens only, and says so; one that cannot answer probes at all says why.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The bundled default probe prompts (`catalogs/probes/default.jsonl`).
pub const DEFAULT_PROMPTS: &str = include_str!("../../catalogs/probes/default.jsonl");
/// Default tokens generated per probe: short enough to fit the tiny CPU workloads' contexts.
pub const DEFAULT_MAX_TOKENS: u32 = 16;
/// Default number of alternatives asked for per position.
pub const DEFAULT_TOP_K: u32 = 5;

fn default_max_tokens() -> u32 {
    DEFAULT_MAX_TOKENS
}

fn default_top_k() -> u32 {
    DEFAULT_TOP_K
}

/// A workload's probe set as `catalogs/workloads.yaml` declares it (`probes:`); absent, the
/// bundled default applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// A JSONL file of `{"prompt": "..."}` lines (relative to the repository root); absent, the
    /// bundled default prompts.
    #[serde(default)]
    pub path: Option<String>,
    /// Use only the first `count` prompts.
    #[serde(default)]
    pub count: Option<u32>,
    /// Tokens generated per probe (greedy).
    #[serde(default = "default_max_tokens")]
    pub output_tokens: u32,
    /// Alternatives per position where the engine offers them (0: chosen tokens only).
    #[serde(default = "default_top_k")]
    pub top_k: u32,
    /// Sampling seed passed to engines that take one (greedy decoding should not need it).
    #[serde(default)]
    pub seed: u64,
    /// The prompts (filled by the harness when it loads the workloads).
    #[serde(skip)]
    pub prompts: Vec<String>,
}

impl Default for ProbeSpec {
    fn default() -> Self {
        Self {
            path: None,
            count: None,
            output_tokens: DEFAULT_MAX_TOKENS,
            top_k: DEFAULT_TOP_K,
            seed: 0,
            prompts: Vec::new(),
        }
    }
}

impl ProbeSpec {
    /// Check the numbers; the message names the field.
    pub fn validate(&self) -> Result<(), crate::field::InvalidField> {
        use crate::field::invalid;
        if self.output_tokens == 0 || self.output_tokens > 4096 {
            return invalid(
                "probes.output_tokens",
                format!("expected 1..=4096, found {}", self.output_tokens),
            );
        }
        if self.top_k > 20 {
            return invalid(
                "probes.top_k",
                format!(
                    "expected 0..=20 (OpenAI-compatible servers cap logprobs at 20), found {}",
                    self.top_k
                ),
            );
        }
        if self.count == Some(0) {
            return invalid("probes.count", "expected at least 1");
        }
        Ok(())
    }

    /// Parse probe prompts from JSONL text (`{"prompt": "..."}` per line; other keys ignored).
    /// Errors carry the 1-based line number.
    pub fn parse_prompts(text: &str) -> Result<Vec<String>, (usize, String)> {
        crate::dataset::Dataset::parse(text).map(|e| e.into_iter().map(|d| d.prompt).collect())
    }

    /// The probe set this spec denotes: its loaded prompts, else the bundled default, cut to
    /// `count`.
    pub fn resolve(&self) -> Result<ProbeSet, ProbeSetError> {
        let (source, mut prompts) = if self.prompts.is_empty() {
            let p = Self::parse_prompts(DEFAULT_PROMPTS)
                .map_err(|(line, message)| ProbeSetError::Bundled { line, message })?;
            ("bundled default".to_string(), p)
        } else {
            (
                self.path.clone().unwrap_or_else(|| "inline".into()),
                self.prompts.clone(),
            )
        };
        if let Some(n) = self.count {
            prompts.truncate(n as usize);
        }
        if prompts.is_empty() {
            return Err(ProbeSetError::Empty { set: source });
        }
        Ok(ProbeSet {
            source,
            prompts,
            max_tokens: self.output_tokens,
            top_k: self.top_k,
            seed: self.seed,
        })
    }
}

/// Why a probe spec denotes no probe set.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProbeSetError {
    /// The bundled prompts do not parse (a build defect).
    #[error("bundled probe prompts, line {line}: {message}")]
    Bundled { line: usize, message: String },
    /// No prompts are left (an empty file, or `count` cut them all).
    #[error("the probe set `{set}` has no prompts")]
    Empty {
        /// Where the prompts came from (a path, `inline` or `bundled default`).
        set: String,
    },
}

/// The probes one launch answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeSet {
    /// Where the prompts came from (a path, or `bundled default`).
    pub source: String,
    pub prompts: Vec<String>,
    pub max_tokens: u32,
    pub top_k: u32,
    pub seed: u64,
}

impl ProbeSet {
    /// A short hash identifying the set (prompts, lengths, k, seed): answers to different sets
    /// are never compared.
    pub fn fingerprint(&self) -> String {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |b: &[u8]| {
            for &x in b {
                h = (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3);
            }
            h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
        };
        for p in &self.prompts {
            eat(p.as_bytes());
        }
        eat(&self.max_tokens.to_le_bytes());
        eat(&self.top_k.to_le_bytes());
        eat(&self.seed.to_le_bytes());
        format!("{h:016x}")
    }
}

/// One generated token: its identity (`id:<n>` where the engine gives ids, else its text), its
/// log-probability under the engine, and the top-k alternatives at that position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub token: String,
    #[serde(default)]
    pub logprob: Option<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top: Vec<(String, f64)>,
}

/// Why a probe has no usable answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeFailure {
    /// The prompt plus the generated tokens do not fit the engine's context.
    ContextExceeded,
    /// The engine answered with an error or an unreadable body.
    Engine,
    /// The engine returned a different number of tokens than it reported or was asked for.
    TokenCount,
}

/// The answer to one probe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeAnswer {
    /// Index of the prompt in the set.
    pub index: usize,
    /// Prompt tokens as the engine counted them.
    #[serde(default)]
    pub prompt_tokens: Option<u32>,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Set when the probe failed; `steps` then holds what came back, if anything.
    #[serde(default)]
    pub failure: Option<ProbeFailure>,
    #[serde(default)]
    pub error: Option<String>,
}

impl ProbeAnswer {
    fn failed(index: usize, kind: ProbeFailure, error: String) -> Self {
        Self {
            index,
            prompt_tokens: None,
            steps: Vec::new(),
            finish_reason: None,
            failure: Some(kind),
            error: Some(error),
        }
    }
}

/// What logprobs an engine returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogprobSupport {
    /// Chosen-token logprobs and top-k alternatives.
    TopK,
    /// Chosen-token logprobs only.
    Chosen,
    /// Tokens only: the comparison is by tokens alone.
    None,
}

/// A launch's answers to a probe set: stored in the measurement record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeRun {
    /// [`ProbeSet::fingerprint`] of the set answered.
    pub set: String,
    pub source: String,
    pub max_tokens: u32,
    pub top_k: u32,
    /// How the probes were sent (`llama.cpp /completion`, `OpenAI /v1/completions`, ...).
    pub protocol: String,
    pub logprobs: LogprobSupport,
    /// Set when the engine cannot answer probes at all (then `answers` is empty).
    #[serde(default)]
    pub unsupported: Option<String>,
    pub answers: Vec<ProbeAnswer>,
    /// Seconds the probes took (after the reps; never part of a measured window).
    #[serde(default)]
    pub duration_s: f64,
}

impl ProbeRun {
    /// A run of an engine that cannot answer probes: the reason is kept, nothing passes on it.
    pub fn unsupported(set: &ProbeSet, protocol: &str, why: impl Into<String>) -> Self {
        Self {
            set: set.fingerprint(),
            source: set.source.clone(),
            max_tokens: set.max_tokens,
            top_k: set.top_k,
            protocol: protocol.into(),
            logprobs: LogprobSupport::None,
            unsupported: Some(why.into()),
            answers: Vec::new(),
            duration_s: 0.0,
        }
    }

    /// A run from its answers: the logprob support is what every successful answer carried.
    pub fn from_answers(set: &ProbeSet, protocol: &str, answers: Vec<ProbeAnswer>) -> Self {
        let ok: Vec<&ProbeAnswer> = answers
            .iter()
            .filter(|a| a.failure.is_none() && !a.steps.is_empty())
            .collect();
        let all =
            |f: &dyn Fn(&Step) -> bool| !ok.is_empty() && ok.iter().all(|a| a.steps.iter().all(f));
        let logprobs = if all(&|s| s.logprob.is_some() && !s.top.is_empty()) {
            LogprobSupport::TopK
        } else if all(&|s| s.logprob.is_some()) {
            LogprobSupport::Chosen
        } else {
            LogprobSupport::None
        };
        Self {
            set: set.fingerprint(),
            source: set.source.clone(),
            max_tokens: set.max_tokens,
            top_k: set.top_k,
            protocol: protocol.into(),
            logprobs,
            unsupported: None,
            answers,
            duration_s: 0.0,
        }
    }
}

/// How a server engine is probed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeApi {
    /// llama.cpp's native `POST /completion` with `n_probs`.
    LlamaCpp,
    /// `POST /v1/completions` with `logprobs: k`; `token_ids` asks vLLM for `token_id:<n>`
    /// tokens instead of text.
    OpenAi { token_ids: bool },
    /// The engine has no way to answer probes here (the reason).
    Unsupported(String),
}

/// Whether an engine's error text says the prompt did not fit the context.
pub fn is_context_error(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "context size",
        "context length",
        "exceeds the available context",
        "maximum context length",
        "max_model_len",
        "max-model-len",
        "longer than the maximum model length",
        "exceed_context_size",
        "exceed the model's",
        "too long",
    ]
    .iter()
    .any(|m| t.contains(m))
}

/// The JSON body of one probe for `api`.
pub fn request_body(
    api: &ProbeApi,
    model: &str,
    prompt: &str,
    set: &ProbeSet,
    ignore_eos: bool,
) -> serde_json::Value {
    match api {
        ProbeApi::LlamaCpp => serde_json::json!({
            "prompt": prompt,
            "n_predict": set.max_tokens,
            "temperature": 0.0,
            "top_k": 1,
            "n_probs": set.top_k.max(1),
            "seed": set.seed,
            "ignore_eos": ignore_eos,
            "cache_prompt": false,
            "stream": false,
        }),
        ProbeApi::OpenAi { token_ids } => {
            let mut v = serde_json::json!({
                "model": model,
                "prompt": prompt,
                "max_tokens": set.max_tokens,
                "temperature": 0.0,
                "seed": set.seed,
                "logprobs": set.top_k.max(1),
                "stream": false,
            });
            if ignore_eos {
                v["ignore_eos"] = serde_json::Value::Bool(true);
            }
            if *token_ids {
                v["return_tokens_as_token_ids"] = serde_json::Value::Bool(true);
            }
            v
        }
        ProbeApi::Unsupported(_) => serde_json::Value::Null,
    }
}

/// Read llama.cpp's `/completion` answer: `completion_probabilities` with `id`, `logprob` and
/// `top_logprobs` (current servers), or the older `probs` with probabilities; `tokens_evaluated`,
/// `tokens_predicted`, `truncated` (the prompt was cut to the context: a failure, not a pass).
pub fn parse_llamacpp(index: usize, v: &serde_json::Value, want: u32) -> ProbeAnswer {
    if let Some(e) = v.get("error") {
        let msg = e
            .get("message")
            .and_then(|m| m.as_str())
            .map_or_else(|| e.to_string(), str::to_string);
        let kind = if is_context_error(&msg)
            || e.get("type").and_then(|t| t.as_str()) == Some("exceed_context_size_error")
        {
            ProbeFailure::ContextExceeded
        } else {
            ProbeFailure::Engine
        };
        return ProbeAnswer::failed(index, kind, msg);
    }
    let prompt_tokens = v
        .get("tokens_evaluated")
        .and_then(serde_json::Value::as_u64)
        .map(|n| n as u32);
    if v.get("truncated").and_then(serde_json::Value::as_bool) == Some(true) {
        return ProbeAnswer {
            prompt_tokens,
            ..ProbeAnswer::failed(
                index,
                ProbeFailure::ContextExceeded,
                "the engine truncated the prompt to fit its context".into(),
            )
        };
    }
    let token_of = |p: &serde_json::Value| -> Option<String> {
        p.get("id")
            .and_then(serde_json::Value::as_i64)
            .map(|id| format!("id:{id}"))
            .or_else(|| {
                p.get("token")
                    .or_else(|| p.get("tok_str"))
                    .or_else(|| p.get("content"))
                    .and_then(|t| t.as_str())
                    .map(str::to_string)
            })
    };
    let lp_of = |p: &serde_json::Value| -> Option<f64> {
        p.get("logprob")
            .and_then(serde_json::Value::as_f64)
            .or_else(|| {
                p.get("prob")
                    .and_then(serde_json::Value::as_f64)
                    .filter(|x| *x > 0.0)
                    .map(f64::ln)
            })
    };
    let mut steps = Vec::new();
    if let Some(arr) = v.get("completion_probabilities").and_then(|c| c.as_array()) {
        for p in arr {
            let Some(token) = token_of(p) else { continue };
            let alts = p
                .get("top_logprobs")
                .or_else(|| p.get("top_probs"))
                .or_else(|| p.get("probs"))
                .and_then(|t| t.as_array());
            let top: Vec<(String, f64)> = alts
                .into_iter()
                .flatten()
                .filter_map(|a| Some((token_of(a)?, lp_of(a)?)))
                .collect();
            // Old format: the chosen token's probability is its entry in `probs`.
            let logprob = lp_of(p).or_else(|| top.iter().find(|(t, _)| *t == token).map(|x| x.1));
            steps.push(Step {
                token,
                logprob,
                top,
            });
        }
    }
    let predicted = v
        .get("tokens_predicted")
        .and_then(serde_json::Value::as_u64)
        .map(|n| n as usize);
    let finish = v
        .get("stop_type")
        .and_then(|s| s.as_str())
        .map(str::to_string);
    counted(index, prompt_tokens, steps, finish, predicted, want)
}

/// Read an OpenAI-compatible `/v1/completions` answer with `logprobs` (`tokens`,
/// `token_logprobs`, `top_logprobs`), or without (then tokens cannot be told apart: the answer
/// is a failure naming that).
pub fn parse_openai(index: usize, v: &serde_json::Value, want: u32) -> ProbeAnswer {
    if let Some(e) = v.get("error").or_else(|| v.get("detail")) {
        let msg = e
            .get("message")
            .and_then(|m| m.as_str())
            .map_or_else(|| e.to_string(), str::to_string);
        let kind = if is_context_error(&msg) {
            ProbeFailure::ContextExceeded
        } else {
            ProbeFailure::Engine
        };
        return ProbeAnswer::failed(index, kind, msg);
    }
    let Some(choice) = v
        .get("choices")
        .and_then(|c| c.as_array())
        .and_then(|c| c.first())
    else {
        return ProbeAnswer::failed(
            index,
            ProbeFailure::Engine,
            format!(
                "no `choices` in the answer: {}",
                l1_loadgen::protocol::clip(&v.to_string())
            ),
        );
    };
    let usage = v.get("usage");
    let prompt_tokens = usage
        .and_then(|u| u.get("prompt_tokens"))
        .and_then(serde_json::Value::as_u64)
        .map(|n| n as u32);
    let completion = usage
        .and_then(|u| u.get("completion_tokens"))
        .and_then(serde_json::Value::as_u64)
        .map(|n| n as usize);
    let finish = choice
        .get("finish_reason")
        .and_then(|s| s.as_str())
        .map(str::to_string);
    let lp = choice.get("logprobs").filter(|l| !l.is_null());
    let mut steps = Vec::new();
    match lp {
        Some(lp) => {
            let tokens = lp.get("tokens").and_then(|t| t.as_array());
            let lps = lp.get("token_logprobs").and_then(|t| t.as_array());
            let tops = lp.get("top_logprobs").and_then(|t| t.as_array());
            for (i, t) in tokens.into_iter().flatten().enumerate() {
                let Some(token) = t.as_str() else { continue };
                let logprob = lps
                    .and_then(|l| l.get(i))
                    .and_then(serde_json::Value::as_f64);
                let top = tops
                    .and_then(|l| l.get(i))
                    .and_then(|m| m.as_object())
                    .map(|m| {
                        let mut t: Vec<(String, f64)> = m
                            .iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                            .collect();
                        t.sort_by(|a, b| b.1.total_cmp(&a.1));
                        t
                    })
                    .unwrap_or_default();
                steps.push(Step {
                    token: token.to_string(),
                    logprob,
                    top,
                });
            }
        }
        None => {
            // No logprobs: the text is all there is. Characters stand in for tokens (the
            // comparison is then by text, and the run says it has no logprobs).
            let text = choice.get("text").and_then(|t| t.as_str()).unwrap_or("");
            steps = text
                .chars()
                .map(|c| Step {
                    token: c.to_string(),
                    logprob: None,
                    top: Vec::new(),
                })
                .collect();
            let mut a = ProbeAnswer {
                index,
                prompt_tokens,
                steps,
                finish_reason: finish,
                failure: None,
                error: Some(
                    "the engine returned no logprobs: compared by text characters only".into(),
                ),
            };
            if a.steps.is_empty() && want > 0 {
                a.failure = Some(ProbeFailure::TokenCount);
                a.error = Some("the engine returned no text and no logprobs".into());
            }
            return a;
        }
    }
    counted(index, prompt_tokens, steps, finish, completion, want)
}

/// The answer the engine returned, with its token counts checked ([`check_counts`]).
fn counted(
    index: usize,
    prompt_tokens: Option<u32>,
    steps: Vec<Step>,
    finish_reason: Option<String>,
    reported: Option<usize>,
    want: u32,
) -> ProbeAnswer {
    let mut a = ProbeAnswer {
        index,
        prompt_tokens,
        steps,
        finish_reason,
        failure: None,
        error: None,
    };
    check_counts(&mut a, reported, want);
    a
}

/// A token count the engine reported that differs from the tokens it returned is a failure;
/// fewer tokens than asked for is kept (an end of sequence), and noted.
fn check_counts(a: &mut ProbeAnswer, reported: Option<usize>, want: u32) {
    if let Some(n) = reported
        && n != a.steps.len()
    {
        a.failure = Some(ProbeFailure::TokenCount);
        a.error = Some(format!(
            "the engine reported {n} generated tokens but returned {} with logprobs",
            a.steps.len()
        ));
        return;
    }
    if a.steps.len() > want as usize {
        a.failure = Some(ProbeFailure::TokenCount);
        a.error = Some(format!(
            "the engine returned {} tokens for max_tokens {want}",
            a.steps.len()
        ));
    } else if a.steps.is_empty() && want > 0 {
        a.failure = Some(ProbeFailure::TokenCount);
        a.error = Some("the engine returned no tokens".into());
    }
}

/// Send every probe of `set` to a server at `base`, one at a time (greedy answers do not depend
/// on batching, and one at a time keeps the probes cheap and unambiguous).
pub fn run_http(
    rt: &tokio::runtime::Runtime,
    base: &str,
    api: &ProbeApi,
    model: &str,
    set: &ProbeSet,
    ignore_eos: bool,
    timeout: Duration,
) -> ProbeRun {
    let (path, protocol) = match api {
        ProbeApi::LlamaCpp => ("/completion", "llama.cpp POST /completion (n_probs)"),
        ProbeApi::OpenAi { .. } => ("/v1/completions", "OpenAI POST /v1/completions (logprobs)"),
        ProbeApi::Unsupported(why) => return ProbeRun::unsupported(set, "none", why.clone()),
    };
    let t0 = std::time::Instant::now();
    let client = match reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => return ProbeRun::unsupported(set, protocol, format!("no HTTP client: {e}")),
    };
    let url = format!("{base}{path}");
    let answers = set
        .prompts
        .iter()
        .enumerate()
        .map(|(i, prompt)| {
            let body = request_body(api, model, prompt, set, ignore_eos);
            let res: Result<(u16, String), reqwest::Error> = rt.block_on(async {
                let r = client.post(&url).json(&body).send().await?;
                let status = r.status().as_u16();
                Ok((status, r.text().await?))
            });
            match res {
                Err(e) => ProbeAnswer::failed(i, ProbeFailure::Engine, format!("POST {url}: {e}")),
                Ok((status, text)) => match serde_json::from_str::<serde_json::Value>(&text) {
                    Ok(v) => {
                        let a = match api {
                            ProbeApi::LlamaCpp => parse_llamacpp(i, &v, set.max_tokens),
                            _ => parse_openai(i, &v, set.max_tokens),
                        };
                        if status >= 400 && a.failure.is_none() {
                            let kind = if is_context_error(&text) {
                                ProbeFailure::ContextExceeded
                            } else {
                                ProbeFailure::Engine
                            };
                            ProbeAnswer::failed(
                                i,
                                kind,
                                format!("HTTP {status}: {}", l1_loadgen::protocol::clip(&text)),
                            )
                        } else {
                            a
                        }
                    }
                    Err(_) => {
                        let kind = if status >= 400 && is_context_error(&text) {
                            ProbeFailure::ContextExceeded
                        } else {
                            ProbeFailure::Engine
                        };
                        ProbeAnswer::failed(
                            i,
                            kind,
                            format!(
                                "HTTP {status}, not JSON: {}",
                                l1_loadgen::protocol::clip(&text)
                            ),
                        )
                    }
                },
            }
        })
        .collect();
    let mut run = ProbeRun::from_answers(set, protocol, answers);
    run.duration_s = t0.elapsed().as_secs_f64();
    run
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn set() -> ProbeSet {
        ProbeSpec::default().resolve().unwrap()
    }

    #[test]
    fn the_bundled_prompts_load_and_fingerprint_stably() {
        let s = set();
        assert!(s.prompts.len() >= 8, "{}", s.prompts.len());
        assert_eq!(s.fingerprint(), set().fingerprint());
        let mut t = s.clone();
        t.max_tokens += 1;
        assert_ne!(s.fingerprint(), t.fingerprint());
        let cut = ProbeSpec {
            count: Some(3),
            ..ProbeSpec::default()
        }
        .resolve()
        .unwrap();
        assert_eq!(cut.prompts.len(), 3);
    }

    #[test]
    fn spec_validation_names_the_field() {
        let bad = ProbeSpec {
            top_k: 50,
            ..ProbeSpec::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("probes.top_k")
        );
        let bad = ProbeSpec {
            output_tokens: 0,
            ..ProbeSpec::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("probes.output_tokens")
        );
    }

    #[test]
    fn llamacpp_answers_parse_with_ids_logprobs_and_top_k() {
        let v = serde_json::json!({
            "content": "ab", "tokens_predicted": 2, "tokens_evaluated": 5, "truncated": false,
            "stop_type": "limit",
            "completion_probabilities": [
                {"id": 7, "token": "a", "logprob": -0.1, "top_logprobs": [
                    {"id": 7, "token": "a", "logprob": -0.1}, {"id": 9, "token": "x", "logprob": -2.5}]},
                {"id": 8, "token": "b", "logprob": -0.2, "top_logprobs": [
                    {"id": 8, "token": "b", "logprob": -0.2}]}
            ]
        });
        let a = parse_llamacpp(0, &v, 2);
        assert_eq!(a.failure, None, "{:?}", a.error);
        assert_eq!(a.prompt_tokens, Some(5));
        assert_eq!(a.steps[0].token, "id:7");
        assert_eq!(a.steps[0].top[1], ("id:9".into(), -2.5));
        let run = ProbeRun::from_answers(&set(), "t", vec![a]);
        assert_eq!(run.logprobs, LogprobSupport::TopK);
    }

    #[test]
    fn bad_answers_are_failures_with_their_kind() {
        let truncated = serde_json::json!({"truncated": true, "tokens_evaluated": 64, "completion_probabilities": []});
        assert_eq!(
            parse_llamacpp(1, &truncated, 4).failure,
            Some(ProbeFailure::ContextExceeded)
        );
        let err = serde_json::json!({"error": {"code": 400, "message": "the request exceeds the available context size, try increasing it", "type": "exceed_context_size_error"}});
        assert_eq!(
            parse_llamacpp(1, &err, 4).failure,
            Some(ProbeFailure::ContextExceeded)
        );
        let mismatch = serde_json::json!({"tokens_predicted": 3, "completion_probabilities": [{"id": 1, "logprob": -0.1}]});
        let a = parse_llamacpp(2, &mismatch, 4);
        assert_eq!(a.failure, Some(ProbeFailure::TokenCount));
        assert!(a.error.as_deref().unwrap().contains("reported 3"));
        let vllm_ctx = serde_json::json!({"error": {"message": "This model's maximum context length is 64 tokens. However, you requested 80 tokens", "type": "BadRequestError"}});
        assert_eq!(
            parse_openai(0, &vllm_ctx, 4).failure,
            Some(ProbeFailure::ContextExceeded)
        );
    }

    #[test]
    fn openai_answers_parse_with_and_without_logprobs() {
        let v = serde_json::json!({
            "choices": [{"text": "ab", "finish_reason": "length", "logprobs": {
                "tokens": ["token_id:3", "token_id:4"],
                "token_logprobs": [-0.5, -0.25],
                "top_logprobs": [{"token_id:3": -0.5, "token_id:1": -1.5}, {"token_id:4": -0.25}]
            }}],
            "usage": {"prompt_tokens": 6, "completion_tokens": 2}
        });
        let a = parse_openai(0, &v, 2);
        assert_eq!(a.failure, None);
        assert_eq!(a.steps[0].top[0].0, "token_id:3");
        assert_eq!(a.steps[1].logprob, Some(-0.25));
        let plain = serde_json::json!({"choices": [{"text": "hi", "logprobs": null}], "usage": {"completion_tokens": 1}});
        let a = parse_openai(0, &plain, 2);
        assert_eq!(a.failure, None);
        assert!(a.error.as_deref().unwrap().contains("no logprobs"));
        let run = ProbeRun::from_answers(&set(), "t", vec![a]);
        assert_eq!(run.logprobs, LogprobSupport::None);
    }

    #[test]
    fn request_bodies_ask_for_greedy_and_logprobs() {
        let s = set();
        let b = request_body(&ProbeApi::OpenAi { token_ids: true }, "m", "p", &s, true);
        assert_eq!(b["temperature"], 0.0);
        assert_eq!(b["logprobs"], s.top_k);
        assert_eq!(b["return_tokens_as_token_ids"], true);
        let b = request_body(&ProbeApi::LlamaCpp, "m", "p", &s, false);
        assert_eq!(b["n_probs"], s.top_k);
        assert_eq!(b["n_predict"], s.max_tokens);
    }
}
