//! Scratch directories: unique per test process and name, under the system's temporary
//! directory (never the repository), removed when the test passes.

use std::path::PathBuf;

/// `<tmp>/l1-<name>-<pid>`, unique per test process and `name` (neither created nor emptied).
pub fn path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("l1-{name}-{}", std::process::id()))
}

/// [`path`]`(name)`, empty: removed first when a previous run left it, then created.
///
/// # Panics
///
/// When the directory cannot be created (the test cannot run without it).
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = path(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create the scratch directory {}: {e}", dir.display()));
    dir
}

/// Removes a scratch directory when dropped, unless the test is failing (kept for inspection).
#[derive(Debug)]
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
