//! The catalog: snapshots, validation errors, legality with named rules, and the pairwise
//! covering design of `quick` mode.

#![allow(clippy::unwrap_used)] // test code: a panic is the failure report.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::root;
use l1_engines::Combo;
use l1_harness::catalog::LoadedCatalog;
use l1_harness::expand::covering;
use l1_harness::profiles::Catalogs;

fn kernels_text() -> String {
    std::fs::read_to_string(root().join("catalogs/kernels.yaml")).unwrap()
}

fn combo(pairs: &[(&str, &str)]) -> Combo {
    Combo {
        dims: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        knobs: Default::default(),
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("l1-catalog-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("snapshots")).unwrap();
    d
}

#[test]
fn shipped_catalog_loads_with_a_recorded_snapshot() {
    let cats = Catalogs::load(&root()).unwrap();
    assert!(
        cats.kernels
            .snapshot
            .starts_with(&format!("v{}-", cats.kernels.catalog.version))
    );
    assert_eq!(
        cats.kernels.snapshot.len(),
        format!("v{}-", cats.kernels.catalog.version).len() + 12
    );
    for h in ["h100-sxm", "h200", "a100-80gb", "l40s", "l4", "cpu"] {
        assert!(
            cats.hardware.contains_key(h),
            "missing hardware profile {h}"
        );
    }
}

#[test]
fn content_change_without_version_bump_is_an_error() {
    let dir = scratch("bump");
    let text = kernels_text();
    let version = LoadedCatalog::from_text(Path::new("k.yaml"), &text)
        .unwrap()
        .catalog
        .version;
    std::fs::write(
        dir.join(format!("snapshots/kernels-v{version}.yaml")),
        &text,
    )
    .unwrap();
    // Comments do not change the content hash.
    std::fs::write(dir.join("kernels.yaml"), format!("# a new comment\n{text}")).unwrap();
    assert!(LoadedCatalog::load(&dir.join("kernels.yaml")).is_ok());
    // A changed reason does.
    let changed = text.replacen(
        "FlashAttention-3 kernels exist only",
        "FA3 kernels exist only",
        1,
    );
    std::fs::write(dir.join("kernels.yaml"), &changed).unwrap();
    let e = LoadedCatalog::load(&dir.join("kernels.yaml")).unwrap_err();
    assert!(
        e.message.contains("content changed but `version` is still"),
        "{e}"
    );
    assert_eq!(e.field.as_deref(), Some("version"));
    assert!(e.line.is_some());
    // A bumped version without a recorded snapshot says how to record one.
    let bumped = changed.replacen(
        &format!("version: {version}"),
        &format!("version: {}", version + 1),
        1,
    );
    std::fs::write(dir.join("kernels.yaml"), &bumped).unwrap();
    let e = LoadedCatalog::load(&dir.join("kernels.yaml")).unwrap_err();
    assert!(e.message.contains("has no recorded snapshot"), "{e}");
    assert!(e.to_string().contains("catalog snapshot"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_catalogs_name_the_problem() {
    let text = kernels_text();
    let cases = [
        (
            text.replacen(
                "when: { attention_backend: [flash_attn_v3] }",
                "when: { attention: [flash_attn_v3] }",
                1,
            ),
            "names unknown dimension `attention`",
        ),
        (
            text.replacen(
                "when: { matmul_path: [machete] }",
                "when: { matmul_path: [marlin] }",
                1,
            ),
            "names unknown value `marlin`",
        ),
        (
            text.replacen(
                "engines: [vllm, tgi, sglang]",
                "engines: [vllm, tgi, sglangx]",
                1,
            ),
            "names unknown engine `sglangx`",
        ),
        (
            text.replacen("short: kvdt", "short: kv", 1),
            "share the short name `kv`",
        ),
        (
            text.replacen("kind: pruning", "kind: prune", 1),
            "unknown variant `prune`",
        ),
        (
            text.replacen("min: \"8.9\"", "min: \"eight\"", 1),
            "malformed compute capability",
        ),
        (
            text.replacen(
                "engine_version: { min: \"0.20\" }",
                "engine_version: { min: \"latest\" }",
                1,
            ),
            "malformed engine version `latest`",
        ),
    ];
    for (bad, expect) in cases {
        assert_ne!(bad, text, "the edit for {expect:?} did not apply");
        let e = LoadedCatalog::from_text(Path::new("catalogs/kernels.yaml"), &bad).unwrap_err();
        assert!(e.message.contains(expect), "expected {expect:?}, got:\n{e}");
        assert!(e.line.is_some(), "no line for {expect:?}:\n{e}");
    }
}

#[test]
fn legality_follows_the_declared_hardware_and_names_its_rule() {
    let cats = Catalogs::load(&root()).unwrap();
    let k = &cats.kernels;
    let hw = |n: &str| cats.hardware[n].clone();
    let rules = |engine: &str, h: &str, c: &Combo| -> Vec<String> {
        k.check(engine, "1.0", &hw(h), c)
            .into_iter()
            .map(|r| r.rule)
            .collect()
    };
    let fa3 = combo(&[("attention_backend", "flash_attn_v3")]);
    assert!(rules("sim", "h100-sxm", &fa3).is_empty());
    assert_eq!(rules("sim", "a100-80gb", &fa3), ["fa3-requires-sm9x"]);
    assert_eq!(rules("sim", "cpu", &fa3), ["fa3-requires-sm9x"]);
    let fp8 = combo(&[("activation_dtype", "fp8_e4m3")]);
    assert!(rules("sim", "l40s", &fp8).is_empty());
    assert_eq!(
        rules("sim", "a100-80gb", &fp8),
        ["fp8-compute-requires-sm89"]
    );
    assert!(rules("sim", "h200", &combo(&[("matmul_path", "machete")])).is_empty());
    assert_eq!(
        rules("sim", "l40s", &combo(&[("matmul_path", "machete")])),
        ["machete-requires-sm90"]
    );
    let e5m2_fa2 = combo(&[
        ("activation_dtype", "fp8_e5m2"),
        ("attention_backend", "flash_attn_v2"),
    ]);
    assert_eq!(rules("sim", "l40s", &e5m2_fa2), ["fp8-e5m2-fa2-pre-hopper"]);
    assert!(rules("sim", "h100-sxm", &e5m2_fa2).is_empty());
    let q_native = combo(&[("attention_backend", "native"), ("kv_cache_dtype", "q8_0")]);
    assert_eq!(
        rules("llamacpp", "cpu", &q_native),
        ["llamacpp-quantized-v-needs-flash-attn"]
    );
    let contiguous = combo(&[("kv_layout", "contiguous")]);
    let r = k.check("vllm", "0.13", &hw("h100-sxm"), &contiguous);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].rule, "engine-exposure");
    assert!(
        r[0].reason.contains("does not offer kv_layout=contiguous"),
        "{}",
        r[0].reason
    );
    // `unset` is never illegal.
    assert!(rules("tgi", "h100-sxm", &combo(&[("matmul_path", "unset")])).is_empty());
    // Engine-version ranges compare by prefix, as the translators do: vLLM's xformers backend
    // (`max: "0.11"`) is legal on every 0.11.x, gone from 0.12; an fp16 KV cache
    // (`min: "0.20"`) is illegal on 0.15 and legal on 0.20.1.
    let on = |v: &str, c: &Combo| -> Vec<String> {
        k.check("vllm", v, &hw("h100-sxm"), c)
            .into_iter()
            .map(|r| r.rule)
            .filter(|r| r != "engine-exposure")
            .collect()
    };
    let xformers = combo(&[("attention_backend", "xformers")]);
    assert!(on("0.11", &xformers).is_empty());
    assert!(on("0.11.2", &xformers).is_empty());
    assert!(on("0.9.1", &xformers).is_empty());
    assert_eq!(on("0.12", &xformers), ["vllm-xformers-removed"]);
    let kv16 = combo(&[("kv_cache_dtype", "fp16")]);
    assert_eq!(on("0.15", &kv16), ["vllm-kv-fp16-needs-0.20"]);
    assert!(on("0.20", &kv16).is_empty());
    assert!(on("0.20.1", &kv16).is_empty());
}

fn pairs(c: &Combo) -> Vec<(String, String)> {
    let items: Vec<String> = c.dims.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut out = Vec::new();
    for i in 0..items.len() {
        for j in i + 1..items.len() {
            out.push((items[i].clone(), items[j].clone()));
        }
    }
    out
}

#[test]
fn quick_mode_covers_every_legal_pair_with_far_fewer_combos() {
    let cats = Catalogs::load(&root()).unwrap();
    let dims: Vec<(String, Vec<String>)> = cats
        .kernels
        .catalog
        .dimensions
        .iter()
        .map(|(k, d)| (k.clone(), d.values.clone()))
        .collect();
    for (hw, mask) in [
        ("h100-sxm", 0b111_1111u32),
        ("l40s", 0b101_1011),
        ("a100-80gb", 0b011_0111),
        ("h200", 0b110_1101),
    ] {
        // Every combination of the masked dimensions (others fixed at their first value).
        let mut all = vec![Combo::default()];
        for (i, (d, values)) in dims.iter().enumerate() {
            let vals: Vec<&String> = if mask & (1 << i) != 0 {
                values.iter().collect()
            } else {
                vec![&values[0]]
            };
            all = all
                .into_iter()
                .flat_map(|c| {
                    vals.iter().map(move |v| {
                        let mut c = c.clone();
                        c.dims.insert(d.clone(), (*v).clone());
                        c
                    })
                })
                .collect();
        }
        let legal: Vec<Combo> = all
            .into_iter()
            .filter(|c| {
                cats.kernels
                    .check("sim", "1.0", &cats.hardware[hw], c)
                    .is_empty()
            })
            .collect();
        let chosen = covering(&legal);
        assert_eq!(
            chosen,
            covering(&legal),
            "the covering set must be deterministic"
        );
        let need: BTreeSet<(String, String)> = legal.iter().flat_map(pairs).collect();
        let have: BTreeSet<(String, String)> =
            chosen.iter().flat_map(|&i| pairs(&legal[i])).collect();
        assert_eq!(need, have, "{hw}: some legal pair is not covered");
        assert!(
            chosen.len() * 5 < legal.len(),
            "{hw}: {} of {} is not far fewer",
            chosen.len(),
            legal.len()
        );
    }
}

/// A scratch repository root with the shipped catalogs, `workloads.yaml` extended by `extra`
/// and `catalogs/datasets/d.jsonl` holding `dataset`.
fn root_with_dataset(name: &str, extra: &str, dataset: &str) -> PathBuf {
    let d = scratch(name);
    let cats = d.join("catalogs");
    std::fs::create_dir_all(cats.join("snapshots")).unwrap();
    std::fs::create_dir_all(cats.join("datasets")).unwrap();
    for f in ["kernels.yaml", "hardware.yaml", "models.yaml"] {
        std::fs::copy(root().join("catalogs").join(f), cats.join(f)).unwrap();
    }
    for e in std::fs::read_dir(root().join("catalogs/snapshots")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), cats.join("snapshots").join(e.file_name())).unwrap();
    }
    for e in std::fs::read_dir(root().join("catalogs/datasets")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), cats.join("datasets").join(e.file_name())).unwrap();
    }
    let workloads = std::fs::read_to_string(root().join("catalogs/workloads.yaml")).unwrap();
    std::fs::write(cats.join("workloads.yaml"), format!("{workloads}\n{extra}")).unwrap();
    std::fs::write(cats.join("datasets/d.jsonl"), dataset).unwrap();
    d
}

const DATASET_WORKLOAD: &str = "  from-file:
    description: prompts from a file
    input_tokens: { fixed: 64 }
    output_tokens: { fixed: 8 }
    arrival: { concurrency: 1 }
    requests: 4
    dataset: { path: catalogs/datasets/d.jsonl }
";

#[test]
fn dataset_workloads_load_their_prompts() {
    let cats = Catalogs::load(&root()).unwrap();
    let shipped = cats.workloads["cpu-dataset"].dataset.as_ref().unwrap();
    assert_eq!(shipped.entries.len(), 16);
    let d = root_with_dataset(
        "dataset-ok",
        DATASET_WORKLOAD,
        "{\"prompt\": \"hello there\", \"output_tokens\": 3}\n\n{\"prompt\": \"x\", \"id\": 7}\n",
    );
    let cats = Catalogs::load(&d).unwrap();
    let ds = cats.workloads["from-file"].dataset.as_ref().unwrap();
    assert_eq!(ds.entries.len(), 2, "blank lines are skipped");
    assert_eq!(ds.entries[0].prompt, "hello there");
    assert_eq!(ds.entries[0].output_tokens, Some(3));
    assert_eq!(
        ds.entries[1].output_tokens, None,
        "extra fields are ignored"
    );
}

#[test]
fn bad_datasets_name_file_line_and_field() {
    for (name, text, line, needle) in [
        (
            "not-json",
            "{\"prompt\": \"a\"}\n{\"prompt\": oops}\n",
            2,
            "not a JSON object",
        ),
        (
            "no-prompt",
            "{\"prompt\": \"a\"}\n{\"prompt\": \"b\"}\n{\"text\": \"c\"}\n",
            3,
            "missing",
        ),
        ("prompt-type", "{\"prompt\": 5}\n", 1, "expected a string"),
        (
            "bad-output",
            "{\"prompt\": \"a\", \"output_tokens\": 0}\n",
            1,
            "expected a positive integer",
        ),
        ("empty", "\n", 1, "no prompts"),
    ] {
        let d = root_with_dataset(name, DATASET_WORKLOAD, text);
        let e = Catalogs::load(&d).unwrap_err();
        let shown = e.to_string();
        assert!(
            e.file.ends_with("catalogs/datasets/d.jsonl"),
            "{name}: {shown}"
        );
        assert_eq!(e.line, Some(line), "{name}: {shown}");
        assert!(shown.contains(needle), "{name}: {shown}");
        assert!(shown.contains("workload `from-file`"), "{name}: {shown}");
    }
    let missing = DATASET_WORKLOAD.replace("d.jsonl", "nope.jsonl");
    let d = root_with_dataset("missing", &missing, "");
    let e = Catalogs::load(&d).unwrap_err();
    let shown = e.to_string();
    assert!(e.file.ends_with("catalogs/workloads.yaml"), "{shown}");
    assert!(shown.contains("cannot read the dataset"), "{shown}");
    assert_eq!(
        e.field.as_deref(),
        Some("from-file.dataset.path"),
        "{shown}"
    );
    let src = std::fs::read_to_string(d.join("catalogs/workloads.yaml")).unwrap();
    let line = e.line.unwrap();
    assert!(
        src.lines().nth(line - 1).unwrap().contains("nope.jsonl"),
        "{shown}"
    );
}

#[test]
fn every_catalog_version_lies_in_its_translators_supported_range() {
    let cats = Catalogs::load(&root()).unwrap();
    for (engine, entry) in &cats.kernels.catalog.engines {
        let Some(ranges) = l1_engines::registry::supported_versions(engine) else {
            assert_eq!(engine, "sim", "engine `{engine}` has no translator");
            continue;
        };
        for v in &entry.versions {
            assert!(
                ranges.iter().any(|r| r.contains(v)),
                "catalog lists {engine}@{v}, outside its translator's {:?}",
                ranges.iter().map(ToString::to_string).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn the_books_engine_tables_are_generated_from_the_catalog_and_translators() {
    use l1_harness::engine_table::{self as table, INDEX_PAGE};
    let cats = Catalogs::load(&root()).unwrap();
    let read = |page: &str| {
        std::fs::read_to_string(root().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"))
    };
    let index = read(INDEX_PAGE);
    let copy = table::copy_between(&index, table::BEGIN, table::END)
        .unwrap_or_else(|| panic!("{INDEX_PAGE} has the engine-table markers"));
    let generated = table::render(&cats.kernels);
    assert!(
        copy == generated.trim_matches('\n'),
        "{INDEX_PAGE}'s engine table is stale: replace it with the output of \
         `cargo run --release --bin l1 -- catalog engines`:\n{generated}"
    );
    // Every registered engine has a page whose tables are its generated ones.
    for engine in l1_engines::registry::ENGINES.iter().map(|e| e.name()) {
        let page = table::page(engine);
        let text = read(&page);
        let (begin, end) = table::engine_markers(engine);
        let copy = table::copy_between(&text, &begin, &end)
            .unwrap_or_else(|| panic!("{page} has the markers `{begin}` and `{end}`"));
        let generated = table::render_engine(&cats.kernels, engine)
            .unwrap_or_else(|| panic!("the catalog lists `{engine}`"));
        assert!(
            copy == generated.trim_matches('\n'),
            "{page}'s tables for `{engine}` are stale: replace them with the output of \
             `cargo run --release --bin l1 -- catalog engines {engine}`:\n{generated}"
        );
        // The index links every engine page.
        let file = Path::new(&page).file_name().unwrap().to_str().unwrap();
        assert!(
            index.contains(&format!("]({file})")),
            "{INDEX_PAGE} links {file}"
        );
    }
}

#[test]
fn a_stale_or_unmarked_copy_is_noticed() {
    use l1_harness::engine_table as table;
    let cats = Catalogs::load(&root()).unwrap();
    let md = table::render_engine(&cats.kernels, "vllm").unwrap();
    let (begin, end) = table::engine_markers("vllm");
    let page = format!("# vLLM\n\n{begin}\n{md}\n{end}\n\nMore text.\n");
    assert_eq!(
        table::copy_between(&page, &begin, &end),
        Some(md.trim_matches('\n'))
    );
    // Another engine's markers, or a missing end, find no copy.
    let (other, _) = table::engine_markers("sglang");
    assert_eq!(table::copy_between(&page, &other, &end), None);
    assert_eq!(
        table::copy_between(&page.replace(&end, ""), &begin, &end),
        None
    );
    // A catalog change shows: offering a value changes the generated tables.
    let mut kernels = cats.kernels.clone();
    kernels
        .catalog
        .engines
        .get_mut("vllm")
        .unwrap()
        .defaults
        .insert("kv_layout".into(), "paged".into());
    assert_ne!(table::render_engine(&kernels, "vllm").unwrap(), md);
    assert_eq!(table::render_engine(&cats.kernels, "nope"), None);
}

#[test]
fn l1_catalog_engines_prints_one_engines_tables() {
    let l1 = env!("CARGO_BIN_EXE_l1");
    let out = std::process::Command::new(l1)
        .args([
            "--root",
            root().to_str().unwrap(),
            "catalog",
            "engines",
            "tgi",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let cats = Catalogs::load(&root()).unwrap();
    let want = l1_harness::engine_table::render_engine(&cats.kernels, "tgi").unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        want.trim_end()
    );
    let out = std::process::Command::new(l1)
        .args([
            "--root",
            root().to_str().unwrap(),
            "catalog",
            "engines",
            "tgix",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the catalog has no engine `tgix` (engines: llamacpp, onnxruntime,"),
        "{err}"
    );
}

/// Combinations the translators no longer refuse themselves (legality lives in the catalog
/// only): each is still rejected at expansion by its catalog rule, on the hardware and versions
/// where the engine runs, and the same values alone stay legal.
#[test]
fn combinations_translators_spell_are_refused_by_their_catalog_rules() {
    let cats = Catalogs::load(&root()).unwrap();
    let k = &cats.kernels;
    let h100 = cats.hardware["h100-sxm"].clone();
    let rules = |engine: &str, version: &str, c: &Combo| -> Vec<String> {
        k.check(engine, version, &h100, c)
            .into_iter()
            .map(|r| r.rule)
            .collect()
    };
    /// Engine, version, the combination, the rule that refuses it.
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        (
            "vllm",
            "0.32",
            &[("fusion_strategy", "none"), ("cuda_graph", "dynamic")],
            "vllm-piecewise-graphs-need-compile",
        ),
        (
            "sglang",
            "0.5.10",
            &[("attention_backend", "native"), ("cuda_graph", "per-shape")],
            "sglang-native-attention-disables-graphs",
        ),
        (
            "sglang",
            "0.5.23",
            &[("attention_backend", "native"), ("cuda_graph", "dynamic")],
            "sglang-native-attention-disables-graphs",
        ),
        (
            "sglang",
            "0.5.23",
            &[
                ("attention_backend", "flash_attn_v3"),
                ("kv_cache_dtype", "fp8_e5m2"),
            ],
            "sglang-fa3-kv-no-e5m2",
        ),
        (
            "tgi",
            "3.3",
            &[
                ("attention_backend", "paged_attention"),
                ("kv_layout", "chunked"),
            ],
            "tgi-paged-attention-no-chunking",
        ),
        (
            "tgi",
            "3.3",
            &[
                ("attention_backend", "flash_attn_v2"),
                ("kv_cache_dtype", "fp8_e4m3"),
            ],
            "tgi-fp8-kv-not-with-flashdecoding",
        ),
        (
            "tgi",
            "3.3",
            &[
                ("attention_backend", "flash_attn_v2"),
                ("kv_cache_dtype", "fp8_e5m2"),
            ],
            "tgi-fp8-kv-not-with-flashdecoding",
        ),
        (
            "tgi",
            "3.0",
            &[
                ("attention_backend", "paged_attention"),
                ("kv_cache_dtype", "fp8_e4m3"),
            ],
            "tgi-fp8-kv-paged-needs-3.1",
        ),
    ];
    for (engine, version, pairs, rule) in cases {
        assert_eq!(
            rules(engine, version, &combo(pairs)),
            [*rule],
            "{engine}@{version} {pairs:?}"
        );
        for pair in *pairs {
            assert!(
                rules(engine, version, &combo(&[*pair])).is_empty(),
                "{engine}@{version} {pair:?} alone"
            );
        }
    }
    // From 3.1 TGI has an FP8 KV cache with paged attention.
    let paged_fp8 = combo(&[
        ("attention_backend", "paged_attention"),
        ("kv_cache_dtype", "fp8_e4m3"),
    ]);
    assert!(rules("tgi", "3.1", &paged_fp8).is_empty());
}
