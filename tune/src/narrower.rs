//! The ConfigNarrower: from Tier-1 results (each dimension's main effects with intervals, and
//! the noise floor), drop the dimensions whose effect is below the noise floor — each fixed at its
//! best value — and keep the rest, with a human-readable reason for every decision.
//!
//! A dimension's effect is the spread of its values' main effects (best minus worst, relative to
//! the reference the effects are expressed against, e.g. `+0.031` = 3.1 % better than the
//! baseline). It is dropped when that spread is below the noise floor: no difference below the
//! floor is claimed anywhere in l1, so fixing the dimension costs at most a difference nobody
//! could measure. Dimensions are fixed in order of increasing effect; if fixing one would leave
//! no legal combo (the best values are jointly illegal), that dimension is kept instead.

use serde::{Deserialize, Serialize};

use crate::error::TuneError;
use crate::session::Direction;
use crate::space::{Dimension, Space};

/// The main effect of one value: the relative difference of the metric (e.g. averaged over the
/// Tier-1 combos with this value, against the baseline) with its interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueEffect {
    pub value: String,
    pub estimate: f64,
    pub interval: (f64, f64),
}

/// Main effects of one dimension's values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DimensionEffects {
    pub dimension: String,
    pub values: Vec<ValueEffect>,
}

/// A dimension the narrower fixed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Dropped {
    pub dimension: String,
    pub fixed_at: String,
    /// Spread of the main effects (relative).
    pub effect: f64,
    pub reason: String,
}

/// A dimension the narrower kept.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Kept {
    pub dimension: String,
    pub effect: f64,
    pub reason: String,
}

/// The narrowed space and what happened to each dimension.
#[derive(Clone, Debug)]
pub struct Narrowed {
    /// The kept dimensions and the legal combos that agree with every fixed value.
    pub space: Space,
    /// For each combo of `space`, its index in the original space.
    pub original_index: Vec<usize>,
    pub dropped: Vec<Dropped>,
    pub kept: Vec<Kept>,
}

impl Narrowed {
    /// Map original-space indices (e.g. Tier-1 pareto points) into the narrowed space; points
    /// the narrowing removed are left out.
    pub fn map_seeds(&self, original: &[usize]) -> Vec<usize> {
        original
            .iter()
            .filter_map(|o| self.original_index.iter().position(|x| x == o))
            .collect()
    }
}

fn pct(x: f64) -> String {
    format!("{:+.1} %", 100.0 * x)
}

/// Narrow `space` given per-dimension `effects` and the relative `noise_floor`. Dimensions with
/// no effects given are kept (nothing is known about them); a dimension with a single legal value
/// is dropped.
pub fn narrow(
    space: &Space,
    effects: &[DimensionEffects],
    noise_floor: f64,
    direction: Direction,
) -> Result<Narrowed, TuneError> {
    if !(noise_floor.is_finite() && noise_floor >= 0.0) {
        return Err(TuneError::Narrowing(format!(
            "noise floor must be a non-negative number, got {noise_floor}"
        )));
    }
    let dims = space.dims();
    for e in effects {
        let Some(d) = dims.iter().find(|d| d.name == e.dimension) else {
            return Err(TuneError::Narrowing(format!(
                "effects given for `{}`, which is not a dimension of the space (dimensions: {})",
                e.dimension,
                dims.iter()
                    .map(|d| d.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        for v in &e.values {
            if !d.values.contains(&v.value) {
                return Err(TuneError::Narrowing(format!(
                    "`{}` is not a value of `{}` (values: {})",
                    v.value,
                    d.name,
                    d.values.join(", ")
                )));
            }
            if !(v.estimate.is_finite() && v.interval.0.is_finite() && v.interval.1.is_finite()) {
                return Err(TuneError::Narrowing(format!(
                    "the effect of {}={} is not finite",
                    d.name, v.value
                )));
            }
        }
    }
    let better = |a: f64, b: f64| match direction {
        Direction::Maximize => a > b,
        Direction::Minimize => a < b,
    };
    // Candidate drops: (dimension index, value index, effect, reason).
    let mut candidates = Vec::new();
    let mut kept = Vec::new();
    for (di, d) in dims.iter().enumerate() {
        let legal: Vec<u16> = {
            let mut v: Vec<u16> = space.combos().iter().map(|c| c[di]).collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        if legal.len() == 1 {
            let value = d.values[usize::from(legal[0])].clone();
            candidates.push((
                di,
                legal[0],
                0.0,
                format!("only one legal value ({value}): nothing to tune"),
            ));
            continue;
        }
        let Some(e) = effects.iter().find(|e| e.dimension == d.name) else {
            kept.push(Kept {
                dimension: d.name.clone(),
                effect: f64::NAN,
                reason: "no Tier-1 main effects for this dimension: kept".into(),
            });
            continue;
        };
        let vals: Vec<&ValueEffect> = e
            .values
            .iter()
            .filter(|v| {
                d.values
                    .iter()
                    .position(|x| *x == v.value)
                    .is_some_and(|i| legal.contains(&(i as u16)))
            })
            .collect();
        if vals.len() < 2 {
            kept.push(Kept {
                dimension: d.name.clone(),
                effect: f64::NAN,
                reason: format!(
                    "main effects known for {} of its {} legal values: kept",
                    vals.len(),
                    legal.len()
                ),
            });
            continue;
        }
        let mut best = vals[0];
        for v in &vals[1..] {
            if better(v.estimate, best.estimate) {
                best = v;
            }
        }
        let hi = vals
            .iter()
            .map(|v| v.estimate)
            .fold(f64::NEG_INFINITY, f64::max);
        let lo = vals
            .iter()
            .map(|v| v.estimate)
            .fold(f64::INFINITY, f64::min);
        let spread = hi - lo;
        let widest = vals
            .iter()
            .map(|v| v.interval.1)
            .fold(f64::NEG_INFINITY, f64::max)
            - vals
                .iter()
                .map(|v| v.interval.0)
                .fold(f64::INFINITY, f64::min);
        let detail = vals
            .iter()
            .map(|v| {
                format!(
                    "{} {} [{}, {}]",
                    v.value,
                    pct(v.estimate),
                    pct(v.interval.0),
                    pct(v.interval.1)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let bi = d.values.iter().position(|x| *x == best.value).unwrap_or(0) as u16;
        if spread < noise_floor {
            candidates.push((
                di,
                bi,
                spread,
                format!(
                    "effect {:.1} % (up to {:.1} % within the intervals) is below the noise floor {:.1} %: fixed at its best value {} ({detail})",
                    100.0 * spread,
                    100.0 * widest.max(spread),
                    100.0 * noise_floor,
                    best.value
                ),
            ));
        } else {
            kept.push(Kept {
                dimension: d.name.clone(),
                effect: spread,
                reason: format!(
                    "effect {:.1} % is at or above the noise floor {:.1} %: kept ({detail})",
                    100.0 * spread,
                    100.0 * noise_floor
                ),
            });
        }
    }
    candidates.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)));
    let mut fixed: Vec<(usize, u16)> = Vec::new();
    let mut dropped = Vec::new();
    let matches = |c: &[u16], fixed: &[(usize, u16)]| fixed.iter().all(|&(d, v)| c[d] == v);
    for (di, vi, effect, reason) in candidates {
        let mut trial = fixed.clone();
        trial.push((di, vi));
        if space.combos().iter().any(|c| matches(c, &trial)) {
            fixed = trial;
            dropped.push(Dropped {
                dimension: dims[di].name.clone(),
                fixed_at: dims[di].values[usize::from(vi)].clone(),
                effect,
                reason,
            });
        } else {
            kept.push(Kept {
                dimension: dims[di].name.clone(),
                effect,
                reason: format!(
                    "effect {:.1} % is below the noise floor, but fixing it at {} together with the dimensions fixed before leaves no legal combo: kept",
                    100.0 * effect,
                    dims[di].values[usize::from(vi)]
                ),
            });
        }
    }
    // Keep the space's dimension order in the report and in the narrowed space.
    kept.sort_by_key(|k| dims.iter().position(|d| d.name == k.dimension));
    dropped.sort_by_key(|k| dims.iter().position(|d| d.name == k.dimension));
    let keep_idx: Vec<usize> = (0..dims.len())
        .filter(|d| !fixed.iter().any(|f| f.0 == *d))
        .collect();
    if keep_idx.is_empty() {
        // Everything fixed: the space is the one combo of the fixed values. Keep one dimension
        // (the first) so the space stays a valid one-combo space.
    }
    let keep_idx = if keep_idx.is_empty() {
        vec![0]
    } else {
        keep_idx
    };
    let new_dims: Vec<Dimension> = keep_idx.iter().map(|&d| dims[d].clone()).collect();
    let mut combos = Vec::new();
    let mut original_index = Vec::new();
    for (i, c) in space.combos().iter().enumerate() {
        if matches(c, &fixed) {
            combos.push(keep_idx.iter().map(|&d| usize::from(c[d])).collect());
            original_index.push(i);
        }
    }
    let space = Space::new(new_dims, combos)?;
    Ok(Narrowed {
        space,
        original_index,
        dropped,
        kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> Space {
        let dims = vec![
            Dimension::new("attn", ["fa2", "fa3", "native"]),
            Dimension::new("graph", ["off", "on"]),
            Dimension::new("mm", ["cublas", "cutlass"]),
        ];
        let mut combos = Vec::new();
        for a in 0..3 {
            for g in 0..2 {
                for m in 0..2 {
                    // fa3 with cutlass is illegal
                    if !(a == 1 && m == 1) {
                        combos.push(vec![a, g, m]);
                    }
                }
            }
        }
        Space::new(dims, combos).unwrap()
    }

    fn eff(dim: &str, v: &[(&str, f64)]) -> DimensionEffects {
        DimensionEffects {
            dimension: dim.into(),
            values: v
                .iter()
                .map(|(n, e)| ValueEffect {
                    value: (*n).into(),
                    estimate: *e,
                    interval: (e - 0.01, e + 0.01),
                })
                .collect(),
        }
    }

    #[test]
    fn drops_small_effects_and_keeps_large_ones() {
        let s = space();
        let effects = [
            eff("attn", &[("fa2", 0.0), ("fa3", 0.10), ("native", -0.3)]),
            eff("graph", &[("off", 0.0), ("on", 0.004)]),
            eff("mm", &[("cublas", 0.0), ("cutlass", 0.2)]),
        ];
        let n = narrow(&s, &effects, 0.01, Direction::Maximize).unwrap();
        assert_eq!(n.dropped.len(), 1);
        assert_eq!(n.dropped[0].dimension, "graph");
        assert_eq!(n.dropped[0].fixed_at, "on");
        assert!(
            n.dropped[0].reason.contains("below the noise floor 1.0 %"),
            "{}",
            n.dropped[0].reason
        );
        assert_eq!(n.kept.len(), 2);
        assert_eq!(n.space.dims().len(), 2);
        assert_eq!(n.space.len(), 5);
        for (j, &o) in n.original_index.iter().enumerate() {
            assert_eq!(s.combo(o).unwrap()[1], 1);
            assert_eq!(n.space.combo(j).unwrap()[0], s.combo(o).unwrap()[0]);
        }
        assert_eq!(n.map_seeds(&[0, 1, 2]), vec![0]);
    }

    #[test]
    fn keeps_a_dimension_whose_best_value_is_jointly_illegal() {
        let s = space();
        let effects = [
            eff("attn", &[("fa2", 0.0), ("fa3", 0.002), ("native", 0.001)]),
            eff("mm", &[("cublas", 0.0), ("cutlass", 0.001)]),
        ];
        let n = narrow(&s, &effects, 0.01, Direction::Maximize).unwrap();
        // mm (0.1 %) fixed first at cutlass, then attn's best fa3 is illegal with cutlass.
        assert_eq!(
            n.dropped
                .iter()
                .map(|d| d.dimension.as_str())
                .collect::<Vec<_>>(),
            ["mm"]
        );
        let attn = n.kept.iter().find(|k| k.dimension == "attn").unwrap();
        assert!(
            attn.reason.contains("leaves no legal combo"),
            "{}",
            attn.reason
        );
        assert!(
            n.kept
                .iter()
                .any(|k| k.dimension == "graph" && k.reason.contains("no Tier-1"))
        );
        assert!(!n.space.is_empty());
    }

    #[test]
    fn minimising_picks_the_smallest_and_bad_input_is_an_error() {
        let s = space();
        let effects = [eff("graph", &[("off", 0.0), ("on", -0.002)])];
        let n = narrow(&s, &effects, 0.01, Direction::Minimize).unwrap();
        assert_eq!(n.dropped[0].fixed_at, "on");
        assert!(narrow(&s, &[eff("nope", &[])], 0.01, Direction::Maximize).is_err());
        assert!(
            narrow(
                &s,
                &[eff("graph", &[("x", 0.0)])],
                0.01,
                Direction::Maximize
            )
            .is_err()
        );
        assert!(narrow(&s, &effects, f64::NAN, Direction::Maximize).is_err());
    }
}
