//! Translation as data: per engine, one table of rows `dimension = value → flags / env vars /
//! config keys`, each row valid for a range of engine versions and a kind of host, read by one
//! interpreter ([`Table::emit`]); and [`TranslateError`], what a translation can fail with.
//!
//! A translator keeps as code only what is computed (ports, paths, model files, sizes fitted to
//! the workload, knobs) and what couples two dimensions in the *spelling* (vLLM's eager mode).
//! Which combinations are *legal* is the catalog's business (`catalogs/kernels.yaml`, rules),
//! never a translator's: a row exists when the engine has a spelling for the value at that
//! version on that host. The accepted values an error lists, the book's engine tables and the
//! translation all read the same rows, so they cannot disagree.

use std::collections::BTreeMap;
use std::fmt;

use crate::Combo;
use crate::DeviceKind;
use crate::combo::UNSET;
use crate::version::{Version, VersionRange};

/// Which engine versions a row is for, compared by prefix as [`VersionRange`] does. A bound
/// with a letter prefix (`b6327`) matches only versions with the same prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Versions {
    /// Every version the translator supports.
    Any,
    /// `min` and later.
    From(&'static str),
    /// Before `bound` (`0.12.9` is before `0.13`, `0.13.0` is not).
    Below(&'static str),
    /// Inside an inclusive range.
    Within(VersionRange),
}

impl Versions {
    /// Whether `version` is one of these.
    pub fn contains(&self, version: &str) -> bool {
        let same_prefix =
            |v: &Version, bound: &str| Version::parse(bound).is_some_and(|b| b.prefix == v.prefix);
        match *self {
            Versions::Any => true,
            Versions::Within(r) => r.contains(version),
            Versions::From(min) => {
                Version::parse(version).is_some_and(|v| same_prefix(&v, min) && v.at_least(min))
            }
            Versions::Below(bound) => {
                Version::parse(version).is_some_and(|v| same_prefix(&v, bound) && v.below(bound))
            }
        }
    }
}

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Versions::Any => f.write_str("all"),
            Versions::From(min) => write!(f, "≥ {min}"),
            Versions::Below(bound) => write!(f, "< {bound}"),
            Versions::Within(r) => write!(f, "{r}"),
        }
    }
}

/// Which hosts a row is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    Any,
    Cpu,
    Gpu,
}

impl Host {
    /// Whether a host of `device` kind is one of these.
    pub fn contains(self, device: DeviceKind) -> bool {
        match self {
            Host::Any => true,
            Host::Cpu => device == DeviceKind::Cpu,
            Host::Gpu => device == DeviceKind::Gpu,
        }
    }
}

/// One spelling: `dimension = value` at `versions` on `host` becomes `flags` (appended to the
/// command line in order), `env` (environment variables) and `config` (keys of a config file).
/// A row with nothing to emit accepts the value as the engine's default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    pub dimension: &'static str,
    pub value: &'static str,
    pub versions: Versions,
    pub host: Host,
    pub flags: &'static [&'static str],
    pub env: &'static [(&'static str, &'static str)],
    pub config: &'static [(&'static str, &'static str)],
}

impl Row {
    /// `dimension = value` on every version and host, emitting nothing.
    pub const fn new(dimension: &'static str, value: &'static str) -> Self {
        Self {
            dimension,
            value,
            versions: Versions::Any,
            host: Host::Any,
            flags: &[],
            env: &[],
            config: &[],
        }
    }

    pub const fn flags(mut self, flags: &'static [&'static str]) -> Self {
        self.flags = flags;
        self
    }

    pub const fn env(mut self, env: &'static [(&'static str, &'static str)]) -> Self {
        self.env = env;
        self
    }

    pub const fn config(mut self, config: &'static [(&'static str, &'static str)]) -> Self {
        self.config = config;
        self
    }

    /// Only from version `min`.
    pub const fn from(mut self, min: &'static str) -> Self {
        self.versions = Versions::From(min);
        self
    }

    /// Only before version `bound`.
    pub const fn below(mut self, bound: &'static str) -> Self {
        self.versions = Versions::Below(bound);
        self
    }

    /// Only inside `min..=max`.
    pub const fn within(mut self, min: &'static str, max: &'static str) -> Self {
        self.versions = Versions::Within(VersionRange::new(min, max));
        self
    }

    pub const fn cpu(mut self) -> Self {
        self.host = Host::Cpu;
        self
    }

    pub const fn gpu(mut self) -> Self {
        self.host = Host::Gpu;
        self
    }

    /// Whether the row is for `version` on a `device` host.
    pub fn applies(&self, version: &str, device: DeviceKind) -> bool {
        self.host.contains(device) && self.versions.contains(version)
    }
}

/// One engine's translation table. Rows are searched in order and the first that matches
/// `dimension`, `value`, version and host wins, so a version-specific spelling goes before a
/// general one. `unset` is always accepted (as the engine's default) unless a row gives it a
/// spelling of its own; a dimension with no rows accepts only `unset`.
#[derive(Clone, Copy, Debug)]
pub struct Table {
    pub engine: &'static str,
    pub rows: &'static [Row],
}

/// What rows emit, gathered in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Emitted {
    pub flags: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub config: Vec<(String, String)>,
}

impl Emitted {
    /// Append what `row` emits.
    pub fn push(&mut self, row: &Row) {
        self.flags
            .extend(row.flags.iter().map(|f| (*f).to_string()));
        for (k, v) in row.env {
            self.env.insert((*k).to_string(), (*v).to_string());
        }
        for (k, v) in row.config {
            self.config.push(((*k).to_string(), (*v).to_string()));
        }
    }
}

impl Table {
    /// The row spelling `dimension = value` at `version` on a `device` host: `Ok(None)` for an
    /// `unset` without a spelling of its own, an [`TranslateError::Unsupported`] listing what the
    /// table accepts there otherwise.
    pub fn lookup(
        &self,
        dimension: &str,
        value: &str,
        version: &str,
        device: DeviceKind,
    ) -> Result<Option<&'static Row>, TranslateError> {
        let rows: &'static [Row] = self.rows;
        if let Some(row) = rows
            .iter()
            .find(|r| r.dimension == dimension && r.value == value && r.applies(version, device))
        {
            return Ok(Some(row));
        }
        if value == UNSET {
            return Ok(None);
        }
        Err(self.unsupported(dimension, value, version, device))
    }

    /// Look `dimension`'s value in `combo` up and append what its row emits to `out`; the row,
    /// or `None` for `unset`.
    pub fn emit(
        &self,
        combo: &Combo,
        dimension: &str,
        version: &str,
        device: DeviceKind,
        out: &mut Emitted,
    ) -> Result<Option<&'static Row>, TranslateError> {
        let row = self.lookup(dimension, combo.dim(dimension), version, device)?;
        if let Some(row) = row {
            out.push(row);
        }
        Ok(row)
    }

    /// [`Table::emit`] for each of `dimensions`, in order.
    pub fn emit_all(
        &self,
        combo: &Combo,
        dimensions: &[&str],
        version: &str,
        device: DeviceKind,
        out: &mut Emitted,
    ) -> Result<(), TranslateError> {
        for d in dimensions {
            self.emit(combo, d, version, device, out)?;
        }
        Ok(())
    }

    /// The values of `dimension` the table spells at `version` on a `device` host, in row
    /// order, `unset` last unless a row places it.
    pub fn accepted(&self, dimension: &str, version: &str, device: DeviceKind) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in self.rows {
            if r.dimension == dimension
                && r.applies(version, device)
                && !out.iter().any(|v| v == r.value)
            {
                out.push(r.value.to_string());
            }
        }
        if !out.iter().any(|v| v == UNSET) {
            out.push(UNSET.to_string());
        }
        out
    }

    /// The refusal of `dimension = value` at `version` on a `device` host.
    pub fn unsupported(
        &self,
        dimension: &str,
        value: &str,
        version: &str,
        device: DeviceKind,
    ) -> TranslateError {
        TranslateError::Unsupported {
            engine: self.engine.to_string(),
            dimension: dimension.to_string(),
            value: value.to_string(),
            accepted: self.accepted(dimension, version, device),
            because: None,
        }
    }

    /// The dimensions the table has rows for, in first-row order.
    pub fn dimensions(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for r in self.rows {
            if !out.contains(&r.dimension) {
                out.push(r.dimension);
            }
        }
        out
    }

    /// The rows of `dimension = value`, every version and host.
    pub fn rows_of<'a>(
        &'a self,
        dimension: &'a str,
        value: &'a str,
    ) -> impl Iterator<Item = &'static Row> + 'a {
        let rows: &'static [Row] = self.rows;
        rows.iter()
            .filter(move |r| r.dimension == dimension && r.value == value)
    }

    /// Whether the table spells `dimension = value` at `version` on some host.
    pub fn spells(&self, dimension: &str, value: &str, version: &str) -> bool {
        value == UNSET
            || self
                .rows_of(dimension, value)
                .any(|r| r.versions.contains(version))
    }
}

/// Why a combo has no command line at a version: the message text is what users and tests see.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The engine has no spelling for the value (here, at this version).
    #[error(
        "engine `{engine}` has no translation for {dimension} = `{value}` (accepted: {}){}",
        accepted.join(", "),
        because.as_ref().map(|b| format!(" {b}")).unwrap_or_default()
    )]
    Unsupported {
        engine: String,
        /// The dimension, or `knob` / `knob NAME` for engine-specific knobs.
        dimension: String,
        value: String,
        accepted: Vec<String>,
        /// Why, when the accepted list alone does not say it.
        because: Option<String>,
    },
    /// A refusal with a reason in prose, for translators whose choices depend on a backend or
    /// provider (`context`) more than on a list of values.
    #[error(
        "engine `{engine}` {version}{}: {dimension} = `{value}` is not supported: {reason}",
        context.as_ref().map(|c| format!(" ({c})")).unwrap_or_default()
    )]
    Refused {
        engine: String,
        version: String,
        context: Option<String>,
        dimension: String,
        value: String,
        reason: String,
    },
    /// The version is not one the translator is written for.
    #[error(
        "engine `{engine}`: version `{version}` is outside what its translator supports ({})",
        supported.join(", ")
    )]
    VersionOutOfRange {
        engine: String,
        version: String,
        supported: Vec<String>,
    },
    /// The version does not parse.
    #[error("engine `{engine}`: `{version}` is not a version number")]
    NotAVersion { engine: String, version: String },
    /// A knob value of the wrong shape.
    #[error("{}knob {knob}: expected {expected}, found `{value}`", engine.as_ref().map(|e| format!("engine `{e}`: ")).unwrap_or_default())]
    BadKnob {
        /// Named in the message by the translators that always did.
        engine: Option<String>,
        knob: String,
        value: String,
        expected: String,
    },
    /// A translation that builds an engine asked of a backend that builds none.
    #[error("engine `{engine}` {version}: the PyTorch backend builds no engine")]
    NoBuild { engine: String, version: String },
    /// A knob value that another knob's value rules out.
    #[error("engine `{engine}`: knob {knob} = `{value}` {reason}")]
    KnobConflict {
        engine: String,
        knob: String,
        value: String,
        reason: String,
    },
    /// A refusal from a translation this one is built on (`context` names the outer one).
    #[error("{context}: {source}")]
    Within {
        context: String,
        source: Box<TranslateError>,
    },
    /// The engine does not run on this kind of host.
    #[error("engine `{engine}` runs on NVIDIA GPUs only")]
    NeedsGpu { engine: String },
    /// The target's model file is missing.
    #[error(transparent)]
    Model(#[from] ModelMissing),
    /// The target lacks what the command line names (a free port, a model repository), or the engine
    /// cannot serve the target's model here.
    #[error("{0}")]
    Target(String),
}

impl TranslateError {
    /// The same refusal with a reason appended (`Unsupported` only; others are returned as is).
    pub fn because(self, why: impl Into<String>) -> Self {
        match self {
            TranslateError::Unsupported {
                engine,
                dimension,
                value,
                accepted,
                ..
            } => TranslateError::Unsupported {
                engine,
                dimension,
                value,
                accepted,
                because: Some(why.into()),
            },
            other => other,
        }
    }
}

/// `Unsupported` with a hand-made accepted list (knob names, knob values).
pub fn unsupported(
    engine: &str,
    dimension: &str,
    value: &str,
    accepted: &[&str],
) -> TranslateError {
    TranslateError::Unsupported {
        engine: engine.to_string(),
        dimension: dimension.to_string(),
        value: value.to_string(),
        accepted: accepted.iter().map(|s| (*s).to_string()).collect(),
        because: None,
    }
}

/// Refuse any knob of `combo` not in `knobs` (listing them).
pub fn check_knobs(engine: &str, combo: &Combo, knobs: &[&str]) -> Result<(), TranslateError> {
    match combo.knobs.keys().find(|k| !knobs.contains(&k.as_str())) {
        Some(k) => Err(unsupported(engine, "knob", k, knobs)),
        None => Ok(()),
    }
}

/// The catalog's seven dimensions in the order server engines emit their flags (an engine whose
/// command line wants another order names its own list).
pub const DIMENSIONS: &[&str] = &[
    "attention_backend",
    "kv_layout",
    "activation_dtype",
    "kv_cache_dtype",
    "cuda_graph",
    "matmul_path",
    "fusion_strategy",
];

/// Check `version` against an engine's supported ranges; the error names the engine, the
/// version and every range.
pub fn check_supported(
    engine: &str,
    version: &str,
    ranges: &[VersionRange],
) -> Result<Version, TranslateError> {
    let parsed = Version::parse(version).ok_or_else(|| TranslateError::NotAVersion {
        engine: engine.to_string(),
        version: version.to_string(),
    })?;
    if ranges.iter().any(|r| r.contains(version)) {
        Ok(parsed)
    } else {
        Err(TranslateError::VersionOutOfRange {
            engine: engine.to_string(),
            version: version.to_string(),
            supported: ranges.iter().map(ToString::to_string).collect(),
        })
    }
}

/// A model file the target needs is missing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "model `{model}` has no {ext} file at {} (run scripts/setup-engines.sh, or set L1_ENGINES_DIR)",
    path.display()
)]
pub struct ModelMissing {
    pub model: String,
    /// `gguf`, `onnx`, `hf`.
    pub ext: String,
    pub path: std::path::PathBuf,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::testing::combo;

    const T: Table = Table {
        engine: "demo",
        rows: &[
            Row::new("attn", "fa")
                .gpu()
                .below("0.13")
                .env(&[("ATTN", "FA")]),
            Row::new("attn", "fa").gpu().flags(&["--attn", "FA"]),
            Row::new("attn", "old")
                .gpu()
                .below("0.12")
                .flags(&["--attn", "OLD"]),
            Row::new("attn", "paged").flags(&["--attn", "PAGED"]),
            Row::new("kv", "auto"),
            Row::new("kv", "fp16").from("0.20").config(&[("kv", "f16")]),
            Row::new("fa", "on").below("b6327").flags(&["-fa"]),
            Row::new("fa", "on").flags(&["-fa", "on"]),
            Row::new("fa", UNSET).flags(&["-fa", "auto"]),
        ],
    };

    #[test]
    fn the_first_matching_row_spells_the_value() {
        let gpu = DeviceKind::Gpu;
        let mut out = Emitted::default();
        let c = combo(&[("attn", "fa"), ("kv", "fp16")], &[]);
        T.emit_all(&c, &["attn", "kv"], "0.20", gpu, &mut out)
            .unwrap();
        assert_eq!(out.flags, ["--attn", "FA"]);
        assert_eq!(out.config, [("kv".to_string(), "f16".to_string())]);
        let mut out = Emitted::default();
        T.emit(&c, "attn", "0.12.3", gpu, &mut out).unwrap();
        assert_eq!(out.env.get("ATTN").map(String::as_str), Some("FA"));
        assert!(out.flags.is_empty());
        // `unset` without a row emits nothing; with one it emits its spelling.
        assert_eq!(T.lookup("kv", UNSET, "0.20", gpu).unwrap(), None);
        assert_eq!(
            T.lookup("fa", UNSET, "b4000", gpu).unwrap().unwrap().flags,
            ["-fa", "auto"]
        );
        // A prefixed bound matches only versions with its prefix.
        assert_eq!(
            T.lookup("fa", "on", "b6000", gpu).unwrap().unwrap().flags,
            ["-fa"]
        );
        assert_eq!(
            T.lookup("fa", "on", "b6327", gpu).unwrap().unwrap().flags,
            ["-fa", "on"]
        );
        assert_eq!(
            T.lookup("fa", "on", "2026.10", gpu).unwrap().unwrap().flags,
            ["-fa", "on"]
        );
    }

    #[test]
    fn refusals_list_what_the_table_accepts_there() {
        let e = T.lookup("attn", "fa", "0.20", DeviceKind::Cpu).unwrap_err();
        assert_eq!(
            e.to_string(),
            "engine `demo` has no translation for attn = `fa` (accepted: paged, unset)"
        );
        let e = T.lookup("attn", "xf", "0.11", DeviceKind::Gpu).unwrap_err();
        assert!(
            e.to_string().ends_with("(accepted: fa, old, paged, unset)"),
            "{e}"
        );
        let e = T.lookup("kv", "fp16", "0.13", DeviceKind::Gpu).unwrap_err();
        assert!(e.to_string().ends_with("(accepted: auto, unset)"), "{e}");
        let e = T
            .lookup("mm", "cublas", "0.13", DeviceKind::Gpu)
            .unwrap_err();
        assert!(
            matches!(&e, TranslateError::Unsupported { accepted, .. } if accepted == &["unset"])
        );
        assert_eq!(
            e.because("(no GEMM choice)").to_string(),
            "engine `demo` has no translation for mm = `cublas` (accepted: unset) (no GEMM choice)"
        );
        assert_eq!(T.dimensions(), ["attn", "kv", "fa"]);
        assert!(T.spells("kv", "fp16", "0.20.1") && !T.spells("kv", "fp16", "0.15"));
        assert!(T.spells("attn", UNSET, "0.1"));
        let e = check_knobs("demo", &combo(&[], &[("x", "1")]), &["a", "b"]).unwrap_err();
        assert!(
            e.to_string().ends_with("knob = `x` (accepted: a, b)"),
            "{e}"
        );
    }

    #[test]
    fn version_sets_print_for_the_docs() {
        assert_eq!(Versions::From("0.13").to_string(), "≥ 0.13");
        assert_eq!(Versions::Below("0.12").to_string(), "< 0.12");
        assert_eq!(
            Versions::Within(VersionRange::new("1.0", "1.3")).to_string(),
            "1.0..=1.3"
        );
        assert!(!Versions::From("0.13").contains("latest"));
    }
}
