//! TensorRT-LLM's OpenAI-compatible server, `trtllm-serve`, on its two execution backends.
//!
//! Nothing of TensorRT-LLM can be installed or parsed here (PyPI `tensorrt-llm` is a stub that
//! pulls the wheel from NVIDIA's index, and it needs a GPU), so every flag and key below comes
//! from `engines-reference.md` §3 (source snapshots of `NVIDIA/TensorRT-LLM`, 2025–2026, and its
//! docs) and is tested as text only.
//!
//! # Versions
//!
//! [`SUPPORTED`]: 1.0 ..= 1.4 (1.4 = main, 1.4.0rc2). From 1.0 the PyTorch backend is the
//! default and the LLM API takes `cuda_graph_config` (0.20/0.21 had `use_cuda_graph` & co.; the
//! rc that switched is unconfirmed, so older versions are refused). The TensorRT engine backend
//! (`trtllm-build`, `--backend tensorrt`) is [`TENSORRT_BACKEND`]: ≤ 1.3; main removed it in
//! mid-2026 (PRs #15767/#15918/#16369: "PyTorch is now the sole execution backend"; the first
//! release without it is unconfirmed, taken as 1.4).
//!
//! # Backend (knob `backend`)
//!
//! - `pytorch` (default): `trtllm-serve <hf dir> --backend pytorch --extra_llm_api_options
//!   l1-llm-api-options.yaml`; the YAML ([`llm_api_options`]) holds the combo's LLM API keys.
//! - `tensorrt` (≤ 1.3 only; refused from 1.4 with the reason): a TensorRT engine is built by
//!   `trtllm-build` ([`build_flags`], [`build_command`]) from a TensorRT-LLM checkpoint and
//!   served by `trtllm-serve <engine dir> --backend tensorrt --tokenizer <hf dir>`. The launch
//!   runs `/bin/sh l1-trtllm-launch.sh`, which builds into
//!   `<engines>/trtllm-engines/<version>/<checkpoint>-<hash of the build flags>` unless that
//!   engine exists, then runs the server (so the build counts in the startup time once).
//!   The checkpoint (`convert_checkpoint.py --dtype`, or ModelOpt `quantize.py --qformat fp8
//!   [--kv_cache_dtype fp8]`) must exist: `<engines>/models/<model>-trtllm-ckpt[-<dtype>][-kvfp8]`.
//!
//! # Mapping of catalog dimensions
//!
//! | dimension | value | PyTorch backend (YAML key) | TensorRT backend (`trtllm-build` flag / runtime YAML) |
//! |---|---|---|---|
//! | `attention_backend` | `paged_attention` | `attn_backend: TRTLLM` (TRT-LLM's fused FMHA + XQA/MMHA over the paged cache; the default) | `--gpt_attention_plugin <dt> --context_fmha disable --use_paged_context_fmha disable` (unfused context attention, masked MHA over the paged cache) |
//! | | `flash_attn_v2` | `attn_backend: FLASHINFER` (FlashInfer's FA2-style prefill/decode kernels) | `--gpt_attention_plugin <dt> --context_fmha enable` (flash-attention-style fused context MHA) |
//! | | `native` | `attn_backend: VANILLA` (plain PyTorch attention) | refused: without the attention plugin there is no paged KV cache and no in-flight batching |
//! | | `unset` | no key (TRTLLM) | `--gpt_attention_plugin auto` |
//! | `kv_layout` | `paged` | `enable_chunked_prefill: false` | `--kv_cache_type paged`, `enable_chunked_prefill: false` |
//! | | `chunked` | `enable_chunked_prefill: true` | `--kv_cache_type paged --use_paged_context_fmha enable`, `enable_chunked_prefill: true` (needs context FMHA, so refused with `paged_attention`) |
//! | | `contiguous` | refused: the KV cache is always paged | refused: in-flight batching needs a paged cache |
//! | `activation_dtype` | `fp16` / `bf16` | `dtype: float16` / `bfloat16` | checkpoint `-fp16`/`-bf16`, `--gemm_plugin float16`/`bfloat16`, attention plugin the same |
//! | | `fp8_e4m3` | the ModelOpt FP8 checkpoint `<model>-fp8-hf` (no online FP8 in TRT-LLM) | checkpoint `-fp8`, `--gemm_plugin fp8`, attention plugin `auto` |
//! | | `unset` | no key (`auto`: the checkpoint's) | checkpoint without a dtype suffix, plugins `auto` |
//! | `kv_cache_dtype` | `auto` | `kv_cache_config: {dtype: auto}` | nothing |
//! | | `fp8_e4m3` | `kv_cache_config: {dtype: fp8}` | the checkpoint's KV quantization (suffix `-kvfp8`); the TensorRT backend asserts `kv_cache_config.dtype == auto` (L13), so it is never set |
//! | `fusion_strategy` | `none` | refused: the PyTorch backend always runs its fused custom ops | `--use_fused_mlp disable` |
//! | | `conservative` | `torch_compile_config: null` (the default: fused custom ops, no torch.compile) | `--use_fused_mlp enable` (the default) |
//! | | `aggressive` | `torch_compile_config: {enable_fullgraph: true, enable_inductor: true}` | refused: the remaining build fusions (`--reduce_fusion`, `--user_buffer`) act on tensor-parallel all-reduces only, so single-GPU engines would equal `conservative` |
//! | `cuda_graph` | `off` | `cuda_graph_config: null` | `extended_runtime_perf_knob_config: {cuda_graph_mode: false}` |
//! | | `per-shape` | `cuda_graph_config: {enable_padding: false}` (one graph per captured decode batch size, up to 128; TRT-LLM's default) | `extended_runtime_perf_knob_config: {cuda_graph_mode: true}` (graphs are a runtime option of engines) |
//! | `matmul_path` | any but `unset` | refused: no dense-GEMM selector (only MoE `moe_config.backend`) | refused: `--gemm_plugin` is tied to the dtype here; not exposed in the catalog |
//!
//! Values outside these (`flash_attn_v3`, `xformers`, `fp8_e5m2`, `q8_0`, `dynamic` graphs, …)
//! are refused with the engine, version and what is accepted; nothing falls back silently. The
//! catalog prunes what it can see (rule `trtllm-unfused-needs-tensorrt-backend`); rules
//! cannot name knobs, so backend-specific refusals at ≤ 1.3 come from this translator.
//!
//! Always: `--host 127.0.0.1 --port P --max_seq_len N` (longest prompt + longest answer + 16,
//! rounded up to 32, at most the model's context), `return_perf_metrics: true` (else there is no
//! Prometheus endpoint: `/prometheus/metrics`, series `trtllm_*`; `/metrics` is JSON), env
//! `HF_HUB_OFFLINE=1` and `CUDA_VISIBLE_DEVICES` from the device slot. Readiness: `GET /health`.
//! There is no tokenize endpoint; `ignore_eos` is honoured. Startup: unconfirmed; 10 minutes for
//! the PyTorch backend, 40 for a TensorRT launch that may build its engine first.

use std::path::{Path, PathBuf};
use std::time::Duration;

use l1_loadgen::HttpApi;

use crate::combo::UNSET;
use crate::launch::LaunchTarget;
use crate::process::LaunchCommand;
use crate::server::{ServerEngine, ServerRecipe};
use crate::translate::check_supported;
use crate::translate::{Row, Table, TranslateError};
use crate::version::{Version, VersionRange};
use crate::{Combo, DeviceKind};

/// The engine's catalog name.
pub const ENGINE: &str = "trtllm";
/// The server executable (`pip install tensorrt-llm` puts it on `PATH`, beside `trtllm-build`).
pub const PROGRAM: &str = "trtllm-serve";
/// Versions this translator knows.
pub const SUPPORTED: &[VersionRange] = &[VersionRange::new("1.0", "1.4")];
/// Versions that still have the TensorRT engine backend and `trtllm-build`.
pub const TENSORRT_BACKEND: VersionRange = VersionRange::new("1.0", "1.3");
/// The LLM API options file, written into the launch's working directory.
pub const OPTIONS_FILE: &str = "l1-llm-api-options.yaml";
/// The TensorRT backend's build-then-serve script, written beside it.
pub const LAUNCH_SCRIPT: &str = "l1-trtllm-launch.sh";

/// TensorRT-LLM's execution backend, chosen by the knob `backend`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The PyTorch backend (LLM API), default from 1.0 and the only one from 1.4.
    PyTorch,
    /// A TensorRT engine built by `trtllm-build` (≤ 1.3).
    TensorRt,
}

impl Backend {
    /// `trtllm-serve --backend` value.
    pub fn flag(self) -> &'static str {
        match self {
            Backend::PyTorch => "pytorch",
            Backend::TensorRt => "tensorrt",
        }
    }
}

/// A refusal naming engine, version, dimension, value and the reason.
fn refuse(version: &str, dim: &str, value: &str, reason: &str) -> TranslateError {
    TranslateError::Refused {
        engine: ENGINE.into(),
        version: version.into(),
        context: None,
        dimension: dim.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

/// A refusal listing the accepted values.
fn refuse_value(
    version: &str,
    backend: Backend,
    dim: &str,
    value: &str,
    accepted: &[impl AsRef<str>],
) -> TranslateError {
    let accepted: Vec<&str> = accepted.iter().map(AsRef::as_ref).collect();
    refuse(
        version,
        dim,
        value,
        &format!(
            "the {} backend accepts {}",
            backend.flag(),
            accepted.join(", ")
        ),
    )
}

/// The PyTorch backend's LLM API options: YAML keys, `a.b` being key `b` under `a`.
pub const PYTORCH: Table = Table {
    engine: ENGINE,
    rows: &[
        Row::new("attention_backend", "paged_attention").config(&[("attn_backend", "TRTLLM")]),
        Row::new("attention_backend", "flash_attn_v2").config(&[("attn_backend", "FLASHINFER")]),
        Row::new("attention_backend", "native").config(&[("attn_backend", "VANILLA")]),
        Row::new("activation_dtype", "fp16").config(&[("dtype", "float16")]),
        Row::new("activation_dtype", "bf16").config(&[("dtype", "bfloat16")]),
        // The ModelOpt FP8 checkpoint's own dtype (see `model_dir_name`).
        Row::new("activation_dtype", "fp8_e4m3"),
        Row::new("kv_layout", "paged").config(&[("enable_chunked_prefill", "false")]),
        Row::new("kv_layout", "chunked").config(&[("enable_chunked_prefill", "true")]),
        Row::new("kv_cache_dtype", "auto").config(&[("kv_cache_config.dtype", "auto")]),
        Row::new("kv_cache_dtype", "fp8_e4m3").config(&[("kv_cache_config.dtype", "fp8")]),
        Row::new("fusion_strategy", "conservative").config(&[("torch_compile_config", "null")]),
        Row::new("fusion_strategy", "aggressive").config(&[
            ("torch_compile_config.enable_fullgraph", "true"),
            ("torch_compile_config.enable_inductor", "true"),
        ]),
        Row::new("cuda_graph", "off").config(&[("cuda_graph_config", "null")]),
        Row::new("cuda_graph", "per-shape")
            .config(&[("cuda_graph_config.enable_padding", "false")]),
    ],
};

/// The TensorRT backend's runtime LLM API options (its build-time dimensions are
/// [`TENSORRT_BUILD`]'s).
pub const TENSORRT_RUNTIME: Table = Table {
    engine: ENGINE,
    rows: &[
        Row::new("kv_layout", "paged").config(&[("enable_chunked_prefill", "false")]),
        Row::new("kv_layout", "chunked").config(&[("enable_chunked_prefill", "true")]),
        Row::new("cuda_graph", "off")
            .config(&[("extended_runtime_perf_knob_config.cuda_graph_mode", "false")]),
        Row::new("cuda_graph", "per-shape")
            .config(&[("extended_runtime_perf_knob_config.cuda_graph_mode", "true")]),
    ],
};

/// The TensorRT backend's `trtllm-build` flags. The KV-cache dtype is the checkpoint's (its
/// name, see `model_dir_name`), never a flag.
pub const TENSORRT_BUILD: Table = Table {
    engine: ENGINE,
    rows: &[
        Row::new("activation_dtype", "fp16").flags(&[
            "--gpt_attention_plugin",
            "float16",
            "--gemm_plugin",
            "float16",
        ]),
        Row::new("activation_dtype", "bf16").flags(&[
            "--gpt_attention_plugin",
            "bfloat16",
            "--gemm_plugin",
            "bfloat16",
        ]),
        Row::new("activation_dtype", "fp8_e4m3").flags(&[
            "--gpt_attention_plugin",
            "auto",
            "--gemm_plugin",
            "fp8",
        ]),
        Row::new("activation_dtype", UNSET).flags(&[
            "--gpt_attention_plugin",
            "auto",
            "--gemm_plugin",
            "auto",
        ]),
        Row::new("attention_backend", "flash_attn_v2").flags(&["--context_fmha", "enable"]),
        Row::new("attention_backend", "paged_attention").flags(&[
            "--context_fmha",
            "disable",
            "--use_paged_context_fmha",
            "disable",
        ]),
        Row::new("kv_layout", "paged").flags(&["--kv_cache_type", "paged"]),
        Row::new("kv_layout", "chunked").flags(&[
            "--kv_cache_type",
            "paged",
            "--use_paged_context_fmha",
            "enable",
        ]),
        Row::new("fusion_strategy", "none").flags(&["--use_fused_mlp", "disable"]),
        Row::new("fusion_strategy", "conservative").flags(&["--use_fused_mlp", "enable"]),
        Row::new("kv_cache_dtype", "auto"),
        Row::new("kv_cache_dtype", "fp8_e4m3"),
    ],
};

/// Why a backend has no spelling for a value, where the accepted list alone does not say it.
fn why_not(backend: Backend, dim: &str, value: &str) -> Option<&'static str> {
    Some(match (backend, dim, value) {
        (Backend::PyTorch, "fusion_strategy", "none") => {
            "the PyTorch backend always runs its fused custom ops; unfused engines need the TensorRT backend (knob backend: tensorrt, up to 1.3)"
        }
        (Backend::TensorRt, "attention_backend", "native") => {
            "the tensorrt backend needs the GPT attention plugin for its paged KV cache and in-flight batching"
        }
        (Backend::TensorRt, "fusion_strategy", "aggressive") => {
            "the tensorrt backend's further build fusions (--reduce_fusion, --user_buffer) act on tensor-parallel all-reduces only; use the pytorch backend's torch.compile"
        }
        _ => return None,
    })
}

/// `dim`'s row in `table` for `backend`, refused with the reason or the accepted values.
fn spell(
    table: &Table,
    backend: Backend,
    combo: &Combo,
    dim: &str,
    version: &str,
) -> Result<Option<&'static Row>, TranslateError> {
    let value = combo.dim(dim);
    table
        .lookup(dim, value, version, DeviceKind::Gpu)
        .map_err(|_| match why_not(backend, dim, value) {
            Some(reason) => refuse(version, dim, value, reason),
            None => refuse_value(
                version,
                backend,
                dim,
                value,
                &table.accepted(dim, version, DeviceKind::Gpu),
            ),
        })
}

/// A row's config keys as one YAML item (`a.b: v` becomes `b: v` indented under `a:`).
fn yaml_item(row: &Row) -> Option<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut parent: Option<&str> = None;
    for (key, value) in row.config {
        match key.split_once('.') {
            Some((p, leaf)) => {
                if parent != Some(p) {
                    lines.push(format!("{p}:"));
                    parent = Some(p);
                }
                lines.push(format!("  {leaf}: {value}"));
            }
            None => {
                lines.push(format!("{key}: {value}"));
                parent = None;
            }
        }
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

/// Check the version and pick the backend (knob `backend`, default `pytorch`).
pub fn backend(combo: &Combo, version: &str) -> Result<Backend, TranslateError> {
    check_supported(ENGINE, version, SUPPORTED)?;
    match combo.knob("backend").unwrap_or("pytorch") {
        "pytorch" => Ok(Backend::PyTorch),
        "tensorrt" if TENSORRT_BACKEND.contains(version) => Ok(Backend::TensorRt),
        "tensorrt" => Err(refuse(
            version,
            "knob backend",
            "tensorrt",
            &format!(
                "the TensorRT engine backend and trtllm-build exist only in {TENSORRT_BACKEND} (removed on main in mid-2026; PyTorch is the sole backend)"
            ),
        )),
        other => Err(refuse(
            version,
            "knob backend",
            other,
            "accepted: pytorch, tensorrt",
        )),
    }
}

/// Every dimension's value, refusing the ones neither backend knows and `matmul_path`.
fn common_checks(combo: &Combo, version: &str, backend: Backend) -> Result<(), TranslateError> {
    let mm = combo.dim("matmul_path");
    if mm != UNSET {
        return Err(refuse(
            version,
            "matmul_path",
            mm,
            "TensorRT-LLM has no dense-GEMM selector (accepted: unset)",
        ));
    }
    for dim in combo.dims.keys() {
        if !matches!(
            dim.as_str(),
            "attention_backend"
                | "kv_layout"
                | "matmul_path"
                | "activation_dtype"
                | "fusion_strategy"
                | "cuda_graph"
                | "kv_cache_dtype"
        ) && combo.dim(dim) != UNSET
        {
            return Err(refuse_value(
                version,
                backend,
                dim,
                combo.dim(dim),
                &["unset"],
            ));
        }
    }
    for knob in combo.knobs.keys() {
        if knob != "backend" {
            return Err(refuse(version, "knob", knob, "accepted knobs: backend"));
        }
    }
    Ok(())
}

/// The LLM API options (`--extra_llm_api_options`) YAML for `combo` at `version`, for either
/// backend (see the module docs for every key).
pub fn llm_api_options(combo: &Combo, version: &str) -> Result<String, TranslateError> {
    let backend = backend(combo, version)?;
    common_checks(combo, version, backend)?;
    let mut y: Vec<String> = vec![format!(
        "# l1: trtllm-serve --backend {} LLM API options ({})",
        backend.flag(),
        combo.canonical()
    )];
    let dims: &[&str] = match backend {
        Backend::PyTorch => &[
            "attention_backend",
            "activation_dtype",
            "kv_layout",
            "kv_cache_dtype",
            "fusion_strategy",
            "cuda_graph",
        ],
        Backend::TensorRt => {
            // Attention, dtypes and fusion are build flags; only their validity is checked here.
            build_flags(combo, version)?;
            &["kv_layout", "cuda_graph"]
        }
    };
    let table = match backend {
        Backend::PyTorch => &PYTORCH,
        Backend::TensorRt => &TENSORRT_RUNTIME,
    };
    for dim in dims {
        if let Some(item) = spell(table, backend, combo, dim, version)?.and_then(yaml_item) {
            y.push(item);
        }
    }
    y.push("return_perf_metrics: true".into());
    Ok(y.join("\n") + "\n")
}

/// The `trtllm-build` flags for `combo` (without `--checkpoint_dir`, `--output_dir` and
/// `--max_seq_len`); an error for the PyTorch backend, which builds nothing.
pub fn build_flags(combo: &Combo, version: &str) -> Result<Vec<String>, TranslateError> {
    let backend = backend(combo, version)?;
    if backend != Backend::TensorRt {
        return Err(TranslateError::NoBuild {
            engine: ENGINE.into(),
            version: version.into(),
        });
    }
    common_checks(combo, version, backend)?;
    let mut f: Vec<String> = Vec::new();
    for dim in [
        "activation_dtype",
        "attention_backend",
        "kv_layout",
        "fusion_strategy",
        "kv_cache_dtype",
    ] {
        if (dim, combo.dim(dim)) == ("kv_layout", "chunked")
            && combo.dim("attention_backend") == "paged_attention"
        {
            // The two spellings conflict: chunked context needs `--context_fmha enable`.
            return Err(refuse(
                version,
                "kv_layout",
                "chunked",
                "chunked context needs paged context FMHA, which needs --context_fmha enable (attention_backend paged_attention disables it)",
            ));
        }
        if let Some(row) = spell(&TENSORRT_BUILD, backend, combo, dim, version)? {
            f.extend(row.flags.iter().map(|s| (*s).to_string()));
        }
    }
    Ok(f)
}

/// The model directory name under `<engines>/models` for `model`: the HF directory
/// (`<model>-hf`, or the ModelOpt FP8 checkpoint `<model>-fp8-hf`) for the PyTorch backend, the
/// TensorRT-LLM checkpoint (`<model>-trtllm-ckpt[-fp16|-bf16|-fp8][-kvfp8]`) for the TensorRT one.
pub fn model_dir_name(combo: &Combo, version: &str, model: &str) -> Result<String, TranslateError> {
    let fp8 = combo.dim("activation_dtype") == "fp8_e4m3";
    Ok(match backend(combo, version)? {
        Backend::PyTorch if fp8 => format!("{model}-fp8-hf"),
        Backend::PyTorch => format!("{model}-hf"),
        Backend::TensorRt => {
            let mut name = format!("{model}-trtllm-ckpt");
            match combo.dim("activation_dtype") {
                "fp16" => name.push_str("-fp16"),
                "bf16" => name.push_str("-bf16"),
                "fp8_e4m3" => name.push_str("-fp8"),
                _ => {}
            }
            if combo.dim("kv_cache_dtype") == "fp8_e4m3" {
                name.push_str("-kvfp8");
            }
            name
        }
    })
}

/// FNV-1a, for engine cache names.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The built engine's directory name: the checkpoint and a hash of the version, build flags and
/// `max_seq_len`, so a combo's engine is built once and reused.
pub fn engine_dir_name(
    checkpoint: &str,
    version: &str,
    flags: &[String],
    max_seq_len: u32,
) -> String {
    let key = format!("{version}|{checkpoint}|{}|{max_seq_len}", flags.join(" "));
    format!("{checkpoint}-{:012x}", fnv(&key) & 0xffff_ffff_ffff)
}

/// The `trtllm-build` command for `combo`, or `None` for the PyTorch backend (which loads HF
/// checkpoints directly). `program` is `trtllm-build` (installed beside `trtllm-serve`).
pub fn build_command(
    program: PathBuf,
    combo: &Combo,
    version: &str,
    checkpoint: &Path,
    output_dir: &Path,
    max_seq_len: u32,
) -> Result<Option<LaunchCommand>, TranslateError> {
    if backend(combo, version)? == Backend::PyTorch {
        return Ok(None);
    }
    let mut args: Vec<String> = vec![
        "--checkpoint_dir".into(),
        checkpoint.display().to_string(),
        "--output_dir".into(),
        output_dir.display().to_string(),
        "--max_seq_len".into(),
        max_seq_len.to_string(),
    ];
    args.extend(build_flags(combo, version)?);
    Ok(Some(LaunchCommand {
        program,
        args,
        ..LaunchCommand::default()
    }))
}

/// Quote for `/bin/sh`.
fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The build-then-serve script of a TensorRT-backend launch: build `build` into `engine_dir`
/// unless it holds an engine (`config.json`), in a temporary directory renamed at the end, then
/// run `serve`. The shell stays the process-group leader (no `exec`), so the orphan sweep, which
/// matches a group by its leader's command line, still recognises the launch.
pub fn launch_script(build: &LaunchCommand, engine_dir: &Path, serve: &LaunchCommand) -> String {
    let line = |c: &LaunchCommand, out: Option<&str>| {
        let mut parts = vec![sh_quote(&c.program.display().to_string())];
        let mut args = c.args.iter();
        while let Some(a) = args.next() {
            parts.push(sh_quote(a));
            if a == "--output_dir"
                && let (Some(_), Some(o)) = (args.next(), out)
            {
                parts.push(o.to_string());
            }
        }
        parts.join(" ")
    };
    let engine = sh_quote(&engine_dir.display().to_string());
    format!(
        "#!/bin/sh\n# l1: build the TensorRT engine once, then serve it.\nset -e\nengine={engine}\nif [ ! -f \"$engine/config.json\" ]; then\n  mkdir -p \"$(dirname \"$engine\")\"\n  rm -rf \"$engine.partial.$$\"\n  {}\n  mv -T \"$engine.partial.$$\" \"$engine\" 2>/dev/null || rm -rf \"$engine.partial.$$\"\nfi\n{}\n",
        line(build, Some("\"$engine.partial.$$\"")),
        line(serve, None)
    )
}

/// `--max_seq_len`: longest prompt + longest answer + 16, rounded up to 32, at most the model's
/// context.
fn max_seq_len(target: &LaunchTarget<'_>) -> u32 {
    let w = target.workload;
    let need = (w.input_tokens.max() + w.output_tokens.max() + 16).div_ceil(32) * 32;
    need.min(target.model.max_context.max(32))
}

/// The TensorRT-LLM server engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct TrtLlm;

impl ServerEngine for TrtLlm {
    fn supported_versions(&self) -> &'static [crate::version::VersionRange] {
        SUPPORTED
    }

    fn name(&self) -> &'static str {
        ENGINE
    }

    fn program(&self, engines_dir: &Path) -> Result<PathBuf, crate::error::EngineError> {
        crate::install::find_engine_binary(engines_dir, PROGRAM).ok_or_else(|| {
            format!(
                "TensorRT-LLM is not installed: no `{PROGRAM}` in {} or on PATH (install tensorrt-llm from NVIDIA's index on a GPU host)",
                engines_dir.join("bin").display()
            )
        })
        .map_err(crate::error::EngineError::Program)
    }

    fn detect_version(&self, program: &Path) -> Result<String, crate::error::EngineError> {
        // `trtllm-serve --version` is not documented; the package's own version is reliable.
        let python = program.with_file_name("python3");
        let python = if python.is_file() {
            python
        } else {
            PathBuf::from("python3")
        };
        let out = std::process::Command::new(&python)
            .args(["-c", "import importlib.metadata as m; print('tensorrt_llm version:', m.version('tensorrt-llm'))"])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| {
                crate::error::EngineError::Version(format!("failed to run {}: {e}", python.display()))
            })?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.split_once("tensorrt_llm version:"))
            .and_then(|(_, v)| v.split_whitespace().next().map(str::to_string))
            .ok_or_else(|| {
                format!(
                    "no tensorrt-llm package beside {}: {}",
                    program.display(),
                    l1_loadgen::protocol::clip(&String::from_utf8_lossy(&out.stderr))
                )
            })
            .map_err(crate::error::EngineError::Version)
    }

    fn translate(
        &self,
        target: &LaunchTarget<'_>,
        program: PathBuf,
        port: u16,
    ) -> Result<ServerRecipe, TranslateError> {
        let combo = target.combo;
        let version = target.version;
        let yaml = llm_api_options(combo, version)?;
        let backend = backend(combo, version)?;
        let models = target.engines_dir.join("models");
        let model = models.join(model_dir_name(combo, version, target.model_name)?);
        if !model.exists() {
            return Err(TranslateError::Target(format!(
                "engine `{ENGINE}`: model `{}` has no {} at {} (the {} backend needs it)",
                target.model_name,
                if backend == Backend::PyTorch {
                    "checkpoint"
                } else {
                    "TensorRT-LLM checkpoint"
                },
                model.display(),
                backend.flag()
            )));
        }
        let seq = max_seq_len(target);
        let mut env = std::collections::BTreeMap::new();
        env.insert("HF_HUB_OFFLINE".to_string(), "1".to_string());
        if let Some(dev) = &target.cuda_visible_devices {
            env.insert("CUDA_VISIBLE_DEVICES".to_string(), dev.clone());
        }
        let mut files = std::collections::BTreeMap::new();
        files.insert(OPTIONS_FILE.to_string(), yaml);
        let tail = |served: &str| -> Vec<String> {
            let mut a = vec![served.to_string()];
            a.extend(
                [
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--backend",
                    backend.flag(),
                    "--max_seq_len",
                    &seq.to_string(),
                    "--extra_llm_api_options",
                    OPTIONS_FILE,
                ]
                .map(str::to_string),
            );
            a
        };
        let (command, served, startup) = match backend {
            Backend::PyTorch => {
                let served = model.display().to_string();
                let cmd = LaunchCommand {
                    program,
                    args: tail(&served),
                    env,
                    files,
                    stop_grace: Some(Duration::from_secs(15)),
                };
                (cmd, served, Duration::from_secs(600))
            }
            Backend::TensorRt => {
                let ckpt = model.file_name().map(|n| n.to_string_lossy().into_owned());
                let ckpt = ckpt.unwrap_or_default();
                let flags = build_flags(combo, version)?;
                let engine = target
                    .engines_dir
                    .join("trtllm-engines")
                    .join(Version::parse(version).map_or(version.to_string(), |v| v.to_string()))
                    .join(engine_dir_name(&ckpt, version, &flags, seq));
                let tokenizer = target.model_file("hf")?;
                let build = build_command(
                    program.with_file_name("trtllm-build"),
                    combo,
                    version,
                    &model,
                    &engine,
                    seq,
                )?
                .ok_or_else(|| {
                    TranslateError::Target("the tensorrt backend builds an engine".into())
                })?;
                let served = engine.display().to_string();
                let mut args = tail(&served);
                args.extend(["--tokenizer".into(), tokenizer.display().to_string()]);
                let serve = LaunchCommand {
                    program,
                    args,
                    ..LaunchCommand::default()
                };
                files.insert(LAUNCH_SCRIPT.into(), launch_script(&build, &engine, &serve));
                let cmd = LaunchCommand {
                    program: PathBuf::from("/bin/sh"),
                    args: vec![LAUNCH_SCRIPT.into()],
                    env,
                    files,
                    stop_grace: Some(Duration::from_secs(15)),
                };
                (cmd, served, Duration::from_secs(2400))
            }
        };
        Ok(ServerRecipe {
            command,
            port,
            api: HttpApi::OpenAiCompletions,
            served_model: served,
            ready_path: "/health".into(),
            metrics: Some(("/prometheus/metrics".into(), "trtllm_")),
            tokenize: None,
            ignore_eos: true,
            probe: crate::probe::ProbeApi::OpenAi { token_ids: false },
            startup_timeout: startup,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::combo;

    /// The catalog's `trtllm` defaults.
    fn defaults() -> Vec<(&'static str, &'static str)> {
        vec![
            ("attention_backend", "paged_attention"),
            ("kv_layout", "paged"),
            ("matmul_path", "unset"),
            ("activation_dtype", "bf16"),
            ("fusion_strategy", "conservative"),
            ("cuda_graph", "per-shape"),
            ("kv_cache_dtype", "auto"),
        ]
    }

    fn with(dim: &str, value: &str, knobs: &[(&str, &str)]) -> Combo {
        let mut dims = defaults();
        for d in &mut dims {
            if d.0 == dim {
                d.1 = value;
            }
        }
        combo(&dims, knobs)
    }

    /// The YAML without its comment header.
    fn body(yaml: &str) -> String {
        yaml.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn defaults_become_this_llm_api_yaml_at_every_version() {
        for v in ["1.0", "1.0.0rc3", "1.2.1", "1.3", "1.4", "1.4.0rc2"] {
            let y = llm_api_options(&combo(&defaults(), &[]), v).unwrap();
            assert!(y.starts_with("# l1: trtllm-serve --backend pytorch"), "{y}");
            assert_eq!(
                body(&y),
                "attn_backend: TRTLLM\ndtype: bfloat16\nenable_chunked_prefill: false\n\
                 kv_cache_config:\n  dtype: auto\ntorch_compile_config: null\n\
                 cuda_graph_config:\n  enable_padding: false\nreturn_perf_metrics: true",
                "{v}"
            );
        }
        // unset dimensions write nothing (TRT-LLM's own defaults)
        let y = llm_api_options(&Combo::default(), "1.4").unwrap();
        assert_eq!(body(&y), "return_perf_metrics: true");
    }

    #[test]
    fn every_value_maps_on_the_pytorch_backend() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "attention_backend",
                "paged_attention",
                "attn_backend: TRTLLM",
            ),
            (
                "attention_backend",
                "flash_attn_v2",
                "attn_backend: FLASHINFER",
            ),
            ("attention_backend", "native", "attn_backend: VANILLA"),
            ("kv_layout", "paged", "enable_chunked_prefill: false"),
            ("kv_layout", "chunked", "enable_chunked_prefill: true"),
            ("activation_dtype", "fp16", "dtype: float16"),
            ("activation_dtype", "bf16", "dtype: bfloat16"),
            ("kv_cache_dtype", "auto", "kv_cache_config:\n  dtype: auto"),
            (
                "kv_cache_dtype",
                "fp8_e4m3",
                "kv_cache_config:\n  dtype: fp8",
            ),
            (
                "fusion_strategy",
                "conservative",
                "torch_compile_config: null",
            ),
            (
                "fusion_strategy",
                "aggressive",
                "torch_compile_config:\n  enable_fullgraph: true\n  enable_inductor: true",
            ),
            ("cuda_graph", "off", "cuda_graph_config: null"),
            (
                "cuda_graph",
                "per-shape",
                "cuda_graph_config:\n  enable_padding: false",
            ),
        ];
        for v in ["1.0", "1.3", "1.4"] {
            for (dim, value, want) in cases {
                let y = llm_api_options(&combo(&[(dim, value)], &[]), v).unwrap();
                assert_eq!(
                    body(&y),
                    format!("{want}\nreturn_perf_metrics: true"),
                    "{v} {dim}={value}"
                );
            }
            // fp8 activations: no key, the ModelOpt checkpoint directory instead
            let c = combo(&[("activation_dtype", "fp8_e4m3")], &[]);
            assert_eq!(
                body(&llm_api_options(&c, v).unwrap()),
                "return_perf_metrics: true"
            );
            assert_eq!(model_dir_name(&c, v, "m").unwrap(), "m-fp8-hf");
            assert_eq!(model_dir_name(&Combo::default(), v, "m").unwrap(), "m-hf");
            assert!(
                build_command("b".into(), &c, v, Path::new("c"), Path::new("o"), 64)
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[test]
    fn every_value_maps_on_the_tensorrt_backend_up_to_1_3() {
        let trt = [("backend", "tensorrt")];
        for v in ["1.0", "1.2.1", "1.3", "1.3.0rc27"] {
            let c = combo(&defaults(), &trt);
            assert_eq!(
                build_flags(&c, v).unwrap().join(" "),
                "--gpt_attention_plugin bfloat16 --gemm_plugin bfloat16 --context_fmha disable \
                 --use_paged_context_fmha disable --kv_cache_type paged --use_fused_mlp enable",
                "{v}"
            );
            let y = llm_api_options(&c, v).unwrap();
            assert!(
                y.starts_with("# l1: trtllm-serve --backend tensorrt"),
                "{y}"
            );
            assert_eq!(
                body(&y),
                "enable_chunked_prefill: false\nextended_runtime_perf_knob_config:\n  \
                 cuda_graph_mode: true\nreturn_perf_metrics: true"
            );
            let flags =
                |dim: &str, value: &str| build_flags(&with(dim, value, &trt), v).unwrap().join(" ");
            assert!(
                flags("attention_backend", "flash_attn_v2")
                    .contains("--context_fmha enable --kv_cache_type")
            );
            assert!(
                flags("activation_dtype", "fp16")
                    .starts_with("--gpt_attention_plugin float16 --gemm_plugin float16 ")
            );
            assert!(
                flags("activation_dtype", "fp8_e4m3")
                    .starts_with("--gpt_attention_plugin auto --gemm_plugin fp8 ")
            );
            assert!(flags("fusion_strategy", "none").ends_with("--use_fused_mlp disable"));
            let chunked = combo(
                &[
                    ("attention_backend", "flash_attn_v2"),
                    ("kv_layout", "chunked"),
                ],
                &trt,
            );
            assert_eq!(
                build_flags(&chunked, v).unwrap().join(" "),
                "--gpt_attention_plugin auto --gemm_plugin auto --context_fmha enable \
                 --kv_cache_type paged --use_paged_context_fmha enable"
            );
            assert!(
                llm_api_options(&chunked, v)
                    .unwrap()
                    .contains("enable_chunked_prefill: true")
            );
            let off = with("cuda_graph", "off", &trt);
            assert!(
                llm_api_options(&off, v)
                    .unwrap()
                    .contains("  cuda_graph_mode: false")
            );
            // the KV dtype is the checkpoint's (the TensorRT backend asserts dtype == auto)
            let kv = with("kv_cache_dtype", "fp8_e4m3", &trt);
            assert!(!llm_api_options(&kv, v).unwrap().contains("kv_cache_config"));
            assert_eq!(
                model_dir_name(&kv, v, "m").unwrap(),
                "m-trtllm-ckpt-bf16-kvfp8"
            );
            assert_eq!(
                model_dir_name(&with("activation_dtype", "fp8_e4m3", &trt), v, "m").unwrap(),
                "m-trtllm-ckpt-fp8"
            );
            let b = build_command(
                "/x/trtllm-build".into(),
                &c,
                v,
                Path::new("/m/ck"),
                Path::new("/e/o"),
                96,
            )
            .unwrap()
            .unwrap();
            assert!(
                b.display().starts_with(
                    "/x/trtllm-build --checkpoint_dir /m/ck --output_dir /e/o --max_seq_len 96 --gpt_attention_plugin"
                ),
                "{}",
                b.display()
            );
        }
    }

    #[test]
    fn refusals_name_engine_version_and_reason() {
        let trt = [("backend", "tensorrt")];
        let cases: Vec<(Combo, &str, &[&str])> = vec![
            (
                with("fusion_strategy", "none", &[]),
                "1.4",
                &["fusion_strategy = `none`", "fused custom ops"],
            ),
            (
                with("fusion_strategy", "none", &[]),
                "1.0",
                &["fusion_strategy = `none`", "backend: tensorrt"],
            ),
            (
                with("fusion_strategy", "aggressive", &trt),
                "1.3",
                &["aggressive", "all-reduces"],
            ),
            (
                with("attention_backend", "native", &trt),
                "1.0",
                &["native", "attention plugin"],
            ),
            (
                combo(
                    &[
                        ("attention_backend", "paged_attention"),
                        ("kv_layout", "chunked"),
                    ],
                    &trt,
                ),
                "1.2",
                &["chunked", "context_fmha"],
            ),
            (
                combo(&[], &trt),
                "1.4",
                &["knob backend = `tensorrt`", "1.0..=1.3", "removed"],
            ),
            (
                combo(&[], &[("backend", "onnx")]),
                "1.0",
                &["accepted: pytorch, tensorrt"],
            ),
            (
                combo(&[], &[("block_size", "16")]),
                "1.0",
                &["accepted knobs: backend"],
            ),
            (
                with("attention_backend", "flash_attn_v3", &[]),
                "1.4",
                &["flash_attn_v3", "paged_attention, flash_attn_v2, native"],
            ),
            (
                with("attention_backend", "xformers", &trt),
                "1.0",
                &["xformers"],
            ),
            (
                with("kv_layout", "contiguous", &[]),
                "1.0",
                &["contiguous", "paged, chunked"],
            ),
            (
                with("kv_layout", "contiguous", &trt),
                "1.3",
                &["contiguous"],
            ),
            (
                with("activation_dtype", "fp8_e5m2", &[]),
                "1.0",
                &["fp8_e5m2"],
            ),
            (
                with("activation_dtype", "fp8_e5m2", &trt),
                "1.0",
                &["fp8_e5m2"],
            ),
            (
                with("kv_cache_dtype", "fp8_e5m2", &[]),
                "1.4",
                &["fp8_e5m2", "auto, fp8_e4m3"],
            ),
            (with("kv_cache_dtype", "q8_0", &trt), "1.3", &["q8_0"]),
            (
                with("cuda_graph", "dynamic", &[]),
                "1.0",
                &["dynamic", "off, per-shape"],
            ),
            (with("cuda_graph", "dynamic", &trt), "1.0", &["dynamic"]),
            (
                with("matmul_path", "cublas", &[]),
                "1.0",
                &["matmul_path", "dense-GEMM"],
            ),
        ];
        for (c, v, wants) in cases {
            let e = llm_api_options(&c, v).unwrap_err().to_string();
            assert!(e.contains("engine `trtllm`") && e.contains(v), "{e}");
            for w in wants {
                assert!(e.contains(w), "{w}: {e}");
            }
        }
        for v in ["0.21", "0.20.0", "1.5", "2.0"] {
            let e = llm_api_options(&Combo::default(), v)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("trtllm") && e.contains(v) && e.contains("1.0..=1.4"),
                "{e}"
            );
        }
        let e = build_flags(&Combo::default(), "1.0")
            .unwrap_err()
            .to_string();
        assert!(e.contains("PyTorch backend builds no engine"), "{e}");
    }

    fn target_recipe(c: &Combo, version: &str, dirs: &[&str]) -> Result<ServerRecipe, String> {
        let mut s = crate::testing::Scratch::gpu(&format!("trtllm-{}", dirs.join("+")), version);
        for d in dirs {
            std::fs::create_dir_all(s.dir.join("models").join(d)).unwrap();
        }
        s.workload.input_tokens = crate::Dist::Fixed(100);
        s.workload.output_tokens = crate::Dist::Fixed(20);
        s.cuda_visible_devices = Some("3".into());
        TrtLlm
            .translate(&s.target(c), "/opt/bin/trtllm-serve".into(), 4242)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn pytorch_launch_recipe() {
        let r = target_recipe(&combo(&defaults(), &[]), "1.4", &["tiny-hf"]).unwrap();
        let line = r.command.display();
        assert!(
            line.starts_with("CUDA_VISIBLE_DEVICES=3 HF_HUB_OFFLINE=1 /opt/bin/trtllm-serve /"),
            "{line}"
        );
        assert!(
            line.ends_with(
                "/models/tiny-hf --host 127.0.0.1 --port 4242 --backend pytorch --max_seq_len 160 \
                 --extra_llm_api_options l1-llm-api-options.yaml"
            ),
            "{line}"
        );
        assert!(r.command.files[OPTIONS_FILE].contains("attn_backend: TRTLLM"));
        assert_eq!(r.ready_path, "/health");
        assert_eq!(r.metrics, Some(("/prometheus/metrics".into(), "trtllm_")));
        assert!(r.tokenize.is_none() && r.ignore_eos);
        assert_eq!(r.startup_timeout, Duration::from_secs(600));
        assert!(r.served_model.ends_with("/models/tiny-hf"));
        // fp8 activations need the ModelOpt checkpoint
        let e = target_recipe(
            &with("activation_dtype", "fp8_e4m3", &[]),
            "1.4",
            &["tiny-hf"],
        )
        .unwrap_err();
        assert!(e.contains("tiny-fp8-hf"), "{e}");
    }

    #[test]
    fn tensorrt_launch_builds_then_serves() {
        let c = combo(&defaults(), &[("backend", "tensorrt")]);
        let r = target_recipe(&c, "1.2", &["tiny-hf", "tiny-trtllm-ckpt-bf16"]).unwrap();
        assert_eq!(r.command.program, PathBuf::from("/bin/sh"));
        assert_eq!(r.command.args, [LAUNCH_SCRIPT]);
        assert_eq!(r.command.env["CUDA_VISIBLE_DEVICES"], "3");
        let s = &r.command.files[LAUNCH_SCRIPT];
        assert!(
            s.contains("/trtllm-engines/1.2/tiny-trtllm-ckpt-bf16-"),
            "{s}"
        );
        assert!(
            s.contains("/opt/bin/trtllm-build --checkpoint_dir ") && s.contains("--output_dir \"$engine.partial.$$\" --max_seq_len 160 --gpt_attention_plugin bfloat16"),
            "{s}"
        );
        assert!(s.contains("\nfi\n/opt/bin/trtllm-serve "), "{s}");
        assert!(s.contains("--backend tensorrt --max_seq_len 160 --extra_llm_api_options l1-llm-api-options.yaml --tokenizer "), "{s}");
        assert!(r.command.files[OPTIONS_FILE].contains("cuda_graph_mode: true"));
        let check = std::process::Command::new("/bin/sh")
            .args(["-n", "-c", s])
            .status()
            .unwrap();
        assert!(check.success(), "the launch script is not valid sh: {s}");
        assert_eq!(r.startup_timeout, Duration::from_secs(2400));
        let e = target_recipe(&c, "1.2", &["tiny-hf"]).unwrap_err();
        assert!(e.contains("tiny-trtllm-ckpt-bf16"), "{e}");
    }

    #[test]
    fn engine_names_follow_the_build() {
        let f = vec!["--a".to_string()];
        let a = engine_dir_name("ck", "1.2", &f, 64);
        assert_eq!(a, engine_dir_name("ck", "1.2", &f, 64));
        assert_ne!(a, engine_dir_name("ck", "1.3", &f, 64));
        assert_ne!(a, engine_dir_name("ck", "1.2", &f, 96));
        assert_eq!(sh_quote("a b'c"), "'a b'\\''c'");
        assert_eq!(sh_quote("/x/y-1.2"), "/x/y-1.2");
    }
}
