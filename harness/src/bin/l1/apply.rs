//! `l1 apply`: write each target's established winner of a stored run as the engine's launch
//! artifact (argv, env, config files) with provenance, for a deployment pipeline.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use l1_harness::profiles::Catalogs;
use l1_harness::record::{self, MeasurementRecord, TrialRecord};
use l1_harness::settings::Settings;
use l1_harness::suite::combo_slug;

use crate::common::open;

/// `l1 apply RUN [--out DIR]`: per target of the run, the winning combo (the gate's winner, else
/// the baseline) written as the engine's launch artifact with provenance.
pub fn run(
    json: bool,
    root: &Path,
    settings: &Settings,
    run: &str,
    out_dir: Option<&Path>,
    force: bool,
) -> Result<ExitCode> {
    let mut store = open(settings)?;
    let Some(run_row) = store.run(run)? else {
        store.delete_run(run)?; // phrases the unknown-run error with suggestions
        bail!("unknown run `{run}`");
    };
    let cats = Catalogs::load(root).map_err(|d| anyhow::anyhow!("{d}"))?;
    let trials = store.trials(run)?;
    let measurements: Vec<MeasurementRecord> = store
        .measurements(run)?
        .iter()
        .map(|m| serde_json::from_str(&m.record))
        .collect::<Result<_, _>>()
        .context("a stored measurement record does not parse")?;
    let out_dir = out_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| settings.target_dir.join("l1").join("apply").join(run));
    let mut written = Vec::new();
    let mut skipped = Vec::new();
    for t in trials.iter().filter(|t| t.kind == "gate") {
        let rec: TrialRecord = serde_json::from_str(&t.record)
            .with_context(|| format!("stored trial {} does not parse", t.name))?;
        let of_target: Vec<&MeasurementRecord> = measurements
            .iter()
            .filter(|m| m.target == rec.target && m.spec == rec.spec && m.error.is_none())
            .collect();
        // Only a winner a gate that tests for improvement established is applied; anything
        // else (pareto/regression/manual only, a failed or inconclusive improvement gate)
        // is explained and written only with --force.
        let headline = l1_harness::headline::headline(&rec.gates);
        let established = l1_harness::headline::established_winner(&rec.gates).is_some();
        if rec.passed && !established && !force {
            let best = headline.winner.as_deref().unwrap_or("the baseline");
            skipped.push(format!(
                "{}: no established winner: {}{}; nothing written (`l1 apply --force` writes {best} anyway)",
                t.name,
                l1_harness::headline::why_not_established(&rec.gates),
                headline
                    .inconclusive
                    .as_deref()
                    .map(|i| format!("; inconclusive — {i}"))
                    .unwrap_or_default(),
            ));
            continue;
        }
        let winner_label = rec.gates.iter().find_map(|g| g.winner.clone());
        let chosen = match &winner_label {
            Some(label) => of_target
                .iter()
                .find(|m| combo_slug(&cats, &m.combo) == *label)
                .copied(),
            None => of_target
                .iter()
                .find(|m| m.measured_by.ends_with("::baseline"))
                .copied(),
        };
        let Some(chosen) = chosen else {
            skipped.push(format!(
                "{}: no measurement of the winner `{}` in the run",
                t.name,
                winner_label.as_deref().unwrap_or("baseline")
            ));
            continue;
        };
        if !rec.passed {
            skipped.push(format!(
                "{}: the gate failed; nothing is applied from a failed gate",
                t.name
            ));
            continue;
        }
        if chosen.simulated {
            skipped.push(format!(
                "{}: simulated results (sim engine): there is no engine to configure",
                t.name
            ));
            continue;
        }
        let slug = format!("{}--{}", rec.spec, rec.target)
            .replace("::", "--")
            .replace(['/', '@', ' '], "_");
        let dir = out_dir.join(slug);
        let artifact = launch_artifact(&cats, settings, chosen)?;
        std::fs::create_dir_all(dir.join("files"))
            .with_context(|| format!("failed to create {}", dir.display()))?;
        for (rel, content) in &artifact.files {
            let p = dir.join("files").join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&p, content)
                .with_context(|| format!("failed to write {}", p.display()))?;
        }
        let provenance = serde_json::json!({
            "run_id": run,
            "spec": rec.spec,
            "target": rec.target.to_string(),
            "combo": chosen.combo,
            "combo_slug": combo_slug(&cats, &chosen.combo),
            "chosen_by": if established {
                format!("established winner ({})", l1_reports::verdict::IMPROVEMENT_GATES.join(", "))
            } else {
                format!(
                    "forced (--force): {} not established: {}",
                    winner_label.as_deref().unwrap_or("baseline"),
                    l1_harness::headline::why_not_established(&rec.gates)
                )
            },
            "established": established,
            "change_vs_baseline_pct": headline.change_pct,
            "interval_pct": headline.interval_pct,
            "p_best": headline.p_best,
            "measurement": chosen.key,
            "reps": chosen.reps.len(),
            "engine_version": chosen.engine_version,
            "catalog_snapshot": chosen.catalog_snapshot,
            "harness_version": chosen.harness_version,
            "hardware": run_row.run.hardware,
            "hardware_fingerprint": run_row.run.hardware_fingerprint,
            "measured_unix_s": chosen.started_unix_s,
        });
        let launch = serde_json::json!({
            "engine": rec.target.engine,
            "program": artifact.program,
            "args": artifact.args,
            "env": artifact.env,
            "files": artifact.files.keys().collect::<Vec<_>>(),
            "settings": artifact.settings,
            "notes": artifact.notes,
            "provenance": provenance,
        });
        record::write_json_atomic(&dir.join("launch.json"), &launch).map_err(anyhow::Error::msg)?;
        let mut sh = String::from("#!/bin/sh\n");
        sh.push_str(&format!(
            "# Written by `l1 apply {run}`: {} for {}.\n# Config files are under files/ (relative to the working directory the engine starts in).\n",
            combo_slug(&cats, &chosen.combo),
            rec.target
        ));
        for n in &artifact.notes {
            sh.push_str(&format!("# {n}\n"));
        }
        for (k, v) in &artifact.env {
            sh.push_str(&format!("export {k}={}\n", shell_quote(v)));
        }
        if !artifact.program.is_empty() {
            sh.push_str("exec ");
            sh.push_str(&shell_quote(&artifact.program));
            for a in &artifact.args {
                sh.push(' ');
                sh.push_str(&shell_quote(a));
            }
            sh.push_str(" \"$@\"\n");
        }
        std::fs::write(dir.join("launch.sh"), sh)?;
        written.push((t.name.clone(), dir));
    }
    if json {
        out!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "run_id": run,
                "written": written.iter().map(|(t, d)| serde_json::json!({"gate": t, "dir": d.display().to_string()})).collect::<Vec<_>>(),
                "skipped": skipped,
            }))?
        );
    } else {
        for (t, d) in &written {
            out!("{t}: wrote {}/launch.sh and launch.json", d.display());
        }
        for s in &skipped {
            out!("skipped {s}");
        }
    }
    Ok(if written.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

struct Artifact {
    program: String,
    args: Vec<String>,
    env: BTreeMap<String, String>,
    files: BTreeMap<String, String>,
    settings: serde_json::Value,
    notes: Vec<String>,
}

/// The port written into applied launch commands (the deployment changes it as it needs).
const APPLY_PORT: u16 = 8000;

fn launch_artifact(
    cats: &Catalogs,
    settings: &Settings,
    m: &MeasurementRecord,
) -> Result<Artifact> {
    let id = &m.target;
    let model = cats
        .models
        .get(&id.model)
        .with_context(|| format!("model `{}` is not in the catalog", id.model))?;
    let hardware = cats
        .hardware
        .get(&id.hardware)
        .with_context(|| format!("hardware `{}` is not in the catalog", id.hardware))?;
    let workload = cats
        .workloads
        .get(&id.workload)
        .with_context(|| format!("workload `{}` is not in the catalog", id.workload))?;
    let run_dir = std::env::temp_dir();
    let target = l1_engines::launch::LaunchTarget {
        engines_dir: &settings.engines_dir,
        model_name: &id.model,
        model,
        hardware,
        workload,
        combo: &m.combo,
        version: &id.version,
        run_dir: &run_dir,
        tag: "apply".into(),
        state_dir: &run_dir,
        cuda_visible_devices: None,
        seed: m.seed,
        launch: 0,
        startup_timeout: None,
    };
    // The engine table says what a deployment of the combo runs: a server's command line, or
    // the settings of an in-process engine.
    let engine = l1_engines::registry::engine(&id.engine)
        .with_context(|| format!("engine `{}` has no translator in this build", id.engine))?;
    let d = engine
        .deployment(&target, APPLY_PORT)
        .map_err(|e| anyhow::anyhow!("translating the winner for {}: {e}", id))?;
    // An in-process engine has no program: the artifact carries its settings only.
    let (program, args, env, files) = match d.command {
        Some(c) => (c.program.display().to_string(), c.args, c.env, c.files),
        None => Default::default(),
    };
    Ok(Artifact {
        program,
        args,
        env,
        files,
        settings: d.settings,
        notes: d.notes,
    })
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
