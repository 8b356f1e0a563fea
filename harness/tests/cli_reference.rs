//! The committed CLI reference (`docs/src/reference/cli.md`, `docs/man/l1*.1`) is what the
//! current clap definition generates: `l1 docs cli` writes it into a scratch directory and every
//! file must match, with no committed man page left over from a removed command.

#![allow(clippy::unwrap_used)] // a panic is the test's report.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const REGENERATE: &str = "cargo run --release --bin l1 -- docs cli";

/// `l1.1` and `l1-<command>.1` under `dir`: name → text.
fn man_pages(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_string();
            let ours = name == "l1.1" || (name.starts_with("l1-") && name.ends_with(".1"));
            ours.then(|| (name, std::fs::read_to_string(&p).unwrap()))
        })
        .collect()
}

/// A short unified diff of `committed` → `generated`.
fn diff(committed: &str, generated: &str) -> String {
    let text = similar::TextDiff::from_lines(committed, generated)
        .unified_diff()
        .context_radius(2)
        .header("committed", "generated")
        .to_string();
    let mut lines: Vec<&str> = text.lines().take(40).collect();
    if text.lines().count() > 40 {
        lines.push("…");
    }
    lines.join("\n")
}

#[test]
fn the_committed_cli_reference_is_current() {
    let root = common::root();
    let scratch = common::results_dir("cli-reference");
    // A narrow terminal and a set L1_ROOT must not change the output.
    let out = Command::new(env!("CARGO_BIN_EXE_l1"))
        .args(["--root", root.to_str().unwrap(), "docs", "cli", "--out"])
        .arg(&scratch.0)
        .env("COLUMNS", "37")
        .env("L1_ROOT", &root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "l1 docs cli failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let mut problems = Vec::new();
    let page = "src/reference/cli.md";
    let generated = std::fs::read_to_string(scratch.0.join(page)).unwrap();
    match std::fs::read_to_string(root.join("docs").join(page)) {
        Ok(committed) if committed == generated => {}
        Ok(committed) => problems.push(format!(
            "docs/{page} differs:\n{}",
            diff(&committed, &generated)
        )),
        Err(e) => problems.push(format!("docs/{page}: {e}")),
    }

    let generated = man_pages(&scratch.0.join("man"));
    let committed = man_pages(&root.join("docs/man"));
    assert!(
        generated.contains_key("l1.1") && generated.contains_key("l1-runs-list.1"),
        "the generator wrote no man pages: {:?}",
        generated.keys()
    );
    for (name, text) in &generated {
        match committed.get(name) {
            None => problems.push(format!("docs/man/{name} is missing")),
            Some(c) if c != text => {
                problems.push(format!("docs/man/{name} differs:\n{}", diff(c, text)))
            }
            Some(_) => {}
        }
    }
    for name in committed.keys().filter(|n| !generated.contains_key(*n)) {
        problems.push(format!(
            "docs/man/{name} documents a command that no longer exists"
        ));
    }

    assert!(
        problems.is_empty(),
        "the committed CLI reference is stale; regenerate it with `{REGENERATE}` (from the \
         repository root) and commit the result:\n\n{}",
        problems.join("\n\n")
    );
}

#[test]
fn the_generator_command_is_hidden() {
    // `l1 docs` is a maintainer's tool: not in `--help`, not in the reference (the generator
    // refuses a visible command or flag without a help line: `docs::missing_help`, unit-tested
    // in the binary).
    let out = Command::new(env!("CARGO_BIN_EXE_l1"))
        .args(["--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    assert!(
        !help.contains("\n  docs "),
        "the generator's own command stays hidden from --help:\n{help}"
    );
}
