//! Output fidelity's saved types: a combo's precision class, the thresholds it was judged
//! against, the measures of its answers against the baseline's, and its verdict — what gate
//! rows embed (`Row::fidelity`) and reports show.

use l1_engines::Combo;
use l1_engines::probe::LogprobSupport;
use serde::{Deserialize, Serialize};

/// The numeric precision class of a combo: what default thresholds it gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// 4-bit KV caches (`q4_0`).
    Q4,
    /// 8-bit activations or KV caches (`fp8_e4m3`, `fp8_e5m2`, `q8_0`).
    Fp8,
    /// 16-bit and wider (`bf16`, `fp16`, `auto` following a 16-bit model, `unset`).
    Bf16,
}

/// The class names a spec's `per_dtype` accepts.
pub const PRECISION_NAMES: [&str; 3] = ["bf16", "fp8", "q4"];

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Self::Bf16 => "bf16",
            Self::Fp8 => "fp8",
            Self::Q4 => "q4",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "bf16" => Some(Self::Bf16),
            "fp8" => Some(Self::Fp8),
            "q4" => Some(Self::Q4),
            _ => None,
        }
    }

    fn of_value(v: &str) -> Self {
        match v {
            "q4_0" | "q4_1" | "iq4_nl" | "q5_0" | "q5_1" => Self::Q4,
            "fp8" | "fp8_e4m3" | "fp8_e5m2" | "q8_0" | "int8" => Self::Fp8,
            _ => Self::Bf16,
        }
    }

    /// The lowest precision among the combo's activation and KV-cache dtypes (and the knobs of
    /// the same names, for engines that take them as knobs).
    pub fn of(combo: &Combo) -> Self {
        ["activation_dtype", "kv_cache_dtype"]
            .iter()
            .flat_map(|k| [combo.dims.get(*k), combo.knobs.get(*k)])
            .flatten()
            .map(|v| Self::of_value(v))
            .min()
            .unwrap_or(Self::Bf16)
    }

    /// The built-in thresholds of the class (see the module docs and `docs/src/gates.md`, "fidelity").
    pub fn defaults(self) -> Limits {
        match self {
            Self::Bf16 => Limits {
                min_exact_match: 0.75,
                min_matched_prefix: 0.90,
                max_logprob_delta: 0.05,
                max_topk_divergence: 0.01,
            },
            Self::Fp8 => Limits {
                min_exact_match: 0.50,
                min_matched_prefix: 0.75,
                max_logprob_delta: 0.15,
                max_topk_divergence: 0.03,
            },
            // 4-bit caches may move logprobs more, but not change more answers than fp8.
            Self::Q4 => Limits {
                min_exact_match: 0.50,
                min_matched_prefix: 0.75,
                max_logprob_delta: 0.25,
                max_topk_divergence: 0.05,
            },
        }
    }
}

/// Resolved thresholds for one combo.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub min_exact_match: f64,
    pub min_matched_prefix: f64,
    pub max_logprob_delta: f64,
    pub max_topk_divergence: f64,
}

/// The comparison of one combo's answers with the reference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Measures {
    /// Probes compared (both sides answered).
    pub probes: usize,
    /// Probes that could not be compared, with why.
    #[serde(default)]
    pub failed_probes: Vec<String>,
    pub exact_match: Option<f64>,
    /// Mean first-divergence position in tokens (the length when a probe never diverged).
    pub mean_first_divergence: Option<f64>,
    /// Mean of first divergence over length: 1 when nothing diverged.
    pub matched_prefix: Option<f64>,
    /// First-divergence positions of the probes that diverged, sorted.
    #[serde(default)]
    pub divergence_positions: Vec<u32>,
    /// Mean |Δ logprob| of chosen tokens over identical-context positions (nats).
    pub mean_abs_logprob_delta: Option<f64>,
    /// Mean top-k Jensen–Shannon divergence (bits) over identical-context positions.
    pub topk_js_divergence: Option<f64>,
    /// The weaker logprob support of the two sides.
    pub logprobs: Option<LogprobSupport>,
    /// Probes whose token count differs from the reference's.
    #[serde(default)]
    pub length_mismatches: Vec<String>,
    /// Why nothing could be compared, when nothing could.
    #[serde(default)]
    pub unjudged: Option<String>,
}

/// One combo's fidelity verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComboFidelity {
    pub combo: String,
    pub precision: Precision,
    pub limits: Limits,
    pub measures: Measures,
    pub passed: bool,
    /// Each failed check: `measure observed vs threshold`.
    pub failures: Vec<String>,
    /// What was not checked and why (no logprobs, no top-k).
    pub notes: Vec<String>,
}
