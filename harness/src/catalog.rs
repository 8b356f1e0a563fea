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

use crate::diag::Diagnostic;
use crate::selection::Selection;
use crate::yaml::{self, Locations, Step};

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
        // The `version` line, indexed only when there is an error to show.
        let line = || {
            Locations::of(text)
                .key(&[Step::from("version")])
                .map_or(1, |(l, _)| l)
        };
        let Ok(recorded_text) = std::fs::read_to_string(&snap) else {
            return Err(Diagnostic::new(
                &self.path,
                format!("catalog version {} has no recorded snapshot ({})", self.catalog.version, snap.display()),
            )
            .at(text, line(), None)
            .field("version")
            .expected("a recorded snapshot: run `cargo run --release --bin l1 -- catalog snapshot` after bumping `version`"));
        };
        // The same text has the same content (the usual case: the snapshot is a copy), so only
        // a snapshot that differs is parsed and hashed.
        if recorded_text == text {
            return Ok(());
        }
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
            .at(text, line(), None)
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
        self.short_name(dim).to_string()
    }

    /// [`Self::short`] without a copy.
    pub fn short_name<'a>(&'a self, dim: &'a str) -> &'a str {
        self.catalog
            .dimensions
            .get(dim)
            .map_or(dim, |d| d.short.as_str())
    }

    /// The values an engine offers for a dimension; `None` when it does not expose it (`unset`).
    pub fn engine_values(&self, engine: &str, dim: &str) -> Option<Vec<String>> {
        self.offered(engine, dim).map(<[String]>::to_vec)
    }

    /// [`Self::engine_values`] without a copy: legality checks run once per combo.
    pub fn offered(&self, engine: &str, dim: &str) -> Option<&[String]> {
        let entry = self.catalog.engines.get(engine)?;
        let sel = entry.exposes.get(dim)?;
        let all = &self.catalog.dimensions.get(dim)?.values;
        Some(match sel {
            Selection::All => all,
            Selection::Values(v) => v,
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
        self.checker(engine, version, hw).check(combo)
    }

    /// [`Self::check`] for many combos of one target: what depends only on the engine, its
    /// version and the hardware (the rules that apply and whether their requirements hold) is
    /// worked out once here, not once per combo.
    pub fn checker<'a>(
        &'a self,
        engine: &'a str,
        version: &str,
        hw: &HardwareProfile,
    ) -> Checker<'a> {
        let rejecting: Vec<&Rule> = self
            .catalog
            .rules
            .iter()
            .filter(|rule| {
                rule.engines
                    .as_ref()
                    .is_none_or(|engines| engines.iter().any(|e| e == engine))
            })
            .filter(|rule| {
                !rule
                    .requires
                    .as_ref()
                    .is_some_and(|req| requirement_met(req, hw, version))
            })
            .collect();
        let offered = (self.catalog.dimensions.keys())
            .map(|dim| (dim.as_str(), self.offered(engine, dim)))
            .collect();
        let dims: Vec<&str> = self.catalog.dimensions.keys().map(String::as_str).collect();
        let conditions = (rejecting.iter())
            .map(|rule| {
                (rule.when.iter())
                    .map(|(dim, vals)| {
                        (dims.iter().position(|d| d == dim), dim.as_str(), &vals[..])
                    })
                    .collect()
            })
            .collect();
        Checker {
            engine,
            offered,
            rejecting,
            dims,
            conditions,
        }
    }
}

/// One condition of a rule's `when`: (position among the catalog's dimensions, the dimension,
/// the values it matches).
type Condition<'a> = (Option<usize>, &'a str, &'a [String]);

/// Legality checks of one target's combos: see [`LoadedCatalog::checker`].
pub struct Checker<'a> {
    engine: &'a str,
    /// What the engine offers for each catalog dimension (`None`: not exposed).
    offered: BTreeMap<&'a str, Option<&'a [String]>>,
    /// The rules for this engine whose requirements this target does not meet, in catalog
    /// order: a combo matching one's `when` is rejected by it.
    rejecting: Vec<&'a Rule>,
    /// The catalog's dimensions, in map order: what a combo of this catalog has.
    dims: Vec<&'a str>,
    /// Each rejecting rule's `when`: (position in `dims`, dimension, values).
    conditions: Vec<Vec<Condition<'a>>>,
}

impl Checker<'_> {
    /// Every rejection of `combo` (empty = legal), in the order [`LoadedCatalog::check`] gives.
    pub fn check(&self, combo: &Combo) -> Vec<Rejection> {
        let engine = self.engine;
        let mut out = Vec::new();
        for (dim, value) in &combo.dims {
            if value == l1_engines::combo::UNSET {
                continue;
            }
            match self.offered.get(dim.as_str()).copied().flatten() {
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
        // A combo with exactly the catalog's dimensions (every expanded combo) is read by
        // position; any other by name.
        let mut values = [l1_engines::combo::UNSET; 32];
        let positional = combo.dims.len() == self.dims.len()
            && self.dims.len() <= values.len()
            && combo.dims.keys().zip(&self.dims).all(|(a, b)| a == b);
        if positional {
            for (slot, v) in values.iter_mut().zip(combo.dims.values()) {
                *slot = v.as_str();
            }
        }
        for (rule, conditions) in self.rejecting.iter().zip(&self.conditions) {
            let matches = conditions.iter().all(|&(at, dim, vals)| {
                let value = match at {
                    Some(i) if positional => values[i],
                    _ => combo.dim(dim),
                };
                vals.iter().any(|v| v == value)
            });
            if matches {
                out.push(Rejection {
                    rule: rule.id.clone(),
                    reason: rule.reason.clone(),
                });
            }
        }
        out
    }

    /// Whether combos drawn from fixed value lists are legal, worked out once per value: the
    /// `i`-th list holds the values the `i`-th catalog dimension (in map order) may take, and a
    /// combo is then a value index per dimension. `None` when the lists are not one per catalog
    /// dimension. [`Legality::is_legal`] agrees with `check(..).is_empty()` on every combo it
    /// can be given.
    pub fn legality(&self, values: &[&[String]]) -> Option<Legality> {
        if values.len() != self.dims.len() {
            return None;
        }
        let unset = l1_engines::combo::UNSET;
        let exposed = (self.dims.iter().zip(values))
            .map(|(dim, vals)| {
                let offered = self.offered.get(dim).copied().flatten();
                (vals.iter())
                    .map(|v| v == unset || offered.is_some_and(|o| o.contains(v)))
                    .collect()
            })
            .collect();
        let mut rules = Vec::new();
        'rules: for conditions in &self.conditions {
            let mut compiled = Vec::new();
            for &(at, _, matching) in conditions {
                match at {
                    Some(i) => compiled.push((
                        i,
                        (values[i].iter())
                            .map(|v| matching.iter().any(|m| m == v))
                            .collect(),
                    )),
                    // A dimension the catalog does not have: every combo reads it as `unset`.
                    None if matching.iter().any(|m| m == unset) => {}
                    None => continue 'rules,
                }
            }
            rules.push(compiled);
        }
        Some(Legality { exposed, rules })
    }
}

/// [`Checker::check`] for combos given as a value index per catalog dimension: see
/// [`Checker::legality`].
#[derive(Clone, Debug)]
pub struct Legality {
    /// Per dimension, per value: whether the engine takes it.
    exposed: Vec<Vec<bool>>,
    /// Per rejecting rule, its conditions: (dimension, per value: whether the rule matches it).
    rules: Vec<Vec<(usize, Vec<bool>)>>,
}

impl Legality {
    /// Whether the combo taking value `at[i]` in dimension `i` is legal (`at` may go on past
    /// the dimensions: knobs, which no rule reads).
    pub fn is_legal(&self, at: &[usize]) -> bool {
        (self.exposed.iter().zip(at)).all(|(ok, &i)| ok[i])
            && !(self.rules.iter())
                .any(|conditions| conditions.iter().all(|(d, matches)| matches[at[*d]]))
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

/// The document path a diagnostic's field names: `rules[3].when.kv_layout` is `rules`, 3,
/// `when`, `kv_layout`.
fn field_path(field: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for part in field.split('.') {
        let mut pieces = part.split('[');
        if let Some(key) = pieces.next().filter(|k| !k.is_empty()) {
            out.push(Step::from(key));
        }
        for index in pieces {
            if let Ok(i) = index.trim_end_matches(']').parse::<usize>() {
                out.push(Step::Index(i));
            }
        }
    }
    out
}

fn validate(c: &Catalog, path: &Path, text: &str) -> Result<(), Diagnostic> {
    let dims: Vec<&str> = c.dimensions.keys().map(String::as_str).collect();
    // Located from the parsed document: `token` written at or under the entry `field` names,
    // else that entry (or its nearest written parent).
    // Indexed only when there is an error to locate: a valid catalog never pays for it.
    let locations = std::cell::OnceCell::new();
    let err = |msg: String, token: &str, field: String| {
        let locations = locations.get_or_init(|| Locations::of(text));
        let at = field_path(&field);
        let pos = locations
            .scalar_under(&at, token)
            .or_else(|| locations.nearest(&at));
        let mut d = Diagnostic::new(path, msg).field(field);
        if let Some((l, col)) = pos {
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
            .choices(l1_engines::ENGINES.iter().map(|e| e.name())));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The per-combo check as it was before [`Checker`]: every rule looked at for every combo.
    fn check_by_rules(
        cat: &LoadedCatalog,
        engine: &str,
        version: &str,
        hw: &HardwareProfile,
        combo: &Combo,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (dim, value) in &combo.dims {
            if value == l1_engines::combo::UNSET {
                continue;
            }
            match cat.engine_values(engine, dim) {
                None => out.push(format!("engine-exposure: {dim}")),
                Some(vals) if !vals.contains(value) => {
                    out.push(format!("engine-exposure: {dim}={value}"))
                }
                _ => {}
            }
        }
        for rule in &cat.catalog.rules {
            if rule
                .engines
                .as_ref()
                .is_some_and(|e| !e.iter().any(|e| e == engine))
            {
                continue;
            }
            if !rule
                .when
                .iter()
                .all(|(d, vals)| vals.iter().any(|v| v == combo.dim(d)))
            {
                continue;
            }
            if !rule
                .requires
                .as_ref()
                .is_some_and(|r| requirement_met(r, hw, version))
            {
                out.push(rule.id.clone());
            }
        }
        out
    }

    /// The checker gives the rejections every rule gives, by position (combos with exactly the
    /// catalog's dimensions) and by name (any other combo), for every engine, hardware and
    /// version of the bundled catalogs.
    #[test]
    fn the_checker_agrees_with_checking_every_rule() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let cats = crate::profiles::Catalogs::load(&root).unwrap_or_else(|d| panic!("{d}"));
        let cat = &cats.kernels;
        let dims: Vec<(&String, &Vec<String>)> = cat
            .catalog
            .dimensions
            .iter()
            .map(|(d, x)| (d, &x.values))
            .collect();
        let mut rejected = 0;
        let mut compared = 0;
        for (engine, entry) in &cat.catalog.engines {
            for version in &entry.versions {
                for hw in cats.hardware.values() {
                    let checker = cat.checker(engine, version, hw);
                    // Combos that vary one dimension at a time around the engine's defaults,
                    // plus one with an extra dimension and one missing a dimension.
                    let mut base = Combo::default();
                    for (d, _) in &dims {
                        let v = entry.defaults.get(*d).cloned();
                        base.dims
                            .insert((*d).clone(), v.unwrap_or_else(|| "unset".into()));
                    }
                    let mut combos = vec![base.clone()];
                    for (d, values) in &dims {
                        for v in values.iter() {
                            for (d2, values2) in &dims {
                                for v2 in values2.iter().take(4) {
                                    let mut c = base.clone();
                                    c.dims.insert((*d).clone(), v.clone());
                                    c.dims.insert((*d2).clone(), v2.clone());
                                    combos.push(c);
                                }
                            }
                        }
                    }
                    let mut extra = base.clone();
                    extra.dims.insert("not_a_dimension".into(), "x".into());
                    combos.push(extra);
                    let mut fewer = base.clone();
                    fewer.dims.pop_first();
                    combos.push(fewer);
                    for c in &combos {
                        let got: Vec<String> = (checker.check(c).into_iter())
                            .map(|r| match r.rule.as_str() {
                                "engine-exposure" => r.reason,
                                _ => r.rule,
                            })
                            .collect();
                        let want = check_by_rules(cat, engine, version, hw, c);
                        assert_eq!(
                            got.len(),
                            want.len(),
                            "{engine}@{version} {c:?}: {got:?} vs {want:?}"
                        );
                        for (g, w) in got.iter().zip(&want) {
                            let same = match w.strip_prefix("engine-exposure: ") {
                                Some(what) => g.contains(what.split('=').next().unwrap_or(what)),
                                None => g == w,
                            };
                            assert!(same, "{engine}@{version} {c:?}: {got:?} vs {want:?}");
                        }
                        rejected += usize::from(!want.is_empty());
                        compared += 1;
                    }
                }
            }
        }
        assert!(
            compared > 10_000 && rejected > 100,
            "{compared} combos, {rejected} rejected"
        );
    }

    /// The value tables call a combo legal exactly when the checker finds no rejection: for
    /// every engine, version and hardware of the bundled catalogs, on combos drawn (by a fixed
    /// sequence) from every catalog value, `unset` and a value no engine offers.
    #[test]
    fn the_legality_tables_agree_with_the_checker() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let cats = crate::profiles::Catalogs::load(&root).unwrap_or_else(|d| panic!("{d}"));
        let cat = &cats.kernels;
        let lists: Vec<Vec<String>> = (cat.catalog.dimensions.values())
            .map(|d| {
                let mut v = d.values.clone();
                v.extend([l1_engines::combo::UNSET.into(), "not-a-value".into()]);
                v
            })
            .collect();
        let values: Vec<&[String]> = lists.iter().map(|v| &v[..]).collect();
        let names: Vec<&String> = cat.catalog.dimensions.keys().collect();
        let (mut legal, mut illegal) = (0, 0);
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for (engine, entry) in &cat.catalog.engines {
            for version in &entry.versions {
                for hw in cats.hardware.values() {
                    let checker = cat.checker(engine, version, hw);
                    assert!(
                        checker.legality(&values[1..]).is_none(),
                        "one list per dimension"
                    );
                    let table = checker
                        .legality(&values)
                        .unwrap_or_else(|| panic!("no tables for {engine}"));
                    for _ in 0..400 {
                        let at: Vec<usize> = (values.iter())
                            .map(|v| {
                                seed = seed
                                    .wrapping_mul(6_364_136_223_846_793_005)
                                    .wrapping_add(1_442_695_040_888_963_407);
                                (seed >> 33) as usize % v.len()
                            })
                            .collect();
                        let mut combo = Combo::default();
                        for ((name, v), &i) in names.iter().zip(&values).zip(&at) {
                            combo.dims.insert((*name).clone(), v[i].clone());
                        }
                        let want = checker.check(&combo).is_empty();
                        assert_eq!(table.is_legal(&at), want, "{engine}@{version} {combo:?}");
                        if want {
                            legal += 1;
                        } else {
                            illegal += 1;
                        }
                    }
                }
            }
        }
        assert!(
            legal > 200 && illegal > 200,
            "{legal} legal, {illegal} illegal"
        );
    }

    #[test]
    fn field_paths_name_keys_and_indices() {
        assert_eq!(
            field_path("rules[3].when.kv_layout"),
            [
                Step::from("rules"),
                Step::Index(3),
                Step::from("when"),
                Step::from("kv_layout")
            ]
        );
        assert_eq!(
            field_path("engines.vllm"),
            [Step::from("engines"), Step::from("vllm")]
        );
    }

    #[test]
    fn an_error_is_located_at_the_field_it_names() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../catalogs/kernels.yaml");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let bad = text.replacen("min: \"8.9\"", "min: \"eight\"", 1);
        assert_ne!(bad, text, "the edit did not apply");
        let Err(e) = LoadedCatalog::from_text(&path, &bad) else {
            panic!("a malformed compute capability must be rejected");
        };
        assert!(e.message.contains("malformed compute capability"), "{e}");
        // The rule's `requires` line (where the capability is written), not its `id` line.
        let line = e
            .line
            .and_then(|l| bad.lines().nth(l - 1))
            .unwrap_or_default();
        assert!(line.contains("compute_capability"), "{e}");
        assert!(e.column.is_some(), "{e}");
    }
}
