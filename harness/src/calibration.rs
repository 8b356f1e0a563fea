//! Calibration: repeat a target's baseline over several launches and record what this machine
//! shows — the within-launch (rep-to-rep) and between-launch coefficients of variation, which
//! become the noise floor and the launch component of comparisons, and the baseline's metrics,
//! which the `drift` gate compares later measurements with.
//!
//! Records live in `<target>/l1/calibration/<key>.json`, keyed by a simple hardware fingerprint
//! (the declared profile, the detected GPUs or CPU model, and the engine), the target and the
//! combo. The store issue moves them into the database.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use l1_engines::sim::{self, SimTarget};
use l1_engines::{Combo, HardwareProfile, ModelProfile, Workload};

use crate::detect::Detected;
use crate::model::TargetId;
use crate::record::{self, RecordError, short_hash};
use crate::stats::{self, StatsError};

/// Why a calibration could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("calibration needs at least 2 launches of at least 2 reps, got {launches} × {reps}")]
    TooSmall { launches: usize, reps: usize },
    /// The simulated engine refused the launch or a rep.
    #[error("{0}")]
    Sim(String),
    #[error("metric `{0}` is not finite in a calibration rep")]
    NonFinite(String),
    #[error(transparent)]
    Stats(#[from] StatsError),
    #[error(transparent)]
    Record(#[from] RecordError),
}

impl From<CalibrationError> for String {
    fn from(e: CalibrationError) -> Self {
        e.to_string()
    }
}

pub use crate::model::Calibration;

/// A simple hardware fingerprint: the declared profile, what was detected, and the engine.
pub fn fingerprint(hardware: &str, detected: &Detected, engine: &str) -> String {
    let found = if detected.gpus.is_empty() {
        detected.cpu_model.clone()
    } else {
        detected.gpus.join("+")
    };
    format!("{hardware}|{found}|{}c|{engine}", detected.cpu_cores)
}

/// Where the calibration of `combo` on `target` under `fingerprint` is kept.
pub fn path(target_dir: &Path, fingerprint: &str, target: &TargetId, combo: &Combo) -> PathBuf {
    let key = short_hash(&format!("{fingerprint}|{target}|{}", combo.canonical()), 20);
    target_dir
        .join("l1")
        .join("calibration")
        .join(format!("{key}.json"))
}

/// Read a calibration if one is recorded.
pub fn load(
    target_dir: &Path,
    fingerprint: &str,
    target: &TargetId,
    combo: &Combo,
) -> Result<Option<Calibration>, CalibrationError> {
    Ok(record::read_json(&path(
        target_dir,
        fingerprint,
        target,
        combo,
    ))?)
}

/// Calibrate a simulated target: `launches` launches × `reps` reps of `combo`.
#[allow(clippy::too_many_arguments)]
pub fn calibrate_sim(
    model: &ModelProfile,
    hardware: &HardwareProfile,
    workload: &Workload,
    target: &TargetId,
    combo: &Combo,
    fingerprint: &str,
    launches: usize,
    reps: usize,
    seed: u64,
) -> Result<Calibration, CalibrationError> {
    if launches < 2 || reps < 2 {
        return Err(CalibrationError::TooSmall { launches, reps });
    }
    let t = SimTarget {
        model,
        hardware,
        workload,
    };
    let mut per_launch: Vec<Vec<l1_engines::Metrics>> = Vec::new();
    for l in 0..launches as u64 {
        let mut launch = sim::launch(
            &t,
            combo,
            seed.wrapping_add(l).wrapping_mul(0x2545_F491_4F6C_DD1D),
        )
        .map_err(|e| CalibrationError::Sim(e.to_string()))?;
        per_launch.push(
            (0..reps as u32)
                .map(|i| {
                    launch
                        .rep(i)
                        .map_err(|e| CalibrationError::Sim(e.to_string()))
                })
                .collect::<Result<_, _>>()?,
        );
    }
    let mut cv_within = BTreeMap::new();
    let mut cv_between = BTreeMap::new();
    let mut trimmed_mean = BTreeMap::new();
    for info in l1_engines::METRICS {
        let name = info.name;
        let groups: Vec<Vec<f64>> = per_launch
            .iter()
            .map(|l| {
                l.iter()
                    .map(|r| r.get(name).copied().unwrap_or(f64::NAN))
                    .collect()
            })
            .collect();
        let all: Vec<f64> = groups.iter().flatten().copied().collect();
        if all.iter().any(|v| !v.is_finite()) {
            return Err(CalibrationError::NonFinite(name.to_string()));
        }
        let grand = all.iter().sum::<f64>() / all.len() as f64;
        if grand == 0.0 {
            continue;
        }
        let means: Vec<f64> = groups
            .iter()
            .map(|g| g.iter().sum::<f64>() / g.len() as f64)
            .collect();
        let within_var = groups
            .iter()
            .zip(&means)
            .map(|(g, m)| g.iter().map(|v| (v - m).powi(2)).sum::<f64>())
            .sum::<f64>()
            / (all.len() - groups.len()) as f64;
        let var_means =
            means.iter().map(|m| (m - grand).powi(2)).sum::<f64>() / (means.len() - 1) as f64;
        let between_var = (var_means - within_var / reps as f64).max(0.0);
        cv_within.insert(name.to_string(), within_var.sqrt() / grand.abs());
        cv_between.insert(name.to_string(), between_var.sqrt() / grand.abs());
        trimmed_mean.insert(name.to_string(), stats::trimmed_mean(&all, 0.10)?);
    }
    Ok(Calibration {
        schema_version: 1,
        fingerprint: fingerprint.to_string(),
        target: target.clone(),
        combo: combo.clone(),
        launches,
        reps_per_launch: reps,
        cv_within,
        cv_between,
        trimmed_mean,
        measured_unix_s: record::now_unix(),
        simulated: true,
    })
}

/// Write a calibration where [`load`] finds it.
pub fn save(target_dir: &Path, c: &Calibration) -> Result<PathBuf, CalibrationError> {
    let p = path(target_dir, &c.fingerprint, &c.target, &c.combo);
    record::write_json_atomic(&p, c)?;
    Ok(p)
}
