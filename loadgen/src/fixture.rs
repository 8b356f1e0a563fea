//! A streaming endpoint with known timing and injectable faults: the load generator's test
//! fixture and benchmark target.
//!
//! Speaks HTTP/1.1 with keep-alive and chunked bodies on `127.0.0.1`: `POST /v1/completions`,
//! `/v1/chat/completions` (OpenAI-style SSE with a usage chunk and `[DONE]`),
//! `/v2/models/<m>/generate_stream` (KServe-style SSE), `POST /tokenize` (one token per
//! whitespace-separated word), `GET /health`, `GET /metrics`, `GET /stats`. Each request's first
//! token is due `ttft` after the fixture read the request and token `i` is due `i * itl` after
//! that (a fixed schedule: a late token does not delay the next). Every event carries
//! `fixture_us`: the server's own time since it read the request, so a client's timing error can
//! be measured exactly.
//!
//! Tokens are released by a dedicated timer thread (condition-variable waits with 1 ns timer
//! slack: a few µs late when the machine is idle), not by tokio's timer wheel, which rounds every sleep up to the next millisecond: the
//! fixture's own timing error must be small against the client's it is used to measure.
//! `GET /stats` returns, for every generation request so far, when it arrived (µs since the
//! fixture started) and when the fixture wrote its first token (µs after arrival), so a
//! benchmark can measure the rate a client really delivered and the fixture's own lateness.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
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
    /// Not a failure: empty text events around the tokens, as pytriton's decoupled models send
    /// to a request whose batch is still decoding (`"text_output": ""`; `""` text in OpenAI
    /// streams): one right after the response head, before the first token, and
    /// [`EMPTY_TRAILING_EVENTS`] after the last, one every `itl`. The request still generates
    /// exactly `max_tokens` tokens.
    EmptyEvents,
}

/// How many empty events [`Fault::EmptyEvents`] sends after the last token.
pub const EMPTY_TRAILING_EVENTS: u32 = 3;

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
    /// Per-request arrival and first-token times (also served as `GET /stats`).
    pub stats: Arc<Stats>,
    _rt: tokio::runtime::Runtime,
}

/// What the fixture saw of each generation request.
#[derive(Debug)]
pub struct Stats {
    start: Instant,
    /// (arrival µs since the fixture started, first token written µs after arrival or
    /// `u64::MAX` when none was).
    requests: Mutex<Vec<(u64, u64)>>,
}

impl Stats {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            requests: Mutex::new(Vec::new()),
        }
    }

    fn arrived(&self, at: Instant) -> usize {
        let us = at.saturating_duration_since(self.start).as_micros() as u64;
        let mut r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        r.push((us, u64::MAX));
        r.len() - 1
    }

    fn first_token(&self, slot: usize, after: Duration) {
        let mut r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = r.get_mut(slot) {
            e.1 = after.as_micros() as u64;
        }
    }

    /// `{"arrival_us": [...], "first_token_us": [...]}` (`null` where no token was written).
    pub fn to_json(&self) -> Value {
        let r = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let arrival: Vec<u64> = r.iter().map(|e| e.0).collect();
        let first: Vec<Option<u64>> = r.iter().map(|e| (e.1 != u64::MAX).then_some(e.1)).collect();
        json!({"arrival_us": arrival, "first_token_us": first})
    }
}

/// Releases waiters at their deadlines from one thread, which sleeps on a condition variable
/// until the earliest deadline with its timer slack at 1 ns (the kernel's default, 50 µs, would
/// make every token up to 50 µs late). It never spins: the fixture shares the machine with the
/// client it measures.
#[derive(Debug, Default)]
struct Timer {
    queue: Mutex<TimerQueue>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct TimerQueue {
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    waiters: std::collections::HashMap<u64, tokio::sync::oneshot::Sender<()>>,
    next_id: u64,
}

impl Timer {
    fn start() -> Arc<Self> {
        let t = Arc::new(Self::default());
        let weak = Arc::downgrade(&t);
        std::thread::Builder::new()
            .name("fixture-timer".into())
            .spawn(move || {
                let _slack = crate::driver::FineTimerSlack::set();
                while let Some(t) = weak.upgrade() {
                    if !t.tick() {
                        return;
                    }
                }
            })
            .ok();
        t
    }

    /// Wait for the next deadline (at most 50 ms, so a dropped fixture's thread ends) and
    /// release every waiter due. `false` once nobody else holds the timer.
    fn tick(self: &Arc<Self>) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match q.heap.peek().map(|Reverse((at, _))| *at) {
            Some(at) if at <= now => {
                while let Some(Reverse((at, id))) = q.heap.peek().copied() {
                    if at > now {
                        break;
                    }
                    q.heap.pop();
                    if let Some(tx) = q.waiters.remove(&id) {
                        let _ = tx.send(());
                    }
                }
            }
            head => {
                let wait = head.map_or(Duration::from_millis(50), |at| {
                    (at - now).min(Duration::from_millis(50))
                });
                let (g, _) = self
                    .wake
                    .wait_timeout(q, wait)
                    .unwrap_or_else(|e| e.into_inner());
                drop(g);
            }
        }
        Arc::strong_count(self) > 1
    }

    async fn sleep_until(&self, at: Instant) {
        if at <= Instant::now() {
            return;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            let id = q.next_id;
            q.next_id += 1;
            let earliest = q.heap.peek().is_none_or(|Reverse((h, _))| at < *h);
            q.heap.push(Reverse((at, id)));
            q.waiters.insert(id, tx);
            if earliest {
                self.wake.notify_one();
            }
        }
        let _ = rx.await;
    }
}

/// What every connection shares.
#[derive(Debug)]
pub struct Shared {
    config: FixtureConfig,
    counter: Arc<AtomicU64>,
    stats: Arc<Stats>,
    timer: Arc<Timer>,
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
        let stats = Arc::new(Stats::new());
        let shared = Arc::new(Shared {
            config,
            counter: requests.clone(),
            stats: stats.clone(),
            timer: Timer::start(),
        });
        rt.spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let _ = sock.set_nodelay(true);
                tokio::spawn(connection(sock, shared.clone()));
            }
        });
        Ok(Self {
            port,
            requests,
            stats,
            _rt: rt,
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Serve one connection until the client closes it.
pub async fn connection(sock: TcpStream, shared: Arc<Shared>) {
    let (config, counter) = (shared.config, &shared.counter);
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
            "/stats" => simple(&mut wr, 200, &shared.stats.to_json().to_string()).await,
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
                let slot = shared.stats.arrived(t0);
                stream(&mut wr, &path, &body, &shared, fault, t0, slot).await
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
    shared: &Shared,
    fault: Option<Fault>,
    t0: Instant,
    slot: usize,
) -> bool {
    let config = shared.config;
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
    let event = |text: &str, us: u64| {
        if kserve {
            json!({"model_name": "fixture", "text_output": text, "fixture_us": us})
        } else if chat {
            json!({"choices": [{"index": 0, "delta": {"content": text}}], "fixture_us": us})
        } else {
            json!({"choices": [{"index": 0, "text": text}], "fixture_us": us})
        }
    };
    let empty = fault == Some(Fault::EmptyEvents);
    if empty {
        let ev = event("", t0.elapsed().as_micros() as u64);
        if !chunk(wr, &format!("data: {ev}\n\n")).await {
            return false;
        }
    }
    let first = t0 + config.ttft;
    for i in 0..n {
        shared
            .timer
            .sleep_until(first + config.itl * i as u32)
            .await;
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
        let ev = event(" tok", us);
        if !chunk(wr, &format!("data: {ev}\n\n")).await {
            return false;
        }
        if i == 0 {
            shared.stats.first_token(slot, Duration::from_micros(us));
        }
    }
    for _ in 0..if empty { EMPTY_TRAILING_EVENTS } else { 0 } {
        tokio::time::sleep(config.itl).await;
        let ev = event("", t0.elapsed().as_micros() as u64);
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
