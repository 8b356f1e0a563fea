//! The book (`docs/`) builds with mdbook and has no dead internal link or anchor: a moved section
//! cannot leave a link behind. Runs `scripts/check-book.sh` (mdbook, then linkchecker offline
//! with anchor checks) into a scratch directory. The tools come from `scripts/setup-doc-tools.sh`;
//! without them the test is skipped with the reason, except under `L1_REQUIRE_ENGINES=1` (CI).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the harness crate sits in the workspace root")
        .to_path_buf()
}

/// mdbook as `scripts/check-book.sh` finds it: on `PATH`, else the cached install.
fn mdbook() -> Option<PathBuf> {
    let on_path = Command::new("mdbook").arg("--version").output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return Some(PathBuf::from("mdbook"));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let cached = cache.join("l1/mdbook/bin/mdbook");
    cached.is_file().then_some(cached)
}

fn linkchecker_installed() -> bool {
    Command::new("linkchecker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_book_builds_and_has_no_dead_links() {
    let Some(mdbook) = mdbook().or_else(|| {
        l1_testkit::skip("mdbook is not installed (scripts/setup-doc-tools.sh installs it)")
    }) else {
        return;
    };
    if !linkchecker_installed() {
        l1_testkit::skip::<()>(
            "linkchecker is not installed (scripts/setup-doc-tools.sh installs it)",
        );
        return;
    }
    let scratch = l1_testkit::fresh_dir("book-build");
    let _cleanup = l1_testkit::RemoveOnDrop(scratch.clone());
    let out = scratch.join("book");
    let result = Command::new("bash")
        .arg(root().join("scripts/check-book.sh"))
        .arg(&out)
        .env("MDBOOK", &mdbook)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(
        result.status.success(),
        "the book failed to build or has dead links (scripts/check-book.sh):\n{text}"
    );
    // The check really looked at the pages: every chapter of SUMMARY.md was built.
    let summary = std::fs::read_to_string(root().join("docs/src/SUMMARY.md")).unwrap();
    let chapters: Vec<&str> = summary
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(page, _)| page))
        .collect();
    assert!(
        chapters.len() >= 20,
        "SUMMARY.md lists {} pages",
        chapters.len()
    );
    for page in chapters {
        let html = out.join(page.replace(".md", ".html"));
        assert!(html.is_file(), "{page} was not built ({})", html.display());
    }
}
