//! Processes around a test: executable scripts (fake engine servers), free loopback ports, the
//! cargo profile and target directory of the running test binary, clearing the outer test
//! runner's environment from child commands, and building the workspace's helper binaries.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// Write `text` to `path` (parents created) and make it executable (`0755`): a fake engine
/// server or tool for a test.
///
/// # Panics
///
/// When the file cannot be written.
pub fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("cannot make {} executable: {e}", path.display()));
}

/// A loopback TCP port that was free a moment ago (bound to port 0, then released).
///
/// # Panics
///
/// When no port can be bound at all.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// The profile directory of the running test binary (`<target>/<profile dir>/deps/<test>`),
/// when it sits where cargo puts it.
fn profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    (deps.file_name()? == "deps").then(|| deps.parent().map(Path::to_path_buf))?
}

/// The cargo profile this test was built with, so nested `cargo` runs (`cargo test`,
/// `cargo nextest`, [`helper_bin`]) reuse its build instead of compiling another profile:
/// `dev` for `target/debug`, else the profile directory's name (`release`, or a custom one).
pub fn cargo_profile() -> &'static str {
    static PROFILE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PROFILE.get_or_init(|| {
        let dir = profile_dir();
        let name = dir
            .as_deref()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned());
        match name.as_deref() {
            Some("debug") => "dev".to_string(),
            Some(n) => n.to_string(),
            // Not under cargo's layout (an archived or copied binary): the old rule.
            None => {
                let exe = std::env::current_exe().unwrap_or_default();
                if exe.components().any(|c| c.as_os_str() == "release") {
                    "release".to_string()
                } else {
                    "dev".to_string()
                }
            }
        }
    })
}

/// Remove the outer test runner's nextest variables (`NEXTEST`, `NEXTEST_RUN_ID`, …) from a child
/// command, so a nested `cargo test` or `l1` behaves as it would from a user's shell whether the
/// suite itself runs under `cargo test` or `cargo nextest run`.
pub fn clear_runner_env(cmd: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let name = k.to_string_lossy();
        if name.starts_with("NEXTEST") || name.starts_with("__NEXTEST") {
            cmd.env_remove(&k);
        }
    }
}

/// The workspace root (this crate lives in `<root>/testkit`).
fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The executable of binary `bin` of workspace package `package`, built now (in the running
/// test's profile and target directory; a no-op when it is up to date) and cached for this
/// process.
///
/// Cargo gives a test the path of its own package's binaries only (`CARGO_BIN_EXE_<name>`), and
/// building another package's binary before a test needs the unstable artifact dependencies;
/// so a test that needs a helper binary of another package (e.g. the test-only
/// `l1-test-child`, kept out of the user's `cargo install` of l1) asks cargo for it here.
///
/// # Panics
///
/// When cargo cannot build it (with cargo's output).
pub fn helper_bin(package: &str, bin: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<(String, String), PathBuf>> = Mutex::new(BTreeMap::new());
    // Held across the build: concurrent tests of one process build it once.
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let key = (package.to_string(), bin.to_string());
    if let Some(p) = built.get(&key) {
        return p.clone();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--message-format=json-render-diagnostics",
        "--profile",
    ])
    .arg(cargo_profile())
    .args(["-p", package, "--bin", bin, "--manifest-path"])
    .arg(workspace_root().join("Cargo.toml"));
    if let Some(target) = profile_dir().as_deref().and_then(Path::parent) {
        cmd.arg("--target-dir").arg(target);
    }
    clear_runner_env(&mut cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {bin}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let exe = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == bin)
        .find_map(|m| m["executable"].as_str().map(PathBuf::from));
    match exe {
        Some(exe) if out.status.success() => {
            built.insert(key, exe.clone());
            exe
        }
        _ => panic!(
            "building the helper binary {bin} (package {package}) failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_executable_and_ports_bindable() {
        let dir = crate::fresh_dir("testkit-script");
        let _cleanup = crate::RemoveOnDrop(dir.clone());
        let script = dir.join("bin/hello");
        write_executable(&script, "#!/bin/sh\necho hello \"$1\"\n");
        let out = Command::new(&script).arg("there").output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello there\n");
        let port = free_port();
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
    }

    #[test]
    fn the_profile_is_the_one_this_test_was_built_with() {
        let exe = std::env::current_exe().unwrap();
        let expected = if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        };
        // Only the standard profiles are checked: a custom profile names itself.
        if exe
            .components()
            .any(|c| c.as_os_str() == "release" || c.as_os_str() == "debug")
        {
            assert_eq!(cargo_profile(), expected, "{}", exe.display());
        }
    }
}
