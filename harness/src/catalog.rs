//! The kernel catalog (`catalogs/kernels.yaml`): dimensions and values, legality predicates and
//! pruning rules, what each engine exposes, and the snapshot id (version + content hash).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use l1_engines::profile::parse_capability;
use l1_engines::version::Version;
use l1_engines::{Combo, DeviceKind, HardwareProfile};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::diag::{Diagnostic, find_key_line, find_token};
use crate::selection::Selection;
use crate::yaml;

/// One dimension.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dimension {
    /// Short key used in test names (`attn`).
    pub short: String,
    pub doc: String,
    pub values: Vec<String>,
}

/// Whether a rule states a capability limit or prunes a known-bad combination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Legality,
    Pruning,
}

/// An inclusive compute-capability range, "major.minor".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapabilityRange {
    #[serde(default)]
    pub min: Option<String>,
    #[serde(default)]
    pub max: Option<String>,
}

/// What the declared hardware (and engine version) must offer for a matching combo to be legal.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirement {
    #[serde(default)]
    pub device: Option<DeviceKind>,
    #[serde(default)]
    pub compute_capability: Option<CapabilityRange>,
    /// Engine versions (inclusive) the combination works with.
    #[serde(default)]
    pub engine_version: Option<VersionRange>,
}

/// An inclusive engine version range, compared numerically by prefix (`l1_engines::version`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionRange {
    #[serde(default)]
    pub min: Option<String>,
    #[serde(default)]
    pub max: Option<String>,
}

/// A legality predicate or pruning rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub id: String,
    pub kind: RuleKind,
    /// Engines the rule is about; all engines when absent.
    #[serde(default)]
    pub engines: Option<Vec<String>>,
    /// Dimension -> values: the rule matches a combo that takes one of the values in every dimension.
    pub when: BTreeMap<String, Vec<String>>,
    /// Absent: a matching combo is always rejected.
    #[serde(default)]
    pub requires: Option<Requirement>,
    pub reason: String,
    pub source: String,
}

/// An engine-specific knob.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Knob {
    pub values: Vec<String>,
    pub default: String,
}

/// What one engine exposes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineEntry {
    pub versions: Vec<String>,
    /// Dimension -> the values the engine offers (`all` = every catalog value).
    pub exposes: BTreeMap<String, Selection>,
    /// The engine's own defaults for the dimensions it exposes.
    pub defaults: BTreeMap<String, String>,
    #[serde(default)]
    pub knobs: BTreeMap<String, Knob>,
}

/// The catalog as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    pub version: u32,
    pub dimensions: BTreeMap<String, Dimension>,
    pub rules: Vec<Rule>,
    pub engines: BTreeMap<String, EngineEntry>,
}

/// Why a combo is not run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The rule id (or `engine-exposure` when the engine does not offer the value).
    pub rule: String,
    pub reason: String,
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rule `{}`: {}", self.rule, self.reason)
    }
}

/// A loaded, validated catalog with its snapshot id.
#[derive(Clone, Debug)]
pub struct LoadedCatalog {
    pub catalog: Catalog,
    pub path: PathBuf,
    /// `v<version>-<first 12 hex of the content hash>`.
    pub snapshot: String,
    pub content_hash: String,
}

/// The canonical content hash: SHA-256 over the parsed catalog serialized as JSON, so comments
/// and formatting do not change it but any value does.
pub fn content_hash(catalog: &Catalog) -> String {
    let json = serde_json::to_string(catalog).unwrap_or_default();
    hex(&Sha256::digest(json.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Where the recorded snapshot of a catalog version lives.
pub fn snapshot_path(catalog_path: &Path, version: u32) -> PathBuf {
    catalog_path
        .parent()
        .unwrap_or(Path::new("."))
        .join("snapshots")
        .join(format!("kernels-v{version}.yaml"))
}

impl LoadedCatalog {
    /// Load, validate and check the snapshot of `catalogs/kernels.yaml`.
    pub fn load(path: &Path) -> Result<Self, Diagnostic> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            let d = Diagnostic::new(path, format!("failed to read the catalog: {e}"));
            if e.kind() == std::io::ErrorKind::NotFound {
                d.expected("the repository root (the directory holding catalogs/ and specs/)")
                    .help("set L1_ROOT=DIR (or `l1 --root DIR`) to the repository root")
            } else {
                d
            }
        })?;
        let loaded = Self::from_text(path, &text)?;
        loaded.check_snapshot(&text)?;
        Ok(loaded)
    }

    /// Parse and validate catalog text (no snapshot check).
    pub fn from_text(path: &Path, text: &str) -> Result<Self, Diagnostic> {
        let catalog: Catalog = yaml::parse(path, text, None)?;
        validate(&catalog, path, text)?;
        let content_hash = content_hash(&catalog);
        let snapshot = format!("v{}-{}", catalog.version, &content_hash[..12]);
        Ok(Self {
            catalog,
            path: path.to_path_buf(),
            snapshot,
            content_hash,
        })
    }

    /// Changing the catalog's content without bumping its version is an error: the recorded
    /// snapshot of this version must have the same content hash.
    fn check_snapshot(&self, text: &str) -> Result<(), Diagnostic> {
        let snap = snapshot_path(&self.path, self.catalog.version);
        let line = find_key_line(text, "version", 1).unwrap_or(1);
        let Ok(recorded_text) = std::fs::read_to_string(&snap) else {
            return Err(Diagnostic::new(
                &self.path,
                format!("catalog version {} has no recorded snapshot ({})", self.catalog.version, snap.display()),
            )
            .at(text, line, None)
            .field("version")
            .expected("a recorded snapshot: run `cargo run --release --bin l1 -- catalog snapshot` after bumping `version`"));
        };
        let recorded = Self::from_text(&snap, &recorded_text)?;
        if recorded.content_hash != self.content_hash {
            return Err(Diagnostic::new(
                &self.path,
                format!(
                    "catalog content changed but `version` is still {} (recorded snapshot {} has hash {}, the catalog now hashes to {})",
                    self.catalog.version,
                    snap.display(),
                    &recorded.content_hash[..12],
                    &self.content_hash[..12]
                ),
            )
            .at(text, line, None)
            .field("version")
            .expected(format!(
                "version {} (a bump), then `l1 catalog snapshot` to record it",
                self.catalog.version + 1
            )));
        }
        Ok(())
    }

    /// The short name of a dimension (`attn`), or the dimension itself.
    pub fn short(&self, dim: &str) -> String {
        self.catalog
            .dimensions
            .get(dim)
            .map(|d| d.short.clone())
            .unwrap_or_else(|| dim.to_string())
    }

    /// The values an engine offers for a dimension; `None` when it does not expose it (`unset`).
    pub fn engine_values(&self, engine: &str, dim: &str) -> Option<Vec<String>> {
        let entry = self.catalog.engines.get(engine)?;
        let sel = entry.exposes.get(dim)?;
        let all = &self.catalog.dimensions.get(dim)?.values;
        Some(match sel {
            Selection::All => all.clone(),
            Selection::Values(v) => v.clone(),
        })
    }

    /// Check a combo against engine exposure and every rule, for the declared hardware.
    /// Returns every rejection (empty = legal).
    pub fn check(
        &self,
        engine: &str,
        version: &str,
        hw: &HardwareProfile,
        combo: &Combo,
    ) -> Vec<Rejection> {
        let mut out = Vec::new();
        for (dim, value) in &combo.dims {
            if value == l1_engines::combo::UNSET {
                continue;
            }
            match self.engine_values(engine, dim) {
                None => out.push(Rejection {
                    rule: "engine-exposure".into(),
                    reason: format!(
                        "engine `{engine}` does not expose `{dim}` (it takes only `unset`)"
                    ),
                }),
                Some(vals) if !vals.contains(value) => out.push(Rejection {
                    rule: "engine-exposure".into(),
                    reason: format!(
                        "engine `{engine}` does not offer {dim}={value} (it offers: {})",
                        vals.join(", ")
                    ),
                }),
                _ => {}
            }
        }
        for rule in &self.catalog.rules {
            if let Some(engines) = &rule.engines
                && !engines.iter().any(|e| e == engine)
            {
                continue;
            }
            let matches = rule
                .when
                .iter()
                .all(|(dim, vals)| vals.iter().any(|v| v == combo.dim(dim)));
            if !matches {
                continue;
            }
            let ok = match &rule.requires {
                None => false,
                Some(req) => requirement_met(req, hw, version),
            };
            if !ok {
                out.push(Rejection {
                    rule: rule.id.clone(),
                    reason: rule.reason.clone(),
                });
            }
        }
        out
    }
}

fn requirement_met(req: &Requirement, hw: &HardwareProfile, version: &str) -> bool {
    if let Some(device) = req.device
        && hw.device != device
    {
        return false;
    }
    if let Some(range) = &req.compute_capability {
        let Some(cc) = hw.compute_capability() else {
            return false;
        };
        if range
            .min
            .as_deref()
            .and_then(parse_capability)
            .is_some_and(|min| cc < min)
        {
            return false;
        }
        if range
            .max
            .as_deref()
            .and_then(parse_capability)
            .is_some_and(|max| cc > max)
        {
            return false;
        }
    }
    if let Some(range) = &req.engine_version {
        // Compared as `l1_engines::version` does everywhere: numerically, by prefix (`max: 0.11`
        // includes 0.11.2). A version that cannot be read meets no range.
        let Some(v) = Version::parse(version) else {
            return false;
        };
        if range.min.as_deref().is_some_and(|min| !v.at_least(min)) {
            return false;
        }
        if range.max.as_deref().is_some_and(|max| !v.at_most(max)) {
            return false;
        }
    }
    true
}

fn validate(c: &Catalog, path: &Path, text: &str) -> Result<(), Diagnostic> {
    let dims: Vec<&str> = c.dimensions.keys().map(String::as_str).collect();
    let err = |msg: String, token: &str, field: String| {
        let mut d = Diagnostic::new(path, msg).field(field);
        if let Some((l, col)) = find_token(text, token, 1) {
            d = d.at(text, l, Some(col));
        }
        d
    };
    let mut shorts = BTreeMap::new();
    for (name, d) in &c.dimensions {
        if d.values.is_empty() {
            return Err(err(
                format!("dimension `{name}` has no values"),
                name,
                format!("dimensions.{name}.values"),
            ));
        }
        if d.values.iter().any(|v| v == l1_engines::combo::UNSET) {
            return Err(err(
                format!("dimension `{name}` lists `unset`, which is reserved"),
                name,
                format!("dimensions.{name}.values"),
            ));
        }
        if let Some(other) = shorts.insert(d.short.clone(), name.clone()) {
            return Err(err(
                format!(
                    "dimensions `{other}` and `{name}` share the short name `{}`",
                    d.short
                ),
                &d.short,
                format!("dimensions.{name}.short"),
            ));
        }
    }
    let mut ids = BTreeMap::new();
    for (i, rule) in c.rules.iter().enumerate() {
        if ids.insert(rule.id.clone(), i).is_some() {
            return Err(err(
                format!("rule id `{}` is used twice", rule.id),
                &rule.id,
                format!("rules[{i}].id"),
            ));
        }
        if rule.when.is_empty() {
            return Err(err(
                format!("rule `{}` has an empty `when`", rule.id),
                &rule.id,
                format!("rules[{i}].when"),
            ));
        }
        for (dim, vals) in &rule.when {
            let Some(d) = c.dimensions.get(dim) else {
                return Err(err(
                    format!("rule `{}` names unknown dimension `{dim}`", rule.id),
                    dim,
                    format!("rules[{i}].when.{dim}"),
                )
                .choices(&dims));
            };
            for v in vals {
                if !d.values.contains(v) {
                    return Err(err(
                        format!("rule `{}` names unknown value `{v}` of `{dim}`", rule.id),
                        v,
                        format!("rules[{i}].when.{dim}"),
                    )
                    .choices(&d.values));
                }
            }
        }
        for e in rule.engines.iter().flatten() {
            if !c.engines.contains_key(e) {
                return Err(err(
                    format!("rule `{}` names unknown engine `{e}`", rule.id),
                    e,
                    format!("rules[{i}].engines"),
                )
                .choices(c.engines.keys()));
            }
        }
        if let Some(cc) = rule
            .requires
            .as_ref()
            .and_then(|r| r.compute_capability.as_ref())
        {
            for v in cc.min.iter().chain(cc.max.iter()) {
                if parse_capability(v).is_none() {
                    return Err(err(
                        format!(
                            "rule `{}` has a malformed compute capability `{v}`",
                            rule.id
                        ),
                        &rule.id,
                        format!("rules[{i}].requires.compute_capability"),
                    )
                    .expected("\"major.minor\", e.g. \"9.0\""));
                }
            }
        }
        if let Some(range) = rule
            .requires
            .as_ref()
            .and_then(|r| r.engine_version.as_ref())
        {
            // An unreadable bound would make the rule reject every version, silently.
            for v in range.min.iter().chain(range.max.iter()) {
                if Version::parse(v).is_none() {
                    return Err(err(
                        format!("rule `{}` has a malformed engine version `{v}`", rule.id),
                        &rule.id,
                        format!("rules[{i}].requires.engine_version"),
                    )
                    .expected(
                        "dot-separated numbers, optionally after a letter prefix, e.g. \"0.11\" or \"b4000\"",
                    ));
                }
            }
        }
    }
    for (name, e) in &c.engines {
        if l1_engines::registry::engine(name).is_none() {
            return Err(err(
                format!("catalog lists engine `{name}` that l1 does not know"),
                name,
                format!("engines.{name}"),
            )
            .choices(l1_engines::ENGINES.iter().map(|e| e.name)));
        }
        if e.versions.is_empty() {
            return Err(err(
                format!("engine `{name}` lists no versions"),
                name,
                format!("engines.{name}.versions"),
            ));
        }
        for (dim, sel) in &e.exposes {
            let Some(d) = c.dimensions.get(dim) else {
                return Err(err(
                    format!("engine `{name}` exposes unknown dimension `{dim}`"),
                    dim,
                    format!("engines.{name}.exposes"),
                )
                .choices(&dims));
            };
            if let Selection::Values(vals) = sel {
                for v in vals {
                    if !d.values.contains(v) {
                        return Err(err(
                            format!("engine `{name}` exposes unknown value `{v}` of `{dim}`"),
                            v,
                            format!("engines.{name}.exposes.{dim}"),
                        )
                        .choices(&d.values));
                    }
                }
            }
            if !e.defaults.contains_key(dim) {
                return Err(err(
                    format!("engine `{name}` exposes `{dim}` but gives no default for it"),
                    name,
                    format!("engines.{name}.defaults"),
                ));
            }
        }
        for (dim, v) in &e.defaults {
            if !e.exposes.contains_key(dim) {
                return Err(err(
                    format!("engine `{name}` has a default for `{dim}`, which it does not expose"),
                    dim,
                    format!("engines.{name}.defaults.{dim}"),
                ));
            }
            let offered = match &e.exposes[dim] {
                Selection::All => c.dimensions[dim].values.clone(),
                Selection::Values(v) => v.clone(),
            };
            if !offered.contains(v) {
                return Err(err(
                    format!("engine `{name}` defaults `{dim}` to `{v}`, which it does not offer"),
                    v,
                    format!("engines.{name}.defaults.{dim}"),
                )
                .choices(&offered));
            }
        }
        for (k, knob) in &e.knobs {
            if c.dimensions.contains_key(k) || shorts.contains_key(k) {
                return Err(err(
                    format!("engine `{name}` knob `{k}` collides with a dimension name"),
                    k,
                    format!("engines.{name}.knobs.{k}"),
                ));
            }
            if !knob.values.contains(&knob.default) {
                return Err(err(
                    format!(
                        "engine `{name}` knob `{k}` defaults to `{}`, not one of its values",
                        knob.default
                    ),
                    k,
                    format!("engines.{name}.knobs.{k}.default"),
                )
                .choices(&knob.values));
            }
        }
    }
    Ok(())
}
