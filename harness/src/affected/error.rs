//! What can go wrong while finding the affected trials: git failures, bad revisions, unreadable
//! revisions' files. Spec and catalog errors are not among them: they become `invalid::` trials.

use std::path::PathBuf;

/// A failure of `l1 affected` (the command exits 2 on any of them).
#[derive(Debug, thiserror::Error)]
pub enum AffectedError {
    /// `git` could not be started.
    #[error("failed to run git in {dir}: {source}")]
    GitSpawn {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A git command failed.
    #[error("`git {args}` failed in {dir}: {stderr}")]
    Git {
        dir: PathBuf,
        args: String,
        stderr: String,
    },
    /// A revision does not name a commit.
    #[error("`{rev}` is not a revision of the repository at {dir}: {stderr}")]
    BadRevision {
        rev: String,
        dir: PathBuf,
        stderr: String,
    },
    /// A scratch directory or file could not be made or read.
    #[error("failed to {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl AffectedError {
    pub(super) fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    }
}
