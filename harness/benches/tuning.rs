//! Tier-2 tuning efficiency: evaluations needed to reach within 1 % and 2 % of the exhaustive
//! optimum, for the GP optimiser (`l1-tune`, with expected improvement and with the knowledge
//! gradient), random search and (side by side, when its results are present) Optuna's TPE, on
//!
//! - the sim engine's known truth for several model × hardware × workload targets, whose legal
//!   spaces come from the harness's own catalog expansion (500–2,000 combos), evaluated with the
//!   sim's noise model (per-launch factor, 7 reps with the hardware's noise floor and 4 % outliers
//!   15 % slower);
//! - a landscape recorded from llama.cpp on this machine (`tune/data/llamacpp-cpu-landscape.json`,
//!   20 reps per combo over 4 launches), replayed by drawing reps from the recording.
//!
//! Each method reports a point after every evaluation (ours: best posterior mean; random and
//! TPE: best observed value); it is scored by that point's *true* value.
//!
//! ```text
//! cargo bench -p l1-harness --bench tuning                    # full: 20 seeds per landscape
//! L1_TUNE_BENCH_QUICK=1 cargo bench -p l1-harness --bench tuning   # CI: 3 seeds, 2 landscapes
//! L1_TUNE_RECORD=target/l1/runs/<run> cargo bench ...         # rebuild the llama.cpp data file
//! L1_TUNE_BENCH_SEEDS=100 cargo bench ...                     # more seeds (Optuna rows keep theirs)
//! L1_TUNE_BENCH_SEED0=1000 cargo bench ...                     # other seeds (a held-out check)
//! L1_TUNE_BENCH_REMEASURE=0,0 cargo bench ...                 # final phase off (`top,share`)
//! ```
//!
//! Landscapes are exported to `target/l1/tune-bench/<name>.json`; `scripts/bench-tune-optuna.py`
//! runs TPE on them and writes `<name>.optuna.json`, which the next run of this bench reads.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a panic is the failure report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use l1_engines::Combo;
use l1_engines::sim::{self, SimTarget};
use l1_harness::expand;
use l1_harness::profiles::Catalogs;
use l1_harness::render::RenderContext;
use l1_harness::spec;
use l1_tune::landscape::{Landscape, Noise, Summary, Trace, run_optimiser, run_random, summarise};
use l1_tune::{Acquisition, Dimension, Direction, TuneConfig};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// (model, hardware, workload, dims as a YAML flow map)
const SIM_TARGETS: &[(&str, &str, &str, &str)] = &[
    (
        "llama-3.1-8b",
        "h100-sxm",
        "chat-short",
        "{ attention_backend: all, kv_layout: all, matmul_path: all, activation_dtype: all, fusion_strategy: all, cuda_graph: all }",
    ),
    (
        "qwen2.5-7b",
        "a100-80gb",
        "rag-long",
        "{ attention_backend: all, kv_layout: all, matmul_path: all, activation_dtype: all, fusion_strategy: all, cuda_graph: all, kv_cache_dtype: [auto, fp16, q8_0] }",
    ),
    (
        "llama-3.1-70b",
        "h200",
        "batch-offline",
        "{ attention_backend: all, kv_layout: all, matmul_path: all, activation_dtype: all, fusion_strategy: all, cuda_graph: all }",
    ),
    (
        "mistral-7b",
        "l40s",
        "poisson-chat",
        "{ attention_backend: all, kv_layout: all, matmul_path: all, activation_dtype: all, fusion_strategy: all, cuda_graph: all }",
    ),
];

/// The legal combos of one sim target, by the harness's expansion, as a landscape.
fn sim_landscape(cats: &Catalogs, dir: &Path, t: &(&str, &str, &str, &str)) -> Landscape {
    let (model, hw, wl, dims) = *t;
    let name = format!("sim-{model}-{hw}-{wl}").replace('.', "_");
    let text = format!(
        "kind: sweep\nname: {name}\ntargets:\n  engines: [sim@1.0]\n  models: [{model}]\n  hardware: [{hw}]\n  workloads: [{wl}]\nspace:\n  mode: exhaustive\n  dims: {dims}\ngates:\n  - {{ method: manual }}\n"
    );
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    let ctx = RenderContext {
        hardware: BTreeMap::new(),
        catalog: BTreeMap::new(),
        env: BTreeMap::new(),
    };
    let loaded = spec::load(&path, &ctx).unwrap_or_else(|d| panic!("{d}"));
    let ex = expand::expand(&loaded, cats).unwrap_or_else(|d| panic!("{d}"));
    let target = &ex.targets[0];
    let st = SimTarget {
        model: &cats.models[model],
        hardware: &cats.hardware[hw],
        workload: &cats.workloads[wl],
    };
    let mut combos = Vec::new();
    let mut truth = Vec::new();
    for c in target.combos() {
        // Combos the sim cannot run (e.g. the model does not fit) are not part of the landscape.
        if let Ok(m) = sim::truth(&st, c) {
            combos.push(c.clone());
            truth.push(m["output_tokens_per_s"]);
        }
    }
    let hwp = &cats.hardware[hw];
    to_landscape(
        &name,
        &format!("sim@1.0::{model}::{hw}::{wl} (truth: l1_engines::sim::truth)"),
        &combos,
        truth,
        Noise::Multiplicative {
            launch_cv: hwp.launch_cv,
            rep_cv: hwp.noise_floor_cv,
            outlier_p: 0.04,
            outlier_slowdown: 1.15,
            reps: 7,
            throughput_like: true,
            // The harness's estimator (`measure.trim` default 0.10: one rep cut per side of 7).
            trim: 0.10,
        },
    )
}

/// Dimensions (and knobs) that vary among `combos`, in a stable order, and the index vectors.
fn to_landscape(
    name: &str,
    source: &str,
    combos: &[Combo],
    truth: Vec<f64>,
    noise: Noise,
) -> Landscape {
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let pairs = l1_harness::tuning::named_values;
    for c in combos {
        for (k, v) in pairs(c) {
            let e = values.entry(k).or_default();
            if !e.contains(&v) {
                e.push(v);
            }
        }
    }
    values.retain(|_, v| v.len() > 1);
    let dims: Vec<Dimension> = values
        .iter()
        .map(|(k, v)| Dimension::new(k.clone(), v.clone()))
        .collect();
    let idx = combos
        .iter()
        .map(|c| {
            let p: BTreeMap<String, String> = pairs(c).into_iter().collect();
            dims.iter()
                .map(|d| d.values.iter().position(|x| *x == p[&d.name]).unwrap())
                .collect()
        })
        .collect();
    Landscape {
        name: name.into(),
        source: source.into(),
        metric: "output_tokens_per_s".into(),
        direction: Direction::Maximize,
        dims,
        combos: idx,
        truth,
        noise,
    }
}

const LLAMA_DATA: &str = "tune/data/llamacpp-cpu-landscape.json";

/// Rebuild the llama.cpp data file from a run's measurement records.
fn record_llamacpp(run: &Path) {
    let mut per: BTreeMap<String, (Combo, Vec<f64>)> = BTreeMap::new();
    let mut source = String::new();
    for e in std::fs::read_dir(run.join("measurements")).unwrap() {
        let p = e.unwrap().path();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        if v["error"].is_string() {
            continue;
        }
        let combo: Combo = serde_json::from_value(v["combo"].clone()).unwrap();
        let reps: Vec<f64> = v["reps"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["output_tokens_per_s"].as_f64())
            .collect();
        source = format!(
            "llamacpp {} ({}), tiny-llama, cpu-smoke workload, 2-core shared CPU host; {} reps over {} launches per combo; run {}",
            v["engine_version"].as_str().unwrap_or("?"),
            v["target"]["version"].as_str().unwrap_or("?"),
            reps.len(),
            v["launches"],
            v["run_id"].as_str().unwrap_or("?"),
        );
        per.insert(combo.canonical(), (combo, reps));
    }
    let combos: Vec<Combo> = per.values().map(|x| x.0.clone()).collect();
    let samples: Vec<Vec<f64>> = per.values().map(|x| x.1.clone()).collect();
    let truth = samples
        .iter()
        .map(|s| s.iter().sum::<f64>() / s.len() as f64)
        .collect();
    let land = to_landscape(
        "llamacpp-cpu-recorded",
        &source,
        &combos,
        truth,
        Noise::Replay { reps: 7, samples },
    );
    let out = root().join(LLAMA_DATA);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, serde_json::to_string_pretty(&land).unwrap()).unwrap();
    eprintln!("wrote {} ({} combos)", out.display(), land.truth.len());
}

fn run_seeds<F>(seeds: u64, f: F) -> Vec<Trace>
where
    F: Fn(u64) -> Trace + Sync,
{
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out: Vec<Option<Trace>> = vec![None; seeds as usize];
    std::thread::scope(|s| {
        let chunks: Vec<Vec<u64>> = (0..threads as u64)
            .map(|t| (0..seeds).filter(|x| x % threads as u64 == t).collect())
            .collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| {
                let f = &f;
                s.spawn(move || c.into_iter().map(|x| (x, f(x))).collect::<Vec<_>>())
            })
            .collect();
        for h in handles {
            for (x, t) in h.join().unwrap() {
                out[x as usize] = Some(t);
            }
        }
    });
    out.into_iter().map(Option::unwrap).collect()
}

/// Our row: medians from the long sessions, the "at 5 %" shares from sessions whose budget is
/// 5 % of the space.
fn summarise_at(
    method: &str,
    land: &Landscape,
    long: &[Trace],
    short: &[Trace],
    budget: usize,
    at: usize,
) -> Summary {
    let mut row = summarise(method, land, long, budget, at);
    let s = summarise(method, land, short, at, at);
    row.share_1_at = s.share_1_at;
    row.share_2_at = s.share_2_at;
    row
}

fn fmt_hits(h: Option<usize>, budget: usize) -> String {
    h.map_or(format!(">{budget}"), |x| x.to_string())
}

fn main() {
    let quick = std::env::var_os("L1_TUNE_BENCH_QUICK").is_some();
    if let Some(run) = std::env::var_os("L1_TUNE_RECORD") {
        record_llamacpp(Path::new(&run));
    }
    let root = root();
    let cats = Catalogs::load(&root).unwrap_or_else(|d| panic!("{d}"));
    let tmp = std::env::temp_dir().join(format!("l1-tune-bench-{}", std::process::id()));
    let mut lands = Vec::new();
    let targets = if quick {
        &SIM_TARGETS[..1]
    } else {
        SIM_TARGETS
    };
    for t in targets {
        lands.push(sim_landscape(&cats, &tmp, t));
    }
    let _ = std::fs::remove_dir_all(&tmp);
    let llama = root.join(LLAMA_DATA);
    if let Ok(text) = std::fs::read_to_string(&llama) {
        lands.push(serde_json::from_str(&text).unwrap());
    } else {
        eprintln!(
            "note: {} missing; the real-engine landscape is skipped",
            llama.display()
        );
    }
    let out_dir = root.join("target/l1/tune-bench");
    std::fs::create_dir_all(&out_dir).unwrap();
    let seeds: u64 = match std::env::var("L1_TUNE_BENCH_SEEDS") {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            panic!("L1_TUNE_BENCH_SEEDS: expected a whole number, found {v:?}")
        }),
        Err(_) if quick => 3,
        Err(_) => 20,
    };
    // `L1_TUNE_BENCH_SEED0`: the first seed (default 0), to check a setting chosen on seeds
    // 0..n against seeds it was not chosen on.
    let seed0: u64 = match std::env::var("L1_TUNE_BENCH_SEED0") {
        Ok(v) => v.parse().unwrap_or_else(|_| {
            panic!("L1_TUNE_BENCH_SEED0: expected a whole number, found {v:?}")
        }),
        Err(_) => 0,
    };
    let mut cfg = TuneConfig::new("output_tokens_per_s", Direction::Maximize);
    // `L1_TUNE_BENCH_REMEASURE=top,share` (e.g. `0,0`: no final phase) to compare settings.
    if let Ok(v) = std::env::var("L1_TUNE_BENCH_REMEASURE") {
        let (top, share) = v
            .split_once(',')
            .and_then(|(t, s)| Some((t.trim().parse().ok()?, s.trim().parse().ok()?)))
            .unwrap_or_else(|| {
                panic!("L1_TUNE_BENCH_REMEASURE: expected `top,share`, found {v:?}")
            });
        cfg.remeasure = l1_tune::Remeasure { top, share };
    }
    println!(
        "| landscape | legal combos | within 1 % / 2 % | method | median evals to 1 % | median evals to 2 % | within 1 % at 5 % of space | within 2 % at 5 % of space |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for land in &lands {
        std::fs::write(
            out_dir.join(format!("{}.json", land.name)),
            serde_json::to_string(land).unwrap(),
        )
        .unwrap();
        let n = land.truth.len();
        let at = (n as f64 * 0.05).ceil().max(1.0) as usize;
        // Enough evaluations to see where the medians fall (10 % of the space, capped for the
        // GP's cost); a small recorded space is searched to the end.
        let budget = if n <= 100 { n } else { (n / 10).clamp(at, 150) };
        let t0 = std::time::Instant::now();
        let ours = run_seeds(seeds, |s| {
            run_optimiser(land, &cfg, budget, seed0 + s).unwrap()
        });
        // The "at 5 %" columns come from sessions whose budget *is* 5 % of the space, so their
        // final re-measurement phase falls inside it (a session with a larger budget is still
        // searching at that point).
        let ours_at = run_seeds(seeds, |s| run_optimiser(land, &cfg, at, seed0 + s).unwrap());
        let secs = t0.elapsed().as_secs_f64();
        // The same optimiser with the knowledge gradient as its acquisition.
        let kg_cfg = TuneConfig {
            acquisition: Acquisition::KnowledgeGradient,
            ..cfg.clone()
        };
        let t1 = std::time::Instant::now();
        let kg = run_seeds(seeds, |s| {
            run_optimiser(land, &kg_cfg, budget, seed0 + s).unwrap()
        });
        let kg_at = run_seeds(seeds, |s| {
            run_optimiser(land, &kg_cfg, at, seed0 + s).unwrap()
        });
        let kg_secs = t1.elapsed().as_secs_f64();
        let random = run_seeds(seeds, |s| run_random(land, budget, seed0 + s));
        for (method, traces) in [("GP-EI", &ours_at), ("GP-KG", &kg_at)] {
            let mean = traces.iter().map(|t| t.regret_at(land, at)).sum::<f64>()
                / traces.len().max(1) as f64;
            eprintln!(
                "{}: {method} mean regret at 5 % of the space: {:.3} %",
                land.name,
                100.0 * mean
            );
        }
        let mut rows: Vec<Summary> = vec![
            summarise_at("l1-tune GP-EI", land, &ours, &ours_at, budget, at),
            summarise_at("l1-tune GP-KG", land, &kg, &kg_at, budget, at),
            summarise("random", land, &random, budget, at),
        ];
        let optuna = out_dir.join(format!("{}.optuna.json", land.name));
        if let Ok(text) = std::fs::read_to_string(&optuna) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let traces: Vec<Trace> = v["reported"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| Trace {
                    reported: r
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|x| x.as_u64().unwrap() as usize)
                        .collect(),
                })
                .collect();
            rows.push(summarise("Optuna TPE", land, &traces, budget, at));
        }
        for r in rows {
            println!(
                "| {} | {} | {} / {} | {} ({} seeds) | {} | {} | {:.0} % (k={}) | {:.0} % |",
                land.name,
                n,
                land.within(0.01),
                land.within(0.02),
                r.method,
                r.seeds,
                fmt_hits(r.median_to_1, r.budget),
                fmt_hits(r.median_to_2, r.budget),
                100.0 * r.share_1_at,
                r.at,
                100.0 * r.share_2_at,
            );
        }
        eprintln!(
            "{}: {} combos, budget {budget}, optimiser {:.1} s (EI), {:.1} s (KG) for {seeds} seeds",
            land.name, n, secs, kg_secs
        );
    }
}
