//! `l1 validate`: check specs exactly as the harness would.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use l1_harness::expand;
use l1_harness::profiles::Catalogs;
use l1_harness::settings::Settings;
use l1_harness::spec;

use crate::common::context;

/// Spec files, or directories (every spec under them); default `L1_SPECS`, else `specs/`.
pub fn run(json: bool, root: &Path, specs: &[PathBuf]) -> Result<ExitCode> {
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
        specs.to_vec()
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
                if !json {
                    eprintln!("{d}");
                }
            }
        }
    }
    for f in &files {
        let res = spec::load(f, &ctx)
            .and_then(|ls| expand::expand(&ls, &cats).map(|ex| (ex.typed.tune().is_some(), ex)));
        match res {
            Ok((tune, ex)) => {
                // As the harness generates them: a sweep target is one test per combo
                // plus its baseline and gate; a tune target is one test.
                let n: usize = ex
                    .targets
                    .iter()
                    .map(|t| if tune { 1 } else { t.combo_count() + 2 })
                    .sum();
                report.push(serde_json::json!({"spec": f, "valid": true, "trials": n}));
                if !json {
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
                if !json {
                    eprintln!("{d}");
                }
            }
        }
    }
    if json {
        out!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(if bad > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
