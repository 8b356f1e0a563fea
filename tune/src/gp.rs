//! The surrogate: a Gaussian process over categorical combos whose kernel mixes main effects
//! (an additive overlap kernel) with interactions (an ARD Hamming kernel)
//!
//! ```text
//! k(a, b) = s² · ( w · (1/D)·Σ_d [a_d = b_d]  +  (1 − w) · exp(−Σ_d θ_d · [a_d ≠ b_d]) )
//! ```
//!
//! Each factor `exp(−θ_d·[a_d ≠ b_d])` is the kernel `(1−c)·I + c·11ᵀ` over the values of one
//! dimension (`c = e^{−θ_d} ∈ (0, 1]`), positive semi-definite, and products of PSD kernels are
//! PSD, so every `θ_d ≥ 0` gives a valid kernel; `θ_d = 0` makes a dimension irrelevant. Each
//! indicator `[a_d = b_d]` is PSD too, so the additive part and any mixture `w ∈ [0, 1]` are.
//!
//! Why the additive part: kernel knobs act mostly multiplicatively on throughput (each one speeds
//! its part of the step), so on the log scale the objective is largely a sum of per-dimension
//! effects: an additive model of the log truth explains 91–99.6 % of its variance on the four
//! benchmark landscapes. The additive part lets every observation inform the effect of each of
//! its values (a combo never measured borrows from all that share a value with it), and the
//! product part keeps what does not add up (interactions, saturation). `w` is chosen by the
//! marginal likelihood from {0, ½}, so a landscape with strong interactions falls back to the
//! plain Hamming kernel. Measured on the benchmark (`harness/benches/tuning.rs`; within 1 % of
//! the optimum at 5 % of the space, mistral-7b/L40S, 400 held-out seeds): 90 % with this kernel
//! and 4 initial points, against 87 % for the Hamming kernel alone with 4 and 84 % with 8 (the
//! old defaults); llama-3.1-8b/H100 97 % against 95 % (seeds 0–99). On the synthetic landscapes
//! with pairwise interactions (`landscape::synthetic`, 200 runs at 40 evaluations) mean regret
//! 0.98 % against 1.18 % for the Hamming kernel alone.
//!
//! Targets are standardised; the noise enters as a ratio `g` (nugget `s²·g` on the diagonal).
//! The signal variance `s²` is profiled out of the marginal likelihood in closed form, and
//! `(w, θ, g)` are fit deterministically: an isotropic grid first, then (with [`Ard::On`] and
//! enough observations) coordinate-wise refinement of each `θ_d` under a weak log-normal prior
//! centred on the isotropic value (so few observations cannot push relevances to extremes).
//! [`Ard::On`] fits the Hamming kernel alone (`w = 0`): the additive part weighs every dimension
//! alike, so it would carry an irrelevant one and hide the relevances ARD is there to find.
//!
//! Why isotropic by default: kernel dimensions do differ by orders of magnitude in effect (a
//! CUDA-graph or KV-layout choice moves throughput by tens of percent, a GEMM library by one or
//! two), which argues for ARD; but with 10–50 noisy observations of a 6–7-dimension space the
//! per-dimension relevances are poorly identified, and on the benchmark landscapes ARD reached
//! the optimum later (e.g. within 2 % after 25 evaluations in 12 of 24 runs against 18 of 24
//! isotropic) at several times the fitting cost. [`Ard::On`] stays available.

use serde::{Deserialize, Serialize};

use crate::linalg::Cholesky;
use crate::space::Space;

/// Whether per-dimension relevances are fit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ard {
    /// One `θ` for all dimensions (the default: it did better than ARD on the benchmark
    /// landscapes at the budgets that matter, 1–5 % of the space, and costs a tenth).
    #[default]
    Off,
    /// One `θ_d` per dimension, refined from the isotropic fit once there are at least
    /// `2·dims + 2` observations; the kernel is the Hamming kernel alone (no additive part).
    On,
}

/// Fitted hyperparameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    /// Mismatch penalty per dimension (`θ_d`): correlation of two combos differing only in `d`
    /// is `exp(−θ_d)`.
    pub theta: Vec<f64>,
    /// Weight of the additive (main-effects) part of the kernel, in [0, 1].
    #[serde(default)]
    pub additive: f64,
    /// Noise-to-signal variance ratio.
    pub noise_ratio: f64,
    /// Profiled signal variance (standardised units).
    pub signal_var: f64,
    /// Log marginal likelihood at the fit.
    pub log_marginal_likelihood: f64,
    /// Jitter the Cholesky factorisation had to add to the diagonal (0 normally).
    pub jitter: f64,
}

const THETA_GRID: [f64; 11] = [0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.5, 4.0];
const NOISE_GRID: [f64; 8] = [1e-6, 1e-4, 1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0];
/// Weights of the additive part tried by the fit (see the module docs).
const ADDITIVE_GRID: [f64; 2] = [0.0, 0.5];
const ARD_FACTORS: [f64; 6] = [0.0, 0.25, 0.5, 0.7, 1.4, 2.0];
/// Standard deviation of the log-normal prior of `θ_d` around the isotropic fit.
const ARD_PRIOR_SD: f64 = 1.0;
/// Offset so that `θ_d = 0` has a finite prior.
const ARD_PRIOR_EPS: f64 = 0.05;

/// A fitted GP. Predictions are in the caller's (transformed) units.
#[derive(Clone, Debug)]
pub struct Gp {
    obs: Vec<Vec<u16>>,
    hyper: Hyper,
    kern: Kern,
    chol: Cholesky,
    alpha: Vec<f64>,
    y_mean: f64,
    y_sd: f64,
}

/// Posterior of the latent function at one point (transformed units).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Posterior {
    pub mean: f64,
    /// Standard deviation of the latent value (not including observation noise).
    pub sd: f64,
}

/// Kernel values for every mismatch mask, when there are few enough dimensions to tabulate.
const TABLE_MAX_DIMS: usize = 12;

/// The kernel for given `θ`: a table over all mismatch masks (≤ 12 dimensions) or direct sums.
#[derive(Clone, Debug)]
struct Kern {
    theta: Vec<f64>,
    additive: f64,
    table: Option<Vec<f64>>,
}

impl Kern {
    fn new(theta: &[f64], additive: f64) -> Self {
        let table = (theta.len() <= TABLE_MAX_DIMS).then(|| {
            (0..1u64 << theta.len())
                .map(|m| kernel(theta, additive, m))
                .collect::<Vec<f64>>()
        });
        Self {
            theta: theta.to_vec(),
            additive,
            table,
        }
    }

    fn at(&self, mask: u64) -> f64 {
        match &self.table {
            Some(t) => t.get(mask as usize).copied().unwrap_or(0.0),
            None => kernel(&self.theta, self.additive, mask),
        }
    }
}

fn kernel(theta: &[f64], additive: f64, mask: u64) -> f64 {
    let mut s = 0.0;
    let mut m = mask;
    while m != 0 {
        let d = m.trailing_zeros() as usize;
        s += theta.get(d).copied().unwrap_or(0.0);
        m &= m - 1;
    }
    let dims = theta.len().max(1) as f64;
    let shared = dims - f64::from(mask.count_ones()).min(dims);
    additive * shared / dims + (1.0 - additive) * (-s).exp()
}

struct Fit {
    chol: Cholesky,
    alpha: Vec<f64>,
    signal_var: f64,
    lml: f64,
}

fn fit_one(
    masks: &[u64],
    n: usize,
    y: &[f64],
    theta: &[f64],
    additive: f64,
    g: f64,
) -> Option<Fit> {
    let kern = Kern::new(theta, additive);
    let mut a = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let k = kern.at(masks[i * n + j]);
            a[i * n + j] = k;
            a[j * n + i] = k;
        }
        a[i * n + i] += g;
    }
    let chol = Cholesky::new(&a, n)?;
    let alpha = chol.solve(y);
    let q: f64 = y.iter().zip(&alpha).map(|(a, b)| a * b).sum();
    let nf = n as f64;
    let signal_var = (q / nf).max(1e-12);
    let lml = -0.5 * nf * signal_var.ln()
        - 0.5 * chol.log_det()
        - 0.5 * nf * (1.0 + (2.0 * std::f64::consts::PI).ln());
    lml.is_finite().then_some(Fit {
        chol,
        alpha,
        signal_var,
        lml,
    })
}

fn log_prior(theta: &[f64], center: f64) -> f64 {
    theta
        .iter()
        .map(|t| {
            let z = ((t + ARD_PRIOR_EPS) / (center + ARD_PRIOR_EPS)).ln() / ARD_PRIOR_SD;
            -0.5 * z * z
        })
        .sum()
}

impl Gp {
    /// Fit to observations (`combos[i]` observed as `y[i]`, larger is better, duplicates
    /// allowed). `None` only when `y` is empty, lengths differ, or a value is not finite.
    pub fn fit(combos: &[&[u16]], y: &[f64], dims: usize, ard: Ard) -> Option<Self> {
        let n = y.len();
        if n == 0 || combos.len() != n || y.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let y_mean = y.iter().sum::<f64>() / n as f64;
        let var = y.iter().map(|v| (v - y_mean).powi(2)).sum::<f64>() / n as f64;
        let y_sd = if var.sqrt() > 1e-12 * y_mean.abs().max(1e-300) && var > 0.0 {
            var.sqrt()
        } else {
            1.0
        };
        let ys: Vec<f64> = y.iter().map(|v| (v - y_mean) / y_sd).collect();
        let mut masks = vec![0u64; n * n];
        for i in 0..n {
            for j in 0..i {
                let m = Space::mismatch(combos[i], combos[j]);
                masks[i * n + j] = m;
                masks[j * n + i] = m;
            }
        }
        // Isotropic grid, in a fixed order; ties keep the first (deterministic).
        let mut best: Option<(Vec<f64>, f64, f64, Fit)> = None;
        // With ARD the kernel is the Hamming kernel alone: the additive part weighs every
        // dimension alike and would carry an irrelevant one, hiding the relevances ARD is for.
        let weights: &[f64] = if ard == Ard::On {
            &[0.0]
        } else {
            &ADDITIVE_GRID
        };
        for &w in weights {
            for &t in &THETA_GRID {
                let theta = vec![t; dims];
                for &g in &NOISE_GRID {
                    if let Some(f) = fit_one(&masks, n, &ys, &theta, w, g)
                        && best.as_ref().is_none_or(|b| f.lml > b.3.lml)
                    {
                        best = Some((theta.clone(), w, g, f));
                    }
                }
            }
        }
        let (mut theta, additive, mut g, mut fit) = match best {
            Some(b) => b,
            // Unreachable in exact arithmetic (g ≥ 1e-6 keeps K positive definite); a large
            // nugget is the safe fallback.
            None => {
                let theta = vec![1.0; dims];
                let f = fit_one(&masks, n, &ys, &theta, 0.0, 1.0)?;
                (theta, 0.0, 1.0, f)
            }
        };
        if ard == Ard::On && n >= 2 * dims + 2 && dims > 1 {
            let center = theta[0];
            let mut obj = fit.lml + log_prior(&theta, center);
            for _sweep in 0..2 {
                let mut improved = false;
                for d in 0..dims {
                    let base = theta[d];
                    for &f in &ARD_FACTORS {
                        let mut cand = theta.clone();
                        cand[d] = base * f;
                        for &gg in &[g, g * 0.3, g * 3.0] {
                            if let Some(fc) = fit_one(&masks, n, &ys, &cand, additive, gg) {
                                let o = fc.lml + log_prior(&cand, center);
                                if o > obj + 1e-9 {
                                    obj = o;
                                    theta = cand.clone();
                                    g = gg;
                                    fit = fc;
                                    improved = true;
                                }
                            }
                        }
                    }
                }
                if !improved {
                    break;
                }
            }
        }
        Some(Self {
            obs: combos.iter().map(|c| c.to_vec()).collect(),
            kern: Kern::new(&theta, additive),
            hyper: Hyper {
                theta,
                additive,
                noise_ratio: g,
                signal_var: fit.signal_var,
                log_marginal_likelihood: fit.lml,
                jitter: fit.chol.jitter,
            },
            chol: fit.chol,
            alpha: fit.alpha,
            y_mean,
            y_sd,
        })
    }

    pub fn hyper(&self) -> &Hyper {
        &self.hyper
    }

    /// Standard deviation of the observation noise the fit implies (transformed units).
    pub fn noise_sd(&self) -> f64 {
        (self.hyper.signal_var * self.hyper.noise_ratio).sqrt() * self.y_sd
    }

    /// Posterior of the latent value at `combo`.
    pub fn predict(&self, combo: &[u16]) -> Posterior {
        let l = self.latent(combo);
        Posterior {
            mean: l.mean,
            sd: l.var.sqrt(),
        }
    }

    /// The posterior at `combo` in a form that also gives covariances with other points
    /// ([`Gp::cov`]): what a joint look at several combos (the knowledge gradient) needs.
    pub fn latent(&self, combo: &[u16]) -> Latent {
        let k: Vec<f64> = self
            .obs
            .iter()
            .map(|o| self.kern.at(Space::mismatch(combo, o)))
            .collect();
        let mean_s: f64 = k.iter().zip(&self.alpha).map(|(a, b)| a * b).sum();
        let white = self.chol.solve_lower(&k);
        let reduction: f64 = white.iter().map(|x| x * x).sum();
        let var_s = (self.hyper.signal_var * (1.0 - reduction)).max(0.0);
        let mean = self.y_mean + self.y_sd * mean_s;
        let var = self.y_sd * self.y_sd * var_s;
        Latent {
            mean: if mean.is_finite() { mean } else { self.y_mean },
            var: if var.is_finite() { var } else { 0.0 },
            combo: combo.to_vec(),
            white,
        }
    }

    /// Posterior covariance of the latent values at two points (transformed units²).
    pub fn cov(&self, a: &Latent, b: &Latent) -> f64 {
        let prior = self.kern.at(Space::mismatch(&a.combo, &b.combo));
        let explained: f64 = a.white.iter().zip(&b.white).map(|(x, y)| x * y).sum();
        let c = self.y_sd * self.y_sd * self.hyper.signal_var * (prior - explained);
        if c.is_finite() { c } else { 0.0 }
    }
}

/// The posterior at one point, kept whitened against the observations so that covariances with
/// other points cost one dot product (see [`Gp::cov`]).
#[derive(Clone, Debug)]
pub struct Latent {
    /// Posterior mean (transformed units).
    pub mean: f64,
    /// Posterior variance of the latent value (no observation noise).
    pub var: f64,
    combo: Vec<u16>,
    /// `L⁻¹·k(observations, combo)`.
    white: Vec<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn combos() -> Vec<Vec<u16>> {
        let mut v = Vec::new();
        for a in 0..3u16 {
            for b in 0..3u16 {
                for c in 0..2u16 {
                    v.push(vec![a, b, c]);
                }
            }
        }
        v
    }

    fn additive(c: &[u16]) -> f64 {
        [0.0, 1.0, -0.5][usize::from(c[0])]
            + [0.3, 0.0, 0.1][usize::from(c[1])]
            + 0.05 * f64::from(c[2])
    }

    #[test]
    fn kernel_matrices_are_positive_semidefinite() {
        // Every principal matrix over all 18 combos factorises (with a tiny nugget) for a range
        // of per-dimension penalties, including zero, and additive weights from none to all.
        let all = combos();
        let n = all.len();
        for theta in [
            [0.0, 0.0, 0.0],
            [0.1, 2.0, 0.0],
            [4.0, 4.0, 4.0],
            [0.02, 0.5, 1.0],
        ] {
            for w in [0.0, 0.5, 1.0] {
                let mut a = vec![0.0; n * n];
                for i in 0..n {
                    for j in 0..n {
                        a[i * n + j] = kernel(&theta, w, Space::mismatch(&all[i], &all[j]));
                    }
                    a[i * n + i] += 1e-9;
                }
                let c = Cholesky::new(&a, n).unwrap();
                assert!(
                    c.jitter <= 1e-8,
                    "theta {theta:?}, w {w} needed jitter {}",
                    c.jitter
                );
            }
        }
    }

    #[test]
    fn the_fit_takes_the_additive_part_for_main_effects_and_leaves_it_for_interactions() {
        // A bigger space (4 × 4 × 4 × 3) sampled sparsely: main effects alone, then the same
        // values rearranged into a pure interaction of dims 0 and 1.
        let mut all = Vec::new();
        for a in 0..4u16 {
            for b in 0..4u16 {
                for c in 0..4u16 {
                    for d in 0..3u16 {
                        all.push(vec![a, b, c, d]);
                    }
                }
            }
        }
        let main = |c: &[u16]| {
            [0.0, 0.4, -0.3, 0.1][usize::from(c[0])]
                + [0.2, -0.2, 0.0, 0.3][usize::from(c[1])]
                + [0.0, 0.1, -0.1, 0.05][usize::from(c[2])]
                + [0.0, -0.15, 0.1][usize::from(c[3])]
        };
        // Every 5th combo: 39 of 192.
        let train: Vec<&[u16]> = all.iter().step_by(5).map(Vec::as_slice).collect();
        let y: Vec<f64> = train.iter().map(|c| main(c)).collect();
        let gp = Gp::fit(&train, &y, 4, Ard::Off).unwrap();
        assert_eq!(gp.hyper().additive, 0.5, "{:?}", gp.hyper());
        // Unseen combos are predicted from the values they share with the training ones.
        let test: Vec<&Vec<u16>> = all.iter().skip(2).step_by(5).collect();
        let err: f64 = test
            .iter()
            .map(|c| (gp.predict(c).mean - main(c)).abs())
            .sum::<f64>()
            / test.len() as f64;
        assert!(err < 0.05, "mean abs error {err}");

        let table = [
            [0.0, 1.0, -0.5, 0.3],
            [0.7, -0.2, 0.4, -0.9],
            [-1.0, 0.3, 0.9, 0.1],
            [0.5, -0.6, -0.1, 0.8],
        ];
        let y: Vec<f64> = train
            .iter()
            .map(|c| table[usize::from(c[0])][usize::from(c[1])])
            .collect();
        let gp = Gp::fit(&train, &y, 4, Ard::Off).unwrap();
        assert_eq!(gp.hyper().additive, 0.0, "{:?}", gp.hyper());
    }

    #[test]
    fn joint_covariances_agree_with_the_marginals_and_a_direct_computation() {
        let all = combos();
        let obs: Vec<&[u16]> = all.iter().step_by(5).map(Vec::as_slice).collect();
        let y: Vec<f64> = obs.iter().map(|c| additive(c)).collect();
        let gp = Gp::fit(&obs, &y, 3, Ard::Off).unwrap();
        let (a, b) = (gp.latent(&all[1]), gp.latent(&all[2]));
        // Variance is the covariance with itself, and matches `predict`.
        assert!((gp.cov(&a, &a) - a.var).abs() < 1e-12);
        assert!((gp.predict(&all[1]).sd - a.var.sqrt()).abs() < 1e-12);
        // Symmetric, and within the Cauchy–Schwarz bound.
        let c = gp.cov(&a, &b);
        assert!((c - gp.cov(&b, &a)).abs() < 1e-15);
        assert!(c.abs() <= (a.var * b.var).sqrt() + 1e-12);
        // Against k(a,b) − k_aᵀ K⁻¹ k_b computed with a full solve.
        let h = gp.hyper();
        let kern = Kern::new(&h.theta, h.additive);
        let n = obs.len();
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                k[i * n + j] = kern.at(Space::mismatch(obs[i], obs[j]));
            }
            k[i * n + i] += h.noise_ratio;
        }
        let chol = Cholesky::new(&k, n).unwrap();
        let ka: Vec<f64> = obs
            .iter()
            .map(|o| kern.at(Space::mismatch(&all[1], o)))
            .collect();
        let kb: Vec<f64> = obs
            .iter()
            .map(|o| kern.at(Space::mismatch(&all[2], o)))
            .collect();
        let kinv_kb = chol.solve(&kb);
        let direct = kern.at(Space::mismatch(&all[1], &all[2]))
            - ka.iter().zip(&kinv_kb).map(|(x, y)| x * y).sum::<f64>();
        let scale = gp.y_sd * gp.y_sd * h.signal_var;
        assert!(
            (c - scale * direct).abs() < 1e-9 * scale.max(1.0),
            "{c} vs {}",
            scale * direct
        );
    }

    #[test]
    fn posterior_interpolates_noiseless_data() {
        let all = combos();
        let refs: Vec<&[u16]> = all.iter().map(Vec::as_slice).collect();
        let y: Vec<f64> = all.iter().map(|c| additive(c)).collect();
        let gp = Gp::fit(&refs, &y, 3, Ard::On).unwrap();
        for (c, t) in all.iter().zip(&y) {
            let p = gp.predict(c);
            assert!((p.mean - t).abs() < 0.02, "{c:?}: {} vs {t}", p.mean);
            assert!(p.sd < 0.05);
        }
        assert!(gp.hyper().noise_ratio <= 1e-3);
    }

    #[test]
    fn generalises_to_unseen_combos_and_is_uncertain_there() {
        let all = combos();
        let train: Vec<&[u16]> = all.iter().step_by(2).map(Vec::as_slice).collect();
        let y: Vec<f64> = train.iter().map(|c| additive(c)).collect();
        let gp = Gp::fit(&train, &y, 3, Ard::Off).unwrap();
        let mut err = 0.0;
        for c in all.iter().skip(1).step_by(2) {
            let p = gp.predict(c);
            err += (p.mean - additive(c)).abs();
            assert!(p.sd > 0.0);
        }
        assert!(err / 9.0 < 0.2, "mean abs error {}", err / 9.0);
    }

    #[test]
    fn degenerate_inputs_give_finite_models() {
        let c = [vec![0u16, 0], vec![0, 0], vec![1, 1]];
        let refs: Vec<&[u16]> = c.iter().map(Vec::as_slice).collect();
        // duplicates and equal values
        let gp = Gp::fit(&refs, &[1.0, 1.0, 1.0], 2, Ard::On).unwrap();
        let p = gp.predict(&[1, 0]);
        assert!(p.mean.is_finite() && p.sd.is_finite());
        // one observation
        let gp = Gp::fit(&refs[..1], &[3.0], 2, Ard::On).unwrap();
        assert!((gp.predict(&[0, 0]).mean - 3.0).abs() < 1e-6);
        // nothing or NaN: no model
        assert!(Gp::fit(&[], &[], 2, Ard::On).is_none());
        assert!(Gp::fit(&refs[..1], &[f64::NAN], 2, Ard::On).is_none());
    }

    #[test]
    fn ard_learns_an_irrelevant_dimension() {
        // y depends on dims 0 and 1 only; with all 18 points, dim 2 gets the smallest penalty,
        // whether the two act additively or through their interaction.
        let all = combos();
        let refs: Vec<&[u16]> = all.iter().map(Vec::as_slice).collect();
        let table = [[0.0, 1.0, -0.5], [0.7, -0.2, 0.4], [-1.0, 0.3, 0.9]];
        let additive =
            |c: &Vec<u16>| [0.0, 1.0, -0.5][usize::from(c[0])] + [0.3, 0.0, 0.6][usize::from(c[1])];
        let interaction = |c: &Vec<u16>| table[usize::from(c[0])][usize::from(c[1])];
        for f in [&additive as &dyn Fn(&Vec<u16>) -> f64, &interaction] {
            let y: Vec<f64> = all.iter().map(f).collect();
            let gp = Gp::fit(&refs, &y, 3, Ard::On).unwrap();
            assert_eq!(
                gp.hyper().additive,
                0.0,
                "ARD fits the Hamming kernel alone"
            );
            let t = &gp.hyper().theta;
            assert!(t[2] < t[0] && t[2] < t[1], "{t:?}");
        }
    }
}
