//! Reports for l1: the end-of-run summary table (winners and gate verdicts per target) and the
//! run summary JSON here; [`model`] is the report model (also the versioned `results.json`) and
//! [`reporter`] the one trait every format written from it implements: [`html`] (a
//! self-contained page), [`junit`] (JUnit XML), `results.json`, [`prometheus`] (the metrics
//! exposition) and [`markdown`] (a summary for a CI step or a pull-request comment). Every
//! format renders a plain model and can be tested alone; the harness builds the model from a
//! run directory. [`atomic`] is l1's one atomic file writer and [`dates`] its
//! one date formatter and parser.

use std::fmt::Write as _;

pub mod atomic;
pub mod checks;
pub mod dates;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod prometheus;
pub mod reporter;
pub mod verdict;

use serde::{Deserialize, Serialize};

/// Bumped on any breaking change of the summary JSON.
pub const SUMMARY_SCHEMA_VERSION: u32 = 1;

/// One gate trial's outcome, as shown in the summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GateRow {
    pub target: String,
    pub spec: String,
    pub passed: bool,
    pub simulated: bool,
    /// Gate methods with their verdicts, e.g. `topk5 ✓`.
    pub gates: Vec<(String, bool)>,
    pub winner: Option<String>,
    /// The verdict line's numbers (see [`verdict`]); absent in summaries written before them.
    #[serde(default)]
    pub winner_established: bool,
    #[serde(default)]
    pub metric: Option<String>,
    /// The winner's direction-aware change vs the baseline (%), from the gate's table.
    #[serde(default)]
    pub change_pct: Option<f64>,
    #[serde(default)]
    pub interval_pct: Option<[f64; 2]>,
    #[serde(default)]
    pub p_best: Option<f64>,
    #[serde(default)]
    pub inconclusive: Option<String>,
    /// Each failed gate's explanation, complete.
    #[serde(default)]
    pub failures: Vec<String>,
}

impl GateRow {
    /// The row's verdict line.
    pub fn verdict_line(&self) -> verdict::VerdictLine {
        verdict::VerdictLine {
            target: format!("{}::{}", self.spec, self.target),
            passed: Some(self.passed),
            simulated: self.simulated,
            winner: self.winner.clone(),
            established: self.winner_established,
            metric: self.metric.clone(),
            change_pct: self.change_pct,
            interval_pct: self.interval_pct,
            p_best: self.p_best,
            gates: self.gates.iter().map(|(m, _)| m.clone()).collect(),
            failed: (self.gates.iter())
                .filter(|(_, ok)| !ok)
                .map(|(m, _)| m.clone())
                .collect(),
            inconclusive: self.inconclusive.clone(),
        }
    }
}

/// The summary of one run. Its counts are the runner's: under `cargo test`, `trials_passed`,
/// `trials_failed`, the ignored total and `filtered_out` equal libtest's `N passed; M failed;
/// K ignored; F filtered out`; under nextest, its `S skipped` is ignored + filtered out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub schema_version: u32,
    pub run_id: String,
    /// `passed` (every trial asked to run passed), `failed` (one or more failed) or
    /// `unfinished` (a trial asked to run has no outcome: in progress, interrupted, lost).
    #[serde(default)]
    pub status: String,
    /// The runner that planned the run: `libtest`, `nextest`, or `unknown` (no plan recorded).
    #[serde(default)]
    pub runner: String,
    pub trials_passed: usize,
    /// Failed trials, the `invalid::` trials of spec errors included.
    pub trials_failed: usize,
    /// Ignored trials that did not run, with their reasons (reason -> count).
    pub ignored: Vec<(String, usize)>,
    /// Trials the runner's filter, partition or selection left out.
    #[serde(default)]
    pub filtered_out: usize,
    /// Trials that should have an outcome and have none, as `name (why)`.
    #[serde(default)]
    pub unfinished: Vec<String>,
    /// When the run last wrote anything (Unix seconds).
    #[serde(default)]
    pub last_activity_unix_s: Option<f64>,
    pub gates: Vec<GateRow>,
    /// Records that could not be read (file and why): reported, never silently skipped.
    pub unreadable: Vec<String>,
    /// Disagreements found while summarizing (e.g. records that disagree with libtest's counts).
    #[serde(default)]
    pub notes: Vec<String>,
}

impl RunSummary {
    /// Ignored trials that did not run.
    pub fn ignored_total(&self) -> usize {
        self.ignored.iter().map(|(_, n)| n).sum()
    }
}

/// The verdict lines of a summary, one per target (see [`verdict`]), then each failed gate's
/// explanation, complete, under the target it belongs to.
pub fn render_verdicts(s: &RunSummary) -> String {
    let mut out = String::new();
    for g in &s.gates {
        for (i, l) in g.verdict_line().terminal_lines().iter().enumerate() {
            let indent = if i == 0 { "  " } else { "        " };
            let _ = writeln!(out, "{indent}{l}");
        }
    }
    for g in s.gates.iter().filter(|g| !g.failures.is_empty()) {
        let _ = writeln!(out, "  why {}::{} failed:", g.spec, g.target);
        for f in &g.failures {
            for (i, l) in f.lines().enumerate() {
                let indent = if i == 0 { "    " } else { "      " };
                let _ = writeln!(out, "{indent}{}", l.trim_start());
            }
        }
    }
    out
}

/// Render the summary as a plain-text table for the terminal.
pub fn render_table(s: &RunSummary) -> String {
    let mut out = String::new();
    let status = match s.status.as_str() {
        "" => String::new(),
        "passed" => "passed: ".to_string(),
        other => format!("{}: ", other.to_uppercase()),
    };
    let _ = writeln!(
        out,
        "l1 run {}: {status}{} trials passed, {} failed, {} ignored, {} filtered out{}",
        s.run_id,
        s.trials_passed,
        s.trials_failed,
        s.ignored_total(),
        s.filtered_out,
        if s.unfinished.is_empty() {
            String::new()
        } else {
            format!(", {} unfinished", s.unfinished.len())
        }
    );
    out.push_str(&render_verdicts(s));
    if !s.unfinished.is_empty() {
        const SHOWN: usize = 20;
        let _ = writeln!(
            out,
            "  unfinished, last activity {}: {} trial(s) have no outcome:",
            s.last_activity_unix_s
                .map_or("unknown".into(), dates::report_time),
            s.unfinished.len()
        );
        for u in s.unfinished.iter().take(SHOWN) {
            let _ = writeln!(out, "    {u}");
        }
        if s.unfinished.len() > SHOWN {
            let _ = writeln!(
                out,
                "    … and {} more (`l1 --json report` lists them all)",
                s.unfinished.len() - SHOWN
            );
        }
    }
    for n in &s.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    for (reason, n) in &s.ignored {
        let _ = writeln!(out, "  ignored {n}: {reason}");
    }
    for u in &s.unreadable {
        let _ = writeln!(out, "  unreadable record: {u}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_verdicts_winners_and_ignored_reasons() {
        let s = RunSummary {
            schema_version: SUMMARY_SCHEMA_VERSION,
            run_id: "r1".into(),
            status: "failed".into(),
            runner: "libtest".into(),
            trials_passed: 3,
            trials_failed: 1,
            ignored: vec![("no GPU".into(), 4)],
            filtered_out: 2,
            unfinished: Vec::new(),
            last_activity_unix_s: None,
            notes: Vec::new(),
            gates: vec![GateRow {
                target: "sim@1.0::m::h::w".into(),
                spec: "s".into(),
                passed: false,
                simulated: true,
                gates: vec![("topk5".into(), false), ("pareto".into(), true)],
                winner: Some("attn=flash_attn_v3".into()),
                failures: vec![
                    "topk5 failed: 1 of the top 5 do not clear it. the rule; failing:\n  a: +1.0 %"
                        .into(),
                ],
                ..GateRow::default()
            }],
            unreadable: vec!["x.json: truncated".into()],
        };
        let t = render_table(&s);
        assert!(
            t.contains("FAILED: 3 trials passed, 1 failed, 4 ignored, 2 filtered out"),
            "{t}"
        );
        // The verdict line: no winner on a FAIL row; the gate's explanation complete below it.
        assert!(
            t.contains("  FAIL  s::sim@1.0::m::h::w: no winner (failed: topk5) [simulated]\n"),
            "{t}"
        );
        assert!(!t.contains("attn=flash_attn_v3"), "{t}");
        assert!(
            t.contains(
                "  why s::sim@1.0::m::h::w failed:\n    topk5 failed: 1 of the top 5 do not clear it. the rule; failing:\n      a: +1.0 %\n"
            ),
            "{t}"
        );
        assert!(t.contains("ignored 4: no GPU"), "{t}");
        assert!(t.contains("unreadable record: x.json"), "{t}");
    }
}
