//! What changed between two revisions' catalogs, as reasons each scoped to the targets it can
//! explain (an engine, a profile entry, a dimension, or all).

use std::collections::{BTreeMap, BTreeSet};

use super::fingerprint;
use super::reason::Reason;
use crate::catalog::Catalog;
use crate::expand::TargetId;
use crate::profiles::Catalogs;

/// Which targets a catalog change can explain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Targets of these engines (empty: every engine).
    Engines(Vec<String>),
    /// Targets whose engine exposes the dimension (in either revision).
    Dimension(String),
    Model(String),
    Hardware(String),
    Workload(String),
}

/// One change of the catalogs.
#[derive(Clone, Debug)]
pub struct CatalogChange {
    pub reason: Reason,
    pub scope: Scope,
}

impl CatalogChange {
    /// Whether the change can explain a change of target `id`'s trials.
    pub fn explains(
        &self,
        id: &TargetId,
        base: Option<&Catalogs>,
        head: Option<&Catalogs>,
    ) -> bool {
        match &self.scope {
            Scope::Engines(e) => e.is_empty() || e.contains(&id.engine),
            Scope::Dimension(d) => [base, head].into_iter().flatten().any(|c| {
                c.kernels
                    .catalog
                    .engines
                    .get(&id.engine)
                    .is_some_and(|e| e.exposes.contains_key(d))
            }),
            Scope::Model(m) => *m == id.model,
            Scope::Hardware(h) => *h == id.hardware,
            Scope::Workload(w) => *w == id.workload,
        }
    }
}

/// Every change between the catalogs of `base` and `head` (both loaded).
pub fn catalog_changes(base: &Catalogs, head: &Catalogs) -> Vec<CatalogChange> {
    let mut out = kernel_changes(&base.kernels.catalog, &head.kernels.catalog);
    profile_changes(&base.models, &head.models, &mut out, |m| {
        (
            Reason::ModelProfileChanged { model: m.clone() },
            Scope::Model(m),
        )
    });
    profile_changes(&base.hardware, &head.hardware, &mut out, |h| {
        (
            Reason::HardwareProfileChanged {
                hardware: h.clone(),
            },
            Scope::Hardware(h),
        )
    });
    let workload_change = |w: String| {
        (
            Reason::WorkloadProfileChanged {
                workload: w.clone(),
            },
            Scope::Workload(w),
        )
    };
    profile_changes(&base.workloads, &head.workloads, &mut out, workload_change);
    // The bundled default probe prompts changed: every workload that uses them changed.
    if fingerprint::default_probes(base) != fingerprint::default_probes(head) {
        let users: BTreeSet<&String> = [base, head]
            .into_iter()
            .flat_map(|c| &c.workloads)
            .filter(|(_, w)| fingerprint::uses_default_probes(w))
            .map(|(name, _)| name)
            .collect();
        for name in users {
            let (reason, scope) = workload_change(name.clone());
            if !out.iter().any(|c| c.reason == reason) {
                out.push(CatalogChange { reason, scope });
            }
        }
    }
    out
}

fn profile_changes<T: std::fmt::Debug>(
    base: &BTreeMap<String, T>,
    head: &BTreeMap<String, T>,
    out: &mut Vec<CatalogChange>,
    make: impl Fn(String) -> (Reason, Scope),
) {
    let names: BTreeSet<&String> = base.keys().chain(head.keys()).collect();
    for name in names {
        let a = base.get(name).map(|p| format!("{p:?}"));
        let b = head.get(name).map(|p| format!("{p:?}"));
        if a != b {
            let (reason, scope) = make(name.clone());
            out.push(CatalogChange { reason, scope });
        }
    }
}

fn changed_keys<V: PartialEq>(a: &BTreeMap<String, V>, b: &BTreeMap<String, V>) -> Vec<String> {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

/// The changes of `catalogs/kernels.yaml`: dimensions and their values, rules, engines.
pub fn kernel_changes(base: &Catalog, head: &Catalog) -> Vec<CatalogChange> {
    let mut out = Vec::new();
    let dims: BTreeSet<&String> = base
        .dimensions
        .keys()
        .chain(head.dimensions.keys())
        .collect();
    for dim in dims {
        let scope = || Scope::Dimension(dim.clone());
        let (a, b) = match (base.dimensions.get(dim), head.dimensions.get(dim)) {
            (Some(a), Some(b)) => (a, b),
            (a, _) => {
                out.push(CatalogChange {
                    reason: Reason::DimensionChanged {
                        dimension: dim.clone(),
                        change: if a.is_some() { "removed" } else { "added" }.into(),
                    },
                    scope: Scope::Engines(Vec::new()),
                });
                continue;
            }
        };
        if a.short != b.short {
            out.push(CatalogChange {
                reason: Reason::DimensionChanged {
                    dimension: dim.clone(),
                    change: format!("short name `{}` -> `{}`", a.short, b.short),
                },
                scope: scope(),
            });
        }
        let removed: Vec<(usize, &String)> = a
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| !b.values.contains(v))
            .collect();
        let added: Vec<(usize, &String)> = b
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| !a.values.contains(v))
            .collect();
        // One value out and one in at the same place reads as a rename.
        if let ([(i, from)], [(j, to)]) = (removed.as_slice(), added.as_slice())
            && i == j
        {
            out.push(CatalogChange {
                reason: Reason::DimensionValueRenamed {
                    dimension: dim.clone(),
                    from: (*from).clone(),
                    to: (*to).clone(),
                },
                scope: scope(),
            });
            continue;
        }
        for (_, v) in removed {
            out.push(CatalogChange {
                reason: Reason::DimensionValueRemoved {
                    dimension: dim.clone(),
                    value: v.clone(),
                },
                scope: scope(),
            });
        }
        for (_, v) in added {
            out.push(CatalogChange {
                reason: Reason::DimensionValueAdded {
                    dimension: dim.clone(),
                    value: v.clone(),
                },
                scope: scope(),
            });
        }
    }
    let rules_a: BTreeMap<&String, &crate::catalog::Rule> =
        base.rules.iter().map(|r| (&r.id, r)).collect();
    let rules_b: BTreeMap<&String, &crate::catalog::Rule> =
        head.rules.iter().map(|r| (&r.id, r)).collect();
    let ids: BTreeSet<&&String> = rules_a.keys().chain(rules_b.keys()).collect();
    for id in ids {
        let (a, b) = (rules_a.get(*id), rules_b.get(*id));
        let change = match (a, b) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(_), Some(_)) => "changed",
            (Some(_), None) => "removed",
            _ => "added",
        };
        // A rule about some engines explains their targets (either revision's list); a rule
        // about every engine explains every target.
        let mut engines = Vec::new();
        let mut all = false;
        for r in [a, b].into_iter().flatten() {
            match &r.engines {
                Some(e) => engines.extend(e.iter().cloned()),
                None => all = true,
            }
        }
        engines.sort();
        engines.dedup();
        if all {
            engines.clear();
        }
        out.push(CatalogChange {
            reason: Reason::RuleChanged {
                rule: (*id).clone(),
                change: change.into(),
            },
            scope: Scope::Engines(engines),
        });
    }
    let engines: BTreeSet<&String> = base.engines.keys().chain(head.engines.keys()).collect();
    for engine in engines {
        let scope = || Scope::Engines(vec![engine.clone()]);
        let (Some(a), Some(b)) = (base.engines.get(engine), head.engines.get(engine)) else {
            out.push(CatalogChange {
                reason: Reason::EngineExposesChanged {
                    engine: engine.clone(),
                    dimensions: vec![if base.engines.contains_key(engine) {
                        "engine removed".into()
                    } else {
                        "engine added".into()
                    }],
                },
                scope: scope(),
            });
            continue;
        };
        if a.versions != b.versions {
            out.push(CatalogChange {
                reason: Reason::EngineVersionsChanged {
                    engine: engine.clone(),
                    added: b
                        .versions
                        .iter()
                        .filter(|v| !a.versions.contains(v))
                        .cloned()
                        .collect(),
                    removed: a
                        .versions
                        .iter()
                        .filter(|v| !b.versions.contains(v))
                        .cloned()
                        .collect(),
                },
                scope: scope(),
            });
        }
        let defaults = changed_keys(&a.defaults, &b.defaults);
        if !defaults.is_empty() {
            out.push(CatalogChange {
                reason: Reason::EngineDefaultsChanged {
                    engine: engine.clone(),
                    dimensions: defaults,
                },
                scope: scope(),
            });
        }
        let exposes = changed_keys(&a.exposes, &b.exposes);
        if !exposes.is_empty() {
            out.push(CatalogChange {
                reason: Reason::EngineExposesChanged {
                    engine: engine.clone(),
                    dimensions: exposes,
                },
                scope: scope(),
            });
        }
        let knobs = changed_keys(&a.knobs, &b.knobs);
        if !knobs.is_empty() {
            out.push(CatalogChange {
                reason: Reason::EngineKnobsChanged {
                    engine: engine.clone(),
                    knobs,
                },
                scope: scope(),
            });
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalogs/kernels.yaml");
        let text = std::fs::read_to_string(&path).unwrap();
        crate::catalog::LoadedCatalog::from_text(&path, &text)
            .unwrap()
            .catalog
    }

    fn reasons(a: &Catalog, b: &Catalog) -> Vec<Reason> {
        kernel_changes(a, b).into_iter().map(|c| c.reason).collect()
    }

    #[test]
    fn a_value_out_and_one_in_at_the_same_place_is_a_rename() {
        let a = catalog();
        let mut b = a.clone();
        let values = &mut b.dimensions.get_mut("kv_layout").unwrap().values;
        values[1] = "paged_v2".into();
        assert_eq!(
            reasons(&a, &b),
            [Reason::DimensionValueRenamed {
                dimension: "kv_layout".into(),
                from: "paged".into(),
                to: "paged_v2".into(),
            }]
        );
        // Elsewhere: one removed, one added.
        let values = &mut b.dimensions.get_mut("kv_layout").unwrap().values;
        values.remove(1);
        values.push("paged_v2".into());
        let r = reasons(&a, &b);
        assert!(r.contains(&Reason::DimensionValueRemoved {
            dimension: "kv_layout".into(),
            value: "paged".into()
        }));
        assert!(r.contains(&Reason::DimensionValueAdded {
            dimension: "kv_layout".into(),
            value: "paged_v2".into()
        }));
    }

    #[test]
    fn rules_and_engine_entries_are_scoped_to_their_engines() {
        let a = catalog();
        let mut b = a.clone();
        let rule = b.rules.iter_mut().find(|r| r.engines.is_some()).unwrap();
        let mut engines = rule.engines.clone().unwrap();
        engines.sort();
        rule.reason.push_str(" (edited)");
        let global = b.rules.iter_mut().find(|r| r.engines.is_none()).unwrap();
        global.when.values_mut().next().unwrap().push("fp16".into());
        b.engines
            .get_mut("vllm")
            .unwrap()
            .versions
            .push("9.9".into());
        let changes = kernel_changes(&a, &b);
        let scoped: Vec<&Scope> = changes.iter().map(|c| &c.scope).collect();
        assert!(scoped.contains(&&Scope::Engines(engines)), "{changes:?}");
        assert!(scoped.contains(&&Scope::Engines(Vec::new())), "{changes:?}");
        assert!(changes.iter().any(|c| c.reason
            == Reason::EngineVersionsChanged {
                engine: "vllm".into(),
                added: vec!["9.9".into()],
                removed: vec![],
            }
            && c.scope == Scope::Engines(vec!["vllm".into()])));
        assert!(kernel_changes(&a, &a).is_empty());
    }
}
