//! The profile catalogs: `catalogs/hardware.yaml`, `catalogs/models.yaml`,
//! `catalogs/workloads.yaml`, loaded and validated with file and line in every error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use l1_engines::{HardwareProfile, ModelProfile, Workload};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::catalog::LoadedCatalog;
use crate::diag::Diagnostic;
use crate::yaml::{self, Locations, Step};

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
    section: &str,
    unwrap: impl FnOnce(F) -> BTreeMap<String, T>,
    check: impl Fn(&T) -> Result<(), l1_engines::profile::InvalidField>,
) -> Result<BTreeMap<String, T>, Diagnostic> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Diagnostic::new(path, format!("failed to read the file: {e}")))?;
    let map = unwrap(yaml::parse::<F>(path, &text, None)?);
    for (name, item) in &map {
        if let Err(e) = check(item) {
            let (field, what) = (e.field.as_str(), e.expected.as_str());
            let at: Vec<Step> = [section, name.as_str()]
                .into_iter()
                .chain(field.split('.').filter(|f| !f.is_empty()))
                .map(Step::from)
                .collect();
            let line = Locations::of(&text).nearest(&at).map_or(1, |(l, _)| l);
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
            "hardware",
            |f: HardwareFile| f.hardware,
            HardwareProfile::validate,
        )?;
        let models = load_map(
            &dir.join("models.yaml"),
            "models",
            |f: ModelsFile| f.models,
            ModelProfile::validate,
        )?;
        let workloads_path = dir.join("workloads.yaml");
        let mut workloads = load_map(
            &workloads_path,
            "workloads",
            |f: WorkloadsFile| f.workloads,
            Workload::validate,
        )?;
        for (name, w) in &mut workloads {
            if let Some(ds) = &mut w.dataset {
                ds.entries = load_dataset(root, &workloads_path, name, &ds.path)?;
            }
            if let Some(pr) = &mut w.probes
                && let Some(rel) = pr.path.clone()
            {
                pr.prompts = load_probes(root, &workloads_path, name, &rel)?;
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            kernels,
            hardware,
            models,
            workloads,
        })
    }
}

/// Read and parse a workload's fidelity probe prompts (`probes.path`, JSONL `{"prompt": ...}`).
fn load_probes(
    root: &Path,
    workloads_path: &Path,
    workload: &str,
    rel: &str,
) -> Result<Vec<String>, Diagnostic> {
    let path = root.join(rel);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        let src = std::fs::read_to_string(workloads_path).unwrap_or_default();
        let line = Locations::of(&src)
            .nearest(&[Step::from("workloads"), workload.into(), "probes".into()])
            .map_or(1, |(l, _)| l);
        Diagnostic::new(
            workloads_path,
            format!(
                "invalid `{workload}`: cannot read the probe prompts {}: {e}",
                path.display()
            ),
        )
        .at(&src, line, None)
        .field(format!("{workload}.probes.path"))
        .expected("a JSONL file of {\"prompt\": ...} lines, relative to the repository root")
    })?;
    l1_engines::probe::ProbeSpec::parse_prompts(&text).map_err(|(line, msg)| {
        Diagnostic::new(
            &path,
            format!("probe prompts of workload `{workload}`: {msg}"),
        )
        .at(&text, line, None)
        .field("prompt")
    })
}

/// Read and parse a workload's JSONL dataset. A missing file is reported at the workload's
/// `dataset.path` line; a bad line at its own line in the dataset file.
fn load_dataset(
    root: &Path,
    workloads_path: &Path,
    workload: &str,
    rel: &str,
) -> Result<Vec<l1_engines::profile::DatasetEntry>, Diagnostic> {
    let path = root.join(rel);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            let src = std::fs::read_to_string(workloads_path).unwrap_or_default();
            let at = ["workloads", workload, "dataset", "path"].map(Step::from);
            let line = Locations::of(&src).nearest(&at).map_or(1, |(l, _)| l);
            return Err(Diagnostic::new(
                workloads_path,
                format!(
                    "invalid `{workload}`: cannot read the dataset {}: {e}",
                    path.display()
                ),
            )
            .at(&src, line, None)
            .field(format!("{workload}.dataset.path"))
            .expected("a JSONL file of {\"prompt\": ..., \"output_tokens\": ...} lines, relative to the repository root"));
        }
    };
    l1_engines::profile::Dataset::parse(&text).map_err(|(line, msg)| {
        let (field, what) = match msg.strip_prefix("field `") {
            Some(rest) => {
                let (f, w) = rest.split_once("`: ").unwrap_or((rest, ""));
                (Some(f.to_string()), w.to_string())
            }
            None => (None, msg.clone()),
        };
        let mut d = Diagnostic::new(&path, format!("dataset of workload `{workload}`: {what}"))
            .at(&text, line, None);
        if let Some(f) = field {
            d = d.field(f);
        }
        d
    })
}
