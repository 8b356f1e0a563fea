//! NVIDIA Triton Inference Server, as the CPU host runs it: the real `tritonserver` 2.51.0 binary
//! bundled in PyPI's `nvidia-pytriton` 0.7.0, serving the project's streaming toy LM `tiny_lm`
//! through Triton's Python backend (`scripts/engines/serve_pytriton.py`, installed by
//! `scripts/setup-engines.sh triton` as `<engines>/bin/l1-triton-serve`).
//!
//! On a GPU host with NVIDIA's own `tritonserver` on `PATH` (and no toy installed), a launch
//! serves a TensorRT-LLM engine through the `inflight_batcher_llm` ensemble instead, with the
//! `tensorrt_llm` model's `config.pbtxt` generated per combo by [`crate::triton::config`] (see
//! `gpu_recipe`). Below: the CPU toy.
//!
//! What this launcher covers: one decoupled (streaming) Python-backend model whose Triton-side
//! settings (instance count, `max_batch_size`, the dynamic batcher and its queue delay) are real
//! `config.pbtxt` settings that pytriton writes, and whose computation is a tiny numpy
//! transformer on the CPU. For the toy, the catalog's GPU-side meanings of the dimensions (ORT
//! graph level, TensorRT precision, CUDA graphs) are not what the values below do; the GPU path
//! above uses them as Triton's backends define them.
//!
//! Version: `l1-triton-serve --version` runs the bundled `tritonserver` against a nonexistent
//! model repository (it prints its option table, `server_version` included, and exits in
//! ~15 ms), so the version is the binary's own (`2.51.0`), known before launch.
//!
//! Mapping of catalog dimensions (only what really changes the run; anything else is an error
//! naming the accepted values, never a silent default):
//! - `activation_dtype`: `fp16` → `--dtype fp16` (weights and activations in numpy float16; a
//!   real numeric change, and ~6× slower than float32 on this CPU since numpy's half matmuls
//!   have no BLAS); `unset` → the toy's float32. `fp8_e4m3` is rejected.
//! - `fusion_strategy`: `none` → `--fuse none` (separate Q, K and V projections),
//!   `aggressive` → `--fuse qkv` (one fused [d, 3d] projection: the toy's only fusion);
//!   `conservative` is rejected (the toy has no intermediate level).
//! - `cuda_graph`: `off` (and `unset`) → nothing: there are no CUDA graphs on the CPU; `per-shape`
//!   and `dynamic` are rejected.
//! - Every other dimension must be `unset` (Triton does not expose them).
//! - knobs (catalog `engines.triton.knobs`): `instances` → `--instances` (model instances:
//!   Python stub processes), `max_batch_size` → `--max-batch-size`, `dynamic_batching` →
//!   `--dynamic-batching on|off` (off: no `dynamic_batching` block, each request executes
//!   alone), `max_queue_delay_us` → `--max-queue-delay-us` (only with the dynamic batcher on; a
//!   non-zero delay with it off is rejected).
//!
//! Endpoints: KServe v2 `generate_stream` (one SSE event per generated token; empty
//! `text_output` events that pytriton sends to finished requests of a batch are not counted,
//! see `l1_loadgen::protocol`), readiness `/v2/models/tiny_lm/ready`, Prometheus `nv_*` on the
//! metrics port (a third free port, as is gRPC's). The toy has no tokenize endpoint: prompts are
//! sized at one token per word, while the toy tokenizes one character per token (a prompt of N
//! words is ~5.5·N toy tokens; records keep the word count as `input_tokens`). It never stops
//! early, so every request generates exactly `max_tokens` tokens (`ignore_eos` holds without
//! being sent: the KServe body carries only `text_input` and `max_tokens`).
//!
//! The model must be `tiny-lm-triton` (catalogs/models.yaml): the toy serves nothing else, and
//! recording its numbers under another model's name would be false.

pub mod config;

use std::path::{Path, PathBuf};
use std::time::Duration;

use l1_loadgen::HttpApi;

use crate::launch::LaunchTarget;
use crate::process::LaunchCommand;
use crate::server::{ServerEngine, ServerRecipe};
use crate::translate::{Emitted, Row, Table, TranslateError, unsupported};

/// The program `scripts/setup-engines.sh triton` installs.
pub const PROGRAM: &str = "l1-triton-serve";
/// The model the toy serves, as the catalog names it.
pub const MODEL: &str = "tiny-lm-triton";
/// The model name requests carry.
pub const SERVED_MODEL: &str = "tiny_lm";

const KNOBS: &[&str] = &[
    "instances",
    "max_batch_size",
    "dynamic_batching",
    "max_queue_delay_us",
];

/// The CPU toy's spellings (see the module docs); knobs are code. A GPU launch's config keys are
/// [`crate::triton::config`]'s, per Triton backend.
pub const TOY: Table = Table {
    engine: "triton",
    rows: &[
        Row::new("activation_dtype", "fp16").flags(&["--dtype", "fp16"]),
        Row::new("fusion_strategy", "none").flags(&["--fuse", "none"]),
        Row::new("fusion_strategy", "aggressive").flags(&["--fuse", "qkv"]),
        // No CUDA graphs on the CPU: `off` is the only way it runs.
        Row::new("cuda_graph", "off"),
    ],
};

/// The Triton Inference Server engine: pytriton's bundled `tritonserver` with the toy model on
/// CPU, NVIDIA's `tritonserver` with a TensorRT-LLM ensemble on a GPU.
#[derive(Clone, Copy, Debug, Default)]
pub struct Triton;

impl ServerEngine for Triton {
    fn supported_versions(&self) -> &'static [crate::version::VersionRange] {
        crate::triton::config::SUPPORTED
    }

    fn name(&self) -> &'static str {
        "triton"
    }

    fn program(&self, engines_dir: &Path) -> Result<PathBuf, crate::error::EngineError> {
        crate::install::require_engine_binary(
            engines_dir,
            PROGRAM,
            "Triton",
            "run scripts/setup-engines.sh triton",
        )
        .or_else(|e| crate::install::find_engine_binary(engines_dir, GPU_PROGRAM).ok_or(e))
        .map_err(crate::error::EngineError::from)
    }

    fn detect_version(&self, program: &Path) -> Result<String, crate::error::EngineError> {
        if is_gpu_server(program) {
            // The real server prints its option table (server_version included) and exits when
            // its model repository does not exist.
            let out = std::process::Command::new(program)
                .arg("--model-repository=/nonexistent/l1-version-probe")
                .stdin(std::process::Stdio::null())
                .output()
                .map_err(|source| crate::error::EngineError::VersionCommand {
                    command: program.display().to_string(),
                    source,
                })?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            return server_version_row(&text)
                .ok_or_else(|| {
                    format!(
                        "`{}` printed no server_version: {}",
                        program.display(),
                        l1_loadgen::protocol::clip(&text)
                    )
                })
                .map_err(crate::error::EngineError::Version);
        }
        crate::server::version_from_command(program, &["--version"], "tritonserver version:")
    }

    fn translate(
        &self,
        target: &LaunchTarget<'_>,
        program: PathBuf,
        port: u16,
    ) -> Result<ServerRecipe, TranslateError> {
        if is_gpu_server(&program) {
            return gpu_recipe(target, program, port);
        }
        if target.model_name != MODEL {
            return Err(TranslateError::Target(format!(
                "engine `triton` serves only the toy model `{MODEL}` on this host (scripts/engines/serve_pytriton.py), not `{}`",
                target.model_name
            )));
        }
        let combo = target.combo;
        let (grpc, metrics) = two_more_ports(port)?;
        let mut args: Vec<String> = vec![
            "--http-port".into(),
            port.to_string(),
            "--grpc-port".into(),
            grpc.to_string(),
            "--metrics-port".into(),
            metrics.to_string(),
        ];
        let mut out = Emitted::default();
        TOY.emit_all(
            combo,
            &[
                "activation_dtype",
                "fusion_strategy",
                "cuda_graph",
                "attention_backend",
                "kv_layout",
                "matmul_path",
                "kv_cache_dtype",
            ],
            target.version,
            target.hardware.device,
            &mut out,
        )?;
        args.append(&mut out.flags);
        let dynamic = combo.knob("dynamic_batching").unwrap_or("on");
        for (knob, value) in &combo.knobs {
            let flag = match knob.as_str() {
                "instances" => {
                    count(knob, value, 1)?;
                    "--instances"
                }
                "max_batch_size" => {
                    count(knob, value, 1)?;
                    "--max-batch-size"
                }
                "dynamic_batching" => {
                    if value != "on" && value != "off" {
                        return Err(unsupported(
                            self.name(),
                            "knob dynamic_batching",
                            value,
                            &["on", "off"],
                        ));
                    }
                    "--dynamic-batching"
                }
                "max_queue_delay_us" => {
                    if count(knob, value, 0)? > 0 && dynamic == "off" {
                        return Err(TranslateError::KnobConflict {
                            engine: "triton".into(),
                            knob: knob.clone(),
                            value: value.clone(),
                            reason: "needs the dynamic batcher, but dynamic_batching is `off` (accepted with it off: 0)".into(),
                        });
                    }
                    "--max-queue-delay-us"
                }
                other => return Err(unsupported(self.name(), "knob", other, KNOBS)),
            };
            args.extend([flag.to_string(), value.clone()]);
        }
        Ok(ServerRecipe {
            command: LaunchCommand {
                program,
                args,
                // Unloading takes ~5 s (more with 2 instances); a SIGKILLed pytriton leaves its
                // 160 MB shared-memory segment in /dev/shm.
                stop_grace: Some(Duration::from_secs(30)),
                ..LaunchCommand::default()
            },
            port,
            api: HttpApi::KServeGenerateStream,
            served_model: SERVED_MODEL.into(),
            ready_path: format!("/v2/models/{SERVED_MODEL}/ready"),
            metrics: Some((format!("http://127.0.0.1:{metrics}/metrics"), "nv_")),
            tokenize: None,
            // Not sent (the KServe body has no such field): the toy never stops before
            // `max_tokens`, so output lengths are exact.
            ignore_eos: true,
            probe: crate::probe::ProbeApi::Unsupported(
                "Triton's KServe generate_stream returns text without token logprobs, and the toy model has no greedy-probe endpoint".into(),
            ),
            startup_timeout: Duration::from_secs(120),
        })
    }
}

/// NVIDIA's own server binary (a GPU host's install), as opposed to the pytriton toy.
pub const GPU_PROGRAM: &str = "tritonserver";
/// The launch script a GPU launch runs in its working directory.
pub const GPU_LAUNCH_SCRIPT: &str = "l1-triton-launch.sh";

fn is_gpu_server(program: &Path) -> bool {
    program.file_name().is_some_and(|f| f == GPU_PROGRAM)
}

/// `server_version` from the option table tritonserver prints (`| server_version | 2.51.0 |`).
fn server_version_row(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let mut cells = l.split('|').map(str::trim).filter(|c| !c.is_empty());
        (cells.next()? == "server_version").then(|| cells.next().map(str::to_string))?
    })
}

/// A GPU launch: the real `tritonserver` serving a TensorRT-LLM model through the
/// `inflight_batcher_llm` ensemble (preprocessing → `tensorrt_llm` → postprocessing), whose
/// repository the operator prepares once as `<engines>/models/<model>-triton-repo/` (from
/// `tensorrtllm_backend/all_models/inflight_batcher_llm`, with the tokenizer filled in) next to
/// the built engine `<engines>/models/<model>-trtllm-engine/`. Per combo, l1 generates the
/// `tensorrt_llm` model's `config.pbtxt` ([`crate::triton::config`], checked against the engine's
/// build flags) and a launch script that mirrors the repository as symlinks in the working
/// directory, puts the generated config in, and starts the server on three free ports.
/// Requests go to the `ensemble` model over `generate_stream`. Triton's other GPU backends
/// (TensorRT plans, ONNX models) run one forward pass per request: serving an LLM on them needs
/// a decoding (BLS) model that l1 does not generate, so they are not launched.
fn gpu_recipe(
    target: &LaunchTarget<'_>,
    program: PathBuf,
    port: u16,
) -> Result<ServerRecipe, TranslateError> {
    if target.hardware.device != crate::DeviceKind::Gpu {
        return Err(TranslateError::Target(format!(
            "engine `triton`: `{}` serves TensorRT-LLM engines on a GPU; hardware `{}` is not one",
            program.display(),
            target.hardware.display_name
        )));
    }
    let models = target.engines_dir.join("models");
    let template = models.join(format!("{}-triton-repo", target.model_name));
    let engine = models.join(format!("{}-trtllm-engine", target.model_name));
    for (what, p) in [
        ("model repository", &template),
        ("TensorRT-LLM engine", &engine),
    ] {
        if !p.is_dir() {
            return Err(TranslateError::Target(format!(
                "engine `triton`: no {what} at {} (see engines/src/triton.rs: a GPU launch needs the inflight_batcher_llm repository and the built engine)",
                p.display()
            )));
        }
    }
    let engine_config = engine.join("config.json");
    let built_with = std::fs::read_to_string(&engine_config)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("version")?.as_str().map(str::to_string))
        .ok_or_else(|| {
            TranslateError::Target(format!(
                "engine `triton`: {} names no TensorRT-LLM `version` (is it a built engine?)",
                engine_config.display()
            ))
        })?;
    let engine_path = engine.display().to_string();
    let config = crate::triton::config::config_pbtxt(
        crate::triton::config::TritonBackend::TensorRtLlm,
        target.combo,
        target.version,
        &crate::triton::config::TritonModel {
            name: "tensorrt_llm",
            tensorrt_llm: Some((&engine_path, &built_with)),
        },
    )?;
    let (grpc, metrics) = two_more_ports(port)?;
    let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let script = format!(
        "#!/bin/sh\n# l1: the operator's inflight_batcher_llm repository as symlinks, with the combo's\n# tensorrt_llm config, served by tritonserver.\nset -e\nrm -rf repo\ncp -as {template} repo\nrm -f repo/tensorrt_llm/config.pbtxt\ncp tensorrt_llm.config.pbtxt repo/tensorrt_llm/config.pbtxt\n{program} --model-repository=repo --http-port {port} --grpc-port {grpc} --metrics-port {metrics} --allow-metrics=true\n",
        template = q(&template.display().to_string()),
        program = q(&program.display().to_string()),
    );
    let mut env = std::collections::BTreeMap::new();
    if let Some(d) = &target.cuda_visible_devices {
        env.insert("CUDA_VISIBLE_DEVICES".to_string(), d.clone());
    }
    Ok(ServerRecipe {
        command: LaunchCommand {
            program: "/bin/sh".into(),
            args: vec![GPU_LAUNCH_SCRIPT.into()],
            env,
            files: [
                (GPU_LAUNCH_SCRIPT.to_string(), script),
                ("tensorrt_llm.config.pbtxt".to_string(), config),
            ]
            .into(),
            stop_grace: Some(Duration::from_secs(30)),
        },
        port,
        api: HttpApi::KServeGenerateStream,
        served_model: "ensemble".into(),
        ready_path: "/v2/models/ensemble/ready".into(),
        metrics: Some((format!("http://127.0.0.1:{metrics}/metrics"), "nv_")),
        tokenize: None,
        // The ensemble stops at the end id; no ignore_eos in KServe's generate body.
        ignore_eos: false,
        probe: crate::probe::ProbeApi::Unsupported(
            "Triton's KServe generate_stream returns text without token logprobs".into(),
        ),
        // Loading a TensorRT-LLM engine onto the GPU; unconfirmed (reference §9).
        startup_timeout: Duration::from_secs(600),
    })
}

/// A knob value that must be an integer of at least `min`.
fn count(knob: &str, value: &str, min: u64) -> Result<u64, TranslateError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| *n >= min)
        .ok_or_else(|| TranslateError::BadKnob {
            engine: Some("triton".into()),
            knob: knob.to_string(),
            value: value.to_string(),
            expected: format!("an integer >= {min}"),
        })
}

/// Free ports for gRPC and metrics, distinct from each other and from the HTTP `port`.
fn two_more_ports(port: u16) -> Result<(u16, u16), TranslateError> {
    let mut got = Vec::new();
    for _ in 0..20 {
        let p = crate::process::free_port().map_err(|e| TranslateError::Target(e.to_string()))?;
        if p != port && !got.contains(&p) {
            got.push(p);
            if got.len() == 2 {
                return Ok((got[0], got[1]));
            }
        }
    }
    Err(TranslateError::Target(
        "failed to find three distinct free ports for Triton".into(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Combo;
    use crate::testing::{Scratch, combo};

    fn with_target<R>(model: &str, combo: &Combo, f: impl FnOnce(&LaunchTarget<'_>) -> R) -> R {
        let mut s = Scratch::cpu("triton", "2.51");
        s.model_name = model.into();
        s.model.layers = 1;
        s.model.hidden_size = 128;
        s.workload.input_tokens = crate::Dist::Fixed(8);
        s.workload.output_tokens = crate::Dist::Fixed(32);
        s.workload.arrival = crate::Arrival::Concurrency(4);
        f(&s.target(combo))
    }

    fn translate(c: &Combo) -> Result<ServerRecipe, String> {
        with_target(MODEL, c, |t| Triton.translate(t, PROGRAM.into(), 4242))
            .map_err(|e| e.to_string())
    }

    /// The catalog defaults of the triton entry.
    const DEFAULTS: &[(&str, &str)] = &[
        ("activation_dtype", "fp16"),
        ("fusion_strategy", "aggressive"),
        ("cuda_graph", "off"),
    ];

    #[test]
    fn combos_become_serve_pytriton_flags() {
        let c = combo(
            DEFAULTS,
            &[
                ("instances", "2"),
                ("dynamic_batching", "off"),
                ("max_batch_size", "4"),
            ],
        );
        let r = translate(&c).unwrap();
        let line = r.command.display();
        for want in [
            "--http-port 4242",
            "--grpc-port ",
            "--metrics-port ",
            "--dtype fp16",
            "--fuse qkv",
            "--instances 2",
            "--dynamic-batching off",
            "--max-batch-size 4",
        ] {
            assert!(line.contains(want), "{want}: {line}");
        }
        assert_eq!(r.api, HttpApi::KServeGenerateStream);
        assert_eq!(r.served_model, "tiny_lm");
        assert_eq!(r.ready_path, "/v2/models/tiny_lm/ready");
        assert!(r.tokenize.is_none());
        // Metrics on their own port, as an absolute URL.
        let (url, prefix) = r.metrics.clone().unwrap();
        assert_eq!(prefix, "nv_");
        let mport: u16 = url
            .strip_prefix("http://127.0.0.1:")
            .and_then(|s| s.strip_suffix("/metrics"))
            .unwrap()
            .parse()
            .unwrap();
        assert!(line.contains(&format!("--metrics-port {mport}")), "{line}");
        assert_ne!(mport, 4242);

        let c = combo(
            &[
                ("activation_dtype", "fp16"),
                ("fusion_strategy", "none"),
                ("cuda_graph", "off"),
            ],
            &[("dynamic_batching", "on"), ("max_queue_delay_us", "1000")],
        );
        let line = translate(&c).unwrap().command.display();
        assert!(line.contains("--fuse none"), "{line}");
        assert!(
            line.contains("--dynamic-batching on") && line.contains("--max-queue-delay-us 1000"),
            "{line}"
        );
        // Unset dimensions and no knobs: the toy's own defaults, nothing passed.
        let line = translate(&Combo::default()).unwrap().command.display();
        assert!(
            !line.contains("--dtype") && !line.contains("--fuse") && !line.contains("--instances"),
            "{line}"
        );
    }

    #[test]
    fn values_the_toy_cannot_express_are_errors_naming_the_choices() {
        for (dim, value, accepted) in [
            ("activation_dtype", "fp8_e4m3", "accepted: fp16, unset"),
            (
                "fusion_strategy",
                "conservative",
                "accepted: none, aggressive, unset",
            ),
            ("cuda_graph", "per-shape", "accepted: off, unset"),
            ("attention_backend", "flash_attn_v2", "accepted: unset"),
            ("kv_cache_dtype", "fp8_e4m3", "accepted: unset"),
        ] {
            let mut dims: Vec<(&str, &str)> = DEFAULTS
                .iter()
                .copied()
                .filter(|(d, _)| *d != dim)
                .collect();
            dims.push((dim, value));
            let e = translate(&combo(&dims, &[])).unwrap_err();
            assert!(
                e.contains("`triton`") && e.contains(dim) && e.contains(value),
                "{e}"
            );
            assert!(e.contains(accepted), "{e}");
        }
        let e = translate(&combo(DEFAULTS, &[("threads", "2")])).unwrap_err();
        assert!(e.contains("knob") && e.contains("instances"), "{e}");
        let e = translate(&combo(DEFAULTS, &[("dynamic_batching", "maybe")])).unwrap_err();
        assert!(e.contains("on, off"), "{e}");
        let e = translate(&combo(DEFAULTS, &[("instances", "0")])).unwrap_err();
        assert!(e.contains("instances") && e.contains(">= 1"), "{e}");
        let e = translate(&combo(
            DEFAULTS,
            &[("dynamic_batching", "off"), ("max_queue_delay_us", "500")],
        ))
        .unwrap_err();
        assert!(e.contains("needs the dynamic batcher"), "{e}");
        // A zero delay with the batcher off says nothing false.
        translate(&combo(
            DEFAULTS,
            &[("dynamic_batching", "off"), ("max_queue_delay_us", "0")],
        ))
        .unwrap();
    }

    #[test]
    fn only_the_toy_model_is_served() {
        let e = with_target("tiny-llama", &combo(DEFAULTS, &[]), |t| {
            Triton.translate(t, PROGRAM.into(), 1)
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("tiny-lm-triton") && e.contains("tiny-llama"),
            "{e}"
        );
    }

    #[test]
    fn gpu_launches_serve_the_tensorrt_llm_ensemble_from_a_generated_config() {
        let mut s = Scratch::gpu("triton-gpu", "2.71");
        let models = s.dir.join("models");
        std::fs::create_dir_all(models.join("tiny-triton-repo/tensorrt_llm")).unwrap();
        std::fs::create_dir_all(models.join("tiny-trtllm-engine")).unwrap();
        std::fs::write(
            models.join("tiny-trtllm-engine/config.json"),
            r#"{"version": "1.2"}"#,
        )
        .unwrap();
        s.cuda_visible_devices = Some("2".into());
        let c = Combo::default();
        let r = Triton
            .translate(
                &s.target(&c),
                "/opt/tritonserver/bin/tritonserver".into(),
                4242,
            )
            .unwrap();
        assert_eq!(r.command.program, Path::new("/bin/sh"));
        assert_eq!(r.command.args, [GPU_LAUNCH_SCRIPT]);
        assert_eq!(r.command.env["CUDA_VISIBLE_DEVICES"], "2");
        let script = &r.command.files[GPU_LAUNCH_SCRIPT];
        assert!(
            script.contains("cp -as '") && script.contains("tiny-triton-repo' repo"),
            "{script}"
        );
        assert!(
            script.contains(
                "'/opt/tritonserver/bin/tritonserver' --model-repository=repo --http-port 4242"
            ),
            "{script}"
        );
        let config = &r.command.files["tensorrt_llm.config.pbtxt"];
        assert!(
            config.contains("backend: \"tensorrtllm\"") && config.contains("tiny-trtllm-engine"),
            "{config}"
        );
        assert_eq!(r.api, HttpApi::KServeGenerateStream);
        assert_eq!(
            (r.served_model.as_str(), r.ready_path.as_str()),
            ("ensemble", "/v2/models/ensemble/ready")
        );
        let script_ok = std::process::Command::new("/bin/sh")
            .args(["-n", "-c", script])
            .status()
            .unwrap();
        assert!(script_ok.success(), "the launch script is valid sh");

        // Missing pieces and the wrong hardware are errors that say what is needed.
        let cpu = Scratch::cpu("triton-gpu-cpu", "2.71");
        let e = Triton
            .translate(&cpu.target(&c), "/x/tritonserver".into(), 1)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not one"), "{e}");
        let bare = Scratch::gpu("triton-gpu-bare", "2.71");
        let _ = std::fs::remove_dir_all(bare.dir.join("models"));
        let e = Triton
            .translate(&bare.target(&c), "/x/tritonserver".into(), 1)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no model repository at") && e.contains("tiny-triton-repo"),
            "{e}"
        );
        assert_eq!(
            server_version_row("| server_id | triton |\n| server_version | 2.71.0 |\n").as_deref(),
            Some("2.71.0")
        );
    }
}
