//! SGLang's server: `python -m sglang.launch_server` (every version; the `sglang` console script,
//! `sglang serve`, exists from 0.5.5 on). The interpreter is the one the installed `sglang`
//! console script runs (its `#!` line), so a virtual environment works without activation; the
//! server itself is started as a module because `launch_server` takes the same flags at every
//! version. GPU only: nothing here runs on the CPU host.
//!
//! Supported: [`SUPPORTED`] (0.5.5 ..= 0.5.23, the versions whose `server_args.py` was read; see
//! `engines-reference.md` §6 and `scripts/check-engine-flags.py sglang`, which checks every flag
//! below against each boundary version's own argument definitions).
//!
//! Mapping of catalog dimensions:
//! - `attention_backend` → `--attention-backend`: `flash_attn_v3` → `fa3` (SM 8.0–9.0; rule
//!   `sglang-fa3-requires-sm80`), `paged_attention` → `triton` (SGLang's Triton paged-attention
//!   kernels, like vLLM's `TRITON_ATTN`), `native` → `torch_native` (PyTorch SDPA); `unset` → no
//!   flag (SGLang's own choice: `fa3` on Hopper, `flashinfer` elsewhere). FlashInfer and
//!   FlashAttention-2 have no catalog value for SGLang (it has no FA2 backend).
//!   `torch_native` switches CUDA graphs off ("Cuda graph is disabled because of using torch
//!   native attention backend"), so `native` with graphs is refused (rule
//!   `sglang-native-attention-disables-graphs`); `fa3` with an `fp8_e5m2` KV cache silently
//!   becomes `triton`, so that pair is refused (rule `sglang-fa3-kv-no-e5m2`).
//! - `kv_layout`: SGLang's KV cache is always paged (token pool, `--page-size`); `paged` →
//!   `--chunked-prefill-size -1` (chunked prefill off), `chunked` → no flag (chunked prefill on,
//!   chunk size chosen by SGLang from GPU memory); `contiguous` is refused.
//! - `activation_dtype` → `--dtype`: `fp16` → `float16`, `bf16` → `bfloat16`, `fp8_e4m3` →
//!   `--dtype bfloat16 --quantization fp8` (online W8A8; e4m3 only, so `fp8_e5m2` is refused).
//! - `kv_cache_dtype` → `--kv-cache-dtype`: `auto` → no flag, `bf16` → `bf16`, `fp8_e4m3`,
//!   `fp8_e5m2`; `fp16` (no such choice; `auto` with an fp16 model) and `q8_0`/`q4_0` are refused.
//! - `cuda_graph` (SGLang rewrote its CUDA-graph flags in 0.5.14: per-phase backends; piecewise
//!   prefill graphs were opt-in from 0.5.5 and on by default from 0.5.10):
//!   - `off` → no graphs: `--disable-cuda-graph` (< 0.5.10), `--disable-cuda-graph
//!     --disable-piecewise-cuda-graph` (0.5.10–0.5.13), `--cuda-graph-backend-decode disabled
//!     --cuda-graph-backend-prefill disabled` (≥ 0.5.14).
//!   - `per-shape` → one decode graph per captured batch size (SGLang's default size list up to
//!     its `cuda-graph-max-bs`, chosen from GPU memory), prefill eager: no flag (< 0.5.10),
//!     `--disable-piecewise-cuda-graph` (0.5.10–0.5.13), `--cuda-graph-backend-decode full
//!     --cuda-graph-backend-prefill disabled` (≥ 0.5.14).
//!   - `dynamic` → decode graphs plus prefill graphs over token counts (piecewise graphs around
//!     the compiled pieces, breakable graphs from 0.5.14): `--enable-piecewise-cuda-graph`
//!     (< 0.5.10), no flag (0.5.10–0.5.13, SGLang's default), `--cuda-graph-backend-decode full
//!     --cuda-graph-backend-prefill breakable` (≥ 0.5.14, SGLang's default on CUDA).
//! - Not exposed (the catalog does not list them for SGLang, so they take only `unset`):
//!   `matmul_path` (`--fp8-gemm-backend` picks kernels for fp8 layers only, `--bf16-gemm-backend`
//!   (0.5.15+) offers cuBLAS (`torch`), which is already the automatic choice off SM10x, and
//!   SM10x-only kernels), `fusion_strategy` (`--enable-torch-compile` compiles only the decode
//!   batches captured as CUDA graphs and switches piecewise graphs off from 0.5.10, so it is not
//!   an independent fusion setting). No knobs.
//! - Always: `--model-path <models>/<model>-hf --served-model-name <model> --host 127.0.0.1
//!   --port P --enable-metrics` (Prometheus `sglang:*` on `/metrics` needs it), env
//!   `HF_HUB_OFFLINE=1` and `CUDA_VISIBLE_DEVICES` from the device slot. Ready: `GET /health`;
//!   `/tokenize` takes `prompt` and answers `count`; OpenAI completions honour `ignore_eos`.
//!   Startup on a GPU is unconfirmed (reference §9); model load plus graph capture, 600 s allowed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::combo::UNSET;
use crate::launch::RealTarget;
use crate::server::{ServerEngine, ServerRecipe, unsupported};
use crate::version::{Version, VersionRange, check_supported};
use crate::{Combo, DeviceKind};

/// The SGLang server engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sglang;

/// Versions this translator supports.
pub const SUPPORTED: &[VersionRange] = &[VersionRange::new("0.5.5", "0.5.23")];

/// What a launch needs besides the combo.
#[derive(Clone, Debug)]
pub struct Ctx<'a> {
    /// The model directory (`<engines>/models/<model>-hf`).
    pub model_path: &'a str,
    pub served_model: &'a str,
    pub port: u16,
    pub cuda_visible_devices: Option<&'a str>,
}

/// The arguments after `python`, and the environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
}

fn push(argv: &mut Vec<String>, items: &[&str]) {
    argv.extend(items.iter().map(|s| (*s).to_string()));
}

/// The command line for `combo` at `version` (see the module docs for the mapping).
pub fn args(combo: &Combo, version: &Version, ctx: &Ctx<'_>) -> Result<Args, String> {
    let name = "sglang";
    let at = |v: &str| version.at_least(v);
    let mut argv: Vec<String> = Vec::new();
    push(
        &mut argv,
        &[
            "-m",
            "sglang.launch_server",
            "--model-path",
            ctx.model_path,
            "--served-model-name",
            ctx.served_model,
            "--host",
            "127.0.0.1",
        ],
    );
    argv.extend(["--port".into(), ctx.port.to_string()]);
    argv.push("--enable-metrics".into());
    let mut env = BTreeMap::new();
    env.insert("HF_HUB_OFFLINE".to_string(), "1".to_string());
    if let Some(d) = ctx.cuda_visible_devices {
        env.insert("CUDA_VISIBLE_DEVICES".into(), d.to_string());
    }

    let attn = combo.dim("attention_backend");
    let graph = combo.dim("cuda_graph");
    let kvdt = combo.dim("kv_cache_dtype");

    // attention_backend
    let backend = match attn {
        "flash_attn_v3" => Some("fa3"),
        "paged_attention" => Some("triton"),
        "native" => Some("torch_native"),
        UNSET => None,
        other => {
            return Err(unsupported(
                name,
                "attention_backend",
                other,
                &["flash_attn_v3", "paged_attention", "native", "unset"],
            ));
        }
    };
    if attn == "native" && matches!(graph, "per-shape" | "dynamic") {
        return Err(format!(
            "{} (SGLang {version} switches CUDA graphs off with torch_native attention)",
            unsupported(name, "cuda_graph", graph, &["off", "unset"])
        ));
    }
    if attn == "flash_attn_v3" && kvdt == "fp8_e5m2" {
        return Err(format!(
            "{} (SGLang {version} silently replaces fa3 by triton with an fp8_e5m2 KV cache)",
            unsupported(
                name,
                "kv_cache_dtype",
                kvdt,
                &["auto", "bf16", "fp8_e4m3", "unset"]
            )
        ));
    }
    if let Some(b) = backend {
        push(&mut argv, &["--attention-backend", b]);
    }

    // kv_layout
    match combo.dim("kv_layout") {
        "paged" => push(&mut argv, &["--chunked-prefill-size", "-1"]),
        "chunked" | UNSET => {}
        other => {
            return Err(unsupported(
                name,
                "kv_layout",
                other,
                &["paged", "chunked", "unset"],
            ));
        }
    }

    // activation_dtype
    match combo.dim("activation_dtype") {
        "fp16" => push(&mut argv, &["--dtype", "float16"]),
        "bf16" => push(&mut argv, &["--dtype", "bfloat16"]),
        "fp8_e4m3" => push(&mut argv, &["--dtype", "bfloat16", "--quantization", "fp8"]),
        UNSET => {}
        other => {
            return Err(unsupported(
                name,
                "activation_dtype",
                other,
                &["fp16", "bf16", "fp8_e4m3", "unset"],
            ));
        }
    }

    // kv_cache_dtype
    let kv = match kvdt {
        "auto" | UNSET => None,
        "bf16" => Some("bf16"),
        "fp8_e4m3" => Some("fp8_e4m3"),
        "fp8_e5m2" => Some("fp8_e5m2"),
        other => {
            return Err(unsupported(
                name,
                "kv_cache_dtype",
                other,
                &["auto", "bf16", "fp8_e4m3", "fp8_e5m2", "unset"],
            ));
        }
    };
    if let Some(kv) = kv {
        push(&mut argv, &["--kv-cache-dtype", kv]);
    }

    // cuda_graph: three flag generations (see the module docs).
    let flags: &[&str] = match graph {
        UNSET => &[],
        "off" if at("0.5.14") => &[
            "--cuda-graph-backend-decode",
            "disabled",
            "--cuda-graph-backend-prefill",
            "disabled",
        ],
        "off" if at("0.5.10") => &["--disable-cuda-graph", "--disable-piecewise-cuda-graph"],
        "off" => &["--disable-cuda-graph"],
        "per-shape" if at("0.5.14") => &[
            "--cuda-graph-backend-decode",
            "full",
            "--cuda-graph-backend-prefill",
            "disabled",
        ],
        "per-shape" if at("0.5.10") => &["--disable-piecewise-cuda-graph"],
        "per-shape" => &[],
        "dynamic" if at("0.5.14") => &[
            "--cuda-graph-backend-decode",
            "full",
            "--cuda-graph-backend-prefill",
            "breakable",
        ],
        "dynamic" if at("0.5.10") => &[],
        "dynamic" => &["--enable-piecewise-cuda-graph"],
        other => {
            return Err(unsupported(
                name,
                "cuda_graph",
                other,
                &["off", "per-shape", "dynamic", "unset"],
            ));
        }
    };
    push(&mut argv, flags);

    // Not exposed for SGLang (see the module docs).
    for dim in ["matmul_path", "fusion_strategy"] {
        let v = combo.dim(dim);
        if v != UNSET {
            return Err(unsupported(name, dim, v, &["unset"]));
        }
    }
    if let Some(knob) = combo.knobs.keys().next() {
        return Err(unsupported(name, "knob", knob, &[]));
    }
    Ok(Args { argv, env })
}

/// The interpreter a Python console script runs: its `#!` line (`#!/venv/bin/python3`), or the
/// `python3` beside it when the line is a shell trampoline.
pub fn script_interpreter(script: &Path) -> Option<PathBuf> {
    let text = std::fs::read(script).ok()?;
    let first = text.split(|&b| b == b'\n').next()?;
    let first = String::from_utf8_lossy(first);
    let line = first.strip_prefix("#!")?.trim();
    let prog = line.split_whitespace().next()?;
    if prog.contains("python") {
        return Some(PathBuf::from(prog));
    }
    let beside = script.parent()?.join("python3");
    beside.is_file().then_some(beside)
}

impl ServerEngine for Sglang {
    fn supported_versions(&self) -> &'static [crate::version::VersionRange] {
        SUPPORTED
    }

    fn name(&self) -> &'static str {
        "sglang"
    }

    fn program(&self, engines_dir: &Path) -> Result<PathBuf, String> {
        let script = crate::registry::require_engine_binary(
            engines_dir,
            "sglang",
            "SGLang",
            "pip install sglang on a GPU host",
        )?;
        script_interpreter(&script).ok_or_else(|| {
            format!(
                "`{}` is not a Python console script: cannot tell which interpreter runs sglang",
                script.display()
            )
        })
    }

    fn detect_version(&self, program: &Path) -> Result<String, String> {
        // Read the distribution's metadata instead of importing sglang (which imports torch).
        crate::server::version_from_command(
            program,
            &[
                "-c",
                "import importlib.metadata as m; print('sglang version:', m.version('sglang'))",
            ],
            "sglang version:",
        )
    }

    fn translate(
        &self,
        target: &RealTarget<'_>,
        program: PathBuf,
        port: u16,
    ) -> Result<ServerRecipe, String> {
        let version = check_supported(self.name(), target.version, SUPPORTED)?;
        if target.hardware.device != DeviceKind::Gpu {
            return Err("engine `sglang` runs on NVIDIA GPUs only".into());
        }
        let model = target.model_file("hf")?;
        let model = model.display().to_string();
        let ctx = Ctx {
            model_path: &model,
            served_model: target.model_name,
            port,
            cuda_visible_devices: target.cuda_visible_devices.as_deref(),
        };
        let a = args(target.combo, &version, &ctx)?;
        Ok(ServerRecipe::openai(
            program,
            a.argv,
            a.env,
            port,
            target.model_name,
            "sglang:",
            "prompt",
            Duration::from_secs(600),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::{assert_each_untranslated, assert_version_range};

    /// The boundary versions: piecewise graphs opt-in (0.5.5), on by default (0.5.10), the
    /// per-phase rewrite (0.5.14), the legacy flags' removal (0.5.20), the newest read (0.5.23).
    const BOUNDARIES: &[&str] = &[
        "0.5.5", "0.5.9", "0.5.10", "0.5.13", "0.5.14", "0.5.20", "0.5.23",
    ];

    fn combo(dims: &[(&str, &str)]) -> Combo {
        crate::testing::combo(dims, &[])
    }

    fn ctx() -> Ctx<'static> {
        Ctx {
            model_path: "/m/tiny-hf",
            served_model: "tiny",
            port: 4242,
            cuda_visible_devices: Some("1"),
        }
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    /// The flags after the fixed prefix, joined by spaces.
    fn tail(dims: &[(&str, &str)], version: &str) -> String {
        let a = args(&combo(dims), &v(version), &ctx()).unwrap();
        a.argv[11..].join(" ")
    }

    const PREFIX: &str = "-m sglang.launch_server --model-path /m/tiny-hf --served-model-name tiny --host 127.0.0.1 --port 4242 --enable-metrics";

    #[test]
    fn fixed_part_and_environment() {
        for ver in BOUNDARIES {
            let a = args(&Combo::default(), &v(ver), &ctx()).unwrap();
            assert_eq!(a.argv.join(" "), PREFIX, "{ver}");
            assert_eq!(
                a.env,
                BTreeMap::from([
                    ("CUDA_VISIBLE_DEVICES".to_string(), "1".to_string()),
                    ("HF_HUB_OFFLINE".to_string(), "1".to_string()),
                ])
            );
        }
        let no_gpu = Ctx {
            cuda_visible_devices: None,
            ..ctx()
        };
        let a = args(&Combo::default(), &v("0.5.23"), &no_gpu).unwrap();
        assert!(!a.env.contains_key("CUDA_VISIBLE_DEVICES"));
    }

    #[test]
    fn every_value_at_every_boundary() {
        // Dimensions whose flags do not change across the supported range.
        for ver in BOUNDARIES {
            for (dims, want) in [
                (
                    &[("attention_backend", "flash_attn_v3")][..],
                    "--attention-backend fa3",
                ),
                (
                    &[("attention_backend", "paged_attention")],
                    "--attention-backend triton",
                ),
                (
                    &[("attention_backend", "native")],
                    "--attention-backend torch_native",
                ),
                (&[("kv_layout", "paged")], "--chunked-prefill-size -1"),
                (&[("kv_layout", "chunked")], ""),
                (&[("activation_dtype", "fp16")], "--dtype float16"),
                (&[("activation_dtype", "bf16")], "--dtype bfloat16"),
                (
                    &[("activation_dtype", "fp8_e4m3")],
                    "--dtype bfloat16 --quantization fp8",
                ),
                (&[("kv_cache_dtype", "auto")], ""),
                (&[("kv_cache_dtype", "bf16")], "--kv-cache-dtype bf16"),
                (
                    &[("kv_cache_dtype", "fp8_e4m3")],
                    "--kv-cache-dtype fp8_e4m3",
                ),
                (
                    &[("kv_cache_dtype", "fp8_e5m2")],
                    "--kv-cache-dtype fp8_e5m2",
                ),
                (
                    &[("matmul_path", "unset"), ("fusion_strategy", "unset")],
                    "",
                ),
            ] {
                assert_eq!(tail(dims, ver), want, "{ver} {dims:?}");
            }
        }
        // cuda_graph: three generations of flags.
        let expect = |ver: &str| -> [(&str, &str); 3] {
            if v(ver).at_least("0.5.14") {
                [
                    (
                        "off",
                        "--cuda-graph-backend-decode disabled --cuda-graph-backend-prefill disabled",
                    ),
                    (
                        "per-shape",
                        "--cuda-graph-backend-decode full --cuda-graph-backend-prefill disabled",
                    ),
                    (
                        "dynamic",
                        "--cuda-graph-backend-decode full --cuda-graph-backend-prefill breakable",
                    ),
                ]
            } else if v(ver).at_least("0.5.10") {
                [
                    ("off", "--disable-cuda-graph --disable-piecewise-cuda-graph"),
                    ("per-shape", "--disable-piecewise-cuda-graph"),
                    ("dynamic", ""),
                ]
            } else {
                [
                    ("off", "--disable-cuda-graph"),
                    ("per-shape", ""),
                    ("dynamic", "--enable-piecewise-cuda-graph"),
                ]
            }
        };
        for ver in BOUNDARIES {
            for (graph, want) in expect(ver) {
                assert_eq!(tail(&[("cuda_graph", graph)], ver), want, "{ver} {graph}");
            }
        }
        // A whole combo as the catalog expands it, in the order of the flags.
        assert_eq!(
            tail(
                &[
                    ("attention_backend", "flash_attn_v3"),
                    ("kv_layout", "chunked"),
                    ("activation_dtype", "fp8_e4m3"),
                    ("kv_cache_dtype", "fp8_e4m3"),
                    ("cuda_graph", "per-shape"),
                    ("matmul_path", "unset"),
                    ("fusion_strategy", "unset"),
                ],
                "0.5.14"
            ),
            "--attention-backend fa3 --dtype bfloat16 --quantization fp8 --kv-cache-dtype fp8_e4m3 --cuda-graph-backend-decode full --cuda-graph-backend-prefill disabled"
        );
    }

    #[test]
    fn refusals_name_engine_value_and_reason() {
        let err =
            |dims: &[(&str, &str)], ver: &str| args(&combo(dims), &v(ver), &ctx()).unwrap_err();
        assert_eq!(
            err(&[("attention_backend", "flash_attn_v2")], "0.5.23"),
            "engine `sglang` has no translation for attention_backend = `flash_attn_v2` (accepted: flash_attn_v3, paged_attention, native, unset)"
        );
        let e = err(
            &[("attention_backend", "native"), ("cuda_graph", "per-shape")],
            "0.5.10",
        );
        assert_eq!(
            e,
            "engine `sglang` has no translation for cuda_graph = `per-shape` (accepted: off, unset) (SGLang 0.5.10 switches CUDA graphs off with torch_native attention)"
        );
        assert!(
            args(
                &combo(&[("attention_backend", "native"), ("cuda_graph", "off")]),
                &v("0.5.10"),
                &ctx()
            )
            .is_ok()
        );
        let e = err(
            &[
                ("attention_backend", "flash_attn_v3"),
                ("kv_cache_dtype", "fp8_e5m2"),
            ],
            "0.5.23",
        );
        assert!(
            e.contains("engine `sglang`")
                && e.contains("kv_cache_dtype = `fp8_e5m2`")
                && e.contains("0.5.23 silently replaces fa3 by triton"),
            "{e}"
        );
        assert_each_untranslated(
            "sglang",
            &[
                ("kv_layout", "contiguous"),
                ("activation_dtype", "fp8_e5m2"),
                ("kv_cache_dtype", "fp16"),
                ("kv_cache_dtype", "q8_0"),
                ("cuda_graph", "always"),
                ("matmul_path", "cublas"),
                ("fusion_strategy", "aggressive"),
            ],
            |dims| err(dims, "0.5.14"),
        );
        let mut c = Combo::default();
        c.knobs.insert("block_size".into(), "16".into());
        let e = args(&c, &v("0.5.14"), &ctx()).unwrap_err();
        assert!(e.contains("knob = `block_size`"), "{e}");
    }

    #[test]
    fn versions_outside_the_range_are_refused() {
        assert_version_range(
            "sglang",
            SUPPORTED,
            "0.5.5..=0.5.23",
            &["0.4.6", "0.5.4", "0.5.24", "0.6"],
            BOUNDARIES,
        );
    }

    #[test]
    fn the_interpreter_comes_from_the_console_script() {
        let dir = std::env::temp_dir().join(format!("l1-sglang-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("sglang");
        std::fs::write(
            &script,
            "#!/opt/venv/bin/python3\nfrom sglang.cli.main import main\n",
        )
        .unwrap();
        assert_eq!(
            script_interpreter(&script),
            Some(PathBuf::from("/opt/venv/bin/python3"))
        );
        std::fs::write(&script, "#!/bin/sh\nexec something\n").unwrap();
        assert_eq!(script_interpreter(&script), None);
        std::fs::write(dir.join("python3"), "").unwrap();
        assert_eq!(script_interpreter(&script), Some(dir.join("python3")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The argument lists the source check compares with each version's `server_args.py`
    /// (`scripts/check-engine-flags.py sglang` runs this with `--ignored --nocapture`).
    #[test]
    #[ignore = "prints the flag matrix for scripts/check-engine-flags.py"]
    fn print_flag_matrix() {
        let values: &[(&str, &[&str])] = &[
            (
                "attention_backend",
                &["flash_attn_v3", "paged_attention", "native"],
            ),
            ("kv_layout", &["paged", "chunked"]),
            ("activation_dtype", &["fp16", "bf16", "fp8_e4m3"]),
            ("kv_cache_dtype", &["auto", "bf16", "fp8_e4m3", "fp8_e5m2"]),
            ("cuda_graph", &["off", "per-shape", "dynamic"]),
        ];
        for ver in BOUNDARIES {
            for (dim, vals) in values {
                for val in *vals {
                    let a = args(&combo(&[(dim, val)]), &v(ver), &ctx()).unwrap();
                    let line = serde_json::json!({
                        "engine": "sglang", "version": ver, "dim": dim, "value": val,
                        "argv": a.argv[2..].to_vec(),
                    });
                    println!("L1-FLAGS {line}");
                }
            }
        }
    }
}
