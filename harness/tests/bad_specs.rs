//! The bad-spec corpus: every file under `tests/bad_specs/` must be rejected with the error its
//! header names (`# expect-error: <substring>`) at the source line it names
//! (`# expect-line: <n>`, blank when the error has no line), through the same path the harness
//! takes (`suite::plan`), without panicking.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use std::path::{Path, PathBuf};

use common::root;
use l1_harness::suite::{self, Settings};

fn header(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(&format!("# {key}:"))
            .map(|v| v.trim().to_string())
    })
}

#[test]
fn every_bad_spec_is_rejected_with_its_expected_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_specs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "the corpus should hold at least 30 bad specs, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expect = header(&text, "expect-error")
            .unwrap_or_else(|| panic!("{}: no expect-error header", file.display()));
        let line: Option<usize> = header(&text, "expect-line").and_then(|l| l.parse().ok());
        let settings = Settings::new(
            root().as_ref(),
            file.clone(),
            std::env::temp_dir().join("l1-bad-specs"),
        );
        let (trials, errors) = suite::plan(&settings, None);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        if errors.len() != 1 || !trials.is_empty() {
            failures.push(format!(
                "{name}: expected exactly one error and no trials, got {} errors, {} trials",
                errors.len(),
                trials.len()
            ));
            continue;
        }
        let d = &errors[0].1;
        let shown = d.to_string();
        if !d.message.contains(&expect) {
            failures.push(format!(
                "{name}: expected an error containing {expect:?}, got:\n{shown}"
            ));
        }
        if line.is_some() && d.line != line {
            failures.push(format!(
                "{name}: expected line {line:?}, got {:?}:\n{shown}",
                d.line
            ));
        }
        // Further independent errors of the same file, reported in the same pass.
        let also: Vec<String> = text
            .lines()
            .filter_map(|l| {
                l.strip_prefix("# expect-also:")
                    .map(|v| v.trim().to_string())
            })
            .collect();
        for want in &also {
            if !d.also.iter().any(|a| a.message.contains(want.as_str())) {
                failures.push(format!(
                    "{name}: expected a further error containing {want:?}, got:\n{shown}"
                ));
            }
        }
        if let Some(n) = header(&text, "expect-also-count").and_then(|n| n.parse::<usize>().ok())
            && d.also.len() != n
        {
            failures.push(format!(
                "{name}: expected {n} further errors, got {}:\n{shown}",
                d.also.len()
            ));
        }
        if let Some(help) = header(&text, "expect-help")
            && !d.help.as_deref().is_some_and(|h| h.contains(&help))
        {
            failures.push(format!("{name}: expected the help {help:?}, got:\n{shown}"));
        }
        if let Some(c) = header(&text, "expect-choices")
            && !d.expected.as_deref().is_some_and(|e| e.contains(&c))
        {
            failures.push(format!(
                "{name}: expected the choices to contain {c:?}, got:\n{shown}"
            ));
        }
        if let Some(c) = header(&text, "reject-choices")
            && d.expected.as_deref().is_some_and(|e| e.contains(&c))
        {
            failures.push(format!(
                "{name}: the choices should not list {c:?} (the target's engine does not accept it):\n{shown}"
            ));
        }
        if !shown.contains(&name) {
            failures.push(format!(
                "{name}: the error does not name the file:\n{shown}"
            ));
        }
        if !errors[0].0.starts_with("invalid::") {
            failures.push(format!(
                "{name}: the failing trial is named {}",
                errors[0].0
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad specs misbehaved:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn errors_list_valid_choices() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_specs");
    for (file, choice) in [
        ("unknown-engine.yaml", "vllm"),
        ("unknown-model.yaml", "llama-3.1-8b"),
        ("unknown-hardware.yaml", "h100-sxm"),
        ("unknown-workload.yaml", "chat-short"),
        ("unknown-dimension.yaml", "attention_backend"),
        ("unknown-value.yaml", "flash_attn_v3"),
        ("gate-unknown-metric.yaml", "output_tokens_per_s"),
        ("engine-bad-version.yaml", "vllm@0.13"),
        ("bad-knob-value.yaml", "32"),
        ("gate-unknown-method.yaml", "topk5"),
    ] {
        let settings = Settings::new(
            root().as_ref(),
            dir.join(file),
            std::env::temp_dir().join("l1-bad-specs"),
        );
        let (_, errors) = suite::plan(&settings, None);
        let shown = errors[0].1.to_string();
        assert!(
            errors[0]
                .1
                .expected
                .as_deref()
                .is_some_and(|e| e.contains(choice)),
            "{file}: the valid choices should include {choice}:\n{shown}"
        );
    }
}
