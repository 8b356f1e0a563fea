//! The `regression` gate's numbers read back from its verdict message: per metric the
//! direction-aware change against the baseline (or a combo's stored measurement), its interval,
//! the ε and the one-sided p, and whether the check failed. Gates record these numbers as
//! structured checks ([`GateReport::checks`](crate::model::GateReport::checks)); this parser
//! serves the runs recorded before they did (it computes nothing).
//!
//! The forms read (written by `l1_harness`'s `gates/regression.rs` and, for `against: stored`,
//! `suite/gate.rs`), one check each:
//!
//! ```text
//! ttft_p95_ms: -8.8 % [-12.0 %, -5.9 %], worse than -10.0 %? one-sided p=0.001 (detects …)
//! output_tokens_per_s: +0.4 % [-1.0 %, +1.8 %], shown better than -5.0 %? one-sided p=0.004 (…)
//! ```
//!
//! Checks after `regressed: ` or `not shown within ε: ` on their line are the failing ones;
//! a stored comparison's line starts with `<combo> vs run <id>: `.

pub use crate::model::{Finding, RegressionCheck};

const P_MARK: &str = "%? one-sided p=";
const QUESTIONS: [(&str, Finding); 2] = [
    (", worse than -", Finding::Regressed),
    (", shown better than -", Finding::NotShownWithin),
];
const FAIL_MARKS: [&str; 2] = ["regressed: ", "not shown within ε: "];

/// Every check a `regression` gate's message states, in message order; `winner` is the
/// gate's combo for the checks that do not name one. Text that does not parse is skipped.
pub fn checks(message: &str, winner: Option<&str>) -> Vec<RegressionCheck> {
    let mut out = Vec::new();
    for line in message.lines() {
        let (combo, against_run) = match stored_line(line) {
            Some((c, r)) => (Some(c.to_string()), Some(r.to_string())),
            None => (winner.map(str::to_string), None),
        };
        let fail_at = FAIL_MARKS.iter().filter_map(|m| line.find(m)).min();
        let mut from = 0;
        while let Some(i) = line[from..].find(P_MARK) {
            let at = from + i;
            from = at + P_MARK.len();
            if let Some((mut c, start)) = check(&line[..at], &line[from..]) {
                c.combo.clone_from(&combo);
                c.against_run.clone_from(&against_run);
                c.failing = fail_at.is_some_and(|f| f < start);
                out.push(c);
            }
        }
    }
    out
}

/// `    <combo> vs run <id>: …` → (combo, id).
fn stored_line(line: &str) -> Option<(&str, &str)> {
    if !line.starts_with(' ') {
        return None;
    }
    let (combo, rest) = line.trim_start().split_once(" vs run ")?;
    let (run, _) = rest.split_once(": ")?;
    (!combo.contains(' ') && !run.contains(' ')).then_some((combo, run))
}

/// One check from the text before `%? one-sided p=` and the text after it; with the byte
/// offset where the check (its metric name) starts.
fn check(before: &str, after: &str) -> Option<(RegressionCheck, usize)> {
    let (q, finding, qlen) = QUESTIONS
        .iter()
        .filter_map(|(q, f)| before.rfind(q).map(|i| (i, *f, q.len())))
        .max_by_key(|(i, _, _)| *i)?;
    let epsilon_pct: f64 = before[q + qlen..].trim().parse().ok()?;
    let head = before[..q].strip_suffix(']')?;
    let lb = head.rfind(" [")?;
    let (lo, hi) = head[lb + 2..].split_once(", ")?;
    let num = |s: &str| s.trim().trim_end_matches('%').trim().parse::<f64>().ok();
    let interval_pct = [num(lo)?, num(hi)?];
    let head = &head[..lb];
    let colon = head.rfind(": ")?;
    let change_pct = num(&head[colon + 2..])?;
    let name_end = &head[..colon];
    let start = name_end
        .rfind(|c: char| c.is_whitespace() || c == ';' || c == ':')
        .map_or(0, |i| i + 1);
    let metric = &name_end[start..];
    if metric.is_empty()
        || !metric
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return None;
    }
    let p_len = after
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(after.len());
    let p = after[..p_len].trim_end_matches('.').parse().ok()?;
    let all = [change_pct, interval_pct[0], interval_pct[1], epsilon_pct, p];
    if !all.iter().all(|x: &f64| x.is_finite()) {
        return None;
    }
    Some((
        RegressionCheck {
            combo: None,
            against_run: None,
            metric: metric.to_string(),
            change_pct,
            interval_pct,
            epsilon_pct,
            p,
            failing: false,
            finding,
        },
        start,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed `fail_on_regression` verdict, as `gates/regression.rs` writes it.
    const FAILED: &str = "regression failed (fail_on_regression): winner attn=flash_attn_v3 against the baseline; fail on evidence of regression: no metric may be shown worse than the baseline by more than its ε (one-sided p < 0.0250, Holm-adjusted across the 2 metrics) (default ε 5.0 %, never below the noise floor); regressed: ttft_p95_ms: -18.8 % [-22.0 %, -15.9 %], worse than -10.0 %? one-sided p=0.001 (detects a regression of ≥ 4.1 % with 80 % power; a 11.0 % one needs 7 reps per arm in 1 launch)";

    const PASSED: &str = "regression passed (fail_on_regression): winner a=1 against the baseline; fail on evidence of regression: … (default ε 5.0 %, never below the noise floor); output_tokens_per_s: +3.2 % [+1.0 %, +5.5 %], worse than -5.0 %? one-sided p=1.000 (detects …; a 6.0 % one needs 7 reps per arm in 1 launch); ttft_p95_ms: -2.0 % [-4.0 %, +0.1 %], worse than -10.0 %? one-sided p=0.900 (detects …)";

    #[test]
    fn a_failed_gate_gives_its_failing_check_with_the_gates_numbers() {
        let c = checks(FAILED, Some("attn=flash_attn_v3"));
        assert_eq!(c.len(), 1, "{c:?}");
        let c = &c[0];
        assert_eq!(c.metric, "ttft_p95_ms");
        assert_eq!(c.change_pct, -18.8);
        assert_eq!(c.interval_pct, [-22.0, -15.9]);
        assert_eq!(c.epsilon_pct, 10.0);
        assert_eq!(c.p, 0.001);
        assert!(c.failing);
        assert_eq!(c.finding, Finding::Regressed);
        assert_eq!(c.combo.as_deref(), Some("attn=flash_attn_v3"));
        assert!((c.ratio() - 0.812).abs() < 1e-9);
    }

    #[test]
    fn a_passed_gate_gives_every_check_none_failing() {
        let c = checks(PASSED, Some("a=1"));
        let names: Vec<_> = c.iter().map(|c| c.metric.as_str()).collect();
        assert_eq!(names, ["output_tokens_per_s", "ttft_p95_ms"]);
        assert!(c.iter().all(|c| !c.failing));
        assert_eq!(c[1].interval_pct, [-4.0, 0.1]);
    }

    #[test]
    fn stored_comparisons_name_their_combo_and_run_and_only_failed_lines_fail() {
        let m = "regression against stored `main` results FAILED: 2 combos compared, 1 not shown within ε, 0 without a stored measurement of the same key\n    attn=x vs run main-1: not shown within ε: output_tokens_per_s: -40.1 % [-45.0 %, -35.2 %], shown better than -50.0 %? one-sided p=0.200 (passes …)\n    attn=y vs run main-1: output_tokens_per_s: +0.5 % [-2.0 %, +3.0 %], shown better than -50.0 %? one-sided p=0.000 (passes …)";
        let c = checks(m, None);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].combo.as_deref(), Some("attn=x"));
        assert_eq!(c[0].against_run.as_deref(), Some("main-1"));
        assert!(c[0].failing);
        assert_eq!(c[0].finding, Finding::NotShownWithin);
        assert_eq!(c[1].combo.as_deref(), Some("attn=y"));
        assert!(!c[1].failing);
    }

    #[test]
    fn text_that_is_not_a_check_gives_none() {
        assert!(checks("regression failed: no reps for the baseline", None).is_empty());
        assert!(checks("x: NaN % [a, b], worse than -5.0 %? one-sided p=", None).is_empty());
        assert!(checks("", None).is_empty());
    }
}
