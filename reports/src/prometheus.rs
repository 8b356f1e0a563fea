//! Prometheus metrics for l1 runs, with the origin's names prefixed `inferenceiq_l1_`, in the
//! text exposition format (version 0.0.4) that node_exporter's textfile collector and the
//! Pushgateway read.
//!
//! A run is a batch job, so counters must survive the process: [`MetricsState`] keeps each
//! reported run's contribution (keyed by run id, so reporting a run twice does not count it
//! twice) in a JSON file beside the textfile, and the exposition is the sum over all runs. Runs
//! beyond [`MAX_RUNS_KEPT`] are folded into a base total, so the file stays small. The textfile
//! is written atomically (temporary file in the same directory, then rename), as the textfile
//! collector requires, so a scrape never sees half a file.
//!
//! Families for parts that do not exist yet (tune sessions, the kernel registry) are exposed with
//! `# HELP`/`# TYPE` and no samples, so dashboards and alert rules can be written against them and
//! no fake zero is claimed for a label set that was never observed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::model::RunReport;

/// Metric-name prefix.
pub const PREFIX: &str = "inferenceiq_l1_";

/// Upper bounds (seconds) of the `run_duration_seconds` histogram's buckets.
pub const DURATION_BUCKETS: &[f64] = &[
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0, 43200.0,
];

/// Runs kept individually in the state file before the oldest are folded into the base.
pub const MAX_RUNS_KEPT: usize = 500;

/// Failures of writing or pushing metrics.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("failed to {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid l1 metrics state file: {source}")]
    State {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Write(#[from] crate::atomic::WriteError),
    #[error("failed to push metrics to {url}: {detail}")]
    Push { url: String, detail: String },
}

/// One run's contribution to the counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunContribution {
    /// `mode`, `status` of the run (one run: one count).
    pub runs: BTreeMap<String, BTreeMap<String, u64>>,
    /// Histogram of run durations: counts per bucket index (`DURATION_BUCKETS.len()` = +Inf).
    pub duration_buckets: Vec<u64>,
    pub duration_sum: f64,
    pub duration_count: u64,
    pub combo_evaluations: u64,
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// outcome -> count of the run's tune-session trials.
    pub tune_trials: BTreeMap<String, u64>,
    /// `spec::target` -> share of that tune session's budget used, in [0, 1] (a gauge: the
    /// newest run that reported the session wins).
    #[serde(default)]
    pub tune_budget_used: BTreeMap<String, f64>,
    /// gate method -> rejections.
    pub gate_rejections: BTreeMap<String, u64>,
    /// When the run was reported.
    pub reported_unix_s: f64,
}

impl RunContribution {
    /// What one run adds, from its report. `mode` is the run's sweep mode (`quick`,
    /// `exhaustive`, … or `mixed`); status is the run's (`unfinished` when a trial has no
    /// outcome), else `failed` when any trial failed or any file was unreadable, `passed`
    /// otherwise; the duration is the run's wall time when known.
    pub fn from_report(r: &RunReport, mode: &str, duration_s: f64) -> Self {
        let status = if r.totals.status == "unfinished" || r.totals.unfinished > 0 {
            "unfinished"
        } else if r.totals.failed > 0 || r.totals.unreadable > 0 {
            "failed"
        } else {
            "passed"
        };
        let mut c = RunContribution {
            reported_unix_s: r.generated_unix_s,
            ..Default::default()
        };
        c.runs
            .entry(sanitize_label(mode))
            .or_default()
            .insert(status.into(), 1);
        c.observe_duration(duration_s);
        for t in &r.targets {
            for combo in &t.combos {
                if combo.measurement.is_none() {
                    continue;
                }
                c.combo_evaluations += 1;
                if combo.cache_hit.is_some() {
                    c.cache_hits += 1;
                } else {
                    c.cache_misses += 1;
                }
            }
            for g in t.gates.iter().filter(|g| !g.passed) {
                *c.gate_rejections.entry(g.method.clone()).or_default() += 1;
            }
        }
        c
    }

    fn observe_duration(&mut self, s: f64) {
        let s = if s.is_finite() && s >= 0.0 { s } else { 0.0 };
        self.duration_buckets = vec![0; DURATION_BUCKETS.len() + 1];
        let i = DURATION_BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(DURATION_BUCKETS.len());
        self.duration_buckets[i] = 1;
        self.duration_sum = s;
        self.duration_count = 1;
    }

    fn add(&mut self, o: &RunContribution) {
        for (mode, st) in &o.runs {
            for (status, n) in st {
                *self
                    .runs
                    .entry(mode.clone())
                    .or_default()
                    .entry(status.clone())
                    .or_default() += n;
            }
        }
        if self.duration_buckets.len() < o.duration_buckets.len() {
            self.duration_buckets.resize(o.duration_buckets.len(), 0);
        }
        for (i, n) in o.duration_buckets.iter().enumerate() {
            self.duration_buckets[i] += n;
        }
        self.duration_sum += o.duration_sum;
        self.duration_count += o.duration_count;
        self.combo_evaluations += o.combo_evaluations;
        self.cache_hits += o.cache_hits;
        self.cache_misses += o.cache_misses;
        for (k, n) in &o.tune_trials {
            *self.tune_trials.entry(k.clone()).or_default() += n;
        }
        // Gauges: contributions are added oldest first, so the newer value replaces the older.
        for (k, v) in &o.tune_budget_used {
            self.tune_budget_used.insert(k.clone(), *v);
        }
        for (k, n) in &o.gate_rejections {
            *self.gate_rejections.entry(k.clone()).or_default() += n;
        }
        self.reported_unix_s = self.reported_unix_s.max(o.reported_unix_s);
    }
}

/// Cumulative metrics over every reported run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsState {
    /// Runs folded out of `runs` (the oldest ones).
    pub base: RunContribution,
    /// Run id -> contribution.
    pub runs: BTreeMap<String, RunContribution>,
    /// Registry entries per status (Tier 3; empty until the registry exists).
    #[serde(default)]
    pub registry_entries: BTreeMap<String, u64>,
}

impl MetricsState {
    /// Load the state file; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<Self, MetricsError> {
        match std::fs::read_to_string(path) {
            Ok(t) => serde_json::from_str(&t).map_err(|source| MetricsError::State {
                path: path.to_path_buf(),
                source,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(MetricsError::Io {
                what: "read",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Record (or replace) a run's contribution; folds the oldest runs into the base beyond
    /// [`MAX_RUNS_KEPT`].
    pub fn record(&mut self, run_id: &str, c: RunContribution) {
        self.runs.insert(run_id.to_string(), c);
        while self.runs.len() > MAX_RUNS_KEPT {
            let oldest = self
                .runs
                .iter()
                .min_by(|a, b| a.1.reported_unix_s.total_cmp(&b.1.reported_unix_s))
                .map(|(k, _)| k.clone());
            let Some(k) = oldest else { break };
            if let Some(c) = self.runs.remove(&k) {
                self.base.add(&c);
            }
        }
    }

    /// The sum over all runs.
    pub fn total(&self) -> RunContribution {
        let mut t = self.base.clone();
        let mut runs: Vec<&RunContribution> = self.runs.values().collect();
        runs.sort_by(|a, b| a.reported_unix_s.total_cmp(&b.reported_unix_s));
        for c in runs {
            t.add(c);
        }
        t
    }

    /// The text exposition (format 0.0.4).
    pub fn exposition(&self) -> String {
        let t = self.total();
        let mut out = String::new();
        let mut runs = String::new();
        for (mode, st) in &t.runs {
            for (status, n) in st {
                let _ = writeln!(
                    runs,
                    "{PREFIX}runs_total{{mode=\"{}\",status=\"{}\"}} {n}",
                    escape_label(mode),
                    escape_label(status)
                );
            }
        }
        family(
            &mut out,
            "runs_total",
            "counter",
            "l1 runs reported, by sweep mode and status (failed: a trial failed or a record was unreadable).",
            &runs,
        );
        let mut hist = String::new();
        let mut cum = 0u64;
        for (i, le) in DURATION_BUCKETS.iter().enumerate() {
            cum += t.duration_buckets.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                hist,
                "{PREFIX}run_duration_seconds_bucket{{le=\"{}\"}} {cum}",
                fmt_f64(*le)
            );
        }
        let _ = writeln!(
            hist,
            "{PREFIX}run_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            t.duration_count
        );
        let _ = writeln!(
            hist,
            "{PREFIX}run_duration_seconds_sum {}",
            fmt_f64(t.duration_sum)
        );
        let _ = writeln!(
            hist,
            "{PREFIX}run_duration_seconds_count {}",
            t.duration_count
        );
        family(
            &mut out,
            "run_duration_seconds",
            "histogram",
            "Wall-clock duration of l1 runs.",
            &hist,
        );
        family(
            &mut out,
            "combo_evaluations_total",
            "counter",
            "Combo and baseline measurements used by trials (measured or taken from the cache).",
            &format!("{PREFIX}combo_evaluations_total {}\n", t.combo_evaluations),
        );
        family(
            &mut out,
            "cache_hits_total",
            "counter",
            "Measurements taken from the results cache.",
            &format!("{PREFIX}cache_hits_total {}\n", t.cache_hits),
        );
        family(
            &mut out,
            "cache_misses_total",
            "counter",
            "Measurements not in the cache, measured in the run.",
            &format!("{PREFIX}cache_misses_total {}\n", t.cache_misses),
        );
        family(
            &mut out,
            "tune_trials_total",
            "counter",
            "Trials of tune sessions, by outcome (ok, cached, remeasured, infeasible, failed).",
            &labelled("tune_trials_total", "outcome", &t.tune_trials),
        );
        let mut burn = String::new();
        for (k, v) in &t.tune_budget_used {
            let (spec, target) = k.split_once("::").unwrap_or((k.as_str(), ""));
            let _ = writeln!(
                burn,
                "{PREFIX}tune_budget_used_ratio{{spec=\"{}\",target=\"{}\"}} {}",
                escape_label(spec),
                escape_label(target),
                fmt_f64(*v)
            );
        }
        family(
            &mut out,
            "tune_budget_used_ratio",
            "gauge",
            "Share of each tune session's budget used (1 = spent), newest report per spec and target.",
            &burn,
        );
        family(
            &mut out,
            "quality_gate_rejections_total",
            "counter",
            "Quality-gate verdicts that rejected a target, by gate method.",
            &labelled(
                "quality_gate_rejections_total",
                "reason",
                &t.gate_rejections,
            ),
        );
        family(
            &mut out,
            "registry_entries",
            "gauge",
            "Kernel registry entries by status (no samples until the registry exists).",
            &labelled("registry_entries", "status", &self.registry_entries),
        );
        family(
            &mut out,
            "last_run_timestamp_seconds",
            "gauge",
            "When the most recent l1 run was reported (Unix seconds).",
            &if t.duration_count > 0 {
                format!(
                    "{PREFIX}last_run_timestamp_seconds {}\n",
                    fmt_f64(t.reported_unix_s)
                )
            } else {
                String::new()
            },
        );
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &str) {
    let _ = writeln!(out, "# HELP {PREFIX}{name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {PREFIX}{name} {kind}");
    out.push_str(samples);
}

fn labelled(name: &str, label: &str, m: &BTreeMap<String, u64>) -> String {
    let mut s = String::new();
    for (k, n) in m {
        let _ = writeln!(s, "{PREFIX}{name}{{{label}=\"{}\"}} {n}", escape_label(k));
    }
    s
}

fn fmt_f64(x: f64) -> String {
    if x.is_finite() {
        format!("{x}")
    } else if x.is_nan() {
        "NaN".into()
    } else if x > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}

/// Escape a label value: backslash, double quote and line feed.
pub fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Keep label values short and printable (they come from spec modes).
fn sanitize_label(s: &str) -> String {
    let s: String = s.chars().filter(|c| !c.is_control()).take(64).collect();
    if s.is_empty() { "unknown".into() } else { s }
}

/// Where the textfile goes: `L1_METRICS_TEXTFILE`, else `<target>/l1/metrics/l1.prom`.
pub fn textfile_path(target_dir: &Path) -> PathBuf {
    std::env::var_os("L1_METRICS_TEXTFILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir.join("l1").join("metrics").join("l1.prom"))
}

/// The state file beside a textfile (`l1.prom` → `l1.prom.state.json`). It must not end in
/// `.prom`, or the textfile collector would try to parse it.
pub fn state_path(textfile: &Path) -> PathBuf {
    let mut name = textfile
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "l1.prom".into());
    name.push(".state.json");
    textfile.with_file_name(name)
}

/// Record `run_id`'s contribution in the state beside `textfile`, then rewrite the textfile.
/// Returns the exposition written. Concurrent reporters are serialized by an advisory lock on
/// the state file, so no run's counts are lost.
pub fn update_textfile(
    textfile: &Path,
    run_id: &str,
    contribution: RunContribution,
) -> Result<String, MetricsError> {
    let state_file = state_path(textfile);
    if let Some(dir) = state_file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| MetricsError::Io {
            what: "create",
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let lock_path = state_file.with_extension("lock");
    let lock = std::fs::File::create(&lock_path).map_err(|source| MetricsError::Io {
        what: "create",
        path: lock_path.clone(),
        source,
    })?;
    lock.lock().map_err(|source| MetricsError::Io {
        what: "lock",
        path: lock_path.clone(),
        source,
    })?;
    let mut state = MetricsState::load(&state_file)?;
    state.record(run_id, contribution);
    let json = serde_json::to_string_pretty(&state).map_err(|source| MetricsError::State {
        path: state_file.clone(),
        source,
    })?;
    crate::atomic::write(&state_file, json.as_bytes())?;
    let text = state.exposition();
    crate::atomic::write(textfile, text.as_bytes())?;
    drop(lock);
    Ok(text)
}

/// Push the exposition to a Pushgateway (`L1_PUSHGATEWAY`, e.g. `http://pushgw:9091`) under
/// the grouping key `job="l1"`, `instance=<instance>`, replacing what that group held (`PUT`:
/// the values are cumulative, so the newest push is the truth).
pub fn push(gateway: &str, instance: &str, exposition: &str) -> Result<(), MetricsError> {
    let url = format!(
        "{}/metrics/job/l1/{}",
        gateway.trim_end_matches('/'),
        grouping_label("instance", instance)
    );
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| MetricsError::Push {
            url: url.clone(),
            detail: e.to_string(),
        })?;
    let resp = client
        .put(&url)
        .header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        .body(exposition.to_string())
        .send()
        .map_err(|e| MetricsError::Push {
            url: url.clone(),
            detail: format!("{e:#}"),
        })?;
    let status = resp.status();
    if status.is_success() {
        Ok(())
    } else {
        let body = resp.text().unwrap_or_default();
        Err(MetricsError::Push {
            url,
            detail: format!("HTTP {status}: {}", body.trim()),
        })
    }
}

/// A grouping-key label as URL path segments: `name/value`, or `name@base64/<base64url>` when
/// the value holds anything but unreserved characters (the Pushgateway's encoding for values
/// with `/` or that are empty).
fn grouping_label(name: &str, value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if plain {
        format!("{name}/{value}")
    } else if value.is_empty() {
        format!("{name}@base64/=")
    } else {
        format!("{name}@base64/{}", base64url(value.as_bytes()))
    }
}

/// RFC 4648 URL-safe base64 without padding.
fn base64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// The instance label for pushes: `L1_METRICS_INSTANCE`, else the host name.
pub fn instance_name() -> String {
    std::env::var("L1_METRICS_INSTANCE")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|s| s.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(grouping_label("instance", "ci-1"), "instance/ci-1");
        // RFC 4648 test vectors, URL-safe alphabet, no padding.
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(b"fooba"), "Zm9vYmE");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
    }

    #[test]
    fn reporting_a_run_twice_counts_it_once_and_old_runs_fold_into_the_base() {
        let mut s = MetricsState::default();
        let mut c = RunContribution::default();
        c.observe_duration(45.0);
        c.runs
            .entry("quick".into())
            .or_default()
            .insert("passed".into(), 1);
        c.cache_hits = 2;
        s.record("r1", c.clone());
        s.record("r1", c.clone());
        assert_eq!(s.total().cache_hits, 2);
        for i in 0..(MAX_RUNS_KEPT + 5) {
            let mut c = c.clone();
            c.reported_unix_s = i as f64;
            s.record(&format!("x{i}"), c);
        }
        assert_eq!(s.runs.len(), MAX_RUNS_KEPT);
        assert_eq!(s.total().cache_hits, 2 * (MAX_RUNS_KEPT as u64 + 6));
        let text = s.exposition();
        assert!(
            text.contains(&format!(
                "inferenceiq_l1_runs_total{{mode=\"quick\",status=\"passed\"}} {}",
                MAX_RUNS_KEPT + 6
            )),
            "{text}"
        );
        // 45 s falls in the 60 s bucket, not the 30 s one.
        assert!(
            text.contains("run_duration_seconds_bucket{le=\"30\"} 0"),
            "{text}"
        );
        assert!(text.contains("# TYPE inferenceiq_l1_registry_entries gauge"));
    }

    #[test]
    fn gauges_take_the_newest_runs_value_whatever_the_run_ids() {
        let mut s = MetricsState::default();
        let mut newer = RunContribution {
            reported_unix_s: 200.0,
            ..Default::default()
        };
        newer.tune_budget_used.insert("spec::t".into(), 0.9);
        let mut older = RunContribution {
            reported_unix_s: 100.0,
            ..Default::default()
        };
        older.tune_budget_used.insert("spec::t".into(), 0.2);
        // "a-…" sorts before "z-…": map order is not time order.
        s.record("a-newer", newer);
        s.record("z-older", older);
        assert_eq!(s.total().tune_budget_used["spec::t"], 0.9);
        assert!(
            s.exposition()
                .contains("inferenceiq_l1_tune_budget_used_ratio{spec=\"spec\",target=\"t\"} 0.9")
        );
    }
}
