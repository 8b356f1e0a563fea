//! The bad-spec corpus: every file under `tests/bad_specs/` must be rejected with the error its
//! header names (`# expect-error: <substring>`) at the source line it names
//! (`# expect-line: <n>`, blank when the error has no line), through the same path the harness
//! takes (`suite::plan`), without panicking.
//!
//! One trial per file, named by the file (`cargo test --test bad_specs -- unknown-engine.yaml`,
//! or a nextest filter, checks one), plus `corpus_size` and `errors_list_valid_choices`: a
//! libtest-mimic binary (`harness = false`), as the generated `kernels` suite is.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use common::root;
use l1_harness::suite::{self, Settings};
use libtest_mimic::{Arguments, Failed, Trial};

/// The corpus should never shrink below this (a lost directory must not pass as "all good").
const MIN_CORPUS: usize = 30;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_specs")
}

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn header(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix(&format!("# {key}:"))
            .map(|v| v.trim().to_string())
    })
}

/// The settings that plan `file` alone (nothing is written: planning a bad spec stops at
/// validation).
fn settings(file: &Path) -> Settings {
    Settings::new(
        root().as_ref(),
        file.to_path_buf(),
        std::env::temp_dir().join("l1-bad-specs"),
    )
}

/// One file of the corpus: rejected with its expected error (and further errors, help and
/// choices), naming the file, as an `invalid::` trial and nothing else.
fn check(file: &Path) -> Result<(), Failed> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("{}: unreadable: {e}", file.display()))?;
    let expect = header(&text, "expect-error")
        .ok_or_else(|| format!("{}: no expect-error header", file.display()))?;
    let line: Option<usize> = header(&text, "expect-line").and_then(|l| l.parse().ok());
    let (trials, errors) = suite::plan(&settings(file), None);
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    if errors.len() != 1 || !trials.is_empty() {
        return Err(format!(
            "{name}: expected exactly one error and no trials, got {} errors, {} trials",
            errors.len(),
            trials.len()
        )
        .into());
    }
    let mut failures = Vec::new();
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
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n\n").into())
    }
}

fn corpus_size() -> Result<(), Failed> {
    let n = corpus().len();
    if n < MIN_CORPUS {
        return Err(format!(
            "the corpus {} should hold at least {MIN_CORPUS} bad specs, found {n}",
            corpus_dir().display()
        )
        .into());
    }
    Ok(())
}

fn errors_list_valid_choices() -> Result<(), Failed> {
    let dir = corpus_dir();
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
        let (_, errors) = suite::plan(&settings(&dir.join(file)), None);
        let d = &errors.first().ok_or_else(|| format!("{file}: no error"))?.1;
        if !d.expected.as_deref().is_some_and(|e| e.contains(choice)) {
            return Err(format!("{file}: the valid choices should include {choice}:\n{d}").into());
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = Arguments::from_args();
    let mut trials = vec![
        Trial::test("corpus_size", corpus_size),
        Trial::test("errors_list_valid_choices", errors_list_valid_choices),
    ];
    trials.extend(corpus().into_iter().map(|file| {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        Trial::test(name, move || check(&file))
    }));
    libtest_mimic::run(&args, trials).exit_code()
}
