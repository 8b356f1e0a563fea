//! What CI reads: a nextest filterset, the arguments of one libtest run, the human list, the
//! JSON document and the pull request's "What this pull request runs" Markdown. The filters
//! name only what runs: the targets the budget kept, when there is one.

use std::fmt::Write as _;

use super::reason::Reason;
use super::select::Selection;

/// Escape `s` for nextest's equality matcher (`test(=…)`).
fn escape_equal(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '/' | ')' | ',') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Escape `s` for a literal inside nextest's regex matcher (`test(/…/)`).
fn escape_regex(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '.'
                | '+'
                | '*'
                | '?'
                | '('
                | ')'
                | '|'
                | '['
                | ']'
                | '{'
                | '}'
                | '^'
                | '$'
                | '/'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The nextest filterset of what runs: `all()` for an unclassifiable change the budget left
/// whole, `none()` when nothing runs, else a union of whole targets (`test(/^<target>::/)`) and
/// single trials (`test(=<name>)`).
pub fn nextest_filterset(sel: &Selection) -> String {
    if sel.everything && !sel.capped() {
        return "all()".into();
    }
    let mut parts = Vec::new();
    for t in sel.kept_targets() {
        if t.whole && !t.target.starts_with("invalid::") {
            parts.push(format!("test(/^{}::/)", escape_regex(&t.target)));
        } else {
            parts.extend(
                t.trials
                    .keys()
                    .map(|n| format!("test(={})", escape_equal(n))),
            );
        }
    }
    if parts.is_empty() {
        "none()".into()
    } else {
        parts.join(" | ")
    }
}

/// The trials that run as libtest arguments, one per element: `--exact NAME` for each
/// (libtest-mimic takes one name filter, so CI runs the `kernels` target once per name, which
/// is what nextest does too; the `--exact` fast path plans only that trial's target).
pub fn libtest_filters(sel: &Selection) -> Vec<String> {
    sel.kept_trials()
        .into_iter()
        .map(|n| format!("--exact {n}"))
        .collect()
}

/// The human list: one block per target with its reasons and counts, then removed trials.
pub fn text(sel: &Selection) -> String {
    let mut out = String::new();
    let short = |r: &str| r.chars().take(12).collect::<String>();
    let selected = sel.trials().len();
    let _ = writeln!(
        out,
        "l1 affected {}..{}: {} changed path(s), {selected} trial(s) selected in {} target(s){}",
        short(&sel.base),
        short(&sel.head),
        sel.changed_paths.len(),
        sel.targets.len(),
        sel.head_trials
            .map(|n| format!(" of {n}"))
            .unwrap_or_default(),
    );
    if sel.everything {
        let _ = writeln!(
            out,
            "everything is selected: a change l1 cannot classify (harness code, shared engine code, build files) may change any trial"
        );
    }
    if sel
        .changed_paths
        .iter()
        .all(|c| c.class == super::classify::PathKind::Docs)
        && !sel.changed_paths.is_empty()
    {
        let _ = writeln!(out, "only documentation changed: nothing to run");
    }
    for t in &sel.targets {
        let count = |s: super::select::TrialStatus| t.trials.values().filter(|x| **x == s).count();
        let _ = writeln!(
            out,
            "{}  ({} trial(s){}: {} new, {} changed, {} code)",
            t.target,
            t.trials.len(),
            if t.whole { ", all of the target" } else { "" },
            count(super::select::TrialStatus::New),
            count(super::select::TrialStatus::Changed),
            count(super::select::TrialStatus::Code),
        );
        for r in &t.reasons {
            let _ = writeln!(out, "    - {r}");
        }
    }
    for t in &sel.removed {
        let _ = writeln!(out, "removed: {}  ({} trial(s))", t.target, t.trials.len());
        for r in &t.reasons {
            let _ = writeln!(out, "    - {r}");
        }
    }
    if let Some(b) = &sel.budget {
        let _ = writeln!(
            out,
            "budget {} trial(s): {} trial(s) in {} target(s) run, {} trial(s) in {} target(s) left out",
            b.max_trials,
            b.kept_trials,
            b.kept.len(),
            b.left_out_trials,
            b.left_out.len()
        );
        for t in &b.left_out {
            let _ = writeln!(
                out,
                "left out by the budget: {}  ({} trial(s))",
                t.target, t.trials
            );
        }
    }
    let _ = writeln!(out, "nextest: -E '{}'", nextest_filterset(sel));
    out
}

/// The pull request's "What this pull request runs" section: the change, the trials that run
/// per target with the kinds of their reasons, what the budget left out (with its trial
/// counts), and how many targets the change removed.
pub fn markdown(sel: &Selection) -> String {
    let mut out = String::new();
    let short = |r: &str| r.chars().take(12).collect::<String>();
    let total: usize = sel.targets.iter().map(|t| t.trials.len()).sum();
    let _ = writeln!(out, "### What this pull request runs\n");
    let _ = writeln!(
        out,
        "`l1 affected` ({}..{}): {total} trial(s) in {} target(s){}{}.\n",
        short(&sel.base),
        short(&sel.head),
        sel.targets.len(),
        if sel.everything {
            ", everything (a change l1 cannot classify)"
        } else {
            ""
        },
        sel.budget
            .as_ref()
            .map(|b| format!("; budget {} trial(s)", b.max_trials))
            .unwrap_or_default(),
    );
    for t in sel.kept_targets() {
        let mut kinds: Vec<&str> = t.reasons.iter().map(Reason::kind).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let _ = writeln!(
            out,
            "- `{}`: {} trial(s) ({})",
            t.target,
            t.trials.len(),
            kinds.join(", ")
        );
    }
    if let Some(b) = sel.budget.as_ref().filter(|b| !b.left_out.is_empty()) {
        let _ = writeln!(
            out,
            "\n**Left out by the budget** ({} trial(s), not run; raise `L1_PR_MAX_TRIALS` or run them by hand):\n",
            b.left_out_trials
        );
        for t in &b.left_out {
            let _ = writeln!(out, "- `{}`: {} trial(s)", t.target, t.trials);
        }
    }
    if !sel.removed.is_empty() {
        let _ = writeln!(
            out,
            "\nRemoved by this change (not run): {} target(s).",
            sel.removed.len()
        );
    }
    out
}

/// The JSON document of `l1 affected --json`: the selection plus its filters.
pub fn json(sel: &Selection) -> serde_json::Value {
    let mut v = serde_json::to_value(sel).unwrap_or(serde_json::Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert("trials".into(), serde_json::json!(sel.trials()));
        let removed: Vec<&String> = sel.removed.iter().flat_map(|t| &t.trials).collect();
        m.insert("removed_trials".into(), serde_json::json!(removed));
        m.insert(
            "nextest_filterset".into(),
            serde_json::json!(nextest_filterset(sel)),
        );
        m.insert("run_trials".into(), serde_json::json!(sel.kept_trials()));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_for_nextest() {
        assert_eq!(
            escape_equal("sim::s::sim@1.0::m::h::w::act=bf16,attn=x"),
            "sim::s::sim@1.0::m::h::w::act=bf16\\,attn=x"
        );
        assert_eq!(escape_regex("sim@1.0::a"), "sim@1\\.0::a");
    }
}
