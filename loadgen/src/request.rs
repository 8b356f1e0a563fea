//! One request and what was observed of it.

use std::time::Duration;

/// A request to send.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestSpec {
    /// Position in the rep.
    pub index: usize,
    /// The prompt text.
    pub prompt: String,
    /// The prompt length the workload asked for, in the engine's tokens.
    pub target_input_tokens: u32,
    /// Tokens to generate (sent as `max_tokens`, with `ignore_eos` where the engine has it).
    pub max_tokens: u32,
}

/// Why a request failed. Counted per kind in each rep.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No connection (refused, reset before the response head).
    Connect,
    /// The request did not finish within the workload's timeout.
    Timeout,
    /// The server answered with a non-2xx status.
    HttpStatus,
    /// The body was not the protocol's stream (bad SSE framing, bad JSON, missing fields).
    Malformed,
    /// The stream reported an error object.
    EngineError,
    /// The stream ended before its end marker, or the connection dropped mid-stream.
    Incomplete,
    /// The request completed without generating a token.
    NoTokens,
    /// The in-process engine failed.
    Engine,
}

impl ErrorKind {
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::Malformed => "malformed",
            ErrorKind::EngineError => "engine_error",
            ErrorKind::Incomplete => "incomplete",
            ErrorKind::NoTokens => "no_tokens",
            ErrorKind::Engine => "engine",
        }
    }
}

/// A failed request: its kind and the detail (status line, parse error, engine message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestError {
    pub kind: ErrorKind,
    pub detail: String,
}

impl RequestError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

/// What a backend reports for one request, times relative to the moment it began sending.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Streamed {
    /// Arrival time of each chunk that carried generated text.
    pub chunk_times: Vec<Duration>,
    /// The completion's end (the end marker or the end of the body).
    pub end: Duration,
    /// Prompt tokens from the engine's usage report, if it sent one.
    pub usage_input_tokens: Option<u32>,
    /// Generated tokens from the engine's usage report, if it sent one.
    pub usage_output_tokens: Option<u32>,
    /// Per generated token log-probability, where the engine returned them.
    pub logprobs: Vec<f32>,
    /// The generated text.
    pub text: String,
}

/// One request as measured. All durations count from the request's *intended* send time, so
/// an open-loop sender that falls behind its schedule shows up as latency, not as a lower rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    pub index: usize,
    /// Intended send time, from the start of the rep.
    pub intended: Duration,
    /// How late the request was actually sent (actual minus intended).
    pub send_lag: Duration,
    /// Time to first token.
    pub ttft: Option<Duration>,
    /// Gaps between successive text chunks.
    pub itl: Vec<Duration>,
    /// End-to-end latency (also set for failures: when the failure was seen).
    pub e2e: Duration,
    pub input_tokens: u32,
    pub output_tokens: u32,
    /// Whether the token counts came from the engine's usage report (else: chunks / the target).
    pub counted_from_usage: bool,
    pub error: Option<RequestError>,
}

impl Observation {
    /// Build from a backend's result.
    pub fn from_result(
        req: &RequestSpec,
        intended: Duration,
        send_lag: Duration,
        result: Result<Streamed, RequestError>,
        failed_after: Duration,
    ) -> Self {
        let mut o = Observation {
            index: req.index,
            intended,
            send_lag,
            ttft: None,
            itl: Vec::new(),
            e2e: send_lag + failed_after,
            input_tokens: req.target_input_tokens,
            output_tokens: 0,
            counted_from_usage: false,
            error: None,
        };
        match result {
            Err(e) => o.error = Some(e),
            Ok(s) if s.chunk_times.is_empty() => {
                o.e2e = send_lag + s.end;
                o.error = Some(RequestError::new(
                    ErrorKind::NoTokens,
                    "the stream ended without generated text",
                ));
            }
            Ok(s) => {
                o.ttft = Some(send_lag + s.chunk_times[0]);
                o.itl = s.chunk_times.windows(2).map(|w| w[1] - w[0]).collect();
                o.e2e = send_lag + s.end;
                o.counted_from_usage = s.usage_output_tokens.is_some();
                o.output_tokens = s.usage_output_tokens.unwrap_or(s.chunk_times.len() as u32);
                o.input_tokens = s.usage_input_tokens.unwrap_or(req.target_input_tokens);
            }
        }
        o
    }

    /// Time per output token after the first.
    pub fn tpot(&self) -> Option<Duration> {
        let ttft = self.ttft?;
        (self.output_tokens > 1).then(|| (self.e2e - ttft) / (self.output_tokens - 1))
    }
}
