//! What identifies a measurement across runs: the hardware it ran on, the model's weights and
//! config, the workload's definition and the measurement plan. Together with the catalog
//! version, the engine and its installed version and the combo they form the cache key (the
//! origin's key, plus the plan: a record of 3 reps must not answer for a spec asking for 15).
//!
//! - **Hardware**: with a GPU, each GPU's name, compute capability, memory, driver version and
//!   the CUDA version, from `nvidia-smi`; without, the CPU model, logical cores, instruction-set
//!   flags and memory, from `/proc`. Simulated targets model the *declared* hardware profile, so
//!   their fingerprint is the profile's definition, not this machine.
//! - **Model**: the catalog profile, plus every file under the engines directory's `models/`
//!   whose name is the model's or starts with it and `.`/`-` (the GGUF, the ONNX file, the
//!   Hugging Face directory): small files (≤ 8 MiB: configs, tokenizers, index files) are hashed
//!   whole; a larger weight file contributes its size, its first and last MiB (a safetensors or
//!   GGUF header with every tensor's name, dtype, shape and offset lies at the start) and eight
//!   64 KiB chunks at fixed fractions of its length. A 140 GB checkpoint in 30 shards costs
//!   about 90 MiB of reads instead of 140 GB; a change that keeps every size and every sampled
//!   byte would go unnoticed (fine-tuned or re-quantised weights change everywhere). Results
//!   are memoised per process by (path, size, modification time).
//! - **Workload**: its definition with `description` left out and a dataset's path replaced by
//!   its parsed lines, serialised with sorted keys.

use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::catalog::hex;

/// Why a part of the cache key could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    #[error("failed to read model file {}: {source}", .path.display())]
    ModelFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The engine's program or its version could not be found.
    #[error(transparent)]
    Engine(#[from] l1_engines::EngineError),
}

impl From<FingerprintError> for String {
    fn from(e: FingerprintError) -> Self {
        e.to_string()
    }
}
use crate::record::{Fingerprints, short_hash};

/// This machine, described and hashed once per process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// Human-readable: what the fingerprint was computed from.
    pub description: String,
    pub fingerprint: String,
}

/// The machine this process runs on.
pub fn machine() -> &'static Machine {
    static M: OnceLock<Machine> = OnceLock::new();
    M.get_or_init(|| {
        let description = match gpu_description() {
            Some(gpus) => gpus,
            None => cpu_description(),
        };
        Machine {
            fingerprint: short_hash(&description, 16),
            description,
        }
    })
}

/// `nvidia-smi`'s view of every GPU, or `None` without a GPU.
fn gpu_description() -> Option<String> {
    l1_engines::registry::find_on_path("nvidia-smi")?;
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name,compute_cap,memory.total,driver_version",
            "--format=csv,noheader,nounits",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let gpus: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            match f.as_slice() {
                [name, cc, mem, driver] => {
                    format!("{name} (sm {cc}, {mem} MiB, driver {driver})")
                }
                _ => l.trim().to_string(),
            }
        })
        .filter(|l| !l.is_empty())
        .collect();
    if gpus.is_empty() {
        return None;
    }
    // The CUDA version the driver supports is only in the banner.
    let cuda = std::process::Command::new("nvidia-smi")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            let v = text
                .split("CUDA Version:")
                .nth(1)?
                .split_whitespace()
                .next()?;
            Some(v.to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    Some(format!(
        "gpu: {} x [{}]; CUDA {cuda}",
        gpus.len(),
        gpus.join("; ")
    ))
}

fn cpu_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == name).then(|| v.trim().to_string())
        })
    };
    let model = field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
        .count()
        .max(std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut flags: Vec<String> = field("flags")
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    flags.sort();
    let notable: Vec<&str> = [
        "avx2",
        "avx512f",
        "avx512_bf16",
        "avx512_vnni",
        "amx_tile",
        "amx_bf16",
        "neon",
        "sve",
    ]
    .into_iter()
    .filter(|f| flags.iter().any(|x| x == f))
    .collect();
    let mem_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kb: f64 = m
                .lines()
                .find(|l| l.starts_with("MemTotal:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((kb / 1_048_576.0).round() as u64)
        })
        .unwrap_or(0);
    format!(
        "cpu: {model}; {cores} logical cores; {} flags (sha {}; {}); {mem_gib} GiB",
        flags.len(),
        short_hash(&flags.join(" "), 8),
        if notable.is_empty() {
            "none of avx2/avx512/amx".to_string()
        } else {
            notable.join(" ")
        }
    )
}

/// The hardware fingerprint of a target: its declared profile plus this machine for real
/// engines; the profile's definition alone for the sim.
pub fn hardware(
    profile_name: &str,
    profile: &l1_engines::profile::HardwareProfile,
    simulated: bool,
) -> (String, String) {
    let declared = serde_json::to_string(profile).unwrap_or_default();
    if simulated {
        let d = format!("simulated {profile_name}: {declared}");
        (short_hash(&d, 16), format!("simulated {profile_name}"))
    } else {
        let m = machine();
        (
            short_hash(&format!("{profile_name}|{}", m.fingerprint), 16),
            format!("{profile_name} on {}", m.description),
        )
    }
}

/// The workload's fingerprint: its normalised definition.
pub fn workload(w: &l1_engines::profile::Workload) -> String {
    let mut v = serde_json::to_value(w).unwrap_or(serde_json::Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.remove("description");
        if let Some(ds) = &w.dataset {
            let lines: Vec<serde_json::Value> = ds
                .entries
                .iter()
                .map(|e| serde_json::json!([e.prompt, e.output_tokens]))
                .collect();
            obj.insert("dataset".into(), serde_json::Value::Array(lines));
        }
    }
    short_hash(&canonical_json(&v), 16)
}

/// JSON with object keys sorted at every level.
fn canonical_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<&String, String> =
                map.iter().map(|(k, v)| (k, canonical_json(v))).collect();
            let parts: Vec<String> = sorted
                .into_iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::Value::String(k.clone())))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        serde_json::Value::Array(a) => {
            format!(
                "[{}]",
                a.iter().map(canonical_json).collect::<Vec<_>>().join(",")
            )
        }
        other => other.to_string(),
    }
}

/// The model's hash: its catalog profile, plus its files for real engines (see the module docs).
pub fn model(
    name: &str,
    profile: &l1_engines::profile::ModelProfile,
    engines_dir: Option<&Path>,
) -> Result<String, FingerprintError> {
    let mut h = Sha256::new();
    h.update(
        serde_json::to_string(profile)
            .unwrap_or_default()
            .as_bytes(),
    );
    if let Some(dir) = engines_dir {
        let models = dir.join("models");
        let mut files = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&models) {
            for e in entries.flatten() {
                let file_name = e.file_name().to_string_lossy().into_owned();
                let matches = file_name == name
                    || file_name
                        .strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('-'));
                if matches {
                    collect_files(&e.path(), &mut files);
                }
            }
        }
        files.sort();
        for f in files {
            let rel = f.strip_prefix(&models).unwrap_or(&f).display().to_string();
            h.update(rel.as_bytes());
            h.update(file_digest(&f)?.as_bytes());
        }
    }
    Ok(hex(&h.finalize())[..16].to_string())
}

fn collect_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                collect_files(&e.path(), out);
            }
        }
    } else if path.is_file() {
        out.push(path.to_path_buf());
    }
}

/// Files at most this big are hashed whole.
const WHOLE_FILE_MAX: u64 = 8 << 20;
const EDGE: u64 = 1 << 20;
const CHUNK: u64 = 64 << 10;
const SAMPLES: u64 = 8;

/// A file's digest (whole or sampled), memoised by (path, size, modification time).
pub fn file_digest(path: &Path) -> Result<String, FingerprintError> {
    type Memo = Mutex<BTreeMap<(PathBuf, u64, u128), String>>;
    static MEMO: OnceLock<Memo> = OnceLock::new();
    let err = |source: std::io::Error| FingerprintError::ModelFile {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(err)?;
    let size = meta.len();
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let memo_key = (path.to_path_buf(), size, mtime);
    let memo = MEMO.get_or_init(|| Mutex::new(BTreeMap::new()));
    if let Some(d) = memo.lock().ok().and_then(|m| m.get(&memo_key).cloned()) {
        return Ok(d);
    }
    let mut f = std::fs::File::open(path).map_err(err)?;
    let mut h = Sha256::new();
    h.update(size.to_le_bytes());
    if size <= WHOLE_FILE_MAX {
        std::io::copy(&mut f, &mut HashWriter(&mut h)).map_err(err)?;
    } else {
        let mut read_at = |offset: u64, len: u64, h: &mut Sha256| -> Result<(), FingerprintError> {
            f.seek(SeekFrom::Start(offset)).map_err(err)?;
            let mut buf = vec![0u8; len as usize];
            f.read_exact(&mut buf).map_err(err)?;
            h.update(&buf);
            Ok(())
        };
        read_at(0, EDGE, &mut h)?;
        for i in 1..=SAMPLES {
            let at = size / (SAMPLES + 1) * i;
            read_at(at.min(size - CHUNK), CHUNK, &mut h)?;
        }
        read_at(size - EDGE, EDGE, &mut h)?;
    }
    let d = hex(&h.finalize())[..32].to_string();
    if let Ok(mut m) = memo.lock() {
        m.insert(memo_key, d.clone());
    }
    Ok(d)
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The installed version of a real engine, asked of the engine (`--version`, ONNX Runtime's
/// library) once per installed program: remembered under `<target>/l1/engine-versions/` by the
/// program's path, size and modification time, so a re-run that takes everything from the cache
/// does not start the engine's binary at all (`llama-server --version` alone costs 0.15 s).
pub fn engine_version(
    engine: &str,
    engines_dir: &Path,
    target_dir: &Path,
) -> Result<String, FingerprintError> {
    let program = l1_engines::registry::installed_program(engine, engines_dir)?;
    let identity = std::fs::metadata(&program).ok().map(|m| {
        let mtime = m
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        format!("{engine}|{}|{}|{mtime}", program.display(), m.len())
    });
    let memo = identity.as_ref().map(|id| {
        target_dir
            .join("l1")
            .join("engine-versions")
            .join(format!("{}.txt", short_hash(id, 20)))
    });
    if let Some(path) = &memo
        && let Ok(text) = std::fs::read_to_string(path)
        && let Some((id, version)) = text.split_once('\n')
        && Some(id) == identity.as_deref()
        && !version.trim().is_empty()
    {
        return Ok(version.trim().to_string());
    }
    let version = l1_engines::registry::installed_version(engine, engines_dir)?;
    if let (Some(path), Some(id)) = (&memo, &identity) {
        let _ = crate::record::write_text_atomic(path, &format!("{id}\n{version}\n"));
    }
    Ok(version)
}

/// The measurement plan's hash: what changes the reps a measurement holds.
pub fn plan(m: &crate::spec::Measure) -> String {
    short_hash(
        &format!(
            "reps={}|warmup={}|seed={}|launches={}|seq={:?}",
            m.reps,
            m.warmup_reps,
            m.seed,
            m.launches,
            m.sequential()
        ),
        16,
    )
}

/// The parts of a target's cache key that do not depend on the combo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetParts {
    pub catalog_version: u32,
    pub engine: String,
    pub engine_version: String,
    pub model_hash: String,
    pub hardware_fingerprint: String,
    pub hardware: String,
    pub workload_fingerprint: String,
    pub plan_hash: String,
}

impl TargetParts {
    /// The full fingerprints of one combo, with the cache key.
    pub fn for_combo(&self, combo: &l1_engines::Combo) -> Fingerprints {
        let combo_hash = short_hash(&combo.canonical(), 12);
        let cache_key = self.cache_key(&combo_hash);
        Fingerprints {
            cache_key,
            catalog_version: self.catalog_version,
            engine: self.engine.clone(),
            engine_version: self.engine_version.clone(),
            model_hash: self.model_hash.clone(),
            hardware_fingerprint: self.hardware_fingerprint.clone(),
            hardware: self.hardware.clone(),
            workload_fingerprint: self.workload_fingerprint.clone(),
            combo_hash,
            plan_hash: self.plan_hash.clone(),
        }
    }

    /// The cache key of the combo whose hash is `combo_hash` (a stored measurement's
    /// `combo_hash`), under these target-wide parts.
    pub fn cache_key(&self, combo_hash: &str) -> String {
        short_hash(
            &format!(
                "v{}|{}|{}|{}|{}|{}|{}|{}",
                self.catalog_version,
                self.engine,
                self.engine_version,
                self.model_hash,
                self.hardware_fingerprint,
                self.workload_fingerprint,
                combo_hash,
                self.plan_hash
            ),
            32,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> TargetParts {
        TargetParts {
            catalog_version: 3,
            engine: "llamacpp".into(),
            engine_version: "b6300".into(),
            model_hash: "m1".into(),
            hardware_fingerprint: "h1".into(),
            hardware: "cpu".into(),
            workload_fingerprint: "w1".into(),
            plan_hash: "p1".into(),
        }
    }

    #[test]
    fn every_part_of_the_key_invalidates_it() {
        let combo = l1_engines::Combo::default();
        let key = base().for_combo(&combo).cache_key;
        let changed: Vec<(&str, TargetParts)> = vec![
            (
                "catalog version bump",
                TargetParts {
                    catalog_version: 4,
                    ..base()
                },
            ),
            (
                "engine version bump",
                TargetParts {
                    engine_version: "b6400".into(),
                    ..base()
                },
            ),
            (
                "other engine",
                TargetParts {
                    engine: "vllm".into(),
                    ..base()
                },
            ),
            (
                "model changed",
                TargetParts {
                    model_hash: "m2".into(),
                    ..base()
                },
            ),
            (
                "other machine",
                TargetParts {
                    hardware_fingerprint: "h2".into(),
                    ..base()
                },
            ),
            (
                "workload changed",
                TargetParts {
                    workload_fingerprint: "w2".into(),
                    ..base()
                },
            ),
            (
                "plan changed",
                TargetParts {
                    plan_hash: "p2".into(),
                    ..base()
                },
            ),
        ];
        for (why, parts) in changed {
            assert_ne!(parts.for_combo(&combo).cache_key, key, "{why}");
        }
        let mut other = l1_engines::Combo::default();
        other
            .dims
            .insert("attention_backend".into(), "flash_attn_v2".into());
        assert_ne!(base().for_combo(&other).cache_key, key, "other combo");
        // The description of the hardware is not part of the key: only its fingerprint.
        let described = TargetParts {
            hardware: "cpu, described differently".into(),
            ..base()
        };
        assert_eq!(described.for_combo(&combo).cache_key, key);
    }

    #[test]
    fn model_files_are_hashed_by_content_with_big_files_sampled() {
        let dir = std::env::temp_dir().join(format!("l1-fp-{}", std::process::id()));
        let models = dir.join("models");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(models.join("tiny-hf")).unwrap();
        std::fs::write(models.join("tiny.gguf"), b"weights v1").unwrap();
        std::fs::write(models.join("tiny-hf/config.json"), b"{}").unwrap();
        std::fs::write(models.join("tinyother.gguf"), b"not this model").unwrap();
        let profile: l1_engines::profile::ModelProfile =
            serde_json::from_value(serde_json::json!({
                "display_name": "t", "params_b": 0.001, "layers": 2, "hidden_size": 64,
                "attention_heads": 4, "kv_heads": 4, "head_dim": 16, "intermediate_size": 128,
                "vocab_size": 256, "max_context": 512
            }))
            .unwrap();
        let h1 = model("tiny", &profile, Some(&dir)).unwrap();
        assert_eq!(h1, model("tiny", &profile, Some(&dir)).unwrap(), "stable");
        std::fs::write(models.join("tinyother.gguf"), b"changed, but another model").unwrap();
        assert_eq!(
            h1,
            model("tiny", &profile, Some(&dir)).unwrap(),
            "other models do not count"
        );
        std::fs::write(models.join("tiny-hf/config.json"), b"{\"layers\": 3}").unwrap();
        let h2 = model("tiny", &profile, Some(&dir)).unwrap();
        assert_ne!(h1, h2, "a config change is seen");
        // A big file: a changed sampled chunk is seen.
        let big = models.join("tiny.bin");
        let mut data = vec![7u8; (20 << 20) + 123];
        std::fs::write(&big, &data).unwrap();
        let d1 = file_digest(&big).unwrap();
        data[0] = 8; // inside the first MiB
        std::fs::write(&big, &data).unwrap();
        // Same size; the memo is keyed by modification time too, which the rewrite changed
        // (or not, on coarse clocks): hash it fresh under another name to be sure.
        let big2 = models.join("tiny.bin2");
        std::fs::write(&big2, &data).unwrap();
        assert_ne!(d1, file_digest(&big2).unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn workload_fingerprint_ignores_the_description() {
        let cats = crate::profiles::Catalogs::load(
            Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap(),
        )
        .unwrap();
        let (_, w) = cats.workloads.iter().next().unwrap();
        let mut w2 = w.clone();
        w2.description = "reworded".into();
        assert_eq!(workload(w), workload(&w2));
        w2.requests += 1;
        assert_ne!(workload(w), workload(&w2));
    }

    #[test]
    fn this_machine_has_a_fingerprint() {
        let m = machine();
        assert_eq!(m.fingerprint.len(), 16);
        assert!(
            m.description.starts_with("cpu: ") || m.description.starts_with("gpu: "),
            "{}",
            m.description
        );
    }
}
