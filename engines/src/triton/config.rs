//! Triton model configurations (`config.pbtxt`) for Triton's GPU backends: TensorRT plans,
//! TensorRT-LLM engines (the C++ `tensorrtllm` backend) and ONNX models (the `onnxruntime`
//! backend). Pure text generation, one config per combo; the launcher ([`crate::triton`])
//! uses the `tensorrtllm` one for GPU launches (the TensorRT-LLM ensemble). A GPU launch writes the text as
//! `<model repository>/<model>/config.pbtxt` (a [`crate::process::LaunchCommand`] file) next to
//! the model file (`1/model.plan`, `1/model.onnx`, or the TensorRT-LLM engine directory named
//! in [`TritonModel::tensorrt_llm`]) and starts `tritonserver --model-repository=<dir>`.
//!
//! Every generated config parses against Triton's own schema (`model_config.proto` as shipped
//! in PyPI `tritonclient`): `scripts/check-triton-configs.py`, run by this module's test
//! `configs_parse_against_tritons_schema` when the Triton venv exists.
//!
//! # Mapping (source: `engines-reference.md` §4, §5, L14, L16)
//!
//! Common to all backends: the knobs of the catalog's `triton` entry — `max_batch_size` →
//! `max_batch_size` (default 8), `instances` → `instance_group [{ count: n kind: KIND_GPU }]`
//! (`KIND_CPU`, count 1 refused otherwise, for `tensorrtllm`, which places itself on the GPUs),
//! `dynamic_batching` `on` → `dynamic_batching { max_queue_delay_microseconds: <max_queue_delay_us> }`,
//! `off` → no batcher. Dimensions a backend cannot express are refused (naming the backend,
//! Triton version and reason), never dropped.
//!
//! | dimension | `tensorrt` (TensorRT plan) | `onnxruntime` | `tensorrtllm` |
//! |---|---|---|---|
//! | `cuda_graph` `off` / `per-shape` | `optimization { cuda { graphs: false/true } }` — the only backend that honours it ("Currently only recognized by TensorRT backend") | `off`: nothing; `per-shape`: TensorRT accelerator parameter `trt_cuda_graph_enable: "1"` (`optimization.cuda.graphs` is ignored by this backend) | parameter `cuda_graph_mode` `"false"`/`"true"` |
//! | `activation_dtype` | the plan's precision is fixed when it is built: `default_model_filename: "model.<fp16\|bf16\|fp8>.plan"` | TensorRT accelerator `precision_mode` `FP16` / `BF16` (→ `trt_fp16_enable` / `trt_bf16_enable`; BF16 from 2.71, ONNX Runtime ≥ 1.23); `fp8_e4m3` refused: no FP8 precision mode (L8, L14) | built into the engine (see below) |
//! | `fusion_strategy` | refused: fixed when the plan is built | `optimization { graph { level } }`: `none` → 2 (DISABLE_ALL), `conservative` → −1 (BASIC), `aggressive` → 0 (ALL). Triton's numbering is **not** ONNX Runtime's enum (L16); 1 would be EXTENDED | built into the engine |
//! | `kv_layout` | refused | refused | `paged` → `enable_chunked_context: "false"`, `chunked` → `"true"`; `gpt_model_type: inflight_fused_batching` (paged KV) always |
//! | `attention_backend`, `kv_cache_dtype` | refused | refused | built into the engine |
//! | `matmul_path` | refused | refused | refused (as for TensorRT-LLM itself) |
//!
//! With the ONNX Runtime backend the TensorRT accelerator is added only when a dimension needs
//! it (`activation_dtype` fp16/bf16, `cuda_graph` per-shape): adding it moves the model from the
//! CUDA execution provider to TensorRT's. The CUDA EP's own `enable_cuda_graph` (through a
//! `name: "cuda"` accelerator) is not used: the backend's pass-through of that key is
//! unconfirmed.
//!
//! `tensorrtllm`: the engine's build-time dimensions (attention, activation dtype, fusion, KV
//! dtype) must be what [`crate::trtllm::build_flags`] makes of the same combo at the
//! TensorRT-LLM version the engine was built with; they are checked with it and written into the
//! config as a comment. Inputs and outputs are the `inflight_batcher_llm` template's core
//! tensors (`input_ids`, `input_lengths`, `request_output_len`, optional `end_id`, `pad_id`,
//! `streaming`; `output_ids`, `sequence_length`), decoupled for streaming. The other backends
//! leave inputs and outputs to Triton's auto-complete from the model file.

use std::fmt::Write as _;

use crate::Combo;
use crate::combo::UNSET;
use crate::translate::TranslateError;
use crate::translate::check_supported;
use crate::version::{Version, VersionRange};

/// Triton versions whose model-config schema these configs were written against (the catalog's
/// `triton` versions; the keys used are older than both).
pub const SUPPORTED: &[VersionRange] = &[VersionRange::new("2.51", "2.71")];

/// A Triton backend that runs on a GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TritonBackend {
    /// TensorRT plans (`platform: "tensorrt_plan"`).
    TensorRt,
    /// TensorRT-LLM engines through the C++ `tensorrtllm` backend.
    TensorRtLlm,
    /// ONNX models through the `onnxruntime` backend.
    OnnxRuntime,
}

impl TritonBackend {
    pub fn name(self) -> &'static str {
        match self {
            TritonBackend::TensorRt => "tensorrt",
            TritonBackend::TensorRtLlm => "tensorrtllm",
            TritonBackend::OnnxRuntime => "onnxruntime",
        }
    }
}

/// The model a config is for.
#[derive(Clone, Copy, Debug, Default)]
pub struct TritonModel<'a> {
    /// The model's name in the repository.
    pub name: &'a str,
    /// For `tensorrtllm`: the engine directory (`gpt_model_path`) and the TensorRT-LLM version
    /// it was built with.
    pub tensorrt_llm: Option<(&'a str, &'a str)>,
}

fn refuse(
    backend: TritonBackend,
    version: &str,
    dim: &str,
    value: &str,
    reason: &str,
) -> TranslateError {
    TranslateError::Refused {
        engine: "triton".into(),
        version: version.into(),
        context: Some(format!("{} backend", backend.name())),
        dimension: dim.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The knob `name` as a positive number (or its default).
fn knob_number(combo: &Combo, name: &str, default: u32) -> Result<u32, TranslateError> {
    match combo.knob(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|&n| n >= 1 || name == "max_queue_delay_us")
            .ok_or_else(|| TranslateError::BadKnob {
                engine: Some("triton".into()),
                knob: name.into(),
                value: v.into(),
                expected: "a number".into(),
            }),
    }
}

/// `config.pbtxt` for `model` on `backend` at Triton `version` (see the module docs).
pub fn config_pbtxt(
    backend: TritonBackend,
    combo: &Combo,
    version: &str,
    model: &TritonModel<'_>,
) -> Result<String, TranslateError> {
    let parsed: Version = check_supported("triton", version, SUPPORTED)?;
    let bad = |dim: &str, value: &str, reason: &str| refuse(backend, version, dim, value, reason);
    for knob in combo.knobs.keys() {
        if !matches!(
            knob.as_str(),
            "max_batch_size" | "instances" | "dynamic_batching" | "max_queue_delay_us"
        ) {
            return Err(bad(
                "knob",
                knob,
                "accepted knobs: max_batch_size, instances, dynamic_batching, max_queue_delay_us",
            ));
        }
    }
    let known = [
        "attention_backend",
        "kv_layout",
        "matmul_path",
        "activation_dtype",
        "fusion_strategy",
        "cuda_graph",
        "kv_cache_dtype",
    ];
    for (dim, value) in &combo.dims {
        if !known.contains(&dim.as_str()) && value != UNSET {
            return Err(bad(dim, value, "not a dimension Triton configs know"));
        }
    }
    let mut head = vec![format!(
        "# l1: {} config for {}",
        backend.name(),
        combo.canonical()
    )];
    let mut out = String::new();
    let _ = writeln!(out, "name: {}", quote(model.name));
    match backend {
        TritonBackend::TensorRt => out.push_str("platform: \"tensorrt_plan\"\n"),
        TritonBackend::TensorRtLlm => out.push_str("backend: \"tensorrtllm\"\n"),
        TritonBackend::OnnxRuntime => out.push_str("backend: \"onnxruntime\"\n"),
    }
    let max_batch = knob_number(combo, "max_batch_size", 8)?;
    let _ = writeln!(out, "max_batch_size: {max_batch}");
    let instances = knob_number(combo, "instances", 1)?;

    // Dimensions that are refused on a backend unless unset.
    let only_unset = |dims: &[&str], reason: &str| -> Result<(), TranslateError> {
        for d in dims {
            let v = combo.dim(d);
            if v != UNSET {
                return Err(bad(d, v, reason));
            }
        }
        Ok(())
    };
    let graphs = combo.dim("cuda_graph");
    if !matches!(graphs, "off" | "per-shape" | UNSET) {
        return Err(bad(
            "cuda_graph",
            graphs,
            "accepted: off, per-shape, unset (graphs are captured per batch shape)",
        ));
    }
    let mut parameters: Vec<(String, String)> = Vec::new();
    let mut optimization: Vec<String> = Vec::new();
    let mut extra = String::new();
    match backend {
        TritonBackend::TensorRt => {
            only_unset(
                &[
                    "attention_backend",
                    "kv_layout",
                    "matmul_path",
                    "kv_cache_dtype",
                ],
                "a TensorRT plan has no such setting in config.pbtxt (accepted: unset)",
            )?;
            only_unset(
                &["fusion_strategy"],
                "a TensorRT plan's fusions are fixed when it is built (accepted: unset)",
            )?;
            let file = match combo.dim("activation_dtype") {
                "fp16" => Some("model.fp16.plan"),
                "bf16" => Some("model.bf16.plan"),
                "fp8_e4m3" => Some("model.fp8.plan"),
                UNSET => None,
                other => {
                    return Err(bad(
                        "activation_dtype",
                        other,
                        "accepted: fp16, bf16, fp8_e4m3 (one plan built per precision), unset",
                    ));
                }
            };
            if let Some(file) = file {
                head.push(format!(
                    "# activation_dtype {}: the plan built in that precision",
                    combo.dim("activation_dtype")
                ));
                let _ = writeln!(out, "default_model_filename: {}", quote(file));
            }
            match graphs {
                "off" => optimization.push("  cuda {\n    graphs: false\n  }".into()),
                "per-shape" => optimization.push("  cuda {\n    graphs: true\n  }".into()),
                _ => {}
            }
        }
        TritonBackend::OnnxRuntime => {
            only_unset(
                &[
                    "attention_backend",
                    "kv_layout",
                    "matmul_path",
                    "kv_cache_dtype",
                ],
                "the onnxruntime backend has no such setting (accepted: unset)",
            )?;
            let level = match combo.dim("fusion_strategy") {
                "none" => Some((2, "ORT_DISABLE_ALL")),
                "conservative" => Some((-1, "ORT_ENABLE_BASIC")),
                "aggressive" => Some((0, "ORT_ENABLE_ALL")),
                UNSET => None,
                other => {
                    return Err(bad(
                        "fusion_strategy",
                        other,
                        "accepted: none, conservative, aggressive, unset",
                    ));
                }
            };
            if let Some((n, name)) = level {
                head.push(format!(
                    "# fusion_strategy {}: graph level {n} = {name} (Triton's numbering)",
                    combo.dim("fusion_strategy")
                ));
                optimization.push(format!("  graph {{\n    level: {n}\n  }}"));
            }
            let mut trt: Vec<(&str, &str)> = Vec::new();
            match combo.dim("activation_dtype") {
                "fp16" => trt.push(("precision_mode", "FP16")),
                "bf16" if parsed.at_least("2.71") => trt.push(("precision_mode", "BF16")),
                "bf16" => {
                    return Err(bad(
                        "activation_dtype",
                        "bf16",
                        "precision_mode BF16 (trt_bf16_enable, ONNX Runtime >= 1.23) is documented from Triton 2.71; earlier releases are unconfirmed",
                    ));
                }
                "fp8_e4m3" => {
                    return Err(bad(
                        "activation_dtype",
                        "fp8_e4m3",
                        "the TensorRT accelerator has no FP8 precision mode (ONNX Runtime has no trt_fp8_enable; L8, L14)",
                    ));
                }
                UNSET => {}
                other => {
                    return Err(bad(
                        "activation_dtype",
                        other,
                        "accepted: fp16, bf16, unset",
                    ));
                }
            }
            if graphs == "per-shape" {
                trt.push(("trt_cuda_graph_enable", "1"));
            }
            if !trt.is_empty() {
                let mut acc = String::from(
                    "  execution_accelerators {\n    gpu_execution_accelerator: [\n      {\n        name: \"tensorrt\"\n",
                );
                for (k, v) in trt {
                    let _ = writeln!(
                        acc,
                        "        parameters {{ key: {} value: {} }}",
                        quote(k),
                        quote(v)
                    );
                }
                acc.push_str("      }\n    ]\n  }");
                optimization.push(acc);
            }
        }
        TritonBackend::TensorRtLlm => {
            let Some((engine_dir, trtllm_version)) = model.tensorrt_llm else {
                return Err(TranslateError::Target(format!(
                    "engine `triton` {version} (tensorrtllm backend): the model needs its TensorRT-LLM engine directory and version"
                )));
            };
            if instances != 1 {
                return Err(bad(
                    "knob instances",
                    &instances.to_string(),
                    "the tensorrtllm backend runs one instance (KIND_CPU) that places itself on the GPUs",
                ));
            }
            // The engine's build-time dimensions: what trtllm-build made of this combo.
            let mut build = Combo {
                dims: combo.dims.clone(),
                knobs: [("backend".to_string(), "tensorrt".to_string())].into(),
            };
            for d in ["kv_layout", "cuda_graph"] {
                build.dims.remove(d); // runtime parameters here
            }
            let flags = crate::trtllm::build_flags(&build, trtllm_version).map_err(|e| {
                TranslateError::Within {
                    context: format!("engine `triton` {version} (tensorrtllm backend)"),
                    source: Box::new(e),
                }
            })?;
            head.push(format!(
                "# engine built by trtllm-build {trtllm_version} {}",
                flags.join(" ")
            ));
            parameters.push(("gpt_model_type".into(), "inflight_fused_batching".into()));
            parameters.push(("gpt_model_path".into(), engine_dir.into()));
            match combo.dim("kv_layout") {
                "paged" => parameters.push(("enable_chunked_context".into(), "false".into())),
                "chunked" => parameters.push(("enable_chunked_context".into(), "true".into())),
                UNSET => {}
                other => {
                    return Err(bad(
                        "kv_layout",
                        other,
                        "in-flight batching keeps a paged KV cache (accepted: paged, chunked, unset)",
                    ));
                }
            }
            match graphs {
                "off" => parameters.push(("cuda_graph_mode".into(), "false".into())),
                "per-shape" => parameters.push(("cuda_graph_mode".into(), "true".into())),
                _ => {}
            }
            extra.push_str("model_transaction_policy {\n  decoupled: true\n}\n");
            extra.push_str(concat!(
                "input [\n",
                "  { name: \"input_ids\" data_type: TYPE_INT32 dims: [ -1 ] allow_ragged_batch: true },\n",
                "  { name: \"input_lengths\" data_type: TYPE_INT32 dims: [ 1 ] reshape: { shape: [ ] } },\n",
                "  { name: \"request_output_len\" data_type: TYPE_INT32 dims: [ 1 ] reshape: { shape: [ ] } },\n",
                "  { name: \"end_id\" data_type: TYPE_INT32 dims: [ 1 ] reshape: { shape: [ ] } optional: true },\n",
                "  { name: \"pad_id\" data_type: TYPE_INT32 dims: [ 1 ] reshape: { shape: [ ] } optional: true },\n",
                "  { name: \"streaming\" data_type: TYPE_BOOL dims: [ 1 ] reshape: { shape: [ ] } optional: true }\n",
                "]\n",
                "output [\n",
                "  { name: \"output_ids\" data_type: TYPE_INT32 dims: [ -1, -1 ] },\n",
                "  { name: \"sequence_length\" data_type: TYPE_INT32 dims: [ -1 ] }\n",
                "]\n",
            ));
        }
    }
    let kind = if backend == TritonBackend::TensorRtLlm {
        "KIND_CPU"
    } else {
        "KIND_GPU"
    };
    let _ = writeln!(
        out,
        "instance_group [\n  {{\n    count: {instances}\n    kind: {kind}\n  }}\n]"
    );
    match combo.knob("dynamic_batching").unwrap_or("on") {
        "on" => {
            let delay = knob_number(combo, "max_queue_delay_us", 0)?;
            let _ = writeln!(
                out,
                "dynamic_batching {{\n  max_queue_delay_microseconds: {delay}\n}}"
            );
        }
        "off" => {}
        other => return Err(bad("knob dynamic_batching", other, "accepted: on, off")),
    }
    out.push_str(&extra);
    if !optimization.is_empty() {
        let _ = writeln!(out, "optimization {{\n{}\n}}", optimization.join("\n"));
    }
    for (k, v) in parameters {
        let _ = writeln!(
            out,
            "parameters {{\n  key: {}\n  value: {{ string_value: {} }}\n}}",
            quote(&k),
            quote(&v)
        );
    }
    Ok(format!("{}\n{out}", head.join("\n")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::combo;
    use TritonBackend::{OnnxRuntime, TensorRt, TensorRtLlm};

    const PLAIN: TritonModel<'static> = TritonModel {
        name: "m",
        tensorrt_llm: None,
    };
    const LLM: TritonModel<'static> = TritonModel {
        name: "llm",
        tensorrt_llm: Some(("/engines/llm", "1.2")),
    };

    fn model_of(b: TritonBackend) -> TritonModel<'static> {
        if b == TensorRtLlm { LLM } else { PLAIN }
    }

    /// The config without its comment lines.
    fn body(text: &str) -> String {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn onnxruntime_config_snapshot() {
        let c = combo(
            &[
                ("fusion_strategy", "conservative"),
                ("activation_dtype", "fp16"),
                ("cuda_graph", "per-shape"),
            ],
            &[("instances", "2"), ("max_queue_delay_us", "1000")],
        );
        let t = config_pbtxt(OnnxRuntime, &c, "2.71", &PLAIN).unwrap();
        assert!(
            t.contains("# fusion_strategy conservative: graph level -1 = ORT_ENABLE_BASIC"),
            "{t}"
        );
        assert_eq!(
            body(&t),
            r#"name: "m"
backend: "onnxruntime"
max_batch_size: 8
instance_group [
  {
    count: 2
    kind: KIND_GPU
  }
]
dynamic_batching {
  max_queue_delay_microseconds: 1000
}
optimization {
  graph {
    level: -1
  }
  execution_accelerators {
    gpu_execution_accelerator: [
      {
        name: "tensorrt"
        parameters { key: "precision_mode" value: "FP16" }
        parameters { key: "trt_cuda_graph_enable" value: "1" }
      }
    ]
  }
}"#
        );
    }

    #[test]
    fn every_value_maps_on_each_backend_at_each_version() {
        // (backend, dim, value, a line the config must contain)
        let cases: &[(TritonBackend, &str, &str, &str)] = &[
            (OnnxRuntime, "fusion_strategy", "none", "    level: 2\n"),
            (
                OnnxRuntime,
                "fusion_strategy",
                "conservative",
                "    level: -1\n",
            ),
            (
                OnnxRuntime,
                "fusion_strategy",
                "aggressive",
                "    level: 0\n",
            ),
            (
                OnnxRuntime,
                "activation_dtype",
                "fp16",
                r#"key: "precision_mode" value: "FP16""#,
            ),
            (
                OnnxRuntime,
                "cuda_graph",
                "per-shape",
                r#"key: "trt_cuda_graph_enable" value: "1""#,
            ),
            (
                TensorRt,
                "cuda_graph",
                "per-shape",
                "  cuda {\n    graphs: true\n  }",
            ),
            (
                TensorRt,
                "cuda_graph",
                "off",
                "  cuda {\n    graphs: false\n  }",
            ),
            (
                TensorRt,
                "activation_dtype",
                "fp16",
                r#"default_model_filename: "model.fp16.plan""#,
            ),
            (
                TensorRt,
                "activation_dtype",
                "bf16",
                r#"default_model_filename: "model.bf16.plan""#,
            ),
            (
                TensorRt,
                "activation_dtype",
                "fp8_e4m3",
                r#"default_model_filename: "model.fp8.plan""#,
            ),
            (
                TensorRtLlm,
                "kv_layout",
                "paged",
                "key: \"enable_chunked_context\"\n  value: { string_value: \"false\" }",
            ),
            (
                TensorRtLlm,
                "kv_layout",
                "chunked",
                "key: \"enable_chunked_context\"\n  value: { string_value: \"true\" }",
            ),
            (
                TensorRtLlm,
                "cuda_graph",
                "off",
                "key: \"cuda_graph_mode\"\n  value: { string_value: \"false\" }",
            ),
            (
                TensorRtLlm,
                "cuda_graph",
                "per-shape",
                "key: \"cuda_graph_mode\"\n  value: { string_value: \"true\" }",
            ),
            (
                TensorRtLlm,
                "attention_backend",
                "flash_attn_v2",
                "# engine built by trtllm-build 1.2 --gpt_attention_plugin auto --gemm_plugin auto --context_fmha enable",
            ),
            (
                TensorRtLlm,
                "activation_dtype",
                "fp16",
                "--gemm_plugin float16",
            ),
            (
                TensorRtLlm,
                "fusion_strategy",
                "none",
                "--use_fused_mlp disable",
            ),
        ];
        for v in ["2.51", "2.51.0", "2.71", "2.71.0"] {
            for (b, dim, value, want) in cases {
                let t = config_pbtxt(*b, &combo(&[(dim, value)], &[]), v, &model_of(*b)).unwrap();
                assert!(t.contains(want), "{v} {b:?} {dim}={value}: {want}\n{t}");
            }
            // off on ORT: no accelerator (it would move the model to the TensorRT EP)
            let t = config_pbtxt(
                OnnxRuntime,
                &combo(&[("cuda_graph", "off")], &[]),
                v,
                &PLAIN,
            )
            .unwrap();
            assert!(!t.contains("optimization"), "{t}");
            // bf16: from 2.71
            let r = config_pbtxt(
                OnnxRuntime,
                &combo(&[("activation_dtype", "bf16")], &[]),
                v,
                &PLAIN,
            );
            if v.starts_with("2.71") {
                assert!(r.unwrap().contains(r#"value: "BF16""#));
            } else {
                let e = r.unwrap_err().to_string();
                assert!(
                    e.contains("triton") && e.contains(v) && e.contains("2.71"),
                    "{e}"
                );
            }
            let t = config_pbtxt(TensorRtLlm, &Combo::default(), v, &LLM).unwrap();
            assert!(
                t.contains("kind: KIND_CPU")
                    && t.contains("decoupled: true")
                    && t.contains("/engines/llm")
            );
            let t = config_pbtxt(
                TensorRt,
                &combo(&[], &[("dynamic_batching", "off")]),
                v,
                &PLAIN,
            )
            .unwrap();
            assert!(
                t.contains("platform: \"tensorrt_plan\"") && !body(&t).contains("dynamic_batching"),
                "{t}"
            );
        }
    }

    #[test]
    fn refusals_name_backend_version_and_reason() {
        type Dims<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(TritonBackend, Dims<'_>, Dims<'_>, &str)] = &[
            (
                OnnxRuntime,
                &[("activation_dtype", "fp8_e4m3")],
                &[],
                "no FP8 precision mode",
            ),
            (
                OnnxRuntime,
                &[("kv_layout", "paged")],
                &[],
                "no such setting",
            ),
            (
                OnnxRuntime,
                &[("cuda_graph", "dynamic")],
                &[],
                "accepted: off, per-shape",
            ),
            (
                TensorRt,
                &[("fusion_strategy", "none")],
                &[],
                "fixed when it is built",
            ),
            (
                TensorRt,
                &[("attention_backend", "flash_attn_v2")],
                &[],
                "no such setting",
            ),
            (
                TensorRtLlm,
                &[("fusion_strategy", "aggressive")],
                &[],
                "all-reduces",
            ),
            (
                TensorRtLlm,
                &[("kv_layout", "contiguous")],
                &[],
                "paged KV cache",
            ),
            (TensorRtLlm, &[("matmul_path", "cublas")], &[], "dense-GEMM"),
            (TensorRtLlm, &[], &[("instances", "2")], "one instance"),
            (TensorRt, &[], &[("block_size", "16")], "accepted knobs"),
            (
                TensorRt,
                &[],
                &[("dynamic_batching", "maybe")],
                "accepted: on, off",
            ),
        ];
        for (b, dims, knobs, why) in cases {
            let e = config_pbtxt(*b, &combo(dims, knobs), "2.71", &model_of(*b))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("engine `triton` 2.71") && e.contains(why),
                "{b:?}: {e}"
            );
        }
        let e = config_pbtxt(TensorRtLlm, &Combo::default(), "2.71", &PLAIN)
            .unwrap_err()
            .to_string();
        assert!(e.contains("engine directory"), "{e}");
        let e = config_pbtxt(OnnxRuntime, &Combo::default(), "2.40", &PLAIN)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2.40") && e.contains("2.51..=2.71"), "{e}");
    }

    /// Every config the module can produce for the catalog's values, for the schema check.
    fn all_configs() -> Vec<(String, String)> {
        let values: &[(&str, &[&str])] = &[
            (
                "attention_backend",
                &["unset", "flash_attn_v2", "paged_attention"],
            ),
            ("kv_layout", &["unset", "paged", "chunked"]),
            ("activation_dtype", &["unset", "fp16", "bf16", "fp8_e4m3"]),
            (
                "fusion_strategy",
                &["unset", "none", "conservative", "aggressive"],
            ),
            ("cuda_graph", &["unset", "off", "per-shape"]),
            ("kv_cache_dtype", &["unset", "auto", "fp8_e4m3"]),
        ];
        let mut out = Vec::new();
        let mut n = 0;
        for b in [OnnxRuntime, TensorRt, TensorRtLlm] {
            for (dim, vals) in values {
                for v in *vals {
                    for knobs in [
                        &[][..],
                        &[("dynamic_batching", "off"), ("max_batch_size", "4")][..],
                    ] {
                        for version in ["2.51", "2.71"] {
                            if let Ok(t) =
                                config_pbtxt(b, &combo(&[(dim, v)], knobs), version, &model_of(b))
                            {
                                n += 1;
                                out.push((format!("{}-{n}.pbtxt", b.name()), t));
                            }
                        }
                    }
                }
            }
        }
        out
    }

    #[test]
    fn configs_parse_against_tritons_schema() {
        // nvidia-pytriton brings tritonclient's model_config_pb2.
        let Some(python) =
            crate::testing::engine_python("venv-triton", "scripts/setup-engines.sh triton")
        else {
            return;
        };
        let dir = std::env::temp_dir().join(format!("l1-triton-configs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let configs = all_configs();
        assert!(configs.len() > 50, "{}", configs.len());
        for (name, text) in &configs {
            std::fs::write(dir.join(name), text).unwrap();
        }
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scripts/check-triton-configs.py");
        let out = std::process::Command::new(&python)
            .arg(&script)
            .arg(&dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let _ = std::fs::remove_dir_all(&dir);
        eprintln!("{}", text.lines().last().unwrap_or_default());
        assert!(out.status.success(), "{text}");
        assert!(
            text.contains(&format!("{0}/{0} configs parse", configs.len())),
            "{text}"
        );
    }
}
