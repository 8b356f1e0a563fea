//! Hardware detection: which hardware profiles are present on this machine. Detection only decides
//! whether a real-engine trial runs or is listed as ignored; legality follows the declared target.

use std::collections::BTreeMap;
use std::process::Command;

use l1_engines::{DeviceKind, HardwareProfile};
use minijinja::Value;

/// What this machine has.
#[derive(Clone, Debug, Default)]
pub struct Detected {
    /// GPU names as `nvidia-smi` reports them.
    pub gpus: Vec<String>,
    /// Hardware profiles present here (`cpu` is always present).
    pub profiles: Vec<String>,
    /// The CPU model line.
    pub cpu_model: String,
    pub cpu_cores: usize,
}

impl Detected {
    /// Detect GPUs through `nvidia-smi` (when on PATH) and match them to profiles.
    ///
    /// `L1_DETECTED_HARDWARE=a,b` replaces detection (for tests and for runners whose GPU
    /// names no profile matches).
    pub fn detect(hardware: &BTreeMap<String, HardwareProfile>) -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(|s| s.trim().to_string())
            })
            .unwrap_or_else(|| "unknown cpu".into());
        let cpu_cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        if let Some(list) = &crate::settings::env().detected_hardware {
            let profiles = list.clone();
            return Self {
                gpus: Vec::new(),
                profiles,
                cpu_model,
                cpu_cores,
            };
        }
        let gpus = nvidia_smi_names();
        let mut profiles: Vec<String> = hardware
            .iter()
            .filter(|(_, p)| p.device == DeviceKind::Gpu)
            .filter(|(_, p)| {
                gpus.iter()
                    .any(|g| p.detect.iter().any(|d| matches_name(g, d)))
            })
            .map(|(n, _)| n.clone())
            .collect();
        profiles.extend(
            hardware
                .iter()
                .filter(|(_, p)| p.device == DeviceKind::Cpu)
                .map(|(n, _)| n.clone()),
        );
        Self {
            gpus,
            profiles,
            cpu_model,
            cpu_cores,
        }
    }

    /// Whether the declared hardware profile is present here.
    pub fn has(&self, profile: &str) -> bool {
        self.profiles.iter().any(|p| p == profile)
    }

    /// A short description for messages.
    pub fn describe(&self) -> String {
        if self.gpus.is_empty() {
            format!("no GPU; {} ({} cores)", self.cpu_model, self.cpu_cores)
        } else {
            format!(
                "{}; {} ({} cores)",
                self.gpus.join(", "),
                self.cpu_model,
                self.cpu_cores
            )
        }
    }

    /// The template context `hardware`.
    pub fn context(&self) -> BTreeMap<String, Value> {
        let mut m = BTreeMap::new();
        m.insert("gpus".into(), Value::from(self.gpus.clone()));
        m.insert("profiles".into(), Value::from(self.profiles.clone()));
        m.insert("has_gpu".into(), Value::from(!self.gpus.is_empty()));
        m.insert("cpu_model".into(), Value::from(self.cpu_model.clone()));
        m.insert("cpu_cores".into(), Value::from(self.cpu_cores));
        m
    }
}

/// Whether `pattern` occurs in the device name `name` as whole words: "NVIDIA L4" matches
/// "NVIDIA L4" but not "NVIDIA L40S".
pub fn matches_name(name: &str, pattern: &str) -> bool {
    let mut start = 0;
    while let Some(pos) = name[start..].find(pattern) {
        let at = start + pos;
        let end = at + pattern.len();
        let before = name[..at].chars().next_back();
        let after = name[end..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
        if !word(before) && !word(after) {
            return true;
        }
        start = at + pattern.len().max(1);
        if start >= name.len() {
            break;
        }
    }
    false
}

fn nvidia_smi_names() -> Vec<String> {
    if l1_engines::registry::find_on_path("nvidia-smi").is_none() {
        return Vec::new();
    }
    match Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader"])
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::matches_name;

    #[test]
    fn device_names_match_whole_words() {
        assert!(matches_name("NVIDIA L4", "NVIDIA L4"));
        assert!(!matches_name("NVIDIA L40S", "NVIDIA L4"));
        assert!(matches_name("NVIDIA L40S", "L40S"));
        assert!(matches_name("NVIDIA H100 80GB HBM3", "H100 80GB HBM3"));
        assert!(matches_name("NVIDIA A100-SXM4-80GB", "A100-SXM4-80GB"));
        assert!(!matches_name("NVIDIA H200 NVL", "H20"));
    }
}
