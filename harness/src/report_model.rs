//! Build the report model ([`l1_reports::model::RunReport`]) from a run directory: the trial and
//! measurement records, statistics recomputed with [`crate::stats`] where the gate did not
//! tabulate them, and the spec's source text for provenance.
//!
//! Nothing is skipped silently: a record that cannot be read (truncated, foreign, missing) and a
//! file that is not a record are listed in `unreadable`, and the trial that needed it shows the
//! error in its row.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use l1_engines::metrics::{Direction, metric};
use l1_reports::model::{
    CacheHitReport, ComboReport, EffectLevel, FidelityCell, FidelityLimits, GateReport,
    IgnoredGroup, InvalidSpec, MainEffect, MetricRef, Provenance, RESULTS_SCHEMA_VERSION,
    RunReport, TargetProvenance, TargetReport, Totals, Unreadable, VsBaseline,
};

use crate::record::{self, MeasurementRecord, RunDir, TrialRecord};
use crate::stats;

/// The throughput axis of the pareto plot.
pub const THROUGHPUT_METRIC: &str = "output_tokens_per_s";
/// The latency axis of the pareto plot (the first of these the reps carry).
pub const LATENCY_METRICS: &[&str] = &["e2e_p95_ms", "ttft_p95_ms", "itl_p95_ms"];
/// Trim assumed when the spec (and so its `measure.trim`) cannot be read.
pub const DEFAULT_TRIM: f64 = 0.10;

/// The metric of a gate row that carries output fidelity instead of a speed comparison.
pub const FIDELITY_METRIC: &str = "fidelity";

/// A gate row's fidelity verdict as the report shows it; `gate` is the verdict's method.
pub fn fidelity_cell(c: &crate::fidelity::ComboFidelity, gate: &str) -> FidelityCell {
    use l1_engines::probe::LogprobSupport;
    let m = &c.measures;
    let finite = |x: Option<f64>| x.filter(|v| v.is_finite());
    FidelityCell {
        passed: c.passed,
        gate: gate.to_string(),
        enforced: gate == "fidelity",
        precision: c.precision.name().to_string(),
        probes: m.probes,
        exact_match: finite(m.exact_match),
        matched_prefix: finite(m.matched_prefix),
        mean_first_divergence: finite(m.mean_first_divergence),
        divergence_positions: m.divergence_positions.clone(),
        mean_abs_logprob_delta: finite(m.mean_abs_logprob_delta),
        topk_js_divergence: finite(m.topk_js_divergence),
        logprobs: m.logprobs.map(|l| {
            match l {
                LogprobSupport::TopK => "top_k",
                LogprobSupport::Chosen => "chosen",
                LogprobSupport::None => "none",
            }
            .to_string()
        }),
        limits: FidelityLimits {
            min_exact_match: c.limits.min_exact_match,
            min_matched_prefix: c.limits.min_matched_prefix,
            max_logprob_delta: c.limits.max_logprob_delta,
            max_topk_divergence: c.limits.max_topk_divergence,
        },
        failures: c.failures.clone(),
        notes: c.notes.clone(),
        unjudged: m.unjudged.clone(),
        failed_probes: m.failed_probes.clone(),
        length_mismatches: m.length_mismatches.clone(),
    }
}

/// Per combo, its fidelity from a gate trial's verdicts: the `fidelity` gate's rows first, then
/// `manual`'s, then any other gate's rows that carry it.
pub fn fidelity_cells(gates: &[crate::gates::GateVerdict]) -> BTreeMap<String, FidelityCell> {
    let rank = |m: &str| match m {
        "fidelity" => 0,
        "manual" => 1,
        _ => 2,
    };
    let mut ordered: Vec<&crate::gates::GateVerdict> = gates.iter().collect();
    ordered.sort_by_key(|v| rank(&v.method));
    let mut out = BTreeMap::new();
    for v in ordered {
        for row in &v.rows {
            if let Some(f) = &row.fidelity {
                out.entry(row.combo.clone())
                    .or_insert_with(|| fidelity_cell(f, &v.method));
            }
        }
    }
    out
}

/// Where to look for what the records do not hold.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// The specs directory (for spec text, trim and mode); `None` skips them.
    pub specs: Option<PathBuf>,
    /// The repository root, to show spec paths relative to it.
    pub root: Option<PathBuf>,
    /// Ignored trials by reason, for a run directory without a plan (records written by hand
    /// or by an older harness); a run's own plan says which trials were ignored otherwise.
    pub ignored: BTreeMap<String, usize>,
    /// The build time to record (Unix seconds); `None` takes the current time.
    pub now_unix_s: Option<f64>,
}

/// What the spec file tells the report.
struct SpecInfo {
    trim: f64,
    mode: String,
    file: Option<String>,
    text: Option<String>,
    note: Option<String>,
}

/// Build the report for `run`.
pub fn build(run: &RunDir, src: &Sources) -> RunReport {
    let acc = crate::accounting::Accounting::of(run);
    let bad = &acc.unreadable;
    let mut unreadable: Vec<Unreadable> = bad.iter().map(|e| split_problem(run, e)).collect();
    // Spec errors (`invalid::` trials) have no target: counted, listed in the totals' failures.
    let (invalid, trials): (Vec<&TrialRecord>, Vec<&TrialRecord>) =
        acc.records.iter().partition(|t| t.kind == "invalid");
    // Ignored trials by reason: the run's plan, else (a run without one) what the caller knows.
    let ignored: BTreeMap<String, usize> = if acc.runner == "unknown" {
        src.ignored.clone()
    } else {
        acc.ignored_by_reason().into_iter().collect()
    };
    let mut measurements: BTreeMap<String, Result<MeasurementRecord, String>> = BTreeMap::new();
    let mut read = |key: &str| -> Result<MeasurementRecord, String> {
        measurements
            .entry(key.to_string())
            .or_insert_with(|| match run.read_measurement(key) {
                Ok(Some(m)) => Ok(m),
                Ok(None) => Err(format!(
                    "{}: measurement record missing",
                    run.measurement_path(key).display()
                )),
                Err(e) => Err(e),
            })
            .clone()
    };

    // Group by spec target, keeping the order of spec then target.
    let mut groups: BTreeMap<(String, String), Vec<&TrialRecord>> = BTreeMap::new();
    for t in trials.iter().copied() {
        groups
            .entry((t.spec.clone(), t.target.to_string()))
            .or_default()
            .push(t);
    }
    let mut spec_cache: BTreeMap<String, SpecInfo> = BTreeMap::new();
    let mut targets = Vec::new();
    let mut prov = ProvSets::default();
    let (measurement_records, cache_hit_records) = count_measurements(run);
    let mut totals = Totals {
        trials: acc.records.len(),
        passed: acc.passed,
        failed: acc.failed,
        ignored: ignored.values().sum(),
        filtered_out: acc.filtered_out,
        unfinished: acc.unfinished.len(),
        invalid: invalid.len(),
        status: acc.verdict().as_str().to_string(),
        duration_s: acc
            .records
            .iter()
            .map(|t| finite_or(t.duration_s, 0.0))
            .sum(),
        measurements: measurement_records,
        cache_hits: cache_hit_records,
        ..Totals::default()
    };
    let mut referenced = BTreeSet::new();
    for ((spec, target_name), group) in &groups {
        let info = spec_cache
            .entry(spec.clone())
            .or_insert_with(|| spec_info(spec, src));
        let first = group[0];
        let gate = group.iter().find(|t| t.kind == "gate");
        // The first gate's metric; fidelity rows (metric `fidelity`) are not a speed metric.
        let metric_name = gate
            .and_then(|g| {
                g.gates
                    .iter()
                    .find_map(|v| v.rows.iter().find(|r| r.metric != FIDELITY_METRIC))
            })
            .map(|r| r.metric.clone())
            .unwrap_or_else(|| THROUGHPUT_METRIC.to_string());
        let info_m = metric(&metric_name);
        let higher = info_m.is_none_or(|m| m.direction == Direction::HigherIsBetter);
        let prefix = format!("{spec}::{target_name}::");
        let winner = gate.and_then(|g| g.gates.iter().find_map(|v| v.winner.clone()));
        let fidelity = gate.map(|g| fidelity_cells(&g.gates)).unwrap_or_default();
        let mut tprov = ProvSets::default();
        let mut notes: Vec<String> = info.note.iter().cloned().collect();
        let mut combos = Vec::new();
        let mut arms: Vec<(usize, Vec<f64>)> = Vec::new();
        let mut latency_metric: Option<&str> = None;
        for t in group.iter().filter(|t| t.kind != "gate") {
            let label = t
                .name
                .split_once(&prefix)
                .map(|(_, c)| c.to_string())
                .unwrap_or_else(|| t.name.rsplit("::").next().unwrap_or(&t.name).to_string());
            let is_baseline = t.kind == "baseline";
            let mut c = ComboReport {
                is_winner: winner.as_deref() == Some(label.as_str()),
                label,
                trial: t.name.clone(),
                is_baseline,
                passed: t.passed,
                message: t.message.lines().next().unwrap_or("").to_string(),
                dims: BTreeMap::new(),
                knobs: BTreeMap::new(),
                measurement: t.measurement.clone(),
                error: None,
                simulated: t.simulated,
                engine_version: None,
                duration_s: finite_or(t.duration_s, 0.0),
                reps: 0,
                reps_used: 0,
                values: Vec::new(),
                trimmed: Vec::new(),
                trimmed_mean: None,
                interval: None,
                vs_baseline: None,
                throughput: None,
                latency_p95_ms: None,
                on_frontier: false,
                cache_hit: None,
                logs: Vec::new(),
                fidelity: None,
                latency: None,
            };
            if let Some(key) = &t.measurement {
                referenced.insert(key.clone());
                match read(key) {
                    Ok(m) => {
                        fill_from_measurement(&mut c, &m, &metric_name, info.trim);
                        latency_metric = latency_metric.or_else(|| {
                            LATENCY_METRICS
                                .iter()
                                .copied()
                                .find(|l| m.reps.iter().any(|r| r.contains_key(*l)))
                        });
                        c.latency_p95_ms = latency_metric
                            .and_then(|l| trimmed_of(&m, l, info.trim).map(|(tm, _)| tm));
                        tprov.add(&m);
                        prov.add(&m);
                    }
                    Err(e) => {
                        let u = split_problem(run, &e);
                        c.error = Some(format!("{}: {}", u.file, u.error));
                        if !unreadable.contains(&u) {
                            unreadable.push(u);
                        }
                    }
                }
            }
            if !c.is_baseline {
                c.fidelity = fidelity.get(&c.label).cloned();
            }
            if !c.values.is_empty() {
                arms.push((combos.len(), c.values.clone()));
            }
            combos.push(c);
        }
        // Baseline first, then the measured combos best first by the metric (direction-aware),
        // then the failed ones (their few reps are no ranking), ties by label.
        combos.sort_by(|a, b| {
            let key = |c: &ComboReport| {
                c.trimmed_mean
                    .filter(|v| v.is_finite() && c.passed && c.error.is_none())
                    .map(|v| if higher { -v } else { v })
            };
            b.is_baseline
                .cmp(&a.is_baseline)
                .then_with(|| match (key(a), key(b)) {
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                })
                .then_with(|| a.label.cmp(&b.label))
        });
        compare_with_baseline(
            &mut combos,
            gate.copied(),
            &metric_name,
            higher,
            info.trim,
            &mut notes,
        );
        mark_frontier(&mut combos);
        let main_effects = main_effects(&combos);
        let headline = gate
            .map(|g| crate::headline::headline(&g.gates))
            .unwrap_or_default();
        targets.push(TargetReport {
            id: format!("{spec}::{target_name}"),
            spec: spec.clone(),
            engine: first.target.engine.clone(),
            engine_version: first.target.version.clone(),
            model: first.target.model.clone(),
            hardware: first.target.hardware.clone(),
            workload: first.target.workload.clone(),
            simulated: group.iter().any(|t| t.simulated) || combos.iter().any(|c| c.simulated),
            mode: info.mode.clone(),
            passed: gate.map(|g| g.passed),
            metric: MetricRef {
                name: metric_name.clone(),
                unit: info_m.map_or("", |m| m.unit).to_string(),
                higher_is_better: higher,
            },
            latency_metric: latency_metric.unwrap_or(LATENCY_METRICS[0]).to_string(),
            trim: info.trim,
            baseline: combos
                .iter()
                .find(|c| c.is_baseline)
                .map(|c| c.label.clone()),
            winner,
            winner_established: headline.established,
            p_best: headline.p_best,
            inconclusive: headline.inconclusive,
            gates: gate
                .map(|g| {
                    g.gates
                        .iter()
                        .map(|v| GateReport {
                            method: v.method.clone(),
                            passed: v.passed,
                            message: v.message.clone(),
                            winner: v.winner.clone(),
                            p_best: v.p_best.filter(|p| p.is_finite()),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            combos,
            main_effects,
            provenance: TargetProvenance {
                catalog_snapshots: tprov.snapshots.into_iter().collect(),
                engine_versions: tprov.engine_versions.into_iter().collect(),
                hardware_fingerprints: tprov.fingerprints.into_iter().collect(),
                harness_versions: tprov.harness.into_iter().collect(),
                spec_file: info.file.clone(),
                spec_text: info.text.clone(),
            },
            notes,
        });
        // A gate trial that failed before producing verdicts still explains itself.
        if let Some(g) = gate
            && g.gates.is_empty()
            && !g.passed
            && let Some(t) = targets.last_mut()
        {
            t.gates.push(GateReport {
                method: "gate".into(),
                passed: false,
                message: g.message.clone(),
                winner: None,
                p_best: None,
            });
        }
    }
    unreadable.extend(stray_files(run, &referenced));
    unreadable.sort_by(|a, b| a.file.cmp(&b.file));
    unreadable.dedup();
    totals.unreadable = unreadable.len();
    RunReport {
        schema_version: RESULTS_SCHEMA_VERSION,
        run_id: run.run_id.clone(),
        generated_unix_s: src.now_unix_s.unwrap_or_else(record::now_unix),
        harness_version: record::HARNESS_VERSION.to_string(),
        simulated: targets.iter().any(|t| t.simulated),
        totals,
        targets,
        ignored: ignored
            .iter()
            .map(|(reason, count)| IgnoredGroup {
                reason: reason.clone(),
                count: *count,
            })
            .collect(),
        invalid: invalid
            .iter()
            .map(|t| InvalidSpec {
                trial: t.name.clone(),
                message: t.message.clone(),
            })
            .collect(),
        unfinished: acc.unfinished_lines(),
        last_activity_unix_s: acc.last_activity_unix_s,
        unreadable,
        provenance: Provenance {
            catalog_snapshots: prov.snapshots.into_iter().collect(),
            engine_versions: prov.engine_versions.into_iter().collect(),
            hardware_fingerprints: prov.fingerprints.into_iter().collect(),
            hardware: prov.hardware.into_iter().collect(),
            harness_versions: prov.harness.into_iter().collect(),
        },
    }
}

/// The run's sweep mode for metrics labels: the one mode of its targets, `mixed` for several,
/// `none` for a run without targets.
pub fn run_mode(r: &RunReport) -> String {
    let modes: BTreeSet<&str> = r.targets.iter().map(|t| t.mode.as_str()).collect();
    match modes.len() {
        0 => "none".into(),
        1 => modes.into_iter().next().unwrap_or("none").to_string(),
        _ => "mixed".into(),
    }
}

/// The run's wall-clock span: from the earliest measurement start in this run to the latest
/// trial record's modification time; the sum of trial durations when that is unknown.
pub fn run_wall_time(run: &RunDir, r: &RunReport) -> f64 {
    let mut start = f64::INFINITY;
    if let Ok(entries) = std::fs::read_dir(run.path.join("measurements")) {
        for e in entries.flatten() {
            if let Ok(Some(m)) = record::read_json::<MeasurementRecord>(&e.path())
                && m.cache_hit.is_none()
                && m.started_unix_s.is_finite()
                && m.started_unix_s > 0.0
            {
                start = start.min(m.started_unix_s);
            }
        }
    }
    let mut end = f64::NEG_INFINITY;
    if let Ok(entries) = std::fs::read_dir(run.path.join("trials")) {
        for e in entries.flatten() {
            if let Some(t) = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            {
                end = end.max(t.as_secs_f64());
            }
        }
    }
    if start.is_finite() && end.is_finite() && end >= start {
        end - start
    } else {
        r.totals.duration_s
    }
}

#[derive(Default)]
struct ProvSets {
    snapshots: BTreeSet<String>,
    engine_versions: BTreeSet<String>,
    fingerprints: BTreeSet<String>,
    hardware: BTreeSet<String>,
    harness: BTreeSet<String>,
}

impl ProvSets {
    fn add(&mut self, m: &MeasurementRecord) {
        self.snapshots.insert(m.catalog_snapshot.clone());
        self.harness.insert(m.harness_version.clone());
        let ev = match (&m.engine_version, m.simulated) {
            (Some(v), _) => format!("{} {v}", m.target.engine),
            (None, true) => format!("{} (simulated)", m.target.engine),
            (None, false) => format!(
                "{}@{} (version not detected)",
                m.target.engine, m.target.version
            ),
        };
        self.engine_versions.insert(ev);
        if let Some(f) = &m.fingerprints {
            self.fingerprints.insert(f.hardware_fingerprint.clone());
            if !f.hardware.is_empty() {
                self.hardware.insert(f.hardware.clone());
            }
        }
    }
}

fn finite_or(x: f64, d: f64) -> f64 {
    if x.is_finite() { x } else { d }
}

/// `path: error` → file relative to the run directory and the error.
fn split_problem(run: &RunDir, problem: &str) -> Unreadable {
    let prefix = format!("{}/", run.path.display());
    let p = problem.replace(&prefix, "");
    match p.split_once(": ") {
        Some((f, e)) if !f.contains(' ') || f.ends_with(".json") => Unreadable {
            file: f.to_string(),
            error: e.to_string(),
        },
        _ => Unreadable {
            file: String::new(),
            error: p,
        },
    }
}

fn spec_info(spec: &str, src: &Sources) -> SpecInfo {
    let mut info = SpecInfo {
        trim: DEFAULT_TRIM,
        mode: "unknown".into(),
        file: None,
        text: None,
        note: None,
    };
    let Some(dir) = &src.specs else {
        info.note = Some(format!(
            "specs directory not given: trim {DEFAULT_TRIM} assumed for the intervals"
        ));
        return info;
    };
    let Some(path) = crate::spec::find_by_name(dir, spec) else {
        info.note = Some(format!(
            "spec `{spec}` not found under {}: trim {DEFAULT_TRIM} assumed, no spec text",
            dir.display()
        ));
        return info;
    };
    info.file = Some(
        src.root
            .as_deref()
            .and_then(|r| path.strip_prefix(r).ok())
            .unwrap_or(&path)
            .display()
            .to_string(),
    );
    info.text = std::fs::read_to_string(&path).ok();
    let ctx = crate::render::RenderContext {
        env: crate::render::RenderContext::env_from_process(),
        ..Default::default()
    };
    match crate::spec::load(&path, &ctx) {
        Ok(l) => {
            info.trim = l.spec.measure.trim;
            info.mode = format!("{:?}", l.spec.space.mode).to_lowercase();
        }
        Err(d) => {
            info.note = Some(format!(
                "spec `{spec}` could not be rendered outside the run ({}): trim {DEFAULT_TRIM} assumed",
                d.to_string().lines().next().unwrap_or("")
            ));
        }
    }
    info
}

/// Trimmed mean and 95 % interval of one metric of a measurement.
fn trimmed_of(m: &MeasurementRecord, name: &str, trim: f64) -> Option<(f64, [f64; 2])> {
    let v: Vec<f64> = m.reps.iter().filter_map(|r| r.get(name).copied()).collect();
    interval(&v, trim, m.launches.max(1) as usize)
}

fn interval(v: &[f64], trim: f64, launches: usize) -> Option<(f64, [f64; 2])> {
    let (tm, se) = stats::trimmed_mean_se(v, trim, 0.0, launches).ok()?;
    let h = v.len() - 2 * stats::trim_count(v.len(), trim);
    let q = stats::t_quantile(h as f64 - 1.0, 0.975);
    if !(tm.is_finite() && se.is_finite() && q.is_finite()) {
        return tm.is_finite().then_some((tm, [tm, tm]));
    }
    Some((tm, [tm - q * se, tm + q * se]))
}

fn fill_from_measurement(c: &mut ComboReport, m: &MeasurementRecord, metric: &str, trim: f64) {
    c.dims = m.combo.dims.clone();
    c.knobs = m.combo.knobs.clone();
    c.simulated |= m.simulated;
    c.engine_version = m.engine_version.clone();
    c.error = m.error.clone();
    c.cache_hit = m.cache_hit.as_ref().map(|h| CacheHitReport {
        from_run: h.from_run.clone(),
        from_key: h.from_key.clone(),
        measured_unix_s: finite_or(h.measured_unix_s, 0.0),
    });
    c.logs = m.notes.iter().filter_map(|n| log_path(n)).collect();
    c.logs.dedup();
    c.values = m
        .reps
        .iter()
        .filter_map(|r| r.get(metric).copied())
        .filter(|v| v.is_finite())
        .collect();
    c.reps = c.values.len();
    let g = stats::trim_count(c.reps, trim);
    let mut order: Vec<usize> = (0..c.reps).collect();
    order.sort_by(|a, b| c.values[*a].total_cmp(&c.values[*b]));
    c.trimmed = vec![false; c.reps];
    if stats::check_reps(c.reps, trim).is_ok() {
        for &i in order.iter().take(g).chain(order.iter().rev().take(g)) {
            c.trimmed[i] = true;
        }
        c.reps_used = c.reps - 2 * g;
    } else {
        c.reps_used = c.reps;
    }
    if let Some((tm, ci)) = interval(&c.values, trim, m.launches.max(1) as usize) {
        c.trimmed_mean = Some(tm);
        c.interval = Some(ci);
    }
    c.throughput = trimmed_of(m, crate::report_model::THROUGHPUT_METRIC, trim).map(|(t, _)| t);
    c.latency = latency(m, trim);
}

/// Latency percentiles of a measurement: per metric, each rep's own p50/p95/p99 aggregated
/// over the reps by the trimmed mean (the target's trim); `None` when no rep carries any.
fn latency(m: &MeasurementRecord, trim: f64) -> Option<l1_reports::model::LatencyReport> {
    use l1_reports::model::{LatencyReport, Percentiles};
    let of = |name: &str| -> Percentiles {
        let one = |p: &str| {
            let v: Vec<f64> = (m.reps.iter())
                .filter_map(|r| r.get(&format!("{name}_{p}_ms")).copied())
                .filter(|x| x.is_finite())
                .collect();
            match v.as_slice() {
                [one] => Some(*one),
                _ => stats::trimmed_mean(&v, trim).ok().filter(|x| x.is_finite()),
            }
        };
        Percentiles {
            p50: one("p50"),
            p95: one("p95"),
            p99: one("p99"),
        }
    };
    let l = LatencyReport {
        ttft_ms: of("ttft"),
        itl_ms: of("itl"),
        tpot_ms: of("tpot"),
        e2e_ms: of("e2e"),
    };
    let any = [&l.ttft_ms, &l.itl_ms, &l.tpot_ms, &l.e2e_ms]
        .iter()
        .any(|p| p.p50.is_some() || p.p95.is_some() || p.p99.is_some());
    any.then_some(l)
}

/// `engine log: /path` (or `engine log /path:`) in a note → the path.
fn log_path(note: &str) -> Option<String> {
    let i = note.find("engine log")?;
    let rest = note[i + "engine log".len()..].trim_start_matches([':', ' ']);
    let p: String = rest
        .split_whitespace()
        .next()?
        .trim_end_matches(':')
        .to_string();
    p.starts_with('/').then_some(p)
}

fn compare_with_baseline(
    combos: &mut [ComboReport],
    gate: Option<&TrialRecord>,
    metric: &str,
    higher: bool,
    trim: f64,
    notes: &mut Vec<String>,
) {
    let rows: BTreeMap<&str, &crate::gates::Row> = gate
        .and_then(|g| {
            g.gates
                .iter()
                .find(|v| v.rows.iter().any(|r| r.metric != FIDELITY_METRIC))
        })
        .map(|v| {
            v.rows
                .iter()
                .filter(|r| r.metric == metric)
                .map(|r| (r.combo.as_str(), r))
                .collect()
        })
        .unwrap_or_default();
    let base: Option<Vec<f64>> = combos
        .iter()
        .find(|c| c.is_baseline && c.error.is_none())
        .map(|c| c.values.clone());
    let mut recomputed = 0;
    for c in combos.iter_mut().filter(|c| !c.is_baseline) {
        if let Some(r) = rows.get(c.label.as_str())
            && let Some(imp) = r.improvement.filter(|x| x.is_finite())
        {
            c.vs_baseline = Some(VsBaseline {
                improvement_pct: (imp - 1.0) * 100.0,
                interval_pct: r
                    .improvement_ci
                    .filter(|(a, b)| a.is_finite() && b.is_finite())
                    .map(|(a, b)| [(a - 1.0) * 100.0, (b - 1.0) * 100.0]),
                p: r.yuen_p.filter(|p| p.is_finite()),
                adjusted_p: r.adjusted_p.filter(|p| p.is_finite()),
                effect_size: r.hedges_g.filter(|g| g.is_finite()),
                source: "gate".into(),
            });
            continue;
        }
        let (Some(b), None) = (&base, &c.error) else {
            continue;
        };
        if let Ok(cmp) = stats::compare(&c.values, b, trim, 0.95) {
            let (ratio, (lo, hi)) = if higher {
                (cmp.ratio, cmp.ratio_ci)
            } else {
                (
                    1.0 / cmp.ratio,
                    (1.0 / cmp.ratio_ci.1, 1.0 / cmp.ratio_ci.0),
                )
            };
            if !ratio.is_finite() {
                continue;
            }
            recomputed += 1;
            c.vs_baseline = Some(VsBaseline {
                improvement_pct: (ratio - 1.0) * 100.0,
                interval_pct: (lo.is_finite() && hi.is_finite())
                    .then_some([(lo - 1.0) * 100.0, (hi - 1.0) * 100.0]),
                p: Some(cmp.yuen_p).filter(|p| p.is_finite()),
                adjusted_p: None,
                effect_size: Some(if higher { cmp.hedges_g } else { -cmp.hedges_g })
                    .filter(|g| g.is_finite()),
                source: "recomputed".into(),
            });
        }
    }
    if recomputed > 0 {
        notes.push(format!(
            "{recomputed} comparison(s) recomputed from the reps (Yuen's test, no launch-to-launch \
             component, no multiplicity adjustment): the gate did not tabulate them"
        ));
    }
}

/// A combo is on the frontier when no other combo has both higher throughput and lower latency
/// (at least as good in both, better in one).
fn mark_frontier(combos: &mut [ComboReport]) {
    let pts: Vec<Option<(f64, f64)>> = combos
        .iter()
        .map(|c| match (c.throughput, c.latency_p95_ms, &c.error) {
            (Some(t), Some(l), None) if t.is_finite() && l.is_finite() => Some((t, l)),
            _ => None,
        })
        .collect();
    for (i, c) in combos.iter_mut().enumerate() {
        let Some((t, l)) = pts[i] else { continue };
        c.on_frontier = !pts.iter().enumerate().any(|(j, p)| {
            j != i && p.is_some_and(|(t2, l2)| t2 >= t && l2 <= l && (t2 > t || l2 < l))
        });
    }
}

fn main_effects(combos: &[ComboReport]) -> Vec<MainEffect> {
    let measured: Vec<&ComboReport> = combos
        .iter()
        .filter(|c| !c.is_baseline && c.vs_baseline.is_some())
        .collect();
    let mut dims: BTreeMap<&str, BTreeMap<&str, (f64, usize)>> = BTreeMap::new();
    for c in &measured {
        let Some(v) = &c.vs_baseline else { continue };
        for (d, val) in c.dims.iter().chain(c.knobs.iter()) {
            let e = dims.entry(d).or_default().entry(val).or_default();
            e.0 += v.improvement_pct;
            e.1 += 1;
        }
    }
    dims.into_iter()
        .filter(|(_, levels)| levels.len() > 1)
        .map(|(d, levels)| MainEffect {
            dimension: d.to_string(),
            levels: levels
                .into_iter()
                .map(|(v, (sum, n))| EffectLevel {
                    value: v.to_string(),
                    mean_improvement_pct: sum / n as f64,
                    combos: n,
                })
                .collect(),
        })
        .collect()
}

/// The run's measurement records that read (measured or taken from the cache) and, of them,
/// the cache hits: what `l1 runs list` counts once the run is ingested.
fn count_measurements(run: &RunDir) -> (usize, usize) {
    let (mut n, mut hits) = (0, 0);
    if let Ok(entries) = std::fs::read_dir(run.path.join("measurements")) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json")
                && let Ok(Some(m)) = record::read_json::<MeasurementRecord>(&p)
            {
                n += 1;
                hits += usize::from(m.cache_hit.is_some());
            }
        }
    }
    (n, hits)
}

/// Files that are not records, and measurement records no trial references that do not read.
/// The temporary files of atomic writes in progress ([`record::is_temporary`]) are neither: a
/// report read during a run does not report them. Shared by every report (HTML, JSON, JUnit).
pub fn stray_files(run: &RunDir, referenced: &BTreeSet<String>) -> Vec<Unreadable> {
    let mut out = Vec::new();
    for sub in ["trials", "measurements"] {
        let Ok(entries) = std::fs::read_dir(run.path.join(sub)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            let rel = relative(run, &p);
            if record::is_temporary(&p) {
                continue;
            }
            if p.extension().is_none_or(|x| x != "json") {
                out.push(Unreadable {
                    file: rel,
                    error: "not an l1 record (records are .json); not read".into(),
                });
            } else if sub == "measurements" {
                let key = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                if !referenced.contains(&key)
                    && let Err(e) = record::read_json::<MeasurementRecord>(&p)
                {
                    out.push(split_problem(run, &e));
                }
            }
        }
    }
    out
}

fn relative(run: &RunDir, p: &Path) -> String {
    p.strip_prefix(&run.path).unwrap_or(p).display().to_string()
}

/// The run's tune sessions in the store: trials per outcome, and the share of each session's
/// budget used (`spec::target` -> [0, 1]).
type TuneMetrics = (BTreeMap<String, u64>, BTreeMap<String, f64>);

fn tune_metrics(target_dir: &Path, run_id: &str) -> Result<TuneMetrics, String> {
    crate::results::with_store(target_dir, |s| {
        let mut trials = BTreeMap::new();
        let mut burn = BTreeMap::new();
        for sess in s.tune_sessions()? {
            if sess.run_id.as_deref() != Some(run_id) {
                continue;
            }
            for t in s.tune_trials(&sess.session_id)? {
                *trials.entry(t.outcome).or_insert(0u64) += 1;
            }
            if let Ok(state) = serde_json::from_str::<l1_tune::TuneState>(&sess.bayesian_state) {
                let used = 1.0 - state.budget.remaining(&state.usage).fraction;
                burn.insert(format!("{}::{}", sess.spec, sess.target), used);
            }
        }
        Ok((trials, burn))
    })
}

/// The files [`write_all`] wrote.
#[derive(Clone, Debug)]
pub struct Written {
    pub html: PathBuf,
    pub json: PathBuf,
    pub metrics: PathBuf,
    /// The Pushgateway pushed to (`L1_PUSHGATEWAY`), if any.
    pub pushed_to: Option<String>,
    /// Problems that did not stop the reports (a failed push).
    pub warnings: Vec<String>,
}

/// Build the report for `run` and write `report.html` and `results.json` into the run
/// directory, and the run's metrics into the textfile (`L1_METRICS_TEXTFILE`, else
/// `<target>/l1/metrics/l1.prom`); push them when `L1_PUSHGATEWAY` is set.
pub fn write_all(
    run: &RunDir,
    target_dir: &Path,
    src: &Sources,
) -> Result<(RunReport, Written), String> {
    use l1_reports::prometheus;
    let report = build(run, src);
    let html_text = l1_reports::html::render_html(&report).map_err(|e| e.to_string())?;
    let html = run.path.join("report.html");
    prometheus::write_atomic(&html, &html_text).map_err(|e| e.to_string())?;
    let json = run.path.join("results.json");
    prometheus::write_atomic(&json, &report.to_json()).map_err(|e| e.to_string())?;
    let metrics = prometheus::textfile_path(target_dir);
    let mut contribution = prometheus::RunContribution::from_report(
        &report,
        &run_mode(&report),
        run_wall_time(run, &report),
    );
    let mut warnings = Vec::new();
    match tune_metrics(target_dir, &run.run_id) {
        Ok((trials, burn)) => {
            contribution.tune_trials = trials;
            contribution.tune_budget_used = burn;
        }
        Err(e) => warnings.push(format!("tune metrics left out: {e}")),
    }
    let exposition = prometheus::update_textfile(&metrics, &run.run_id, contribution)
        .map_err(|e| e.to_string())?;
    crate::progress::emit(
        run,
        &crate::progress::Event::RunFinished {
            ts: record::now_unix(),
            pid: std::process::id(),
            passed: report.totals.passed,
            failed: report.totals.failed,
        },
    );
    let pushed_to = std::env::var("L1_PUSHGATEWAY")
        .ok()
        .filter(|g| !g.is_empty());
    if let Some(g) = &pushed_to
        && let Err(e) = prometheus::push(g, &prometheus::instance_name(), &exposition)
    {
        warnings.push(e.to_string());
    }
    Ok((
        report,
        Written {
            html,
            json,
            metrics,
            pushed_to,
            warnings,
        },
    ))
}
