//! The verdict line: one line per target that leads every summary (terminal and HTML), in the
//! style of hyperfine's "X ran 1.39 ± 0.02 times faster than Y": the verdict, the winner, its
//! change against the baseline with the interval, and P(best).
//!
//! ```text
//! PASS  s::sim@1.0::m::h100-sxm::chat: winner attn=flash_attn_v3 +12.3 % [+9.8, +14.9] vs baseline (output_tokens_per_s), P(best) 0.97
//! FAIL  s::vllm@0.11::m::cpu::chat: no winner (failed: topk5, pareto)
//! ```
//!
//! A combo is called the *winner* only where a gate that tests for improvement (`topk5`)
//! established it; a passing run whose gates do not test for improvement (`pareto`,
//! `regression`, `manual`) names its best combo as "best, not established". A FAIL row names no
//! winner. Both the terminal summary and the HTML page build their lines from [`VerdictLine`],
//! so they read the same.

use serde::{Deserialize, Serialize};

use crate::model::TargetReport;

/// Gate methods whose pass establishes a winner: they test that the winner beats the baseline.
pub const IMPROVEMENT_GATES: &[&str] = &["topk5"];

/// Everything one verdict line shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VerdictLine {
    /// `<spec>::<engine@version>::<model>::<hardware>::<workload>`.
    pub target: String,
    /// The gate trial's verdict; `None`: the run holds no gate trial for the target.
    pub passed: Option<bool>,
    pub simulated: bool,
    /// The gates' best combo (shown only on a PASS row).
    pub winner: Option<String>,
    /// True when a gate that tests for improvement passed with this winner.
    pub established: bool,
    /// The metric the change is about.
    pub metric: Option<String>,
    /// Direction-aware change of the winner against the baseline (positive is better), in %.
    pub change_pct: Option<f64>,
    /// The gate's confidence interval of `change_pct`.
    pub interval_pct: Option<[f64; 2]>,
    /// Probability that the winner is the true best within the noise floor.
    pub p_best: Option<f64>,
    /// The gate methods that ran, in order.
    pub gates: Vec<String>,
    /// The gate methods that failed.
    pub failed: Vec<String>,
    /// Why the comparison could not decide, with the suggested reps or launches.
    pub inconclusive: Option<String>,
}

/// `+12.3` (one decimal, always signed; `-0.0` prints as `+0.0`).
pub fn signed(x: f64) -> String {
    let r = (x * 10.0).round() / 10.0;
    if r == 0.0 {
        "+0.0".into()
    } else {
        format!("{r:+.1}")
    }
}

impl VerdictLine {
    /// The verdict word: `PASS`, `FAIL` or `NONE` (no gate trial).
    pub fn verdict(&self) -> &'static str {
        match self.passed {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "NONE",
        }
    }

    /// The winner to show: only on a PASS row.
    pub fn shown_winner(&self) -> Option<&str> {
        (self.passed == Some(true))
            .then_some(self.winner.as_deref())
            .flatten()
    }

    /// `+12.3 % [+9.8, +14.9]` for the shown winner, `None` without a change.
    pub fn change_text(&self) -> Option<String> {
        self.shown_winner()?;
        let c = self.change_pct.filter(|x| x.is_finite())?;
        let mut s = format!("{} %", signed(c));
        if let Some([lo, hi]) = self
            .interval_pct
            .filter(|[a, b]| a.is_finite() && b.is_finite())
        {
            s.push_str(&format!(" [{}, {}]", signed(lo), signed(hi)));
        }
        Some(s)
    }

    /// `winner` for an established winner, `best` for one no improvement gate established.
    pub fn role(&self) -> &'static str {
        if self.established { "winner" } else { "best" }
    }

    /// The line's head: `winner X +12.3 % [..] vs baseline (metric), P(best) 0.97`, or
    /// `no winner (failed: topk5)`, … (without the notes).
    pub fn head(&self) -> String {
        match (self.passed, self.shown_winner()) {
            (None, _) => "no gate trial in this run".to_string(),
            (Some(false), _) if self.failed.is_empty() => {
                "no winner (the gate trial failed)".to_string()
            }
            (Some(false), _) => format!("no winner (failed: {})", self.failed.join(", ")),
            (Some(true), None) => format!(
                "no winner named (gates: {})",
                if self.gates.is_empty() {
                    "none".to_string()
                } else {
                    self.gates.join(", ")
                }
            ),
            (Some(true), Some(w)) => {
                let mut s = format!("{} {w}", self.role());
                match self.change_text() {
                    Some(c) => {
                        s.push_str(&format!(" {c} vs baseline"));
                        if let Some(m) = &self.metric {
                            s.push_str(&format!(" ({m})"));
                        }
                    }
                    None => s.push_str(" (no comparison with the baseline)"),
                }
                if let Some(p) = self.p_best.filter(|p| p.is_finite()) {
                    s.push_str(&format!(", P(best) {p:.2}"));
                }
                s
            }
        }
    }

    /// What qualifies the head: an unestablished winner, an inconclusive comparison.
    pub fn notes(&self) -> Vec<String> {
        let mut n = Vec::new();
        if self.shown_winner().is_some() && !self.established {
            let tested = (self.gates.iter()).any(|g| IMPROVEMENT_GATES.contains(&g.as_str()));
            n.push(if tested {
                format!(
                    "not an established winner: the improvement gate ({}) did not establish it",
                    IMPROVEMENT_GATES.join(", ")
                )
            } else {
                format!(
                    "not an established winner: no gate that tests for improvement ({}) ran (gates: {})",
                    IMPROVEMENT_GATES.join(", "),
                    self.gates.join(", ")
                )
            });
        }
        if let Some(why) = &self.inconclusive {
            n.push(format!("inconclusive — {why}"));
        }
        n
    }

    /// What follows the target: the head, its notes and `[simulated]`; complete, never cut.
    pub fn detail(&self) -> String {
        let mut s = self.head();
        for n in self.notes() {
            s.push_str("; ");
            s.push_str(&n);
        }
        if self.simulated {
            s.push_str(" [simulated]");
        }
        s
    }

    /// The terminal form: the line without its notes (`[simulated]` kept), then each note on
    /// a line of its own (indented by the caller).
    pub fn terminal_lines(&self) -> Vec<String> {
        let mut first = format!("{:<4}  {}: {}", self.verdict(), self.target, self.head());
        if self.simulated {
            first.push_str(" [simulated]");
        }
        let mut out = vec![first];
        out.extend(self.notes());
        out
    }

    /// The whole line: `PASS  target: detail`.
    pub fn text(&self) -> String {
        format!("{:<4}  {}: {}", self.verdict(), self.target, self.detail())
    }

    /// The line of a report-model target: the winner's change and interval are its combo's
    /// `vs_baseline` (what `results.json` holds).
    pub fn of_target(t: &TargetReport) -> VerdictLine {
        let w = t
            .winner
            .as_deref()
            .and_then(|w| t.combos.iter().find(|c| c.label == w));
        let vs = w.and_then(|c| c.vs_baseline.as_ref());
        VerdictLine {
            target: t.id.clone(),
            passed: t.passed,
            simulated: t.simulated,
            winner: t.winner.clone(),
            established: t.winner_established,
            metric: Some(t.metric.name.clone()),
            change_pct: vs.map(|v| v.improvement_pct),
            interval_pct: vs.and_then(|v| v.interval_pct),
            p_best: t.p_best,
            gates: t.gates.iter().map(|g| g.method.clone()).collect(),
            failed: t
                .gates
                .iter()
                .filter(|g| !g.passed)
                .map(|g| g.method.clone())
                .collect(),
            inconclusive: t.inconclusive.clone(),
        }
    }
}

/// Whether a gate list establishes `winner`: a gate that tests for improvement passed naming it.
pub fn establishes(gates: &[(String, bool, Option<String>)], winner: Option<&str>) -> bool {
    winner.is_some_and(|w| {
        gates.iter().any(|(m, passed, gw)| {
            *passed && IMPROVEMENT_GATES.contains(&m.as_str()) && gw.as_deref() == Some(w)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> VerdictLine {
        VerdictLine {
            target: "s::sim@1.0::m::h100-sxm::chat".into(),
            passed: Some(true),
            winner: Some("attn=flash_attn_v3".into()),
            established: true,
            metric: Some("output_tokens_per_s".into()),
            change_pct: Some(12.345),
            interval_pct: Some([9.75, 14.94]),
            p_best: Some(0.968),
            gates: vec!["topk5".into(), "pareto".into()],
            ..VerdictLine::default()
        }
    }

    #[test]
    fn a_pass_line_leads_with_winner_change_interval_and_p_best() {
        assert_eq!(
            line().text(),
            "PASS  s::sim@1.0::m::h100-sxm::chat: winner attn=flash_attn_v3 +12.3 % [+9.8, +14.9] \
             vs baseline (output_tokens_per_s), P(best) 0.97"
        );
    }

    #[test]
    fn a_fail_line_names_no_winner_and_says_which_gates_failed() {
        let l = VerdictLine {
            passed: Some(false),
            failed: vec!["topk5".into()],
            ..line()
        };
        let t = l.text();
        assert_eq!(
            t,
            "FAIL  s::sim@1.0::m::h100-sxm::chat: no winner (failed: topk5)"
        );
        assert!(l.change_text().is_none() && l.shown_winner().is_none());
    }

    #[test]
    fn an_unestablished_best_is_not_called_the_winner() {
        let l = VerdictLine {
            established: false,
            gates: vec!["pareto".into(), "regression".into()],
            inconclusive: Some("more reps or launches needed (suggest 21 reps)".into()),
            simulated: true,
            ..line()
        };
        let t = l.text();
        assert!(t.contains(": best attn=flash_attn_v3 +12.3 %"), "{t}");
        assert!(!t.contains("winner attn"), "{t}");
        assert!(
            t.contains("not an established winner: no gate that tests for improvement (topk5) ran (gates: pareto, regression)"),
            "{t}"
        );
        assert!(
            t.ends_with(
                "; inconclusive — more reps or launches needed (suggest 21 reps) [simulated]"
            ),
            "{t}"
        );
    }

    #[test]
    fn the_terminal_puts_each_note_on_a_line_of_its_own() {
        let l = VerdictLine {
            established: false,
            gates: vec!["regression".into()],
            inconclusive: Some("more reps or launches needed (suggest 13 reps per arm)".into()),
            simulated: true,
            ..line()
        };
        let t = l.terminal_lines();
        assert_eq!(t.len(), 3, "{t:?}");
        assert!(
            t[0].starts_with(
                "PASS  s::sim@1.0::m::h100-sxm::chat: best attn=flash_attn_v3 +12.3 %"
            )
        );
        assert!(t[0].ends_with("P(best) 0.97 [simulated]"), "{t:?}");
        assert!(t[1].starts_with("not an established winner: no gate that tests for improvement"));
        assert_eq!(
            t[2],
            "inconclusive — more reps or launches needed (suggest 13 reps per arm)"
        );
    }

    #[test]
    fn no_gate_trial_and_rounding_edge_cases() {
        let l = VerdictLine {
            passed: None,
            ..line()
        };
        assert_eq!(
            l.text(),
            "NONE  s::sim@1.0::m::h100-sxm::chat: no gate trial in this run"
        );
        assert_eq!(signed(-0.04), "+0.0");
        assert_eq!(signed(-0.05), "-0.1");
        assert_eq!(signed(177.94), "+177.9");
        // Non-finite numbers are left out, never printed as NaN.
        let l = VerdictLine {
            change_pct: Some(f64::NAN),
            ..line()
        };
        assert!(
            l.text().contains("(no comparison with the baseline)"),
            "{}",
            l.text()
        );
    }

    #[test]
    fn only_a_passing_improvement_gate_naming_the_winner_establishes_it() {
        let g = |m: &str, p: bool, w: Option<&str>| (m.to_string(), p, w.map(str::to_string));
        assert!(establishes(&[g("topk5", true, Some("a"))], Some("a")));
        assert!(!establishes(&[g("topk5", false, Some("a"))], Some("a")));
        assert!(!establishes(&[g("topk5", true, Some("b"))], Some("a")));
        assert!(!establishes(
            &[
                g("pareto", true, Some("a")),
                g("regression", true, Some("a"))
            ],
            Some("a")
        ));
        assert!(!establishes(&[g("topk5", true, Some("a"))], None));
    }
}
