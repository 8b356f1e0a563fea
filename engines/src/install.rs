//! Where installed engines are found: `<engines dir>/bin` (what `scripts/setup-engines.sh`
//! installs), then `PATH`. Engine modules look their programs up here; the engine table
//! (`registry.rs`) sits above them.

use std::path::{Path, PathBuf};

/// The default home of installed engines and their test models: `L1_ENGINES_DIR`, else
/// `~/.cache/l1/engines` (what `scripts/setup-engines.sh` fills). Code below the harness's
/// settings takes the directory as a parameter.
pub fn engines_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("L1_ENGINES_DIR") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    home.join(".cache").join("l1").join("engines")
}

/// An engine executable: in `<engines dir>/bin` (what the setup script installs), else on `PATH`.
pub fn find_engine_binary(engines_dir: &Path, name: &str) -> Option<PathBuf> {
    let local = engines_dir.join("bin").join(name);
    if local.is_file() {
        return Some(local);
    }
    find_on_path(name)
}

/// The first executable called `name` on `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A program an engine module needs that is not installed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{label} is not installed: no `{binary}` in {} or on PATH ({hint})", looked_in.display())]
pub struct BinaryMissing {
    /// The engine as people name it (`llama.cpp`, `Triton`).
    pub label: String,
    pub binary: String,
    /// The engines directory's `bin/`, searched before `PATH`.
    pub looked_in: PathBuf,
    /// How to install it.
    pub hint: String,
}

/// [`find_engine_binary`], or an error naming the engine (`label`), where it looked, and how to
/// install it (`hint`).
pub fn require_engine_binary(
    engines_dir: &Path,
    binary: &str,
    label: &str,
    hint: &str,
) -> Result<PathBuf, BinaryMissing> {
    find_engine_binary(engines_dir, binary).ok_or_else(|| BinaryMissing {
        label: label.to_string(),
        binary: binary.to_string(),
        looked_in: engines_dir.join("bin"),
        hint: hint.to_string(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_bin_dir_comes_before_path_and_misses_say_where_they_looked() {
        let d = std::env::temp_dir().join(format!("l1-install-{}", std::process::id()));
        let bin = d.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join("l1-fake-engine"), "").unwrap();
        assert_eq!(
            find_engine_binary(&d, "l1-fake-engine"),
            Some(bin.join("l1-fake-engine"))
        );
        let e = require_engine_binary(&d, "l1-no-such-engine", "Fake", "run setup").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "Fake is not installed: no `l1-no-such-engine` in {} or on PATH (run setup)",
                bin.display()
            )
        );
        assert_eq!(e.looked_in, bin);
        let _ = std::fs::remove_dir_all(&d);
    }
}
