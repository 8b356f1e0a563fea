//! The engine loop of one rep: arrivals, KV-limited admission, iterations of prefill plus
//! decode, and the per-request records the metrics are computed from.
//!
//! The loop advances one engine iteration at a time (never one token per request), keeps all
//! per-request state in one pre-allocated vector, and allocates nothing per iteration beyond
//! the amortised growth of the inter-token gap log.

use std::collections::{BTreeMap, VecDeque};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp};

use crate::metrics::quantile;
use crate::{Arrival, Metrics, Workload};

use super::cost::Cost;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// Requests admitted at most per batch (`max_num_seqs`).
const MAX_BATCH: usize = 256;
/// Runtime memory beside weights and KV (CUDA context, activations, graphs), for peak memory.
const RUNTIME_GIB: f64 = 0.75;
/// Seed of the request set: every rep and every combo replays the same prompts.
const SHAPE_SEED: u64 = 0x5EED;
/// A safety net against a degenerate workload looping forever.
const MAX_ITERATIONS: u64 = 20_000_000;

/// A request shape: prompt tokens and tokens to generate.
#[derive(Clone, Copy, Debug)]
pub(super) struct Shape {
    pub input: u32,
    pub output: u32,
}

/// The fixed, seeded request set of a workload. Every request has at least one prompt token and
/// one output token.
pub(super) fn shapes(w: &Workload) -> Vec<Shape> {
    let mut rng = ChaCha8Rng::seed_from_u64(SHAPE_SEED);
    (0..w.requests)
        .map(|_| Shape {
            input: w.input_tokens.sample(&mut rng).max(1),
            output: w.output_tokens.sample(&mut rng).max(1),
        })
        .collect()
}

/// One request's state and record.
#[derive(Clone, Copy, Debug)]
struct Req {
    shape: Shape,
    /// Intended send time (closed loop: when a slot freed; open loop: the Poisson draw).
    arrival: f64,
    first: f64,
    finish: f64,
    prefilled: u32,
    generated: u32,
    /// KV bytes reserved while running.
    kv: f64,
    failed: bool,
}

/// Simulate one rep with every iteration time multiplied by `slow`. `arrival_rng` draws the
/// Poisson arrivals; `inject_errors` fails every second request at once.
pub(super) fn simulate(
    cost: &Cost,
    w: &Workload,
    shapes: &[Shape],
    slow: f64,
    arrival_rng: &mut ChaCha8Rng,
    inject_errors: bool,
) -> Metrics {
    let n = shapes.len();
    let mut reqs: Vec<Req> = shapes
        .iter()
        .enumerate()
        .map(|(i, &shape)| Req {
            shape,
            arrival: f64::INFINITY,
            first: f64::NAN,
            finish: f64::NAN,
            prefilled: 0,
            generated: 0,
            kv: cost.reserve(shape.input, shape.output),
            failed: inject_errors && i % 2 == 0,
        })
        .collect();
    // Requests are sent in index order, so `arrival` is non-decreasing along `reqs`; in the
    // closed loop `next_closed` is the next request to send when a slot frees.
    let mut next_closed = n;
    match w.arrival {
        Arrival::Concurrency(c) => {
            next_closed = (c as usize).min(n);
            for r in &mut reqs[..next_closed] {
                r.arrival = 0.0;
            }
        }
        Arrival::Poisson { rate } => {
            let exp = Exp::new(rate).or_else(|_| Exp::new(1.0));
            let mut t = 0.0;
            for r in &mut reqs {
                t += exp.as_ref().map_or(1.0, |e| e.sample(arrival_rng));
                r.arrival = t;
            }
        }
    }

    let mut waiting: VecDeque<usize> = VecDeque::with_capacity(n);
    let mut running: Vec<usize> = Vec::with_capacity(n.min(MAX_BATCH));
    // Inter-token gaps: (gap, how many requests saw it), one entry per decoding iteration.
    let mut gaps: Vec<(f64, u32)> = Vec::with_capacity(4 * n + 64);
    let mut next_arrival = 0usize;
    let mut done = 0usize;
    let mut t = 0.0f64;
    let mut kv_in_use = 0.0f64;
    let mut peak_kv = 0.0f64;
    let mut iterations = 0u64;

    while done < n && iterations < MAX_ITERATIONS {
        iterations += 1;
        while next_arrival < n && reqs[next_arrival].arrival <= t {
            let i = next_arrival;
            next_arrival += 1;
            if reqs[i].failed {
                // Rejected at once (an HTTP error): the closed-loop client sends the next one.
                reqs[i].finish = reqs[i].arrival;
                done += 1;
                if next_closed < n {
                    reqs[next_closed].arrival = t;
                    next_closed += 1;
                }
            } else {
                waiting.push_back(i);
            }
        }
        // First come, first served while KV lasts; a request larger than the whole cache still
        // runs alone rather than never.
        while let Some(&i) = waiting.front() {
            let need = reqs[i].kv;
            if running.len() >= MAX_BATCH
                || (kv_in_use + need > cost.kv_budget_bytes && !running.is_empty())
            {
                break;
            }
            waiting.pop_front();
            kv_in_use += need;
            running.push(i);
        }
        peak_kv = peak_kv.max(kv_in_use);
        if running.is_empty() {
            match reqs.get(next_arrival).map(|r| r.arrival) {
                Some(a) if a.is_finite() => {
                    t = t.max(a);
                    continue;
                }
                _ => break,
            }
        }

        // One iteration: prefill within the token budget, one decode token for the others.
        let mut budget = cost.prefill_budget;
        let mut prefill_started = false;
        let (mut prefill, mut prefill_pairs) = (0.0f64, 0.0f64);
        let (mut decoders, mut ctx_sum) = (0usize, 0.0f64);
        for &i in &running {
            let r = &mut reqs[i];
            let left = r.shape.input - r.prefilled;
            if left == 0 {
                decoders += 1;
                ctx_sum += f64::from(r.shape.input + r.generated);
                continue;
            }
            // Chunked prefill splits a prompt at the budget; otherwise prompts go whole, and
            // one longer than the budget runs alone in its iteration.
            let take = if cost.chunked {
                left.min(budget)
            } else if left <= budget || !prefill_started {
                left
            } else {
                0
            };
            if take == 0 {
                continue;
            }
            prefill_started = true;
            budget = budget.saturating_sub(take);
            let (a, b) = (f64::from(r.prefilled), f64::from(r.prefilled + take));
            prefill += f64::from(take);
            // Causal attention: token k attends to k earlier-or-equal tokens.
            prefill_pairs += (b * b - a * a) / 2.0;
            r.prefilled += take;
        }
        let dt = cost.iteration(decoders, ctx_sum, prefill, prefill_pairs, running.len()) * slow;
        t += dt;
        if decoders > 0 {
            gaps.push((dt, decoders as u32));
        }

        running.retain(|&i| {
            let r = &mut reqs[i];
            if r.prefilled < r.shape.input {
                return true;
            }
            // A request past its prefill with no token yet finished its prefill this iteration:
            // that iteration produced its first token.
            if r.generated == 0 {
                r.first = t;
            }
            r.generated += 1;
            if r.generated < r.shape.output {
                return true;
            }
            r.finish = t;
            done += 1;
            kv_in_use -= r.kv;
            if next_closed < n {
                reqs[next_closed].arrival = t;
                next_closed += 1;
            }
            false
        });
    }
    metrics(cost, w, &reqs, &gaps, peak_kv)
}

/// The metrics of one rep from its request records.
fn metrics(cost: &Cost, w: &Workload, reqs: &[Req], gaps: &[(f64, u32)], peak_kv: f64) -> Metrics {
    let ok: Vec<&Req> = reqs
        .iter()
        .filter(|r| !r.failed && r.finish.is_finite())
        .collect();
    let failed = reqs.len() - ok.len();
    // The makespan runs from the first possible send (time 0) to the last completion.
    let end = ok.iter().map(|r| r.finish).fold(0.0f64, f64::max);
    let span = end.max(1e-9);
    let ttft: Vec<f64> = ok.iter().map(|r| (r.first - r.arrival) * 1e3).collect();
    let e2e: Vec<f64> = ok.iter().map(|r| (r.finish - r.arrival) * 1e3).collect();
    let tpot: Vec<f64> = ok
        .iter()
        .map(|r| {
            if r.shape.output > 1 {
                (r.finish - r.first) * 1e3 / f64::from(r.shape.output - 1)
            } else {
                0.0
            }
        })
        .collect();
    let tokens: f64 = ok.iter().map(|r| f64::from(r.shape.output)).sum();
    let slo = &w.slo;
    let good = (0..ok.len())
        .filter(|&k| {
            slo.ttft_ms.is_none_or(|s| ttft[k] <= s)
                && slo.tpot_ms.is_none_or(|s| tpot[k] <= s)
                && slo.e2e_ms.is_none_or(|s| e2e[k] <= s)
        })
        .count();

    let mut out = BTreeMap::new();
    let q = |v: &[f64], p: f64| quantile(v, p).unwrap_or(0.0);
    out.insert("output_tokens_per_s".into(), tokens / span);
    out.insert("requests_per_s".into(), ok.len() as f64 / span);
    out.insert("goodput_requests_per_s".into(), good as f64 / span);
    for (name, v) in [("ttft", &ttft), ("tpot", &tpot), ("e2e", &e2e)] {
        for (p, label) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
            out.insert(format!("{name}_{label}_ms"), q(v, p));
        }
    }
    let mut gaps = gaps.to_vec();
    gaps.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    for (p, label) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
        out.insert(format!("itl_{label}_ms"), weighted_quantile(&gaps, p) * 1e3);
    }
    out.insert(
        "peak_memory_gib".into(),
        (cost.weights_bytes + peak_kv) / GIB + RUNTIME_GIB,
    );
    out.insert(
        "error_rate".into(),
        failed as f64 / reqs.len().max(1) as f64,
    );
    out
}

/// The `p`-quantile of gaps each seen by a number of requests (sorted by gap): the smallest gap
/// with at least a `p` share of all observed gaps at or below it.
fn weighted_quantile(sorted: &[(f64, u32)], p: f64) -> f64 {
    let total: u64 = sorted.iter().map(|x| u64::from(x.1)).sum();
    let target = ((p * total as f64).ceil() as u64).max(1);
    let mut acc = 0u64;
    for &(gap, count) in sorted {
        acc += u64::from(count);
        if acc >= target {
            return gap;
        }
    }
    sorted.last().map_or(0.0, |x| x.0)
}
