//! The one atomic file writer of l1 (records, reports, metrics), on `tempfile`: the text goes to
//! a temporary file in the destination's directory, is flushed to disk, then renamed over the
//! destination, so readers see the old file or the whole new one, never a partial write.
//!
//! The temporary file is named `<file name>.tmp.<random>`: concurrent writers never share one,
//! readers of a run directory recognise it by its `.tmp.` ([`is_temporary`]) and skip it, and
//! the Prometheus textfile collector (which reads `*.prom` only) ignores it.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// What marks the temporary file of a write in progress.
pub const TEMPORARY_MARK: &str = ".tmp.";

/// A failed atomic write.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("failed to create {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to create a temporary file in {}: {source}", dir.display())]
    Create {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to rename {} into place: {source}", path.display())]
    Rename {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Write `bytes` to `path` atomically, creating its directory when needed.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(d) => d,
        None => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|source| WriteError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut prefix = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    prefix.push(TEMPORARY_MARK);
    let mut tmp = tempfile::Builder::new()
        .prefix(&prefix)
        .tempfile_in(dir)
        .map_err(|source| WriteError::Create {
            dir: dir.to_path_buf(),
            source,
        })?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|source| WriteError::Write {
            path: tmp.path().to_path_buf(),
            source,
        })?;
    tmp.persist(path).map_err(|e| WriteError::Rename {
        path: e.file.path().to_path_buf(),
        source: e.error,
    })?;
    Ok(())
}

/// Whether a file is the temporary file of an atomic write in progress (see the module doc).
pub fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().contains(TEMPORARY_MARK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/l1.prom");
        write(&path, b"one\n").expect("first write");
        write(&path, b"two\n").expect("second write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "two\n");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .expect("list")
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("l1.prom")]);
    }

    #[test]
    fn a_write_that_cannot_happen_says_where() {
        let dir = tempfile::tempdir().expect("tempdir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "x").expect("write");
        let e = write(&blocker.join("under-a-file.json"), b"{}").unwrap_err();
        assert!(matches!(e, WriteError::CreateDir { .. }), "{e}");
        assert!(e.to_string().starts_with("failed to create "), "{e}");
        // A destination that is a directory: the rename fails and the temporary file goes.
        let target = dir.path().join("taken");
        std::fs::create_dir_all(target.join("inner")).expect("mkdir");
        let e = write(&target, b"{}").unwrap_err();
        assert!(matches!(e, WriteError::Rename { .. }), "{e}");
        let temporaries = std::fs::read_dir(dir.path())
            .expect("list")
            .flatten()
            .filter(|e| is_temporary(&e.path()))
            .count();
        assert_eq!(temporaries, 0);
    }

    #[test]
    fn temporary_names_are_recognised() {
        assert!(is_temporary(Path::new("trials/0123.json.tmp.Ab3xQz")));
        assert!(is_temporary(Path::new("k1.tmp.4242.ThreadId3")));
        assert!(!is_temporary(Path::new("trials/0123.json")));
    }
}
