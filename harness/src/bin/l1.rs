//! `l1`: validate and preview specs, manage catalog snapshots, summarize runs.
//!
//! Exit codes: 0 success, 1 a spec or catalog is invalid (diagnostics on stderr), 2 usage or I/O
//! error.

use std::collections::BTreeMap;
use std::path::PathBuf;
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
    /// Repository root (holds catalogs/ and specs/).
    #[arg(long, env = "L1_ROOT", default_value = ".")]
    root: PathBuf,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check specs exactly as the harness would (default: every spec under specs/).
    Validate { specs: Vec<PathBuf> },
    /// How many combos each mode would run for a spec, which ones, and what the rules rejected.
    Preview {
        spec: PathBuf,
        /// List every selected combo.
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
    /// Summarize a run's records (default: the newest run).
    Report { run: Option<String> },
    /// Measure the comparison procedure's false-positive rate and power on the sim engine's known
    /// truth (fixed seeds: reproducible).
    Accuracy {
        /// Comparisons per scenario.
        #[arg(long, default_value_t = 2000)]
        comparisons: usize,
        /// Reps per arm.
        #[arg(long, default_value_t = 7)]
        reps: usize,
        /// Engine launches per arm (reps spread over them).
        #[arg(long, default_value_t = 1)]
        launches: usize,
        /// Measure the group-sequential design instead: early termination between MIN and MAX
        /// reps (e.g. `--sequential 3,15`).
        #[arg(long, value_name = "MIN,MAX")]
        sequential: Option<String>,
        /// Measure whole sweeps instead: how often the winner is the true best, and its regret.
        #[arg(long)]
        sweep: bool,
        #[arg(long, default_value = "llama-3.1-8b")]
        model: String,
        #[arg(long, default_value = "h100-sxm")]
        hardware: String,
        #[arg(long, default_value = "interactive-single")]
        workload: String,
    },
}

#[derive(Subcommand)]
enum CatalogAction {
    /// Print the catalog's version, snapshot id, dimensions and rules.
    Show,
    /// Record the current catalog as the snapshot of its version (after bumping `version`).
    Snapshot,
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
    let detected = Detected::detect(&cats.hardware);
    RenderContext {
        hardware: detected.context(),
        catalog: cats
            .kernels
            .catalog
            .dimensions
            .iter()
            .map(|(k, d)| (k.clone(), d.values.clone()))
            .collect(),
        env: RenderContext::env_from_process(),
    }
}

fn run(cli: &Cli) -> Result<ExitCode> {
    let root = &cli.root;
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
            let files = if specs.is_empty() {
                spec::discover(&root.join("specs")).map_err(|d| anyhow::anyhow!("{d}"))?
            } else {
                specs.clone()
            };
            let mut bad = 0;
            let mut report = Vec::new();
            for f in &files {
                let res = spec::load(f, &ctx).and_then(|ls| expand::expand(&ls, &cats));
                match res {
                    Ok(ex) => {
                        let n: usize = ex.targets.iter().map(|t| t.combos.len() + 2).sum();
                        report.push(serde_json::json!({"spec": f, "valid": true, "trials": n}));
                        if !cli.json {
                            out!("ok    {} ({n} trials)", f.display());
                        }
                    }
                    Err(d) => {
                        bad += 1;
                        report.push(
                            serde_json::json!({"spec": f, "valid": false, "error": d.to_string()}),
                        );
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
                    out.push(serde_json::json!({
                        "mode": format!("{mode:?}").to_lowercase(),
                        "target": t.id.to_string(),
                        "selected": t.combos.len(),
                        "legal": t.legal,
                        "rejected": rejected,
                        "combos": t.combos.iter().map(|c| combo_slug(&cats, c)).collect::<Vec<_>>(),
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
                        for c in o["combos"].as_array().into_iter().flatten() {
                            out!("           {}", c.as_str().unwrap_or(""));
                        }
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
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
            reps,
            launches,
            sequential,
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
            let w = cats
                .workloads
                .get(workload)
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
            if let Some(spec) = sequential {
                let (lo, hi) = spec
                    .split_once(',')
                    .and_then(|(a, b)| {
                        Some((
                            a.trim().parse::<usize>().ok()?,
                            b.trim().parse::<usize>().ok()?,
                        ))
                    })
                    .filter(|(a, b)| *a >= 3 && a <= b)
                    .with_context(|| {
                        format!(
                            "--sequential {spec}: expected MIN,MAX with 3 <= MIN <= MAX, e.g. 3,15"
                        )
                    })?;
                let mut rows = Vec::new();
                if !cli.json {
                    out!(
                        "{comparisons} comparisons per scenario, group-sequential: looks at {:?} reps (Pocock per-look level {:.4}), baseline at {hi} reps, one launch per arm",
                        l1_harness::stats::planned_looks(lo, hi),
                        l1_harness::stats::pocock_level(
                            0.05,
                            l1_harness::stats::planned_looks(lo, hi).len()
                        )
                    );
                    out!(
                        "{:<13} {:>12} {:>8} {:>10} {:>8} {:>10}",
                        "noise",
                        "true effect",
                        "yuen",
                        "mean reps",
                        "gate",
                        "mean reps"
                    );
                }
                for noise in ["normal", "lognormal", "contaminated"] {
                    for effect in [0.0, 1.0, 2.0, 3.0] {
                        let o = l1_harness::accuracy::run_sequential(
                            &sim_target,
                            noise,
                            effect,
                            (lo, hi),
                            *comparisons,
                            42,
                        )
                        .map_err(anyhow::Error::msg)?;
                        if !cli.json {
                            out!(
                                "{:<13} {:>12} {:>7.1}% {:>10.1} {:>7.1}% {:>10.1}",
                                noise,
                                format!("{effect}× floor"),
                                o.yuen * 100.0,
                                o.yuen_mean_reps,
                                o.gate * 100.0,
                                o.gate_mean_reps
                            );
                        }
                        rows.push(o);
                    }
                }
                if cli.json {
                    out!("{}", serde_json::to_string_pretty(&rows)?);
                }
                return Ok(ExitCode::SUCCESS);
            }
            let mut rows = Vec::new();
            if !cli.json {
                out!(
                    "{comparisons} comparisons per scenario, {reps} reps over {launches} launch(es) per arm (launch cv {}, noise floor {}), α = 0.05",
                    h.launch_cv,
                    h.noise_floor_cv
                );
                out!(
                    "{:<13} {:>12} {:>15} {:>8} {:>8} {:>14}",
                    "noise",
                    "true effect",
                    "yuen reps-only",
                    "yuen",
                    "gate",
                    "welch-trimmed"
                );
            }
            for noise in ["normal", "lognormal", "contaminated"] {
                for effect in [0.0, 1.0, 2.0, 3.0] {
                    let sc = l1_harness::accuracy::Scenario {
                        noise,
                        effect_floors: effect,
                        reps: *reps,
                        launches: *launches,
                    };
                    let o = l1_harness::accuracy::run(m, h, w, &sc, *comparisons, 42)
                        .map_err(anyhow::Error::msg)?;
                    if !cli.json {
                        out!(
                            "{:<13} {:>12} {:>14.1}% {:>7.1}% {:>7.1}% {:>13.1}%",
                            noise,
                            format!("{effect}× floor"),
                            o.yuen_reps_only * 100.0,
                            o.yuen * 100.0,
                            o.gate * 100.0,
                            o.welch_trimmed * 100.0
                        );
                    }
                    rows.push(o);
                }
            }
            if cli.json {
                out!("{}", serde_json::to_string_pretty(&rows)?);
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
        Command::Report { run } => {
            let settings = Settings::from_env(root);
            let runs_dir = settings.target_dir.join("l1").join("runs");
            let id = match run {
                Some(r) => r.clone(),
                None => newest_run(&runs_dir)
                    .with_context(|| format!("no runs under {}", runs_dir.display()))?,
            };
            let dir = RunDir::new(&settings.target_dir, &id);
            if !dir.path.is_dir() {
                bail!("unknown run `{id}` (no directory {})", dir.path.display());
            }
            // Ignored trials write no records; nextest's list phase recorded their reasons.
            let ignored: BTreeMap<String, usize> =
                record::read_json(&dir.path.join("ignored.json"))
                    .map_err(anyhow::Error::msg)?
                    .unwrap_or_default();
            let summary = harness::summarize(&dir, &ignored);
            record::write_json_atomic(&dir.path.join("summary.json"), &summary)
                .map_err(anyhow::Error::msg)?;
            if cli.json {
                out!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                out!("{}", l1_reports::render_table(&summary).trim_end());
            }
            Ok(
                if summary.trials_failed > 0 || !summary.unreadable.is_empty() {
                    ExitCode::from(1)
                } else {
                    ExitCode::SUCCESS
                },
            )
        }
    }
}

fn newest_run(dir: &std::path::Path) -> Option<String> {
    let mut runs: Vec<(std::time::SystemTime, String)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            Some((
                e.metadata().ok()?.modified().ok()?,
                e.file_name().to_string_lossy().into_owned(),
            ))
        })
        .collect();
    runs.sort();
    runs.pop().map(|(_, n)| n)
}
