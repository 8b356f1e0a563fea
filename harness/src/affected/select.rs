//! The comparison: both revisions' trials side by side, the trials a change selects (new, or
//! content changed, or every trial of an engine whose translator changed, or everything for an
//! unclassifiable change), the trials it removes, and the reasons per target.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::budget::Budget;
use super::changes::{CatalogChange, catalog_changes};
use super::classify::PathKind;
use super::git::PathChange;
use super::reason::Reason;
use super::revision::{Revision, TargetInfo};

/// A changed path and its kind.
#[derive(Clone, Debug, Serialize)]
pub struct ChangedPath {
    #[serde(flatten)]
    pub change: PathChange,
    pub class: PathKind,
}

/// Why a selected trial is selected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialStatus {
    /// Not at the base revision.
    New,
    /// Its fingerprint differs from the base revision's.
    Changed,
    /// Unchanged data, but its engine's translator (or something unclassifiable) changed.
    Code,
}

/// One affected target of the head revision.
#[derive(Clone, Debug, Serialize)]
pub struct AffectedTarget {
    /// The trials' common name prefix (`<class>::<spec>::<target>`, or an `invalid::` name).
    pub target: String,
    pub spec: String,
    /// The spec file (relative to the root).
    pub path: String,
    pub reasons: Vec<Reason>,
    /// Every trial of the target at the head revision is selected.
    pub whole: bool,
    /// The selected trials with why each is.
    pub trials: BTreeMap<String, TrialStatus>,
}

/// A target of the base revision some of whose trials are gone.
#[derive(Clone, Debug, Serialize)]
pub struct RemovedTarget {
    pub target: String,
    pub spec: String,
    pub path: String,
    pub reasons: Vec<Reason>,
    pub trials: Vec<String>,
}

/// The answer of `l1 affected`.
#[derive(Clone, Debug, Serialize)]
pub struct Selection {
    pub base: String,
    pub head: String,
    pub changed_paths: Vec<ChangedPath>,
    /// An unclassifiable change selected every trial.
    pub everything: bool,
    /// Trials at the head revision (`None` when only documentation changed: nothing expanded).
    pub head_trials: Option<usize>,
    pub targets: Vec<AffectedTarget>,
    pub removed: Vec<RemovedTarget>,
    /// The budget's decision (`--max-trials`); `None`: no cap, every affected target runs.
    pub budget: Option<Budget>,
}

impl Selection {
    /// Every selected trial, sorted.
    pub fn trials(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .targets
            .iter()
            .flat_map(|t| t.trials.keys().map(String::as_str))
            .collect();
        v.sort_unstable();
        v
    }
}

/// Compare the two expanded revisions under the classified path changes.
pub fn select(
    base_rev: String,
    head_rev: String,
    changed_paths: Vec<ChangedPath>,
    revs: Option<(&Revision, &Revision)>,
) -> Selection {
    let unclassified: Vec<String> = changed_paths
        .iter()
        .filter(|c| c.class == PathKind::Unclassified)
        .flat_map(|c| c.change.paths().map(str::to_string))
        .collect();
    let mut translators: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &changed_paths {
        if let PathKind::Translator { engine } = &c.class {
            translators
                .entry(engine.clone())
                .or_default()
                .extend(c.change.paths().map(str::to_string));
        }
    }
    let everything = !unclassified.is_empty();
    let Some((base, head)) = revs else {
        return Selection {
            base: base_rev,
            head: head_rev,
            changed_paths,
            everything,
            head_trials: None,
            targets: Vec::new(),
            removed: Vec::new(),
            budget: None,
        };
    };
    let catalog = match (&base.catalogs, &head.catalogs) {
        (Some(a), Some(b)) => catalog_changes(a, b),
        _ => Vec::new(),
    };
    let ctx = Explain {
        base,
        head,
        paths: &changed_paths,
        catalog: &catalog,
        translators: &translators,
        unclassified: &unclassified,
    };
    // Selected trials grouped by target.
    let mut by_target: BTreeMap<&str, BTreeMap<String, TrialStatus>> = BTreeMap::new();
    let mut per_target: BTreeMap<&str, usize> = BTreeMap::new();
    for (name, t) in &head.trials {
        *per_target.entry(t.target.as_str()).or_default() += 1;
        let status = match base.trials.get(name) {
            None => Some(TrialStatus::New),
            Some(b) if b.fingerprint != t.fingerprint => Some(TrialStatus::Changed),
            Some(_) => {
                let code = everything
                    || head
                        .engine_of(&t.target)
                        .is_some_and(|e| translators.contains_key(e));
                code.then_some(TrialStatus::Code)
            }
        };
        if let Some(s) = status {
            by_target
                .entry(t.target.as_str())
                .or_default()
                .insert(name.clone(), s);
        }
    }
    let targets = by_target
        .into_iter()
        .map(|(key, trials)| {
            let info = &head.targets[key];
            AffectedTarget {
                target: key.to_string(),
                spec: info.spec.clone(),
                path: info.path.clone(),
                reasons: ctx.reasons(key, info, Side::Head),
                whole: per_target.get(key) == Some(&trials.len()),
                trials,
            }
        })
        .collect();
    let mut removed_by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, t) in &base.trials {
        if !head.trials.contains_key(name) {
            removed_by
                .entry(t.target.as_str())
                .or_default()
                .push(name.clone());
        }
    }
    let removed = removed_by
        .into_iter()
        .map(|(key, trials)| {
            let info = &base.targets[key];
            RemovedTarget {
                target: key.to_string(),
                spec: info.spec.clone(),
                path: info.path.clone(),
                reasons: ctx.reasons(key, info, Side::Base),
                trials,
            }
        })
        .collect();
    Selection {
        base: base_rev,
        head: head_rev,
        changed_paths,
        everything,
        head_trials: Some(head.trials.len()),
        targets,
        removed,
        budget: None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Base,
    Head,
}

/// What explains a target's change.
struct Explain<'a> {
    base: &'a Revision,
    head: &'a Revision,
    paths: &'a [ChangedPath],
    catalog: &'a [CatalogChange],
    translators: &'a BTreeMap<String, Vec<String>>,
    unclassified: &'a [String],
}

impl Explain<'_> {
    fn reasons(&self, key: &str, info: &TargetInfo, side: Side) -> Vec<Reason> {
        let mut out = BTreeSet::new();
        // The spec file itself.
        for c in self.paths {
            let c = &c.change;
            if c.path == info.path || c.old.as_deref() == Some(info.path.as_str()) {
                let path = info.path.clone();
                out.insert(match (c.status, &c.old) {
                    ('A', _) => Reason::SpecAdded { path },
                    ('D', _) => Reason::SpecRemoved { path },
                    ('R', Some(old)) => Reason::SpecRenamed {
                        from: old.clone(),
                        to: c.path.clone(),
                    },
                    _ => Reason::SpecChanged { path },
                });
            }
        }
        if let Some(bump) = self.version_bump(key, info, side) {
            out.insert(bump);
        }
        let (base_cats, head_cats) = (self.base.catalogs.as_ref(), self.head.catalogs.as_ref());
        match &info.id {
            Some(id) => {
                for c in self.catalog {
                    if c.explains(id, base_cats, head_cats) {
                        out.insert(c.reason.clone());
                    }
                }
                if let Some(paths) = self.translators.get(&id.engine) {
                    out.insert(Reason::TranslatorChanged {
                        engine: id.engine.clone(),
                        paths: paths.clone(),
                    });
                }
            }
            None if info.path.starts_with("catalogs") => {
                out.insert(Reason::CatalogsInvalid {
                    detail: if side == Side::Head {
                        "the catalogs do not load at the head revision".into()
                    } else {
                        "the catalogs load again".into()
                    },
                });
            }
            None => {}
        }
        if !self.unclassified.is_empty() {
            out.insert(Reason::Unclassified {
                paths: self.unclassified.to_vec(),
            });
        }
        if out.is_empty() {
            out.insert(Reason::ContentChanged);
        }
        out.into_iter().collect()
    }

    /// A target new at the head (or gone from the base) whose spec targets the same model,
    /// hardware and workload with another version of the same engine on the other side.
    fn version_bump(&self, key: &str, info: &TargetInfo, side: Side) -> Option<Reason> {
        let id = info.id.as_ref()?;
        let (this, other) = match side {
            Side::Head => (self.head, self.base),
            Side::Base => (self.base, self.head),
        };
        if other.targets.contains_key(key) {
            return None;
        }
        // The partner is gone from this side (a bump, not a second version added).
        let partner = other.targets.iter().find_map(|(k, t)| {
            let o = t.id.as_ref()?;
            (!this.targets.contains_key(k)
                && t.spec == info.spec
                && o.engine == id.engine
                && o.version != id.version
                && o.model == id.model
                && o.hardware == id.hardware
                && o.workload == id.workload)
                .then_some(o)
        })?;
        let (from, to) = match side {
            Side::Head => (partner.version.clone(), id.version.clone()),
            Side::Base => (id.version.clone(), partner.version.clone()),
        };
        Some(Reason::EngineVersionBump {
            engine: id.engine.clone(),
            from,
            to,
            path: info.path.clone(),
        })
    }
}
