//! llama.cpp's `llama-server` (or the project's `xllamacpp`-based drop-in with the same flags,
//! installed by `scripts/setup-engines.sh` as `<engines>/bin/llama-server`).
//!
//! Mapping of catalog dimensions (flags from `llama-server --help`):
//! - `attention_backend`: `flash_attn_v2` → `-fa on`, `native` → `-fa off`, `unset` → `-fa auto`.
//! - `kv_cache_dtype`: `fp16` → `-ctk f16 -ctv f16`, `bf16` → `bf16`, `q8_0`, `q4_0` (both K and V);
//!   `auto`/`unset` → llama.cpp's default (f16). A quantized V cache needs `-fa on`: the catalog
//!   rule `llamacpp-quantized-v-needs-flash-attn` prunes it, and forced anyway llama.cpp refuses
//!   to start and the trial fails with its error line.
//! - knobs: `threads` → `-t`, `batch_size` → `-b`, `ubatch_size` → `-ub`, `parallel` → `-np`.
//! - Always: `--metrics` (Prometheus `llamacpp:*`), slots (`-np`) = the workload's concurrency
//!   (4 for open-loop workloads), and a context of slots × (longest prompt + longest answer + 16)
//!   tokens, since llama.cpp splits `-c` across slots.

use std::path::{Path, PathBuf};
use std::time::Duration;

use l1_loadgen::HttpApi;

use crate::launch::RealTarget;
use crate::process::LaunchCommand;
use crate::server::{ServerEngine, ServerRecipe, unsupported};
use crate::{Arrival, combo::UNSET};

/// The llama.cpp server engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct LlamaCpp;

impl ServerEngine for LlamaCpp {
    fn name(&self) -> &'static str {
        "llamacpp"
    }

    fn program(&self, engines_dir: &Path) -> Result<PathBuf, String> {
        crate::registry::find_engine_binary(engines_dir, "llama-server").ok_or_else(|| {
            format!(
                "llama.cpp is not installed: no `llama-server` in {} or on PATH (run scripts/setup-engines.sh llamacpp)",
                engines_dir.join("bin").display()
            )
        })
    }

    fn detect_version(&self, program: &Path) -> Result<String, String> {
        crate::server::version_from_command(program, &["--version"], "version:")
    }

    fn translate(
        &self,
        target: &RealTarget<'_>,
        program: PathBuf,
        port: u16,
    ) -> Result<ServerRecipe, String> {
        let model = target.model_file("gguf")?;
        let combo = target.combo;
        let mut args: Vec<String> = vec![
            "-m".into(),
            model.display().to_string(),
            "--host".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--metrics".into(),
        ];
        let fa = match combo.dim("attention_backend") {
            "flash_attn_v2" => "on",
            "native" => "off",
            UNSET => "auto",
            other => {
                return Err(unsupported(
                    self.name(),
                    "attention_backend",
                    other,
                    &["flash_attn_v2", "native", "unset"],
                ));
            }
        };
        args.extend(["-fa".into(), fa.into()]);
        let kv = match combo.dim("kv_cache_dtype") {
            "fp16" => Some("f16"),
            "bf16" => Some("bf16"),
            "q8_0" => Some("q8_0"),
            "q4_0" => Some("q4_0"),
            "auto" | UNSET => None,
            other => {
                return Err(unsupported(
                    self.name(),
                    "kv_cache_dtype",
                    other,
                    &["fp16", "bf16", "q8_0", "q4_0", "auto", "unset"],
                ));
            }
        };
        if let Some(kv) = kv {
            args.extend(["-ctk".into(), kv.into(), "-ctv".into(), kv.into()]);
        }
        for dim in [
            "kv_layout",
            "matmul_path",
            "activation_dtype",
            "fusion_strategy",
            "cuda_graph",
        ] {
            let v = combo.dim(dim);
            if v != UNSET {
                return Err(unsupported(self.name(), dim, v, &["unset"]));
            }
        }
        let w = target.workload;
        let slots = match w.arrival {
            Arrival::Concurrency(n) => n.max(1),
            Arrival::Poisson { .. } => 4,
        };
        let mut slots_flag = slots.to_string();
        for (knob, value) in &combo.knobs {
            let flag = match knob.as_str() {
                "threads" => "-t",
                "batch_size" => "-b",
                "ubatch_size" => "-ub",
                "parallel" => {
                    slots_flag = value.clone();
                    continue;
                }
                other => {
                    return Err(unsupported(
                        self.name(),
                        "knob",
                        other,
                        &["threads", "batch_size", "ubatch_size", "parallel"],
                    ));
                }
            };
            args.extend([flag.to_string(), value.clone()]);
        }
        let slots: u32 = slots_flag.parse().map_err(|_| {
            format!("knob parallel: expected a number of slots, found `{slots_flag}`")
        })?;
        let per_slot = (w.input_tokens.max() + w.output_tokens.max() + 16)
            .min(target.model.max_context.max(64));
        args.extend([
            "-np".into(),
            slots.to_string(),
            "-c".into(),
            (per_slot * slots).to_string(),
        ]);
        Ok(ServerRecipe {
            command: LaunchCommand {
                program,
                args,
                ..LaunchCommand::default()
            },
            port,
            api: HttpApi::OpenAiCompletions,
            served_model: target.model_name.to_string(),
            ready_path: "/health".into(),
            metrics: Some(("/metrics".into(), "llamacpp:")),
            tokenize: Some(("/tokenize".into(), "content")),
            ignore_eos: true,
            startup_timeout: Duration::from_secs(60),
        })
    }
}
