//! The whole-sweep benchmark: how often the sweep's reported best is the true best of 18 combos.

use l1_engines::Combo;
use l1_engines::sim::{self, SimTarget};
use serde::Serialize;

use crate::gates::{self, Arm, GateContext};
use crate::spec::Gate;

use super::AccuracyError;

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
) -> Result<SweepOutcome, AccuracyError> {
    use crate::spec::GateMethod;
    let truth: Vec<f64> = combos
        .iter()
        .map(|c| {
            sim::truth(target, c)
                .map(|m| m["output_tokens_per_s"])
                .map_err(AccuracyError::from)
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
            )?;
            let reps = (0..reps as u32)
                .map(|r| launch.rep(r))
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
            .ok_or(AccuracyError::NoWinner)?;
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
