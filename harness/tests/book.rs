//! The book (`docs/src`) cannot drift from the code:
//!
//! - every whole spec in a fenced `yaml` block (one with a top-level `kind:` and `name:`) passes
//!   `l1 validate`, written to a scratch directory as `<name>.yaml`; a block marked
//!   `yaml,invalid` (an example of an error) must fail it with a diagnostic naming the file;
//!   fragments are skipped, and the test asserts how many examples it checked, so it cannot pass
//!   on an empty or unparsed book;
//! - the spec field reference (`docs/src/specs/reference.md`) lists every field of the spec
//!   schema (`docs/src/specs/spec.schema.json`, generated from the spec types) and no field the
//!   schema lacks.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{RemoveOnDrop, clear_runner_env, root};
use serde_json::Value;

/// Whole-spec examples the book holds at least (valid ones; the book had 12 when this test was
/// written): a lost page or a broken fence parser must not pass as "all examples valid".
const MIN_VALID_SPECS: usize = 12;

/// Deliberately invalid examples the book holds at least.
const MIN_INVALID_SPECS: usize = 2;

fn book_src() -> PathBuf {
    root().join("docs/src")
}

/// Every markdown page under `dir`, sorted.
fn pages(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// One fenced code block of a page.
#[derive(Debug)]
struct Block {
    /// The page, relative to the repository root.
    page: String,
    /// The line of the opening fence (1-based).
    line: usize,
    /// The language (`yaml`), lower case.
    lang: String,
    /// Further words of the info string (`invalid` in ```` ```yaml,invalid ````).
    attrs: Vec<String>,
    /// The content, with the fence's indentation removed.
    text: String,
}

/// The fenced code blocks of a markdown page (backtick or tilde fences, indented or not, as
/// CommonMark reads them: a block closes at a fence of the same character at least as long).
fn blocks(page: &str, markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let indent = line.len() - line.trim_start().len();
        let rest = line.trim_start();
        let Some(ch) = rest.chars().next().filter(|c| *c == '`' || *c == '~') else {
            continue;
        };
        let len = rest.chars().take_while(|c| *c == ch).count();
        if len < 3 || indent > 3 {
            continue;
        }
        let info = rest[len..].trim();
        let mut words = info
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase);
        let lang = words.next().unwrap_or_default();
        let attrs = words.collect();
        let mut text = String::new();
        for (_, l) in lines.by_ref() {
            let t = l.trim_start();
            if t.chars().take_while(|c| *c == ch).count() >= len
                && t.trim_start_matches(ch).trim().is_empty()
            {
                break;
            }
            // Remove up to the fence's indentation, as CommonMark does.
            let strip = l.len() - l.trim_start().len();
            text.push_str(&l[strip.min(indent)..]);
            text.push('\n');
        }
        out.push(Block {
            page: page.to_string(),
            line: i + 1,
            lang,
            attrs,
            text,
        });
    }
    out
}

/// The value of a top-level `key:` line of a YAML text (comment and quotes removed).
fn top_level(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let v = l.strip_prefix(key)?.strip_prefix(':')?;
        let v = v.split(" #").next().unwrap_or(v).trim();
        Some(v.trim_matches(|c| c == '"' || c == '\'').to_string())
    })
}

/// Every yaml block of the book, with the spec name of those that are whole specs.
fn yaml_blocks() -> Vec<(Block, Option<String>)> {
    let mut out = Vec::new();
    // The book's pages and the README (its example spec is held to the same rule).
    let mut files = pages(&book_src());
    files.push(root().join("README.md"));
    for page in files {
        let rel = page
            .strip_prefix(root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let markdown = std::fs::read_to_string(&page).unwrap();
        for b in blocks(&rel, &markdown) {
            if b.lang != "yaml" && b.lang != "yml" {
                continue;
            }
            let name = top_level(&b.text, "kind")
                .and_then(|_| top_level(&b.text, "name"))
                .filter(|n| !n.is_empty());
            out.push((b, name));
        }
    }
    out
}

/// `l1 validate FILE` with the repository as root and none of the caller's `L1_*` settings
/// (templates see `env.L1_*`: a book example must not depend on the shell that runs the test).
fn validate(file: &Path, scratch: &Path) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_l1"));
    for (k, _) in std::env::vars_os() {
        let name = k.to_string_lossy();
        if name.starts_with("L1_") || name == "ENABLE_L1_KERNEL_TUNING" {
            cmd.env_remove(&k);
        }
    }
    clear_runner_env(&mut cmd);
    cmd.current_dir(scratch)
        .arg("validate")
        .arg(file)
        .env("L1_ROOT", root())
        .env("L1_TARGET_DIR", scratch.join("target"));
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn every_spec_example_in_the_book_validates_and_every_invalid_one_fails() {
    let scratch = RemoveOnDrop(l1_testkit::fresh_dir("book-specs"));
    let mut valid = 0;
    let mut invalid = 0;
    let mut failures = Vec::new();
    for (n, (block, name)) in yaml_blocks().into_iter().enumerate() {
        let at = format!("{}:{}", block.page, block.line);
        let marked_invalid = block.attrs.iter().any(|a| a == "invalid");
        let Some(name) = name else {
            if marked_invalid {
                failures.push(format!(
                    "{at}: marked `invalid` but is not a whole spec (no top-level `kind:` and `name:`)"
                ));
            }
            continue;
        };
        // One directory per block: two pages may show specs of the same name.
        let dir = scratch.0.join(format!("{n:03}"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, &block.text).unwrap();
        let (code, out) = validate(&file, &dir);
        if marked_invalid {
            invalid += 1;
            // Exit 1 with the harness's own diagnostic, not a crash or a usage error.
            let diagnosed = out.contains("error:") && out.contains(&format!("{name}.yaml"));
            if code != 1 || !diagnosed {
                failures.push(format!(
                    "{at}: marked `invalid`, so `l1 validate` must reject it with a diagnostic (exit 1), got exit {code}:\n{out}"
                ));
            }
        } else {
            valid += 1;
            if code != 0 {
                failures.push(format!(
                    "{at}: the spec example `{name}` fails `l1 validate` (exit {code}); fix it, or mark the fence ```yaml,invalid if the error is the point:\n{out}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        valid >= MIN_VALID_SPECS,
        "only {valid} whole-spec examples found in docs/src (expected at least {MIN_VALID_SPECS}): was a page lost, or a fence not recognised?"
    );
    assert!(
        invalid >= MIN_INVALID_SPECS,
        "only {invalid} `yaml,invalid` examples found in docs/src (expected at least {MIN_INVALID_SPECS})"
    );
}

/// The fence reader finds indented and tilde fences, keeps info-string attributes, and does not
/// end a block at a shorter fence inside it; a fragment is not a whole spec.
#[test]
fn the_fence_reader_reads_what_mdbook_renders() {
    let md = "text\n\n   ```yaml,invalid\n   kind: sweep\n   name: a\n   ```\n\n~~~~yaml\nkind: tune\n```\nname: b\n~~~~\n\n```sh\nls\n```\n\n```yaml\ngates:\n  - { method: manual }\n```\n";
    let b = blocks("p.md", md);
    assert_eq!(b.len(), 4, "{b:#?}");
    assert_eq!((b[0].line, b[0].lang.as_str()), (3, "yaml"));
    assert_eq!(b[0].attrs, ["invalid"]);
    assert_eq!(b[0].text, "kind: sweep\nname: a\n");
    assert_eq!(b[1].text, "kind: tune\n```\nname: b\n");
    assert_eq!(top_level(&b[1].text, "name").as_deref(), Some("b"));
    assert_eq!(b[2].lang, "sh");
    assert_eq!(top_level(&b[3].text, "kind"), None);
    assert_eq!(
        top_level("name: \"x-y\"   # the file name\n", "name").as_deref(),
        Some("x-y")
    );
}

/// The field paths of the reference's tables: the first cell of every table row that is one
/// code span (`` `measure.reps` ``), with map keys (`<dimension>`) normalised to `<*>`.
fn reference_paths(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|l| {
            let cell = l.trim().strip_prefix('|')?.split('|').next()?.trim();
            let path = cell.strip_prefix('`')?.strip_suffix('`')?;
            (!path.contains('`')).then(|| normalise(path))
        })
        .collect()
}

/// `<dimension>`, `<metric>`, ... → `<*>`.
fn normalise(path: &str) -> String {
    path.split('.')
        .map(|seg| {
            if seg.starts_with('<') && seg.ends_with('>') {
                "<*>"
            } else {
                seg
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Every field path of a JSON Schema: properties (`a.b`), list items (`a[]`), schemas of map
/// values (`a.<*>`), through `$ref`, `allOf`/`anyOf`/`oneOf` and nullable type lists.
fn schema_paths(schema: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk(schema, schema, "", &mut Vec::new(), &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(
    root: &Value,
    node: &Value,
    path: &str,
    refs: &mut Vec<String>,
    out: &mut BTreeSet<String>,
) {
    if let Some(r) = node.get("$ref").and_then(Value::as_str) {
        // A recursive type would loop: each reference is followed once per branch.
        if refs.iter().any(|x| x == r) {
            return;
        }
        let target = r
            .strip_prefix('#')
            .and_then(|p| root.pointer(p))
            .unwrap_or_else(|| panic!("unresolved $ref {r} at {path:?}"));
        refs.push(r.to_string());
        walk(root, target, path, refs, out);
        refs.pop();
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for sub in node
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            walk(root, sub, path, refs, out);
        }
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let p = join(path, k);
            out.insert(p.clone());
            walk(root, v, &p, refs, out);
        }
    }
    let items = node.get("items").into_iter().chain(
        node.get("prefixItems")
            .and_then(Value::as_array)
            .into_iter()
            .flatten(),
    );
    for item in items {
        if item.is_object() {
            walk(root, item, &format!("{path}[]"), refs, out);
        }
    }
    let values = node
        .get("additionalProperties")
        .filter(|v| v.is_object())
        .into_iter()
        .chain(
            node.get("patternProperties")
                .and_then(Value::as_object)
                .into_iter()
                .flat_map(|m| m.values()),
        );
    for v in values {
        let p = join(path, "<*>");
        out.insert(p.clone());
        walk(root, v, &p, refs, out);
    }
}

/// The schema walker on a schema in schemars' shape: `$defs` and `$ref`, an optional field as
/// `anyOf [ref, null]`, a list of structs, a map of structs, an enum with a data variant.
#[test]
fn the_schema_walker_finds_every_field_path() {
    let schema: Value = serde_json::json!({
        "type": "object",
        "properties": {
            "kind": { "enum": ["sweep", "tune"] },
            "gates": { "type": ["array", "null"], "items": { "$ref": "#/$defs/Gate" } },
            "space": { "anyOf": [{ "$ref": "#/$defs/Space" }, { "type": "null" }] },
            "baseline": { "oneOf": [
                { "const": "engine-default" },
                { "type": "object", "properties": { "combo": {
                    "type": "object", "additionalProperties": { "type": "string" } } } }
            ] }
        },
        "$defs": {
            "Gate": { "type": "object", "properties": {
                "method": { "type": "string" },
                "per_dtype": { "type": "object", "additionalProperties": { "$ref": "#/$defs/T" } }
            } },
            "T": { "type": "object", "properties": { "min_exact_match": { "type": "number" } } },
            "Space": { "type": "object", "properties": { "dims": {
                "type": "object", "additionalProperties": { "anyOf": [
                    { "type": "string" }, { "type": "array", "items": { "type": "string" } } ] } } } }
        }
    });
    let got: Vec<String> = schema_paths(&schema).into_iter().collect();
    assert_eq!(
        got,
        [
            "baseline",
            "baseline.combo",
            "baseline.combo.<*>",
            "gates",
            "gates[].method",
            "gates[].per_dtype",
            "gates[].per_dtype.<*>",
            "gates[].per_dtype.<*>.min_exact_match",
            "kind",
            "space",
            "space.dims",
            "space.dims.<*>",
        ]
    );
    let md = "| path | type |\n|---|---|\n| `gates[].per_dtype.<class>.min_exact_match` | number |\n| `space.dims.<dimension>` | x |\n| not a path | x |\n";
    assert_eq!(
        reference_paths(md).into_iter().collect::<Vec<_>>(),
        ["gates[].per_dtype.<*>.min_exact_match", "space.dims.<*>"]
    );
}

#[test]
fn the_field_reference_lists_every_schema_field_and_no_other() {
    let schema_file = root().join("docs/src/specs/spec.schema.json");
    let text = std::fs::read_to_string(&schema_file)
        .unwrap_or_else(|e| panic!("{}: {e}", schema_file.display()));
    let schema: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", schema_file.display()));
    let in_schema = schema_paths(&schema);
    let reference = root().join("docs/src/specs/reference.md");
    let in_reference = reference_paths(&std::fs::read_to_string(&reference).unwrap());
    assert!(
        in_schema.len() >= 40,
        "the schema walk found only {} fields: {in_schema:?}",
        in_schema.len()
    );
    let missing: Vec<&String> = in_schema.difference(&in_reference).collect();
    let unknown: Vec<&String> = in_reference.difference(&in_schema).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/src/specs/reference.md and the spec schema disagree (map keys written as <*>):\n  \
         fields of the schema the reference does not list: {missing:?}\n  \
         paths in the reference the schema does not have: {unknown:?}"
    );
}
