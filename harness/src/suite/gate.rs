//! The `gate` trial: every combo against the baseline under the spec's gates, with the noise
//! floor from the spec or this machine's calibration, and `regression` and `pareto` against
//! stored results.

use std::collections::BTreeMap;

use l1_engines::Combo;

use super::error::TrialError;
use super::names::combo_slug;
use super::plan::PlannedTrial;
use super::trial::Outcome;
use crate::gates::{self, Arm, GateContext};
use crate::record::MeasurementRecord;
use crate::spec::{Gate, GateMethod};

impl PlannedTrial {
    /// A `regression` gate `against: stored`: each combo (and the baseline) against its own
    /// newest measurement in a run labelled `label` (default `main`) with the same cache key.
    /// Passes with a note when nothing is stored to compare with (the first run on main).
    fn stored_regression(
        &self,
        g: &Gate,
        ctx: &GateContext,
    ) -> Result<gates::GateVerdict, TrialError> {
        let p = &self.plan;
        let label = g.label.clone().unwrap_or_else(|| "main".into());
        let parts = p.parts().map_err(|source| TrialError::NoCacheKey {
            trial: self.name.clone(),
            source,
        })?;
        let mut combos: Vec<&Combo> = vec![&p.target.baseline];
        combos.extend(
            p.target
                .combos()
                .iter()
                .filter(|c| **c != p.target.baseline),
        );
        let as_baseline = Gate {
            against: None,
            label: None,
            ..g.clone()
        };
        let (mut compared, mut missing, mut failed) = (Vec::new(), Vec::new(), Vec::new());
        let mut rows = Vec::new();
        let mut checks = Vec::new();
        for combo in combos {
            let (rec, _) = self.obtain(combo)?;
            let slug = combo_slug(&p.cats, combo);
            if rec.error.is_some() {
                continue;
            }
            let key = parts.for_combo(combo).cache_key;
            let stored = crate::results::with_store(&p.settings_target_dir, |s| {
                s.stored_measurement(&label, &key, &p.run.run_id)
            })?;
            let Some(stored) = stored else {
                missing.push(slug);
                continue;
            };
            // Same cache key, same plan: the stored reps were spread over as many launches.
            let base = Arm {
                launches: rec.launches.max(1) as usize,
                label: format!("{label} (run {})", stored.run_id),
                reps: stored.reps.clone(),
            };
            let now = Arm {
                launches: rec.launches.max(1) as usize,
                label: slug.clone(),
                reps: rec.reps.clone(),
            };
            let v = gates::evaluate(&as_baseline, ctx, &base, &[now]).map_err(|source| {
                TrialError::StoredGate {
                    trial: self.name.clone(),
                    slug: slug.clone(),
                    label: label.clone(),
                    source,
                }
            })?;
            let detail = v
                .message
                .split_once("); ")
                .map_or(v.message.as_str(), |x| x.1)
                .to_string();
            if v.passed {
                compared.push(format!("{slug} vs run {}: {detail}", stored.run_id));
            } else {
                failed.push(format!("{slug} vs run {}: {detail}", stored.run_id));
            }
            rows.extend(v.rows);
            checks.extend(v.checks.into_iter().map(|c| gates::RegressionCheck {
                combo: Some(slug.clone()),
                against_run: Some(stored.run_id.clone()),
                ..c
            }));
        }
        let passed = failed.is_empty();
        // Under non-inferiority a failed combo is one not shown to be within ε, which is not
        // evidence that it regressed.
        let failed_word = match g.form.unwrap_or_default() {
            crate::spec::RegressionForm::FailOnRegression => "regressed",
            crate::spec::RegressionForm::NonInferiority => "not shown within ε",
        };
        let mut message = format!(
            "regression against stored `{label}` results {}: {} combos compared, {} {failed_word}, {} without a stored measurement of the same key",
            if passed { "passed" } else { "FAILED" },
            compared.len() + failed.len(),
            failed.len(),
            missing.len()
        );
        for l in failed.iter().chain(&compared) {
            message.push_str(&format!("\n    {l}"));
        }
        if !missing.is_empty() {
            message.push_str(&format!(
                "\n    nothing stored for: {} (no run labelled `{label}` measured them with this engine version, model, hardware, workload and plan; set L1_RUN_LABEL={label} on the runs that serve as the reference)",
                missing.join(", ")
            ));
        }
        Ok(gates::GateVerdict {
            method: GateMethod::Regression.to_string(),
            passed,
            message,
            winner: None,
            p_best: None,
            rows,
            established_winner: None,
            inconclusive: None,
            checks,
        })
    }

    /// A `pareto` gate `against: stored`: the frontier of the newest run labelled `label`
    /// (default `main`) that measured this target under the same cache-key parts, point by point
    /// against the combos measured now (`gates::frontier`). Fails, saying so, when no such run
    /// is stored: a pull request has nothing to be judged against.
    fn stored_pareto(
        &self,
        g: &Gate,
        ctx: &GateContext,
        now: &[Arm],
    ) -> Result<gates::GateVerdict, TrialError> {
        let p = &self.plan;
        let label = g.label.clone().unwrap_or_else(|| "main".into());
        let parts = p.parts().map_err(|source| TrialError::NoCacheKey {
            trial: self.name.clone(),
            source,
        })?;
        let id = &p.target.id;
        let rows = crate::results::with_store(&p.settings_target_dir, |s| {
            s.labelled_target_measurements(
                &label,
                &p.run.run_id,
                [&id.engine, &id.model, &id.hardware, &id.workload],
            )
        })?;
        // Same cache key: the stored row's combo under this run's target-wide parts.
        let same_key = |r: &l1_store::MeasurementRow| {
            r.parts
                .as_ref()
                .is_some_and(|k| k.cache_key == parts.cache_key(&r.combo_hash))
        };
        let run = rows.iter().find(|r| same_key(r)).map(|r| r.run_id.clone());
        let Some(run) = run else {
            return Ok(gates::GateVerdict {
                method: GateMethod::Pareto.to_string(),
                passed: false,
                message: format!(
                    "pareto against stored `{label}` results FAILED: no run labelled `{label}` has measured this target with this engine version, model, hardware, workload and plan, so there is no frontier to compare with (set L1_RUN_LABEL={label} on the runs that serve as the reference, e.g. every run of the main branch)"
                ),
                winner: None,
                p_best: None,
                rows: Vec::new(),
                established_winner: None,
                inconclusive: None,
                checks: Vec::new(),
            });
        };
        let mut seen = std::collections::BTreeSet::new();
        let stored: Vec<Arm> = rows
            .iter()
            .filter(|r| r.run_id == run && same_key(r) && seen.insert(r.combo_hash.clone()))
            .map(|r| {
                let rec = serde_json::from_str::<MeasurementRecord>(&r.record).ok();
                Arm {
                    launches: rec
                        .as_ref()
                        .map_or(p.spec.measure.launches as usize, |m| m.launches as usize)
                        .max(1),
                    label: rec
                        .as_ref()
                        .map_or_else(|| r.combo.clone(), |m| combo_slug(&p.cats, &m.combo)),
                    reps: r.reps.clone(),
                }
            })
            .collect();
        let loss = gates::frontier::frontier_loss(g, ctx, &stored, now).map_err(|source| {
            TrialError::StoredGate {
                trial: self.name.clone(),
                slug: "the stored frontier".into(),
                label: label.clone(),
                source,
            }
        })?;
        Ok(loss.verdict(g, &format!("`{label}` results (run {run})"), stored.len()))
    }

    pub(super) fn gate(&self) -> Result<Outcome, TrialError> {
        let p = &self.plan;
        // Whatever this trial has to measure itself (a partitioned run put the combo trials
        // elsewhere, or they have not run yet), it measures with the baseline's and the combos'
        // launches interleaved, so a drift of the machine over time does not favour one arm.
        // Only where each rep depends on nothing but its seed, launch and index (a simulated
        // engine) are the records the same whichever trial measures them.
        if p.spec.measure.sequential().is_none() && p.simulated() {
            let mut all = vec![p.target.baseline.clone()];
            all.extend(p.target.combos().iter().cloned());
            self.measure_interleaved(&all)?;
        }
        let (base, _) = self.obtain(&p.target.baseline)?;
        if let Some(err) = &base.error {
            return Err(TrialError::BaselineFailed {
                trial: self.name.clone(),
                why: err.clone(),
            });
        }
        let mut arms = Vec::new();
        let mut failed = Vec::new();
        let mut probed = Vec::new();
        for combo in p.target.combos() {
            let (rec, _) = self.obtain(combo)?;
            let label = combo_slug(&p.cats, combo);
            if rec.error.is_none() {
                probed.push((label.clone(), rec.clone()));
            }
            match &rec.error {
                Some(e) => failed.push(format!("{label}: {e}")),
                None => arms.push(Arm {
                    launches: rec.launches.max(1) as usize,
                    label,
                    reps: rec.reps.clone(),
                }),
            }
        }
        // When the baseline is itself a combo of the space, its arm carries that combo's label,
        // so the gates know it is the baseline and never test it against itself.
        let baseline = Arm {
            launches: base.launches.max(1) as usize,
            label: if p.target.combos().contains(&p.target.baseline) {
                combo_slug(&p.cats, &p.target.baseline)
            } else {
                "baseline".into()
            },
            reps: base.reps.clone(),
        };
        // Noise floor and launch variation: the spec's override, else this machine's recorded
        // calibration of the baseline, else the hardware profile.
        let calibration = crate::calibration::load(
            &p.settings_target_dir,
            &p.fingerprint,
            &p.target.id,
            &p.target.baseline,
        )
        .map_err(|source| TrialError::Calibration {
            trial: self.name.clone(),
            source,
        })?;
        let primary = p
            .spec
            .gates
            .first()
            .and_then(|g| g.metric.as_ref().map(|m| m.value.clone()))
            .unwrap_or_else(|| "output_tokens_per_s".into());
        let calibrated = |map: fn(&crate::calibration::Calibration) -> &BTreeMap<String, f64>| {
            calibration
                .as_ref()
                .and_then(|c| map(c).get(&primary).copied())
        };
        let ctx = GateContext {
            trim: p.spec.measure.trim,
            noise_floor: p
                .spec
                .measure
                .noise_floor
                .or_else(|| calibrated(|c| &c.cv_within))
                .unwrap_or(p.hardware.noise_floor_cv),
            launch_cv: p
                .spec
                .measure
                .launch_cv
                .or_else(|| calibrated(|c| &c.cv_between))
                .unwrap_or(p.hardware.launch_cv),
            calibration: calibration.clone(),
            looks: p.spec.measure.sequential().map_or(1, |(lo, hi)| {
                crate::stats::planned_looks(lo as usize, hi as usize).len()
            }),
        };
        // Output fidelity against the baseline's probe answers (crate::fidelity).
        let probed: Vec<(String, &MeasurementRecord)> =
            probed.iter().map(|(l, r)| (l.clone(), r)).collect();
        let fidelity = crate::fidelity::report_for(&p.spec.gates, &base, &probed);
        // Gates `against: stored` (`regression`, `pareto`) compare with the results store.
        let (stored, here): (Vec<Gate>, Vec<Gate>) = p
            .spec
            .gates
            .iter()
            .cloned()
            .partition(|g| g.against.as_deref() == Some("stored"));
        let mut verdicts = if here.is_empty() {
            Vec::new()
        } else {
            gates::evaluate_all(&here, &ctx, &baseline, &arms, fidelity.as_ref()).map_err(
                |source| TrialError::Gates {
                    trial: self.name.clone(),
                    source,
                },
            )?
        };
        for g in &stored {
            if g.method == GateMethod::Pareto {
                // The combos measured now, the baseline among them.
                let mut now = arms.clone();
                if !now.iter().any(|a| a.label == baseline.label) {
                    now.push(baseline.clone());
                }
                verdicts.push(self.stored_pareto(g, &ctx, &now)?);
            } else {
                verdicts.push(self.stored_regression(g, &ctx)?);
            }
        }
        // Where the known launch-to-launch component came from (gates print its value).
        let launch_cv_source = if p.spec.measure.launch_cv.is_some() {
            "the spec's `measure.launch_cv`"
        } else if calibrated(|c| &c.cv_between).is_some() {
            "this machine's calibration (`l1 calibrate`, between-launch CV of the baseline)"
        } else {
            "the hardware profile's `launch_cv` (catalogs/hardware.yaml; a starting point, not a measurement: run `l1 calibrate`)"
        };
        for v in &mut verdicts {
            if !matches!(
                v.method.parse(),
                Ok(GateMethod::Drift | GateMethod::Fidelity)
            ) {
                v.message.push_str(&format!(
                    "\n  σ_b = {:.2} % from {launch_cv_source}",
                    ctx.launch_cv * 100.0
                ));
            }
        }
        let passed = verdicts.iter().all(|v| v.passed);
        let sim_tag = if base.simulated { " [simulated]" } else { "" };
        let mut message = format!(
            "{}: {}{sim_tag}: {} combos compared with the baseline ({} of {} legal combos selected, {} rejected by rules)",
            self.name,
            if passed {
                "gates passed"
            } else {
                "gates FAILED"
            },
            arms.len(),
            p.target.combo_count(),
            p.target.legal,
            p.target.rejected_at.len()
        );
        if !failed.is_empty() {
            message.push_str(&format!(
                "\n  {} combos failed to measure and were excluded: {}",
                failed.len(),
                failed.join("; ")
            ));
        }
        for v in &verdicts {
            message.push('\n');
            message.push_str(&v.message);
        }
        Ok(Outcome {
            passed,
            message,
            measurement: None,
            verdicts,
            simulated: base.simulated,
            cache_hit: false,
        })
    }
}
