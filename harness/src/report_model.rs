//! Build the report model ([`l1_reports::model::RunReport`]) from a run directory: the trial and
//! measurement records, statistics recomputed with [`crate::stats`] where the gate did not
//! tabulate them, and the spec's source text for provenance.
//!
//! What the run used (trim, mode) comes from its trial records ([`crate::model::UsedSettings`]),
//! never from the spec file as it is now: a spec edited after the run does not change its report.
//!
//! Nothing is skipped silently: a record that cannot be read (truncated, foreign, missing) and a
//! file that is not a record are listed in `unreadable`, and the trial that needed it shows the
//! error in its row.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use l1_engines::metrics::{Direction, metric};
use l1_reports::model::{
    ComboReport, GateReport, IgnoredGroup, InvalidSpec, MetricRef, Provenance,
    RESULTS_SCHEMA_VERSION, RunReport, TargetProvenance, TargetReport, Totals, Unreadable,
};

mod combos;

/// Each combo's fidelity as the report shows it (built by [`crate::fidelity`]).
pub use crate::fidelity::{fidelity_cell, fidelity_cells};
pub use crate::model::FIDELITY_METRIC;
use crate::model::{MeasurementRecord, TrialRecord};
use crate::record::{self, RunDir};
use crate::run_reader::MeasurementReadError;
use combos::{
    compare_with_baseline, fill_from_measurement, main_effects, mark_frontier, trimmed_of,
};

/// The throughput axis of the pareto plot.
pub const THROUGHPUT_METRIC: &str = "output_tokens_per_s";
/// The latency axis of the pareto plot (the first of these the reps carry).
pub const LATENCY_METRICS: &[&str] = &["e2e_p95_ms", "ttft_p95_ms", "itl_p95_ms"];
/// Trim assumed for trial records that do not say what the run used (an older harness).
pub const DEFAULT_TRIM: f64 = 0.10;

/// Where to look for what the records do not hold.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// The specs directory (for the spec's text); `None` leaves it out.
    pub specs: Option<PathBuf>,
    /// The repository root, to show spec paths relative to it.
    pub root: Option<PathBuf>,
    /// Ignored trials by reason, for a run directory without a plan (records written by hand
    /// or by an older harness); a run's own plan says which trials were ignored otherwise.
    pub ignored: BTreeMap<String, usize>,
    /// The build time to record (Unix seconds); `None` takes the current time.
    pub now_unix_s: Option<f64>,
}

/// What the report knows of a target's spec: the settings the run used, from its records, and
/// the spec file's text for provenance.
struct SpecInfo {
    trim: f64,
    mode: String,
    file: Option<String>,
    text: Option<String>,
    note: Option<String>,
}

/// Build the report for `run`.
pub fn build(run: &RunDir, src: &Sources) -> RunReport {
    build_from(run, &crate::accounting::Accounting::of(run), src)
}

/// Build the report for `run` from its accounting (its records, as read once for the summary,
/// the exit code and every report format; [`crate::run_reader`] lists them for JUnit).
pub fn build_from(run: &RunDir, acc: &crate::accounting::Accounting, src: &Sources) -> RunReport {
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
    let mut measurements: BTreeMap<String, Result<MeasurementRecord, MeasurementReadError>> =
        BTreeMap::new();
    let mut read = |key: &str| -> Result<MeasurementRecord, MeasurementReadError> {
        measurements
            .entry(key.to_string())
            .or_insert_with(|| match run.read_measurement(key) {
                Ok(Some(m)) => Ok(m),
                Ok(None) => Err(MeasurementReadError::Missing {
                    path: run.measurement_path(key),
                }),
                Err(e) => Err(MeasurementReadError::Unreadable(std::sync::Arc::new(e))),
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
    let mut spec_cache: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
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
        let source = spec_cache
            .entry(spec.clone())
            .or_insert_with(|| spec_source(spec, src));
        let info = spec_info(group, source);
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
                        let u = split_problem(run, &e.to_string());
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
                            checks: v.checks.clone(),
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
                checks: Vec::new(),
            });
        }
    }
    let strays = stray_files(run, &referenced);
    unreadable.extend(strays.iter().cloned());
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
        records: crate::run_reader::listing(run, acc, &mut read, &strays),
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

pub(super) fn finite_or(x: f64, d: f64) -> f64 {
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

/// The spec file's path (relative to the repository root) and text, for provenance only.
fn spec_source(spec: &str, src: &Sources) -> (Option<String>, Option<String>) {
    let Some(path) = src
        .specs
        .as_ref()
        .and_then(|d| crate::spec::find_by_name(d, spec))
    else {
        return (None, None);
    };
    let file = src
        .root
        .as_deref()
        .and_then(|r| path.strip_prefix(r).ok())
        .unwrap_or(&path)
        .display()
        .to_string();
    (Some(file), std::fs::read_to_string(&path).ok())
}

/// What the run used for a target, from its trial records (the gate trial's first, else any);
/// records without it (an older harness) get [`DEFAULT_TRIM`] and a note saying so.
fn spec_info(group: &[&TrialRecord], source: &(Option<String>, Option<String>)) -> SpecInfo {
    let used = group
        .iter()
        .find(|t| t.kind == "gate" && t.used.is_some())
        .or_else(|| group.iter().find(|t| t.used.is_some()))
        .and_then(|t| t.used.as_ref());
    let (trim, mode, note) = match used {
        Some(u) => (u.trim, u.mode.clone(), None),
        None => (
            DEFAULT_TRIM,
            "unknown".to_string(),
            Some(format!(
                "the trial records do not say what the run used (written by an older harness): trim {DEFAULT_TRIM} assumed for the intervals"
            )),
        ),
    };
    SpecInfo {
        trim,
        mode,
        file: source.0.clone(),
        text: source.1.clone(),
        note,
    }
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
                    out.push(split_problem(run, &e.to_string()));
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

fn tune_metrics(
    target_dir: &Path,
    run_id: &str,
) -> Result<TuneMetrics, crate::results::ResultsError> {
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
    /// The JUnit XML, when asked for.
    pub junit: Option<PathBuf>,
    /// The Pushgateway pushed to (`L1_PUSHGATEWAY`), if any.
    pub pushed_to: Option<String>,
    /// Problems that did not stop the reports (a failed push).
    pub warnings: Vec<String>,
}

/// Build the report for `run` from its accounting ([`build_from`]: the run is read once) and
/// hand it to every report format ([`l1_reports::reporter`]): JUnit XML to `junit` when given,
/// `report.html` and `results.json` into the run directory, and the run's metrics into the
/// textfile (`L1_METRICS_TEXTFILE`, else `<target>/l1/metrics/l1.prom`), pushed when
/// `L1_PUSHGATEWAY` is set.
pub fn write_all(
    run: &RunDir,
    acc: &crate::accounting::Accounting,
    target_dir: &Path,
    src: &Sources,
    junit: Option<&Path>,
) -> Result<(RunReport, Written), l1_reports::reporter::ReportError> {
    use l1_reports::reporter::{self, Reporter};
    let report = build_from(run, acc, src);
    let mut warnings = Vec::new();
    let (tune_trials, tune_budget_used) = match tune_metrics(target_dir, &run.run_id) {
        Ok(m) => m,
        Err(e) => {
            warnings.push(format!("tune metrics left out: {e}"));
            Default::default()
        }
    };
    let pushed_to = crate::settings::env().pushgateway.clone();
    let written = Written {
        html: run.path.join("report.html"),
        json: run.path.join("results.json"),
        metrics: l1_reports::prometheus::textfile_path(target_dir),
        junit: junit.map(Path::to_path_buf),
        pushed_to: pushed_to.clone(),
        warnings: Vec::new(),
    };
    let metrics = reporter::Prometheus {
        mode: run_mode(&report),
        wall_s: run_wall_time(run, &report),
        tune_trials,
        tune_budget_used,
        pushgateway: pushed_to,
    };
    let mut reporters: Vec<(&dyn Reporter, &Path)> = Vec::new();
    if let Some(j) = &written.junit {
        reporters.push((&reporter::Junit, j));
    }
    reporters.push((&reporter::Html, &written.html));
    reporters.push((&reporter::Json, &written.json));
    reporters.push((&metrics, &written.metrics));
    for (r, out) in reporters {
        warnings.extend(r.write(&report, out)?.warnings);
    }
    crate::progress::emit(
        run,
        &crate::progress::Event::RunFinished {
            ts: record::now_unix(),
            pid: std::process::id(),
            passed: report.totals.passed,
            failed: report.totals.failed,
        },
    );
    Ok((
        report,
        Written {
            warnings,
            ..written
        },
    ))
}
