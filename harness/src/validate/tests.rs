//! Validation through its public path (load a spec file, validate it against the repository's
//! catalogs): what it means comes from the parsed spec's types, and errors sit where the
//! document writes the offending key or value.

use std::path::{Path, PathBuf};

use super::validate;
use crate::diag::Diagnostic;
use crate::profiles::Catalogs;
use crate::render::RenderContext;
use crate::spec::{self, GateMethod, LoadedSpec, Mode, SpecKind};

const TARGETS: &str = "targets:
  engines: [sim@1.0]
  models: [llama-3.1-8b]
  hardware: [h100-sxm]
  workloads: [chat-short]
";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Write `body` as spec `name` (after its `kind`, `name` and targets) and load it.
fn load(kind: &str, name: &str, body: &str) -> LoadedSpec {
    let dir = std::env::temp_dir().join(format!("l1-validate-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let path = dir.join(format!("{name}.yaml"));
    let text = format!("kind: {kind}\nname: {name}\n{TARGETS}{body}");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let ls = spec::load(&path, &RenderContext::default()).unwrap_or_else(|d| panic!("{d}"));
    let _ = std::fs::remove_dir_all(&dir);
    ls
}

fn errors(ls: &LoadedSpec) -> Diagnostic {
    let cats = Catalogs::load(&root()).unwrap_or_else(|d| panic!("{d}"));
    match validate(ls, &cats) {
        Ok(_) => panic!("{} should be rejected", ls.path.display()),
        Err(d) => d,
    }
}

fn is_valid(ls: &LoadedSpec) -> bool {
    let cats = Catalogs::load(&root()).unwrap_or_else(|d| panic!("{d}"));
    validate(ls, &cats).is_ok()
}

fn typed(ls: &LoadedSpec) -> spec::Spec {
    let cats = Catalogs::load(&root()).unwrap_or_else(|d| panic!("{d}"));
    validate(ls, &cats).unwrap_or_else(|d| panic!("{d}")).spec
}

#[test]
fn the_typed_spec_carries_only_its_kinds_settings() {
    // A sweep: its mode and gates as written, else exhaustive and the default gates.
    let quick = typed(&load(
        "sweep",
        "typed-quick",
        "space:\n  mode: quick\ngates:\n  - { method: pareto }\n",
    ));
    let SpecKind::Sweep(s) = &quick.kind else {
        panic!("a sweep typed as {:?}", quick.kind);
    };
    assert_eq!(s.mode, Mode::Quick);
    assert_eq!(
        s.gates.iter().map(|g| g.method).collect::<Vec<_>>(),
        [GateMethod::Pareto]
    );
    assert!(quick.tune().is_none());
    let plain = typed(&load("sweep", "typed-plain", ""));
    assert_eq!(plain.mode(), Mode::Exhaustive);
    assert_eq!(plain.gates(), spec::DEFAULT_GATES);
    // A tune spec: its settings checked and defaulted; it searches every legal combo.
    let tune = typed(&load(
        "tune",
        "typed-tune",
        "objective: { metric: ttft_p95_ms, direction: minimize }\n\
         constraints: [{ metric: output_tokens_per_s, at_least: 10 }]\n\
         budget: { max_trials: 4 }\n",
    ));
    let t = tune.tune().unwrap_or_else(|| panic!("{:?}", tune.kind));
    assert_eq!(t.objective.metric.value, "ttft_p95_ms");
    assert_eq!(t.objective.direction, l1_tune::Direction::Minimize);
    assert_eq!(t.budget.max_trials, Some(4));
    assert_eq!(t.constraints.len(), 1);
    assert_eq!(t.acquisition, l1_tune::Acquisition::ExpectedImprovement);
    assert_eq!(t.gate.margin, None);
    assert_eq!(tune.mode(), Mode::Exhaustive);
}

#[test]
fn an_error_of_a_later_gate_is_located_in_that_gate() {
    // `margin` is written in gate 0 (legal there) and gate 1 (not): the error is gate 1's.
    let ls = load(
        "sweep",
        "second-gate",
        "gates:\n  - { method: topk5, margin: 0.1 }\n  - { method: regression, margin: 0.2 }\n",
    );
    let d = errors(&ls);
    assert_eq!(
        d.message,
        "gate `regression` does not take `margin` (only topk5 does)"
    );
    assert_eq!((d.line, d.column), (Some(10), Some(27)), "{d}");
    assert_eq!(d.field.as_deref(), Some("gates[1].margin"));
}

#[test]
fn a_setting_on_the_wrong_method_is_located_at_the_setting_written() {
    // The error is named after `epsilon` but the gate writes `metrics`: it points there.
    let ls = load(
        "sweep",
        "metrics-on-pareto",
        "gates:\n  - { method: pareto, metrics: [ttft_p95_ms] }\n",
    );
    let d = errors(&ls);
    assert!(
        d.message.contains("does not take `epsilon` or `metrics`"),
        "{d}"
    );
    assert_eq!((d.line, d.column), (Some(9), Some(23)), "{d}");
}

#[test]
fn a_tune_spec_is_told_from_its_fields_not_from_its_text() {
    // The description holds a line reading `gates:` and one reading `mode: quick`; neither is
    // a field, so the tune spec is valid.
    let body = "description: |\n  gates: none here\n  mode: quick\n\
        objective: { metric: output_tokens_per_s, direction: maximize }\n\
        budget: { max_trials: 5 }\n";
    assert!(is_valid(&load("tune", "tune-text", body)));
    // Written as fields, both are refused, at the field.
    let gates = load(
        "tune",
        "tune-gates",
        &format!("{body}gates:\n  - method: topk5\n"),
    );
    let d = errors(&gates);
    assert_eq!(d.message, "tune specs take `gate: { margin }`, not `gates`");
    assert_eq!((d.line, d.column), (Some(13), Some(1)), "{d}");
    let quick = load(
        "tune",
        "tune-quick",
        &format!("{body}space:\n  mode: quick\n"),
    );
    let d = errors(&quick);
    assert!(d.message.contains("`mode: quick` does not apply"), "{d}");
    assert_eq!((d.line, d.column), (Some(14), Some(9)), "{d}");
    // `mode: exhaustive` is what a tune spec does anyway.
    let exhaustive = load(
        "tune",
        "tune-exhaustive",
        &format!("{body}space:\n  mode: exhaustive\n"),
    );
    assert!(is_valid(&exhaustive));
}

#[test]
fn tune_fields_on_a_sweep_are_refused_at_the_field() {
    let ls = load(
        "sweep",
        "sweep-budget",
        "measure: { reps: 5 }\nbudget:\n  max_trials: 3\n",
    );
    let d = errors(&ls);
    assert_eq!(
        d.message,
        "`budget` is a tune spec field; this spec is `kind: sweep`"
    );
    assert_eq!((d.line, d.column), (Some(9), Some(1)), "{d}");
}

#[test]
fn values_are_located_where_their_dimension_writes_them() {
    // `paged` is a value of `kv_layout` (legal) and written again under `attention_backend`
    // (unknown there): the error points at the second.
    let ls = load(
        "sweep",
        "value-twice",
        "space:\n  dims:\n    kv_layout: [paged]\n    attention_backend: [native, paged]\n",
    );
    let d = errors(&ls);
    assert_eq!(
        d.message,
        "unknown value `paged` of dimension `attention_backend`"
    );
    assert_eq!((d.line, d.column), (Some(11), Some(33)), "{d}");
    // A quoted knob value: the caret sits on its first character.
    let knob = load(
        "sweep",
        "knob-quoted",
        "space:\n  knobs:\n    block_size: [\"16\", \"24\"]\n",
    );
    let d = errors(&knob);
    assert!(d.message.contains("has no value `24`"), "{d}");
    assert_eq!((d.line, d.column), (Some(10), Some(25)), "{d}");
}

#[test]
fn fidelity_thresholds_of_a_class_are_located_in_that_class() {
    let ls = load(
        "sweep",
        "fidelity-class",
        "gates:\n  - method: fidelity\n    min_exact_match: 0.5\n    per_dtype:\n      fp8: { min_exact_match: 1.5 }\n",
    );
    let d = errors(&ls);
    assert_eq!(d.message, "min_exact_match 1.5 is out of range");
    assert_eq!(
        d.field.as_deref(),
        Some("gates[0].per_dtype.fp8.min_exact_match")
    );
    assert_eq!((d.line, d.column), (Some(12), Some(14)), "{d}");
}

#[test]
fn a_field_the_spec_does_not_write_is_located_at_its_parent() {
    // `trim: 0.4` leaves fewer than 2 of the default 7 reps: the error is about `reps`, which
    // the spec does not write, so it sits on the `measure` line without a column.
    let ls = load("sweep", "reps-unwritten", "measure:\n  trim: 0.45\n");
    let d = errors(&ls);
    assert_eq!(d.field.as_deref(), Some("measure.reps"), "{d}");
    assert_eq!((d.line, d.column), (Some(8), None), "{d}");
}
