//! Sends one rep's requests: closed loop (a fixed number in flight) or open loop (Poisson
//! arrivals on a precomputed schedule).
//!
//! Open loop avoids coordinated omission: every request has an intended send time fixed before
//! the rep starts, and its latencies count from that time, so a server (or a sender) that falls
//! behind shows its queueing as latency instead of silently lowering the offered rate. The
//! calling thread paces: with its timer slack set to 1 ns (the kernel's default is 50 µs; tokio's
//! timer wheel has 1 ms ticks) it sleeps to ~40 µs before each send time and yields the CPU in a
//! loop for the rest, then hands the request to the runtime; the lag between the intended and the
//! actual send is measured for every request. Yielding instead of spinning matters on small
//! machines: a spinning pacer holds a core the runtime's workers need to send the request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_distr::{Distribution, Exp};

use crate::protocol::Backend;
use crate::request::{ErrorKind, Observation, RequestError, RequestSpec};

/// How requests arrive.
#[derive(Clone, Debug, PartialEq)]
pub enum Load {
    /// This many requests in flight at all times.
    Closed { concurrency: u32 },
    /// Poisson arrivals at `rate` requests per second; the schedule comes from `seed`.
    Poisson { rate: f64, seed: u64 },
}

/// One rep as sent: the observations in request order and the wall time it took.
#[derive(Clone, Debug)]
pub struct RepRun {
    pub observations: Vec<Observation>,
    /// From the rep's start to the last request's end.
    pub wall: Duration,
    pub load: Load,
}

/// The intended send offsets of `n` Poisson arrivals (the first at 0).
pub fn poisson_schedule(n: usize, rate: f64, seed: u64) -> Vec<Duration> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let exp = Exp::new(rate.max(f64::MIN_POSITIVE)).ok();
    let mut t = 0.0f64;
    (0..n)
        .map(|i| {
            if i > 0
                && let Some(e) = &exp
            {
                t += e.sample(&mut rng);
            }
            Duration::from_secs_f64(t)
        })
        .collect()
}

/// Send `requests` with `load` on the runtime `rt`, each limited to `timeout`.
pub fn run(
    rt: &tokio::runtime::Runtime,
    backend: Arc<dyn Backend>,
    requests: Vec<RequestSpec>,
    load: &Load,
    timeout: Duration,
) -> RepRun {
    let requests = Arc::new(requests);
    let mut observations = match *load {
        Load::Closed { concurrency } => rt.block_on(closed(
            backend,
            requests.clone(),
            concurrency.max(1) as usize,
            timeout,
            Instant::now(),
        )),
        Load::Poisson { rate, seed } => {
            let schedule = poisson_schedule(requests.len(), rate, seed);
            open(rt, backend, requests.clone(), &schedule, timeout)
        }
    };
    observations.sort_by_key(|o| o.index);
    let wall = observations
        .iter()
        .map(|o| o.intended + o.e2e)
        .max()
        .unwrap_or_default();
    RepRun {
        observations,
        wall,
        load: load.clone(),
    }
}

/// Send one request now; `intended` is its intended time from the rep start `t0`.
async fn one(
    backend: Arc<dyn Backend>,
    req: &RequestSpec,
    t0: Instant,
    intended: Duration,
    timeout: Duration,
) -> Observation {
    let sent = Instant::now();
    let send_lag = sent.saturating_duration_since(t0 + intended);
    let result = match tokio::time::timeout(timeout, backend.send(req)).await {
        Ok(r) => r,
        Err(_) => Err(RequestError::new(
            ErrorKind::Timeout,
            format!("no complete response within {:.1} s", timeout.as_secs_f64()),
        )),
    };
    Observation::from_result(req, intended, send_lag, result, sent.elapsed())
}

async fn closed(
    backend: Arc<dyn Backend>,
    requests: Arc<Vec<RequestSpec>>,
    concurrency: usize,
    timeout: Duration,
    t0: Instant,
) -> Vec<Observation> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..concurrency.min(requests.len()))
        .map(|_| {
            let (backend, requests, next) = (backend.clone(), requests.clone(), next.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(req) = requests.get(i) else { break };
                    // Closed loop: a request is intended when a slot frees up.
                    let intended = t0.elapsed();
                    out.push(one(backend.clone(), req, t0, intended, timeout).await);
                }
                out
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        if let Ok(obs) = w.await {
            all.extend(obs);
        }
    }
    all
}

fn open(
    rt: &tokio::runtime::Runtime,
    backend: Arc<dyn Backend>,
    requests: Arc<Vec<RequestSpec>>,
    schedule: &[Duration],
    timeout: Duration,
) -> Vec<Observation> {
    let handle = rt.handle().clone();
    let slack = FineTimerSlack::set();
    let t0 = Instant::now() + Duration::from_millis(2);
    let mut tasks = Vec::with_capacity(schedule.len());
    let early = hand_off_early();
    for (i, &at) in schedule.iter().enumerate() {
        let due = t0 + at;
        wait_until(due.checked_sub(early).unwrap_or(due));
        let (backend, requests) = (backend.clone(), requests.clone());
        tasks.push(handle.spawn(async move {
            // Handed over `early`: a parked worker wakes in the meantime, and the request waits
            // for its time here, yielding to the worker's other tasks.
            while Instant::now() < due {
                tokio::task::yield_now().await;
            }
            one(backend, &requests[i], t0, at, timeout).await
        }));
    }
    drop(slack);
    rt.block_on(async move {
        let mut out = Vec::with_capacity(tasks.len());
        for t in tasks {
            if let Ok(o) = t.await {
                out.push(o);
            }
        }
        out
    })
}

/// How long before its send time a request is handed to the runtime (`L1_HANDOFF_US`, default
/// 200 µs): enough for a parked worker thread to wake on a busy machine.
/// A value that is not a whole number of microseconds is reported (once) and the default used.
fn hand_off_early() -> Duration {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let us = match std::env::var("L1_HANDOFF_US") {
        Err(_) => 200,
        Ok(v) => v.trim().parse::<u64>().unwrap_or_else(|_| {
            WARNED.call_once(|| {
                eprintln!(
                    "l1: L1_HANDOFF_US: expected a whole number of microseconds (e.g. 200), found {v:?}; using 200"
                );
            });
            200
        }),
    };
    Duration::from_micros(us)
}

/// Sleep until ~40 µs before `deadline` (precise with [`FineTimerSlack`]), then yield the CPU in
/// a loop until it.
pub fn wait_until(deadline: Instant) {
    const SPIN: Duration = Duration::from_micros(40);
    let now = Instant::now();
    if deadline > now + SPIN {
        std::thread::sleep(deadline - now - SPIN);
    }
    while Instant::now() < deadline {
        std::thread::yield_now();
    }
}

/// The calling thread's timer slack at 1 ns while this lives (Linux; elsewhere nothing), so that
/// its sleeps end on time instead of up to 50 µs late; the previous slack is restored on drop.
#[derive(Debug)]
pub struct FineTimerSlack(#[allow(dead_code)] Option<u64>);

impl FineTimerSlack {
    pub fn set() -> Self {
        #[cfg(target_os = "linux")]
        {
            let old = rustix::thread::current_timer_slack().ok();
            let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1));
            Self(old)
        }
        #[cfg(not(target_os = "linux"))]
        Self(None)
    }
}

impl Drop for FineTimerSlack {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        if let Some(old) = self.0 {
            let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(old));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn poisson_schedule_has_the_rate_and_is_seeded() {
        let s = poisson_schedule(20_001, 100.0, 7);
        assert_eq!(s[0], Duration::ZERO);
        assert!(s.windows(2).all(|w| w[0] <= w[1]));
        let rate = 20_000.0 / s.last().unwrap().as_secs_f64();
        // 20k exponential gaps: the rate estimate's sd is 100/sqrt(20k) ~ 0.7.
        assert!((rate - 100.0).abs() < 4.0, "rate {rate}");
        assert_eq!(s, poisson_schedule(20_001, 100.0, 7));
        assert_ne!(s, poisson_schedule(20_001, 100.0, 8));
    }
}
