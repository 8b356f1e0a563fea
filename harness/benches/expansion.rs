//! What nextest pays per process: rendering, parsing and expanding specs, and listing trials.
//!
//! - `bundled`: plan every bundled spec (render + parse + expand + name), as `--list` does.
//! - `exhaustive_2k`: one generated exhaustive spec with more than 2,000 legal combos.
//! - `list_10k`: a generated spec directory with more than 10,000 trials.
//! - `exact_one`: the `--exact` fast path: one spec found by name among many and planned alone.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use l1_harness::suite::{self, Settings};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn settings(specs: PathBuf) -> Settings {
    Settings::new(&root(), specs, std::env::temp_dir().join("l1-bench"))
}

const BIG: &str = "kind: sweep
name: NAME
targets:
  engines: [sim@1.0]
  models: [MODELS]
  hardware: [h100-sxm]
  workloads: [WORKLOADS]
space:
  mode: exhaustive
  dims:
    attention_backend: all
    kv_layout: all
    matmul_path: all
    activation_dtype: all
    fusion_strategy: all
    cuda_graph: all
    kv_cache_dtype: [auto, fp8_e4m3]
gates:
  - { method: manual }
";

fn write_spec(dir: &Path, name: &str, models: &str, workloads: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let text = BIG
        .replace("NAME", name)
        .replace("MODELS", models)
        .replace("WORKLOADS", workloads);
    std::fs::write(dir.join(format!("{name}.yaml")), text).unwrap();
}

fn benches(c: &mut Criterion) {
    let bundled = settings(root().join("specs"));
    let n = suite::plan(&bundled, None).0.len();
    c.bench_function(&format!("plan bundled specs ({n} trials)"), |b| {
        b.iter(|| suite::plan(&bundled, None))
    });

    let tmp = std::env::temp_dir().join(format!("l1-bench-specs-{}", std::process::id()));
    let one = tmp.join("one");
    write_spec(&one, "big-exhaustive", "llama-3.1-8b", "chat-short");
    let s1 = settings(one.clone());
    let n1 = suite::plan(&s1, None).0.len();
    assert!(
        n1 > 2000,
        "the exhaustive bench spec should have > 2,000 trials, has {n1}"
    );
    c.bench_function(&format!("plan one exhaustive spec ({n1} trials)"), |b| {
        b.iter(|| suite::plan(&s1, None))
    });

    let many = tmp.join("many");
    for i in 0..2 {
        write_spec(
            &many,
            &format!("big-{i}"),
            "llama-3.1-8b, qwen2.5-7b",
            "chat-short, rag-long",
        );
    }
    let s2 = settings(many.clone());
    let n2 = suite::plan(&s2, None).0.len();
    assert!(
        n2 >= 10_000,
        "the list bench should have >= 10,000 trials, has {n2}"
    );
    c.bench_function(&format!("list {n2} trials"), |b| {
        b.iter(|| {
            suite::plan(&s2, None)
                .0
                .iter()
                .map(|t| t.name.len())
                .sum::<usize>()
        })
    });
    c.bench_function("exact fast path: plan only the named spec", |b| {
        b.iter(|| suite::plan(&s2, Some("big-1")))
    });
    let t = suite::plan_only(
        &s2,
        Some("big-1"),
        Some("sim@1.0::qwen2.5-7b::h100-sxm::rag-long"),
    )
    .0
    .len();
    c.bench_function(
        &format!("exact fast path: plan only the named target ({t} trials)"),
        |b| {
            b.iter(|| {
                suite::plan_only(
                    &s2,
                    Some("big-1"),
                    Some("sim@1.0::qwen2.5-7b::h100-sxm::rag-long"),
                )
            })
        },
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

criterion_group! {
    name = expansion;
    config = Criterion::default().sample_size(10);
    targets = benches
}
criterion_main!(expansion);
