//! Ranking and selection: how sure the winner is the best.

use l1_engines::metrics::Direction;

use super::{GateContext, GateError};
use crate::model::Arm;
use crate::stats;

/// Ranking and selection: the probability that the combo at `winner` is the true best within
/// the indifference zone (the noise floor), by drawing every combo's trimmed mean from its
/// sampling distribution (normal, with the Yuen standard error plus the launch component) with a
/// fixed seed.
pub(super) fn probability_of_best(
    ctx: &GateContext,
    combos: &[Arm],
    metric: &str,
    direction: Direction,
    winner: usize,
) -> Result<f64, GateError> {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let mut dists = Vec::with_capacity(combos.len());
    for arm in combos {
        let (m, se) =
            stats::trimmed_mean_se(&arm.values(metric)?, ctx.trim, ctx.launch_cv, arm.launches)
                .map_err(GateError::arm(&arm.label))?;
        let sign = if direction == Direction::HigherIsBetter {
            1.0
        } else {
            -1.0
        };
        dists.push((sign * m, se.max(1e-12)));
    }
    let zone = ctx.noise_floor * dists[winner].0.abs();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5E1EC7);
    let draws = 4000;
    let mut hits = 0;
    let mut values = vec![0.0; dists.len()];
    for _ in 0..draws {
        for (v, (m, se)) in values.iter_mut().zip(&dists) {
            *v = Normal::new(*m, *se)
                .map(|n| n.sample(&mut rng))
                .unwrap_or(*m);
        }
        let best = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if values[winner] >= best - zone {
            hits += 1;
        }
    }
    Ok(hits as f64 / draws as f64)
}
