//! An A/B outcome as text (the terminal) and as Markdown (a CI step summary or a pull-request
//! comment).

use std::fmt::Write as _;

use l1_reports::model::Finding;

use super::judge::{Outcome, Problem};
use crate::spec::RegressionForm;

fn pct(ratio: f64) -> String {
    format!("{:+.1} %", (ratio - 1.0) * 100.0)
}

fn headline(o: &Outcome) -> String {
    let regressed = o.trials.iter().filter(|t| !t.passed).count();
    let what = match o.form {
        RegressionForm::NonInferiority => Finding::NotShownWithin.words(),
        RegressionForm::FailOnRegression => Finding::Regressed.words(),
    };
    format!(
        "{} trials compared over {} rounds, {regressed} {what}, {} failed, {} not comparable; {} new in the head (not compared), {} removed",
        o.trials.len(),
        o.rounds,
        o.failed.len(),
        o.errors.len(),
        o.new_in_head.len(),
        o.removed.len()
    )
}

fn rule(o: &Outcome) -> String {
    match o.form {
        RegressionForm::NonInferiority => format!(
            "non_inferiority at ε {:.1} %: every metric's one-sided {:.1} % bound of its change must lie above −ε (intersection–union, no adjustment)",
            o.epsilon * 100.0,
            (1.0 - o.alpha / 2.0) * 100.0
        ),
        RegressionForm::FailOnRegression => format!(
            "fail_on_regression at ε {:.1} %: fails on evidence that a metric is worse by more than ε (one-sided p < {:.3}, Holm across all {} trial–metric pairs)",
            o.epsilon * 100.0,
            o.alpha / 2.0,
            o.trials.iter().map(|t| t.metrics.len()).sum::<usize>()
        ),
    }
}

fn pairing(o: &Outcome) -> &'static str {
    match o.pairing {
        super::Pairing::Paired => "paired (both sides of a round replay the same request sequence)",
        super::Pairing::Independent => "independent (each side of a round its own seed)",
    }
}

fn problem(p: &Problem) -> String {
    let mut s = p.trial.clone();
    if let Some(side) = p.side {
        let _ = write!(s, " ({side}");
        if let Some(r) = p.round {
            let _ = write!(s, ", round {r}");
        }
        s.push(')');
    }
    let _ = write!(s, ": {}", p.why);
    s
}

fn seconds(o: &Outcome) -> String {
    let total: f64 = o.round_seconds.iter().sum();
    let n = o.round_seconds.len().max(1) as f64;
    format!("{total:.1} s in all, {:.1} s per round", total / n)
}

/// The outcome for a terminal.
pub fn text(o: &Outcome) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "l1 ab {}: {}", o.verdict.to_uppercase(), headline(o));
    let _ = writeln!(s, "  {}; seeds {}", rule(o), pairing(o));
    for t in &o.trials {
        let _ = writeln!(s, "{} {}", if t.passed { "ok  " } else { "FAIL" }, t.trial);
        for m in &t.metrics {
            let _ = writeln!(
                s,
                "      {}: head/base {:.4} [{:.4}, {:.4}], change {} [{}, {}], p={:.4}{}{}",
                m.metric,
                m.ratio,
                m.ratio_ci.0,
                m.ratio_ci.1,
                pct(m.improvement),
                pct(m.improvement_ci.0),
                pct(m.improvement_ci.1),
                m.p,
                if m.adjusted_p != m.p {
                    format!(" (Holm {:.4})", m.adjusted_p)
                } else {
                    String::new()
                },
                if m.passed { "" } else { "  <- FAIL" }
            );
        }
    }
    for (title, list) in [("failed", &o.failed), ("not comparable", &o.errors)] {
        for p in list {
            let _ = writeln!(s, "{title}: {}", problem(p));
        }
    }
    for n in &o.new_in_head {
        let _ = writeln!(s, "new in the head, not compared: {n}");
    }
    for n in &o.removed {
        let _ = writeln!(s, "removed by the head: {n}");
    }
    for (n, why) in &o.skipped {
        let _ = writeln!(s, "skipped: {n}: {why}");
    }
    let _ = writeln!(s, "time: {}", seconds(o));
    s
}

/// The outcome as Markdown.
pub fn markdown(o: &Outcome) -> String {
    let mut s = String::new();
    let icon = match o.verdict {
        "passed" => "✅",
        "failed" => "❌",
        _ => "⚠️",
    };
    let _ = writeln!(
        s,
        "## {icon} l1 ab: {} — base and head measured alternately on this runner\n",
        o.verdict.to_uppercase()
    );
    let _ = writeln!(s, "{}.\n", headline(o));
    let _ = writeln!(s, "Test: {}. Seeds: {}.\n", rule(o), pairing(o));
    let bad: Vec<_> = o.trials.iter().filter(|t| !t.passed).collect();
    if !bad.is_empty() {
        let _ = writeln!(s, "### Regressions\n");
        for t in &bad {
            for m in t.metrics.iter().filter(|m| !m.passed) {
                let _ = writeln!(
                    s,
                    "- `{}` **{}**: {} (95 % interval {} to {}), one-sided p = {:.4}",
                    t.trial,
                    m.metric,
                    pct(m.improvement),
                    pct(m.improvement_ci.0),
                    pct(m.improvement_ci.1),
                    m.adjusted_p
                );
            }
        }
        s.push('\n');
    }
    if !o.trials.is_empty() {
        let _ = writeln!(
            s,
            "| trial | metric | head / base | interval | change | p | verdict |\n|---|---|---|---|---|---|---|"
        );
        for t in &o.trials {
            for m in &t.metrics {
                let _ = writeln!(
                    s,
                    "| `{}` | {} | {:.3} | [{:.3}, {:.3}] | {} | {:.4} | {} |",
                    t.trial,
                    m.metric,
                    m.ratio,
                    m.ratio_ci.0,
                    m.ratio_ci.1,
                    pct(m.improvement),
                    m.adjusted_p,
                    if m.passed { "pass" } else { "**fail**" }
                );
            }
        }
        s.push('\n');
    }
    let sections: [(&str, Vec<String>); 5] = [
        ("Failed", o.failed.iter().map(problem).collect()),
        ("Not comparable", o.errors.iter().map(problem).collect()),
        (
            "New in this pull request (not compared)",
            o.new_in_head.iter().map(|n| format!("`{n}`")).collect(),
        ),
        (
            "Removed by this pull request",
            o.removed.iter().map(|n| format!("`{n}`")).collect(),
        ),
        (
            "Skipped",
            o.skipped
                .iter()
                .map(|(n, w)| format!("`{n}`: {w}"))
                .collect(),
        ),
    ];
    for (title, items) in sections {
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(s, "### {title}\n");
        for i in items {
            let _ = writeln!(s, "- {i}");
        }
        s.push('\n');
    }
    let _ = writeln!(s, "Time: {}.", seconds(o));
    s
}
