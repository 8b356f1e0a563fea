//! The per-pull-request budget (`l1 affected --max-trials N`): whole affected targets are kept,
//! in the selection's order, while their trials fit the cap; the rest are left out and listed,
//! never silently dropped.
//!
//! A target is the unit because its gate needs its combos and baseline. The cap counts trials,
//! not GPU time: nothing l1 knows before a trial runs (the spec's measure plan gives reps and
//! launches, not how long an engine takes to start, load its model or serve a workload on a
//! given GPU) predicts its duration honestly, so the trial count stands in for GPU time and a
//! CI job's timeout is the hard cap.

use serde::Serialize;

use super::select::{AffectedTarget, Selection};

/// A target and how many of its trials are selected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BudgetedTarget {
    pub target: String,
    pub trials: usize,
}

/// The budget's decision over a selection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Budget {
    /// The cap, in trials.
    pub max_trials: usize,
    /// Trials the selection holds before the cap.
    pub selected_trials: usize,
    /// Trials kept (whole targets).
    pub kept_trials: usize,
    /// Trials left out (whole targets).
    pub left_out_trials: usize,
    /// The kept targets, in the selection's order.
    pub kept: Vec<BudgetedTarget>,
    /// The targets left out, in the selection's order.
    pub left_out: Vec<BudgetedTarget>,
}

impl Budget {
    /// Decide the cap `max_trials` over `targets`: each target, in order, is kept when its
    /// trials fit in what the targets kept before it left (a later, smaller target can still
    /// fit after a larger one was left out).
    pub fn decide(targets: &[AffectedTarget], max_trials: usize) -> Self {
        let mut b = Budget {
            max_trials,
            selected_trials: 0,
            kept_trials: 0,
            left_out_trials: 0,
            kept: Vec::new(),
            left_out: Vec::new(),
        };
        for t in targets {
            let n = t.trials.len();
            let entry = BudgetedTarget {
                target: t.target.clone(),
                trials: n,
            };
            b.selected_trials += n;
            if b.kept_trials + n <= max_trials {
                b.kept_trials += n;
                b.kept.push(entry);
            } else {
                b.left_out_trials += n;
                b.left_out.push(entry);
            }
        }
        b
    }

    /// Whether target `name` is kept.
    pub fn keeps(&self, name: &str) -> bool {
        self.kept.iter().any(|t| t.target == name)
    }
}

impl Selection {
    /// Cap the selection at `max_trials` trials (see [`Budget::decide`]).
    pub fn apply_budget(&mut self, max_trials: usize) {
        self.budget = Some(Budget::decide(&self.targets, max_trials));
    }

    /// The targets that run: all affected targets, or those the budget kept.
    pub fn kept_targets(&self) -> impl Iterator<Item = &AffectedTarget> {
        self.targets
            .iter()
            .filter(|t| self.budget.as_ref().is_none_or(|b| b.keeps(&t.target)))
    }

    /// The budget left something out.
    pub fn capped(&self) -> bool {
        self.budget.as_ref().is_some_and(|b| !b.left_out.is_empty())
    }

    /// The trials that run, sorted.
    pub fn kept_trials(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .kept_targets()
            .flat_map(|t| t.trials.keys().map(String::as_str))
            .collect();
        v.sort_unstable();
        v
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::affected::select::TrialStatus;

    fn target(name: &str, trials: usize) -> AffectedTarget {
        AffectedTarget {
            target: name.into(),
            spec: "s".into(),
            path: "specs/s.yaml".into(),
            reasons: Vec::new(),
            whole: true,
            trials: (0..trials)
                .map(|i| (format!("{name}::t{i}"), TrialStatus::Changed))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn names(v: &[BudgetedTarget]) -> Vec<&str> {
        v.iter().map(|t| t.target.as_str()).collect()
    }

    fn selection(targets: Vec<AffectedTarget>, everything: bool) -> Selection {
        Selection {
            base: "b".repeat(40),
            head: "h".repeat(40),
            changed_paths: Vec::new(),
            everything,
            head_trials: Some(targets.iter().map(|t| t.trials.len()).sum()),
            targets,
            removed: Vec::new(),
            budget: None,
        }
    }

    #[test]
    fn targets_that_fit_exactly_are_all_kept() {
        let b = Budget::decide(&[target("a", 4), target("b", 2)], 6);
        assert_eq!(names(&b.kept), ["a", "b"]);
        assert!(b.left_out.is_empty());
        assert_eq!(
            (b.selected_trials, b.kept_trials, b.left_out_trials),
            (6, 6, 0)
        );
    }

    #[test]
    fn one_trial_over_leaves_the_target_that_does_not_fit_out() {
        let b = Budget::decide(&[target("a", 4), target("b", 3), target("c", 1)], 6);
        // `b` does not fit after `a`; `c` still does.
        assert_eq!(names(&b.kept), ["a", "c"]);
        assert_eq!(names(&b.left_out), ["b"]);
        assert_eq!(
            (b.selected_trials, b.kept_trials, b.left_out_trials),
            (8, 5, 3)
        );
    }

    #[test]
    fn nothing_fits_when_every_target_is_larger_than_the_budget() {
        let mut sel = selection(vec![target("a", 4), target("b", 5)], false);
        sel.apply_budget(3);
        let b = sel.budget.as_ref().unwrap();
        assert!(b.kept.is_empty());
        assert_eq!(names(&b.left_out), ["a", "b"]);
        assert!(sel.capped());
        assert!(sel.kept_trials().is_empty());
        assert_eq!(crate::affected::nextest_filterset(&sel), "none()");
        assert!(crate::affected::libtest_filters(&sel).is_empty());
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let mut sel = selection(vec![target("a", 1)], false);
        sel.apply_budget(0);
        assert!(sel.capped());
        assert_eq!(crate::affected::nextest_filterset(&sel), "none()");
        // An empty selection under a zero budget leaves nothing out and runs nothing.
        let mut empty = selection(Vec::new(), false);
        empty.apply_budget(0);
        assert!(!empty.capped());
        assert_eq!(crate::affected::nextest_filterset(&empty), "none()");
    }

    #[test]
    fn an_unclassifiable_change_is_capped_like_any_other() {
        let mut sel = selection(vec![target("a", 3), target("b", 3)], true);
        assert_eq!(crate::affected::nextest_filterset(&sel), "all()");
        sel.apply_budget(4);
        assert_eq!(crate::affected::nextest_filterset(&sel), "test(/^a::/)");
        assert_eq!(sel.kept_trials(), ["a::t0", "a::t1", "a::t2"]);
        // Everything fits: still `all()`.
        sel.apply_budget(6);
        assert!(!sel.capped());
        assert_eq!(crate::affected::nextest_filterset(&sel), "all()");
    }

    #[test]
    fn the_markdown_lists_what_runs_and_what_the_budget_left_out() {
        let mut sel = selection(vec![target("a", 4), target("b", 3)], false);
        sel.targets[0].reasons = vec![
            crate::affected::Reason::WorkloadProfileChanged {
                workload: "w".into(),
            },
            crate::affected::Reason::SpecChanged {
                path: "specs/s.yaml".into(),
            },
        ];
        sel.apply_budget(6);
        let md = crate::affected::markdown(&sel);
        assert_eq!(
            md,
            "### What this pull request runs\n\n\
             `l1 affected` (bbbbbbbbbbbb..hhhhhhhhhhhh): 7 trial(s) in 2 target(s); budget 6 trial(s).\n\n\
             - `a`: 4 trial(s) (spec_changed, workload_profile_changed)\n\n\
             **Left out by the budget** (3 trial(s), not run; raise `L1_PR_MAX_TRIALS` or run them by hand):\n\n\
             - `b`: 3 trial(s)\n"
        );
    }
}
