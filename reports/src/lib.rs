//! Reports for l1. For now: the end-of-run summary table (winners and gate verdicts per target)
//! and the run summary JSON; [`junit`] renders a run as JUnit XML.

use std::fmt::Write as _;

pub mod junit;

use serde::{Deserialize, Serialize};

/// Bumped on any breaking change of the summary JSON.
pub const SUMMARY_SCHEMA_VERSION: u32 = 1;

/// One gate trial's outcome, as shown in the summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateRow {
    pub target: String,
    pub spec: String,
    pub passed: bool,
    pub simulated: bool,
    /// Gate methods with their verdicts, e.g. `topk5 ✓`.
    pub gates: Vec<(String, bool)>,
    pub winner: Option<String>,
}

/// The summary of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub schema_version: u32,
    pub run_id: String,
    pub trials_passed: usize,
    pub trials_failed: usize,
    /// Ignored trials with their reasons (reason -> count).
    pub ignored: Vec<(String, usize)>,
    pub gates: Vec<GateRow>,
    /// Records that could not be read (file and why): reported, never silently skipped.
    pub unreadable: Vec<String>,
}

/// Render the summary as a plain-text table for the terminal.
pub fn render_table(s: &RunSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "l1 run {}: {} trials passed, {} failed, {} ignored",
        s.run_id,
        s.trials_passed,
        s.trials_failed,
        s.ignored.iter().map(|(_, n)| n).sum::<usize>()
    );
    if !s.gates.is_empty() {
        let w = s
            .gates
            .iter()
            .map(|g| g.spec.len() + 2 + g.target.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let _ = writeln!(
            out,
            "  {:<w$}  {:<7}  {:<28}  winner",
            "spec::target", "verdict", "gates"
        );
        for g in &s.gates {
            let target = format!("{}::{}", g.spec, g.target);
            let gates: Vec<String> = g
                .gates
                .iter()
                .map(|(m, ok)| format!("{m} {}", if *ok { "pass" } else { "FAIL" }))
                .collect();
            let _ = writeln!(
                out,
                "  {:<w$}  {:<7}  {:<28}  {}{}",
                target,
                if g.passed { "pass" } else { "FAIL" },
                gates.join(", "),
                g.winner.as_deref().unwrap_or("-"),
                if g.simulated { "  [simulated]" } else { "" }
            );
        }
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
            trials_passed: 3,
            trials_failed: 1,
            ignored: vec![("no GPU".into(), 4)],
            gates: vec![GateRow {
                target: "sim@1.0::m::h::w".into(),
                spec: "s".into(),
                passed: false,
                simulated: true,
                gates: vec![("topk5".into(), false)],
                winner: Some("attn=flash_attn_v3".into()),
            }],
            unreadable: vec!["x.json: truncated".into()],
        };
        let t = render_table(&s);
        assert!(t.contains("3 trials passed, 1 failed, 4 ignored"), "{t}");
        assert!(t.contains("topk5 FAIL"), "{t}");
        assert!(t.contains("attn=flash_attn_v3  [simulated]"), "{t}");
        assert!(t.contains("ignored 4: no GPU"), "{t}");
        assert!(t.contains("unreadable record: x.json"), "{t}");
    }
}
