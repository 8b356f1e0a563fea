//! Reports for l1: the end-of-run summary table (winners and gate verdicts per target) and the
//! run summary JSON here; [`junit`] renders a run as JUnit XML, [`html`] as a self-contained HTML
//! page, [`model`] is the report model that is also the versioned `results.json`, and
//! [`prometheus`] writes the metrics exposition. Every format renders a plain model and can be
//! tested alone; the harness builds the models from a run directory.

use std::fmt::Write as _;

pub mod checks;
pub mod html;
pub mod junit;
pub mod model;
pub mod prometheus;

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

/// `YYYY-MM-DD HH:MM:SS UTC` for Unix seconds (no time-zone database needed).
pub fn utc_text(unix_s: f64) -> String {
    if !unix_s.is_finite() || unix_s < 0.0 {
        return "unknown time".into();
    }
    let secs = unix_s as u64;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
