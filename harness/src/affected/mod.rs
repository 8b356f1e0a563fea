//! `l1 affected`: which trials a git change affects, and why. Both revisions' specs and catalogs
//! are expanded in full with a fixed render context and compared trial by trial (a trial is
//! selected when it is new or its fingerprint changed); code paths are classified by role (an
//! engine's translator selects that engine's trials; anything unclassifiable selects everything;
//! documentation selects nothing).
//!
//! One job per file: `git` (revisions, diff, export), `classify` (path roles), `revision` (one
//! revision expanded into named trials), `fingerprint` (what a trial's measurement depends on),
//! `changes` (catalog and profile changes as reasons), `select` (the comparison), `budget` (the
//! per-PR cap in trials), `reason`, and `output` (text, JSON, Markdown, nextest filterset,
//! libtest filters).

mod budget;
mod changes;
mod classify;
mod error;
mod fingerprint;
mod git;
mod output;
mod reason;
mod revision;
mod select;

use std::path::Path;

pub use budget::{Budget, BudgetedTarget};
pub use classify::{PathKind, classify};
pub use error::AffectedError;
pub use git::PathChange;
pub use output::{json, libtest_filters, markdown, nextest_filterset, text};
pub use reason::Reason;
pub use revision::FixedContext;
pub use select::{AffectedTarget, ChangedPath, RemovedTarget, Selection, TrialStatus};

/// What a revision contributes to the trials (exported for expansion).
const DATA_DIRS: &[&str] = &["catalogs", "specs"];

/// The trials the change `base..head` affects in the l1 repository at `root` (a git work tree,
/// or a directory inside one).
pub fn affected(
    root: &Path,
    base: &str,
    head: &str,
    fixed: &FixedContext,
) -> Result<Selection, AffectedError> {
    let base_rev = git::resolve(root, base)?;
    let head_rev = git::resolve(root, head)?;
    let engines = classify::engine_names();
    let changed: Vec<ChangedPath> = git::changed_paths(root, &base_rev, &head_rev)?
        .into_iter()
        .map(|change| {
            // A rename out of documentation counts as what it touches outside it.
            let class = change
                .paths()
                .map(|p| classify(p, &engines))
                .find(|k| *k != PathKind::Docs)
                .unwrap_or(PathKind::Docs);
            ChangedPath { change, class }
        })
        .collect();
    if changed.iter().all(|c| c.class == PathKind::Docs) {
        return Ok(select::select(base_rev, head_rev, changed, None));
    }
    let scratch = git::Scratch::new()?;
    let (base_dir, head_dir) = (scratch.0.join("base"), scratch.0.join("head"));
    git::export(root, &base_rev, DATA_DIRS, &base_dir)?;
    git::export(root, &head_rev, DATA_DIRS, &head_dir)?;
    let base_trials = revision::expand_revision(&base_dir, fixed);
    let head_trials = revision::expand_revision(&head_dir, fixed);
    Ok(select::select(
        base_rev,
        head_rev,
        changed,
        Some((&base_trials, &head_trials)),
    ))
}
