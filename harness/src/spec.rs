//! Spec files (`specs/**/*.yaml`): the typed form after rendering, and loading (render with
//! minijinja, then parse with unknown fields rejected).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::diag::{Diagnostic, did_you_mean};
use crate::render::{self, RenderContext, Rendered};
use crate::selection::{Scalar, Selection};
use crate::yaml::{self, Locations, Step};

/// What a spec asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpecKind {
    /// Tier 1: every (or a covering set of) legal combo(s) of each target.
    Sweep,
    /// Tier 2: Bayesian optimisation over the legal combos of each target, within a budget.
    Tune,
}

/// How the space is covered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    /// `engine@version`, e.g. `sim@1.0`, `vllm@0.13`.
    pub engines: Vec<Spanned<String>>,
    pub models: Vec<Spanned<String>>,
    pub hardware: Vec<Spanned<String>>,
    pub workloads: Vec<Spanned<String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Space {
    /// As written (`None`: not written, so [`Mode::Exhaustive`]); see [`Spec::mode`].
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

/// What gates compare against.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// Gate methods. Their names (`topk5`, `pareto`, ...) are defined once, in [`GateMethod::name`]:
/// serde, [`FromStr`](std::str::FromStr) (the `L1_GATES` parser) and [`Display`](fmt::Display)
/// all use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GateMethod {
    /// The top k combos by the metric each beat the baseline by at least the margin.
    Topk5,
    /// The winning combo lies on the throughput-versus-latency pareto frontier.
    Pareto,
    /// No metric of the winner regresses against the baseline by more than epsilon.
    Regression,
    /// No verdict: every combo is surfaced for review.
    Manual,
    /// The baseline (the deployed combo) measured now against its recorded calibration:
    /// 5–15 % is minor drift (a warning), over 15 % is significant (fails).
    Drift,
    /// Output fidelity: every combo's greedy answers to the probe set stay within thresholds
    /// of the baseline's (per precision class); a combo that fails cannot win another gate.
    Fidelity,
}

impl GateMethod {
    /// Every method, in the order they are listed to users.
    pub const ALL: [GateMethod; 6] = [
        Self::Topk5,
        Self::Pareto,
        Self::Regression,
        Self::Manual,
        Self::Drift,
        Self::Fidelity,
    ];

    /// Every method's name, in the order of [`GateMethod::ALL`].
    pub const NAMES: [&'static str; 6] = [
        Self::ALL[0].name(),
        Self::ALL[1].name(),
        Self::ALL[2].name(),
        Self::ALL[3].name(),
        Self::ALL[4].name(),
        Self::ALL[5].name(),
    ];

    /// The method's name as specs, `L1_GATES`, records and reports spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Topk5 => "topk5",
            Self::Pareto => "pareto",
            Self::Regression => "regression",
            Self::Manual => "manual",
            Self::Drift => "drift",
            Self::Fidelity => "fidelity",
        }
    }
}

impl fmt::Display for GateMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A gate method name that is none of [`GateMethod::NAMES`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown gate method `{name}`")]
pub struct UnknownGateMethod {
    pub name: String,
}

impl UnknownGateMethod {
    /// `did you mean ...?` for a near miss of a method name.
    pub fn help(&self) -> Option<String> {
        did_you_mean(&self.name, &GateMethod::NAMES)
    }
}

impl FromStr for GateMethod {
    type Err = UnknownGateMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownGateMethod {
                name: s.to_string(),
            })
    }
}

impl Serialize for GateMethod {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for GateMethod {
    /// As a unit-variant enum (as serde derives it, so errors and their locations read the
    /// same), with the names of [`GateMethod::name`].
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, EnumAccess, VariantAccess};

        /// The variant name, checked as the derived identifier visitor checks it.
        struct Name;
        impl<'de> de::DeserializeSeed<'de> for Name {
            type Value = GateMethod;
            fn deserialize<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<GateMethod, D::Error> {
                d.deserialize_identifier(self)
            }
        }
        impl de::Visitor<'_> for Name {
            type Value = GateMethod;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("variant identifier")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GateMethod, E> {
                v.parse()
                    .map_err(|_| E::unknown_variant(v, &GateMethod::NAMES))
            }
        }

        struct Method;
        impl<'de> de::Visitor<'de> for Method {
            type Value = GateMethod;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("enum GateMethod")
            }
            fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<GateMethod, A::Error> {
                let (method, variant) = data.variant_seed(Name)?;
                variant.unit_variant()?;
                Ok(method)
            }
        }
        d.deserialize_enum("GateMethod", &GateMethod::NAMES, Method)
    }
}

/// The two forms of the `regression` gate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegressionForm {
    /// Fail only on evidence of a regression beyond ε (one-sided test per metric, Holm across
    /// the metrics): false failures are controlled, missed regressions are not. The default.
    #[default]
    FailOnRegression,
    /// Pass only on evidence that no metric regresses by ε or more (non-inferiority: the
    /// one-sided bound of every metric's change lies above −ε): a missed regression is what is
    /// controlled; too few reps fail.
    NonInferiority,
}

/// Fidelity thresholds (all optional: unset ones keep the precision class's default).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FidelityThresholds {
    /// Least share of probes whose greedy tokens equal the reference's.
    #[serde(default)]
    pub min_exact_match: Option<f64>,
    /// Least mean matched prefix (first divergence over length).
    #[serde(default)]
    pub min_matched_prefix: Option<f64>,
    /// Largest mean |Δ logprob| of chosen tokens (nats) over identical contexts.
    #[serde(default)]
    pub max_logprob_delta: Option<f64>,
    /// Largest mean top-k Jensen–Shannon divergence (bits) over identical contexts.
    #[serde(default)]
    pub max_topk_divergence: Option<f64>,
}

/// One gate. Fields that do not apply to a method are rejected at validation.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub method: GateMethod,
    /// The metric ranked and compared (default `output_tokens_per_s`).
    #[serde(default)]
    pub metric: Option<Spanned<String>>,
    /// Minimum relative improvement over the baseline (topk5; default 0.03).
    #[serde(default)]
    pub margin: Option<f64>,
    /// How many top combos must win (topk5; default 5).
    #[serde(default)]
    pub k: Option<u32>,
    /// Largest allowed relative regression (regression; default 0.05).
    #[serde(default)]
    pub epsilon: Option<f64>,
    /// Per-metric ε overriding `epsilon` (regression), e.g. `{ ttft_p95_ms: 0.10 }`.
    #[serde(default)]
    pub epsilons: Option<BTreeMap<String, f64>>,
    /// Metrics checked for regressions (regression; default throughput, TTFT p95, E2E p95).
    #[serde(default)]
    pub metrics: Option<Vec<Spanned<String>>>,
    /// The latency axis of the frontier (pareto; default `e2e_p95_ms`).
    #[serde(default)]
    pub latency_metric: Option<Spanned<String>>,
    /// Family-wise significance level (default 0.05).
    #[serde(default)]
    pub alpha: Option<f64>,
    /// Fidelity: thresholds for every precision class (override the class defaults).
    #[serde(default)]
    pub min_exact_match: Option<f64>,
    #[serde(default)]
    pub min_matched_prefix: Option<f64>,
    #[serde(default)]
    pub max_logprob_delta: Option<f64>,
    #[serde(default)]
    pub max_topk_divergence: Option<f64>,
    /// Fidelity: thresholds per precision class (`bf16`, `fp8`, `q4`), applied after the flat ones.
    #[serde(default)]
    pub per_dtype: Option<BTreeMap<String, FidelityThresholds>>,
    /// Fidelity: fail combos whose engine returns no logprobs instead of comparing tokens only.
    #[serde(default)]
    pub require_logprobs: Option<bool>,
    /// Regression: what each combo is compared with: `baseline` (this run's baseline combo, the
    /// default) or `stored` (the same combo's newest measurement in the results store from a run
    /// labelled `label`, with the same cache key: same engine version, model, hardware,
    /// workload and plan).
    #[serde(default)]
    pub against: Option<String>,
    /// Regression against stored results: the run label to compare with (default `main`).
    #[serde(default)]
    pub label: Option<String>,
    /// Regression: `fail_on_regression` (default) or `non_inferiority` (see [`RegressionForm`]).
    #[serde(default)]
    pub form: Option<RegressionForm>,
    /// Largest minimum detectable effect (relative, 80 % power) at which the winner's comparison
    /// still counts as decided; above it the verdict is marked inconclusive with the reps or
    /// launches that would bring it down (default 0.10; for `regression` at least its ε).
    #[serde(default)]
    pub max_mde: Option<f64>,
}

impl Gate {
    /// A gate of `method` with every setting at its default.
    pub const fn new(method: GateMethod) -> Self {
        Self {
            method,
            metric: None,
            margin: None,
            k: None,
            epsilon: None,
            epsilons: None,
            metrics: None,
            latency_metric: None,
            alpha: None,
            min_exact_match: None,
            min_matched_prefix: None,
            max_logprob_delta: None,
            max_topk_divergence: None,
            per_dtype: None,
            require_logprobs: None,
            against: None,
            label: None,
            form: None,
            max_mde: None,
        }
    }

    /// The gate's flat fidelity thresholds.
    pub fn fidelity_thresholds(&self) -> FidelityThresholds {
        FidelityThresholds {
            min_exact_match: self.min_exact_match,
            min_matched_prefix: self.min_matched_prefix,
            max_logprob_delta: self.max_logprob_delta,
            max_topk_divergence: self.max_topk_divergence,
        }
    }

    /// Whether any fidelity-only field is set.
    pub fn has_fidelity_fields(&self) -> bool {
        self.fidelity_thresholds() != FidelityThresholds::default()
            || self.per_dtype.is_some()
            || self.require_logprobs.is_some()
    }
}

/// A tune spec's objective: the metric optimised and its direction.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneObjective {
    pub metric: Spanned<String>,
    pub direction: l1_tune::Direction,
}

/// A tune spec's constraint: `{ metric, at_most: X }` or `{ metric, at_least: X }`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneConstraint {
    pub metric: Spanned<String>,
    #[serde(default)]
    pub at_most: Option<f64>,
    #[serde(default)]
    pub at_least: Option<f64>,
}

/// A tune spec's budget: at least one limit, each positive.
#[derive(Clone, Debug, Default, Deserialize)]
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
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneRemeasure {
    #[serde(default)]
    pub top: Option<usize>,
    #[serde(default)]
    pub share: Option<f64>,
}

/// A tune spec's gate: the recommended point must beat the baseline by `margin` (relative).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TuneGate {
    #[serde(default)]
    pub margin: Option<f64>,
}

/// The gates of a sweep that lists none.
pub const DEFAULT_GATES: &[Gate] = &[Gate::new(GateMethod::Topk5)];

/// A spec after rendering and parsing.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub kind: SpecKind,
    /// Must equal the file stem: test names start with it, and `--exact` finds the file by it.
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub targets: Targets,
    #[serde(default)]
    pub space: Space,
    #[serde(default)]
    pub baseline: Baseline,
    #[serde(default)]
    pub measure: Measure,
    /// As written (`None`: not written); see [`Spec::gates`].
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

impl Spec {
    /// The gates: as written, else [`DEFAULT_GATES`].
    pub fn gates(&self) -> &[Gate] {
        self.gates.as_deref().unwrap_or(DEFAULT_GATES)
    }

    /// How the space is covered: a tune spec searches every legal combo; a sweep as written
    /// (default exhaustive).
    pub fn mode(&self) -> Mode {
        match self.kind {
            SpecKind::Tune => Mode::Exhaustive,
            SpecKind::Sweep => self.space.mode.unwrap_or_default(),
        }
    }
}

/// A spec with where it came from.
#[derive(Clone, Debug)]
pub struct LoadedSpec {
    pub path: PathBuf,
    pub source: String,
    pub rendered: Rendered,
    pub spec: Spec,
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
    let spec: Spec = yaml::parse(path, &source, Some(&rendered))?;
    let loaded = LoadedSpec {
        path: path.to_path_buf(),
        source,
        rendered,
        spec,
        locations: OnceLock::new(),
    };
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = stem.strip_suffix(".yaml").unwrap_or(&stem).to_string();
    if loaded.spec.name.value != stem {
        return Err(loaded
            .diag_span(
                format!(
                    "spec name `{}` differs from its file name `{stem}`",
                    loaded.spec.name.value
                ),
                &loaded.spec.name,
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
    if !valid_name(&loaded.spec.name.value) {
        return Err(loaded
            .diag_span(
                "spec name has characters that do not fit in a test name",
                &loaded.spec.name,
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
    fn gate_method_names_are_one_list_for_serde_parsing_and_display() {
        for m in GateMethod::ALL {
            let name = m.to_string();
            assert_eq!(name.parse::<GateMethod>(), Ok(m));
            let parsed: GateMethod =
                serde_saphyr::from_str(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(parsed, m);
            assert_eq!(serde_json::to_string(&m).ok(), Some(format!("\"{name}\"")));
        }
        assert_eq!(
            GateMethod::NAMES,
            [
                "topk5",
                "pareto",
                "regression",
                "manual",
                "drift",
                "fidelity"
            ]
        );
        let e = "paretto".parse::<GateMethod>().err();
        assert_eq!(
            e.as_ref().map(ToString::to_string).as_deref(),
            Some("unknown gate method `paretto`")
        );
        assert_eq!(
            e.and_then(|e| e.help()).as_deref(),
            Some("did you mean `pareto`?")
        );
        // serde reports an unknown name as derived enums do (the YAML layer turns the list into
        // choices and a suggestion).
        let err = serde_saphyr::from_str::<GateMethod>("Topk5")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains(
                "unknown variant `Topk5`, expected one of topk5, pareto, regression, manual, drift, fidelity"
            )),
            "{err:?}"
        );
    }

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
