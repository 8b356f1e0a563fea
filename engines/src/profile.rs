//! Profiles an engine runs against: hardware (`catalogs/hardware.yaml`), models
//! (`catalogs/models.yaml`) and workloads (`catalogs/workloads.yaml`).
//!
//! These are plain serde types; the harness parses the YAML (with source locations in errors)
//! and validates the numbers with [`HardwareProfile::validate`] and friends.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::field::{InvalidField, invalid};

/// Whether a hardware profile is a GPU or the CPU host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Gpu,
    Cpu,
}

/// One hardware profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HardwareProfile {
    /// Human-readable name, e.g. "NVIDIA H100 SXM5 80GB".
    pub display_name: String,
    pub device: DeviceKind,
    /// CUDA compute capability as "major.minor" (GPUs only).
    #[serde(default)]
    pub compute_capability: Option<String>,
    /// Device memory in GiB (for `cpu`: the host memory the engine may use).
    pub memory_gib: f64,
    /// Peak memory bandwidth in GB/s.
    pub memory_bandwidth_gbps: f64,
    /// Peak dense TFLOP/s per dtype (`fp32`, `fp16`, `bf16`, `fp8`, `int8`); absent = unsupported.
    pub peak_dense_tflops: BTreeMap<String, f64>,
    /// Per-rep run-to-run variation as a coefficient of variation (0.02 = 2 %).
    pub noise_floor_cv: f64,
    /// Launch-to-launch variation as a coefficient of variation (clocks, allocation, caches).
    #[serde(default)]
    pub launch_cv: f64,
    /// Substrings of the device name reported by `nvidia-smi` (or the CPU model) that identify
    /// this profile when detecting hardware.
    #[serde(default)]
    pub detect: Vec<String>,
}

impl HardwareProfile {
    /// Compute capability as (major, minor), if declared and well formed.
    pub fn compute_capability(&self) -> Option<(u32, u32)> {
        parse_capability(self.compute_capability.as_deref()?)
    }

    /// Peak dense TFLOP/s for a dtype, if the hardware supports it.
    pub fn peak_tflops(&self, dtype: &str) -> Option<f64> {
        self.peak_dense_tflops.get(dtype).copied()
    }

    /// Check the numbers make sense; returns a message naming the bad field.
    pub fn validate(&self) -> Result<(), InvalidField> {
        positive("memory_gib", self.memory_gib)?;
        positive("memory_bandwidth_gbps", self.memory_bandwidth_gbps)?;
        fraction("noise_floor_cv", self.noise_floor_cv)?;
        if self.launch_cv != 0.0 {
            fraction("launch_cv", self.launch_cv)?;
        }
        if self.peak_dense_tflops.is_empty() {
            return invalid(
                "peak_dense_tflops",
                "expected at least one dtype (fp32, fp16, bf16, fp8, int8)",
            );
        }
        for (k, v) in &self.peak_dense_tflops {
            positive(&format!("peak_dense_tflops.{k}"), *v)?;
        }
        match (self.device, &self.compute_capability) {
            (DeviceKind::Gpu, None) => {
                return invalid("compute_capability", "required for a gpu profile");
            }
            (_, Some(cc)) if parse_capability(cc).is_none() => {
                return invalid(
                    "compute_capability",
                    format!("expected \"major.minor\" such as \"9.0\", found {cc:?}"),
                );
            }
            _ => {}
        }
        Ok(())
    }
}

/// Parse "9.0" into (9, 0).
pub fn parse_capability(text: &str) -> Option<(u32, u32)> {
    let (major, minor) = text.trim().split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// A model's architecture numbers: enough for a roofline of prefill and decode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelProfile {
    pub display_name: String,
    /// Total parameters in billions.
    pub params_b: f64,
    pub layers: u32,
    pub hidden_size: u32,
    pub attention_heads: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    pub intermediate_size: u32,
    pub vocab_size: u32,
    pub max_context: u32,
    /// Where the weights come from, for documentation (hub id, or the local script that makes them).
    #[serde(default)]
    pub source: Option<String>,
}

impl ModelProfile {
    /// KV-cache bytes per token at `bytes_per_elem` (K and V, all layers).
    pub fn kv_bytes_per_token(&self, bytes_per_elem: f64) -> f64 {
        2.0 * self.layers as f64 * self.kv_heads as f64 * self.head_dim as f64 * bytes_per_elem
    }

    /// Check the numbers make sense; returns a message naming the bad field.
    pub fn validate(&self) -> Result<(), InvalidField> {
        positive("params_b", self.params_b)?;
        for (name, v) in [
            ("layers", self.layers),
            ("hidden_size", self.hidden_size),
            ("attention_heads", self.attention_heads),
            ("kv_heads", self.kv_heads),
            ("head_dim", self.head_dim),
            ("intermediate_size", self.intermediate_size),
            ("vocab_size", self.vocab_size),
            ("max_context", self.max_context),
        ] {
            if v == 0 {
                return invalid(name, "expected a positive integer, found 0");
            }
        }
        if !self.attention_heads.is_multiple_of(self.kv_heads) {
            return invalid(
                "kv_heads",
                format!(
                    "expected a divisor of attention_heads ({}), found {}",
                    self.attention_heads, self.kv_heads
                ),
            );
        }
        Ok(())
    }
}

/// A distribution of token counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Dist {
    /// Always this many tokens.
    Fixed(u32),
    /// Uniform integer in `[min, max]`.
    Uniform { min: u32, max: u32 },
    /// Log-normal with this median and log-space sigma, clamped to `[1, max]`.
    Lognormal { median: f64, sigma: f64, max: u32 },
}

impl Dist {
    /// The mean of the distribution (for rooflines and capacity planning).
    pub fn mean(&self) -> f64 {
        match *self {
            Dist::Fixed(n) => n as f64,
            Dist::Uniform { min, max } => (min as f64 + max as f64) / 2.0,
            Dist::Lognormal { median, sigma, max } => {
                (median * (sigma * sigma / 2.0).exp()).min(max as f64)
            }
        }
    }

    /// One draw (at least 1 for the log-normal, which is clamped to `[1, max]`).
    pub fn sample(&self, rng: &mut impl rand::Rng) -> u32 {
        use rand_distr::Distribution;
        match *self {
            Dist::Fixed(n) => n,
            Dist::Uniform { min, max } => rng.random_range(min.min(max)..=max.max(min)),
            Dist::Lognormal { median, sigma, max } => {
                match rand_distr::LogNormal::new(median.max(f64::MIN_POSITIVE).ln(), sigma.max(0.0))
                {
                    Ok(ln) => {
                        (ln.sample(rng).round().min(f64::from(u32::MAX)) as u32).clamp(1, max)
                    }
                    Err(_) => median as u32,
                }
            }
        }
    }

    /// The largest value it can take.
    pub fn max(&self) -> u32 {
        match *self {
            Dist::Fixed(n) => n,
            Dist::Uniform { max, .. } | Dist::Lognormal { max, .. } => max,
        }
    }

    fn validate(&self, field: &str) -> Result<(), InvalidField> {
        match *self {
            Dist::Fixed(0) => invalid(format!("{field}.fixed"), "expected at least 1 token"),
            Dist::Uniform { min, max } if min == 0 || min > max => invalid(
                format!("{field}.uniform"),
                format!("expected 1 <= min <= max, found min {min}, max {max}"),
            ),
            Dist::Lognormal { median, sigma, max }
                if !(median >= 1.0 && sigma >= 0.0 && max >= 1) =>
            {
                invalid(
                    format!("{field}.lognormal"),
                    format!(
                        "expected median >= 1, sigma >= 0, max >= 1, found {median}, {sigma}, {max}"
                    ),
                )
            }
            _ => Ok(()),
        }
    }
}

/// How requests arrive.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Arrival {
    /// Closed loop: this many requests in flight at all times.
    Concurrency(u32),
    /// Open loop: Poisson arrivals at this many requests per second.
    Poisson { rate: f64 },
}

/// Service-level objectives for goodput.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    #[serde(default)]
    pub ttft_ms: Option<f64>,
    #[serde(default)]
    pub tpot_ms: Option<f64>,
    #[serde(default)]
    pub e2e_ms: Option<f64>,
}

fn default_max_error_rate() -> f64 {
    0.01
}

fn default_timeout_s() -> f64 {
    120.0
}

/// A workload: request shapes, arrival, size of a rep, warm-up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub description: String,
    pub input_tokens: Dist,
    pub output_tokens: Dist,
    pub arrival: Arrival,
    /// Requests per rep.
    pub requests: u32,
    /// Requests sent before the measured reps (excluded from metrics).
    #[serde(default)]
    pub warmup_requests: u32,
    #[serde(default)]
    pub slo: Slo,
    /// A rep whose error rate exceeds this fails the trial.
    #[serde(default = "default_max_error_rate")]
    pub max_error_rate: f64,
    /// Per-request timeout in seconds.
    #[serde(default = "default_timeout_s")]
    pub request_timeout_s: f64,
    /// Prompts from a JSONL file instead of synthetic ones (see [`Dataset`]).
    #[serde(default)]
    pub dataset: Option<Dataset>,
    /// The fidelity probe set (see [`crate::probe::ProbeSpec`]); absent, the bundled default.
    #[serde(default)]
    pub probes: Option<crate::probe::ProbeSpec>,
}

pub use crate::dataset::{Dataset, DatasetEntry};

impl Workload {
    /// Check the numbers make sense; returns a message naming the bad field.
    pub fn validate(&self) -> Result<(), InvalidField> {
        self.input_tokens.validate("input_tokens")?;
        self.output_tokens.validate("output_tokens")?;
        match self.arrival {
            Arrival::Concurrency(0) => {
                return invalid("arrival.concurrency", "expected at least 1");
            }
            Arrival::Poisson { rate } if !(rate > 0.0 && rate.is_finite()) => {
                return invalid(
                    "arrival.poisson.rate",
                    format!("expected a positive rate, found {rate}"),
                );
            }
            _ => {}
        }
        if self.requests == 0 {
            return invalid("requests", "expected at least 1 request per rep");
        }
        fraction("max_error_rate", self.max_error_rate)?;
        positive("request_timeout_s", self.request_timeout_s)?;
        if let Some(p) = &self.probes {
            p.validate()?;
        }
        Ok(())
    }
}

fn positive(field: &str, v: f64) -> Result<(), InvalidField> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        invalid(field, format!("expected a positive number, found {v}"))
    }
}

fn fraction(field: &str, v: f64) -> Result<(), InvalidField> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        invalid(field, format!("expected a fraction in [0, 1], found {v}"))
    }
}
