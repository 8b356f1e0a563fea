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
//!   native attention backend"), so the catalog prunes `native` with graphs (rule
//!   `sglang-native-attention-disables-graphs`); `fa3` with an `fp8_e5m2` KV cache silently
//!   becomes `triton`, so the catalog prunes that pair (rule `sglang-fa3-kv-no-e5m2`). Such
//!   pairs are the catalog's to refuse; the translator spells each value on its own.
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

use crate::launch::LaunchTarget;
use crate::server::{ServerEngine, ServerRecipe};
use crate::translate::check_supported;
use crate::translate::{Emitted, Row, Table, TranslateError, check_knobs};
use crate::version::{Version, VersionRange};
use crate::{Combo, DeviceKind};

/// The SGLang server engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sglang;

/// Versions this translator supports.
pub const SUPPORTED: &[VersionRange] = &[VersionRange::new("0.5.5", "0.5.23")];

/// The engine's catalog name.
const NAME: &str = "sglang";

/// CUDA-graph flag generations: `--disable-piecewise-cuda-graph` from 0.5.10, the per-phase
/// graph backends from 0.5.14.
const PIECEWISE_DEFAULT: &str = "0.5.10";
const GRAPH_BACKENDS: &str = "0.5.14";

/// SGLang's spellings (see the module docs). SGLang has no knobs here.
pub const TABLE: Table = Table {
    engine: NAME,
    rows: &[
        Row::new("attention_backend", "flash_attn_v3").flags(&["--attention-backend", "fa3"]),
        Row::new("attention_backend", "paged_attention").flags(&["--attention-backend", "triton"]),
        Row::new("attention_backend", "native").flags(&["--attention-backend", "torch_native"]),
        Row::new("kv_layout", "paged").flags(&["--chunked-prefill-size", "-1"]),
        Row::new("kv_layout", "chunked"),
        Row::new("activation_dtype", "fp16").flags(&["--dtype", "float16"]),
        Row::new("activation_dtype", "bf16").flags(&["--dtype", "bfloat16"]),
        Row::new("activation_dtype", "fp8_e4m3").flags(&[
            "--dtype",
            "bfloat16",
            "--quantization",
            "fp8",
        ]),
        Row::new("kv_cache_dtype", "auto"),
        Row::new("kv_cache_dtype", "bf16").flags(&["--kv-cache-dtype", "bf16"]),
        Row::new("kv_cache_dtype", "fp8_e4m3").flags(&["--kv-cache-dtype", "fp8_e4m3"]),
        Row::new("kv_cache_dtype", "fp8_e5m2").flags(&["--kv-cache-dtype", "fp8_e5m2"]),
        // cuda_graph: three flag generations.
        Row::new("cuda_graph", "off").from(GRAPH_BACKENDS).flags(&[
            "--cuda-graph-backend-decode",
            "disabled",
            "--cuda-graph-backend-prefill",
            "disabled",
        ]),
        Row::new("cuda_graph", "off")
            .from(PIECEWISE_DEFAULT)
            .flags(&["--disable-cuda-graph", "--disable-piecewise-cuda-graph"]),
        Row::new("cuda_graph", "off").flags(&["--disable-cuda-graph"]),
        Row::new("cuda_graph", "per-shape")
            .from(GRAPH_BACKENDS)
            .flags(&[
                "--cuda-graph-backend-decode",
                "full",
                "--cuda-graph-backend-prefill",
                "disabled",
            ]),
        Row::new("cuda_graph", "per-shape")
            .from(PIECEWISE_DEFAULT)
            .flags(&["--disable-piecewise-cuda-graph"]),
        Row::new("cuda_graph", "per-shape"),
        Row::new("cuda_graph", "dynamic")
            .from(GRAPH_BACKENDS)
            .flags(&[
                "--cuda-graph-backend-decode",
                "full",
                "--cuda-graph-backend-prefill",
                "breakable",
            ]),
        Row::new("cuda_graph", "dynamic").from(PIECEWISE_DEFAULT),
        Row::new("cuda_graph", "dynamic").flags(&["--enable-piecewise-cuda-graph"]),
    ],
};

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
pub fn args(combo: &Combo, version: &Version, ctx: &Ctx<'_>) -> Result<Args, TranslateError> {
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

    let mut out = Emitted::default();
    TABLE.emit_all(
        combo,
        crate::translate::DIMENSIONS,
        &version.to_string(),
        DeviceKind::Gpu,
        &mut out,
    )?;
    argv.append(&mut out.flags);
    check_knobs(NAME, combo, &[])?;
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

    fn translation(&self) -> Option<&'static Table> {
        Some(&TABLE)
    }

    fn name(&self) -> &'static str {
        "sglang"
    }

    fn program(&self, engines_dir: &Path) -> Result<PathBuf, crate::error::EngineError> {
        let script = crate::install::require_engine_binary(
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
        .map_err(crate::error::EngineError::Program)
    }

    fn detect_version(&self, program: &Path) -> Result<String, crate::error::EngineError> {
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
        target: &LaunchTarget<'_>,
        program: PathBuf,
        port: u16,
    ) -> Result<ServerRecipe, TranslateError> {
        let version = check_supported(self.name(), target.version, SUPPORTED)?;
        if target.hardware.device != DeviceKind::Gpu {
            return Err(TranslateError::NeedsGpu {
                engine: NAME.into(),
            });
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
        let err = |dims: &[(&str, &str)], ver: &str| {
            args(&combo(dims), &v(ver), &ctx()).unwrap_err().to_string()
        };
        assert_eq!(
            err(&[("attention_backend", "flash_attn_v2")], "0.5.23"),
            "engine `sglang` has no translation for attention_backend = `flash_attn_v2` (accepted: flash_attn_v3, paged_attention, native, unset)"
        );
        // Combinations SGLang handles badly are the catalog's to prune (rules
        // `sglang-native-attention-disables-graphs` and `sglang-fa3-kv-no-e5m2`, checked in
        // harness/tests/catalog.rs); the translator spells each value alone.
        let l = tail(
            &[("attention_backend", "native"), ("cuda_graph", "per-shape")],
            "0.5.10",
        );
        assert!(
            l.contains("--attention-backend torch_native --disable-piecewise-cuda-graph"),
            "{l}"
        );
        let l = tail(
            &[
                ("attention_backend", "flash_attn_v3"),
                ("kv_cache_dtype", "fp8_e5m2"),
            ],
            "0.5.23",
        );
        assert!(
            l.contains("--attention-backend fa3 --kv-cache-dtype fp8_e5m2"),
            "{l}"
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
        let e = args(&c, &v("0.5.14"), &ctx()).unwrap_err().to_string();
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
