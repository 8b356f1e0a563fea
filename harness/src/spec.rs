//! Spec files (`specs/**/*.yaml`): the document as written (parsed after rendering with
//! unknown fields rejected; its JSON Schema in [`schema`]), the typed spec validation makes of
//! it, and loading (render with minijinja, then parse).

mod gate;
pub mod schema;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

pub use self::gate::{
    AGAINST, AGAINST_STORED, DEFAULT_GATES, FidelityThresholds, GATE_FIELDS, Gate, GateMethod,
    RegressionForm, Takes, UnknownGateMethod,
};
use crate::diag::Diagnostic;
use crate::render::{self, RenderContext, Rendered};
use crate::selection::{Scalar, Selection};
use crate::yaml::{self, Locations, Step};

/// The top-level fields only tune specs take (a sweep's own field is `gates`): refused on
/// sweeps by validation, stated by the JSON Schema.
pub const TUNE_FIELDS: [&str; 7] = [
    "objective",
    "constraints",
    "budget",
    "seed_from",
    "gate",
    "remeasure",
    "acquisition",
];

/// What a spec asks for.
// The document's `kind:`; the typed spec's [`SpecKind`] carries the settings of that kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename = "SpecKind", rename_all = "snake_case")]
pub enum KindName {
    /// Tier 1: every (or a covering set of) legal combo(s) of each target.
    Sweep,
    /// Tier 2: Bayesian optimisation over the legal combos of each target, within a budget.
    Tune,
}

/// What a spec asks for, with the settings only that kind takes: what a spec means comes from
/// this type (made by the validation stage, `validate`, from the document), never from
/// optional fields.
#[derive(Clone, Debug)]
pub enum SpecKind {
    Sweep(Sweep),
    Tune(Box<Tune>),
}

/// A sweep's own settings.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// How the space is covered (`space.mode`; default exhaustive).
    pub mode: Mode,
    /// The gates as written, else [`DEFAULT_GATES`].
    pub gates: Vec<Gate>,
}

/// A tune spec's own settings, checked.
#[derive(Clone, Debug)]
pub struct Tune {
    pub objective: TuneObjective,
    /// Each with exactly one of `at_most` and `at_least`.
    pub constraints: Vec<TuneConstraint>,
    /// At least one limit, each positive.
    pub budget: TuneBudget,
    pub seed_from: Option<Spanned<String>>,
    pub gate: TuneGate,
    pub remeasure: Option<TuneRemeasure>,
    pub acquisition: l1_tune::Acquisition,
}

/// How the space is covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Every legal combo.
    #[default]
    Exhaustive,
    /// A pairwise covering design: every pair of values of every two dimensions that appears in
    /// some legal combo appears in at least one selected combo.
    Quick,
}

impl Mode {
    /// The mode's name as specs and reports spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Exhaustive => "exhaustive",
            Self::Quick => "quick",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// `engine@version`, e.g. `sim@1.0`, `vllm@0.13`.
    #[schemars(with = "Vec<String>")]
    pub engines: Vec<Spanned<String>>,
    #[schemars(with = "Vec<String>")]
    pub models: Vec<Spanned<String>>,
    #[schemars(with = "Vec<String>")]
    pub hardware: Vec<Spanned<String>>,
    #[schemars(with = "Vec<String>")]
    pub workloads: Vec<Spanned<String>>,
}

/// `space:` as written.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(rename = "Space", deny_unknown_fields)]
pub struct SpaceDocument {
    /// How a sweep covers the space (`exhaustive`, the default, or `quick`); a tune spec
    /// searches every legal combo.
    #[serde(default)]
    pub mode: Option<Mode>,
    /// Dimension -> `all`, a list of values, or one value (a pin). Dimensions not named take the
    /// engine's default.
    #[serde(default)]
    pub dims: BTreeMap<String, Selection>,
    /// Dimension -> one value: the same as a one-value entry in `dims`.
    #[serde(default)]
    pub pins: BTreeMap<String, Scalar>,
    /// Engine-specific knob -> `all`, values or one value.
    #[serde(default)]
    pub knobs: BTreeMap<String, Selection>,
}

/// The space a spec selects (the mode is a sweep's setting: [`Sweep::mode`]).
#[derive(Clone, Debug, Default)]
pub struct Space {
    /// Dimension -> `all`, a list of values, or one value (a pin). Dimensions not named take the
    /// engine's default.
    pub dims: BTreeMap<String, Selection>,
    /// Dimension -> one value: the same as a one-value entry in `dims`.
    pub pins: BTreeMap<String, Scalar>,
    /// Engine-specific knob -> `all`, values or one value.
    pub knobs: BTreeMap<String, Selection>,
}

/// What gates compare against.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Baseline {
    /// The engine's own defaults (catalog `engines.<name>.defaults`).
    #[default]
    EngineDefault,
    /// A named combo: dimension -> value; unnamed dimensions take the engine default.
    Combo(BTreeMap<String, Scalar>),
}

fn default_reps() -> u32 {
    7
}

fn default_launches() -> u32 {
    1
}

fn default_trim() -> f64 {
    0.10
}

/// How each combo is measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// Reps per combo (each rep is one full workload run against one engine launch).
    #[serde(default = "default_reps")]
    pub reps: u32,
    /// Fraction trimmed from each end before the trimmed mean.
    #[serde(default = "default_trim")]
    pub trim: f64,
    /// Whole reps run and discarded after warm-up requests, before the measured reps.
    #[serde(default)]
    pub warmup_reps: u32,
    /// Seed for the simulated engine and for prompt generation.
    #[serde(default)]
    pub seed: u64,
    /// Early termination: with `max_reps` set, each combo is measured in a group-sequential
    /// design between `min_reps` (default 3) and `max_reps` reps (the baseline always gets
    /// `max_reps`), stopping at a planned look when its interval is decisive; `reps` is then unused.
    #[serde(default)]
    pub min_reps: Option<u32>,
    #[serde(default)]
    pub max_reps: Option<u32>,
    /// Engine launches the reps are spread over (rep i runs on launch i mod `launches`), so the
    /// comparison sees launch-to-launch variation instead of assuming it.
    #[serde(default = "default_launches")]
    pub launches: u32,
    /// Overrides the hardware profile's noise floor (a coefficient of variation): no difference
    /// smaller than this is claimed.
    #[serde(default)]
    pub noise_floor: Option<f64>,
    /// Overrides the hardware profile's launch-to-launch coefficient of variation.
    #[serde(default)]
    pub launch_cv: Option<f64>,
    /// Seconds a real engine may take from launch to ready (default: the engine's own, e.g. 60
    /// for llama.cpp, 600 for vLLM).
    #[serde(default)]
    pub startup_timeout_s: Option<f64>,
}

impl Measure {
    /// `(min_reps, max_reps)` when early termination is on.
    pub fn sequential(&self) -> Option<(u32, u32)> {
        self.max_reps.map(|max| (self.min_reps.unwrap_or(3), max))
    }

    /// Reps of a full (non-stopped) measurement: `max_reps` in sequential mode, else `reps`.
    pub fn full_reps(&self) -> u32 {
        self.max_reps.unwrap_or(self.reps)
    }
}

impl Default for Measure {
    fn default() -> Self {
        Self {
            reps: default_reps(),
            trim: default_trim(),
            warmup_reps: 0,
            seed: 0,
            min_reps: None,
            max_reps: None,
            launches: default_launches(),
            noise_floor: None,
            launch_cv: None,
            startup_timeout_s: None,
        }
    }
}

/// A tune spec's objective: the metric optimised and its direction.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TuneObjective {
    #[schemars(with = "String")]
    pub metric: Spanned<String>,
    pub direction: l1_tune::Direction,
}

/// A tune spec's constraint: `{ metric, at_most: X }` or `{ metric, at_least: X }`.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TuneConstraint {
    #[schemars(with = "String")]
    pub metric: Spanned<String>,
    #[serde(default)]
    pub at_most: Option<f64>,
    #[serde(default)]
    pub at_least: Option<f64>,
}

/// A tune spec's budget: at least one limit, each positive.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TuneBudget {
    /// Wall-clock minutes (measurement time; cache hits are free).
    #[serde(default)]
    pub minutes: Option<f64>,
    /// Device-hours (devices of the target's hardware × measurement time).
    #[serde(default)]
    pub gpu_hours: Option<f64>,
    #[serde(default)]
    pub max_trials: Option<u32>,
}

/// A tune spec's final phase: the last `share` of the budget re-measures the `top` candidates.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TuneRemeasure {
    #[serde(default)]
    pub top: Option<usize>,
    #[serde(default)]
    pub share: Option<f64>,
}

/// A tune spec's gate: the recommended point must beat the baseline by `margin` (relative).
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TuneGate {
    #[serde(default)]
    pub margin: Option<f64>,
}

/// An l1 spec file (after template rendering): what to measure (`targets`), over which space,
/// against which baseline, how each combo is measured, and how the result is judged (a
/// sweep's `gates`; a tune spec's `objective`, `constraints` and `budget`).
// The flat document serde parses (with spans, unknown fields rejected) and the JSON Schema
// describes; the validation stage (`validate`) checks it and makes the typed [`Spec`] of it,
// so a field of the other kind is an error located at the field.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(rename = "Spec", deny_unknown_fields)]
pub struct SpecDocument {
    /// `sweep` (every legal combo, or a covering set, gated) or `tune` (Bayesian optimisation
    /// within a budget).
    pub kind: KindName,
    /// Must equal the file stem: test names start with it, and `--exact` finds the file by it.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub targets: Targets,
    #[serde(default)]
    pub space: SpaceDocument,
    #[serde(default)]
    pub baseline: Baseline,
    #[serde(default)]
    pub measure: Measure,
    /// Sweeps: the gates (default: one `topk5` gate).
    #[serde(default)]
    pub gates: Option<Vec<Gate>>,
    /// Tune specs: the objective (metric and direction).
    #[serde(default)]
    pub objective: Option<TuneObjective>,
    /// Tune specs: constraints every recommended point must meet.
    #[serde(default)]
    pub constraints: Vec<TuneConstraint>,
    /// Tune specs: the budget.
    #[serde(default)]
    pub budget: Option<TuneBudget>,
    /// Tune specs: the sweep spec whose stored results seed the search (its pareto/best points).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub seed_from: Option<Spanned<String>>,
    /// Tune specs: the gate (`{ margin }`).
    #[serde(default)]
    pub gate: Option<TuneGate>,
    /// Tune specs: the final re-measurement of the top candidates (`{ top, share }`).
    #[serde(default)]
    pub remeasure: Option<TuneRemeasure>,
    /// Tune specs: the acquisition function (`expected_improvement`, the default, or
    /// `knowledge_gradient`).
    #[serde(default)]
    pub acquisition: Option<l1_tune::Acquisition>,
}

/// A spec that passed validation: the settings every kind shares, and its kind with the
/// settings only that kind takes.
#[derive(Clone, Debug)]
pub struct Spec {
    pub kind: SpecKind,
    pub name: Spanned<String>,
    pub description: Option<String>,
    pub targets: Targets,
    pub space: Space,
    pub baseline: Baseline,
    pub measure: Measure,
}

impl Spec {
    /// The document's shared settings with `kind`'s own (built by validation, which checked
    /// that the document writes no field of the other kind).
    pub fn new(doc: &SpecDocument, kind: SpecKind) -> Self {
        Self {
            kind,
            name: doc.name.clone(),
            description: doc.description.clone(),
            targets: doc.targets.clone(),
            space: Space {
                dims: doc.space.dims.clone(),
                pins: doc.space.pins.clone(),
                knobs: doc.space.knobs.clone(),
            },
            baseline: doc.baseline.clone(),
            measure: doc.measure.clone(),
        }
    }

    /// The gates: a sweep's; a tune spec's trials are measured as a sweep with the default
    /// gates would be ([`DEFAULT_GATES`]: they set the early-stopping margin).
    pub fn gates(&self) -> &[Gate] {
        match &self.kind {
            SpecKind::Sweep(s) => &s.gates,
            SpecKind::Tune(_) => DEFAULT_GATES,
        }
    }

    /// How the space is covered: a tune spec searches every legal combo; a sweep as written
    /// (default exhaustive).
    pub fn mode(&self) -> Mode {
        match &self.kind {
            SpecKind::Sweep(s) => s.mode,
            SpecKind::Tune(_) => Mode::Exhaustive,
        }
    }

    /// The tune settings (`None` for a sweep).
    pub fn tune(&self) -> Option<&Tune> {
        match &self.kind {
            SpecKind::Tune(t) => Some(t.as_ref()),
            SpecKind::Sweep(_) => None,
        }
    }
}

/// A spec with where it came from.
#[derive(Clone, Debug)]
pub struct LoadedSpec {
    pub path: PathBuf,
    pub source: String,
    pub rendered: Rendered,
    /// The document as written (checked and typed by the validation stage, `validate`).
    pub doc: SpecDocument,
    /// Where each node of the rendered document is; see [`LoadedSpec::locations`].
    locations: OnceLock<Locations>,
}

impl LoadedSpec {
    /// A diagnostic at a line of the *rendered* text, mapped back to the source.
    pub fn diag_at(
        &self,
        message: impl Into<String>,
        rendered_line: usize,
        column: Option<usize>,
    ) -> Diagnostic {
        let line = self.rendered.source_line(rendered_line);
        let same = self
            .rendered
            .text
            .lines()
            .nth(rendered_line.saturating_sub(1))
            == self.source.lines().nth(line.saturating_sub(1));
        Diagnostic::new(&self.path, message).at(
            &self.source,
            line,
            if same { column } else { None },
        )
    }

    /// A diagnostic at a spanned value.
    pub fn diag_span<T>(&self, message: impl Into<String>, span: &Spanned<T>) -> Diagnostic {
        self.diag_at(
            message,
            span.referenced.line() as usize,
            Some(span.referenced.column() as usize),
        )
    }

    /// The parsed document's spans (indexed on first use: a valid spec never pays for it).
    pub fn locations(&self) -> &Locations {
        self.locations
            .get_or_init(|| Locations::of(&self.rendered.text))
    }

    /// A diagnostic at the entry `path` is written at (its key; the item of a list). When the
    /// spec does not write it, at the line of its nearest written parent (no column).
    pub fn diag_key(&self, message: impl Into<String>, path: &[Step]) -> Diagnostic {
        match self.locations().key(path) {
            Some((line, col)) => self.diag_at(message, line, Some(col)),
            None => self.diag_near(message, path),
        }
    }

    /// A diagnostic at the scalar `value` written at or under `path` (a list item, a map value);
    /// when there is none, at the line of `path` (or its nearest written parent), no column.
    pub fn diag_value(&self, message: impl Into<String>, path: &[Step], value: &str) -> Diagnostic {
        match self.locations().scalar_under(path, value) {
            Some((line, col)) => self.diag_at(message, line, Some(col)),
            None => self.diag_near(message, path),
        }
    }

    /// A diagnostic at the line of `path` or its nearest written parent, no column; at the
    /// first line when none is written.
    fn diag_near(&self, message: impl Into<String>, path: &[Step]) -> Diagnostic {
        let line = self.locations().nearest(path).map_or(1, |(line, _)| line);
        self.diag_at(message, line, None)
    }
}

/// Split `engine@version`.
pub fn split_engine(s: &str) -> Option<(&str, &str)> {
    let (e, v) = s.split_once('@')?;
    (!e.is_empty() && !v.is_empty()).then_some((e, v))
}

/// Render and parse one spec file.
pub fn load(path: &Path, ctx: &RenderContext) -> Result<LoadedSpec, Diagnostic> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| Diagnostic::new(path, format!("failed to read the spec file: {e}")))?;
    let rendered = render::render(path, &source, ctx)?;
    let doc: SpecDocument = yaml::parse(path, &source, Some(&rendered))?;
    let loaded = LoadedSpec {
        path: path.to_path_buf(),
        source,
        rendered,
        doc,
        locations: OnceLock::new(),
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem.strip_suffix(".yaml").unwrap_or(&stem).to_string();
    if loaded.doc.name.value != stem {
        return Err(loaded
            .diag_span(
                format!(
                    "spec name `{}` differs from its file name `{stem}`",
                    loaded.doc.name.value
                ),
                &loaded.doc.name,
            )
            .field("name")
            .expected(format!(
                "`{stem}` (test names start with the spec name, and `--exact` finds the file by it)"
            )));
    }
    let valid_name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if !valid_name(&loaded.doc.name.value) {
        return Err(loaded
            .diag_span(
                "spec name has characters that do not fit in a test name",
                &loaded.doc.name,
            )
            .field("name")
            .expected("letters, digits, `-` and `_`"));
    }
    Ok(loaded)
}

/// Every spec file under `path` (a file or a directory), sorted.
pub fn discover(path: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(Diagnostic::new(path, "spec path does not exist")
            .expected("a spec file or a directory of specs"));
    }
    // Links are followed (a linked directory of specs is found), but never into a directory
    // already visited: each directory is read once by its canonical path, so a link loop
    // (`self -> .`, `sub/up -> ..`) ends, and a file reached twice is one file.
    let mut out = Vec::new();
    let mut visited_dirs = std::collections::BTreeSet::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let canonical = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if !visited_dirs.insert(canonical) {
            continue;
        }
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            Diagnostic::new(&dir, format!("failed to read the spec directory: {e}"))
        })?;
        let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        // Reverse order on the stack: directories are read (and so claimed) in name order.
        entries.sort();
        for p in entries.into_iter().rev() {
            if p.is_dir() {
                stack.push(p);
            } else if is_spec_file(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    let mut files = std::collections::BTreeSet::new();
    out.retain(|p| files.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    Ok(out)
}

/// `*.yaml`, `*.yml` or `*.yaml.j2`.
pub fn is_spec_file(p: &Path) -> bool {
    let name = p
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".yaml.j2")
}

/// Find the spec file called `name` under `path` without reading any other spec.
pub fn find_by_name(path: &Path, name: &str) -> Option<PathBuf> {
    let files = if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        discover(path).ok()?
    };
    files.into_iter().find(|p| {
        let f = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        [".yaml", ".yml", ".yaml.j2"]
            .iter()
            .any(|ext| f.strip_suffix(ext) == Some(name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_match_their_serde_names() {
        for m in [Mode::Exhaustive, Mode::Quick] {
            let parsed: Mode = serde_saphyr::from_str(m.name()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed, m);
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("l1-discover-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        d
    }

    fn link(target: &str, at: &Path) {
        std::os::unix::fs::symlink(target, at).unwrap_or_else(|e| panic!("{}: {e}", at.display()));
    }

    #[test]
    fn a_link_to_its_own_directory_finds_each_spec_once() {
        let d = scratch("self");
        std::fs::write(d.join("a.yaml"), "kind: sweep\n").unwrap_or_default();
        link(".", &d.join("self"));
        // A file reached twice (here under a second name) is one file.
        link("a.yaml", &d.join("alias.yaml"));
        let files = discover(&d).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(files, vec![d.join("a.yaml")]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn symlink_loops_end_and_linked_specs_are_found() {
        // d/sub/up -> .. and d/self -> ../d: every path leads back to d (a loop that branches).
        let d = scratch("loop");
        std::fs::create_dir_all(d.join("sub")).unwrap_or_default();
        std::fs::write(d.join("a.yaml"), "kind: sweep\n").unwrap_or_default();
        std::fs::write(d.join("sub/b.yaml"), "kind: sweep\n").unwrap_or_default();
        link("..", &d.join("sub/up"));
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        link(&format!("../{name}"), &d.join("self"));
        // A spec directory outside `d`, linked in once: its specs are found (through the link).
        let other = scratch("loop-other");
        std::fs::write(other.join("c.yaml"), "kind: sweep\n").unwrap_or_default();
        link(&other.to_string_lossy(), &d.join("more"));
        let files = discover(&d).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            files,
            vec![
                d.join("a.yaml"),
                d.join("more/c.yaml"),
                d.join("sub/b.yaml")
            ]
        );
        let _ = std::fs::remove_dir_all(&d);
        let _ = std::fs::remove_dir_all(&other);
    }
}
