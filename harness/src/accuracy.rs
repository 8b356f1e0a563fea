//! Decision accuracy of the comparison procedure, measured on the sim engine's known truth.
//!
//! Each comparison launches the baseline and the candidate once each (the sim's launch-to-launch
//! variation on), runs `reps` reps of each, scales the candidate's throughput by `1 + effect` (the
//! true difference, so truth is known exactly) and asks the procedures whether the candidate is
//! better. Reported per scenario: the rate at which each procedure claims a win.
//!
//! - `yuen_reps_only`: Yuen's trimmed-mean test on the reps alone, two-sided p < α and a positive
//!   difference: blind to launch-to-launch variance.
//! - `yuen`: the same test with the calibrated launch-to-launch component added (what the gates
//!   use).
//! - `gate`: what `topk5` with margin 0 claims: the one-sided lower bound of the ratio (with the
//!   launch component) exceeds 1 + noise floor.
//! - `welch_trimmed`: the naive procedure the issue warns about (Welch's test on already-trimmed
//!   samples), for comparison.

use l1_engines::sim::{self, NoiseModel, SimTarget};
use l1_engines::{Combo, HardwareProfile, ModelProfile, Workload};
use serde::Serialize;

use crate::stats;

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

/// The noise models the benchmark runs under.
pub fn noise_model(name: &str) -> Option<NoiseModel> {
    match name {
        "normal" => Some(NoiseModel {
            lognormal: false,
            outlier_p: 0.0,
            outlier_slowdown: 1.0,
        }),
        "lognormal" => Some(NoiseModel {
            lognormal: true,
            outlier_p: 0.0,
            outlier_slowdown: 1.0,
        }),
        "contaminated" => Some(NoiseModel {
            lognormal: false,
            outlier_p: 0.10,
            outlier_slowdown: 1.15,
        }),
        _ => None,
    }
}

fn welch_on_trimmed(x: &[f64], y: &[f64], trim: f64) -> f64 {
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
) -> Result<Outcome, String> {
    let noise = noise_model(scenario.noise)
        .ok_or_else(|| format!("unknown noise model `{}`", scenario.noise))?;
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
    let arm = |s: u64, scale: f64| -> Result<Vec<f64>, String> {
        let mut ls = Vec::new();
        for l in 0..launches as u64 {
            let mut launch =
                sim::launch(&target, &combo, s.wrapping_add(l)).map_err(|e| e.to_string())?;
            launch.set_noise(noise);
            ls.push(launch);
        }
        (0..scenario.reps)
            .map(|i| {
                ls[i % launches]
                    .rep((i / launches) as u32)
                    .map(|m| m["output_tokens_per_s"] * scale)
                    .map_err(|e| e.to_string())
            })
            .collect()
    };
    for i in 0..comparisons as u64 {
        let base = arm(seed.wrapping_add(2 * i).wrapping_mul(0x9E37_79B9), 1.0)?;
        let cand = arm(
            seed.wrapping_add(2 * i + 1).wrapping_mul(0x9E37_79B9),
            effect,
        )?;
        let p = stats::compare(&cand, &base, trim, 1.0 - alpha).map_err(|e| e.to_string())?;
        if p.yuen_p < alpha && p.difference > 0.0 {
            plain += 1;
        }
        let c = stats::compare_with(&cand, &base, trim, 1.0 - alpha, between)
            .map_err(|e| e.to_string())?;
        if c.yuen_p < alpha && c.difference > 0.0 {
            yuen += 1;
        }
        let t = (c.ratio.ln() - (1.0 + floor).ln()) / c.log_ratio_se;
        if stats::upper_tail(t, c.yuen_df) < alpha {
            gate += 1;
        }
        if welch_on_trimmed(&cand, &base, trim) < alpha {
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
) -> Result<Vec<f64>, String> {
    let combo = Combo::default();
    let mut ls = Vec::new();
    for l in 0..launches.max(1) as u64 {
        let mut launch =
            sim::launch(target, &combo, seed.wrapping_add(l)).map_err(|e| e.to_string())?;
        launch.set_noise(noise);
        ls.push(launch);
    }
    let n = ls.len();
    (0..reps)
        .map(|i| {
            ls[i % n]
                .rep((i / n) as u32)
                .map(|m| m["output_tokens_per_s"] * scale)
                .map_err(|e| e.to_string())
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
) -> Result<SequentialOutcome, String> {
    let noise =
        noise_model(noise_name).ok_or_else(|| format!("unknown noise model `{noise_name}`"))?;
    let hardware = target.hardware;
    let floor = hardware.noise_floor_cv;
    let effect = 1.0 + effect_floors * floor;
    let (alpha, trim) = (0.05, 0.10);
    let looks = stats::planned_looks(min_reps, max_reps);
    let level = stats::pocock_level(alpha, looks.len());
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
                let c = stats::compare_with(&cand[..n], &base, trim, 1.0 - level, between)
                    .map_err(|e| e.to_string())?;
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

/// What the whole-sweep benchmark measured.
#[derive(Clone, Debug, Serialize)]
pub struct SweepOutcome {
    pub combos: usize,
    pub sweeps: usize,
    pub reps: usize,
    /// Share of sweeps whose winner (best trimmed mean) is the true best combo.
    pub picked_true_best: f64,
    /// Share whose winner is within the noise floor of the true best.
    pub within_floor: f64,
    /// Mean and worst relative regret of the winner's true value.
    pub mean_regret: f64,
    pub max_regret: f64,
    /// Mean of the probability of best the gates reported, to compare with `within_floor`.
    pub mean_reported_p_best: f64,
}

/// Run `sweeps` simulated sweeps over `combos` (each combo measured with `reps` reps in one
/// launch), pick the winner as the gates do, and score it against the sim's noiseless truth.
pub fn run_sweep(
    target: &SimTarget<'_>,
    combos: &[Combo],
    reps: usize,
    sweeps: usize,
    seed: u64,
) -> Result<SweepOutcome, String> {
    use crate::gates::{self, Arm, GateContext};
    use crate::spec::{Gate, GateMethod};
    let truth: Vec<f64> = combos
        .iter()
        .map(|c| {
            sim::truth(target, c)
                .map(|m| m["output_tokens_per_s"])
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    let best = truth.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let floor = target.hardware.noise_floor_cv;
    let ctx = GateContext {
        trim: 0.10,
        noise_floor: floor,
        launch_cv: target.hardware.launch_cv,
        calibration: None,
        looks: 1,
    };
    let manual = Gate::new(GateMethod::Manual);
    let (mut exact, mut within, mut regret_sum, mut regret_max, mut p_sum) =
        (0usize, 0usize, 0.0, 0.0f64, 0.0);
    for s in 0..sweeps as u64 {
        let mut arms = Vec::new();
        for (i, c) in combos.iter().enumerate() {
            let mut launch = sim::launch(
                target,
                c,
                seed.wrapping_add(s * 1_000 + i as u64)
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15),
            )
            .map_err(|e| e.to_string())?;
            let reps = (0..reps as u32)
                .map(|r| launch.rep(r).map_err(|e| e.to_string()))
                .collect::<Result<Vec<_>, _>>()?;
            arms.push(Arm {
                label: i.to_string(),
                reps,
                launches: 1,
            });
        }
        let baseline = arms[0].clone();
        let v = gates::evaluate(&manual, &ctx, &baseline, &arms)?;
        let w: usize = v
            .winner
            .as_deref()
            .and_then(|x| x.parse().ok())
            .ok_or("no winner")?;
        let regret = (best - truth[w]) / best;
        exact += usize::from(truth[w] >= best);
        within += usize::from(regret <= floor);
        regret_sum += regret;
        regret_max = regret_max.max(regret);
        p_sum += v.p_best.unwrap_or(f64::NAN);
    }
    let n = sweeps as f64;
    Ok(SweepOutcome {
        combos: combos.len(),
        sweeps,
        reps,
        picked_true_best: exact as f64 / n,
        within_floor: within as f64 / n,
        mean_regret: regret_sum / n,
        max_regret: regret_max,
        mean_reported_p_best: p_sum / n,
    })
}

/// The combos of the whole-sweep benchmark: attention × CUDA graphs × activation dtype (18).
pub fn sweep_combos() -> Vec<Combo> {
    let mut out = Vec::new();
    for attn in ["flash_attn_v2", "flash_attn_v3", "paged_attention"] {
        for graph in ["per-shape", "off", "dynamic"] {
            for act in ["bf16", "fp8_e4m3"] {
                let mut c = Combo::default();
                c.dims.insert("attention_backend".into(), attn.into());
                c.dims.insert("cuda_graph".into(), graph.into());
                c.dims.insert("activation_dtype".into(), act.into());
                out.push(c);
            }
        }
    }
    out
}
