//! The simulated engine: a roofline model of transformer serving on a hardware profile, with an
//! iteration-level (continuous batching) queue, seeded noise and known truth.
//!
//! Each iteration of the engine runs the prefill of newly admitted requests plus one decode token
//! for every running request. Its time is
//!
//! ```text
//! linear    = max(2·params·tokens / (peak · gemm_eff),  weight_bytes / (bandwidth · bw_eff))
//! attention = attn_factor · (kv_bytes_read / (bandwidth · bw_eff) + prefill_attn_flops / (peak · 0.5))
//! overhead  = layers · kernels_per_layer · 4 µs · graph_factor + 0.1 ms
//! ```
//!
//! Requests arrive per the workload (closed loop at a fixed concurrency, or Poisson with latency
//! measured from the intended arrival time), are admitted while KV memory lasts, and record TTFT,
//! inter-token gaps and end-to-end latency. Request shapes are drawn from the workload with a
//! fixed seed, as a real benchmark replays one seeded prompt set, so reps differ only by noise.
//!
//! Per-dimension effects (multipliers; `unset` means the engine default):
//!
//! | dimension | value | effect | rationale |
//! |---|---|---|---|
//! | attention_backend | flash_attn_v3 | attention time ×1.00 | Hopper-specific TMA/warp-specialised kernels |
//! | | flash_attn_v2 | ×1.25 | the common fast path before Hopper kernels |
//! | | paged_attention | ×1.40 | block-table indirection, less fusion |
//! | | xformers | ×1.45 | memory-efficient but generic |
//! | | native | ×2.20 | unfused softmax(QKᵀ)V materialises scores |
//! | kv_layout | contiguous | reserves a context window (model's, capped at 8,192 tokens) per request | no fragmentation, far fewer concurrent requests |
//! | | paged | KV use ×1.04 (block rounding) | the vLLM/TGI default |
//! | | chunked | paged + prefill in 512-token chunks | lower decode stalls, slightly later first tokens |
//! | matmul_path | cublas / cutlass / triton / machete | GEMM efficiency 0.70 / 0.72 / 0.67 / 0.74 (fp8), 0.72 otherwise | vendor library vs templates vs JIT; machete targets quantized/fp8 weights |
//! | activation_dtype | fp16, bf16 | 2-byte weights, fp16/bf16 peak | equal speed in practice |
//! | | fp8_e4m3, fp8_e5m2 | 1-byte weights, fp8 peak (bf16 peak where absent) | halves weight traffic, doubles tensor throughput |
//! | fusion_strategy | none / conservative / aggressive | kernels per layer 14 / 9 / 6; bandwidth efficiency ×0.95 / ×1.00 / ×1.03 | fewer launches and fewer round trips to memory |
//! | cuda_graph | off / per-shape / dynamic | launch overhead ×1.0 / ×0.1 / ×0.25 (CPU devices: always ×1.0) | graphs remove per-kernel CPU launch cost, which dominates at small batch |
//! | kv_cache_dtype | auto / fp16 / bf16 / fp8_* / q8_0 / q4_0 | bytes per element act / 2 / 2 / 1 / 1.0625 / 0.5625; attention ×1 / 1 / 1 / 1.03 / 1.08 / 1.15 | smaller caches fit more requests and read less; dequantisation costs a little |
//!
//! Knobs: `block_size` (16 or 32: 32 rounds KV up more, ×1.06, but its decode reads ×0.99) and
//! `fault` (`none`, `launch`: the launch fails; `crash`: the engine dies at rep index 2;
//! `errors`: half the requests of every rep fail).

use std::collections::BTreeMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, LogNormal, Normal};

use crate::combo::UNSET;
use crate::metrics::quantile;
use crate::{Arrival, Combo, DeviceKind, Dist, HardwareProfile, Metrics, ModelProfile, Workload};

/// The sim engine's version, as specs name it (`sim@1.0`).
pub const SIM_VERSION: &str = "1.0";

/// What the sim runs against.
#[derive(Clone, Copy, Debug)]
pub struct SimTarget<'a> {
    pub model: &'a ModelProfile,
    pub hardware: &'a HardwareProfile,
    pub workload: &'a Workload,
}

/// Why a simulated launch or rep failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    #[error("engine exited during startup: {message}")]
    LaunchFailed { message: String },
    #[error("engine crashed during rep {rep}: {message}")]
    Crashed { rep: u32, message: String },
    #[error("the sim engine does not support {dimension}={value} (valid: {valid})")]
    Unsupported {
        dimension: String,
        value: String,
        valid: String,
    },
    #[error("the model does not fit: weights need {weights_gib:.1} GiB of {memory_gib:.1} GiB")]
    DoesNotFit { weights_gib: f64, memory_gib: f64 },
}

/// The shape of per-rep noise. The default is log-normal with rare slow outliers; statistics
/// benchmarks switch it to test procedures under other noise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseModel {
    /// Log-normal (`exp(N(0, cv))`) when true, else normal (`1 + N(0, cv)`, kept above 0.5).
    pub lognormal: bool,
    /// Probability that a rep is an outlier, and how much slower it is then.
    pub outlier_p: f64,
    pub outlier_slowdown: f64,
}

impl Default for NoiseModel {
    fn default() -> Self {
        Self {
            lognormal: true,
            outlier_p: 0.04,
            outlier_slowdown: 1.15,
        }
    }
}
/// Requests admitted at most per batch.
const MAX_BATCH: usize = 256;
/// Prefill tokens per iteration with chunked prefill.
const CHUNK: u32 = 512;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The resolved cost model of one combo on one target.
#[derive(Clone, Debug)]
struct Model {
    params: f64,
    peak_flops: f64,
    gemm_eff: f64,
    bw: f64,
    attn_factor: f64,
    kv_bytes_per_token: f64,
    kv_overhead: f64,
    /// Tokens reserved per request by a contiguous KV cache (0 = paged).
    contiguous_tokens: f64,
    chunked: bool,
    overhead_s: f64,
    attn_flops_per_token_ctx: f64,
    weights_bytes: f64,
    kv_budget_bytes: f64,
    fault: Fault,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    Launch,
    Crash,
    Errors,
}

fn pick<'v>(combo: &'v Combo, dim: &str, default: &'v str) -> &'v str {
    match combo.dims.get(dim).map(String::as_str) {
        None | Some(UNSET) => default,
        Some(v) => v,
    }
}

fn unsupported(dimension: &str, value: &str, valid: &[&str]) -> SimError {
    SimError::Unsupported {
        dimension: dimension.into(),
        value: value.into(),
        valid: valid.join(", "),
    }
}

const DIMS: &[&str] = &[
    "attention_backend",
    "kv_layout",
    "matmul_path",
    "activation_dtype",
    "fusion_strategy",
    "cuda_graph",
    "kv_cache_dtype",
];

impl Model {
    fn new(t: &SimTarget<'_>, combo: &Combo) -> Result<Self, SimError> {
        for d in combo.dims.keys() {
            if !DIMS.contains(&d.as_str()) {
                return Err(unsupported("dimension", d, DIMS));
            }
        }
        let hw = t.hardware;
        let m = t.model;
        let attn = pick(combo, "attention_backend", "flash_attn_v2");
        let attn_factor = match attn {
            "flash_attn_v3" => 1.0,
            "flash_attn_v2" => 1.25,
            "paged_attention" => 1.40,
            "xformers" => 1.45,
            "native" => 2.20,
            v => {
                return Err(unsupported(
                    "attention_backend",
                    v,
                    &[
                        "flash_attn_v2",
                        "flash_attn_v3",
                        "paged_attention",
                        "xformers",
                        "native",
                    ],
                ));
            }
        };
        let act = pick(combo, "activation_dtype", "bf16");
        let (act_bytes, peak_key): (f64, &str) = match act {
            "fp16" => (2.0, "fp16"),
            "bf16" => (2.0, "bf16"),
            "fp8_e4m3" | "fp8_e5m2" => (1.0, "fp8"),
            v => {
                return Err(unsupported(
                    "activation_dtype",
                    v,
                    &["fp16", "bf16", "fp8_e4m3", "fp8_e5m2"],
                ));
            }
        };
        let peak_tflops = hw
            .peak_tflops(peak_key)
            .or_else(|| hw.peak_tflops("bf16"))
            .or_else(|| hw.peak_tflops("fp16"))
            .or_else(|| hw.peak_tflops("fp32"))
            .unwrap_or(1.0);
        let fp8 = act_bytes < 2.0;
        let gemm_eff = match pick(combo, "matmul_path", "cublas") {
            "cublas" => 0.70,
            "cutlass" => 0.72,
            "triton" => 0.67,
            "machete" if fp8 => 0.74,
            "machete" => 0.72,
            v => {
                return Err(unsupported(
                    "matmul_path",
                    v,
                    &["cublas", "cutlass", "triton", "machete"],
                ));
            }
        };
        let (kernels_per_layer, bw_eff) = match pick(combo, "fusion_strategy", "conservative") {
            "none" => (14.0, 0.80 * 0.95),
            "conservative" => (9.0, 0.80),
            "aggressive" => (6.0, 0.80 * 1.03),
            v => {
                return Err(unsupported(
                    "fusion_strategy",
                    v,
                    &["none", "conservative", "aggressive"],
                ));
            }
        };
        let graph_factor = match pick(combo, "cuda_graph", "per-shape") {
            _ if hw.device == DeviceKind::Cpu => 1.0,
            "off" => 1.0,
            "per-shape" => 0.1,
            "dynamic" => 0.25,
            v => {
                return Err(unsupported(
                    "cuda_graph",
                    v,
                    &["off", "per-shape", "dynamic"],
                ));
            }
        };
        let (kv_elem, kv_attn) = match pick(combo, "kv_cache_dtype", "auto") {
            "auto" => (act_bytes.max(1.0), 1.0),
            "fp16" | "bf16" => (2.0, 1.0),
            "fp8_e4m3" | "fp8_e5m2" => (1.0, 1.03),
            "q8_0" => (1.0625, 1.08),
            "q4_0" => (0.5625, 1.15),
            v => {
                return Err(unsupported(
                    "kv_cache_dtype",
                    v,
                    &[
                        "auto", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "q8_0", "q4_0",
                    ],
                ));
            }
        };
        let (block_overhead, block_read) = match combo.knob("block_size").unwrap_or("16") {
            "16" => (1.04, 1.0),
            "32" => (1.06, 0.99),
            v => return Err(unsupported("block_size", v, &["16", "32"])),
        };
        // A contiguous cache reserves a whole context window per request: the model's, capped at
        // 8,192 tokens (a typical static max_model_len), and never less than the workload needs.
        let window = (m.max_context.min(8192) as f64)
            .max((t.workload.input_tokens.max() + t.workload.output_tokens.max()) as f64);
        let (contiguous_tokens, chunked, kv_overhead) = match pick(combo, "kv_layout", "paged") {
            "contiguous" => (window, false, 1.0),
            "paged" => (0.0, false, block_overhead),
            "chunked" => (0.0, true, block_overhead),
            v => {
                return Err(unsupported(
                    "kv_layout",
                    v,
                    &["contiguous", "paged", "chunked"],
                ));
            }
        };
        let fault = match combo.knob("fault").unwrap_or("none") {
            "none" => Fault::None,
            "launch" => Fault::Launch,
            "crash" => Fault::Crash,
            "errors" => Fault::Errors,
            v => {
                return Err(unsupported(
                    "fault",
                    v,
                    &["none", "launch", "crash", "errors"],
                ));
            }
        };
        for k in combo.knobs.keys() {
            if k != "block_size" && k != "fault" {
                return Err(unsupported("knob", k, &["block_size", "fault"]));
            }
        }
        let params = m.params_b * 1e9;
        let weights_bytes = params * act_bytes;
        let usable = hw.memory_gib * GIB * 0.9;
        if weights_bytes >= usable {
            return Err(SimError::DoesNotFit {
                weights_gib: weights_bytes / GIB,
                memory_gib: hw.memory_gib,
            });
        }
        Ok(Self {
            params,
            peak_flops: peak_tflops * 1e12,
            gemm_eff,
            bw: hw.memory_bandwidth_gbps * 1e9 * bw_eff,
            attn_factor: attn_factor * kv_attn * block_read,
            kv_bytes_per_token: m.kv_bytes_per_token(kv_elem),
            kv_overhead,
            contiguous_tokens,
            chunked,
            overhead_s: m.layers as f64 * kernels_per_layer * 4e-6 * graph_factor + 1e-4,
            // QKᵀ and PV: 2 matmuls × 2 flops × heads × head_dim per (token, context token).
            attn_flops_per_token_ctx: 4.0
                * m.layers as f64
                * m.attention_heads as f64
                * m.head_dim as f64,
            weights_bytes,
            kv_budget_bytes: usable - weights_bytes,
            fault,
        })
    }

    /// Seconds for one iteration with `decode` running requests whose contexts sum to `ctx_sum`
    /// tokens, plus `prefill` new tokens attending to `prefill_ctx` (sum over prefill tokens of
    /// their context length).
    fn iteration(&self, decode: usize, ctx_sum: f64, prefill: f64, prefill_ctx: f64) -> f64 {
        let tokens = decode as f64 + prefill;
        let compute = 2.0 * self.params * tokens / (self.peak_flops * self.gemm_eff);
        let weights = self.weights_bytes / self.bw;
        let linear = compute.max(weights);
        let kv_read = ctx_sum * self.kv_bytes_per_token / self.bw;
        let attn_compute =
            self.attn_flops_per_token_ctx * (prefill_ctx + ctx_sum) / (self.peak_flops * 0.5);
        let attention = self.attn_factor * (kv_read + attn_compute);
        linear + attention + self.overhead_s
    }
}

/// A request shape.
#[derive(Clone, Copy, Debug)]
struct Shape {
    input: u32,
    output: u32,
}

fn sample(d: &Dist, rng: &mut ChaCha8Rng) -> u32 {
    match *d {
        Dist::Fixed(n) => n,
        Dist::Uniform { min, max } => rng.random_range(min..=max),
        Dist::Lognormal { median, sigma, max } => match LogNormal::new(median.ln(), sigma) {
            Ok(ln) => (ln.sample(rng).round() as u32).clamp(1, max),
            Err(_) => median as u32,
        },
    }
}

/// The fixed, seeded request set of a workload (the same prompts in every rep).
fn shapes(w: &Workload) -> Vec<Shape> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x5EED);
    (0..w.requests)
        .map(|_| Shape {
            input: sample(&w.input_tokens, &mut rng),
            output: sample(&w.output_tokens, &mut rng).max(1),
        })
        .collect()
}

/// Simulate one rep with every iteration time multiplied by `slow`; `fail_every` makes every
/// n-th request fail at once (0 = none).
fn simulate(
    model: &Model,
    w: &Workload,
    shapes: &[Shape],
    slow: f64,
    arrival_rng: &mut ChaCha8Rng,
    fail_every: usize,
) -> Metrics {
    let n = shapes.len();
    let mut arrival = vec![f64::INFINITY; n];
    match w.arrival {
        Arrival::Concurrency(c) => {
            for a in arrival.iter_mut().take(c as usize) {
                *a = 0.0;
            }
        }
        Arrival::Poisson { rate } => {
            let exp =
                Exp::new(rate).unwrap_or_else(|_| Exp::new(1.0).unwrap_or_else(|_| unreachable!()));
            let mut t = 0.0;
            for a in arrival.iter_mut() {
                t += exp.sample(arrival_rng);
                *a = t;
            }
        }
    }
    let closed = matches!(w.arrival, Arrival::Concurrency(_));
    let mut next_closed = match w.arrival {
        Arrival::Concurrency(c) => (c as usize).min(n),
        Arrival::Poisson { .. } => n,
    };
    let failed: Vec<bool> = (0..n)
        .map(|i| fail_every > 0 && i % fail_every == 0)
        .collect();
    // Per request: prefilled tokens, generated tokens, first token time, finish time.
    let mut prefilled = vec![0u32; n];
    let mut generated = vec![0u32; n];
    let mut first = vec![f64::NAN; n];
    let mut finish = vec![f64::NAN; n];
    let mut running: Vec<usize> = Vec::new();
    let mut waiting: Vec<usize> = Vec::new();
    let mut next_arrival = 0usize; // index into arrival order (arrivals are sorted by index)
    let mut done = 0usize;
    let mut t = 0.0f64;
    let mut kv_in_use = 0.0f64;
    let mut peak_kv = 0.0f64;
    // Inter-token gaps: (gap, how many requests saw it).
    let mut gaps: Vec<(f64, u32)> = Vec::new();
    let reserve = |s: &Shape| -> f64 {
        let tokens = if model.contiguous_tokens > 0.0 {
            model.contiguous_tokens
        } else {
            (s.input + s.output) as f64 * model.kv_overhead
        };
        tokens * model.kv_bytes_per_token
    };
    let mut guard = 0u64;
    while done < n {
        guard += 1;
        if guard > 50_000_000 {
            break;
        }
        // Arrivals up to now.
        while next_arrival < n && arrival[next_arrival] <= t {
            let i = next_arrival;
            next_arrival += 1;
            if failed[i] {
                finish[i] = arrival[i];
                done += 1;
                if closed && next_closed < n {
                    arrival[next_closed] = t;
                    next_closed += 1;
                }
                continue;
            }
            waiting.push(i);
        }
        // Admission while KV memory lasts.
        while let Some(&i) = waiting.first() {
            let need = reserve(&shapes[i]);
            if running.len() >= MAX_BATCH
                || (kv_in_use + need > model.kv_budget_bytes && !running.is_empty())
            {
                break;
            }
            waiting.remove(0);
            kv_in_use += need;
            running.push(i);
        }
        peak_kv = peak_kv.max(kv_in_use);
        if running.is_empty() {
            // Idle until the next arrival.
            match arrival.get(next_arrival) {
                Some(&a) if a.is_finite() => {
                    t = t.max(a);
                    continue;
                }
                _ => break,
            }
        }
        // Build the iteration: prefill (whole or chunked) plus one decode token per decoder.
        let mut budget = if model.chunked { CHUNK } else { u32::MAX };
        let mut prefill = 0.0;
        let mut prefill_ctx = 0.0;
        let mut decoders = 0usize;
        let mut ctx_sum = 0.0;
        let mut finishing_prefill: Vec<usize> = Vec::new();
        for &i in &running {
            let s = shapes[i];
            if prefilled[i] < s.input {
                if budget == 0 {
                    continue;
                }
                let take = (s.input - prefilled[i]).min(budget);
                budget = budget.saturating_sub(take);
                let (a, b) = (prefilled[i] as f64, (prefilled[i] + take) as f64);
                prefill += take as f64;
                prefill_ctx += (b * b - a * a) / 2.0;
                prefilled[i] += take;
                if prefilled[i] == s.input {
                    finishing_prefill.push(i);
                }
            } else {
                decoders += 1;
                ctx_sum += (s.input + generated[i]) as f64;
            }
        }
        let dt = model.iteration(decoders, ctx_sum, prefill, prefill_ctx) * slow;
        t += dt;
        if decoders > 0 {
            gaps.push((dt, decoders as u32));
        }
        let mut still = Vec::with_capacity(running.len());
        for &i in &running {
            let s = shapes[i];
            let mut finished = false;
            if finishing_prefill.contains(&i) {
                first[i] = t;
                generated[i] = 1;
                finished = generated[i] >= s.output;
            } else if prefilled[i] >= s.input && generated[i] > 0 {
                generated[i] += 1;
                finished = generated[i] >= s.output;
            }
            if finished {
                finish[i] = t;
                done += 1;
                kv_in_use -= reserve(&s);
                if closed && next_closed < n {
                    arrival[next_closed] = t;
                    next_closed += 1;
                }
            } else {
                still.push(i);
            }
        }
        running = still;
    }
    metrics(
        model, w, shapes, &arrival, &first, &finish, &failed, &gaps, peak_kv,
    )
}

#[allow(clippy::too_many_arguments)]
fn metrics(
    model: &Model,
    w: &Workload,
    shapes: &[Shape],
    arrival: &[f64],
    first: &[f64],
    finish: &[f64],
    failed: &[bool],
    gaps: &[(f64, u32)],
    peak_kv: f64,
) -> Metrics {
    let ok: Vec<usize> = (0..shapes.len())
        .filter(|&i| !failed[i] && finish[i].is_finite())
        .collect();
    let start = arrival
        .iter()
        .copied()
        .filter(|a| a.is_finite())
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let end = ok.iter().map(|&i| finish[i]).fold(0.0f64, f64::max);
    let span = (end - start).max(1e-9);
    let ttft: Vec<f64> = ok.iter().map(|&i| (first[i] - arrival[i]) * 1e3).collect();
    let e2e: Vec<f64> = ok.iter().map(|&i| (finish[i] - arrival[i]) * 1e3).collect();
    let tpot: Vec<f64> = ok
        .iter()
        .map(|&i| {
            if shapes[i].output > 1 {
                (finish[i] - first[i]) * 1e3 / (shapes[i].output - 1) as f64
            } else {
                0.0
            }
        })
        .collect();
    let tokens: f64 = ok.iter().map(|&i| shapes[i].output as f64).sum();
    let slo = &w.slo;
    let good = ok
        .iter()
        .zip(ttft.iter().zip(tpot.iter().zip(e2e.iter())))
        .filter(|(_, (tt, (tp, e)))| {
            slo.ttft_ms.is_none_or(|s| **tt <= s)
                && slo.tpot_ms.is_none_or(|s| **tp <= s)
                && slo.e2e_ms.is_none_or(|s| **e <= s)
        })
        .count();
    let mut out = BTreeMap::new();
    let q = |v: &[f64], p: f64| quantile(v, p).unwrap_or(0.0);
    out.insert("output_tokens_per_s".into(), tokens / span);
    out.insert("requests_per_s".into(), ok.len() as f64 / span);
    out.insert("goodput_requests_per_s".into(), good as f64 / span);
    for (name, v) in [("ttft", &ttft), ("tpot", &tpot), ("e2e", &e2e)] {
        out.insert(format!("{name}_p50_ms"), q(v, 0.5));
        out.insert(format!("{name}_p95_ms"), q(v, 0.95));
        out.insert(format!("{name}_p99_ms"), q(v, 0.99));
    }
    for (name, p) in [
        ("itl_p50_ms", 0.5),
        ("itl_p95_ms", 0.95),
        ("itl_p99_ms", 0.99),
    ] {
        out.insert(name.into(), weighted_quantile(gaps, p) * 1e3);
    }
    out.insert(
        "peak_memory_gib".into(),
        (model.weights_bytes + peak_kv) / GIB + 0.75,
    );
    out.insert(
        "error_rate".into(),
        failed.iter().filter(|f| **f).count() as f64 / shapes.len().max(1) as f64,
    );
    out
}

/// Quantile of values with integer weights.
fn weighted_quantile(v: &[(f64, u32)], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s: Vec<(f64, u32)> = v.to_vec();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: u64 = s.iter().map(|x| x.1 as u64).sum();
    let target = (p * total as f64).ceil().max(1.0) as u64;
    let mut acc = 0u64;
    for (x, w) in &s {
        acc += *w as u64;
        if acc >= target {
            return *x;
        }
    }
    s.last().map(|x| x.0).unwrap_or(0.0)
}

/// The noiseless metrics of one rep: the known truth tests and accuracy benchmarks score against.
pub fn truth(target: &SimTarget<'_>, combo: &Combo) -> Result<Metrics, SimError> {
    let model = Model::new(target, combo)?;
    let mut rng = ChaCha8Rng::seed_from_u64(0xA7717A1);
    Ok(simulate(
        &model,
        target.workload,
        &shapes(target.workload),
        1.0,
        &mut rng,
        0,
    ))
}

/// One simulated engine launch.
#[derive(Clone, Debug)]
pub struct SimLaunch {
    model: Model,
    workload: Workload,
    shapes: Vec<Shape>,
    seed: u64,
    launch_factor: f64,
    noise_cv: f64,
    noise: NoiseModel,
}

/// Launch the simulated engine for `combo`: validates the combo and draws the per-launch offset.
pub fn launch(target: &SimTarget<'_>, combo: &Combo, seed: u64) -> Result<SimLaunch, SimError> {
    let model = Model::new(target, combo)?;
    if model.fault == Fault::Launch {
        return Err(SimError::LaunchFailed {
            message:
                "injected fault: CUDA error: out of memory while capturing graphs (fault=launch)"
                    .into(),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1A0_0C4);
    let launch_factor = lognormal_factor(&mut rng, target.hardware.launch_cv);
    Ok(SimLaunch {
        model,
        workload: target.workload.clone(),
        shapes: shapes(target.workload),
        seed,
        launch_factor,
        noise_cv: target.hardware.noise_floor_cv,
        noise: NoiseModel::default(),
    })
}

fn lognormal_factor(rng: &mut ChaCha8Rng, cv: f64) -> f64 {
    if cv <= 0.0 {
        return 1.0;
    }
    match Normal::new(0.0, cv) {
        Ok(n) => n.sample(rng).exp(),
        Err(_) => 1.0,
    }
}

impl SimLaunch {
    /// One rep (a full workload run) with seeded noise; deterministic for (seed, index).
    pub fn rep(&mut self, index: u32) -> Result<Metrics, SimError> {
        if self.model.fault == Fault::Crash && index >= 2 {
            return Err(SimError::Crashed {
                rep: index,
                message: "injected fault: engine process exited with signal 11 (fault=crash)"
                    .into(),
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(index as u64 + 1),
        );
        let rep_factor = if self.noise.lognormal {
            lognormal_factor(&mut rng, self.noise_cv)
        } else {
            match Normal::new(1.0, self.noise_cv.max(0.0)) {
                Ok(n) => n.sample(&mut rng).max(0.5),
                Err(_) => 1.0,
            }
        };
        let mut slow = self.launch_factor * rep_factor;
        if self.noise.outlier_p > 0.0 && rng.random_bool(self.noise.outlier_p.min(1.0)) {
            slow *= self.noise.outlier_slowdown;
        }
        let fail_every = if self.model.fault == Fault::Errors {
            2
        } else {
            0
        };
        Ok(simulate(
            &self.model,
            &self.workload,
            &self.shapes,
            slow,
            &mut rng,
            fail_every,
        ))
    }

    /// Replace the per-rep noise model (statistics benchmarks).
    pub fn set_noise(&mut self, noise: NoiseModel) {
        self.noise = noise;
    }

    /// The per-launch slowdown factor drawn at launch (1.0 = none).
    pub fn launch_factor(&self) -> f64 {
        self.launch_factor
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Slo;
    use crate::metrics::METRICS;

    fn h100() -> HardwareProfile {
        HardwareProfile {
            display_name: "H100".into(),
            device: DeviceKind::Gpu,
            compute_capability: Some("9.0".into()),
            memory_gib: 80.0,
            memory_bandwidth_gbps: 3350.0,
            peak_dense_tflops: [
                ("bf16".to_string(), 989.0),
                ("fp16".to_string(), 989.0),
                ("fp8".to_string(), 1979.0),
            ]
            .into_iter()
            .collect(),
            noise_floor_cv: 0.02,
            launch_cv: 0.01,
            detect: vec![],
        }
    }

    fn llama() -> ModelProfile {
        ModelProfile {
            display_name: "Llama-3.1-8B".into(),
            params_b: 8.03,
            layers: 32,
            hidden_size: 4096,
            attention_heads: 32,
            kv_heads: 8,
            head_dim: 128,
            intermediate_size: 14336,
            vocab_size: 128256,
            max_context: 131072,
            source: None,
        }
    }

    fn workload(input: u32, output: u32, arrival: Arrival, requests: u32) -> Workload {
        Workload {
            description: "test".into(),
            input_tokens: Dist::Fixed(input),
            output_tokens: Dist::Fixed(output),
            arrival,
            requests,
            warmup_requests: 0,
            slo: Slo::default(),
            max_error_rate: 0.01,
            request_timeout_s: 60.0,
        }
    }

    fn combo(pairs: &[(&str, &str)]) -> Combo {
        Combo {
            dims: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            knobs: BTreeMap::new(),
        }
    }

    fn tput(m: &Metrics) -> f64 {
        m["output_tokens_per_s"]
    }

    #[test]
    fn deterministic_complete_and_ordered() {
        let (hw, m, w) = (
            h100(),
            llama(),
            workload(512, 128, Arrival::Concurrency(16), 64),
        );
        let t = SimTarget {
            model: &m,
            hardware: &hw,
            workload: &w,
        };
        let c = combo(&[]);
        let a = launch(&t, &c, 7).unwrap().rep(0).unwrap();
        let b = launch(&t, &c, 7).unwrap().rep(0).unwrap();
        let other = launch(&t, &c, 8).unwrap().rep(0).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, other);
        for info in METRICS {
            let v = a[info.name];
            assert!(v.is_finite(), "{} = {v}", info.name);
        }
        for p in ["ttft", "itl", "tpot", "e2e"] {
            assert!(a[&format!("{p}_p50_ms")] <= a[&format!("{p}_p95_ms")]);
            assert!(a[&format!("{p}_p95_ms")] <= a[&format!("{p}_p99_ms")]);
        }
        assert_eq!(truth(&t, &c).unwrap(), truth(&t, &c).unwrap());
    }

    #[test]
    fn noise_centres_on_truth_at_the_noise_floor() {
        let (hw, m, w) = (
            h100(),
            llama(),
            workload(512, 128, Arrival::Concurrency(16), 64),
        );
        let t = SimTarget {
            model: &m,
            hardware: &hw,
            workload: &w,
        };
        let c = combo(&[]);
        let truth = tput(&truth(&t, &c).unwrap());
        let mut v = Vec::new();
        for launch_seed in 0..20 {
            let mut l = launch(&t, &c, launch_seed).unwrap();
            for i in 0..10 {
                v.push(tput(&l.rep(i).unwrap()));
            }
        }
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt();
        assert!(
            (mean / truth - 1.0).abs() < 0.02,
            "mean {mean} truth {truth}"
        );
        let cv = sd / mean;
        assert!(cv > 0.01 && cv < 0.06, "cv {cv}");
    }

    #[test]
    fn dimensions_move_the_landscape_in_the_documented_directions() {
        let (hw, m) = (h100(), llama());
        let prefill_heavy = workload(4096, 16, Arrival::Concurrency(16), 32);
        let t = SimTarget {
            model: &m,
            hardware: &hw,
            workload: &prefill_heavy,
        };
        let bf16 = tput(&truth(&t, &combo(&[("activation_dtype", "bf16")])).unwrap());
        let fp8 = tput(&truth(&t, &combo(&[("activation_dtype", "fp8_e4m3")])).unwrap());
        assert!(fp8 > bf16 * 1.2, "fp8 {fp8} bf16 {bf16}");

        let single = workload(256, 128, Arrival::Concurrency(1), 8);
        let t = SimTarget {
            model: &m,
            hardware: &hw,
            workload: &single,
        };
        let off = tput(&truth(&t, &combo(&[("cuda_graph", "off")])).unwrap());
        let graphs = tput(&truth(&t, &combo(&[("cuda_graph", "per-shape")])).unwrap());
        assert!(graphs > off * 1.05, "graphs {graphs} off {off}");

        let busy = workload(2048, 512, Arrival::Concurrency(256), 512);
        let t = SimTarget {
            model: &m,
            hardware: &hw,
            workload: &busy,
        };
        let contiguous = tput(&truth(&t, &combo(&[("kv_layout", "contiguous")])).unwrap());
        let paged = tput(&truth(&t, &combo(&[("kv_layout", "paged")])).unwrap());
        assert!(
            paged > contiguous * 1.1,
            "paged {paged} contiguous {contiguous}"
        );
        let fa3 = tput(&truth(&t, &combo(&[("attention_backend", "flash_attn_v3")])).unwrap());
        let native = tput(&truth(&t, &combo(&[("attention_backend", "native")])).unwrap());
        assert!(fa3 > native * 1.1, "fa3 {fa3} native {native}");
    }

    #[test]
    fn poisson_overload_queues() {
        let (hw, m) = (h100(), llama());
        let light = workload(512, 128, Arrival::Poisson { rate: 1.0 }, 64);
        let heavy = workload(512, 128, Arrival::Poisson { rate: 2000.0 }, 64);
        let l = truth(
            &SimTarget {
                model: &m,
                hardware: &hw,
                workload: &light,
            },
            &combo(&[]),
        )
        .unwrap();
        let h = truth(
            &SimTarget {
                model: &m,
                hardware: &hw,
                workload: &heavy,
            },
            &combo(&[]),
        )
        .unwrap();
        assert!(
            h["ttft_p95_ms"] > l["ttft_p95_ms"] * 3.0,
            "{} vs {}",
            h["ttft_p95_ms"],
            l["ttft_p95_ms"]
        );
        assert!(h["requests_per_s"] > l["requests_per_s"]);
        assert!(
            l["requests_per_s"] < 1.3,
            "light load cannot complete faster than it arrives"
        );
    }

    #[test]
    fn faults_and_bad_values() {
        let (hw, m, w) = (
            h100(),
            llama(),
            workload(128, 16, Arrival::Concurrency(4), 8),
        );
        let t = SimTarget {
            model: &m,
            hardware: &hw,
            workload: &w,
        };
        let mut c = combo(&[]);
        c.knobs.insert("fault".into(), "launch".into());
        assert!(matches!(
            launch(&t, &c, 1),
            Err(SimError::LaunchFailed { .. })
        ));
        c.knobs.insert("fault".into(), "crash".into());
        let mut l = launch(&t, &c, 1).unwrap();
        assert!(l.rep(0).is_ok() && l.rep(1).is_ok());
        assert!(matches!(l.rep(2), Err(SimError::Crashed { rep: 2, .. })));
        c.knobs.insert("fault".into(), "errors".into());
        let r = launch(&t, &c, 1).unwrap().rep(0).unwrap();
        assert_eq!(r["error_rate"], 0.5);
        let e = launch(&t, &combo(&[("attention_backend", "fa9")]), 1).unwrap_err();
        assert!(
            e.to_string().contains("attention_backend=fa9")
                && e.to_string().contains("flash_attn_v3"),
            "{e}"
        );
        let mut k = combo(&[]);
        k.knobs.insert("threads".into(), "4".into());
        assert!(
            launch(&t, &k, 1)
                .unwrap_err()
                .to_string()
                .contains("knob=threads")
        );
    }

    #[test]
    #[ignore = "timing printout, run with --ignored --nocapture"]
    fn rep_cost() {
        let (hw, m, w) = (
            h100(),
            llama(),
            workload(512, 256, Arrival::Concurrency(32), 128),
        );
        let t = SimTarget {
            model: &m,
            hardware: &hw,
            workload: &w,
        };
        let mut l = launch(&t, &combo(&[]), 1).unwrap();
        let start = std::time::Instant::now();
        for i in 0..100 {
            l.rep(i).unwrap();
        }
        println!("one rep: {:?}", start.elapsed() / 100);
    }

    #[test]
    #[ignore = "landscape printout"]
    fn landscape() {
        let dims: &[(&str, &[&str])] = &[
            (
                "attention_backend",
                &[
                    "flash_attn_v3",
                    "flash_attn_v2",
                    "paged_attention",
                    "xformers",
                    "native",
                ],
            ),
            ("kv_layout", &["contiguous", "paged", "chunked"]),
            ("matmul_path", &["cublas", "cutlass", "triton", "machete"]),
            (
                "activation_dtype",
                &["fp16", "bf16", "fp8_e4m3", "fp8_e5m2"],
            ),
            ("fusion_strategy", &["none", "conservative", "aggressive"]),
            ("cuda_graph", &["off", "per-shape", "dynamic"]),
            (
                "kv_cache_dtype",
                &[
                    "auto", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "q8_0", "q4_0",
                ],
            ),
        ];
        let ln = |median: f64, sigma: f64, max: u32| Dist::Lognormal { median, sigma, max };
        let mut chat = workload(1, 1, Arrival::Concurrency(16), 128);
        chat.input_tokens = ln(300.0, 0.6, 4096);
        chat.output_tokens = ln(200.0, 0.5, 1024);
        let mut pchat = chat.clone();
        pchat.arrival = Arrival::Poisson { rate: 8.0 };
        let mut rag = workload(1, 256, Arrival::Concurrency(8), 64);
        rag.input_tokens = Dist::Uniform {
            min: 2000,
            max: 6000,
        };
        let wls = vec![
            ("chat", chat),
            ("poisson", pchat),
            ("rag", rag),
            ("batch", workload(512, 512, Arrival::Concurrency(64), 256)),
            ("single", workload(256, 128, Arrival::Concurrency(1), 16)),
            ("huge", workload(2048, 512, Arrival::Concurrency(256), 512)),
        ];
        let (hw, m) = (h100(), llama());
        for (name, w) in &wls {
            let t = SimTarget {
                model: &m,
                hardware: &hw,
                workload: w,
            };
            let d = truth(&t, &combo(&[])).unwrap();
            println!(
                "== {name}: default tput {:.0} ttft50 {:.1} itl50 {:.2} itl99 {:.2} mem {:.1}",
                tput(&d),
                d["ttft_p50_ms"],
                d["itl_p50_ms"],
                d["itl_p99_ms"],
                d["peak_memory_gib"]
            );
            for (dim, vals) in dims {
                let mut line = format!("  {dim:18}");
                for v in *vals {
                    let r = truth(&t, &combo(&[(dim, v)])).unwrap();
                    line += &format!(
                        " {v}={:+.1}%/{:+.0}%",
                        (tput(&r) / tput(&d) - 1.0) * 100.0,
                        (r["ttft_p50_ms"] / d["ttft_p50_ms"] - 1.0) * 100.0
                    );
                }
                println!("{line}");
            }
            let mut all = Vec::new();
            let mut idx = vec![0usize; dims.len()];
            loop {
                let c = combo(
                    &dims
                        .iter()
                        .zip(&idx)
                        .map(|((k, vs), &i)| (*k, vs[i]))
                        .collect::<Vec<_>>(),
                );
                all.push(tput(&truth(&t, &c).unwrap()));
                let mut k = 0;
                while k < dims.len() {
                    idx[k] += 1;
                    if idx[k] < dims[k].1.len() {
                        break;
                    }
                    idx[k] = 0;
                    k += 1;
                }
                if k == dims.len() {
                    break;
                }
            }
            all.sort_by(f64::total_cmp);
            let n = all.len();
            println!(
                "  combos {n}: min {:.0} p10 {:.0} median {:.0} p90 {:.0} max {:.0}  max/min {:.2} max/default {:.3}",
                all[0],
                all[n / 10],
                all[n / 2],
                all[n * 9 / 10],
                all[n - 1],
                all[n - 1] / all[0],
                all[n - 1] / tput(&d)
            );
            let top = all[n - 1];
            let near = all.iter().filter(|x| **x > top * 0.97).count();
            println!("  within 3% of best: {near}");
        }
    }
}
