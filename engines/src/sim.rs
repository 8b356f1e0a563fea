//! The simulated engine (`sim@1.0`): a roofline model of transformer serving on a hardware
//! profile, with an iteration-level (continuous batching) queue, seeded noise and known truth.
//! It serves previews, the harness's own tests and the accuracy benchmarks of the statistics;
//! every result it produces is labelled simulated by the harness.
//!
//! # The model
//!
//! A rep replays the workload's request set (shapes drawn once with a fixed seed, as a real
//! benchmark replays one seeded prompt set) against an engine loop (`sim/queue.rs`):
//!
//! - **Arrival.** `concurrency: c` is a closed loop: `c` requests in flight, a new one sent the
//!   moment one finishes. `poisson: rate` is an open loop: exponential inter-arrival times, and
//!   latency counts from the *intended* send time, so a slow engine cannot hide queueing by
//!   slowing the sender down (no coordinated omission).
//! - **Admission.** First come, first served while KV memory lasts: the memory left after the
//!   weights (90 % of the device, as `gpu_memory_utilization`) divided by what each request
//!   reserves, at most 256 requests in a batch.
//! - **Iterations.** Each iteration runs the prefill of newly admitted requests (whole prompts up
//!   to 8,192 tokens per iteration, or 512-token chunks with chunked prefill) plus one decode
//!   token for every request past its prefill. A request's first token comes out of the
//!   iteration that finishes its prefill.
//!
//! The time of one iteration (`sim/cost.rs`) is a roofline per part plus fixed overheads:
//!
//! ```text
//! linear    = max(2·P·tokens / (peak(dtype)·gemm_eff),  weight_bytes / (bandwidth·bw_eff))
//! attention = attn_factor · (kv_bytes_read / (bandwidth·bw_eff) + attn_flops / (peak(bf16)·0.5))
//! pointwise = tokens · layers · hidden · 2 bytes · passes(fusion) / bandwidth
//! overhead  = layers · kernels_per_layer · 4 µs · graph_factor + 0.2 ms + 1 µs · batch
//! ```
//!
//! `P` is the parameters read per iteration (all but the embedding table, which is gathered);
//! with fp8 the LM head stays bf16, as serving engines leave it. Attention FLOPs are
//! `4·layers·heads·head_dim` per (query token, context token); prefill attends causally.
//!
//! Per request the queue records TTFT (arrival to first token), the inter-token gaps (ITL),
//! TPOT = (e2e − ttft)/(output − 1) and e2e; per rep it reports throughput over the makespan,
//! goodput against the workload's SLOs, percentiles with [`crate::metrics::quantile`], peak
//! memory (weights + peak KV in use + 0.75 GiB of runtime) and the error rate.
//!
//! # Per-dimension effects
//!
//! `unset` means the engine default (marked *default*). The effects are chosen to make a real
//! ranking problem: single dimensions move throughput by about 1 % to 40 % depending on the
//! workload, and they interact through the roofline (launch overhead matters at small batch,
//! fp8 compute when prefill dominates, KV size when memory limits the batch).
//!
//! | dimension | value | effect in the model | rationale |
//! |---|---|---|---|
//! | attention_backend | flash_attn_v3 | attention ×1.00 on sm 9.x; elsewhere as flash_attn_v2 | Hopper TMA and warp-specialised kernels; they do not exist before Hopper |
//! | | flash_attn_v2 *default* | ×1.25 | the fused fast path before Hopper-specific kernels |
//! | | paged_attention | ×1.40 | block-table indirection, decode-oriented kernels, slower prefill |
//! | | xformers | ×1.45 | memory-efficient but generic kernels |
//! | | native | ×2.20 | unfused softmax(QKᵀ)V materialises the score matrix |
//! | kv_layout | contiguous | reserves a window (model context capped at 8,192, at least the workload's longest request) per request | no fragmentation, but far fewer concurrent requests at high load |
//! | | paged *default* | reserves prompt + output, ×1.04 for block rounding | the vLLM/TGI default |
//! | | chunked | paged, prefill in 512-token chunks mixed with decodes | fewer decode stalls (lower ITL tail), prefill piggybacks on memory-bound decodes; slightly later first tokens for long prompts |
//! | matmul_path | cublas *default* | GEMM efficiency 0.70 of peak, weight bandwidth ×1.00 | vendor library baseline |
//! | | cutlass | compute ×1.03, bandwidth ×1.01 | tuned templates with fused epilogues |
//! | | triton | compute ×0.96, bandwidth ×0.98 | JIT kernels trail the libraries a little |
//! | | machete | fp8: compute ×1.06, bandwidth ×1.03; else as cutlass | built for mixed-input and low-precision weights |
//! | activation_dtype | fp16, bf16 *default* | 2-byte weights, 16-bit peak | equal speed in practice |
//! | | fp8_e4m3, fp8_e5m2 | 1-byte weights (LM head stays bf16), fp8 peak at ×0.85 efficiency, weight reads at ×0.70 bandwidth, +2 kernels per layer | halves weight bytes and doubles tensor throughput, but scales, activation quantisation and less mature GEMV kernels keep decode well short of 2×; without fp8 hardware the 16-bit peak at ×0.90 (weight-only dequantisation) |
//! | fusion_strategy | none | 14 kernels per layer, pointwise passes 16, bandwidth ×0.95 | every op is a launch and a round trip to memory |
//! | | conservative *default* | 9 kernels, 10 passes, ×1.00 | fused norms and activations |
//! | | aggressive | 6 kernels, 6 passes, ×1.03 | fused epilogues, QKV and gate/up fusion |
//! | cuda_graph | off | launch overhead ×1.00 | every kernel launched from the CPU: dominates at small batch |
//! | | per-shape *default* | ×0.10 | captured graphs replay a batch shape with one launch |
//! | | dynamic | ×0.25 | shape-polymorphic capture pays some launches back |
//! | | (any, `device: cpu`) | ×1.00 | no CUDA: every value behaves as off |
//! | kv_cache_dtype | auto *default* | as activation_dtype (fp8 activations: 1 byte, attention ×1.03) | the engine's default follows the model dtype |
//! | | fp16, bf16 | 2 bytes per element | |
//! | | fp8_e4m3, fp8_e5m2 | 1 byte, attention ×1.03 | half the KV: more concurrency and less decode traffic; scaling costs a little |
//! | | q8_0 | 1.0625 bytes, attention ×1.08 | block scales; dequantisation in the attention kernel |
//! | | q4_0 | 0.5625 bytes, attention ×1.15 | smallest cache, costliest dequantisation |
//!
//! Engine knobs (`combo.knobs`): `block_size` (`16` default, `32`: KV rounding ×1.06 instead of
//! ×1.04, but decode KV reads ×0.99 from fewer, larger blocks) and `fault` (`none`; `launch`: the
//! launch fails with an engine-like error line; `crash`: the engine dies at rep index 2 and
//! after; `errors`: half of every rep's requests fail at once, and throughput counts only the
//! successful ones). Any other dimension, value or knob is [`SimError::Unsupported`], naming
//! it and listing the valid choices.
//!
//! # Noise and truth
//!
//! [`truth`] is the noiseless rep: no noise factors, fixed shapes and (for Poisson) fixed
//! arrivals. [`launch`] draws a per-launch factor `exp(N(0, launch_cv))` (clocks, allocation,
//! caches); each [`SimLaunch::rep`] draws `exp(N(0, noise_floor_cv))` and, with probability
//! 0.04, an outlier 15 % slower, from a generator seeded by (seed, index). Every iteration
//! time of the rep is multiplied by their product, so throughput varies around truth with
//! about the hardware's noise floor. [`NoiseModel`] lets the statistics benchmarks swap the
//! shape of that noise.

mod cost;
pub mod fidelity;
mod queue;
#[cfg(test)]
mod tests;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::engine::{Deployment, Engine, EngineKind};
use crate::error::{EngineError, LaunchError, RepError};
use crate::launch::{Launch, LaunchTarget};
use crate::{Combo, HardwareProfile, Metrics, ModelProfile, Workload};

use cost::{Cost, Fault};
use queue::{Shape, shapes, simulate};

/// The sim engine's version, as specs name it (`sim@1.0`).
pub const SIM_VERSION: &str = "1.0";

/// What the sim runs against.
#[derive(Clone, Copy, Debug)]
pub struct SimTarget<'a> {
    pub model: &'a ModelProfile,
    pub hardware: &'a HardwareProfile,
    pub workload: &'a Workload,
}

pub use crate::error::SimError;

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

/// Seed of the arrival process of [`truth`] (Poisson workloads).
const TRUTH_ARRIVAL_SEED: u64 = 0x0A77_17A1;
/// Mixed into the launch seed before the launch factor is drawn.
const LAUNCH_SALT: u64 = 0x001A_00C4;

/// The noiseless metrics of one rep: the known truth tests and accuracy benchmarks score against.
/// Deterministic: the same target and combo always give the same metrics.
pub fn truth(target: &SimTarget<'_>, combo: &Combo) -> Result<Metrics, SimError> {
    let cost = Cost::new(target, combo)?;
    let mut rng = ChaCha8Rng::seed_from_u64(TRUTH_ARRIVAL_SEED);
    Ok(simulate(
        &cost,
        target.workload,
        &shapes(target.workload),
        1.0,
        &mut rng,
        false,
    ))
}

/// One simulated engine launch: the resolved cost model, the request set and the per-launch
/// slowdown drawn from the seed.
#[derive(Clone, Debug)]
pub struct SimLaunch {
    cost: Cost,
    workload: Workload,
    shapes: Vec<Shape>,
    seed: u64,
    launch_factor: f64,
    noise_cv: f64,
    noise: NoiseModel,
    /// The combo, whose fidelity-probe answers the divergence model gives ([`fidelity::answer`]).
    combo: Combo,
}

/// Launch the simulated engine for `combo`: validates the combo, applies the `launch` fault and
/// draws the per-launch factor.
pub fn launch(target: &SimTarget<'_>, combo: &Combo, seed: u64) -> Result<SimLaunch, SimError> {
    let cost = Cost::new(target, combo)?;
    if cost.fault == Fault::Launch {
        return Err(SimError::LaunchFailed {
            message: "RuntimeError: CUDA error: out of memory while capturing CUDA graphs \
                      (injected by knob fault=launch)"
                .into(),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ LAUNCH_SALT);
    let launch_factor = lognormal_factor(&mut rng, target.hardware.launch_cv);
    Ok(SimLaunch {
        cost,
        workload: target.workload.clone(),
        shapes: shapes(target.workload),
        seed,
        launch_factor,
        noise_cv: target.hardware.noise_floor_cv,
        noise: NoiseModel::default(),
        combo: combo.clone(),
    })
}

/// `exp(N(0, cv))`: a multiplicative slowdown with median 1 (1 when `cv` is not positive).
fn lognormal_factor(rng: &mut ChaCha8Rng, cv: f64) -> f64 {
    if cv.is_nan() || cv <= 0.0 {
        return 1.0;
    }
    Normal::new(0.0, cv).map_or(1.0, |n| n.sample(rng).exp())
}

impl SimLaunch {
    /// One rep (a full workload run) with seeded noise; deterministic for (seed, index).
    pub fn rep(&mut self, index: u32) -> Result<Metrics, SimError> {
        if self.cost.fault == Fault::Crash && index >= 2 {
            return Err(SimError::Crashed {
                rep: index,
                message: "engine process exited with signal 11 (SIGSEGV) \
                          (injected by knob fault=crash)"
                    .into(),
            });
        }
        // One generator per (seed, index): the rep factor, the outlier draw, then (Poisson
        // workloads) the arrival times, in that order.
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(u64::from(index) + 1),
        );
        let rep_factor = if self.noise.lognormal {
            lognormal_factor(&mut rng, self.noise_cv)
        } else {
            Normal::new(1.0, self.noise_cv.max(0.0)).map_or(1.0, |n| n.sample(&mut rng).max(0.5))
        };
        let mut slow = self.launch_factor * rep_factor;
        if self.noise.outlier_p > 0.0 && rng.random_bool(self.noise.outlier_p.min(1.0)) {
            slow *= self.noise.outlier_slowdown;
        }
        Ok(simulate(
            &self.cost,
            &self.workload,
            &self.shapes,
            slow,
            &mut rng,
            self.cost.fault == Fault::Errors,
        ))
    }

    /// Replace the per-rep noise model (statistics benchmarks).
    pub fn set_noise(&mut self, noise: NoiseModel) {
        self.noise = noise;
    }

    /// The multiplicative per-launch slowdown factor drawn at launch (1.0 = none), for tests.
    pub fn launch_factor(&self) -> f64 {
        self.launch_factor
    }
}

impl Launch for SimLaunch {
    fn rep(&mut self, index: u32) -> Result<Metrics, RepError> {
        SimLaunch::rep(self, index).map_err(RepError::Sim)
    }

    /// The divergence model's answers for the launch's combo.
    fn probe(&mut self, set: &crate::probe::ProbeSet) -> crate::probe::ProbeRun {
        fidelity::answer(set, &self.combo)
    }
}

/// The sim's row in the engine table: built in, always available, started from the target's
/// profiles, combo and seed.
#[derive(Clone, Copy, Debug)]
pub struct SimEngine;

impl Engine for SimEngine {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn kind(&self) -> EngineKind {
        EngineKind::Simulated
    }

    fn availability(&self, _engines_dir: &std::path::Path) -> Result<(), EngineError> {
        Ok(())
    }

    fn installed_program(
        &self,
        _engines_dir: &std::path::Path,
    ) -> Result<std::path::PathBuf, EngineError> {
        Err(EngineError::BuiltIn {
            engine: self.name().into(),
        })
    }

    fn installed_version(&self, _engines_dir: &std::path::Path) -> Result<String, EngineError> {
        Err(EngineError::BuiltIn {
            engine: self.name().into(),
        })
    }

    fn supported_versions(&self) -> Option<&'static [crate::version::VersionRange]> {
        None
    }

    /// [`launch`] with the seed `target.seed + target.launch` (each launch its own noise): no
    /// warm-up requests (the caller runs warm-up reps).
    fn start(&self, target: &LaunchTarget<'_>) -> Result<Box<dyn Launch>, LaunchError> {
        let sim = SimTarget {
            model: target.model,
            hardware: target.hardware,
            workload: target.workload,
        };
        let seed = target.seed.wrapping_add(u64::from(target.launch));
        Ok(Box::new(launch(&sim, target.combo, seed)?))
    }

    fn deployment(
        &self,
        _target: &LaunchTarget<'_>,
        _port: u16,
    ) -> Result<Deployment, LaunchError> {
        Err(LaunchError::Unsupported {
            engine: self.name().into(),
            reason: "it is simulated: there is nothing to deploy".into(),
        })
    }
}
