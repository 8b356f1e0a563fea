//! Landscapes for measuring the tuner: a legal space with the true value of every combo and a
//! noise model, exported as JSON so other optimisers (Optuna's TPE, `scripts/bench-tune-optuna.py`)
//! see the same problem, plus the drivers the efficiency benchmark and the tests run: our
//! optimiser and random search, scored by the true value of the point each reports after k noisy
//! evaluations.
//!
//! Noise models:
//! - [`Noise::Multiplicative`]: the sim engine's model applied to its noiseless truth — one
//!   launch factor `exp(N(0, launch_cv))` per evaluation and `reps` rep factors `exp(N(0, rep_cv))`,
//!   each an outlier `outlier_slowdown`× slower with probability `outlier_p`; throughput-like
//!   metrics are divided by the mean slowdown, latency-like ones multiplied.
//! - [`Noise::Replay`]: recorded per-rep values of a real engine; an evaluation is the mean of
//!   `reps` reps drawn with replacement from the combo's recording (its measured noise).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::budget::Budget;
use crate::error::TuneError;
use crate::session::{Direction, Observation, Session, TuneConfig};
use crate::space::{Dimension, Space};

/// How an evaluation is drawn around the truth.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Noise {
    Multiplicative {
        launch_cv: f64,
        rep_cv: f64,
        outlier_p: f64,
        outlier_slowdown: f64,
        reps: usize,
        /// True when a slowdown lowers the metric (throughput), false when it raises it.
        throughput_like: bool,
        /// The estimator over the reps: a trimmed mean cutting `round(trim · reps)` from each
        /// end, as the harness's statistics do (`measure.trim`, default 0.10); 0 is the mean.
        #[serde(default)]
        trim: f64,
    },
    Replay {
        reps: usize,
        /// Recorded rep values per combo (same order as `combos`).
        samples: Vec<Vec<f64>>,
    },
}

/// A benchmark problem.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Landscape {
    pub name: String,
    /// Where the truth comes from (sim target, or the recorded engine and machine).
    pub source: String,
    pub metric: String,
    pub direction: Direction,
    pub dims: Vec<Dimension>,
    pub combos: Vec<Vec<usize>>,
    pub truth: Vec<f64>,
    pub noise: Noise,
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    // Box–Muller; (0, 1] avoids ln 0.
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

impl Landscape {
    pub fn space(&self) -> Result<Space, TuneError> {
        Space::new(self.dims.clone(), self.combos.clone())
    }

    /// Index and value of the exhaustive optimum.
    pub fn optimum(&self) -> (usize, f64) {
        let mut best = (0, self.truth[0]);
        for (i, &t) in self.truth.iter().enumerate() {
            let b = match self.direction {
                Direction::Maximize => t > best.1,
                Direction::Minimize => t < best.1,
            };
            if b {
                best = (i, t);
            }
        }
        best
    }

    /// Relative gap of combo `i`'s true value to the optimum (0 = optimal).
    pub fn regret(&self, i: usize) -> f64 {
        let (_, opt) = self.optimum();
        match self.direction {
            Direction::Maximize => (opt - self.truth[i]) / opt.abs(),
            Direction::Minimize => (self.truth[i] - opt) / opt.abs(),
        }
    }

    /// Combos within `gap` of the optimum.
    pub fn within(&self, gap: f64) -> usize {
        (0..self.truth.len())
            .filter(|&i| self.regret(i) <= gap)
            .count()
    }

    /// One noisy evaluation of combo `i`, deterministic in `(seed, i, k)`.
    pub fn evaluate(&self, i: usize, seed: u64, k: u64) -> f64 {
        let mut rng = ChaCha8Rng::seed_from_u64(
            seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ (i as u64).wrapping_mul(0xD1B5_4A32_D192_ED03)
                ^ k.wrapping_mul(0x8CB9_2BA7_2F3D_8DD7),
        );
        match &self.noise {
            Noise::Multiplicative {
                launch_cv,
                rep_cv,
                outlier_p,
                outlier_slowdown,
                reps,
                throughput_like,
                trim,
            } => {
                let launch = (launch_cv * normal(&mut rng)).exp();
                let n = (*reps).max(1);
                let mut v: Vec<f64> = (0..n)
                    .map(|_| {
                        let mut f = (rep_cv * normal(&mut rng)).exp();
                        if rng.random::<f64>() < *outlier_p {
                            f *= outlier_slowdown;
                        }
                        let slow = launch * f;
                        if *throughput_like {
                            self.truth[i] / slow
                        } else {
                            self.truth[i] * slow
                        }
                    })
                    .collect();
                trimmed_mean(&mut v, *trim)
            }
            Noise::Replay { reps, samples } => {
                let v = &samples[i];
                if v.is_empty() {
                    return self.truth[i];
                }
                let n = (*reps).max(1);
                (0..n).map(|_| v[rng.random_range(0..v.len())]).sum::<f64>() / n as f64
            }
        }
    }
}

/// Mean after cutting `round(trim · n)` values from each end (never all of them).
fn trimmed_mean(v: &mut [f64], trim: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let cut = ((trim.clamp(0.0, 0.5) * n as f64).round() as usize).min((n - 1) / 2);
    let kept = &v[cut..n - cut];
    kept.iter().sum::<f64>() / kept.len() as f64
}

/// What a run reported after each evaluation: `reported[k-1]` is the combo the method would
/// report after `k` evaluations.
#[derive(Clone, Debug, PartialEq)]
pub struct Trace {
    pub reported: Vec<usize>,
}

impl Trace {
    /// The first `k` at which the reported combo is within `gap` of the optimum.
    pub fn evals_to(&self, land: &Landscape, gap: f64) -> Option<usize> {
        self.reported
            .iter()
            .position(|&i| land.regret(i) <= gap)
            .map(|p| p + 1)
    }

    /// Regret of what is reported after `k` evaluations (the last one if the run was shorter).
    pub fn regret_at(&self, land: &Landscape, k: usize) -> f64 {
        let i = self.reported[k.clamp(1, self.reported.len()) - 1];
        land.regret(i)
    }
}

/// Run our optimiser with a budget of `k` evaluations (no seeds: the benchmark has no Tier-1
/// pareto points). The session knows its budget, so its last evaluations re-measure the top
/// candidates ([`crate::Remeasure`]); a re-measurement is a fresh noisy evaluation and counts
/// like any other.
pub fn run_optimiser(
    land: &Landscape,
    config: &TuneConfig,
    k: usize,
    seed: u64,
) -> Result<Trace, TuneError> {
    let space = land.space()?;
    let mut cfg = config.clone();
    cfg.seed = seed;
    cfg.objective.direction = land.direction;
    let budget = Budget::new(None, None, Some(k as u32))?;
    let mut s = Session::new(space, cfg, budget, &[])?;
    let mut reported = Vec::with_capacity(k);
    let mut next = s.propose()?;
    for step in 0..k {
        let v = land.evaluate(next.combo, seed, step as u64);
        let mut obs = Observation::new(next.combo, v);
        obs.phase = next.phase();
        s.observe(obs)?;
        let (p, best) = s.plan();
        reported.push(best.map_or(next.combo, |r| r.combo));
        match p {
            Ok(p) => next = p,
            Err(TuneError::SpaceExhausted) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(Trace { reported })
}

/// Random search without replacement for `k` evaluations, reporting the best observed value.
pub fn run_random(land: &Landscape, k: usize, seed: u64) -> Trace {
    let n = land.truth.len();
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x005E_ED0F_0A4D);
    for i in 0..n.saturating_sub(1) {
        let j = rng.random_range(i..n);
        order.swap(i, j);
    }
    let mut best: Option<(usize, f64)> = None;
    let mut reported = Vec::with_capacity(k);
    for (step, &i) in order.iter().take(k).enumerate() {
        let v = land.evaluate(i, seed, step as u64);
        let better = best.is_none_or(|b| match land.direction {
            Direction::Maximize => v > b.1,
            Direction::Minimize => v < b.1,
        });
        if better {
            best = Some((i, v));
        }
        reported.push(best.map_or(i, |b| b.0));
    }
    Trace { reported }
}

/// A synthetic landscape in the shape of the reference simulation (`stats-tuning.md` §2.3):
/// log-throughput = main effects (decreasing in size over dimensions) + pairwise interactions +
/// roughness, over a product space with a few legality holes; multiplicative noise.
pub fn synthetic(seed: u64, cards: &[usize], rep_cv: f64) -> Landscape {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dims: Vec<Dimension> = cards
        .iter()
        .enumerate()
        .map(|(d, &c)| Dimension::new(format!("d{d}"), (0..c).map(|v| format!("v{v}"))))
        .collect();
    let main: Vec<Vec<f64>> = cards
        .iter()
        .enumerate()
        .map(|(d, &c)| {
            let sd = 0.15 / (1.0 + d as f64);
            (0..c).map(|_| sd * normal(&mut rng)).collect()
        })
        .collect();
    let pairs: Vec<(usize, usize, Vec<f64>)> = (0..4)
        .map(|p| {
            let a = p % cards.len();
            let b = (p * 2 + 1) % cards.len();
            let b = if a == b { (b + 1) % cards.len() } else { b };
            let t = (0..cards[a] * cards[b])
                .map(|_| 0.05 * normal(&mut rng))
                .collect();
            (a, b, t)
        })
        .collect();
    let mut combos = Vec::new();
    let mut idx = vec![0usize; cards.len()];
    loop {
        // Legality holes: value 0 of d0 excludes the last value of d1; the last value of d2
        // excludes value 0 of d3.
        let illegal = (idx[0] == 0 && cards.len() > 1 && idx[1] == cards[1] - 1)
            || (cards.len() > 3 && idx[2] == cards[2] - 1 && idx[3] == 0);
        if !illegal {
            combos.push(idx.clone());
        }
        let mut d = 0;
        loop {
            if d == cards.len() {
                break;
            }
            idx[d] += 1;
            if idx[d] < cards[d] {
                break;
            }
            idx[d] = 0;
            d += 1;
        }
        if d == cards.len() {
            break;
        }
    }
    let truth: Vec<f64> = combos
        .iter()
        .map(|c| {
            let mut l = 0.0;
            for (d, &v) in c.iter().enumerate() {
                l += main[d][v];
            }
            for (a, b, t) in &pairs {
                l += t[c[*a] * cards[*b] + c[*b]];
            }
            l += 0.01 * normal(&mut rng);
            1000.0 * l.exp()
        })
        .collect();
    Landscape {
        name: format!("synthetic-{seed}"),
        source: "synthetic (stats-tuning.md §2.3 shape)".into(),
        metric: "output_tokens_per_s".into(),
        direction: Direction::Maximize,
        dims,
        combos,
        truth,
        noise: Noise::Multiplicative {
            launch_cv: 0.0,
            rep_cv,
            outlier_p: 0.0,
            outlier_slowdown: 1.0,
            reps: 7,
            throughput_like: true,
            trim: 0.0,
        },
    }
}

/// Summary of many seeds of one method on one landscape.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub method: String,
    pub seeds: usize,
    /// Evaluations run per seed.
    pub budget: usize,
    /// Median evaluations to reach within 1 % / 2 % (`None` when fewer than half the seeds got
    /// there within the budget).
    pub median_to_1: Option<usize>,
    pub median_to_2: Option<usize>,
    /// Share of seeds whose reported point is within 1 % / 2 % after `at` evaluations.
    pub at: usize,
    pub share_1_at: f64,
    pub share_2_at: f64,
}

fn median_hits(hits: &[Option<usize>]) -> Option<usize> {
    let mut v: Vec<usize> = hits.iter().map(|h| h.unwrap_or(usize::MAX)).collect();
    v.sort_unstable();
    let m = v[(v.len() - 1) / 2];
    (m != usize::MAX).then_some(m)
}

/// Summarise traces of one method.
pub fn summarise(
    method: &str,
    land: &Landscape,
    traces: &[Trace],
    budget: usize,
    at: usize,
) -> Summary {
    let h1: Vec<Option<usize>> = traces.iter().map(|t| t.evals_to(land, 0.01)).collect();
    let h2: Vec<Option<usize>> = traces.iter().map(|t| t.evals_to(land, 0.02)).collect();
    let n = traces.len().max(1) as f64;
    Summary {
        method: method.into(),
        seeds: traces.len(),
        budget,
        median_to_1: median_hits(&h1),
        median_to_2: median_hits(&h2),
        at,
        share_1_at: traces
            .iter()
            .filter(|t| t.regret_at(land, at) <= 0.01)
            .count() as f64
            / n,
        share_2_at: traces
            .iter()
            .filter(|t| t.regret_at(land, at) <= 0.02)
            .count() as f64
            / n,
    }
}
