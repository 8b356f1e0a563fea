//! `l1`: validate and preview specs, manage catalog snapshots, summarize runs.
//!
//! Exit codes: 0 success, 1 a spec or catalog is invalid (diagnostics on stderr), 2 usage or I/O
//! error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Parser, Subcommand};
use l1_harness::catalog::{LoadedCatalog, snapshot_path};
use l1_harness::detect::Detected;
use l1_harness::profiles::Catalogs;
use l1_harness::record::{self, RunDir};
use l1_harness::render::RenderContext;
use l1_harness::spec::{self, Mode};
use l1_harness::suite::{Settings, combo_slug};
use l1_harness::{expand, harness};

#[derive(Parser)]
#[command(
    name = "l1",
    version,
    about = "Kernel-configuration sweeps for LLM inference engines"
)]
struct Cli {
    /// Repository root (holds catalogs/ and specs/). Default: the nearest directory at or above
    /// the current one that holds `catalogs/kernels.yaml`, else the repository this `l1` was
    /// built from.
    #[arg(long, env = "L1_ROOT")]
    root: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check specs exactly as the harness would: spec files, or directories (every spec under
    /// them); default `L1_SPECS`, else `specs/`.
    Validate { specs: Vec<PathBuf> },
    /// How many combos each mode would run for a spec, which ones (with the sim engine's
    /// predicted metrics), and what the rules rejected.
    Preview {
        spec: PathBuf,
        /// List every selected combo with its sim-predicted throughput and p95 TTFT.
        #[arg(long)]
        combos: bool,
    },
    /// The kernel catalog.
    Catalog {
        #[command(subcommand)]
        action: CatalogAction,
    },
    /// Measure this machine's noise: every target's baseline over several launches; records the
    /// within- and between-launch variation (noise floor and launch component of later
    /// comparisons) and the reference the `drift` gate compares with.
    Calibrate {
        spec: PathBuf,
        #[arg(long, default_value_t = 5)]
        launches: usize,
        #[arg(long, default_value_t = 7)]
        reps: usize,
    },
    /// Runs in the results store (`L1_STORE`): list, show, cancel, delete, follow.
    Runs {
        #[command(subcommand)]
        action: store_cmds::RunsAction,
    },
    /// Tier-2 tune sessions in the results store: list, status, resume, cancel.
    Tune {
        #[command(subcommand)]
        action: tune_cmds::TuneAction,
    },
    /// The measurement cache: stats, flush.
    Cache {
        #[command(subcommand)]
        action: store_cmds::CacheAction,
    },
    /// Write each target's winning combo of a stored run as the engine's launch artifact
    /// (argv, env, config files) with provenance, for a deployment pipeline. Only a winner that
    /// a gate testing for improvement (topk5) established is written; otherwise it says why
    /// (which gates ran, what they lacked) and writes nothing for the target.
    Apply {
        run: String,
        /// Where to write (default: `target/l1/apply/<run>/`).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Also write targets whose gates passed without establishing a winner (only pareto,
        /// regression or manual gates, or an inconclusive comparison): their best combo, else
        /// the baseline, marked `forced` in the provenance. Failed gates are never applied.
        #[arg(long)]
        force: bool,
    },
    /// The results store itself: ingest a run directory, check integrity.
    Store {
        #[command(subcommand)]
        action: store_cmds::StoreAction,
    },
    /// Summarize a run (default: the newest run): JUnit XML, HTML, results.json and metrics;
    /// ingest it into the store and record its status: passed, failed or unfinished (a run only
    /// in the store is restored first).
    ///
    /// Exit codes: 0 every trial asked to run finished and passed; 1 the run finished and a trial
    /// or gate failed (spec errors included); 2 the run is unfinished (trials without an
    /// outcome) or could not be read (an unreadable record, a store error, reports not written).
    Report {
        run: Option<String>,
        /// Where to write the JUnit XML (default: `target/l1/runs/<run>/junit.xml`).
        #[arg(long, value_name = "PATH")]
        junit: Option<PathBuf>,
    },
    /// Measure the decisions' error rates and power on the sim engine's known truth: every cell of
    /// the published table (or those `--cells` names), each rate with its 95 % Wilson interval.
    /// Each cell has its own random stream (seeded from `--seed` and the cell id): reproducible.
    Accuracy {
        /// Comparisons per cell (the README's table uses 20,000; the default is a quick look).
        #[arg(long, default_value_t = 2000)]
        comparisons: usize,
        /// Only these cells (comma-separated ids; `PREFIX*` selects every id starting with PREFIX).
        #[arg(long, value_name = "IDS")]
        cells: Option<String>,
        /// List the cells (id and design) and exit.
        #[arg(long)]
        list: bool,
        /// Base seed of the cells' random streams.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Worker threads per cell (default: the available cores; results do not depend on it).
        #[arg(long)]
        threads: Option<usize>,
        /// Reps per combo of `--sweep`.
        #[arg(long, default_value_t = 7)]
        reps: usize,
        /// Measure whole sweeps instead: how often the winner is the true best, and its regret.
        #[arg(long)]
        sweep: bool,
        #[arg(long, default_value = "llama-3.1-8b")]
        model: String,
        /// The hardware profile: its noise floor and launch CV are the noise the sim draws.
        #[arg(long, default_value = "h100-sxm")]
        hardware: String,
        /// The workload only sets the truth the noise multiplies (a closed-loop rep's throughput
        /// is truth / noise factors), so every closed-loop workload gives the same counts; the
        /// default is the cheapest to simulate (`cpu-smoke`; `interactive-single` for `--sweep`).
        #[arg(long)]
        workload: Option<String>,
    },
}

#[derive(Subcommand)]
enum CatalogAction {
    /// Print the catalog's version, snapshot id, dimensions and rules.
    Show,
    /// Record the current catalog as the snapshot of its version (after bumping `version`).
    Snapshot,
    /// The recorded snapshots: files under catalogs/snapshots/ and those results refer to.
    Snapshots,
    /// A line diff of two catalogs: snapshot ids (`v2`, `v3-…`), `current`, or files. Exit 1
    /// when they differ.
    Diff { a: String, b: String },
    /// Print the engine table (translator and catalog versions, values per dimension) as
    /// Markdown, as README.md carries it.
    Engines,
}

/// `println!` that ends the program quietly when stdout is closed (`l1 ... | head`).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(0);
        }
    }};
}

#[path = "l1/store_cmds.rs"]
mod store_cmds;
#[path = "l1/tune_cmds.rs"]
mod tune_cmds;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn context(cats: &Catalogs) -> RenderContext {
    l1_harness::suite::render_context(cats, &Detected::detect(&cats.hardware))
}

/// What marks the repository root.
const ROOT_MARKER: &str = "catalogs/kernels.yaml";

/// The repository root, found the way cargo finds its manifest: `--root`/`L1_ROOT` when given
/// (it must hold `catalogs/kernels.yaml`), else the nearest directory at or above the current
/// one that holds it, else the repository this binary was built from.
fn find_root(explicit: Option<&Path>) -> Result<PathBuf> {
    let how = "run l1 inside the repository, or point it there with `--root DIR` or `L1_ROOT=DIR` (the directory holding catalogs/ and specs/)";
    if let Some(dir) = explicit {
        if dir.join(ROOT_MARKER).is_file() {
            return Ok(dir.to_path_buf());
        }
        bail!(
            "`{}` (from --root or L1_ROOT) is not an l1 repository: it has no {ROOT_MARKER}\n  = help: {how}, or unset L1_ROOT to let l1 find the repository from the current directory",
            dir.display()
        );
    }
    let cwd = std::env::current_dir().context("failed to read the current directory")?;
    if let Some(dir) = cwd.ancestors().find(|d| d.join(ROOT_MARKER).is_file()) {
        return Ok(dir.to_path_buf());
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).parent();
    if let Some(dir) = built.filter(|d| d.join(ROOT_MARKER).is_file()) {
        return Ok(dir.to_path_buf());
    }
    bail!(
        "could not find the l1 repository: no {ROOT_MARKER} in {} or any directory above it, nor in {} (where this l1 was built)\n  = help: {how}",
        cwd.display(),
        built.map_or_else(|| "?".into(), |b| b.display().to_string())
    )
}

fn run(cli: &Cli) -> Result<ExitCode> {
    let root = &find_root(cli.root.as_deref())?;
    match &cli.command {
        Command::Validate { specs } => {
            let cats = match Catalogs::load(root) {
                Ok(c) => c,
                Err(d) => {
                    eprintln!("{d}");
                    return Ok(ExitCode::from(1));
                }
            };
            let ctx = context(&cats);
            // Files and directories (every spec under them); default L1_SPECS, else specs/.
            let paths = if specs.is_empty() {
                vec![Settings::from_env(root).specs]
            } else {
                specs.clone()
            };
            let mut bad = 0;
            let mut report = Vec::new();
            let mut files = Vec::new();
            for p in &paths {
                match spec::discover(p) {
                    Ok(found) => files.extend(found),
                    Err(d) => {
                        bad += 1;
                        report.push(
                            serde_json::json!({"spec": p, "valid": false, "errors": 1, "error": d.to_string()}),
                        );
                        if !cli.json {
                            eprintln!("{d}");
                        }
                    }
                }
            }
            for f in &files {
                let res = spec::load(f, &ctx).and_then(|ls| {
                    let tune = l1_harness::tuning::TuneSpec::from_spec(&ls.spec).is_some();
                    expand::expand(&ls, &cats).map(|ex| (tune, ex))
                });
                match res {
                    Ok((tune, ex)) => {
                        // As the harness generates them: a sweep target is one test per combo
                        // plus its baseline and gate; a tune target is one test.
                        let n: usize = ex
                            .targets
                            .iter()
                            .map(|t| if tune { 1 } else { t.combos.len() + 2 })
                            .sum();
                        report.push(serde_json::json!({"spec": f, "valid": true, "trials": n}));
                        if !cli.json {
                            out!("ok    {} ({n} trials)", f.display());
                        }
                    }
                    Err(d) => {
                        bad += 1;
                        report.push(serde_json::json!({
                            "spec": f,
                            "valid": false,
                            "errors": d.count(),
                            "error": d.to_string(),
                        }));
                        if !cli.json {
                            eprintln!("{d}");
                        }
                    }
                }
            }
            if cli.json {
                out!("{}", serde_json::to_string_pretty(&report)?);
            }
            Ok(if bad > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Preview { spec: path, combos } => {
            let cats = Catalogs::load(root).map_err(|d| anyhow::anyhow!("{d}"))?;
            let ctx = context(&cats);
            let ls = match spec::load(path, &ctx) {
                Ok(l) => l,
                Err(d) => {
                    eprintln!("{d}");
                    return Ok(ExitCode::from(1));
                }
            };
            let mut out = Vec::new();
            for mode in [Mode::Exhaustive, Mode::Quick] {
                let mut l = ls.clone();
                l.spec.space.mode = mode;
                let ex = match expand::expand(&l, &cats) {
                    Ok(e) => e,
                    Err(d) => {
                        eprintln!("{d}");
                        return Ok(ExitCode::from(1));
                    }
                };
                for t in &ex.targets {
                    let mut rejected: BTreeMap<String, usize> = BTreeMap::new();
                    for r in &t.rejected {
                        for x in &r.rejections {
                            *rejected
                                .entry(format!("{} ({})", x.rule, x.reason))
                                .or_default() += 1;
                        }
                    }
                    // The sim engine's prediction for each combo on the target's declared
                    // hardware, model and workload: what the sweep would find, before it runs.
                    let sim_target = l1_engines::sim::SimTarget {
                        model: &cats.models[&t.id.model],
                        hardware: &cats.hardware[&t.id.hardware],
                        workload: &cats.workloads[&t.id.workload],
                    };
                    let predicted: Vec<serde_json::Value> = t
                        .combos
                        .iter()
                        .map(|c| {
                            let m = l1_engines::sim::truth(&sim_target, c).ok();
                            let get = |k: &str| m.as_ref().and_then(|m| m.get(k).copied());
                            serde_json::json!({
                                "combo": combo_slug(&cats, c),
                                "baseline": *c == t.baseline,
                                "predicted_output_tokens_per_s": get("output_tokens_per_s"),
                                "predicted_ttft_p95_ms": get("ttft_p95_ms"),
                            })
                        })
                        .collect();
                    out.push(serde_json::json!({
                        "mode": format!("{mode:?}").to_lowercase(),
                        "target": t.id.to_string(),
                        "selected": t.combos.len(),
                        "legal": t.legal,
                        "rejected": rejected,
                        "combos": predicted,
                    }));
                }
            }
            if cli.json {
                out!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for o in &out {
                    out!(
                        "{:<10} {}: {} of {} legal combos",
                        o["mode"].as_str().unwrap_or(""),
                        o["target"].as_str().unwrap_or(""),
                        o["selected"],
                        o["legal"]
                    );
                    if let Some(r) = o["rejected"].as_object() {
                        for (rule, n) in r {
                            out!("           rejected {n}: {rule}");
                        }
                    }
                    if *combos {
                        out!(
                            "           {:>14} {:>14}  combo (sim prediction on the declared hardware)",
                            "tok/s",
                            "ttft p95 ms"
                        );
                        for c in o["combos"].as_array().into_iter().flatten() {
                            let num = |k: &str| {
                                c[k].as_f64().map_or("-".to_string(), |v| format!("{v:.1}"))
                            };
                            out!(
                                "           {:>14} {:>14}  {}{}",
                                num("predicted_output_tokens_per_s"),
                                num("predicted_ttft_p95_ms"),
                                c["combo"].as_str().unwrap_or(""),
                                if c["baseline"].as_bool() == Some(true) {
                                    " (baseline)"
                                } else {
                                    ""
                                }
                            );
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Runs { action } => store_cmds::runs(cli.json, &Settings::from_env(root), action),
        Command::Tune { action } => tune_cmds::tune(cli.json, &Settings::from_env(root), action),
        Command::Cache { action } => store_cmds::cache(cli.json, &Settings::from_env(root), action),
        Command::Store { action } => {
            store_cmds::store_cmd(cli.json, &Settings::from_env(root), action)
        }
        Command::Apply { run, out, force } => store_cmds::apply(
            cli.json,
            root,
            &Settings::from_env(root),
            run,
            out.as_deref(),
            *force,
        ),
        Command::Catalog {
            action: CatalogAction::Snapshots,
        } => store_cmds::catalog_snapshots(cli.json, root, &Settings::from_env(root)),
        Command::Catalog {
            action: CatalogAction::Diff { a, b },
        } => store_cmds::catalog_diff(cli.json, root, &Settings::from_env(root), a, b),
        Command::Catalog { action } => {
            let path = root.join("catalogs").join("kernels.yaml");
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("failed to read {}", path.display()))?;
            let loaded = match LoadedCatalog::from_text(&path, &text) {
                Ok(l) => l,
                Err(d) => {
                    eprintln!("{d}");
                    return Ok(ExitCode::from(1));
                }
            };
            match action {
                CatalogAction::Snapshots | CatalogAction::Diff { .. } => {
                    unreachable!("handled above")
                }
                CatalogAction::Engines => {
                    out!("{}", l1_harness::engine_table::render(&loaded));
                    Ok(ExitCode::SUCCESS)
                }
                CatalogAction::Show => {
                    if cli.json {
                        out!(
                            "{}",
                            serde_json::to_string_pretty(
                                &serde_json::json!({"snapshot": loaded.snapshot, "catalog": loaded.catalog})
                            )?
                        );
                    } else {
                        out!("catalog {} (snapshot {})", path.display(), loaded.snapshot);
                        for (name, d) in &loaded.catalog.dimensions {
                            out!("  {name} ({}): {}", d.short, d.values.join(", "));
                        }
                        for r in &loaded.catalog.rules {
                            out!("  rule {} [{:?}]: {}", r.id, r.kind, r.reason);
                        }
                    }
                    Ok(ExitCode::SUCCESS)
                }
                CatalogAction::Snapshot => {
                    let snap = snapshot_path(&path, loaded.catalog.version);
                    if let Ok(existing) = std::fs::read_to_string(&snap) {
                        let old = LoadedCatalog::from_text(&snap, &existing)
                            .map_err(|d| anyhow::anyhow!("{d}"))?;
                        if old.content_hash != loaded.content_hash {
                            bail!(
                                "{} already records version {} with different content; bump `version` in {} first",
                                snap.display(),
                                loaded.catalog.version,
                                path.display()
                            );
                        }
                        out!(
                            "snapshot {} already recorded at {}",
                            loaded.snapshot,
                            snap.display()
                        );
                        return Ok(ExitCode::SUCCESS);
                    }
                    if let Some(dir) = snap.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    std::fs::write(&snap, &text)?;
                    out!(
                        "recorded snapshot {} at {}",
                        loaded.snapshot,
                        snap.display()
                    );
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Command::Accuracy {
            comparisons,
            cells,
            list,
            seed,
            threads,
            reps,
            sweep,
            model,
            hardware,
            workload,
        } => {
            let cats = Catalogs::load(root).map_err(|d| anyhow::anyhow!("{d}"))?;
            let m = cats
                .models
                .get(model)
                .with_context(|| format!("unknown model `{model}`"))?;
            let h = cats
                .hardware
                .get(hardware)
                .with_context(|| format!("unknown hardware `{hardware}`"))?;
            let workload = workload.clone().unwrap_or_else(|| {
                if *sweep {
                    "interactive-single".into()
                } else {
                    "cpu-smoke".into()
                }
            });
            let w = cats
                .workloads
                .get(&workload)
                .with_context(|| format!("unknown workload `{workload}`"))?;
            let sim_target = l1_engines::sim::SimTarget {
                model: m,
                hardware: h,
                workload: w,
            };
            if *sweep {
                let combos = l1_harness::accuracy::sweep_combos();
                let sweeps = (*comparisons / 10).max(20);
                let o = l1_harness::accuracy::run_sweep(&sim_target, &combos, *reps, sweeps, 42)
                    .map_err(anyhow::Error::msg)?;
                if cli.json {
                    out!("{}", serde_json::to_string_pretty(&o)?);
                } else {
                    out!(
                        "{} sweeps of {} combos ({} on {} / {}), {} reps each in one launch:",
                        o.sweeps,
                        o.combos,
                        model,
                        hardware,
                        workload,
                        o.reps
                    );
                    out!(
                        "  winner is the true best:               {:.1} %",
                        o.picked_true_best * 100.0
                    );
                    out!(
                        "  winner within the noise floor of best: {:.1} %",
                        o.within_floor * 100.0
                    );
                    out!(
                        "  mean reported P(best within floor):    {:.1} %",
                        o.mean_reported_p_best * 100.0
                    );
                    out!(
                        "  regret of the winner: mean {:.2} %, worst {:.2} %",
                        o.mean_regret * 100.0,
                        o.max_regret * 100.0
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            use l1_harness::accuracy;
            let all = accuracy::published_cells();
            let chosen: Vec<accuracy::Cell> = match cells {
                None => all.clone(),
                Some(spec) => {
                    let mut chosen = Vec::new();
                    for pat in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                        let hits: Vec<&accuracy::Cell> = all
                            .iter()
                            .filter(|c| match pat.strip_suffix('*') {
                                Some(prefix) => c.id.starts_with(prefix),
                                None => c.id == pat,
                            })
                            .collect();
                        if hits.is_empty() {
                            bail!(
                                "--cells: no cell matches `{pat}`; valid ids (or PREFIX*): {}",
                                all.iter()
                                    .map(|c| c.id.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            );
                        }
                        for c in hits {
                            if !chosen.contains(c) {
                                chosen.push(c.clone());
                            }
                        }
                    }
                    chosen
                }
            };
            if *list {
                for c in &chosen {
                    out!("{:<28} {}", c.id, c.title());
                }
                return Ok(ExitCode::SUCCESS);
            }
            if *comparisons == 0 {
                bail!("--comparisons must be at least 1");
            }
            let threads = threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                .max(1);
            if !cli.json {
                out!(
                    "{comparisons} comparisons per cell on the sim ({model} on {hardware} / {workload}: noise floor {}, launch cv {}), α = {}, trim {}, base seed {seed}; every rate with its 95 % Wilson score interval; nominal = the error rate the procedure promises in that cell",
                    h.noise_floor_cv,
                    h.launch_cv,
                    accuracy::ALPHA,
                    accuracy::TRIM
                );
            }
            let mut outcomes = Vec::new();
            for c in &chosen {
                let started = std::time::Instant::now();
                let o = accuracy::run_cell(m, h, w, c, *comparisons, *seed, threads)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", c.id))?;
                eprintln!(
                    "accuracy: {} done in {:.1} s",
                    c.id,
                    started.elapsed().as_secs_f64()
                );
                if !cli.json {
                    let reps = if matches!(c.design, accuracy::Design::Sequential { .. }) {
                        format!(
                            "; looks {:?} at level {:.4}; candidate reps used {:.2} on average",
                            o.looks, o.per_look_level, o.mean_candidate_reps
                        )
                    } else {
                        String::new()
                    };
                    out!("{}: {}{reps}", o.cell.id, o.title);
                    for r in &o.rates {
                        let nominal = match (r.nominal, r.holds) {
                            (Some(a), Some(true)) => format!("nominal ≤ {:.1} %: holds", a * 100.0),
                            (Some(a), _) => format!("nominal ≤ {:.1} %: EXCEEDS", a * 100.0),
                            (None, _) => String::new(),
                        };
                        out!(
                            "  {:<24} {:>6.2} % [{:>6.2}, {:>6.2}]  {:<30} {}",
                            r.name,
                            r.rate * 100.0,
                            r.ci95.0 * 100.0,
                            r.ci95.1 * 100.0,
                            nominal,
                            r.meaning
                        );
                    }
                }
                outcomes.push(o);
            }
            if cli.json {
                out!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "model": model,
                        "hardware": hardware,
                        "workload": workload,
                        "alpha": accuracy::ALPHA,
                        "trim": accuracy::TRIM,
                        "interval": "95 % Wilson score",
                        "base_seed": seed,
                        "comparisons": comparisons,
                        "cells": outcomes,
                    }))?
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Calibrate {
            spec: path,
            launches,
            reps,
        } => {
            let cats = Catalogs::load(root).map_err(|d| anyhow::anyhow!("{d}"))?;
            let ctx = context(&cats);
            let detected = Detected::detect(&cats.hardware);
            let ls = match spec::load(path, &ctx) {
                Ok(l) => l,
                Err(d) => {
                    eprintln!("{d}");
                    return Ok(ExitCode::from(1));
                }
            };
            let ex = match expand::expand(&ls, &cats) {
                Ok(e) => e,
                Err(d) => {
                    eprintln!("{d}");
                    return Ok(ExitCode::from(1));
                }
            };
            let settings = Settings::from_env(root);
            let mut out_rows = Vec::new();
            for t in &ex.targets {
                if t.id.engine != "sim" {
                    bail!(
                        "{}: calibrating engine `{}` needs its launcher, which this build does not have",
                        t.id,
                        t.id.engine
                    );
                }
                let fp =
                    l1_harness::calibration::fingerprint(&t.id.hardware, &detected, &t.id.engine);
                let c = l1_harness::calibration::calibrate_sim(
                    &cats.models[&t.id.model],
                    &cats.hardware[&t.id.hardware],
                    &cats.workloads[&t.id.workload],
                    &t.id,
                    &t.baseline,
                    &fp,
                    *launches,
                    *reps,
                    0,
                )
                .map_err(anyhow::Error::msg)?;
                let saved = l1_harness::calibration::save(&settings.target_dir, &c)
                    .map_err(anyhow::Error::msg)?;
                if !cli.json {
                    out!(
                        "{}: output_tokens_per_s cv within {:.2} %, between launches {:.2} % ({} launches × {} reps) -> {}",
                        t.id,
                        c.cv_within
                            .get("output_tokens_per_s")
                            .copied()
                            .unwrap_or(f64::NAN)
                            * 100.0,
                        c.cv_between
                            .get("output_tokens_per_s")
                            .copied()
                            .unwrap_or(f64::NAN)
                            * 100.0,
                        launches,
                        reps,
                        saved.display()
                    );
                }
                out_rows.push(c);
            }
            if cli.json {
                out!("{}", serde_json::to_string_pretty(&out_rows)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report { run, junit } => {
            let settings = Settings::from_env(root);
            let runs_dir = settings.target_dir.join("l1").join("runs");
            let id = match run {
                Some(r) => r.clone(),
                None => newest_run(&runs_dir)
                    .with_context(|| format!("no runs under {}", runs_dir.display()))?,
            };
            let dir = RunDir::new(&settings.target_dir, &id);
            // A run measured elsewhere (a shared PostgreSQL store) is restored from the store.
            if !dir.path.is_dir() {
                let restored = l1_harness::results::with_store(&settings.target_dir, |s| {
                    Ok(s.run(&id)?.is_some())
                })
                .map_err(anyhow::Error::msg)?;
                if !restored {
                    bail!(
                        "unknown run `{id}` (no directory {} and not in the store {})",
                        dir.path.display(),
                        l1_harness::results::location(&settings.target_dir).display()
                    );
                }
                let n = l1_harness::results::with_store(&settings.target_dir, |s| {
                    Ok(l1_harness::results::restore(&dir, s))
                })
                .map_err(anyhow::Error::msg)?
                .map_err(anyhow::Error::msg)?;
                eprintln!(
                    "run {id}: restored {n} records from the store into {}",
                    dir.path.display()
                );
            }
            // The run's accounting: its plans (what the runner selected, ignored, filtered
            // out), start markers and trial records.
            let acc = l1_harness::accounting::Accounting::of(&dir);
            let mut summary = harness::summarize(&dir, &acc);
            // The store gets every record of the run (idempotent) and the run's verdict. A
            // store error does not stop the reports; it makes the run unreadable (exit 2).
            let store_error = harness::finish_in_store(&settings, &dir, &summary.status).err();
            if let Some(e) = &store_error {
                summary.notes.push(format!("results store: {e}"));
            }
            record::write_json_atomic(&dir.path.join("summary.json"), &summary)
                .map_err(anyhow::Error::msg)?;
            let (junit_run, problems) = junit_run(&dir, &acc);
            let xml = l1_reports::junit::render_junit(&junit_run)
                .map_err(|e| anyhow::anyhow!("failed to render JUnit XML: {e}"))?;
            let junit_path = junit.clone().unwrap_or_else(|| dir.path.join("junit.xml"));
            if let Some(parent) = junit_path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("failed to create {}", parent.display()))?;
            }
            std::fs::write(&junit_path, xml)
                .with_context(|| format!("failed to write {}", junit_path.display()))?;
            // Problems beyond the table's unreadable trial records (measurement records, foreign
            // files), named by file.
            let extra: Vec<&String> = problems
                .iter()
                .filter(|p| !summary.unreadable.iter().any(|u| relative(&dir, u) == **p))
                .collect();
            if cli.json {
                out!("{}", serde_json::to_string_pretty(&summary)?);
                for p in &extra {
                    eprintln!("unreadable record: {p}");
                }
            } else {
                out!("{}", l1_reports::render_table(&summary).trim_end());
                for p in &extra {
                    out!("  unreadable record: {p}");
                }
                out!("  JUnit XML: {}", junit_path.display());
            }
            let sources = l1_harness::report_model::Sources {
                specs: Some(settings.specs.clone()),
                root: Some(settings.root.clone()),
                ignored: BTreeMap::new(),
                now_unix_s: None,
            };
            let written = l1_harness::report_model::write_all(&dir, &settings.target_dir, &sources);
            let report_error = match &written {
                Ok((_, w)) => {
                    for x in &w.warnings {
                        eprintln!("l1: {x}");
                    }
                    if !cli.json {
                        for (what, p) in ["HTML report", "JSON results", "metrics"]
                            .iter()
                            .zip([&w.html, &w.json, &w.metrics])
                        {
                            out!("  {what}: {}", p.display());
                        }
                    }
                    false
                }
                Err(e) => {
                    eprintln!("l1: failed to write the reports: {e}");
                    true
                }
            };
            if let Some(e) = &store_error {
                eprintln!("l1: results store: {e}");
            }
            // One table for every command that judges a run (README, "Exit codes").
            Ok(ExitCode::from(l1_harness::accounting::exit_code(
                acc.verdict(),
                !summary.unreadable.is_empty() || !extra.is_empty(),
                store_error.is_some() || report_error,
            )))
        }
    }
}

/// The run whose trials, plan or start markers changed last (not the run directory's own time:
/// reporting an older run writes its reports into it, which must not make it the newest).
fn newest_run(dir: &std::path::Path) -> Option<String> {
    let activity = |run: &std::path::Path| {
        ["trials", "plan", "started"]
            .iter()
            .filter_map(|sub| std::fs::metadata(run.join(sub)).ok()?.modified().ok())
            .max()
            .or_else(|| std::fs::metadata(run).ok()?.modified().ok())
    };
    let mut runs: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            Some((
                activity(&e.path())?,
                e.file_name().to_string_lossy().into_owned(),
            ))
        })
        .collect();
    runs.sort();
    runs.pop().map(|(_, n)| n)
}

/// A problem text with the run directory's path removed, so it names files relative to the run.
fn relative(dir: &RunDir, problem: &str) -> String {
    let prefix = format!("{}/", dir.path.display());
    problem.replace(&prefix, "")
}

/// The run as JUnit XML input: a suite per spec target (`<spec>::<engine@ver>::<model>::<hw>::
/// <workload>`) with a case per trial (passed, failed, ignored as skipped with its reason, a
/// trial without an outcome as an error), `l1::invalid` with a failed case per spec error, and
/// `l1::unreadable` for every file that could not be read. Also returns those problems, with
/// paths relative to the run directory.
fn junit_run(
    dir: &RunDir,
    acc: &l1_harness::accounting::Accounting,
) -> (l1_reports::junit::JunitRun, Vec<String>) {
    use l1_reports::junit::{JunitCase, JunitRun, JunitSuite, Outcome};
    use std::collections::BTreeSet;

    #[derive(Default)]
    struct Target {
        suite: JunitSuite,
        /// Values seen in the target's measurement records.
        engine_versions: BTreeSet<String>,
        snapshots: BTreeSet<String>,
        harness_versions: BTreeSet<String>,
        hardware_fingerprints: BTreeSet<String>,
        simulated: bool,
    }
    fn first_line(s: &str) -> String {
        s.lines().next().unwrap_or("").to_string()
    }
    fn num(x: f64) -> String {
        format!("{x:.6}")
    }
    fn pct(ratio: f64) -> String {
        format!("{:+.2} %", (ratio - 1.0) * 100.0)
    }

    let (records, unreadable) = (&acc.records, &acc.unreadable);
    let mut problems: Vec<String> = unreadable.iter().map(|u| relative(dir, u)).collect();
    problems.sort();
    // Problems reported on a trial's own testcase (not repeated under `l1::unreadable`).
    let mut attached = BTreeSet::new();
    let mut targets: BTreeMap<String, Target> = BTreeMap::new();
    let mut referenced = BTreeSet::new();
    // Spec errors: one failed testcase per `invalid::` trial.
    let mut invalid = JunitSuite {
        name: "l1::invalid".into(),
        ..JunitSuite::default()
    };
    for r in records.iter().filter(|r| r.kind == "invalid") {
        invalid.cases.push(JunitCase {
            name: r.name.clone(),
            classname: "l1::invalid".into(),
            duration_s: r.duration_s,
            outcome: Outcome::Failed {
                message: first_line(&r.message),
                detail: r.message.clone(),
            },
            system_out: None,
            system_err: None,
        });
    }
    for r in records.iter().filter(|r| r.kind != "invalid") {
        let target = format!("{}::{}", r.spec, r.target);
        let case = r
            .name
            .split_once(&format!("{target}::"))
            .map(|(_, c)| c.to_string())
            .unwrap_or_else(|| r.name.rsplit("::").next().unwrap_or(&r.name).to_string());
        let t = targets.entry(target.clone()).or_default();
        t.suite.name.clone_from(&target);
        t.simulated |= r.simulated;
        let props = &mut t.suite.properties;
        let mut outcome = if r.passed {
            Outcome::Passed
        } else {
            // A gate's explanation: the failed gates' verdicts, else the trial's first line.
            let failed: Vec<String> = r
                .gates
                .iter()
                .filter(|g| !g.passed)
                .map(|g| first_line(&g.message))
                .collect();
            Outcome::Failed {
                message: if failed.is_empty() {
                    first_line(&r.message)
                } else {
                    failed.join("; ")
                },
                detail: r.message.clone(),
            }
        };
        let mut system_err = None;
        if let Some(key) = &r.measurement {
            referenced.insert(key.clone());
            props.push((format!("{case}.measurement"), key.clone()));
            match dir.read_measurement(key) {
                Ok(Some(m)) => {
                    props.push((format!("{case}.reps"), m.reps.len().to_string()));
                    if let Some(v) = &m.engine_version {
                        t.engine_versions.insert(v.clone());
                    }
                    t.snapshots.insert(m.catalog_snapshot.clone());
                    t.harness_versions.insert(m.harness_version.clone());
                    t.simulated |= m.simulated;
                    if let Some(e) = &m.error {
                        props.push((format!("{case}.error"), e.clone()));
                    }
                    props.push((
                        format!("{case}.cache_hit"),
                        m.cache_hit.as_ref().map_or("false".into(), |h| {
                            format!("true (run {}, {})", h.from_run, h.from_key)
                        }),
                    ));
                    if let Some(f) = &m.fingerprints {
                        t.hardware_fingerprints
                            .insert(f.hardware_fingerprint.clone());
                    }
                }
                unreadable => {
                    let msg = match unreadable {
                        Err(e) => relative(dir, &e),
                        _ => format!(
                            "{}: measurement record missing",
                            relative(dir, &dir.measurement_path(key).display().to_string())
                        ),
                    };
                    problems.push(msg.clone());
                    attached.insert(msg.clone());
                    system_err = Some(msg.clone());
                    outcome = Outcome::Error {
                        message: msg,
                        detail: r.message.clone(),
                    };
                }
            }
        }
        for g in &r.gates {
            props.push((
                format!("gate.{}", g.method),
                if g.passed { "pass" } else { "FAIL" }.to_string(),
            ));
            if let Some(w) = &g.winner {
                props.push((format!("gate.{}.winner", g.method), w.clone()));
            }
            if let Some(p) = g.p_best {
                props.push((format!("gate.{}.p_best", g.method), num(p)));
            }
        }
        // Comparisons with the baseline: the first gate's table (every gate tabulates the same
        // measurements); fidelity rows are listed below, not as a speed metric.
        let fidelity_metric = l1_harness::report_model::FIDELITY_METRIC;
        if let Some(g) = r
            .gates
            .iter()
            .find(|g| g.rows.iter().any(|row| row.metric != fidelity_metric))
        {
            for row in g.rows.iter().filter(|row| row.metric != fidelity_metric) {
                let k = format!("{}.{}", row.combo, row.metric);
                props.push((format!("{k}.trimmed_mean"), num(row.trimmed_mean)));
                if let Some(x) = row.improvement {
                    props.push((format!("{k}.vs_baseline"), pct(x)));
                }
                if let Some((lo, hi)) = row.improvement_ci {
                    props.push((
                        format!("{k}.vs_baseline_ci"),
                        format!("{} {}", pct(lo), pct(hi)),
                    ));
                }
                if let Some(p) = row.yuen_p {
                    props.push((format!("{k}.yuen_p"), num(p)));
                }
                if let Some(p) = row.adjusted_p {
                    props.push((format!("{k}.adjusted_p"), num(p)));
                }
                if let Some(x) = row.hedges_g {
                    props.push((format!("{k}.hedges_g"), num(x)));
                }
            }
        }
        // Output fidelity per combo (the `fidelity` gate's table, else `manual`'s).
        for (combo, f) in l1_harness::report_model::fidelity_cells(&r.gates) {
            props.extend(l1_reports::junit::fidelity_properties(&combo, &f));
        }
        // A failure or error carries the trial's message as its text already.
        let system_out = matches!(outcome, Outcome::Passed).then(|| r.message.clone());
        t.suite.cases.push(JunitCase {
            name: case,
            classname: target,
            duration_s: r.duration_s,
            outcome,
            system_out,
            system_err,
        });
    }
    problems.extend(
        l1_harness::report_model::stray_files(dir, &referenced)
            .into_iter()
            .map(|u| format!("{}: {}", u.file, u.error)),
    );
    // Trials that did not run (ignored: skipped, with the reason) and trials without an outcome
    // (unfinished: an error), each a testcase of its target's suite.
    let suite_and_case = |name: &str| -> (String, String) {
        let parts: Vec<&str> = name.split("::").collect();
        if parts.len() == 7 {
            (parts[1..6].join("::"), parts[6].to_string())
        } else {
            ("l1::other".to_string(), name.to_string())
        }
    };
    let mut not_run = |name: &str, outcome: Outcome| {
        let (suite, case) = suite_and_case(name);
        let t = targets.entry(suite.clone()).or_default();
        t.suite.name.clone_from(&suite);
        t.suite.cases.push(JunitCase {
            name: case,
            classname: suite,
            duration_s: 0.0,
            outcome,
            system_out: None,
            system_err: None,
        });
    };
    for (reason, names) in &acc.ignored {
        for name in names {
            let message = format!("ignored: {reason}");
            not_run(name, Outcome::Skipped { message });
        }
    }
    for line in acc.unfinished_lines() {
        let name = line.split(" (").next().unwrap_or(&line).to_string();
        let message = format!("no outcome recorded: {line}");
        not_run(
            &name,
            Outcome::Error {
                message,
                detail: String::new(),
            },
        );
    }

    let mut suites = Vec::new();
    for (name, t) in targets {
        let mut head = vec![
            ("run_id".to_string(), dir.run_id.clone()),
            ("target".to_string(), name),
            ("simulated".to_string(), t.simulated.to_string()),
        ];
        let joined = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(", ");
        if !t.engine_versions.is_empty() {
            head.push(("engine_version".into(), joined(&t.engine_versions)));
        }
        if !t.snapshots.is_empty() {
            head.push(("catalog_snapshot".into(), joined(&t.snapshots)));
        }
        if !t.harness_versions.is_empty() {
            head.push(("harness_version".into(), joined(&t.harness_versions)));
        }
        if !t.hardware_fingerprints.is_empty() {
            head.push((
                "hardware_fingerprint".into(),
                joined(&t.hardware_fingerprints),
            ));
        }
        let mut suite = t.suite;
        head.append(&mut suite.properties);
        suite.properties = head;
        suites.push(suite);
    }
    if !invalid.cases.is_empty() {
        suites.insert(0, invalid);
    }
    if problems.iter().any(|p| !attached.contains(p)) {
        suites.push(JunitSuite {
            name: "l1::unreadable".into(),
            properties: Vec::new(),
            cases: problems
                .iter()
                .filter(|p| !attached.contains(*p))
                .map(|p| JunitCase {
                    name: p
                        .split_once(": ")
                        .map_or(p.as_str(), |(f, _)| f)
                        .to_string(),
                    classname: "l1::unreadable".into(),
                    duration_s: 0.0,
                    outcome: Outcome::Error {
                        message: p.clone(),
                        detail: String::new(),
                    },
                    system_out: None,
                    system_err: None,
                })
                .collect(),
            system_err: None,
        });
    }
    (
        JunitRun {
            run_id: dir.run_id.clone(),
            suites,
        },
        problems,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use l1_harness::expand::TargetId;
    use l1_harness::gates::{GateVerdict, Row};
    use l1_harness::record::{MeasurementRecord, TrialRecord};

    fn target(engine: &str) -> TargetId {
        TargetId {
            engine: engine.into(),
            version: "1.0".into(),
            model: "m".into(),
            hardware: "h".into(),
            workload: "w".into(),
        }
    }

    fn trial(engine: &str, case: &str, kind: &str, passed: bool) -> TrialRecord {
        let t = target(engine);
        TrialRecord {
            schema_version: record::RECORD_SCHEMA_VERSION,
            run_id: "fixture".into(),
            name: format!("sim::s::{t}::{case}"),
            spec: "s".into(),
            target: t,
            kind: kind.into(),
            passed,
            message: format!("sim::s::{engine}::{case}: measured: 3 reps"),
            measurement: None,
            gates: Vec::new(),
            simulated: engine == "sim",
            duration_s: 0.5,
        }
    }

    fn measurement(key: &str, engine_version: Option<&str>) -> MeasurementRecord {
        let simulated = engine_version.is_none();
        MeasurementRecord {
            schema_version: record::RECORD_SCHEMA_VERSION,
            key: key.into(),
            run_id: "fixture".into(),
            spec: "s".into(),
            target: target("sim"),
            combo: l1_engines::Combo::default(),
            combo_hash: "c".into(),
            catalog_snapshot: "v1-abc".into(),
            harness_version: "0.1.0".into(),
            simulated,
            seed: 1,
            measured_by: "t".into(),
            started_unix_s: 0.0,
            duration_s: 0.5,
            warmup_reps: 0,
            launches: 1,
            looks: 1,
            stopped: None,
            reps: Vec::new(),
            error: None,
            notes: Vec::new(),
            engine_version: engine_version.map(Into::into),
            fingerprints: None,
            cache_hit: None,
            probes: None,
        }
    }

    /// A hand-made run directory: passed, failed, ignored and simulated trials, a missing
    /// measurement, a truncated and a foreign record, a stray file.
    fn fixture(root: &std::path::Path) -> RunDir {
        let _ = std::fs::remove_dir_all(root);
        let dir = RunDir::new(root, "fixture");
        let mut base = trial("sim", "baseline", "baseline", true);
        base.measurement = Some("m0".into());
        let mut combo = trial("sim", "attn=flash", "combo", true);
        combo.measurement = Some("m1".into());
        let mut gate = trial("sim", "gate", "gate", false);
        gate.message =
            "sim::s::sim@1.0::m::h::w::gate: gates failed\n\u{1b}[31mtopk5 failed\u{1b}[0m: \
                        the winner <attn=flash> is not within 5 % of the best"
                .into();
        gate.gates = vec![GateVerdict {
            method: "topk5".into(),
            passed: false,
            message: "topk5 failed: the winner <attn=flash> is not within 5 % of the best".into(),
            winner: Some("attn=flash".into()),
            p_best: Some(0.5),
            established_winner: None,
            inconclusive: None,
            rows: vec![Row {
                combo: "attn=flash".into(),
                metric: "output_tokens_per_s".into(),
                trimmed_mean: 101.5,
                improvement: Some(1.015),
                improvement_ci: Some((0.99, 1.04)),
                yuen_p: Some(0.25),
                adjusted_p: Some(0.5),
                hedges_g: Some(0.4),
                mde: None,
                reps: 3,
                on_frontier: true,
                note: String::new(),
                fidelity: None,
            }],
        }];
        // Output fidelity: one combo passes, one fails by tokens only (no logprobs).
        let fid = |combo: &str, passed: bool| {
            use l1_harness::fidelity::{ComboFidelity, Measures, Precision};
            let precision = if passed {
                Precision::Bf16
            } else {
                Precision::Q4
            };
            ComboFidelity {
                combo: combo.into(),
                precision,
                limits: precision.defaults(),
                measures: Measures {
                    probes: 8,
                    exact_match: Some(if passed { 1.0 } else { 0.5 }),
                    matched_prefix: Some(if passed { 1.0 } else { 0.695 }),
                    mean_abs_logprob_delta: passed.then_some(0.0032),
                    topk_js_divergence: passed.then_some(0.0001),
                    logprobs: Some(if passed {
                        l1_engines::probe::LogprobSupport::TopK
                    } else {
                        l1_engines::probe::LogprobSupport::None
                    }),
                    ..Measures::default()
                },
                passed,
                failures: if passed {
                    Vec::new()
                } else {
                    vec!["matched_prefix 0.695 < 0.750".into()]
                },
                notes: Vec::new(),
            }
        };
        gate.gates.push(GateVerdict {
            method: "fidelity".into(),
            passed: false,
            message: "fidelity failed: 1 of 2 combos change the model's answers".into(),
            winner: None,
            p_best: None,
            established_winner: None,
            inconclusive: None,
            rows: [("attn=flash", true), ("kv=q4_0", false)]
                .into_iter()
                .map(|(c, ok)| Row {
                    combo: c.into(),
                    metric: "fidelity".into(),
                    trimmed_mean: if ok { 1.0 } else { 0.5 },
                    improvement: None,
                    improvement_ci: None,
                    yuen_p: None,
                    adjusted_p: None,
                    hedges_g: None,
                    mde: None,
                    reps: 8,
                    on_frontier: false,
                    note: String::new(),
                    fidelity: Some(fid(c, ok)),
                })
                .collect(),
        });
        let mut real = trial("vllm", "baseline", "baseline", true);
        real.measurement = Some("m2".into());
        let mut lost = trial("vllm", "kv=paged", "combo", true);
        lost.measurement = Some("gone".into());
        for t in [&base, &combo, &gate, &real, &lost] {
            dir.write_trial(t).expect("write trial");
        }
        for (k, v) in [("m0", None), ("m1", None), ("m2", Some("0.32.0"))] {
            let mut m = measurement(k, v);
            m.fingerprints = Some(record::Fingerprints {
                hardware_fingerprint: "hw-0123abcd".into(),
                ..Default::default()
            });
            if k == "m1" {
                m.cache_hit = Some(record::CacheHit {
                    from_run: "nightly-1".into(),
                    from_key: "m1".into(),
                    measured_unix_s: 0.0,
                });
            }
            record::write_json_atomic(&dir.measurement_path(k), &m).expect("write measurement");
        }
        let trials = dir.path.join("trials");
        std::fs::write(
            trials.join("truncated.json"),
            "{\"schema_version\": 1, \"na",
        )
        .expect("w");
        std::fs::write(trials.join("foreign.json"), "{\"hello\": \"world\"}").expect("w");
        std::fs::write(trials.join("notes.txt"), "not a record").expect("w");
        std::fs::write(dir.measurement_path("orphan"), "[1, 2").expect("w");
        dir
    }

    #[test]
    fn junit_for_a_hand_made_run_dir_matches_snapshot_and_schema() {
        let root = std::env::temp_dir().join(format!("l1-junit-{}", std::process::id()));
        let dir = fixture(&root);
        // The plan: the recorded trials were selected, three GPU trials ignored.
        let ignored = |leaf: &str| record::PlannedEntry {
            name: format!("gpu::s::vllm@1.0::m::l4::w::{leaf}"),
            status: record::PlanStatus::Ignored,
            ignored: Some("hardware `l4` is not present here".into()),
        };
        let mut trials: Vec<record::PlannedEntry> = ["baseline", "attn=flash", "gate"]
            .into_iter()
            .map(ignored)
            .collect();
        trials.extend(dir.trials().0.iter().map(|t| record::PlannedEntry {
            name: t.name.clone(),
            status: record::PlanStatus::Selected,
            ignored: None,
        }));
        dir.write_plan(
            "libtest-1",
            &record::PlanRecord {
                schema_version: record::RECORD_SCHEMA_VERSION,
                run_id: "fixture".into(),
                runner: "libtest".into(),
                pid: u32::MAX - 1,
                exe: String::new(),
                written_unix_s: 0.0,
                specs: "specs".into(),
                trials,
            },
        )
        .expect("write plan");
        let acc = l1_harness::accounting::Accounting::of(&dir);
        assert_eq!(acc.ignored_count(), 3);
        let (run, problems) = junit_run(&dir, &acc);
        // Every bad file is named, none is skipped silently.
        for f in [
            "trials/truncated.json",
            "trials/foreign.json",
            "trials/notes.txt",
            "measurements/orphan.json",
            "measurements/gone.json",
        ] {
            assert!(
                problems.iter().any(|p| p.starts_with(f)),
                "{f}: {problems:?}"
            );
        }
        let xml = l1_reports::junit::render_junit(&run).expect("render");
        let _ = std::fs::remove_dir_all(&root);
        assert!(xml.contains("<failure message=\"topk5 failed: the winner &lt;attn=flash&gt;"));
        // One skipped testcase per ignored trial, in its target's suite.
        assert_eq!(
            xml.matches("<skipped message=\"ignored: hardware `l4` is not present here")
                .count(),
            3,
            "{xml}"
        );
        assert!(!xml.contains('\u{1b}'));
        assert!(xml.contains("name=\"attn=flash.cache_hit\" value=\"true (run nightly-1, m1)\""));
        assert!(xml.contains("name=\"baseline.cache_hit\" value=\"false\""));
        assert!(xml.contains("name=\"hardware_fingerprint\" value=\"hw-0123abcd\""));
        // Fidelity: per combo pass/FAIL and its measures; fidelity rows are not a speed metric.
        for p in [
            "name=\"attn=flash.fidelity\" value=\"pass\"",
            "name=\"attn=flash.fidelity.exact_match\" value=\"1.000000\"",
            "name=\"attn=flash.fidelity.logprob_delta\" value=\"0.003200\"",
            "name=\"attn=flash.fidelity.topk_js\" value=\"0.000100\"",
            "name=\"kv=q4_0.fidelity\" value=\"FAIL\"",
            "name=\"kv=q4_0.fidelity.matched_prefix\" value=\"0.695000\"",
            "name=\"kv=q4_0.fidelity.failures\" value=\"matched_prefix 0.695 &lt; 0.750\"",
        ] {
            assert!(xml.contains(p), "{p} missing:\n{xml}");
        }
        assert!(!xml.contains(".fidelity.trimmed_mean"), "{xml}");
        l1_reports::junit::assert_snapshot(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../reports/tests/snapshots/run-dir.junit.xml"),
            &xml,
        );
        l1_reports::junit::assert_valid_junit(&xml);
    }
}
