//! The scenario API the older tests use (one seed per call, rates without intervals) and the
//! sequential scenario.

use l1_engines::sim::{self, NoiseModel, SimTarget};
use l1_engines::{Combo, HardwareProfile, ModelProfile, Workload};
use serde::Serialize;

use crate::stats;

use super::{AccuracyError, noise_model, per_look_level};

/// One accuracy scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    pub noise: &'static str,
    /// True relative improvement of the candidate, in multiples of the noise floor.
    pub effect_floors: f64,
    pub reps: usize,
    /// Engine launches per arm (reps spread over them).
    pub launches: usize,
}

/// What a scenario measured.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub scenario: Scenario,
    pub comparisons: usize,
    pub yuen_reps_only: f64,
    pub yuen: f64,
    pub gate: f64,
    pub welch_trimmed: f64,
}

fn legacy_welch_on_trimmed(x: &[f64], y: &[f64], trim: f64) -> f64 {
    let cut = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        let g = stats::trim_count(v.len(), trim);
        v[g..v.len() - g].to_vec()
    };
    match stats::compare(&cut(x), &cut(y), 0.0, 0.95) {
        Ok(c) if c.difference > 0.0 => c.welch_p,
        _ => 1.0,
    }
}

/// Run `comparisons` comparisons of one scenario with fixed seeds.
pub fn run(
    model: &ModelProfile,
    hardware: &HardwareProfile,
    workload: &Workload,
    scenario: &Scenario,
    comparisons: usize,
    seed: u64,
) -> Result<Outcome, AccuracyError> {
    let noise = noise_model(scenario.noise)
        .ok_or_else(|| AccuracyError::UnknownNoise(scenario.noise.to_string()))?;
    let target = SimTarget {
        model,
        hardware,
        workload,
    };
    let combo = Combo::default();
    let floor = hardware.noise_floor_cv;
    let effect = 1.0 + scenario.effect_floors * floor;
    let (alpha, trim) = (0.05, 0.10);
    let (mut plain, mut yuen, mut gate, mut naive) = (0usize, 0usize, 0usize, 0usize);
    let launches = scenario.launches.max(1);
    let between = stats::Between {
        cv: hardware.launch_cv,
        candidate_launches: launches,
        baseline_launches: launches,
    };
    let arm = |s: u64, scale: f64| -> Result<Vec<f64>, AccuracyError> {
        let mut ls = Vec::new();
        for l in 0..launches as u64 {
            let mut launch = sim::launch(&target, &combo, s.wrapping_add(l))?;
            launch.set_noise(noise);
            ls.push(launch);
        }
        (0..scenario.reps)
            .map(|i| {
                ls[i % launches]
                    .rep((i / launches) as u32)
                    .map(|m| m["output_tokens_per_s"] * scale)
                    .map_err(AccuracyError::from)
            })
            .collect()
    };
    for i in 0..comparisons as u64 {
        let base = arm(seed.wrapping_add(2 * i).wrapping_mul(0x9E37_79B9), 1.0)?;
        let cand = arm(
            seed.wrapping_add(2 * i + 1).wrapping_mul(0x9E37_79B9),
            effect,
        )?;
        let p = stats::compare(&cand, &base, trim, 1.0 - alpha)?;
        if p.yuen_p < alpha && p.difference > 0.0 {
            plain += 1;
        }
        let c = stats::compare_with(&cand, &base, trim, 1.0 - alpha, between)?;
        if c.yuen_p < alpha && c.difference > 0.0 {
            yuen += 1;
        }
        let t = (c.ratio.ln() - (1.0 + floor).ln()) / c.log_ratio_se;
        if stats::upper_tail(t, c.yuen_df) < alpha {
            gate += 1;
        }
        if legacy_welch_on_trimmed(&cand, &base, trim) < alpha {
            naive += 1;
        }
    }
    let n = comparisons as f64;
    Ok(Outcome {
        scenario: scenario.clone(),
        comparisons,
        yuen_reps_only: plain as f64 / n,
        yuen: yuen as f64 / n,
        gate: gate as f64 / n,
        welch_trimmed: naive as f64 / n,
    })
}

/// Throughput reps of one arm: `reps` reps spread over `launches` launches of the default combo.
fn arm_reps(
    target: &SimTarget<'_>,
    noise: NoiseModel,
    launches: usize,
    reps: usize,
    seed: u64,
    scale: f64,
) -> Result<Vec<f64>, AccuracyError> {
    let combo = Combo::default();
    let mut ls = Vec::new();
    for l in 0..launches.max(1) as u64 {
        let mut launch = sim::launch(target, &combo, seed.wrapping_add(l))?;
        launch.set_noise(noise);
        ls.push(launch);
    }
    let n = ls.len();
    (0..reps)
        .map(|i| {
            ls[i % n]
                .rep((i / n) as u32)
                .map(|m| m["output_tokens_per_s"] * scale)
                .map_err(AccuracyError::from)
        })
        .collect()
}

/// What the group-sequential design measured for one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct SequentialOutcome {
    pub noise: &'static str,
    pub effect_floors: f64,
    pub min_reps: usize,
    pub max_reps: usize,
    pub comparisons: usize,
    /// Claims of "better" with the threshold at 1 (any win) and the reps the candidate used.
    pub yuen: f64,
    pub yuen_mean_reps: f64,
    /// Claims of "better than 1 + noise floor" (the gate's threshold) and the reps used.
    pub gate: f64,
    pub gate_mean_reps: f64,
}

/// The group-sequential design as the harness runs it: the baseline measured at `max_reps`, the
/// candidate looked at after the planned looks with Pocock's per-look level, stopped by
/// [`stats::sequential_decision`]; a claim is a `Win` stop, or a final interval above the
/// threshold.
pub fn run_sequential(
    target: &SimTarget<'_>,
    noise_name: &'static str,
    effect_floors: f64,
    (min_reps, max_reps): (usize, usize),
    comparisons: usize,
    seed: u64,
) -> Result<SequentialOutcome, AccuracyError> {
    let noise = noise_model(noise_name)
        .ok_or_else(|| AccuracyError::UnknownNoise(noise_name.to_string()))?;
    let hardware = target.hardware;
    let floor = hardware.noise_floor_cv;
    let effect = 1.0 + effect_floors * floor;
    let (alpha, trim) = (0.05, 0.10);
    let looks = stats::planned_looks(min_reps, max_reps);
    let level = per_look_level(alpha, looks.len());
    let between = stats::Between {
        cv: hardware.launch_cv,
        candidate_launches: 1,
        baseline_launches: 1,
    };
    let (mut claims, mut reps_used) = ([0usize; 2], [0usize; 2]);
    for i in 0..comparisons as u64 {
        let base = arm_reps(
            target,
            noise,
            1,
            max_reps,
            seed.wrapping_add(2 * i).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            1.0,
        )?;
        let cand = arm_reps(
            target,
            noise,
            1,
            max_reps,
            seed.wrapping_add(2 * i + 1)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15),
            effect,
        )?;
        for (j, threshold) in [1.0, 1.0 + floor].into_iter().enumerate() {
            for (li, &n) in looks.iter().enumerate() {
                let c = stats::compare_with(&cand[..n], &base, trim, 1.0 - level, between)?;
                let last = li + 1 == looks.len();
                let decision = stats::sequential_decision(c.ratio_ci, threshold, floor);
                if decision.is_some() || last {
                    if decision == Some(stats::StopReason::Win)
                        || (last && c.ratio_ci.0 > threshold)
                    {
                        claims[j] += 1;
                    }
                    reps_used[j] += n;
                    break;
                }
            }
        }
    }
    let n = comparisons as f64;
    Ok(SequentialOutcome {
        noise: noise_name,
        effect_floors,
        min_reps,
        max_reps,
        comparisons,
        yuen: claims[0] as f64 / n,
        yuen_mean_reps: reps_used[0] as f64 / n,
        gate: claims[1] as f64 / n,
        gate_mean_reps: reps_used[1] as f64 / n,
    })
}
