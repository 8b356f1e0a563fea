//! The spec files' JSON Schema (`l1 schema`, committed at `docs/src/specs/spec.schema.json`):
//! the committed copy is what the spec types generate; every bundled spec validates against it
//! (templates after rendering) and carries the editor header; and the bad-spec corpus splits
//! exactly into the files whose error is one of shape (a wrong type, an unknown field, a
//! missing field, an unknown enum value, a field where it does not belong: the schema rejects
//! them) and the files whose error is one of meaning (legality, catalog names, ranges: the
//! schema accepts them, `l1 validate` does not). Where a field belongs, the schema and
//! `l1 validate` agree on every gate method, `against` and field, and on both kinds.
//!
//! The schema is checked with an independent validator, check-jsonschema (PyPI, installed by
//! `scripts/setup-doc-tools.sh` into `~/.cache/l1/pyvenv-docs`, or found on `PATH`); without it
//! those tests are skipped with the reason, except under `L1_REQUIRE_ENGINES=1` (CI).

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::root;
use l1_harness::detect::Detected;
use l1_harness::profiles::Catalogs;
use l1_harness::render::{self, RenderContext};
use l1_harness::spec::{self, schema};

/// The header every plain bundled spec starts with, before the path to the schema.
const HEADER: &str = "# yaml-language-server: $schema=";

/// Corpus files whose error is one of shape, with the document path the schema rejects.
const SHAPE_ERRORS: &[(&str, &str)] = &[
    // An unknown enum value.
    ("bad-mode.yaml", "$.space.mode"),
    ("gate-unknown-method.yaml", "$.gates[0].method"),
    ("near-miss-gate-method.yaml", "$.gates[0].method"),
    ("regression-unknown-form.yaml", "$.gates[0].form"),
    ("unknown-kind.yaml", "$.kind"),
    ("pareto-against-unknown.yaml", "$.gates[0].against"),
    ("fidelity-unknown-class.yaml", "$.gates[0].per_dtype"),
    // A field where it does not belong: another kind's field, a gate field its method does not
    // take (`GATE_FIELDS`), `against: stored` on a method that does not compare with stored
    // results.
    ("tune-gates-field.yaml", "$.gates"),
    ("gate-wrong-field.yaml", "$.gates[0].margin"),
    ("gate-field-in-second-gate.yaml", "$.gates[1].margin"),
    ("fidelity-field-on-topk5.yaml", "$.gates[0].min_exact_match"),
    ("regression-form-on-topk5.yaml", "$.gates[0].form"),
    ("pareto-epsilon-without-stored.yaml", "$.gates[0].epsilon"),
    ("against-stored-on-topk5.yaml", "$.gates[0].against"),
    // An unknown field.
    ("fidelity-unknown-threshold.yaml", "$.gates[0]"),
    ("gate-unknown-field.yaml", "$.gates[0]"),
    ("near-miss-field.yaml", "$.measure"),
    ("unknown-top-field.yaml", "$"),
    // A missing field.
    ("missing-targets.yaml", "$"),
    // A wrong type.
    ("reps-not-a-number.yaml", "$.measure.reps"),
];

/// Corpus files that are no YAML document for the schema to check, and why.
const NOT_DOCUMENTS: &[(&str, &str)] = &[
    ("duplicate-key.yaml", "YAML error: a key written twice"),
    (
        "malformed-yaml.yaml",
        "YAML syntax error: an unclosed flow list",
    ),
    (
        "template-out-of-fuel.yaml",
        "template error: rendering runs out of fuel",
    ),
    (
        "template-runaway-output.yaml",
        "template error: the rendered text is too large",
    ),
    ("template-syntax.yaml", "template syntax error"),
    (
        "template-undefined-env.yaml",
        "template error: an undefined `env` variable",
    ),
    (
        "template-undefined.yaml",
        "template error: an undefined name",
    ),
];

/// check-jsonschema as `scripts/setup-doc-tools.sh` installs it: on `PATH`, else in the
/// cached venv.
fn check_jsonschema() -> Option<PathBuf> {
    let works = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let on_path = PathBuf::from("check-jsonschema");
    if works(&on_path) {
        return Some(on_path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    let venv = cache.join("l1/pyvenv-docs/bin/check-jsonschema");
    works(&venv).then_some(venv)
}

fn tool_or_skip() -> Option<PathBuf> {
    check_jsonschema().or_else(|| {
        l1_testkit::skip(
            "check-jsonschema is not installed (scripts/setup-doc-tools.sh installs it into ~/.cache/l1/pyvenv-docs)",
        )
    })
}

fn committed() -> PathBuf {
    root().join(schema::COMMITTED)
}

/// What check-jsonschema says of `files`: the files it rejects (with the document paths of
/// their errors) and the files it could not parse.
struct Verdict {
    rejected: BTreeMap<String, Vec<String>>,
    unparsed: Vec<String>,
    output: String,
}

fn check(tool: &Path, files: &[PathBuf]) -> Verdict {
    assert!(!files.is_empty(), "nothing to check");
    let out = Command::new(tool)
        .args(["--output-format", "JSON", "--schemafile"])
        .arg(committed())
        .args(files)
        .output()
        .unwrap();
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("check-jsonschema printed no JSON report ({e}):\n{output}"));
    let name = |v: &serde_json::Value| {
        let f = v["filename"].as_str().unwrap_or_default();
        Path::new(f)
            .file_name()
            .map_or_else(|| f.to_string(), |n| n.to_string_lossy().into_owned())
    };
    let mut rejected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in report["errors"].as_array().into_iter().flatten() {
        rejected
            .entry(name(e))
            .or_default()
            .push(e["path"].as_str().unwrap_or_default().to_string());
    }
    let unparsed = (report["parse_errors"].as_array().into_iter().flatten())
        .map(name)
        .collect();
    // The exit status agrees with the report.
    let clean = report["status"] == "ok";
    assert_eq!(out.status.success(), clean, "{output}");
    Verdict {
        rejected,
        unparsed,
        output,
    }
}

/// The render context of `l1` and the harness on this machine, with `L1_NIGHTLY` set or not
/// (the bundled template's one branch on the environment).
fn contexts() -> Vec<RenderContext> {
    let cats = Catalogs::load(&root()).unwrap_or_else(|d| panic!("{d}"));
    let mut ctx = l1_harness::suite::render_context(&cats, &Detected::detect(&cats.hardware));
    ctx.env.remove("L1_NIGHTLY");
    let mut nightly = ctx.clone();
    nightly.env.insert("L1_NIGHTLY".into(), "1".into());
    vec![ctx, nightly]
}

/// `file` rendered with `ctx` into `dir` (as `<stem>.<n>.yaml`), for the validator to read.
fn rendered(file: &Path, ctx: &RenderContext, n: usize, dir: &Path) -> PathBuf {
    let source = std::fs::read_to_string(file).unwrap();
    let r = render::render(file, &source, ctx).unwrap_or_else(|d| panic!("{d}"));
    let stem = file.file_name().unwrap().to_string_lossy();
    let stem = stem.trim_end_matches(".j2").trim_end_matches(".yaml");
    let out = dir.join(format!("{stem}.{n}.yaml"));
    std::fs::write(&out, r.text).unwrap();
    out
}

#[test]
fn the_committed_schema_is_what_the_spec_types_generate() {
    let path = committed();
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = schema::text();
    if on_disk != generated {
        let first = on_disk
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || "one is a prefix of the other".to_string(),
                |i| format!("first difference at line {}", i + 1),
            );
        panic!(
            "{} is stale or missing ({first}); regenerate it with\n  {}",
            path.display(),
            schema::REGENERATE
        );
    }
    assert!(generated.ends_with("}\n"));
}

#[test]
fn every_bundled_spec_validates_against_the_schema() {
    let Some(tool) = tool_or_skip() else {
        return;
    };
    // The schema itself is a valid draft-07 schema.
    let meta = Command::new(&tool)
        .arg("--check-metaschema")
        .arg(committed())
        .output()
        .unwrap();
    assert!(
        meta.status.success(),
        "the schema fails its metaschema:\n{}",
        String::from_utf8_lossy(&meta.stdout)
    );
    let scratch = l1_testkit::fresh_dir("schema-bundled");
    let _cleanup = l1_testkit::RemoveOnDrop(scratch.clone());
    let specs = spec::discover(&root().join("specs")).unwrap_or_else(|d| panic!("{d}"));
    let (mut plain, mut templates) = (0, 0);
    let mut files = Vec::new();
    for file in &specs {
        if file.to_string_lossy().ends_with(".j2") {
            templates += 1;
            for (n, ctx) in contexts().iter().enumerate() {
                files.push(rendered(file, ctx, n, &scratch));
            }
        } else {
            plain += 1;
            files.push(file.clone());
        }
    }
    assert!(
        plain >= 10 && templates >= 1,
        "{plain} plain specs and {templates} templates under specs/: a lost directory?"
    );
    let v = check(&tool, &files);
    assert!(
        v.rejected.is_empty() && v.unparsed.is_empty(),
        "bundled specs fail the schema:\n{}",
        v.output
    );
}

#[test]
fn the_schema_rejects_exactly_the_corpus_files_with_shape_errors() {
    let Some(tool) = tool_or_skip() else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_specs");
    let corpus: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let shape: BTreeMap<&str, &str> = SHAPE_ERRORS.iter().copied().collect();
    let skipped: BTreeSet<&str> = NOT_DOCUMENTS.iter().map(|(f, _)| *f).collect();
    // Every file named here is in the corpus, and in one list only.
    for f in shape.keys().chain(&skipped) {
        assert!(
            corpus.contains(*f),
            "{f} is listed but not in {}",
            dir.display()
        );
    }
    assert!(shape.keys().all(|f| !skipped.contains(f)));
    let scratch = l1_testkit::fresh_dir("schema-corpus");
    let _cleanup = l1_testkit::RemoveOnDrop(scratch.clone());
    let ctx = RenderContext::default();
    let mut files = Vec::new();
    let mut meaning = BTreeSet::new();
    for name in corpus.iter().filter(|f| !skipped.contains(f.as_str())) {
        let file = dir.join(name);
        let text = std::fs::read_to_string(&file).unwrap();
        // A template that renders is checked as rendered (under its own name).
        files.push(if text.contains("{%") || text.contains("{{") {
            let r = render::render(&file, &text, &ctx).unwrap_or_else(|d| panic!("{d}"));
            let out = scratch.join(name);
            std::fs::write(&out, r.text).unwrap();
            out
        } else {
            file
        });
        if !shape.contains_key(name.as_str()) {
            meaning.insert(name.clone());
        }
    }
    let v = check(&tool, &files);
    assert!(
        v.unparsed.is_empty(),
        "files not listed in NOT_DOCUMENTS do not parse: {:?}\n{}",
        v.unparsed,
        v.output
    );
    for (file, path) in &shape {
        let paths = v.rejected.get(*file).cloned().unwrap_or_default();
        assert!(
            paths.iter().any(|p| p == path),
            "{file}: the schema should reject it at {path}, got {paths:?}\n{}",
            v.output
        );
    }
    let accepted_wrongly: Vec<&String> = v
        .rejected
        .keys()
        .filter(|f| !shape.contains_key(f.as_str()))
        .collect();
    assert!(
        accepted_wrongly.is_empty(),
        "the schema rejects files whose error is one of meaning (list them in SHAPE_ERRORS if their error is one of shape): {accepted_wrongly:?}\n{}",
        v.output
    );
    eprintln!(
        "{} corpus files: {} rejected by the schema (shape), {} accepted (meaning: `l1 validate` rejects them), {} not YAML documents",
        corpus.len(),
        shape.len(),
        meaning.len(),
        skipped.len()
    );
}

#[test]
fn plain_bundled_specs_start_with_the_editor_header() {
    let specs = spec::discover(&root().join("specs")).unwrap_or_else(|d| panic!("{d}"));
    let schema_path = committed();
    let mut checked = 0;
    for file in specs
        .iter()
        .filter(|f| !f.to_string_lossy().ends_with(".j2"))
    {
        let text = std::fs::read_to_string(file).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let Some(rel) = first.strip_prefix(HEADER) else {
            panic!(
                "{} should start with `{HEADER}<path to {}>` (editors read the schema from it)",
                file.display(),
                schema::COMMITTED
            );
        };
        let target = file.parent().unwrap().join(rel.trim());
        assert!(
            std::fs::canonicalize(&target).ok() == std::fs::canonicalize(&schema_path).ok(),
            "{}: the header's path {rel} does not lead to {}",
            file.display(),
            schema::COMMITTED
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} plain specs under specs/");
}

/// A value `l1 validate` accepts for each method-specific gate field (on a gate that takes it).
fn sample(field: &str) -> &'static str {
    match field {
        "margin" => "0.05",
        "k" => "3",
        "latency_metric" => "e2e_p95_ms",
        "metrics" => "[ttft_p95_ms]",
        "epsilons" => "{ ttft_p95_ms: 0.1 }",
        "epsilon" => "0.05",
        "form" => "non_inferiority",
        "label" => "main",
        "max_mde" => "0.2",
        "min_exact_match" | "min_matched_prefix" => "0.5",
        "max_logprob_delta" | "max_topk_divergence" => "0.1",
        "per_dtype" => "{ bf16: { min_exact_match: 0.5 } }",
        "require_logprobs" => "false",
        other => panic!("no sample value for gate field `{other}`: add one"),
    }
}

/// The tune fields' sample values (valid in a tune spec).
fn tune_sample(field: &str) -> &'static str {
    match field {
        "objective" => "{ metric: output_tokens_per_s, direction: maximize }",
        "constraints" => "[{ metric: ttft_p95_ms, at_most: 500 }]",
        "budget" => "{ max_trials: 4 }",
        "seed_from" => "sim-llama-8b-h100",
        "gate" => "{ margin: 0.03 }",
        "remeasure" => "{ top: 2 }",
        "acquisition" => "expected_improvement",
        other => panic!("no sample value for tune field `{other}`: add one"),
    }
}

#[test]
fn the_schema_and_l1_validate_agree_on_where_every_field_belongs() {
    use l1_harness::spec::{GATE_FIELDS, GateMethod, TUNE_FIELDS};
    let Some(tool) = tool_or_skip() else {
        return;
    };
    let cats = Catalogs::load(&root()).unwrap_or_else(|d| panic!("{d}"));
    let scratch = l1_testkit::fresh_dir("schema-placement");
    let _cleanup = l1_testkit::RemoveOnDrop(scratch.clone());
    let targets = "targets:\n  engines: [sim@1.0]\n  models: [llama-3.1-8b]\n  hardware: [h100-sxm]\n  workloads: [chat-short]\n";
    let tune_base = "objective: { metric: output_tokens_per_s, direction: maximize }\nbudget: { max_trials: 4 }\n";
    // (file, what it writes): every gate method × `against` (none, baseline, stored) × one
    // method-specific field (or none); then the kinds' own fields in the other kind.
    let mut cases: Vec<(String, String)> = Vec::new();
    for m in GateMethod::ALL {
        for against in [None, Some("baseline"), Some("stored")] {
            let fields = std::iter::once(None).chain(GATE_FIELDS.iter().map(|(f, _)| Some(*f)));
            for field in fields {
                let mut gate = format!("method: {m}");
                if let Some(a) = against {
                    gate.push_str(&format!(", against: {a}"));
                }
                if let Some(f) = field {
                    gate.push_str(&format!(", {f}: {}", sample(f)));
                }
                let name = format!(
                    "g-{m}-{}-{}",
                    against.unwrap_or("none"),
                    field.unwrap_or("none").replace('_', "-")
                );
                cases.push((name, format!("kind: sweep\ngates:\n  - {{ {gate} }}\n")));
            }
        }
    }
    for f in TUNE_FIELDS {
        cases.push((
            format!("k-sweep-{}", f.replace('_', "-")),
            format!("kind: sweep\n{f}: {}\n", tune_sample(f)),
        ));
        let base: String = tune_base
            .lines()
            .filter(|l| !l.starts_with(&format!("{f}:")))
            .map(|l| format!("{l}\n"))
            .collect();
        cases.push((
            format!("k-tune-{}", f.replace('_', "-")),
            format!("kind: tune\n{base}{f}: {}\n", tune_sample(f)),
        ));
    }
    for (name, body) in [
        ("k-tune-gates", "gates:\n  - { method: topk5 }\n"),
        ("k-tune-quick", "space: { mode: quick }\n"),
        ("k-tune-plain", ""),
        ("k-sweep-quick", "space: { mode: quick }\n"),
    ] {
        let kind = if name.starts_with("k-sweep") {
            "kind: sweep\n".to_string()
        } else {
            format!("kind: tune\n{tune_base}")
        };
        cases.push((name.to_string(), format!("{kind}{body}")));
    }
    let mut files = Vec::new();
    let mut validator: BTreeMap<String, Result<(), String>> = BTreeMap::new();
    for (name, body) in &cases {
        // `name` follows `kind` (the document's order does not matter to either checker).
        let (kind, rest) = body.split_once('\n').unwrap();
        let file = scratch.join(format!("{name}.yaml"));
        std::fs::write(&file, format!("{kind}\nname: {name}\n{targets}{rest}")).unwrap();
        let verdict = spec::load(&file, &RenderContext::default())
            .map_err(|d| d.to_string())
            .and_then(|ls| {
                l1_harness::validate::validate(&ls, &cats)
                    .map(|_| ())
                    .map_err(|d| d.to_string())
            });
        validator.insert(format!("{name}.yaml"), verdict);
        files.push(file);
    }
    let v = check(&tool, &files);
    assert!(v.unparsed.is_empty(), "{}", v.output);
    let mut disagree = Vec::new();
    let (mut both_reject, mut both_accept) = (0, 0);
    for (file, verdict) in &validator {
        let schema_rejects = v.rejected.contains_key(file);
        match (verdict, schema_rejects) {
            (Ok(()), false) => both_accept += 1,
            (Err(_), true) => both_reject += 1,
            (Ok(()), true) => disagree.push(format!(
                "{file}: l1 validate accepts it, the schema rejects it at {:?}",
                v.rejected[file]
            )),
            (Err(e), false) => {
                disagree.push(format!(
                    "{file}: the schema accepts it, l1 validate says {e}"
                ));
            }
        }
    }
    assert!(
        disagree.is_empty(),
        "{} of {} cases disagree:\n{}",
        disagree.len(),
        validator.len(),
        disagree.join("\n")
    );
    // Both outcomes are exercised, many times over.
    assert!(
        both_accept >= 40 && both_reject >= 100,
        "{both_accept} accepted, {both_reject} rejected"
    );
    eprintln!(
        "{} placement cases: {both_accept} accepted by both, {both_reject} rejected by both",
        validator.len()
    );
}
