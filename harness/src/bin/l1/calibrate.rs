//! `l1 calibrate`: measure this machine's noise for every target of a spec (within- and
//! between-launch variation) and record the reference the `drift` gate compares with.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use l1_harness::detect::Detected;
use l1_harness::expand;
use l1_harness::profiles::Catalogs;
use l1_harness::settings::Settings;
use l1_harness::spec;

use crate::common::context;

pub fn run(json: bool, root: &Path, path: &Path, launches: usize, reps: usize) -> Result<ExitCode> {
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
        // Only an engine whose noise is a model to fit (the sim) can be calibrated here.
        if !l1_engines::registry::engine(&t.id.engine).is_some_and(|e| e.calibratable()) {
            bail!(
                "{}: calibrating engine `{}` needs its launcher, which this build does not have",
                t.id,
                t.id.engine
            );
        }
        let fp = l1_harness::calibration::fingerprint(&t.id.hardware, &detected, &t.id.engine);
        let c = l1_harness::calibration::calibrate_sim(
            &cats.models[&t.id.model],
            &cats.hardware[&t.id.hardware],
            &cats.workloads[&t.id.workload],
            &t.id,
            &t.baseline,
            &fp,
            launches,
            reps,
            0,
        )
        .map_err(anyhow::Error::msg)?;
        let saved =
            l1_harness::calibration::save(&settings.target_dir, &c).map_err(anyhow::Error::msg)?;
        if !json {
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
    if json {
        out!("{}", serde_json::to_string_pretty(&out_rows)?);
    }
    Ok(ExitCode::SUCCESS)
}
