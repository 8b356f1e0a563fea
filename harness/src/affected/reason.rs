//! Why a target is affected: one variant per kind of change, each with what changed.

use std::fmt;

use serde::Serialize;

/// One reason a target's trials are selected (or removed).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Reason {
    /// The target's spec file is new.
    SpecAdded { path: String },
    /// The target's spec file changed.
    SpecChanged { path: String },
    /// The target's spec file was renamed or moved (and perhaps edited); a new file name is a
    /// new spec name, so its trials are new and the old name's removed.
    SpecRenamed { from: String, to: String },
    /// The target's spec file was deleted (removed trials only).
    SpecRemoved { path: String },
    /// The spec now targets another version of the engine.
    EngineVersionBump {
        engine: String,
        from: String,
        to: String,
        path: String,
    },
    /// A catalog dimension gained a value.
    DimensionValueAdded { dimension: String, value: String },
    /// A catalog dimension lost a value.
    DimensionValueRemoved { dimension: String, value: String },
    /// A catalog value was renamed (one value out, one in, at the same place).
    DimensionValueRenamed {
        dimension: String,
        from: String,
        to: String,
    },
    /// A catalog dimension was added, removed, or its short name changed.
    DimensionChanged { dimension: String, change: String },
    /// A legality or pruning rule was added, removed or changed.
    RuleChanged { rule: String, change: String },
    /// The engine's defaults (its `engine-default` baseline) changed.
    EngineDefaultsChanged {
        engine: String,
        dimensions: Vec<String>,
    },
    /// The catalog's version list of the engine changed.
    EngineVersionsChanged {
        engine: String,
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// What the engine exposes (dimensions or values) changed.
    EngineExposesChanged {
        engine: String,
        dimensions: Vec<String>,
    },
    /// The engine's knobs changed.
    EngineKnobsChanged { engine: String, knobs: Vec<String> },
    /// The model's profile entry changed.
    ModelProfileChanged { model: String },
    /// The hardware profile entry changed.
    HardwareProfileChanged { hardware: String },
    /// The workload entry (or its dataset or probes) changed.
    WorkloadProfileChanged { workload: String },
    /// The catalogs no longer load (or load again).
    CatalogsInvalid { detail: String },
    /// The engine's translator module changed.
    TranslatorChanged { engine: String, paths: Vec<String> },
    /// A change l1 cannot classify: every trial is selected.
    Unclassified { paths: Vec<String> },
    /// The trial's content changed and no listed change explains it (a safety net).
    ContentChanged,
}

impl Reason {
    /// The reason's `kind`, as in the JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SpecAdded { .. } => "spec_added",
            Self::SpecChanged { .. } => "spec_changed",
            Self::SpecRenamed { .. } => "spec_renamed",
            Self::SpecRemoved { .. } => "spec_removed",
            Self::EngineVersionBump { .. } => "engine_version_bump",
            Self::DimensionValueAdded { .. } => "dimension_value_added",
            Self::DimensionValueRemoved { .. } => "dimension_value_removed",
            Self::DimensionValueRenamed { .. } => "dimension_value_renamed",
            Self::DimensionChanged { .. } => "dimension_changed",
            Self::RuleChanged { .. } => "rule_changed",
            Self::EngineDefaultsChanged { .. } => "engine_defaults_changed",
            Self::EngineVersionsChanged { .. } => "engine_versions_changed",
            Self::EngineExposesChanged { .. } => "engine_exposes_changed",
            Self::EngineKnobsChanged { .. } => "engine_knobs_changed",
            Self::ModelProfileChanged { .. } => "model_profile_changed",
            Self::HardwareProfileChanged { .. } => "hardware_profile_changed",
            Self::WorkloadProfileChanged { .. } => "workload_profile_changed",
            Self::CatalogsInvalid { .. } => "catalogs_invalid",
            Self::TranslatorChanged { .. } => "translator_changed",
            Self::Unclassified { .. } => "unclassified",
            Self::ContentChanged => "content_changed",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[String]| v.join(", ");
        match self {
            Self::SpecAdded { path } => write!(f, "spec {path} added"),
            Self::SpecChanged { path } => write!(f, "spec {path} changed"),
            Self::SpecRenamed { from, to } => write!(f, "spec {from} renamed to {to}"),
            Self::SpecRemoved { path } => write!(f, "spec {path} removed"),
            Self::EngineVersionBump {
                engine,
                from,
                to,
                path,
            } => write!(
                f,
                "engine version bump {engine}@{from} -> {engine}@{to} in {path}"
            ),
            Self::DimensionValueAdded { dimension, value } => {
                write!(
                    f,
                    "catalog: value `{value}` added to dimension `{dimension}`"
                )
            }
            Self::DimensionValueRemoved { dimension, value } => {
                write!(
                    f,
                    "catalog: value `{value}` removed from dimension `{dimension}`"
                )
            }
            Self::DimensionValueRenamed {
                dimension,
                from,
                to,
            } => write!(
                f,
                "catalog: value `{from}` of dimension `{dimension}` renamed to `{to}`"
            ),
            Self::DimensionChanged { dimension, change } => {
                write!(f, "catalog: dimension `{dimension}` {change}")
            }
            Self::RuleChanged { rule, change } => write!(f, "catalog: rule `{rule}` {change}"),
            Self::EngineDefaultsChanged { engine, dimensions } => write!(
                f,
                "catalog: engine `{engine}` defaults changed ({})",
                list(dimensions)
            ),
            Self::EngineVersionsChanged {
                engine,
                added,
                removed,
            } => {
                write!(f, "catalog: engine `{engine}` versions changed")?;
                if !added.is_empty() {
                    write!(f, " (added {})", list(added))?;
                }
                if !removed.is_empty() {
                    write!(f, " (removed {})", list(removed))?;
                }
                Ok(())
            }
            Self::EngineExposesChanged { engine, dimensions } => write!(
                f,
                "catalog: what engine `{engine}` exposes changed ({})",
                list(dimensions)
            ),
            Self::EngineKnobsChanged { engine, knobs } => write!(
                f,
                "catalog: engine `{engine}` knobs changed ({})",
                list(knobs)
            ),
            Self::ModelProfileChanged { model } => write!(f, "model profile `{model}` changed"),
            Self::HardwareProfileChanged { hardware } => {
                write!(f, "hardware profile `{hardware}` changed")
            }
            Self::WorkloadProfileChanged { workload } => {
                write!(f, "workload `{workload}` changed")
            }
            Self::CatalogsInvalid { detail } => write!(f, "catalogs: {detail}"),
            Self::TranslatorChanged { engine, paths } => write!(
                f,
                "translator of engine `{engine}` changed ({})",
                list(paths)
            ),
            Self::Unclassified { paths } => write!(
                f,
                "unclassified change selects every trial ({})",
                list(paths)
            ),
            Self::ContentChanged => f.write_str("trial content changed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_is_the_json_tag() {
        let s = |v: &str| vec![v.to_string()];
        for r in [
            Reason::SpecAdded { path: "p".into() },
            Reason::SpecRenamed {
                from: "a".into(),
                to: "b".into(),
            },
            Reason::EngineVersionBump {
                engine: "e".into(),
                from: "1".into(),
                to: "2".into(),
                path: "p".into(),
            },
            Reason::EngineKnobsChanged {
                engine: "e".into(),
                knobs: s("k"),
            },
            Reason::WorkloadProfileChanged {
                workload: "w".into(),
            },
            Reason::Unclassified { paths: s("x") },
            Reason::ContentChanged,
        ] {
            let json = serde_json::to_value(&r).unwrap_or_default();
            assert_eq!(json["kind"], r.kind(), "{r:?}");
        }
    }
}
