//! The cost model: a combo on a target resolved into the numbers an iteration's time is made
//! of (see the table in the parent module for each effect and why).

use crate::combo::UNSET;
use crate::{Combo, DeviceKind};

use super::{SimError, SimTarget};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Every dimension the sim understands: name, the engine default `unset` stands for, values.
pub(super) const DIMENSIONS: &[(&str, &str, &[&str])] = &[
    (
        "attention_backend",
        "flash_attn_v2",
        &[
            "flash_attn_v2",
            "flash_attn_v3",
            "paged_attention",
            "xformers",
            "native",
        ],
    ),
    ("kv_layout", "paged", &["contiguous", "paged", "chunked"]),
    (
        "matmul_path",
        "cublas",
        &["cublas", "cutlass", "triton", "machete"],
    ),
    (
        "activation_dtype",
        "bf16",
        &["fp16", "bf16", "fp8_e4m3", "fp8_e5m2"],
    ),
    (
        "fusion_strategy",
        "conservative",
        &["none", "conservative", "aggressive"],
    ),
    ("cuda_graph", "per-shape", &["off", "per-shape", "dynamic"]),
    (
        "kv_cache_dtype",
        "auto",
        &[
            "auto", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "q8_0", "q4_0",
        ],
    ),
];

/// Every engine knob the sim understands: name, default, values.
pub(super) const KNOBS: &[(&str, &str, &[&str])] = &[
    ("block_size", "16", &["16", "32"]),
    ("fault", "none", &["none", "launch", "crash", "errors"]),
];

/// Fraction of device memory the engine may use (vLLM's `gpu_memory_utilization`).
const MEMORY_UTILIZATION: f64 = 0.9;
/// A contiguous KV cache reserves this many tokens per request at most (a typical static
/// `max_model_len`), but never less than the workload's longest request.
const CONTIGUOUS_WINDOW: u32 = 8192;
/// Prefill tokens per iteration: chunked prefill splits prompts into this budget...
pub(super) const PREFILL_CHUNK: u32 = 512;
/// ...without it, whole prompts are batched up to this many tokens (`max_num_batched_tokens`).
pub(super) const PREFILL_BATCH: u32 = 8192;
/// CPU cost of launching one kernel.
const LAUNCH_S: f64 = 4e-6;
/// Per iteration: scheduling, sampling and output bookkeeping, and their per-sequence part.
const STEP_S: f64 = 2e-4;
const STEP_PER_SEQ_S: f64 = 1e-6;
/// Fraction of peak bandwidth a well-tuned kernel sustains.
const BW_EFF: f64 = 0.80;
/// Fraction of the 16-bit peak attention FLOPs reach (softmax, masking, tiles at the edges).
const ATTN_EFF: f64 = 0.5;

/// How a launch is told to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fault {
    None,
    Launch,
    Crash,
    Errors,
}

/// The resolved cost model of one combo on one target.
#[derive(Clone, Debug)]
pub(super) struct Cost {
    /// FLOPs per token of the linear layers, and the FLOP/s they sustain.
    lin_flops_per_token: f64,
    gemm_rate: f64,
    /// Weight bytes read once per iteration, and the bytes/s those reads sustain.
    weight_read_bytes: f64,
    weight_bw: f64,
    /// Attention FLOPs per (query token, context token), and the FLOP/s they sustain.
    attn_flops_per_pair: f64,
    attn_rate: f64,
    /// KV bytes read per context token of a decoding request, and the bytes/s of those reads.
    kv_read_bytes_per_token: f64,
    kv_bw: f64,
    /// The attention backend's (and KV dequantisation's) slowdown of the whole attention part.
    attn_factor: f64,
    /// Bytes of pointwise traffic (norms, rotary, activations, residuals) per token, and bytes/s.
    pointwise_bytes_per_token: f64,
    pointwise_bw: f64,
    /// Seconds per iteration regardless of the batch, and per sequence in the batch.
    step_s: f64,
    step_per_seq_s: f64,
    /// Weight footprint in bytes.
    pub weights_bytes: f64,
    /// Memory left for the KV cache.
    pub kv_budget_bytes: f64,
    /// KV bytes stored per token.
    pub kv_bytes_per_token: f64,
    /// Tokens reserved per request token (block rounding) with a paged cache.
    pub kv_overhead: f64,
    /// Tokens reserved per request by a contiguous KV cache (0 = paged).
    pub contiguous_tokens: f64,
    /// Prefill tokens per iteration, and whether prompts may be split across iterations.
    pub prefill_budget: u32,
    pub chunked: bool,
    pub fault: Fault,
}

/// The value of a dimension, `unset` and absent resolved to the engine default.
fn dim<'c>(combo: &'c Combo, name: &str) -> &'c str {
    let default = DIMENSIONS
        .iter()
        .find(|d| d.0 == name)
        .map_or(UNSET, |d| d.1);
    match combo.dims.get(name).map(String::as_str) {
        None | Some(UNSET) => default,
        Some(v) => v,
    }
}

/// The value of a knob, its default when not pinned.
fn knob<'c>(combo: &'c Combo, name: &str) -> &'c str {
    let default = KNOBS.iter().find(|k| k.0 == name).map_or("", |k| k.1);
    combo.knob(name).unwrap_or(default)
}

/// The error for an unknown value of `name` (a dimension or knob), listing the valid ones.
fn unsupported(name: &str, value: &str) -> SimError {
    let valid = DIMENSIONS
        .iter()
        .chain(KNOBS)
        .find(|d| d.0 == name)
        .map_or(String::new(), |d| d.2.join(", "));
    SimError::Unsupported {
        dimension: name.into(),
        value: value.into(),
        valid,
    }
}

/// Reject dimensions and knobs the sim does not know (a typo must not silently measure the
/// default).
fn check_names(combo: &Combo) -> Result<(), SimError> {
    let list =
        |table: &[(&str, &str, &[&str])]| table.iter().map(|d| d.0).collect::<Vec<_>>().join(", ");
    if let Some(d) = combo
        .dims
        .keys()
        .find(|d| !DIMENSIONS.iter().any(|x| x.0 == d.as_str()))
    {
        return Err(SimError::Unsupported {
            dimension: "dimension".into(),
            value: d.clone(),
            valid: list(DIMENSIONS),
        });
    }
    if let Some(k) = combo
        .knobs
        .keys()
        .find(|k| !KNOBS.iter().any(|x| x.0 == k.as_str()))
    {
        return Err(SimError::Unsupported {
            dimension: "knob".into(),
            value: k.clone(),
            valid: list(KNOBS),
        });
    }
    Ok(())
}

impl Cost {
    pub(super) fn new(t: &SimTarget<'_>, combo: &Combo) -> Result<Self, SimError> {
        check_names(combo)?;
        let (hw, m) = (t.hardware, t.model);
        let gpu = hw.device == DeviceKind::Gpu;
        let hopper = gpu && hw.compute_capability().is_some_and(|(major, _)| major == 9);

        let attn_backend = match dim(combo, "attention_backend") {
            "flash_attn_v3" if hopper => 1.0,
            // FA3 kernels exist only for sm 9.x; elsewhere the engine falls back to FA2.
            "flash_attn_v3" | "flash_attn_v2" => 1.25,
            "paged_attention" => 1.40,
            "xformers" => 1.45,
            "native" => 2.20,
            v => return Err(unsupported("attention_backend", v)),
        };

        let fp8 = match dim(combo, "activation_dtype") {
            "fp16" | "bf16" => false,
            "fp8_e4m3" | "fp8_e5m2" => true,
            v => return Err(unsupported("activation_dtype", v)),
        };
        let peak16 = hw
            .peak_tflops("bf16")
            .or_else(|| hw.peak_tflops("fp16"))
            .or_else(|| hw.peak_tflops("fp32"))
            .or_else(|| hw.peak_dense_tflops.values().copied().reduce(f64::max))
            .filter(|p| p.is_finite() && *p > 0.0)
            .unwrap_or(1.0)
            * 1e12;
        // fp8 GEMMs reach a lower fraction of their (doubled) peak: per-tensor scales,
        // activation quantisation. Without fp8 units the weights are dequantised in a 16-bit
        // GEMM (weight-only fp8), which costs a little compute and saves only bytes.
        let (gemm_peak, dtype_compute) = match (fp8, hw.peak_tflops("fp8")) {
            (true, Some(p8)) if p8.is_finite() && p8 > 0.0 => (p8 * 1e12, 0.85),
            (true, _) => (peak16, 0.90),
            (false, _) => (peak16, 1.0),
        };

        let (mm_compute, mm_bw) = match dim(combo, "matmul_path") {
            "cublas" => (1.00, 1.00),
            "cutlass" => (1.03, 1.01),
            "triton" => (0.96, 0.98),
            "machete" if fp8 => (1.06, 1.03),
            "machete" => (1.03, 1.01),
            v => return Err(unsupported("matmul_path", v)),
        };

        let (kernels_per_layer, pointwise_passes, fusion_bw) = match dim(combo, "fusion_strategy") {
            "none" => (14.0, 16.0, 0.95),
            "conservative" => (9.0, 10.0, 1.00),
            "aggressive" => (6.0, 6.0, 1.03),
            v => return Err(unsupported("fusion_strategy", v)),
        };
        // fp8 adds an activation-quantisation kernel before each of the two GEMM groups.
        let kernels_per_layer = kernels_per_layer + if fp8 { 2.0 } else { 0.0 };

        let graph_factor = match dim(combo, "cuda_graph") {
            // No CUDA on a CPU device: graphs cannot be captured, every value behaves as off.
            "off" | "per-shape" | "dynamic" if !gpu => 1.0,
            "off" => 1.0,
            "per-shape" => 0.10,
            "dynamic" => 0.25,
            v => return Err(unsupported("cuda_graph", v)),
        };

        let (kv_elem, kv_dequant) = match dim(combo, "kv_cache_dtype") {
            "auto" if fp8 => (1.0, 1.03),
            "auto" | "fp16" | "bf16" => (2.0, 1.0),
            "fp8_e4m3" | "fp8_e5m2" => (1.0, 1.03),
            "q8_0" => (1.0625, 1.08),
            "q4_0" => (0.5625, 1.15),
            v => return Err(unsupported("kv_cache_dtype", v)),
        };

        let (block_rounding, block_read) = match knob(combo, "block_size") {
            "16" => (1.04, 1.0),
            "32" => (1.06, 0.99),
            v => return Err(unsupported("block_size", v)),
        };

        let window = f64::from(m.max_context.min(CONTIGUOUS_WINDOW)).max(
            f64::from(t.workload.input_tokens.max()) + f64::from(t.workload.output_tokens.max()),
        );
        let (contiguous_tokens, kv_overhead, chunked, block_read) = match dim(combo, "kv_layout") {
            "contiguous" => (window, 1.0, false, 1.0),
            "paged" => (0.0, block_rounding, false, block_read),
            "chunked" => (0.0, block_rounding, true, block_read),
            v => return Err(unsupported("kv_layout", v)),
        };

        let fault = match knob(combo, "fault") {
            "none" => Fault::None,
            "launch" => Fault::Launch,
            "crash" => Fault::Crash,
            "errors" => Fault::Errors,
            v => return Err(unsupported("fault", v)),
        };

        // Weights: the embedding table is gathered (a few rows per token), everything else is
        // read once per iteration. With fp8 the LM head stays 16-bit, as engines leave it.
        let params = m.params_b.max(0.0) * 1e9;
        let table = f64::from(m.vocab_size) * f64::from(m.hidden_size);
        let embedding = table.min(params * 0.25);
        let read_params = params - embedding;
        let lm_head = table.min(read_params * 0.25);
        let act_bytes = if fp8 { 1.0 } else { 2.0 };
        let weight_read_bytes = (read_params - lm_head) * act_bytes + lm_head * 2.0;
        let weights_bytes = weight_read_bytes + embedding * 2.0;
        // fp8 weight reads sustain less bandwidth: scales, and GEMV kernels less mature than
        // the 16-bit ones. This is why fp8 gains less in decode than in prefill.
        let fp8_bw = if fp8 { 0.70 } else { 1.0 };
        let fp8_read_share = if fp8 {
            (read_params - lm_head) * act_bytes / weight_read_bytes.max(1.0)
        } else {
            0.0
        };
        // Harmonic mix: the fp8 part of the bytes at the lower efficiency, the LM head at full.
        let weight_bw_mix = 1.0 / (fp8_read_share / fp8_bw + (1.0 - fp8_read_share));

        let bandwidth = hw.memory_bandwidth_gbps.max(1e-3) * 1e9 * BW_EFF * fusion_bw;
        let usable = hw.memory_gib * GIB * MEMORY_UTILIZATION;
        if weights_bytes >= usable {
            return Err(SimError::DoesNotFit {
                weights_gib: weights_bytes / GIB,
                memory_gib: hw.memory_gib,
            });
        }
        let layers = f64::from(m.layers);
        Ok(Self {
            lin_flops_per_token: 2.0 * read_params,
            gemm_rate: gemm_peak * 0.70 * dtype_compute * mm_compute,
            weight_read_bytes,
            weight_bw: bandwidth * mm_bw * weight_bw_mix,
            // QKᵀ and PV: two matmuls, 2 FLOPs per multiply-add, per head and head dimension.
            attn_flops_per_pair: 4.0
                * layers
                * f64::from(m.attention_heads)
                * f64::from(m.head_dim),
            attn_rate: peak16 * ATTN_EFF,
            kv_read_bytes_per_token: m.kv_bytes_per_token(kv_elem) * block_read,
            kv_bw: bandwidth,
            attn_factor: attn_backend * kv_dequant,
            pointwise_bytes_per_token: layers * f64::from(m.hidden_size) * 2.0 * pointwise_passes,
            pointwise_bw: bandwidth,
            step_s: layers * kernels_per_layer * LAUNCH_S * graph_factor + STEP_S,
            step_per_seq_s: STEP_PER_SEQ_S,
            weights_bytes,
            kv_budget_bytes: usable - weights_bytes,
            kv_bytes_per_token: m.kv_bytes_per_token(kv_elem),
            kv_overhead,
            contiguous_tokens,
            prefill_budget: if chunked {
                PREFILL_CHUNK
            } else {
                PREFILL_BATCH
            },
            chunked,
            fault,
        })
    }

    /// Seconds for one iteration: `decoders` requests decoding one token each over contexts
    /// summing to `ctx_sum` tokens, plus `prefill` prompt tokens whose causal attention spans
    /// `prefill_pairs` (query, context) pairs, for `seqs` sequences in the batch.
    pub(super) fn iteration(
        &self,
        decoders: usize,
        ctx_sum: f64,
        prefill: f64,
        prefill_pairs: f64,
        seqs: usize,
    ) -> f64 {
        let tokens = decoders as f64 + prefill;
        let linear = (self.lin_flops_per_token * tokens / self.gemm_rate)
            .max(self.weight_read_bytes / self.weight_bw);
        let kv_read = ctx_sum * self.kv_read_bytes_per_token / self.kv_bw;
        let attn_compute = self.attn_flops_per_pair * (prefill_pairs + ctx_sum) / self.attn_rate;
        let attention = self.attn_factor * (kv_read + attn_compute);
        let pointwise = tokens * self.pointwise_bytes_per_token / self.pointwise_bw;
        linear + attention + pointwise + self.step_s + self.step_per_seq_s * seqs as f64
    }

    /// KV bytes a request with this shape reserves while it runs.
    pub(super) fn reserve(&self, input: u32, output: u32) -> f64 {
        let tokens = if self.contiguous_tokens > 0.0 {
            self.contiguous_tokens
        } else {
            (f64::from(input) + f64::from(output)) * self.kv_overhead
        };
        tokens * self.kv_bytes_per_token
    }
}
