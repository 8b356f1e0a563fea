//! A streaming endpoint with known timing and injectable faults: the load generator's test
//! fixture and benchmark target.
//!
//! Speaks HTTP/1.1 with keep-alive and chunked bodies on `127.0.0.1`: `POST /v1/completions`,
//! `/v1/chat/completions` (OpenAI-style SSE with a usage chunk and `[DONE]`),
//! `/v2/models/<m>/generate_stream` (KServe-style SSE), `POST /tokenize` (one token per
//! whitespace-separated word), `GET /health`, `GET /metrics`. Each request waits `ttft`, sends
//! its first token, then one token every `itl`. Every event carries `fixture_us`: the server's
//! own time since it read the request, so a client's timing error can be measured exactly.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A fault the fixture injects into every `every`-th request (counting from 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `500 Internal Server Error` with a JSON error body.
    Http500,
    /// A body that is not SSE.
    MalformedSse,
    /// An event whose data is not JSON.
    BadJson,
    /// The connection closes after two tokens.
    DropMidStream,
    /// An OpenAI error object in the stream.
    ErrorEvent,
    /// The response head, then nothing (for timeouts).
    Stall,
}

/// Timing and faults.
#[derive(Clone, Copy, Debug)]
pub struct FixtureConfig {
    pub ttft: Duration,
    pub itl: Duration,
    pub fault: Option<(Fault, u64)>,
}

impl Default for FixtureConfig {
    fn default() -> Self {
        Self {
            ttft: Duration::from_millis(5),
            itl: Duration::from_millis(1),
            fault: None,
        }
    }
}

/// A running fixture; stops when dropped (its runtime is shut down).
#[derive(Debug)]
pub struct Fixture {
    pub port: u16,
    pub requests: Arc<AtomicU64>,
    _rt: tokio::runtime::Runtime,
}

impl Fixture {
    /// Start on a free port with its own runtime of `threads` workers.
    pub fn start(config: FixtureConfig, threads: usize) -> std::io::Result<Self> {
        Self::start_on(config, threads, 0)
    }

    /// Start on `port` (0: a free one).
    pub fn start_on(config: FixtureConfig, threads: usize, port: u16) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .enable_all()
            .build()?;
        let listener = rt.block_on(TcpListener::bind(("127.0.0.1", port)))?;
        let port = listener.local_addr()?.port();
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        rt.spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let _ = sock.set_nodelay(true);
                tokio::spawn(connection(sock, config, counter.clone()));
            }
        });
        Ok(Self {
            port,
            requests,
            _rt: rt,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Serve one connection until the client closes it.
pub async fn connection(sock: TcpStream, config: FixtureConfig, counter: Arc<AtomicU64>) {
    let (rd, mut wr) = sock.into_split();
    let mut rd = BufReader::new(rd);
    loop {
        let mut head = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            match rd.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" || line == "\n" => break,
                Ok(_) => head.push_str(&line),
            }
        }
        let t0 = Instant::now();
        let mut lines = head.lines();
        let request_line = lines.next().unwrap_or_default().to_string();
        let len = lines
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if rd.read_exact(&mut body).await.is_err() {
            return;
        }
        let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
        let ok = match path.as_str() {
            "/health" => simple(&mut wr, 200, "{\"status\":\"ok\"}").await,
            "/metrics" => {
                let n = counter.load(Ordering::Relaxed);
                simple(&mut wr, 200, &format!("fixture_requests_total {n}\n")).await
            }
            "/tokenize" => {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let text = v
                    .get("content")
                    .or_else(|| v.get("prompt"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let n = text.split_whitespace().count();
                simple(
                    &mut wr,
                    200,
                    &json!({"tokens": vec![0; n], "count": n}).to_string(),
                )
                .await
            }
            p if p.starts_with("/v1/") || p.ends_with("/generate_stream") => {
                let nth = counter.fetch_add(1, Ordering::Relaxed) + 1;
                let fault = config
                    .fault
                    .and_then(|(f, every)| (every > 0 && nth.is_multiple_of(every)).then_some(f));
                stream(&mut wr, &path, &body, config, fault, t0).await
            }
            _ => simple(&mut wr, 404, "{\"error\":\"not found\"}").await,
        };
        if !ok {
            return;
        }
    }
}

async fn simple(wr: &mut (impl AsyncWriteExt + Unpin), status: u16, body: &str) -> bool {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let msg = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    wr.write_all(msg.as_bytes()).await.is_ok()
}

async fn chunk(wr: &mut (impl AsyncWriteExt + Unpin), data: &str) -> bool {
    let msg = format!("{:x}\r\n{data}\r\n", data.len());
    wr.write_all(msg.as_bytes()).await.is_ok() && wr.flush().await.is_ok()
}

async fn stream(
    wr: &mut (impl AsyncWriteExt + Unpin),
    path: &str,
    body: &[u8],
    config: FixtureConfig,
    fault: Option<Fault>,
    t0: Instant,
) -> bool {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let n = v
        .get("max_tokens")
        .and_then(Value::as_u64)
        .unwrap_or(16)
        .max(1);
    let prompt_tokens = v
        .get("prompt")
        .or_else(|| v.get("text_input"))
        .and_then(Value::as_str)
        .map_or(1, |p| p.split_whitespace().count());
    if fault == Some(Fault::Http500) {
        return simple(wr, 500, "{\"error\":{\"message\":\"injected failure\"}}").await;
    }
    let head =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    if wr.write_all(head.as_bytes()).await.is_err() {
        return false;
    }
    let kserve = path.ends_with("/generate_stream");
    let chat = path.contains("chat");
    match fault {
        Some(Fault::Stall) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return false;
        }
        Some(Fault::MalformedSse) => {
            return chunk(wr, "<html>upstream error</html>\n\n").await && chunk(wr, "").await;
        }
        _ => {}
    }
    tokio::time::sleep(config.ttft.saturating_sub(t0.elapsed())).await;
    for i in 0..n {
        if i > 0 {
            tokio::time::sleep(config.itl).await;
        }
        if fault == Some(Fault::DropMidStream) && i == 2 {
            return false;
        }
        if fault == Some(Fault::BadJson) && i == 1 {
            return chunk(wr, "data: {not json\n\n").await && chunk(wr, "").await;
        }
        if fault == Some(Fault::ErrorEvent) && i == 1 {
            let e = json!({"error": {"message": "injected engine error", "code": 500}});
            return chunk(wr, &format!("data: {e}\n\n")).await && chunk(wr, "").await;
        }
        let us = t0.elapsed().as_micros() as u64;
        let ev = if kserve {
            json!({"model_name": "fixture", "text_output": " tok", "fixture_us": us})
        } else if chat {
            json!({"choices": [{"index": 0, "delta": {"content": " tok"}}], "fixture_us": us})
        } else {
            json!({"choices": [{"index": 0, "text": " tok"}], "fixture_us": us})
        };
        if !chunk(wr, &format!("data: {ev}\n\n")).await {
            return false;
        }
    }
    if !kserve {
        let usage = json!({"choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n}});
        if !chunk(wr, &format!("data: {usage}\n\ndata: [DONE]\n\n")).await {
            return false;
        }
    }
    chunk(wr, "").await
}
