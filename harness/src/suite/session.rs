//! Stored tune sessions planned again (`l1 tune resume`, `l1 tune status`): the session's
//! `::tune` trial in its own run, from the spec under `settings.specs` or the text the store kept.

use l1_store::{TuneSessionRow, TuneTrialRow};

use super::error::TrialError;
use super::plan::{PlannedTrial, plan_in_run};
use crate::settings::Settings;

/// The `::tune` trial of a stored session, planned in the session's run: the spec is found
/// under `settings.specs`, else rebuilt from the text the store recorded with the run.
pub fn plan_session(settings: &Settings, row: &TuneSessionRow) -> Result<PlannedTrial, TrialError> {
    let run_id = row.run_id.clone().ok_or_else(|| TrialError::NoRunId {
        session: row.session_id.clone(),
    })?;
    let mut settings = settings.clone();
    if crate::spec::find_by_name(&settings.specs, &row.spec).is_none() {
        let specs = crate::results::with_store(&settings.target_dir, |s| s.run_specs(&run_id))?;
        let Some((_, path, source, _)) = specs.into_iter().find(|s| s.0 == row.spec) else {
            return Err(TrialError::SessionSpecMissing {
                spec: row.spec.clone(),
                session: row.session_id.clone(),
                specs: settings.specs.clone(),
            });
        };
        let file = std::path::Path::new(&path)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{}.yaml", row.spec));
        let dir = settings
            .target_dir
            .join("l1")
            .join("tune")
            .join(&row.session_id);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(&file), source)?;
        settings.specs = dir;
    }
    let (trials, errors) = plan_in_run(&settings, Some(&row.spec), Some(&row.target), &run_id);
    if let Some((name, d)) = errors.into_iter().next() {
        return Err(TrialError::Plan {
            name,
            diagnostic: d,
        });
    }
    trials
        .into_iter()
        .find(|t| t.name.ends_with("::tune") && t.name.contains(&row.target))
        .ok_or_else(|| TrialError::NoTuneTrial {
            spec: row.spec.clone(),
            target: row.target.clone(),
        })
}

/// A stored session's status as JSON ([`crate::tuning::status_json`]), with its best point's
/// interval when the session's spec can still be planned.
pub fn session_status(
    settings: &Settings,
    row: &TuneSessionRow,
    trials: &[TuneTrialRow],
) -> Result<serde_json::Value, crate::tuning::SessionError> {
    let planned = plan_session(settings, row).ok();
    crate::tuning::status_json(
        row,
        trials,
        planned.as_ref().map(|t| t.plan.target.combos()),
    )
}
