//! llama.cpp's `llama-server` (or the project's `xllamacpp`-based drop-in with the same flags,
//! installed by `scripts/setup-engines.sh` as `<engines>/bin/llama-server`).
//!
//! Mapping of catalog dimensions (flags from `llama-server --help`):
//! - `attention_backend`: `flash_attn_v2` → `-fa on`, `native` → `-fa off`, `unset` → `-fa auto`.
//!   Builds before [`VALUED_FA`] (`b6327`) had a bare boolean `-fa` (default off, no `auto`):
//!   there `flash_attn_v2` → `-fa` and `native`/`unset` → nothing. PR #15434 made the option
//!   valued in late August 2025; b6327 (2025-08-31) is the first build known to have it (a
//!   downstream sync, mybigday/llama.node#102), so a few builds just before it are treated as old.
//!   Versions: llama-server builds `b<N>`, and the wheel `xllamacpp`'s date versions
//!   (`2026.10.x`), which embed a current llama.cpp.
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

use crate::launch::LaunchTarget;
use crate::server::{ServerEngine, ServerRecipe};
use crate::translate::{Emitted, Row, Table, TranslateError, unsupported};
use crate::{Arrival, combo::UNSET};

/// llama-server builds, and the date-versioned xllamacpp wheels.
pub const SUPPORTED: &[crate::version::VersionRange] = &[
    crate::version::VersionRange::new("b4000", "b99999"),
    crate::version::VersionRange::new("2025.1", "2099.12"),
];

/// The first llama-server build whose `-fa` takes a value (`on|off|auto`).
pub const VALUED_FA: &str = "b6327";

/// llama.cpp's spellings (see the module docs); knobs, slots and the context are code.
pub const TABLE: Table = Table {
    engine: "llamacpp",
    rows: &[
        // attention_backend: a bare boolean `-fa` before VALUED_FA.
        Row::new("attention_backend", "flash_attn_v2")
            .below(VALUED_FA)
            .flags(&["-fa"]),
        Row::new("attention_backend", "flash_attn_v2").flags(&["-fa", "on"]),
        Row::new("attention_backend", "native").below(VALUED_FA),
        Row::new("attention_backend", "native").flags(&["-fa", "off"]),
        Row::new("attention_backend", UNSET).below(VALUED_FA),
        Row::new("attention_backend", UNSET).flags(&["-fa", "auto"]),
        // kv_cache_dtype: K and V alike.
        Row::new("kv_cache_dtype", "fp16").flags(&["-ctk", "f16", "-ctv", "f16"]),
        Row::new("kv_cache_dtype", "bf16").flags(&["-ctk", "bf16", "-ctv", "bf16"]),
        Row::new("kv_cache_dtype", "q8_0").flags(&["-ctk", "q8_0", "-ctv", "q8_0"]),
        Row::new("kv_cache_dtype", "q4_0").flags(&["-ctk", "q4_0", "-ctv", "q4_0"]),
        Row::new("kv_cache_dtype", "auto"),
    ],
};

/// llama.cpp's knobs.
pub const KNOBS: &[&str] = &["threads", "batch_size", "ubatch_size", "parallel"];

/// The llama.cpp server engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct LlamaCpp;

impl ServerEngine for LlamaCpp {
    fn supported_versions(&self) -> &'static [crate::version::VersionRange] {
        SUPPORTED
    }

    fn translation(&self) -> Option<&'static Table> {
        Some(&TABLE)
    }

    fn name(&self) -> &'static str {
        "llamacpp"
    }

    fn program(&self, engines_dir: &Path) -> Result<PathBuf, crate::error::EngineError> {
        crate::install::require_engine_binary(
            engines_dir,
            "llama-server",
            "llama.cpp",
            "run scripts/setup-engines.sh llamacpp",
        )
        .map_err(crate::error::EngineError::from)
    }

    fn detect_version(&self, program: &Path) -> Result<String, crate::error::EngineError> {
        crate::server::version_from_command(program, &["--version"], "version:")
    }

    fn translate(
        &self,
        target: &LaunchTarget<'_>,
        program: PathBuf,
        port: u16,
    ) -> Result<ServerRecipe, TranslateError> {
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
        let mut out = Emitted::default();
        TABLE.emit_all(
            combo,
            &[
                "attention_backend",
                "kv_cache_dtype",
                "kv_layout",
                "matmul_path",
                "activation_dtype",
                "fusion_strategy",
                "cuda_graph",
            ],
            target.version,
            target.hardware.device,
            &mut out,
        )?;
        args.append(&mut out.flags);
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
                other => return Err(unsupported(self.name(), "knob", other, KNOBS)),
            };
            args.extend([flag.to_string(), value.clone()]);
        }
        let slots: u32 = slots_flag.parse().map_err(|_| TranslateError::BadKnob {
            engine: None,
            knob: "parallel".into(),
            value: slots_flag.clone(),
            expected: "a number of slots".into(),
        })?;
        let per_slot = (w.input_tokens.max() + w.output_tokens.max() + 16)
            .min(target.model.max_context.max(64));
        args.extend([
            "-np".into(),
            slots.to_string(),
            "-c".into(),
            (per_slot * slots).to_string(),
        ]);
        let mut recipe = ServerRecipe::openai(
            program,
            args,
            Default::default(),
            port,
            target.model_name,
            "llamacpp:",
            "content",
            Duration::from_secs(60),
        );
        // Fidelity probes: the native endpoint gives token ids, logprobs and top-k (`n_probs`).
        recipe.probe = crate::probe::ProbeApi::LlamaCpp;
        Ok(recipe)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Combo;
    use crate::testing::{Scratch, combo, installed};

    fn with_target<R>(combo: &Combo, f: impl FnOnce(&LaunchTarget<'_>) -> R) -> R {
        let mut s = Scratch::cpu("llamacpp", "2026.10").with_model_file(".gguf");
        s.workload.arrival = crate::Arrival::Concurrency(3);
        f(&s.target(combo))
    }

    #[test]
    fn combos_become_llama_server_flags() {
        let c = combo(
            &[
                ("attention_backend", "flash_attn_v2"),
                ("kv_cache_dtype", "q8_0"),
            ],
            &[("threads", "1"), ("batch_size", "512")],
        );
        let r = with_target(&c, |t| LlamaCpp.translate(t, "llama-server".into(), 4242)).unwrap();
        let line = r.command.display();
        for want in [
            "--port 4242",
            "-fa on",
            "-ctk q8_0 -ctv q8_0",
            "-t 1",
            "-b 512",
            "-np 3",
            "-c 192",
            "--metrics",
        ] {
            assert!(line.contains(want), "{want}: {line}");
        }
        assert_eq!(r.ready_path, "/health");
        let c = combo(
            &[("attention_backend", "native"), ("kv_cache_dtype", "fp16")],
            &[],
        );
        let line = with_target(&c, |t| LlamaCpp.translate(t, "x".into(), 1))
            .unwrap()
            .command
            .display();
        assert!(line.contains("-fa off -ctk f16 -ctv f16"), "{line}");
        let line = with_target(&Combo::default(), |t| LlamaCpp.translate(t, "x".into(), 1))
            .unwrap()
            .command
            .display();
        assert!(
            line.contains("-fa auto") && !line.contains("-ctk"),
            "{line}"
        );
    }

    #[test]
    fn old_builds_get_the_bare_flash_attention_flag() {
        let on = combo(&[("attention_backend", "flash_attn_v2")], &[]);
        let off = combo(&[("attention_backend", "native")], &[]);
        let line = |c: &Combo, version: &str| {
            let mut s = Scratch::cpu("llamacpp-old", version).with_model_file(".gguf");
            s.version = version.into();
            LlamaCpp
                .translate(&s.target(c), "x".into(), 1)
                .unwrap()
                .command
                .display()
        };
        for old in ["b4000", "b6326"] {
            let l = line(&on, old);
            assert!(l.contains(" -fa ") && !l.contains("-fa on"), "{old}: {l}");
            assert!(!line(&off, old).contains("-fa"), "{old}");
            assert!(!line(&Combo::default(), old).contains("-fa"), "{old}");
        }
        for new in ["b6327", "b7000", "2026.10", "2026.10.11549"] {
            assert!(line(&on, new).contains("-fa on"), "{new}");
            assert!(line(&off, new).contains("-fa off"), "{new}");
            assert!(line(&Combo::default(), new).contains("-fa auto"), "{new}");
        }
    }

    #[test]
    fn values_llama_cpp_cannot_express_are_errors_naming_the_choices() {
        let c = combo(&[("attention_backend", "flash_attn_v3")], &[]);
        let e = with_target(&c, |t| LlamaCpp.translate(t, "x".into(), 1))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("flash_attn_v3") && e.contains("accepted: flash_attn_v2, native, unset"),
            "{e}"
        );
        let c = combo(&[("cuda_graph", "per-shape")], &[]);
        let e = with_target(&c, |t| LlamaCpp.translate(t, "x".into(), 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cuda_graph"), "{e}");
        let c = combo(&[], &[("flash", "1")]);
        let e = with_target(&c, |t| LlamaCpp.translate(t, "x".into(), 1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("knob") && e.contains("threads"), "{e}");
    }

    /// Every value this translator produces is accepted by the installed llama-server: each
    /// launch must reach readiness (llama.cpp refuses unknown flags and bad values at start).
    #[test]
    fn the_installed_llama_server_accepts_every_translation() {
        let setup = "scripts/setup-engines.sh llamacpp";
        let (Some(program), Some(model)) = (
            installed(Path::new("bin/llama-server"), setup),
            installed(Path::new("models/tiny-llama.gguf"), setup),
        ) else {
            return;
        };
        let mut s = Scratch::cpu("llamacpp-real", "2026.10");
        std::fs::copy(&model, s.dir.join("models/tiny.gguf")).unwrap();
        let version = LlamaCpp.detect_version(&program).unwrap();
        s.version = version.clone();
        let mut combos = vec![Combo::default()];
        for attn in ["flash_attn_v2", "native", "unset"] {
            for kv in ["fp16", "bf16", "q8_0", "q4_0", "auto"] {
                // A quantized V cache needs flash attention (catalog rule
                // llamacpp-quantized-v-needs-flash-attn prunes the rest).
                if matches!(kv, "q8_0" | "q4_0") && attn != "flash_attn_v2" {
                    continue;
                }
                combos.push(combo(
                    &[("attention_backend", attn), ("kv_cache_dtype", kv)],
                    &[],
                ));
            }
        }
        combos.push(combo(
            &[],
            &[
                ("threads", "1"),
                ("batch_size", "128"),
                ("ubatch_size", "64"),
                ("parallel", "3"),
            ],
        ));
        for (i, c) in combos.iter().enumerate() {
            let port = crate::process::free_port().unwrap();
            let r = LlamaCpp
                .translate(&s.target(c), program.clone(), port)
                .unwrap();
            let wd = s.dir.join(format!("run{i}"));
            let mut p = crate::process::EngineProcess::spawn(
                &r.command,
                &wd.join("wd"),
                &wd.join("engine.log"),
                &s.dir,
            )
            .unwrap();
            let url = format!("127.0.0.1:{port}");
            let ready = p.wait_ready(Duration::from_secs(60), || {
                use std::io::{Read, Write};
                let Ok(mut conn) = std::net::TcpStream::connect(&url) else {
                    return false;
                };
                let _ = conn.write_all(b"GET /health HTTP/1.0\r\n\r\n");
                let mut head = [0u8; 12];
                conn.read_exact(&mut head).is_ok() && head.ends_with(b"200")
            });
            p.teardown(Duration::from_secs(5));
            assert!(
                ready.is_ok(),
                "llama-server {version} refused `{}`: {}",
                r.command.display(),
                ready.unwrap_err()
            );
        }
        let _ = std::fs::remove_dir_all(&s.dir);
    }
}
