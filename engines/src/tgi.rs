//! Hugging Face TGI (text-generation-inference): `text-generation-launcher`, which starts the
//! Python shards and the Rust router. GPU only: nothing here runs on the CPU host. TGI is in
//! maintenance mode; its last release is 3.3.7 (2025-12-18).
//!
//! Supported: [`SUPPORTED`] (2.4 ..= 3.3). 2.4 is the floor because the `PREFILL_CHUNKING`
//! switch and `--kv-cache-dtype` arrived there (`ATTENTION` in 2.3). Facts are from
//! `engines-reference.md` §2 and TGI's git history (launcher `main.rs`, server `globals.py`,
//! `models/model.py`, `layers/attention/kv_cache.py` at v2.4.0, v3.0.0, v3.1.0, v3.3.0, v3.3.7).
//! TGI ships no Python argument parser to check flags against (the launcher is a Rust binary
//! using clap), so its flags are checked by the unit tests below only.
//!
//! Mapping of catalog dimensions:
//! - `attention_backend` → env `ATTENTION` (read by the launcher and the shards):
//!   `flash_attn_v2` → `flashdecoding` (FlashAttention-2 kernels, CC ≥ 8.0, block size 256),
//!   `paged_attention` → `paged` (vLLM's paged-attention kernels, block size 16), `unset` → no
//!   variable (TGI picks `flashinfer`, which has no catalog value; the catalog's default for TGI
//!   is `flash_attn_v2`).
//! - `kv_layout` → env `PREFILL_CHUNKING`: `chunked` → `1` (TGI's default from 3.0), `paged` →
//!   `0` (2.4's default); the KV cache is always paged, so `contiguous` is refused. TGI turns
//!   chunking off with a warning for `paged` attention, so the catalog prunes `chunked` with
//!   `paged_attention` (rule `tgi-paged-attention-no-chunking`).
//! - `activation_dtype`: `fp16` → `--dtype float16`, `bf16` → `--dtype bfloat16`, `fp8_e4m3` →
//!   `--quantize fp8` (e4m3; `--dtype` cannot be combined with `--quantize`; FP8-Marlin W8A16
//!   below CC 8.9, which the catalog's `fp8-compute-requires-sm89` rule prunes); `fp8_e5m2` is
//!   refused (no e5m2 activations).
//! - `kv_cache_dtype` → `--kv-cache-dtype`: `auto` → no flag (the model's dtype), `fp8_e4m3` →
//!   `fp8_e4m3fn`, `fp8_e5m2` → `fp8_e5m2`. TGI's FP8 KV cache works with `flashinfer` on CUDA
//!   and, from 3.1.0, with `paged`; never with `flashdecoding` (the shard raises "FP8 KV cache is
//!   currently only supported for flashinfer on CUDA and paged attention…"). The catalog's
//!   rules `tgi-fp8-kv-not-with-flashdecoding` and `tgi-fp8-kv-paged-needs-3.1` refuse those
//!   pairs; the translator spells each value on its own.
//! - `cuda_graph` → `--cuda-graphs`: `off` → `0`, `per-shape` → `1,2,4,8,16,32` (one graph per
//!   listed batch size: TGI's default list, written out so the combo does not depend on TGI
//!   turning graphs off by default for bitsandbytes/exl2). TGI has no piecewise graphs, so
//!   `dynamic` is not exposed.
//! - Not exposed (the catalog does not list them for TGI): `matmul_path` (no GEMM selector for
//!   unquantized linears; `USE_CUTLASS_W8A8` only picks CUTLASS over Marlin for FP8 on sm89),
//!   `fusion_strategy` (`--disable-custom-kernels` concerns a few model-specific kernels, e.g.
//!   BLOOM's, not fusion in general). No knobs.
//! - Always: `--model-id <models>/<model>-hf --hostname 127.0.0.1 --port P`, a private shard socket
//!   `--shard-uds-path /tmp/l1-tgi-P` and `--master-port` (a free port: the defaults
//!   `/tmp/text-generation-server` and 29500 collide between engines on two GPUs of one host),
//!   from 3.3 `--prometheus-port` (a free port; its default 9000 collides the same way),
//!   `--max-input-tokens`/`--max-total-tokens` fitted to the workload, env `HF_HUB_OFFLINE=1` and
//!   `CUDA_VISIBLE_DEVICES` from the device slot. Ready: `GET /health` (the router starts after
//!   the shards warmed up and captured their graphs). Prometheus `tgi_*` on `/metrics` of the API
//!   port. Prompts are fitted through `POST /tokenize` (`{"inputs": ...}`, answered with a bare
//!   array of tokens, which the load generator's token counter reads). TGI
//!   ignores `ignore_eos` (output lengths may end early at EOS). Startup on a GPU is unconfirmed
//!   (reference §9); 600 s allowed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::launch::LaunchTarget;
use crate::server::{ServerEngine, ServerRecipe};
use crate::translate::check_supported;
use crate::translate::{Emitted, Row, Table, TranslateError, check_knobs};
use crate::version::{Version, VersionRange};
use crate::{Combo, DeviceKind};

/// The TGI server engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tgi;

/// The launcher executable.
pub const PROGRAM: &str = "text-generation-launcher";

/// Versions this translator supports.
pub const SUPPORTED: &[VersionRange] = &[VersionRange::new("2.4", "3.3")];

/// TGI's default CUDA-graph batch sizes (launcher `main.rs`), the `per-shape` capture list.
pub const GRAPH_SIZES: &str = "1,2,4,8,16,32";

/// The engine's catalog name.
const NAME: &str = "tgi";

/// TGI's spellings (see the module docs). TGI has no knobs here.
pub const TABLE: Table = Table {
    engine: NAME,
    rows: &[
        Row::new("attention_backend", "flash_attn_v2").env(&[("ATTENTION", "flashdecoding")]),
        Row::new("attention_backend", "paged_attention").env(&[("ATTENTION", "paged")]),
        Row::new("kv_layout", "paged").env(&[("PREFILL_CHUNKING", "0")]),
        Row::new("kv_layout", "chunked").env(&[("PREFILL_CHUNKING", "1")]),
        Row::new("activation_dtype", "fp16").flags(&["--dtype", "float16"]),
        Row::new("activation_dtype", "bf16").flags(&["--dtype", "bfloat16"]),
        Row::new("activation_dtype", "fp8_e4m3").flags(&["--quantize", "fp8"]),
        Row::new("kv_cache_dtype", "auto"),
        Row::new("kv_cache_dtype", "fp8_e4m3").flags(&["--kv-cache-dtype", "fp8_e4m3fn"]),
        Row::new("kv_cache_dtype", "fp8_e5m2").flags(&["--kv-cache-dtype", "fp8_e5m2"]),
        Row::new("cuda_graph", "off").flags(&["--cuda-graphs", "0"]),
        Row::new("cuda_graph", "per-shape").flags(&["--cuda-graphs", GRAPH_SIZES]),
    ],
};

/// What a launch needs besides the combo.
#[derive(Clone, Debug)]
pub struct Ctx<'a> {
    /// The model directory (`<engines>/models/<model>-hf`).
    pub model_id: &'a str,
    pub port: u16,
    /// torch.distributed's master port (free, per launch).
    pub master_port: u16,
    /// The separate Prometheus listener of TGI ≥ 3.3 (free, per launch).
    pub prometheus_port: u16,
    pub max_input_tokens: u32,
    pub max_total_tokens: u32,
    pub cuda_visible_devices: Option<&'a str>,
}

/// The launcher's arguments and environment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Args {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
}

/// The command line for `combo` at `version` (see the module docs for the mapping).
pub fn args(combo: &Combo, version: &Version, ctx: &Ctx<'_>) -> Result<Args, TranslateError> {
    let mut argv: Vec<String> = vec![
        "--model-id".into(),
        ctx.model_id.into(),
        "--hostname".into(),
        "127.0.0.1".into(),
        "--port".into(),
        ctx.port.to_string(),
        "--shard-uds-path".into(),
        format!("/tmp/l1-tgi-{}", ctx.port),
        "--master-port".into(),
        ctx.master_port.to_string(),
    ];
    if version.at_least("3.3") {
        argv.extend(["--prometheus-port".into(), ctx.prometheus_port.to_string()]);
    }
    argv.extend([
        "--max-input-tokens".into(),
        ctx.max_input_tokens.to_string(),
        "--max-total-tokens".into(),
        ctx.max_total_tokens.to_string(),
    ]);
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
    env.append(&mut out.env);
    check_knobs(NAME, combo, &[])?;
    Ok(Args { argv, env })
}

/// A free port for one of TGI's side listeners.
fn free_port() -> Result<u16, TranslateError> {
    crate::process::free_port().map_err(|e| TranslateError::Target(e.to_string()))
}

impl ServerEngine for Tgi {
    fn supported_versions(&self) -> &'static [crate::version::VersionRange] {
        SUPPORTED
    }

    fn translation(&self) -> Option<&'static Table> {
        Some(&TABLE)
    }

    fn name(&self) -> &'static str {
        "tgi"
    }

    fn program(&self, engines_dir: &Path) -> Result<PathBuf, crate::error::EngineError> {
        crate::install::require_engine_binary(
            engines_dir,
            PROGRAM,
            "TGI",
            "TGI ships as a container image or a source build; GPU only",
        )
        .map_err(crate::error::EngineError::from)
    }

    fn detect_version(&self, program: &Path) -> Result<String, crate::error::EngineError> {
        // `text-generation-launcher --version` prints `text-generation-launcher 3.3.7`.
        crate::server::version_from_command(program, &["--version"], PROGRAM)
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
        let w = target.workload;
        let total = (w.input_tokens.max() + w.output_tokens.max() + 16)
            .next_multiple_of(32)
            .min(target.model.max_context.max(64));
        let input = (w.input_tokens.max() + 8).min(total - 1);
        let ctx = Ctx {
            model_id: &model,
            port,
            master_port: free_port()?,
            prometheus_port: free_port()?,
            max_input_tokens: input,
            max_total_tokens: total,
            cuda_visible_devices: target.cuda_visible_devices.as_deref(),
        };
        let a = args(target.combo, &version, &ctx)?;
        Ok(ServerRecipe {
            // TGI has no `ignore_eos`: answers may end early at end-of-sequence.
            ignore_eos: false,
            probe: crate::probe::ProbeApi::OpenAi { token_ids: false },
            ..ServerRecipe::openai(
                program,
                a.argv,
                a.env,
                port,
                target.model_name,
                "tgi_",
                "inputs",
                Duration::from_secs(600),
            )
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::process::LaunchCommand;
    use crate::testing::{assert_each_untranslated, assert_version_range};

    /// Boundary versions: the floor (2.4), chunking on by default (3.0), FP8 KV with paged
    /// attention (3.1), the Prometheus listener (3.3, and its last patch release).
    const BOUNDARIES: &[&str] = &["2.4", "3.0", "3.0.2", "3.1", "3.2.3", "3.3", "3.3.7"];

    fn combo(dims: &[(&str, &str)]) -> Combo {
        crate::testing::combo(dims, &[])
    }

    fn ctx() -> Ctx<'static> {
        Ctx {
            model_id: "/m/tiny-hf",
            port: 4242,
            master_port: 5000,
            prometheus_port: 6000,
            max_input_tokens: 40,
            max_total_tokens: 64,
            cuda_visible_devices: Some("1"),
        }
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn line(dims: &[(&str, &str)], version: &str) -> Args {
        args(&combo(dims), &v(version), &ctx()).unwrap()
    }

    const FIXED: &str = "--model-id /m/tiny-hf --hostname 127.0.0.1 --port 4242 --shard-uds-path /tmp/l1-tgi-4242 --master-port 5000";
    const LIMITS: &str = "--max-input-tokens 40 --max-total-tokens 64";

    #[test]
    fn fixed_part_and_the_prometheus_port_from_3_3() {
        for ver in BOUNDARIES {
            let a = line(&[], ver);
            let want = if v(ver).at_least("3.3") {
                format!("{FIXED} --prometheus-port 6000 {LIMITS}")
            } else {
                format!("{FIXED} {LIMITS}")
            };
            assert_eq!(a.argv.join(" "), want, "{ver}");
            assert_eq!(
                a.env,
                BTreeMap::from([
                    ("CUDA_VISIBLE_DEVICES".to_string(), "1".to_string()),
                    ("HF_HUB_OFFLINE".to_string(), "1".to_string()),
                ])
            );
        }
    }

    #[test]
    fn every_value_at_every_boundary() {
        let env = |a: &Args| -> String {
            a.env
                .iter()
                .filter(|(k, _)| *k != "CUDA_VISIBLE_DEVICES" && *k != "HF_HUB_OFFLINE")
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let flags = |a: &Args| -> String {
            let skip = if a.argv.contains(&"--prometheus-port".to_string()) {
                16
            } else {
                14
            };
            a.argv[skip..].join(" ")
        };
        for ver in BOUNDARIES {
            for (dims, want_env, want_flags) in [
                (
                    &[("attention_backend", "flash_attn_v2")][..],
                    "ATTENTION=flashdecoding",
                    "",
                ),
                (
                    &[("attention_backend", "paged_attention")],
                    "ATTENTION=paged",
                    "",
                ),
                (&[("kv_layout", "paged")], "PREFILL_CHUNKING=0", ""),
                (&[("kv_layout", "chunked")], "PREFILL_CHUNKING=1", ""),
                (&[("activation_dtype", "fp16")], "", "--dtype float16"),
                (&[("activation_dtype", "bf16")], "", "--dtype bfloat16"),
                (&[("activation_dtype", "fp8_e4m3")], "", "--quantize fp8"),
                (&[("kv_cache_dtype", "auto")], "", ""),
                (
                    &[("kv_cache_dtype", "fp8_e4m3")],
                    "",
                    "--kv-cache-dtype fp8_e4m3fn",
                ),
                (
                    &[("kv_cache_dtype", "fp8_e5m2")],
                    "",
                    "--kv-cache-dtype fp8_e5m2",
                ),
                (&[("cuda_graph", "off")], "", "--cuda-graphs 0"),
                (
                    &[("cuda_graph", "per-shape")],
                    "",
                    "--cuda-graphs 1,2,4,8,16,32",
                ),
                (
                    &[("matmul_path", "unset"), ("fusion_strategy", "unset")],
                    "",
                    "",
                ),
            ] {
                let a = line(dims, ver);
                assert_eq!(env(&a), want_env, "{ver} {dims:?}");
                assert_eq!(flags(&a), want_flags, "{ver} {dims:?}");
            }
        }
        // A whole combo as the catalog expands it.
        let a = line(
            &[
                ("attention_backend", "paged_attention"),
                ("kv_layout", "paged"),
                ("activation_dtype", "bf16"),
                ("kv_cache_dtype", "fp8_e4m3"),
                ("cuda_graph", "per-shape"),
                ("matmul_path", "unset"),
                ("fusion_strategy", "unset"),
            ],
            "3.3",
        );
        assert_eq!(
            LaunchCommand {
                program: PROGRAM.into(),
                args: a.argv,
                env: a.env,
                ..LaunchCommand::default()
            }
            .display(),
            format!(
                "ATTENTION=paged CUDA_VISIBLE_DEVICES=1 HF_HUB_OFFLINE=1 PREFILL_CHUNKING=0 text-generation-launcher {FIXED} --prometheus-port 6000 {LIMITS} --dtype bfloat16 --kv-cache-dtype fp8_e4m3fn --cuda-graphs 1,2,4,8,16,32"
            )
        );
    }

    #[test]
    fn refusals_name_engine_version_and_reason() {
        let err = |dims: &[(&str, &str)], ver: &str| {
            args(&combo(dims), &v(ver), &ctx()).unwrap_err().to_string()
        };
        // Combinations TGI refuses or overrides are the catalog's to prune (rules
        // `tgi-fp8-kv-not-with-flashdecoding`, `tgi-fp8-kv-paged-needs-3.1` and
        // `tgi-paged-attention-no-chunking`, checked in harness/tests/catalog.rs); the
        // translator spells each value on its own.
        for kv in ["fp8_e4m3", "fp8_e5m2"] {
            for (attn, ver) in [("flash_attn_v2", "3.3"), ("paged_attention", "3.0.2")] {
                let a = line(&[("attention_backend", attn), ("kv_cache_dtype", kv)], ver);
                assert!(a.argv.contains(&"--kv-cache-dtype".to_string()), "{a:?}");
            }
        }
        let a = line(
            &[
                ("attention_backend", "paged_attention"),
                ("kv_layout", "chunked"),
            ],
            "3.3",
        );
        assert_eq!(a.env.get("PREFILL_CHUNKING").map(String::as_str), Some("1"));
        assert_each_untranslated(
            "tgi",
            &[
                ("attention_backend", "flash_attn_v3"),
                ("attention_backend", "native"),
                ("kv_layout", "contiguous"),
                ("activation_dtype", "fp8_e5m2"),
                ("kv_cache_dtype", "fp16"),
                ("kv_cache_dtype", "q8_0"),
                ("cuda_graph", "dynamic"),
                ("matmul_path", "cublas"),
                ("fusion_strategy", "none"),
            ],
            |dims| err(dims, "3.3"),
        );
        let mut c = Combo::default();
        c.knobs.insert("block_size".into(), "16".into());
        let e = args(&c, &v("3.3"), &ctx()).unwrap_err().to_string();
        assert!(e.contains("knob = `block_size`"), "{e}");
    }

    #[test]
    fn versions_outside_the_range_are_refused() {
        assert_version_range(
            "tgi",
            SUPPORTED,
            "2.4..=3.3",
            &["2.3", "2.3.1", "1.4", "3.4", "4.0"],
            BOUNDARIES,
        );
    }
}
