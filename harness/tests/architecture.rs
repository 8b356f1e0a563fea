//! The crate's shape, checked from its source: the modules of `harness/src` import each other
//! without cycles, the saved formats (`src/model/`) import nothing else of the crate, and no
//! source file grows past 900 lines before its test module.
//!
//! The import graph is read the way `cycles.py` in the refactor notes reads it: per top-level
//! module of `src/` (a file `x.rs` or a directory `x/`; `bin/` is left out), the text before
//! its first `#[cfg(test)]`, every `crate::x` path and every top-level name of a
//! `use crate::{...};` group. Doc links such as `[`crate::x`]` count too: a module that
//! links up to a module above it says it depends on it; name it in plain words instead.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each module's file texts (non-test part), keyed by top-level module name.
type Sources = BTreeMap<String, Vec<(String, String)>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text before the first `#[cfg(test)]` line.
fn non_test(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The modules a text names: `crate::x` paths and the top-level names of `use crate::{...};`.
fn named_modules(body: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = body;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        let after = &rest[i + "crate::".len()..];
        rest = after;
        if before.is_some_and(|c| is_ident(c) || c == '$') {
            continue;
        }
        if let Some(group) = after.strip_prefix('{') {
            // Top-level items of the group: split at commas outside nested braces.
            let mut depth = 0usize;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        items.push(std::mem::take(&mut item));
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            items.push(item);
            for it in items {
                let name: String = it
                    .trim_start()
                    .chars()
                    .take_while(|c| is_ident(*c))
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = after.chars().take_while(|c| is_ident(*c)).collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// Read `src` into per-module sources (files under `bin/` left out).
fn read_sources(src: &Path) -> Sources {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut out = Sources::new();
    for f in files {
        let rel = f.strip_prefix(src).unwrap_or(&f);
        let first = rel
            .components()
            .next()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .unwrap_or_default();
        if first == "bin" {
            continue;
        }
        let module = first.strip_suffix(".rs").unwrap_or(&first).to_string();
        let text = std::fs::read_to_string(&f)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
        out.entry(module)
            .or_default()
            .push((rel.display().to_string(), non_test(&text).to_string()));
    }
    out
}

/// The module graph: each module → the other modules it names.
fn graph(sources: &Sources) -> BTreeMap<String, BTreeSet<String>> {
    sources
        .iter()
        .map(|(m, files)| {
            let deps = files
                .iter()
                .flat_map(|(_, body)| named_modules(body))
                .filter(|d| d != m && sources.contains_key(d))
                .collect();
            (m.clone(), deps)
        })
        .collect()
}

/// Strongly connected components with more than one module (Tarjan), each sorted.
fn cycles(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on.insert(v);
        for w in &s.g[v] {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

/// Files of the `model` module that name another module of the crate: `(file, module)`.
fn model_escapes(sources: &Sources) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (file, body) in sources.get("model").into_iter().flatten() {
        for m in named_modules(body) {
            if m != "model" && sources.contains_key(&m) {
                out.push((file.clone(), m));
            }
        }
    }
    out
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn describe(cycles: &[Vec<String>], g: &BTreeMap<String, BTreeSet<String>>) -> String {
    cycles
        .iter()
        .map(|c| {
            let edges: Vec<String> = c
                .iter()
                .map(|m| {
                    let inside: Vec<&str> = g[m]
                        .iter()
                        .filter(|d| c.contains(d))
                        .map(String::as_str)
                        .collect();
                    format!("{m} → {}", inside.join(", "))
                })
                .collect();
            format!("cycle {{{}}}: {}", c.join(", "), edges.join("; "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn harness_modules_import_each_other_without_cycles() {
    let sources = read_sources(&src());
    assert!(
        sources.len() > 10,
        "read only {} modules from {}",
        sources.len(),
        src().display()
    );
    let g = graph(&sources);
    let found = cycles(&g);
    assert!(
        found.is_empty(),
        "import cycles among harness/src modules (an edge is a `crate::x` path or a `use crate::{{x, ..}}` item before the file's #[cfg(test)]):\n{}",
        describe(&found, &g)
    );
}

#[test]
fn the_model_imports_nothing_else_of_the_crate() {
    let sources = read_sources(&src());
    assert!(
        sources.contains_key("model"),
        "no model module under {}",
        src().display()
    );
    let escapes = model_escapes(&sources);
    assert!(
        escapes.is_empty(),
        "the model layer must only use std, serde, lower crates and other model files; found: {}",
        escapes
            .iter()
            .map(|(f, m)| format!("{f} → crate::{m}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

#[test]

fn no_source_file_has_more_than_900_lines_before_its_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("../engines/src"), &mut files);
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).ok()?;
            let n = non_test(&text).lines().count();
            (n > 900).then(|| format!("{} ({n} lines)", f.display()))
        })
        .collect();
    long.sort();
    assert!(
        long.is_empty(),
        "files over 900 lines before their #[cfg(test)]: {}",
        long.join(", ")
    );
}

/// The checks themselves: a two-module cycle and a model file that imports upward are found,
/// a layered graph is not flagged, and `use crate::{...}` groups count their top-level names.
#[test]
fn the_checks_find_a_cycle_and_an_upward_model_import() {
    let src = |files: &[(&str, &str, &str)]| -> Sources {
        let mut s = Sources::new();
        for (m, f, body) in files {
            s.entry(m.to_string())
                .or_default()
                .push((f.to_string(), non_test(body).to_string()));
        }
        s
    };
    let cyclic = src(&[
        ("a", "a.rs", "use crate::b::X;\n"),
        ("b", "b.rs", "use crate::{c::Y, stats};\n"),
        ("c", "c/mod.rs", "fn f() { crate::a::g() }\n"),
        ("stats", "stats.rs", ""),
        (
            "d",
            "d.rs",
            "use crate::a;\n#[cfg(test)]\nmod t { use crate::d; }\n",
        ),
    ]);
    let g = graph(&cyclic);
    assert_eq!(cycles(&g), vec![vec!["a", "b", "c"]]);
    assert!(describe(&cycles(&g), &g).contains("b → c"));
    assert_eq!(g["b"], ["c", "stats"].map(String::from).into());
    // Test-only imports do not count; `$crate::` and `l1_crate::` are not this crate.
    let layered = src(&[
        ("a", "a.rs", "use crate::b;\n#[cfg(test)]\nuse crate::c;\n"),
        ("b", "b.rs", "macro_rules! m { () => { $crate::a::f() } }\n"),
        (
            "c",
            "c.rs",
            "use my_crate::a;\nuse crate::{\n    b::{self, X},\n    model,\n};\n",
        ),
        ("model", "model/mod.rs", "use super::x;\n"),
    ]);
    let g = graph(&layered);
    assert!(cycles(&g).is_empty(), "{g:?}");
    assert_eq!(g["c"], ["b", "model"].map(String::from).into());
    assert!(model_escapes(&layered).is_empty());
    let upward = src(&[
        (
            "model",
            "model/trial.rs",
            "use crate::gates::GateVerdict;\n",
        ),
        ("model", "model/mod.rs", "pub use crate::model::trial::X;\n"),
        ("gates", "gates.rs", "use crate::model::GateVerdict;\n"),
    ]);
    assert_eq!(
        model_escapes(&upward),
        vec![("model/trial.rs".to_string(), "gates".to_string())]
    );
    assert_eq!(cycles(&graph(&upward)), vec![vec!["gates", "model"]]);
}
