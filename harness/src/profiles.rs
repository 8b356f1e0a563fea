//! The profile catalogs: `catalogs/hardware.yaml`, `catalogs/models.yaml`,
//! `catalogs/workloads.yaml`, loaded and validated with file and line in every error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use l1_engines::{HardwareProfile, ModelProfile, Workload};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::catalog::LoadedCatalog;
use crate::diag::{Diagnostic, find_key_line};
use crate::yaml;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HardwareFile {
    hardware: BTreeMap<String, HardwareProfile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelsFile {
    models: BTreeMap<String, ModelProfile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadsFile {
    workloads: BTreeMap<String, Workload>,
}

/// Everything a spec is expanded against.
#[derive(Clone, Debug)]
pub struct Catalogs {
    pub root: PathBuf,
    pub kernels: LoadedCatalog,
    pub hardware: BTreeMap<String, HardwareProfile>,
    pub models: BTreeMap<String, ModelProfile>,
    pub workloads: BTreeMap<String, Workload>,
}

fn load_map<F: DeserializeOwned, T>(
    path: &Path,
    unwrap: impl FnOnce(F) -> BTreeMap<String, T>,
    check: impl Fn(&T) -> Result<(), String>,
) -> Result<BTreeMap<String, T>, Diagnostic> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Diagnostic::new(path, format!("failed to read the file: {e}")))?;
    let map = unwrap(yaml::parse::<F>(path, &text, None)?);
    for (name, item) in &map {
        if let Err(msg) = check(item) {
            let (field, what) = msg.split_once(": ").unwrap_or(("", msg.as_str()));
            let start = find_key_line(&text, name, 1).unwrap_or(1);
            let key = field.split('.').next().unwrap_or(field);
            let line = find_key_line(&text, key, start).unwrap_or(start);
            return Err(Diagnostic::new(path, format!("invalid `{name}`: {what}"))
                .at(&text, line, None)
                .field(format!("{name}.{field}")));
        }
    }
    Ok(map)
}

impl Catalogs {
    /// Load every catalog under `<root>/catalogs/`.
    pub fn load(root: &Path) -> Result<Self, Diagnostic> {
        let dir = root.join("catalogs");
        let kernels = LoadedCatalog::load(&dir.join("kernels.yaml"))?;
        let hardware = load_map(
            &dir.join("hardware.yaml"),
            |f: HardwareFile| f.hardware,
            HardwareProfile::validate,
        )?;
        let models = load_map(
            &dir.join("models.yaml"),
            |f: ModelsFile| f.models,
            ModelProfile::validate,
        )?;
        let workloads = load_map(
            &dir.join("workloads.yaml"),
            |f: WorkloadsFile| f.workloads,
            Workload::validate,
        )?;
        Ok(Self {
            root: root.to_path_buf(),
            kernels,
            hardware,
            models,
            workloads,
        })
    }
}
