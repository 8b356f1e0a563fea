//! `docs/src/contributing/adding-an-engine.md` against the code: its table of registered engines is the engine
//! table (`registry::ENGINES`: names, order and kinds), and every file, module item and trait
//! method it names exists, so the page cannot drift from what adding an engine takes.

use std::path::{Path, PathBuf};

use l1_engines::EngineKind;
use l1_engines::registry::ENGINES;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn doc() -> String {
    read("docs/src/contributing/adding-an-engine.md")
}

/// The text between backticks, in order.
fn code_spans(text: &str) -> Vec<String> {
    text.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

fn kind_word(kind: EngineKind) -> &'static str {
    match kind {
        EngineKind::Simulated => "simulated",
        EngineKind::Server { .. } => "server",
        EngineKind::InProcess { .. } => "in-process",
    }
}

/// The rows of the doc's engine table: (engine, kind, module file).
fn doc_rows(doc: &str) -> Vec<(String, String, String)> {
    let begin = doc
        .find("<!-- engines:begin -->")
        .expect("the doc has `<!-- engines:begin -->`");
    let end = doc
        .find("<!-- engines:end -->")
        .expect("the doc has `<!-- engines:end -->`");
    doc[begin..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 3, "a row is `| engine | kind | module |`: {l}");
            let unquote = |c: &str| c.trim_matches('`').to_string();
            (unquote(cells[0]), cells[1].to_string(), unquote(cells[2]))
        })
        .collect()
}

#[test]
fn the_docs_engine_table_is_the_registration_table() {
    let rows = doc_rows(&doc());
    let table: Vec<(String, String)> = ENGINES
        .iter()
        .map(|e| (e.name().to_string(), kind_word(e.kind()).to_string()))
        .collect();
    let documented: Vec<(String, String)> = rows
        .iter()
        .map(|(name, kind, _)| (name.clone(), kind.clone()))
        .collect();
    assert_eq!(
        documented, table,
        "docs/src/contributing/adding-an-engine.md's engine table must list registry::ENGINES (name, kind) in order"
    );
    for (name, _, module) in &rows {
        let text = read(module);
        assert!(
            text.contains(&format!("\"{name}\"")),
            "{module}, the module the doc names for `{name}`, never spells its name"
        );
    }
}

#[test]
fn every_file_the_doc_names_exists() {
    let mut checked = 0;
    for span in code_spans(&doc()) {
        let is_path = span.contains('/')
            && !span.contains(['<', ' ', '&'])
            && (span.ends_with('/') || Path::new(&span).extension().is_some());
        if is_path {
            assert!(
                root().join(&span).exists(),
                "docs/src/contributing/adding-an-engine.md names `{span}`, which does not exist"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 10,
        "only {checked} paths found: is the doc's markup intact?"
    );
}

/// `module::Item` spans name an item defined in `engines/src/<module>.rs` (or its `mod.rs`);
/// bare lower-case identifiers that are not engine names are methods or fields of the traits and
/// the table row the doc describes.
#[test]
fn every_item_and_method_the_doc_names_exists() {
    let source = |module: &str| {
        let flat = root().join(format!("engines/src/{module}.rs"));
        let nested = root().join(format!("engines/src/{module}/mod.rs"));
        std::fs::read_to_string(&flat)
            .or_else(|_| std::fs::read_to_string(&nested))
            .unwrap_or_else(|_| panic!("the doc names module `{module}`, which engines/src lacks"))
    };
    let defines = |text: &str, item: &str| {
        ["fn", "struct", "enum", "trait", "static", "const", "type"]
            .iter()
            .any(|kw| {
                text.contains(&format!("{kw} {item}("))
                    || text.contains(&format!("{kw} {item} "))
                    || text.contains(&format!("{kw} {item}<"))
                    || text.contains(&format!("{kw} {item}:"))
            })
            || text.contains(&format!("pub {item}:"))
    };
    let interfaces = ["engine", "server", "launch"].map(source).join("\n");
    let names: Vec<&str> = ENGINES.iter().map(|e| e.name()).collect();
    let (mut items, mut methods) = (0, 0);
    for span in code_spans(&doc()) {
        if let Some((module, item)) = span.split_once("::") {
            let is_item = module.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                && item.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if is_item {
                assert!(
                    defines(&source(module), item),
                    "docs/src/contributing/adding-an-engine.md names `{span}`, which engines/src/{module} does not define"
                );
                items += 1;
            }
        } else if span.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            && !names.contains(&span.as_str())
        {
            assert!(
                defines(&interfaces, &span),
                "docs/src/contributing/adding-an-engine.md names `{span}`, which no engine, server or launch trait defines"
            );
            methods += 1;
        }
    }
    assert!(
        items >= 10 && methods >= 10,
        "only {items} items and {methods} methods found"
    );
}

/// The link targets of the book's table of contents (`docs/src/SUMMARY.md`), in order: what
/// mdBook builds and lists in the sidebar.
fn summary_links(summary: &str) -> Vec<String> {
    summary
        .lines()
        .filter(|l| l.trim_start().starts_with("- [") || l.trim_start().starts_with('['))
        .filter_map(|l| {
            let start = l.find("](")? + 2;
            let end = start + l[start..].find(')')?;
            Some(l[start..end].to_string())
        })
        .collect()
}

#[test]
fn the_book_lists_the_doc() {
    let summary = read("docs/src/SUMMARY.md");
    let links = summary_links(&summary);
    assert!(
        links.len() >= 10,
        "docs/src/SUMMARY.md: only {} links found",
        links.len()
    );
    assert!(
        links
            .iter()
            .any(|l| l == "contributing/adding-an-engine.md"),
        "docs/src/SUMMARY.md must link contributing/adding-an-engine.md (found: {links:?})"
    );
    for link in &links {
        assert!(
            root().join("docs/src").join(link).is_file(),
            "docs/src/SUMMARY.md links {link}, which does not exist under docs/src"
        );
    }
    // The architecture page sends contributors here for the steps.
    assert!(
        read("docs/src/contributing/architecture.md").contains("(adding-an-engine.md)"),
        "docs/src/contributing/architecture.md must link adding-an-engine.md"
    );
}
