//! The report model: everything the HTML report, `results.json` and the metrics exposition show
//! about one run, as plain serde data.
//!
//! The harness builds it from a run directory (`l1_harness::report_model`); this crate only
//! renders it, so every format can be tested alone from a fixed model. Serialized as is, it *is*
//! the JSON results file: its shape is described by `reports/schema/results-v1.schema.json`, and
//! any breaking change bumps [`RESULTS_SCHEMA_VERSION`] (adding optional fields does not).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Version of the `results.json` format ([`RunReport`]). Bumped on breaking changes only:
/// removed or renamed fields, changed types or meanings. New optional fields keep it.
pub const RESULTS_SCHEMA_VERSION: u32 = 1;

/// The JSON Schema of [`RunReport`] at [`RESULTS_SCHEMA_VERSION`].
pub const RESULTS_SCHEMA: &str = include_str!("../schema/results-v1.schema.json");

/// One run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub schema_version: u32,
    pub run_id: String,
    /// When the report was built (Unix seconds).
    pub generated_unix_s: f64,
    /// The harness that built the report.
    pub harness_version: String,
    /// True when any result in the run comes from the simulated engine.
    pub simulated: bool,
    pub totals: Totals,
    /// One per spec target, ordered by spec then target.
    pub targets: Vec<TargetReport>,
    /// Trials listed as ignored, grouped by reason.
    pub ignored: Vec<IgnoredGroup>,
    /// Failed `invalid::` trials: spec errors (their diagnostics).
    #[serde(default)]
    pub invalid: Vec<InvalidSpec>,
    /// Trials that should have an outcome and have none, as `name (why)`.
    #[serde(default)]
    pub unfinished: Vec<String>,
    /// When the run last wrote anything (Unix seconds).
    #[serde(default)]
    pub last_activity_unix_s: Option<f64>,
    /// Files that could not be read, with why: reported, never skipped silently.
    pub unreadable: Vec<Unreadable>,
    /// Everything the run's results depend on, across targets.
    pub provenance: Provenance,
    /// Every trial record as read, in record order, for the formats that list trials one by one
    /// (JUnit). Not part of `results.json`: the targets above show the same trials as tables.
    #[serde(skip)]
    pub records: TrialListing,
}

/// The run's trial records as the run reader read them, for the per-trial formats (JUnit).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrialListing {
    /// Every trial record that read, in record order (`invalid::` trials included).
    pub trials: Vec<TrialEntry>,
    /// Trials that did not run, by reason, with their names.
    pub ignored: Vec<(String, Vec<String>)>,
    /// Trial records that could not be read (`file: why`, relative to the run directory), sorted.
    pub unreadable_records: Vec<String>,
    /// Files that are not records, and measurement records no trial references that do not
    /// read (`file: why`), in directory order.
    pub strays: Vec<String>,
}

impl TrialListing {
    /// Every file that could not be read (`file: why`, relative to the run directory): the
    /// unreadable trial records, the trials' unreadable or missing measurements (in record
    /// order), then the stray files.
    pub fn problems(&self) -> Vec<String> {
        let measurements = (self.trials.iter())
            .filter(|t| t.kind != "invalid")
            .filter_map(|t| t.measurement.as_ref()?.read.as_ref().err());
        (self.unreadable_records.iter())
            .chain(measurements)
            .chain(self.strays.iter())
            .cloned()
            .collect()
    }
}

/// One trial record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrialEntry {
    pub name: String,
    pub spec: String,
    /// `<engine@version>::<model>::<hardware>::<workload>`.
    pub target: String,
    /// `combo`, `baseline`, `gate`, `tune` or `invalid`.
    pub kind: String,
    pub passed: bool,
    pub simulated: bool,
    pub duration_s: f64,
    /// The trial's message, complete.
    pub message: String,
    /// The measurement the trial references, as read.
    pub measurement: Option<MeasurementEntry>,
    /// The gate verdicts (gate trials), with their numbers as recorded (not made finite).
    pub gates: Vec<GateReport>,
    /// The comparisons with the baseline of the first verdict that tabulates a speed metric.
    pub comparisons: Vec<ComparisonRow>,
    /// Output fidelity per combo (the `fidelity` gate's table, else `manual`'s).
    pub fidelity: Vec<(String, FidelityCell)>,
}

/// A trial's measurement record: its key and what reading it gave.
#[derive(Clone, Debug, PartialEq)]
pub struct MeasurementEntry {
    pub key: String,
    /// The record's facts, or why it could not be read (`file: why`, relative to the run).
    pub read: Result<MeasurementFacts, String>,
}

/// What the per-trial formats show of a measurement record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeasurementFacts {
    pub reps: usize,
    pub engine_version: Option<String>,
    pub catalog_snapshot: String,
    pub harness_version: String,
    pub simulated: bool,
    pub error: Option<String>,
    pub cache_hit: Option<CacheHitReport>,
    pub hardware_fingerprint: Option<String>,
}

/// One row of a gate's comparison table, as recorded: `improvement` is the direction-aware
/// ratio against the baseline (1.0 = equal).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ComparisonRow {
    pub combo: String,
    pub metric: String,
    pub trimmed_mean: f64,
    pub improvement: Option<f64>,
    pub improvement_ci: Option<(f64, f64)>,
    pub yuen_p: Option<f64>,
    pub adjusted_p: Option<f64>,
    pub hedges_g: Option<f64>,
}

/// Counts over the run: the runner's (`cargo test`'s `N passed; M failed; K ignored; F filtered
/// out`; nextest's skipped = ignored + filtered out), see the book's docs/src/reference/accounting.md.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Trial records read (combo, baseline, gate, tune and `invalid::` trials).
    pub trials: usize,
    pub passed: usize,
    /// Failed trials, the `invalid::` trials of spec errors included.
    pub failed: usize,
    /// Ignored trials that did not run.
    pub ignored: usize,
    /// Trials the runner's filter, partition or selection left out.
    #[serde(default)]
    pub filtered_out: usize,
    /// Trials that should have an outcome and have none.
    #[serde(default)]
    pub unfinished: usize,
    /// Of the failed trials, the `invalid::` trials (spec errors).
    #[serde(default)]
    pub invalid: usize,
    /// `passed`, `failed` or `unfinished` (a trial without an outcome).
    #[serde(default)]
    pub status: String,
    pub unreadable: usize,
    /// Measurement records of the run that read (measured or taken from the cache): what
    /// `l1 runs list` counts.
    pub measurements: usize,
    /// Measurements taken from the cache instead of measured in this run.
    pub cache_hits: usize,
    /// Sum of the trials' wall-clock durations.
    pub duration_s: f64,
}

/// Trials ignored for one reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IgnoredGroup {
    pub reason: String,
    pub count: usize,
}

/// A spec that could not be planned: its `invalid::` trial and the diagnostic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvalidSpec {
    pub trial: String,
    pub message: String,
}

/// A file that could not be read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unreadable {
    /// Path relative to the run directory.
    pub file: String,
    pub error: String,
}

/// Provenance: the values seen in the measurement records, deduplicated and sorted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub catalog_snapshots: Vec<String>,
    /// `engine version` as the installed engine reported it (`sim` for the simulator).
    pub engine_versions: Vec<String>,
    pub hardware_fingerprints: Vec<String>,
    /// Human-readable hardware descriptions the fingerprints were computed from.
    pub hardware: Vec<String>,
    pub harness_versions: Vec<String>,
}

/// One spec target: `<spec>::<engine@version>::<model>::<hardware>::<workload>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    /// `<spec>::<engine@version>::<model>::<hardware>::<workload>`.
    pub id: String,
    pub spec: String,
    pub engine: String,
    /// The version the spec asked for (`vllm@0.11` → `0.11`).
    pub engine_version: String,
    pub model: String,
    pub hardware: String,
    pub workload: String,
    pub simulated: bool,
    /// The spec's sweep mode (`exhaustive`, `quick`), `tune` for tune specs, `unknown` when
    /// the spec file could not be read.
    pub mode: String,
    /// The gate trial's verdict; `None` when the run holds no gate trial for the target (e.g.
    /// a partition that did not run it).
    pub passed: Option<bool>,
    /// The metric the table, intervals and comparisons are about (the first gate's metric).
    pub metric: MetricRef,
    /// The latency metric of the pareto plot.
    pub latency_metric: String,
    /// Fraction trimmed from each end of the reps.
    pub trim: f64,
    /// Label of the baseline combo.
    pub baseline: Option<String>,
    /// The first gate's winner (the best combo by the metric; on a failed target it is only
    /// the best candidate, and the summary names no winner).
    pub winner: Option<String>,
    /// True when a gate that tests for improvement (`topk5`) passed with this winner; only then
    /// is it called the winner in the summary and written by `l1 apply`. Optional (added
    /// without a version bump).
    #[serde(default)]
    pub winner_established: bool,
    /// P(best) of the winner, from the gate that named it. Optional (added without a version bump).
    #[serde(default)]
    pub p_best: Option<f64>,
    /// Why the comparison could not decide, with the suggested reps or launches (`more reps or
    /// launches needed (suggest N)`); `None` when it could. Optional (added without a version bump).
    #[serde(default)]
    pub inconclusive: Option<String>,
    pub gates: Vec<GateReport>,
    /// The baseline first, then the combos best first by the metric (direction-aware; combos
    /// without a value last, ties by label).
    pub combos: Vec<ComboReport>,
    /// Mean improvement over the baseline per value of each dimension that varies.
    pub main_effects: Vec<MainEffect>,
    pub provenance: TargetProvenance,
    /// Notes about how the report was built for this target (assumptions, recomputations).
    pub notes: Vec<String>,
}

/// A metric with its unit and direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricRef {
    pub name: String,
    pub unit: String,
    pub higher_is_better: bool,
}

/// One gate's verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    pub method: String,
    pub passed: bool,
    /// The gate's explanation, with its numbers.
    pub message: String,
    pub winner: Option<String>,
    /// Probability that the winner is the true best within the noise floor.
    pub p_best: Option<f64>,
    /// A `regression` gate's per-metric checks with its numbers (empty for other gates, and
    /// for runs recorded before gates wrote them: then the message is the only source).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<RegressionCheck>,
}

/// What a failing check means.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    /// `fail_on_regression`: evidence that the metric is worse than its ε allows.
    Regressed,
    /// `non_inferiority`: no evidence that the metric is within ε (not evidence of a regression).
    NotShownWithin,
}

impl Finding {
    pub fn words(self) -> &'static str {
        match self {
            Finding::Regressed => "regressed",
            Finding::NotShownWithin => "not shown within ε",
        }
    }
}

/// One metric's check of a `regression` gate (the winner against the baseline, or a combo
/// against its stored measurement), with the gate's numbers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegressionCheck {
    /// The combo compared (the gate's winner, or the stored comparison's combo).
    pub combo: Option<String>,
    /// What it was compared with: `None` the baseline, `Some(id)` the stored run `id`.
    pub against_run: Option<String>,
    pub metric: String,
    /// Direction-aware change in % (negative is worse).
    pub change_pct: f64,
    /// The gate's interval of `change_pct`.
    pub interval_pct: [f64; 2],
    /// The allowed regression in %.
    pub epsilon_pct: f64,
    /// The gate's one-sided p (Holm-adjusted under `fail_on_regression`).
    pub p: f64,
    /// True when this check failed the gate.
    pub failing: bool,
    /// What the check asks (and, when failing, what it found).
    pub finding: Finding,
}

impl RegressionCheck {
    /// The direction-aware ratio against the reference (1 = equal, below 1 worse).
    pub fn ratio(&self) -> f64 {
        1.0 + self.change_pct / 100.0
    }

    /// The interval of [`Self::ratio`].
    pub fn ratio_interval(&self) -> [f64; 2] {
        self.interval_pct.map(|x| 1.0 + x / 100.0)
    }
}

/// One combo (or the baseline) of a target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComboReport {
    /// The combo's name as in test names (`attn=flash_attn_v3,kv=paged,…`), or `baseline`.
    pub label: String,
    /// The full trial name.
    pub trial: String,
    pub is_baseline: bool,
    pub is_winner: bool,
    /// The combo trial's verdict (false when the measurement failed).
    pub passed: bool,
    /// The trial's message, first line.
    pub message: String,
    /// Catalog dimension -> value.
    pub dims: BTreeMap<String, String>,
    /// Engine-specific knobs.
    pub knobs: BTreeMap<String, String>,
    /// The measurement record's key.
    pub measurement: Option<String>,
    /// Why the measurement failed.
    pub error: Option<String>,
    pub simulated: bool,
    pub engine_version: Option<String>,
    pub duration_s: f64,
    /// Reps measured (all kept in `values`).
    pub reps: usize,
    /// Reps left after trimming (used for the trimmed mean).
    pub reps_used: usize,
    /// The metric per rep, in measurement order.
    pub values: Vec<f64>,
    /// Whether each rep of `values` was trimmed off.
    pub trimmed: Vec<bool>,
    /// Trimmed mean of the metric and its 95 % interval.
    pub trimmed_mean: Option<f64>,
    pub interval: Option<[f64; 2]>,
    /// Comparison with the baseline (absent for the baseline and for failed measurements).
    pub vs_baseline: Option<VsBaseline>,
    /// Trimmed means of throughput (output tok/s) and p95 latency, for the pareto plot.
    pub throughput: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    /// On the throughput/latency pareto frontier of the target.
    pub on_frontier: bool,
    pub cache_hit: Option<CacheHitReport>,
    /// Engine log files named by the measurement's notes.
    pub logs: Vec<String>,
    /// Output fidelity against the baseline's answers to the probes, where a gate compared them
    /// (the `fidelity` gate, else `manual`); `None` for the baseline and when no gate did.
    #[serde(default)]
    pub fidelity: Option<FidelityCell>,
    /// Latency percentiles (TTFT, ITL, TPOT, E2E at p50/p95/p99), each the trimmed mean over
    /// the reps (the target's trim) of the rep's own percentile; `None` without reps.
    /// Optional (added without a version bump).
    #[serde(default)]
    pub latency: Option<LatencyReport>,
}

/// One combo's latency percentiles in milliseconds: per metric, each rep's p50/p95/p99
/// (percentiles over that rep's requests) aggregated over the reps by the trimmed mean.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LatencyReport {
    /// Time to first token.
    pub ttft_ms: Percentiles,
    /// Inter-token latency.
    pub itl_ms: Percentiles,
    /// Time per output token.
    pub tpot_ms: Percentiles,
    /// End-to-end request latency.
    pub e2e_ms: Percentiles,
}

/// p50/p95/p99 of one latency metric; `None` where the reps do not carry it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// One combo's output fidelity against the baseline (see `docs/src/gates.md`, "fidelity").
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FidelityCell {
    /// Within every threshold of its precision class (false when not judged).
    pub passed: bool,
    /// The gate whose table it comes from: `fidelity` (enforced) or `manual` (reported only).
    pub gate: String,
    /// True when the gate enforces it: a failing combo cannot be the winner.
    pub enforced: bool,
    /// Precision class the thresholds were chosen by: `bf16`, `fp8` or `q4`.
    pub precision: String,
    /// Probes compared (both sides answered).
    pub probes: usize,
    /// Share of probes whose generated tokens equal the reference's.
    pub exact_match: Option<f64>,
    /// Mean of first divergence over length (1: nothing diverged).
    pub matched_prefix: Option<f64>,
    /// Mean first-divergence position (tokens).
    pub mean_first_divergence: Option<f64>,
    /// First-divergence positions of the probes that diverged, sorted.
    pub divergence_positions: Vec<u32>,
    /// Mean |Δ logprob| of the chosen tokens over identical-context positions (nats).
    pub mean_abs_logprob_delta: Option<f64>,
    /// Mean top-k Jensen–Shannon divergence (bits) over identical-context positions.
    pub topk_js_divergence: Option<f64>,
    /// The weaker logprob support of the two sides: `top_k`, `chosen`, `none` (tokens only).
    pub logprobs: Option<String>,
    /// The thresholds applied.
    pub limits: FidelityLimits,
    /// Each failed check: `measure observed vs threshold`.
    pub failures: Vec<String>,
    /// What was not checked and why.
    pub notes: Vec<String>,
    /// Why nothing could be compared ("not judged", which fails), when nothing could.
    pub unjudged: Option<String>,
    /// Probes that could not be compared, with why.
    pub failed_probes: Vec<String>,
    /// Probes whose token count differs from the reference's.
    pub length_mismatches: Vec<String>,
}

/// Fidelity thresholds of a combo (its class defaults with the gate's overrides).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FidelityLimits {
    pub min_exact_match: f64,
    pub min_matched_prefix: f64,
    pub max_logprob_delta: f64,
    pub max_topk_divergence: f64,
}

/// A combo against the baseline, direction-aware: positive `improvement_pct` is better.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VsBaseline {
    /// (ratio − 1) · 100, where the ratio is candidate/baseline for higher-is-better metrics and
    /// baseline/candidate for lower-is-better ones.
    pub improvement_pct: f64,
    /// 95 % interval of `improvement_pct`.
    pub interval_pct: Option<[f64; 2]>,
    /// Yuen's two-sided p-value.
    pub p: Option<f64>,
    /// Holm-adjusted p-value (from the gate).
    pub adjusted_p: Option<f64>,
    /// Hedges' g.
    pub effect_size: Option<f64>,
    /// `gate` (the gate's own numbers) or `recomputed` (from the reps, by the report).
    pub source: String,
}

/// Where a cached measurement came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheHitReport {
    pub from_run: String,
    pub from_key: String,
    pub measured_unix_s: f64,
}

/// The effect of one dimension.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MainEffect {
    pub dimension: String,
    pub levels: Vec<EffectLevel>,
}

/// One value of a dimension: the mean improvement over the baseline of the combos having it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EffectLevel {
    pub value: String,
    pub mean_improvement_pct: f64,
    pub combos: usize,
}

/// What a target's results depend on.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetProvenance {
    pub catalog_snapshots: Vec<String>,
    pub engine_versions: Vec<String>,
    pub hardware_fingerprints: Vec<String>,
    pub harness_versions: Vec<String>,
    /// The spec file, relative to the repository root, when it was found.
    pub spec_file: Option<String>,
    /// The spec's source text as it is now (it may have changed since the run).
    pub spec_text: Option<String>,
}

impl RunReport {
    /// The model as pretty JSON (the `results.json` file).
    pub fn to_json(&self) -> String {
        // Serializing plain data with string keys cannot fail; NaN/inf become null.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
