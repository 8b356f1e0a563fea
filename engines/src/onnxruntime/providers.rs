//! ONNX Runtime's GPU execution providers: a combo as CUDA EP or TensorRT EP provider options
//! (key/value maps, as `SessionOptionsAppendExecutionProvider_CUDA_V2` / `_TensorRT_V2` and
//! Python's `providers=[(name, options)]` take them) plus the session's graph optimization level,
//! by ONNX Runtime version. Pure translation: this build drives the CPU EP only
//! ([`super::launch`]); these maps are what a GPU launch would pass.
//!
//! # Mapping (source: `engines-reference.md` §5, L8, L14; option names read from the
//! `libonnxruntime_providers_{cuda,tensorrt}.so` strings of onnxruntime-gpu 1.17.1 … 1.31.1)
//!
//! | dimension | value | CUDA EP (`CUDAExecutionProvider`) | TensorRT EP (`TensorrtExecutionProvider`) |
//! |---|---|---|---|
//! | `fusion_strategy` | `none` / `conservative` / `aggressive`, `unset` | session `ORT_DISABLE_ALL` / `ORT_ENABLE_BASIC` / `ORT_ENABLE_ALL` (as on CPU) | the same session level (it shapes the graph TensorRT receives) |
//! | `cuda_graph` | `off` | `enable_cuda_graph=0` | `trt_cuda_graph_enable=0` |
//! | | `per-shape` | `enable_cuda_graph=1` (one graph per input shape; no If/Loop/Scan in the graph) | `trt_cuda_graph_enable=1` |
//! | | `unset` | nothing (off) | nothing (off) |
//! | `activation_dtype` | `fp16` | refused: the CUDA EP computes in the model's exported dtype | `trt_fp16_enable=1` |
//! | | `bf16` | refused (as fp16) | `trt_bf16_enable=1`, from **1.23** (refused before, with the version) |
//! | | `fp8_e4m3`, `fp8_e5m2` | refused | refused: there is no `trt_fp8_enable` in any version 1.17–1.31 (FP8 needs a QDQ model) |
//! | | `unset` | nothing | nothing (FP32 engines) |
//! | `attention_backend`, `kv_layout`, `matmul_path`, `kv_cache_dtype` | any but `unset` | refused | refused |
//!
//! The table is data: [`SESSION`], [`CUDA`] and [`TENSORRT`] (see [`crate::translate`]); the
//! reasons a refusal gives are `why_not`'s.
//!
//! Knobs (`threads`, `spinning`, `slots`) are session settings handled by [`super::launch`] and
//! ignored here. The catalog's `onnxruntime` entry exposes only `fusion_strategy` and
//! `cuda_graph`; the dtype rows are for a GPU entry or Triton's ORT backend
//! ([`crate::triton::config`]).

use std::collections::BTreeMap;

use crate::Combo;
use crate::DeviceKind;
use crate::combo::UNSET;
use crate::translate::check_supported;
use crate::translate::{Emitted, Row, Table, TranslateError};
use crate::version::VersionRange;

const ENGINE: &str = "onnxruntime";

/// ONNX Runtime versions whose provider options were read (1.17.1 … 1.31.1) and the catalog's
/// `1.32`.
pub const SUPPORTED: &[VersionRange] = &[VersionRange::new("1.17", "1.32")];

/// A GPU execution provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Cuda,
    TensorRt,
}

impl Provider {
    /// The provider's registered name.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cuda => "CUDAExecutionProvider",
            Provider::TensorRt => "TensorrtExecutionProvider",
        }
    }
}

/// What a combo becomes for one provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderOptions {
    pub provider: Provider,
    /// Provider options, key → value.
    pub options: BTreeMap<String, String>,
    /// The session's graph optimization level (`ORT_DISABLE_ALL`, `ORT_ENABLE_BASIC`,
    /// `ORT_ENABLE_ALL`).
    pub graph_optimization_level: &'static str,
}

fn refuse(
    provider: Provider,
    version: &str,
    dim: &str,
    value: &str,
    reason: &str,
) -> TranslateError {
    TranslateError::Refused {
        engine: ENGINE.into(),
        version: version.into(),
        context: Some(provider.name().into()),
        dimension: dim.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// The session's graph optimization level, on either provider (config key [`LEVEL`]).
pub const SESSION: Table = Table {
    engine: ENGINE,
    rows: &[
        Row::new("fusion_strategy", "none").config(&[(LEVEL, "ORT_DISABLE_ALL")]),
        Row::new("fusion_strategy", "conservative").config(&[(LEVEL, "ORT_ENABLE_BASIC")]),
        Row::new("fusion_strategy", "aggressive").config(&[(LEVEL, "ORT_ENABLE_ALL")]),
        Row::new("fusion_strategy", UNSET).config(&[(LEVEL, "ORT_ENABLE_ALL")]),
    ],
};

/// The session option [`SESSION`] sets.
const LEVEL: &str = "graph_optimization_level";

/// The CUDA EP's provider options.
pub const CUDA: Table = Table {
    engine: ENGINE,
    rows: &[
        Row::new("cuda_graph", "off").config(&[("enable_cuda_graph", "0")]),
        Row::new("cuda_graph", "per-shape").config(&[("enable_cuda_graph", "1")]),
    ],
};

/// The TensorRT EP's provider options.
pub const TENSORRT: Table = Table {
    engine: ENGINE,
    rows: &[
        Row::new("cuda_graph", "off").config(&[("trt_cuda_graph_enable", "0")]),
        Row::new("cuda_graph", "per-shape").config(&[("trt_cuda_graph_enable", "1")]),
        Row::new("activation_dtype", "fp16").config(&[("trt_fp16_enable", "1")]),
        Row::new("activation_dtype", "bf16")
            .from("1.23")
            .config(&[("trt_bf16_enable", "1")]),
    ],
};

/// Why `provider` has no option for `dim = value`: the reason, and whether the accepted values
/// follow it.
fn why_not(provider: Provider, dim: &str, value: &str) -> (Option<&'static str>, bool) {
    match (provider, dim, value) {
        (_, "fusion_strategy", _) => (None, true),
        (_, "cuda_graph", _) => (
            Some("ONNX Runtime captures one graph per input shape"),
            true,
        ),
        (Provider::Cuda, "activation_dtype", _) => (
            Some(
                "the CUDA EP computes in the model's exported dtype; reduced precision is a TensorRT EP option",
            ),
            true,
        ),
        (Provider::TensorRt, "activation_dtype", "bf16") => (
            Some("trt_bf16_enable exists only from ONNX Runtime 1.23"),
            false,
        ),
        (Provider::TensorRt, "activation_dtype", "fp8_e4m3" | "fp8_e5m2") => (
            Some(
                "the TensorRT EP has no FP8 flag (no trt_fp8_enable in 1.17-1.31); FP8 needs an explicitly quantized model",
            ),
            false,
        ),
        (_, "activation_dtype", _) => (None, true),
        _ => (Some("ONNX Runtime has no such option"), true),
    }
}

/// The provider options for `combo` at ONNX Runtime `version`.
pub fn provider_options(
    provider: Provider,
    combo: &Combo,
    version: &str,
) -> Result<ProviderOptions, TranslateError> {
    check_supported(ENGINE, version, SUPPORTED)?;
    let options_of = match provider {
        Provider::Cuda => &CUDA,
        Provider::TensorRt => &TENSORRT,
    };
    let spell = |table: &Table, dim: &str, out: &mut Emitted| {
        table
            .emit(combo, dim, version, DeviceKind::Gpu, out)
            .map_err(|_| {
                let value = combo.dim(dim);
                let accepted = table.accepted(dim, version, DeviceKind::Gpu).join(", ");
                let reason = match why_not(provider, dim, value) {
                    (Some(why), true) => format!("{why} (accepted: {accepted})"),
                    (Some(why), false) => why.to_string(),
                    (None, _) => format!("accepted: {accepted}"),
                };
                refuse(provider, version, dim, value, &reason)
            })
    };
    let mut session = Emitted::default();
    let level = spell(&SESSION, "fusion_strategy", &mut session)?
        .and_then(|row| row.config.first())
        .map_or("ORT_ENABLE_ALL", |(_, level)| *level);
    let mut out = Emitted::default();
    spell(options_of, "cuda_graph", &mut out)?;
    spell(options_of, "activation_dtype", &mut out)?;
    for dim in combo.dims.keys() {
        if !matches!(
            dim.as_str(),
            "fusion_strategy" | "cuda_graph" | "activation_dtype"
        ) {
            spell(options_of, dim, &mut out)?;
        }
    }
    Ok(ProviderOptions {
        provider,
        options: out.config.into_iter().collect(),
        graph_optimization_level: level,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn combo(dims: &[(&str, &str)]) -> Combo {
        crate::testing::combo(dims, &[("threads", "2")])
    }

    /// `key=value,...` of the options, then the level.
    fn text(p: Provider, dims: &[(&str, &str)], v: &str) -> String {
        let o = provider_options(p, &combo(dims), v).unwrap();
        let kv: Vec<String> = o.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{} | {}", kv.join(","), o.graph_optimization_level)
    }

    #[test]
    fn every_value_at_each_version_boundary() {
        use Provider::{Cuda, TensorRt};
        for v in ["1.17", "1.22.0", "1.23", "1.23.2", "1.31.1", "1.32"] {
            assert_eq!(text(Cuda, &[], v), " | ORT_ENABLE_ALL");
            assert_eq!(
                text(Cuda, &[("fusion_strategy", "none")], v),
                " | ORT_DISABLE_ALL"
            );
            assert_eq!(
                text(TensorRt, &[("fusion_strategy", "conservative")], v),
                " | ORT_ENABLE_BASIC"
            );
            assert_eq!(
                text(
                    Cuda,
                    &[
                        ("fusion_strategy", "aggressive"),
                        ("cuda_graph", "per-shape")
                    ],
                    v
                ),
                "enable_cuda_graph=1 | ORT_ENABLE_ALL"
            );
            assert_eq!(
                text(Cuda, &[("cuda_graph", "off")], v),
                "enable_cuda_graph=0 | ORT_ENABLE_ALL"
            );
            assert_eq!(
                text(
                    TensorRt,
                    &[("cuda_graph", "per-shape"), ("activation_dtype", "fp16")],
                    v
                ),
                "trt_cuda_graph_enable=1,trt_fp16_enable=1 | ORT_ENABLE_ALL"
            );
            assert_eq!(
                text(
                    TensorRt,
                    &[("cuda_graph", "off"), ("kv_layout", "unset")],
                    v
                ),
                "trt_cuda_graph_enable=0 | ORT_ENABLE_ALL"
            );
            let bf16 = provider_options(TensorRt, &combo(&[("activation_dtype", "bf16")]), v);
            if v.starts_with("1.17") || v.starts_with("1.22") {
                let e = bf16.unwrap_err().to_string();
                assert!(
                    e.contains("onnxruntime")
                        && e.contains(v)
                        && e.contains("only from ONNX Runtime 1.23"),
                    "{e}"
                );
            } else {
                assert_eq!(bf16.unwrap().options["trt_bf16_enable"], "1");
            }
        }
    }

    #[test]
    fn unsupported_values_are_refused_with_version_and_reason() {
        use Provider::{Cuda, TensorRt};
        type Case<'a> = (Provider, &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case<'_>] = &[
            (
                TensorRt,
                &[("activation_dtype", "fp8_e4m3")],
                "no trt_fp8_enable",
            ),
            (
                TensorRt,
                &[("activation_dtype", "fp8_e5m2")],
                "no trt_fp8_enable",
            ),
            (Cuda, &[("activation_dtype", "fp16")], "exported dtype"),
            (
                Cuda,
                &[("cuda_graph", "dynamic")],
                "one graph per input shape",
            ),
            (
                TensorRt,
                &[("attention_backend", "flash_attn_v2")],
                "no such option",
            ),
            (Cuda, &[("kv_cache_dtype", "fp8_e4m3")], "no such option"),
            (Cuda, &[("matmul_path", "cublas")], "no such option"),
            (Cuda, &[("fusion_strategy", "max")], "accepted: none"),
        ];
        for (p, dims, why) in cases {
            let e = provider_options(*p, &combo(dims), "1.23")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("engine `onnxruntime` 1.23") && e.contains(p.name()) && e.contains(why),
                "{e}"
            );
        }
        let e = provider_options(Cuda, &combo(&[]), "1.16")
            .unwrap_err()
            .to_string();
        assert!(e.contains("1.16") && e.contains("1.17..=1.32"), "{e}");
    }
}
