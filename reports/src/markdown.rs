//! The Markdown summary of a run (`l1 report --markdown`), for a GitHub step summary or a
//! pull-request comment: the run's status with the runner's counts, one table row per target
//! (verdict, gates, winner and its change vs the baseline, the `regression` gates' worst
//! metric), the regressions, the other failures, what did not run and why, and a link to the
//! HTML report. Everything comes from the report model ([`RunReport`]), as in the other formats;
//! the `regression` gates' per-metric numbers are their recorded checks
//! ([`GateReport::checks`]; for runs recorded before gates wrote them, read from their messages
//! by [`regression`]).
//!
//! It stays under [`Markdown::max_bytes`] (default [`DEFAULT_MAX_BYTES`], below GitHub's
//! 65,536-character limit on comments; step summaries allow 1 MiB): rows that do not fit are
//! left out and counted. Names are written as code spans and free text is escaped, so a `|` or
//! `*` in a spec, combo or reason cannot break the table or the formatting.

pub mod regression;

use std::fmt::Write as _;

use crate::model::{GateReport, RunReport, TargetReport};
use crate::verdict::{VerdictLine, signed};
use regression::RegressionCheck;

/// The default size limit: GitHub's limit on a pull-request comment is 65,536 characters.
pub const DEFAULT_MAX_BYTES: usize = 65_000;

/// Rows each section keeps before any section gets more, when the limit is hit.
const MIN_ROWS: usize = 10;
/// Longest name or excerpt shown in one place (characters).
const MAX_CELL: usize = 200;
const MAX_EXCERPT: usize = 400;

/// The Markdown summary reporter.
#[derive(Clone, Debug)]
pub struct Markdown {
    /// Where the HTML report is: the CI's artifact URL, else a relative path to `report.html`.
    pub report_link: Option<String>,
    /// The size limit of the summary in bytes.
    pub max_bytes: usize,
}

impl Default for Markdown {
    fn default() -> Self {
        Markdown {
            report_link: None,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// The run's status for the summary: `unfinished` (a trial asked to run has no outcome) before
/// `failed` (a trial failed, or a file could not be read) before `passed`; a run never reads as
/// passed unless its recorded status says so (or, in reports from before the status, nothing
/// failed).
pub fn status(r: &RunReport) -> &'static str {
    let t = &r.totals;
    if t.status == "unfinished" || t.unfinished > 0 || !r.unfinished.is_empty() {
        "unfinished"
    } else if t.status == "failed" || t.failed > 0 || t.unreadable > 0 || !r.unreadable.is_empty() {
        "failed"
    } else if t.status == "passed" || t.status.is_empty() {
        "passed"
    } else {
        "unknown"
    }
}

/// A target's verdict word: `FAIL`, `inconclusive` (the gates passed but the comparison could
/// not decide), `PASS`, or `no gate trial`.
pub fn target_verdict(t: &TargetReport) -> &'static str {
    match t.passed {
        Some(false) => "FAIL",
        Some(true) if t.inconclusive.is_some() => "inconclusive",
        Some(true) => "PASS",
        None => "no gate trial",
    }
}

/// The checks of every `regression` gate of a target: the gate's recorded checks, or for a run
/// recorded before gates wrote them, what its message states.
pub fn regression_checks(t: &TargetReport) -> Vec<RegressionCheck> {
    (t.gates.iter())
        .filter(|g| g.method == "regression")
        .flat_map(gate_checks)
        .collect()
}

/// One `regression` gate's checks (see [`regression_checks`]).
fn gate_checks(g: &GateReport) -> Vec<RegressionCheck> {
    if g.checks.is_empty() {
        regression::checks(&g.message, g.winner.as_deref())
    } else {
        g.checks.clone()
    }
}

/// The check a target's row shows: the worst failing one, else the worst of all.
pub fn worst_check(checks: &[RegressionCheck]) -> Option<&RegressionCheck> {
    let by_change =
        |a: &&RegressionCheck, b: &&RegressionCheck| a.change_pct.total_cmp(&b.change_pct);
    (checks.iter().filter(|c| c.failing))
        .min_by(by_change)
        .or_else(|| checks.iter().min_by(by_change))
}

/// One section: its heading (and table head), its rows, and what a row is.
struct Section {
    head: String,
    rows: Vec<String>,
    what: &'static str,
}

impl Markdown {
    /// The summary of `r`.
    pub fn render(&self, r: &RunReport) -> String {
        let head = self.head(r);
        let sections = sections(r);
        let foot = foot(r);
        assemble(&head, &sections, &foot, self.max_bytes)
    }

    fn head(&self, r: &RunReport) -> String {
        let t = &r.totals;
        let status = status(r);
        let icon = match status {
            "passed" => "✅",
            "failed" => "❌",
            "unfinished" => "⏳",
            _ => "❔",
        };
        let mut s = format!(
            "## {icon} l1 run {}: {} — {} passed, {} failed, {} ignored, {} filtered out",
            code(&r.run_id, false),
            status.to_uppercase(),
            t.passed,
            t.failed,
            t.ignored,
            t.filtered_out
        );
        if t.unfinished > 0 {
            let _ = write!(s, ", {} unfinished", t.unfinished);
        }
        s.push_str("\n\n");
        let mut facts = Vec::new();
        if let Some(link) = &self.report_link {
            facts.push(format!("[HTML report]({})", link_target(link)));
        }
        facts.push(format!(
            "{} target{}",
            r.targets.len(),
            if r.targets.len() == 1 { "" } else { "s" }
        ));
        if t.unreadable > 0 {
            facts.push(format!("**{} file(s) could not be read**", t.unreadable));
        }
        if r.simulated {
            facts.push("**simulated**: results from the built-in sim engine".into());
        }
        facts.push(format!("harness {}", text(&r.harness_version, false)));
        s.push_str(&facts.join(" · "));
        s.push_str("\n\n");
        s
    }
}

/// Rows in order of what a reader needs first: failures, inconclusive, no gate trial, passes.
fn order(t: &TargetReport) -> u8 {
    match target_verdict(t) {
        "FAIL" => 0,
        "inconclusive" => 1,
        "no gate trial" => 2,
        _ => 3,
    }
}

fn sections(r: &RunReport) -> Vec<Section> {
    let mut targets: Vec<&TargetReport> = r.targets.iter().collect();
    targets.sort_by_key(|t| order(t));
    let mut out = Vec::new();
    if !targets.is_empty() {
        out.push(Section {
            head: "| Verdict | Target | Gates | Winner: change vs baseline [95 % CI] | Regression gate: worst metric, ratio [95 % CI] |\n| --- | --- | --- | --- | --- |\n".into(),
            rows: targets.iter().map(|t| target_row(t)).collect(),
            what: "targets",
        });
    }
    let mut regressions = Vec::new();
    let mut failures = Vec::new();
    let mut inconclusive = Vec::new();
    for t in &targets {
        let checks = regression_checks(t);
        for c in checks.iter().filter(|c| c.failing) {
            regressions.push(regression_row(t, c));
        }
        for g in t.gates.iter().filter(|g| !g.passed) {
            let explained = g.method == "regression" && gate_checks(g).iter().any(|c| c.failing);
            if !explained {
                // The message's own `<method> failed: ` is said once.
                let own = format!("{} failed", g.method);
                let why = g.message.strip_prefix(&own).unwrap_or(&g.message);
                let why = why.trim_start_matches([':', ' ']);
                failures.push(format!(
                    "- {}: **{}** failed: {}",
                    code(&t.id, false),
                    text(&g.method, false),
                    text(&excerpt(why), false)
                ));
            }
        }
        if let Some(why) = &t.inconclusive {
            inconclusive.push(format!(
                "- {}: {}",
                code(&t.id, false),
                text(&excerpt(why), false)
            ));
        }
    }
    if !regressions.is_empty() {
        out.push(Section {
            head: "### Regressions\n\n| Target | Combo | Metric | Ratio [95 % CI] | Change | ε | p (one-sided) | Finding |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n".into(),
            rows: regressions,
            what: "regressions",
        });
    }
    if !failures.is_empty() {
        out.push(Section {
            head: "### Other failed gates\n\n".into(),
            rows: failures,
            what: "failed gates",
        });
    }
    if !r.invalid.is_empty() {
        out.push(Section {
            head: "### Spec errors\n\n".into(),
            rows: (r.invalid.iter())
                .map(|i| {
                    format!(
                        "- {}: {}",
                        code(&i.trial, false),
                        text(&excerpt(&i.message), false)
                    )
                })
                .collect(),
            what: "spec errors",
        });
    }
    if !inconclusive.is_empty() {
        out.push(Section {
            head: "### Inconclusive\n\n".into(),
            rows: inconclusive,
            what: "targets",
        });
    }
    if !r.unfinished.is_empty() {
        out.push(Section {
            head: format!(
                "### Unfinished\n\n{} trial(s) asked to run have no outcome:\n\n",
                r.unfinished.len()
            ),
            rows: (r.unfinished.iter())
                .map(|u| format!("- {}", code(u, false)))
                .collect(),
            what: "trials",
        });
    }
    if !r.unreadable.is_empty() {
        out.push(Section {
            head: "### Files that could not be read\n\n".into(),
            rows: (r.unreadable.iter())
                .map(|u| {
                    format!(
                        "- {}: {}",
                        code(&u.file, false),
                        text(&excerpt(&u.error), false)
                    )
                })
                .collect(),
            what: "files",
        });
    }
    let mut not_run: Vec<String> = (r.ignored.iter())
        .map(|g| {
            format!(
                "- **{}** ignored: {}",
                g.count,
                text(&excerpt(&g.reason), false)
            )
        })
        .collect();
    if r.totals.filtered_out > 0 {
        not_run.push(format!(
            "- **{}** filtered out by the runner's filter, partition or selection",
            r.totals.filtered_out
        ));
    }
    if !not_run.is_empty() {
        out.push(Section {
            head: "### Not run\n\n".into(),
            rows: not_run,
            what: "reasons",
        });
    }
    out
}

fn target_row(t: &TargetReport) -> String {
    let line = VerdictLine::of_target(t);
    let verdict = match target_verdict(t) {
        "FAIL" => "❌ FAIL",
        "PASS" => "✅ PASS",
        "inconclusive" => "⚠️ inconclusive",
        other => other,
    };
    let mut target = code(&t.id, true);
    if t.simulated {
        target.push_str(" (sim)");
    }
    let gates = if t.gates.is_empty() {
        "—".to_string()
    } else {
        (t.gates.iter())
            .map(|g| {
                format!(
                    "{} {}",
                    text(&g.method, true),
                    if g.passed { "✓" } else { "✗" }
                )
            })
            .collect::<Vec<_>>()
            .join(" · ")
    };
    let winner = match line.shown_winner() {
        Some(w) => {
            let mut s = format!("{} {}", line.role(), code(w, true));
            match line.change_text() {
                Some(c) => {
                    let _ = write!(s, " {c} ({})", text(&t.metric.name, true));
                }
                None => s.push_str(" (no comparison with the baseline)"),
            }
            if let Some(p) = line.p_best.filter(|p| p.is_finite()) {
                let _ = write!(s, ", P(best) {p:.2}");
            }
            if !line.established {
                s.push_str(", not established");
            }
            s
        }
        None if t.passed == Some(false) => "no winner".into(),
        None if t.passed.is_none() => "no gate trial in this run".into(),
        None => "no winner named".into(),
    };
    let checks = regression_checks(t);
    let worst = match worst_check(&checks) {
        Some(c) => {
            let [lo, hi] = c.ratio_interval();
            format!(
                "{} {:.3} [{lo:.3}, {hi:.3}] ({} %, ε {:.1} %){}",
                code(&c.metric, true),
                c.ratio(),
                signed(c.change_pct),
                c.epsilon_pct,
                if c.failing {
                    format!(" **{}**", c.finding.words())
                } else {
                    String::new()
                }
            )
        }
        None if t.gates.iter().any(|g| g.method == "regression") => "see the HTML report".into(),
        None => "—".into(),
    };
    format!("| {verdict} | {target} | {gates} | {winner} | {worst} |")
}

fn regression_row(t: &TargetReport, c: &RegressionCheck) -> String {
    let [lo, hi] = c.ratio_interval();
    let combo = match (&c.combo, &c.against_run) {
        (Some(k), Some(run)) => format!("{} vs run {}", code(k, true), code(run, true)),
        (Some(k), None) => format!("{} vs baseline", code(k, true)),
        (None, _) => "—".into(),
    };
    format!(
        "| {} | {combo} | {} | {:.3} [{lo:.3}, {hi:.3}] | {} % [{}, {}] | {:.1} % | {} | {} |",
        code(&t.id, true),
        code(&c.metric, true),
        c.ratio(),
        signed(c.change_pct),
        signed(c.interval_pct[0]),
        signed(c.interval_pct[1]),
        c.epsilon_pct,
        // The gate prints p with three decimals.
        if c.p == 0.0 {
            "< 0.001".to_string()
        } else {
            format!("{:.3}", c.p)
        },
        c.finding.words()
    )
}

fn foot(r: &RunReport) -> String {
    let mut s = String::from(
        "<sub>Ratios are direction-aware (above 1 better, below 1 worse than the reference); intervals are the gates' 95 % intervals; ε is the largest allowed regression.",
    );
    if r.simulated {
        s.push_str(" Simulated results come from a model, not a real engine.");
    }
    s.push_str("</sub>\n");
    s
}

/// Head, sections and foot within `max` bytes: every section keeps up to [`MIN_ROWS`] rows
/// while they fit, then the sections take the rest in order; left-out rows are counted.
fn assemble(head: &str, sections: &[Section], foot: &str, max: usize) -> String {
    const NOTE: usize = 160;
    let full: usize = head.len()
        + foot.len()
        + (sections.iter())
            .map(|s| s.head.len() + 1 + s.rows.iter().map(|r| r.len() + 1).sum::<usize>())
            .sum::<usize>();
    let mut take: Vec<usize> = sections.iter().map(|s| s.rows.len()).collect();
    if full > max {
        let fixed = head.len()
            + foot.len()
            + sections
                .iter()
                .map(|s| s.head.len() + 1 + NOTE)
                .sum::<usize>();
        let mut budget = max.saturating_sub(fixed);
        take.iter_mut().for_each(|n| *n = 0);
        for limit in [MIN_ROWS, usize::MAX] {
            for (i, s) in sections.iter().enumerate() {
                while take[i] < s.rows.len().min(limit) {
                    let l = s.rows[take[i]].len() + 1;
                    if l > budget {
                        break;
                    }
                    budget -= l;
                    take[i] += 1;
                }
            }
        }
    }
    let mut out = String::from(head);
    for (s, &n) in sections.iter().zip(&take) {
        out.push_str(&s.head);
        for row in &s.rows[..n] {
            out.push_str(row);
            out.push('\n');
        }
        let left = s.rows.len() - n;
        if left > 0 {
            let _ = writeln!(
                out,
                "\n_… {left} more {} left out to keep this summary under {max} bytes; the HTML report has them all._",
                s.what
            );
        }
        out.push('\n');
    }
    out.push_str(foot);
    if out.len() > max {
        // Even the fixed parts do not fit: cut, on a character boundary, and say so.
        let note = "\n\n_… cut to fit the size limit; the HTML report has everything._\n";
        let mut end = max.saturating_sub(note.len());
        while end > 0 && !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        if note.len() <= max {
            out.push_str(note);
        }
    }
    out
}

/// `s` cut to `n` characters (with `…`), on one line.
fn clip(s: &str, n: usize) -> String {
    let one: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match one.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &one[..i]),
        None => one,
    }
}

/// A message's first line, cut to [`MAX_EXCERPT`] characters.
fn excerpt(s: &str) -> String {
    clip(s.lines().next().unwrap_or("").trim(), MAX_EXCERPT)
}

/// `s` as a code span (one line, at most [`MAX_CELL`] characters): a backtick fence longer
/// than any run of backticks in it; in a table cell `|` is escaped (GFM splits cells first).
pub fn code(s: &str, in_table: bool) -> String {
    let s = clip(s, MAX_CELL);
    let mut longest = 0;
    let mut run = 0;
    for c in s.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') || s.trim().is_empty() {
        " "
    } else {
        ""
    };
    let body = if in_table { s.replace('|', "\\|") } else { s };
    format!("{fence}{pad}{body}{pad}{fence}")
}

/// `s` as plain text (one line): Markdown's and HTML's special characters backslash-escaped,
/// so nothing in it formats, links, mentions or breaks a table.
pub fn text(s: &str, in_table: bool) -> String {
    let s = clip(s, if in_table { MAX_CELL } else { MAX_EXCERPT });
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`'
                | '*'
                | '_'
                | '['
                | ']'
                | '<'
                | '>'
                | '|'
                | '#'
                | '~'
                | '@'
                | '&'
                | '!'
                | '{'
                | '}'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A link target that stays one link: spaces, parentheses and angle brackets percent-encoded.
fn link_target(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for c in url.chars() {
        match c {
            ' ' => out.push_str("%20"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '<' => out.push_str("%3C"),
            '>' => out.push_str("%3E"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
