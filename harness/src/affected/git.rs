//! The git side: resolve revisions, list the paths a diff changes, and export a revision's
//! `catalogs/` and `specs/` into a scratch directory (`git archive`, nothing in the repository
//! or its index is touched).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

use super::error::AffectedError;

/// One path a diff changed (a rename or copy is its new path with `old` set).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PathChange {
    /// git's status letter: `A` added, `D` deleted, `M` modified, `R` renamed, `C` copied, `T`
    /// type changed.
    pub status: char,
    /// Relative to the l1 root.
    pub path: String,
    /// A rename's or copy's source path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
}

impl PathChange {
    /// Every path the change touches (a rename: both).
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.path.as_str()).chain(self.old.as_deref())
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, AffectedError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| AffectedError::GitSpawn {
            dir: dir.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        return Err(AffectedError::Git {
            dir: dir.to_path_buf(),
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// The commit `rev` names, as a full hash.
pub fn resolve(dir: &Path, rev: &str) -> Result<String, AffectedError> {
    let spec = format!("{rev}^{{commit}}");
    match git(
        dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
    ) {
        Ok(out) => Ok(String::from_utf8_lossy(&out).trim().to_string()),
        Err(AffectedError::Git { stderr, .. }) => Err(AffectedError::BadRevision {
            rev: rev.to_string(),
            dir: dir.to_path_buf(),
            stderr: if stderr.is_empty() {
                "no such commit".into()
            } else {
                stderr
            },
        }),
        Err(e) => Err(e),
    }
}

/// The paths changed between `base` and `head` (commits), relative to `dir` and limited to it.
pub fn changed_paths(dir: &Path, base: &str, head: &str) -> Result<Vec<PathChange>, AffectedError> {
    let out = git(
        dir,
        &[
            "diff",
            "--name-status",
            "-z",
            "-M",
            "--relative",
            "--no-ext-diff",
            base,
            head,
            "--",
        ],
    )?;
    let fields: Vec<String> = out
        .split(|b| *b == 0)
        .filter(|f| !f.is_empty())
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let mut changes = Vec::new();
    let mut it = fields.into_iter();
    while let Some(status) = it.next() {
        let letter = status.chars().next().unwrap_or('M');
        let two = matches!(letter, 'R' | 'C');
        let first = it.next().unwrap_or_default();
        let change = if two {
            let new = it.next().unwrap_or_default();
            PathChange {
                status: letter,
                path: new,
                old: Some(first),
            }
        } else {
            PathChange {
                status: letter,
                path: first,
                old: None,
            }
        };
        changes.push(change);
    }
    changes.sort();
    Ok(changes)
}

/// The subdirectory of the repository's top level that `dir` is (`""` at the top).
fn prefix(dir: &Path) -> Result<String, AffectedError> {
    let out = git(dir, &["rev-parse", "--show-prefix"])?;
    Ok(String::from_utf8_lossy(&out).trim().to_string())
}

/// Write `rev`'s `dirs` (paths relative to `dir`, those that exist at `rev`) into `dest`.
pub fn export(dir: &Path, rev: &str, dirs: &[&str], dest: &Path) -> Result<(), AffectedError> {
    std::fs::create_dir_all(dest).map_err(|e| AffectedError::io("create", dest, e))?;
    let tree = format!("{rev}:{}", prefix(dir)?);
    let listed = git(dir, &["ls-tree", "--name-only", "-z", &tree])?;
    let present: Vec<String> = listed
        .split(|b| *b == 0)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .filter(|n| dirs.contains(&n.as_str()))
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    let mut args = vec!["archive", "--format=tar", tree.as_str(), "--"];
    args.extend(present.iter().map(String::as_str));
    let tar = git(dir, &args)?;
    unpack(&tar, dest)
}

/// Unpack a tar archive with the system's `tar` (git's own archives: plain files and dirs).
fn unpack(tar: &[u8], dest: &Path) -> Result<(), AffectedError> {
    let mut child = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dest)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| AffectedError::io("run tar to unpack into", dest, e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(tar)
            .map_err(|e| AffectedError::io("write the archive of", dest, e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| AffectedError::io("unpack into", dest, e))?;
    if !out.status.success() {
        return Err(AffectedError::io(
            "unpack into",
            dest,
            std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        ));
    }
    Ok(())
}

/// A scratch directory removed when dropped.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh directory under the system's temporary directory.
    pub fn new() -> Result<Self, AffectedError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "l1-affected-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| AffectedError::io("create", &dir, e))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
