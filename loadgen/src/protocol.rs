//! The protocols a rep can speak: OpenAI-compatible streaming completions and chat completions,
//! KServe v2 `generate_stream` (Triton), and in-process engines behind [`Backend`].
//!
//! Token counting: OpenAI-compatible streams are asked for a usage chunk
//! (`stream_options.include_usage`) and tokens are counted from it, never from chunks — servers
//! merge or withhold chunks (vLLM holds back partial UTF-8), so chunk counts undercount. KServe
//! `generate_stream` has no usage report: each streamed response with a non-empty `text_output`
//! is counted as one token (what Triton's TensorRT-LLM and Python backends send per generated
//! token), and the first non-empty one is the first token. Empty `text_output` events are not
//! tokens: pytriton's decoupled models send one response to every request of a batch per step, so
//! a request whose `max_tokens` is reached before the longest in its batch receives empty events
//! until that one finishes (they still delay the end of its stream, which is its end-to-end time).

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::request::{ErrorKind, RequestError, RequestSpec, Streamed};
use crate::sse::SseParser;

/// A boxed future, as the backends return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Sends one request and streams its response. Times in [`Streamed`] count from the call.
pub trait Backend: Send + Sync {
    fn send<'a>(&'a self, req: &'a RequestSpec) -> BoxFuture<'a, Result<Streamed, RequestError>>;
}

/// Which HTTP API a server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpApi {
    /// `POST /v1/completions`, SSE.
    OpenAiCompletions,
    /// `POST /v1/chat/completions`, SSE.
    OpenAiChat,
    /// `POST /v2/models/<model>/generate_stream`, SSE (KServe v2 generate extension).
    KServeGenerateStream,
}

/// An HTTP streaming client for one server.
#[derive(Clone, Debug)]
pub struct HttpBackend {
    client: reqwest::Client,
    base: String,
    api: HttpApi,
    model: String,
    /// Send `ignore_eos: true` so every request generates exactly `max_tokens`.
    pub ignore_eos: bool,
}

impl HttpBackend {
    /// A client for `base` (e.g. `http://127.0.0.1:8080`) serving `model`, with a fresh
    /// connection per request: servers close idle keep-alive connections on their own schedule
    /// (cpp-httplib, llama.cpp's server, after 5 requests), and a request sent on a connection
    /// the server is closing fails without ever reaching it. A loopback connect adds ~0.1 ms to
    /// every request's TTFT alike.
    pub fn new(base: &str, api: HttpApi, model: &str) -> Result<Self, String> {
        Self::build(base, api, model, 0)
    }

    /// Like [`HttpBackend::new`] but reusing connections (for servers known to keep them open,
    /// such as the fixture, where connection setup would dominate).
    pub fn keep_alive(base: &str, api: HttpApi, model: &str) -> Result<Self, String> {
        Self::build(base, api, model, 1024)
    }

    fn build(base: &str, api: HttpApi, model: &str, idle: usize) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(idle)
            .tcp_nodelay(true)
            .no_proxy()
            .build()
            .map_err(|e| format!("failed to build the HTTP client: {e}"))?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_string(),
            api,
            model: model.to_string(),
            ignore_eos: true,
        })
    }

    fn request(&self, req: &RequestSpec) -> (String, Value) {
        match self.api {
            HttpApi::OpenAiCompletions => (
                format!("{}/v1/completions", self.base),
                json!({
                    "model": self.model, "prompt": req.prompt, "max_tokens": req.max_tokens,
                    "temperature": 0, "stream": true, "ignore_eos": self.ignore_eos,
                    "stream_options": {"include_usage": true},
                }),
            ),
            HttpApi::OpenAiChat => (
                format!("{}/v1/chat/completions", self.base),
                json!({
                    "model": self.model, "messages": [{"role": "user", "content": req.prompt}],
                    "max_tokens": req.max_tokens, "temperature": 0, "stream": true,
                    "ignore_eos": self.ignore_eos, "stream_options": {"include_usage": true},
                }),
            ),
            HttpApi::KServeGenerateStream => (
                format!("{}/v2/models/{}/generate_stream", self.base, self.model),
                json!({"text_input": req.prompt, "max_tokens": req.max_tokens}),
            ),
        }
    }

    async fn stream(&self, req: &RequestSpec) -> Result<Streamed, RequestError> {
        let t0 = Instant::now();
        let (url, body) = self.request(req);
        let resp = self
            .client
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| RequestError::new(ErrorKind::Connect, chain(&e)))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(RequestError::new(
                ErrorKind::HttpStatus,
                format!("HTTP {status} from {url}: {}", clip(&text)),
            ));
        }
        let mut out = Streamed::default();
        let mut parser = SseParser::default();
        let mut done = false;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                RequestError::new(
                    ErrorKind::Incomplete,
                    format!("stream broke: {}", chain(&e)),
                )
            })?;
            let at = t0.elapsed();
            let events = parser
                .push(&chunk)
                .map_err(|e| RequestError::new(ErrorKind::Malformed, e.to_string()))?;
            for data in events {
                if self.event(&data, at, &mut out)? {
                    done = true;
                }
            }
        }
        if let Some(data) = parser
            .finish()
            .map_err(|e| RequestError::new(ErrorKind::Malformed, e.to_string()))?
            && self.event(&data, t0.elapsed(), &mut out)?
        {
            done = true;
        }
        out.end = t0.elapsed();
        // OpenAI streams end with `[DONE]`; KServe streams end with the body.
        if !done && self.api != HttpApi::KServeGenerateStream {
            return Err(RequestError::new(
                ErrorKind::Incomplete,
                format!(
                    "the stream ended without `data: [DONE]` after {} text chunks",
                    out.chunk_times.len()
                ),
            ));
        }
        Ok(out)
    }

    /// Handle one event; `Ok(true)` at the end marker.
    fn event(&self, data: &str, at: Duration, out: &mut Streamed) -> Result<bool, RequestError> {
        if data.trim() == "[DONE]" {
            return Ok(true);
        }
        let v: Value = serde_json::from_str(data).map_err(|e| {
            RequestError::new(
                ErrorKind::Malformed,
                format!("event is not JSON ({e}): {}", clip(data)),
            )
        })?;
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            let msg = err
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| err.to_string());
            return Err(RequestError::new(ErrorKind::EngineError, clip(&msg)));
        }
        let text = match self.api {
            HttpApi::OpenAiCompletions => v
                .pointer("/choices/0/text")
                .and_then(Value::as_str)
                .map(str::to_string),
            HttpApi::OpenAiChat => v
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .map(str::to_string),
            HttpApi::KServeGenerateStream => match v.get("text_output") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Null) => None,
                Some(other) => Some(other.to_string()),
                None => {
                    return Err(RequestError::new(
                        ErrorKind::Malformed,
                        format!("event has no `text_output`: {}", clip(data)),
                    ));
                }
            },
        };
        // Empty text is never a token (OpenAI role/usage chunks, pytriton's batch padding).
        if let Some(t) = text
            && !t.is_empty()
        {
            out.chunk_times.push(at);
            out.text.push_str(&t);
        }
        if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
            let field = |name: &str| u.get(name).and_then(Value::as_u64).map(|n| n as u32);
            out.usage_input_tokens = field("prompt_tokens").or(out.usage_input_tokens);
            out.usage_output_tokens = field("completion_tokens").or(out.usage_output_tokens);
        }
        Ok(false)
    }
}

impl Backend for HttpBackend {
    fn send<'a>(&'a self, req: &'a RequestSpec) -> BoxFuture<'a, Result<Streamed, RequestError>> {
        Box::pin(self.stream(req))
    }
}

/// An error with its sources, on one line.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// At most 300 characters of `s`, control characters removed.
pub fn clip(s: &str) -> String {
    let t: String = s
        .chars()
        .filter(|c| !c.is_control() || *c == ' ')
        .take(300)
        .collect();
    if s.chars().count() > 300 {
        format!("{t}...")
    } else {
        t
    }
}
