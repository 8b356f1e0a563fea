//! `l1 accuracy`: the decisions' error rates and power measured on the sim engine's known truth,
//! per cell of the published table, or over whole sweeps (`--sweep`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use l1_harness::profiles::Catalogs;

/// The command's options (see `l1 accuracy --help`).
pub struct Options<'a> {
    pub comparisons: usize,
    pub cells: Option<&'a str>,
    pub list: bool,
    pub seed: u64,
    pub threads: Option<usize>,
    pub reps: usize,
    pub sweep: bool,
    pub model: &'a str,
    pub hardware: &'a str,
    pub workload: Option<&'a str>,
}

pub fn run(json: bool, root: &Path, o: &Options<'_>) -> Result<ExitCode> {
    let Options {
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
    } = o;
    let (model, hardware) = (*model, *hardware);
    let cats = Catalogs::load(root).map_err(|d| anyhow::anyhow!("{d}"))?;
    let m = cats
        .models
        .get(model)
        .with_context(|| format!("unknown model `{model}`"))?;
    let h = cats
        .hardware
        .get(hardware)
        .with_context(|| format!("unknown hardware `{hardware}`"))?;
    let workload: String = workload.map(str::to_string).unwrap_or_else(|| {
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
        if json {
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
    if !json {
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
        if !json {
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
    if json {
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
