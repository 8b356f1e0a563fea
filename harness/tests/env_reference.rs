//! `docs/src/reference/environment.md` names every environment variable l1 reads, and names no
//! variable that nothing reads. "Read" means: a string literal `"L1_…"`, `"ENABLE_L1_…"` or
//! `"NEXTEST…"` in the workspace's Rust code (what `std::env::var` and friends are called with,
//! and `#[arg(env = …)]`), such a name in `scripts/` (shell and Python), in the CI recipes
//! (`ci/`), or in a bundled spec template (`env.L1_…`). The page documents a name in the first cell of a table row; `NAME*`
//! there documents a family (every name starting with `NAME`), and `L1_*` the templates' view of
//! every `L1_` variable (the code's `"L1_"` prefix).

#![allow(clippy::unwrap_used)] // a panic is the test's report.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const PAGE: &str = "docs/src/reference/environment.md";

/// The prefixes of the variables the page must cover.
const PREFIXES: [&str; 3] = ["L1_", "ENABLE_L1_", "NEXTEST"];

/// String literals that look like variables and are not: (name, where and why). Each must still
/// occur, so the list cannot outlive its reason.
const NOT_VARIABLES: &[(&str, &str)] = &[(
    "L1_X",
    "engines/src/process.rs: a unit test's made-up variable on a child command",
)];

/// The workspace crates whose Rust sources are scanned.
const CRATES: [&str; 7] = [
    "harness", "engines", "reports", "loadgen", "store", "tune", "testkit",
];

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'
}

/// Variable names in `text`: words starting with one of [`PREFIXES`]; with `quoted`, only
/// whole string literals (`"L1_SPECS"`, not `"L1_SPECS=1"` or `L1_SPECS` in a comment).
fn names(text: &str, quoted: bool) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(['L', 'E', 'N']) {
        if !PREFIXES.iter().any(|p| text[i..].starts_with(p)) {
            continue;
        }
        let before = i.checked_sub(1).map(|j| bytes[j]);
        if before.is_some_and(|b| is_name_byte(b) || b.is_ascii_lowercase()) {
            continue; // inside a longer word (`ENABLE_L1_…` is found from its `E`)
        }
        let end = i + bytes[i..].iter().take_while(|b| is_name_byte(**b)).count();
        if quoted && (before != Some(b'"') || bytes.get(end) != Some(&b'"')) {
            continue;
        }
        if end < bytes.len() && bytes[end].is_ascii_lowercase() {
            continue; // `NEXTESTx`, not a variable
        }
        out.insert(text[i..end].to_string());
    }
    out
}

/// Files under `dir` (recursively, skipping `target/`) whose name ends with one of `exts`.
fn files(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                files(&path, exts, out);
            }
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| exts.iter().any(|x| n.ends_with(x)))
        {
            out.push(path);
        }
    }
}

/// Every variable name the code, the scripts and the bundled specs read, with a file that
/// reads it.
fn read_names(root: &Path) -> BTreeMap<String, PathBuf> {
    let mut found = BTreeMap::new();
    let mut scan = |paths: Vec<PathBuf>, quoted: bool| {
        // This file's own examples are not variables.
        for path in paths.into_iter().filter(|p| !p.ends_with(file!())) {
            let text = std::fs::read_to_string(&path).unwrap();
            for n in names(&text, quoted) {
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                found.entry(n).or_insert(rel);
            }
        }
    };
    let mut rust = Vec::new();
    for c in CRATES {
        files(&root.join(c), &[".rs"], &mut rust);
    }
    scan(rust, true);
    let mut other = Vec::new();
    files(&root.join("scripts"), &[".sh", ".py"], &mut other);
    files(&root.join("specs"), &[".j2", ".yaml"], &mut other);
    files(&root.join("ci"), &[".yml", ".yaml", ".sh"], &mut other);
    scan(other, false);
    found
}

/// The names the page documents: the first cell of every table row, in backticks, that starts
/// with one of [`PREFIXES`].
fn documented(page: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in page.lines() {
        let Some(cell) = line.strip_prefix('|').and_then(|l| l.split('|').next()) else {
            continue;
        };
        for (k, part) in cell.split('`').enumerate() {
            if k % 2 == 1 && PREFIXES.iter().any(|p| part.starts_with(p)) {
                out.insert(part.to_string());
            }
        }
    }
    out
}

/// Whether the documented `doc` (a name, or a family `NAME*`) covers the read name `name`.
fn covers(doc: &str, name: &str) -> bool {
    match doc.strip_suffix('*') {
        // `L1_*` documents the `"L1_"` prefix itself, not every L1_ variable.
        Some(family) if family == "L1_" => name == family,
        Some(family) => name.starts_with(family),
        None => doc == name,
    }
}

#[test]
fn the_name_scanner_finds_variables_and_only_them() {
    let rust = r#"var("L1_SPECS"); var_os("ENABLE_L1_KERNEL_TUNING"); k.starts_with("L1_");
        "NEXTEST"; "NEXTEST_RUN_ID"; "L1_SPECS=1"; // L1_COMMENT "XL1_NOT" "Nextest""#;
    assert_eq!(
        names(rust, true),
        [
            "ENABLE_L1_KERNEL_TUNING",
            "L1_",
            "L1_SPECS",
            "NEXTEST",
            "NEXTEST_RUN_ID"
        ]
        .map(String::from)
        .into()
    );
    let script =
        "PY=\"${L1_PYTHON:-python3}\"\n{% if env.L1_NIGHTLY is defined %}\nXL1_NO NEXTESTS_x";
    assert_eq!(
        names(script, false),
        ["L1_NIGHTLY", "L1_PYTHON"].map(String::from).into()
    );
    let page = "| `L1_A` | x `L1_B` |\n| `L1_C*`, `CARGO_X` | y |\ntext `L1_D`\n";
    assert_eq!(documented(page), ["L1_A", "L1_C*"].map(String::from).into());
    assert!(covers("L1_C*", "L1_C_ID") && covers("L1_*", "L1_") && !covers("L1_*", "L1_SPECS"));
}

#[test]
fn every_variable_read_is_documented_and_every_documented_one_is_read() {
    let root = common::root();
    let page = std::fs::read_to_string(root.join(PAGE)).unwrap();
    let docs = documented(&page);
    let mut found = read_names(&root);
    for (name, why) in NOT_VARIABLES {
        assert!(
            found.remove(*name).is_some(),
            "`{name}` is listed as not a variable ({why}) but no longer occurs: remove it from NOT_VARIABLES"
        );
    }
    // The scan itself works on the real tree (a broken scanner would pass everything below).
    for name in [
        "L1_SPECS",
        "L1_STORE",
        "ENABLE_L1_KERNEL_TUNING",
        "NEXTEST_RUN_ID",
        "L1_",
    ] {
        assert!(
            found.contains_key(name),
            "the scan missed {name}: {found:?}"
        );
    }

    let undocumented: Vec<String> = found
        .iter()
        .filter(|(name, _)| !docs.iter().any(|d| covers(d, name)))
        .map(|(name, file)| format!("{name} (read in {})", file.display()))
        .collect();
    let unread: Vec<&String> = docs
        .iter()
        .filter(|d| !found.keys().any(|name| covers(d, name)))
        .collect();
    assert!(
        undocumented.is_empty() && unread.is_empty(),
        "{PAGE} is out of date:\n  read but not documented (add a row): {undocumented:?}\n  \
         documented but read nowhere (remove the row, or fix the name): {unread:?}"
    );
}
