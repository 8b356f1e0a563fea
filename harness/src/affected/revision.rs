//! One revision in full: its catalogs and every spec, rendered with a fixed context and expanded
//! into the trials the `kernels` target would list, each with its fingerprint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use l1_engines::DeviceKind;

use super::fingerprint;
use crate::detect::Detected;
use crate::expand::{self, Expanded, TargetId};
use crate::profiles::Catalogs;
use crate::render::RenderContext;
use crate::spec::{self, LoadedSpec};
use crate::suite::combo_slug;

/// What spec templates see while l1 decides what a change affects: the same for both
/// revisions and on every machine.
#[derive(Clone, Debug, Default)]
pub struct FixedContext {
    /// The hardware profiles templates see as detected (`None`: the CPU profiles of the
    /// revision's hardware catalog, what a machine without a GPU detects).
    pub hardware: Option<Vec<String>>,
    /// `L1_*` variables templates see.
    pub env: BTreeMap<String, String>,
}

/// A target of a revision (trials share it by their name's prefix).
#[derive(Clone, Debug)]
pub struct TargetInfo {
    /// The spec's name (`invalid::…` targets: the file stem).
    pub spec: String,
    /// The spec file, relative to the revision's root (`catalogs/` for a catalog error).
    pub path: String,
    /// `None` for an `invalid::` trial (a spec or catalog that does not load).
    pub id: Option<TargetId>,
}

/// One trial of a revision.
#[derive(Clone, Debug)]
pub struct TrialInfo {
    /// Its target's key (the name without the leaf).
    pub target: String,
    pub fingerprint: String,
}

/// Every trial of one revision.
#[derive(Debug, Default)]
pub struct Revision {
    /// `None` when the catalogs do not load.
    pub catalogs: Option<Catalogs>,
    pub targets: BTreeMap<String, TargetInfo>,
    pub trials: BTreeMap<String, TrialInfo>,
}

impl Revision {
    /// The engine of target `key`, if it has one.
    pub fn engine_of(&self, key: &str) -> Option<&str> {
        self.targets
            .get(key)
            .and_then(|t| t.id.as_ref())
            .map(|id| id.engine.as_str())
    }

    fn invalid(&mut self, name: String, path: String, message: &str, root: &Path) {
        // Diagnostics name the scratch directory the revision was exported to: drop it.
        let message = message.replace(&format!("{}/", root.display()), "");
        self.targets.insert(
            name.clone(),
            TargetInfo {
                spec: name.trim_start_matches("invalid::").to_string(),
                path,
                id: None,
            },
        );
        self.trials.insert(
            name.clone(),
            TrialInfo {
                target: name,
                fingerprint: fingerprint::digest(&message),
            },
        );
    }
}

/// Expand the revision exported to `root` (its `catalogs/` and `specs/`).
pub fn expand_revision(root: &Path, fixed: &FixedContext) -> Revision {
    let mut rev = Revision::default();
    let cats = match Catalogs::load(root) {
        Ok(c) => c,
        Err(d) => {
            rev.invalid(
                "invalid::catalogs".into(),
                "catalogs/".into(),
                &d.to_string(),
                root,
            );
            return rev;
        }
    };
    let specs_dir = root.join("specs");
    let files: Vec<PathBuf> = if specs_dir.is_dir() {
        match spec::discover(&specs_dir) {
            Ok(f) => f,
            Err(d) => {
                rev.invalid(
                    "invalid::specs".into(),
                    "specs/".into(),
                    &d.to_string(),
                    root,
                );
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let ctx = context(&cats, fixed);
    let probes = fingerprint::default_probes(&cats);
    for file in files {
        let rel = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        let stem = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let invalid = format!("invalid::{}", stem.split('.').next().unwrap_or(&stem));
        let loaded = spec::load(&file, &ctx).and_then(|ls| {
            let ex = expand::expand(&ls, &cats)?;
            Ok((ls, ex))
        });
        match loaded {
            Ok((ls, ex)) => add_spec(&mut rev, &cats, &ls, &ex, &rel, &probes),
            Err(d) => rev.invalid(invalid, rel, &d.to_string(), root),
        }
    }
    rev.catalogs = Some(cats);
    rev
}

/// The render context of [`FixedContext`].
fn context(cats: &Catalogs, fixed: &FixedContext) -> RenderContext {
    let profiles = fixed.hardware.clone().unwrap_or_else(|| {
        cats.hardware
            .iter()
            .filter(|(_, p)| p.device == DeviceKind::Cpu)
            .map(|(n, _)| n.clone())
            .collect()
    });
    let detected = Detected {
        gpus: Vec::new(),
        profiles,
        cpu_model: "cpu".into(),
        cpu_cores: 1,
    };
    RenderContext {
        env: fixed.env.clone(),
        ..crate::suite::render_context(cats, &detected)
    }
}

/// The spec's settings that judge rather than select: the rendered document without its name,
/// description, targets and space (a generic tree, so it follows the spec format as it grows).
fn judging_settings(ls: &LoadedSpec) -> String {
    match serde_saphyr::from_str::<serde_json::Value>(&ls.rendered.text) {
        Ok(serde_json::Value::Object(mut m)) => {
            for k in ["name", "description", "targets", "space"] {
                m.remove(k);
            }
            serde_json::Value::Object(m).to_string()
        }
        _ => ls.rendered.text.clone(),
    }
}

/// The `kernels` target's class of a target: `sim`, `cpu` or `gpu`.
fn class(cats: &Catalogs, id: &TargetId) -> &'static str {
    let device = cats.hardware.get(&id.hardware).map(|h| h.device);
    match (
        l1_engines::registry::engine(&id.engine).map(|e| e.needs_device()),
        device,
    ) {
        (Some(true), Some(DeviceKind::Cpu)) => "cpu",
        (Some(true), Some(DeviceKind::Gpu)) => "gpu",
        _ => "sim",
    }
}

fn add_spec(
    rev: &mut Revision,
    cats: &Catalogs,
    ls: &LoadedSpec,
    ex: &Expanded,
    rel: &str,
    default_probes: &str,
) {
    let spec_name = ex.spec.as_str();
    let measure = serde_json::to_string(&ex.typed.measure).unwrap_or_default();
    let settings = judging_settings(ls);
    let tune = crate::tuning::TuneSpec::from_spec(&ex.typed).is_some();
    for t in &ex.targets {
        let key = format!("{}::{spec_name}::{}", class(cats, &t.id), t.id);
        let part = fingerprint::target_part(cats, &t.id, &measure, default_probes);
        let mut members = Vec::with_capacity(t.combos().len() + 1);
        let add = |rev: &mut Revision, name: String, fp: String| {
            rev.trials.insert(
                name,
                TrialInfo {
                    target: key.clone(),
                    fingerprint: fp,
                },
            );
        };
        for c in t.combos() {
            let fp = fingerprint::combo(&part, c, "combo");
            members.push(fp.clone());
            if !tune {
                add(rev, format!("{key}::{}", combo_slug(cats, c)), fp);
            }
        }
        let baseline = fingerprint::combo(&part, &t.baseline, "baseline");
        members.push(baseline.clone());
        if tune {
            let fp = fingerprint::judge(&part, "tune", &settings, &members);
            add(rev, format!("{key}::tune"), fp);
        } else {
            add(rev, format!("{key}::baseline"), baseline);
            let fp = fingerprint::judge(&part, "gate", &settings, &members);
            add(rev, format!("{key}::gate"), fp);
        }
        rev.targets.insert(
            key.clone(),
            TargetInfo {
                spec: spec_name.to_string(),
                path: rel.to_string(),
                id: Some(t.id.clone()),
            },
        );
    }
}
