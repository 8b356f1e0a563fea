//! Acquisition: expected improvement (in the maximising orientation the session works in), the
//! expected gain of a maximum of correlated normals (the knowledge gradient's core) and the
//! probability that a constraint is met, with the standard normal functions they need.

/// Standard normal density.
pub fn norm_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Standard normal distribution function, via a Chebyshev erfc (fractional error < 1.2e-7,
/// Numerical Recipes `erfcc`), plenty for ranking candidates.
pub fn norm_cdf(z: f64) -> f64 {
    if z.is_nan() {
        return 0.5;
    }
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Expected improvement of a point with posterior `mean`, `sd` over the incumbent `best`, with
/// an exploration offset `xi` (same units). Never negative, never NaN.
pub fn expected_improvement(mean: f64, sd: f64, best: f64, xi: f64) -> f64 {
    let d = mean - best - xi;
    let ei = if sd > 1e-12 {
        let z = d / sd;
        d * norm_cdf(z) + sd * norm_pdf(z)
    } else {
        d.max(0.0)
    };
    if ei.is_finite() { ei.max(0.0) } else { 0.0 }
}

/// `E[max(z + Z, 0)]` for `Z ~ N(0, 1)`: `z·Φ(z) + φ(z)`, never negative.
fn positive_part_mean(z: f64) -> f64 {
    let v = z * norm_cdf(z) + norm_pdf(z);
    if v.is_finite() { v.max(0.0) } else { 0.0 }
}

/// `E[max_i (a_i + b_i·Z)] − max_i a_i` for one `Z ~ N(0, 1)`: how much the largest of several
/// posterior means is expected to rise when one measurement moves mean `i` by `b_i` per
/// standardised unit of its outcome. This is the knowledge gradient of that measurement for
/// correlated beliefs (Frazier, Powell & Dayanik 2009, *The knowledge-gradient policy for
/// correlated normal beliefs*, Algorithm 1): sort the lines `a_i + b_i·z` by slope, keep their
/// upper envelope, and sum `(b_{j+1} − b_j)·f(−|c_j|)` over its breakpoints `c_j`, with
/// `f(z) = z·Φ(z) + φ(z)`. Non-finite entries are ignored; the result is never negative.
pub fn expected_max_gain(a: &[f64], b: &[f64]) -> f64 {
    let mut lines: Vec<(f64, f64)> = a
        .iter()
        .zip(b)
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(&a, &b)| (a, b))
        .collect();
    // By slope; equal slopes by intercept, so the last of a run of equal slopes dominates it.
    lines.sort_by(|x, y| x.1.total_cmp(&y.1).then(x.0.total_cmp(&y.0)));
    // The upper envelope: (intercept, slope, z where the line becomes the maximum).
    let mut env: Vec<(f64, f64, f64)> = Vec::with_capacity(lines.len());
    for (ai, bi) in lines {
        loop {
            let Some(&(at, bt, ct)) = env.last() else {
                env.push((ai, bi, f64::NEG_INFINITY));
                break;
            };
            if bi == bt {
                env.pop();
                continue;
            }
            let z = (at - ai) / (bi - bt);
            if z <= ct {
                env.pop();
                continue;
            }
            env.push((ai, bi, z));
            break;
        }
    }
    let gain: f64 = env
        .windows(2)
        .map(|w| (w[1].1 - w[0].1) * positive_part_mean(-w[1].2.abs()))
        .sum();
    if gain.is_finite() { gain.max(0.0) } else { 0.0 }
}

/// Probability that a value with posterior `mean`, `sd` (including observation noise where the
/// caller wants it) is at most `threshold`.
pub fn prob_at_most(mean: f64, sd: f64, threshold: f64) -> f64 {
    if sd > 1e-12 {
        norm_cdf((threshold - mean) / sd)
    } else if mean <= threshold {
        1.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_functions_match_known_values() {
        assert!((norm_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((norm_cdf(1.959_963_985) - 0.975).abs() < 1e-6);
        assert!((norm_cdf(-1.0) - 0.158_655_254).abs() < 1e-6);
        assert!(norm_cdf(-40.0) >= 0.0 && norm_cdf(40.0) <= 1.0);
        assert!((norm_pdf(0.0) - 0.398_942_28).abs() < 1e-8);
    }

    #[test]
    fn expected_improvement_cases() {
        // At the incumbent with sd 1: EI = φ(0) = 0.3989.
        assert!((expected_improvement(0.0, 1.0, 0.0, 0.0) - 0.398_942_28).abs() < 1e-6);
        // No uncertainty: plain improvement.
        assert_eq!(expected_improvement(2.0, 0.0, 1.0, 0.0), 1.0);
        assert_eq!(expected_improvement(0.5, 0.0, 1.0, 0.0), 0.0);
        // Monotone in mean and in sd.
        assert!(
            expected_improvement(0.1, 1.0, 0.0, 0.0) > expected_improvement(0.0, 1.0, 0.0, 0.0)
        );
        assert!(
            expected_improvement(0.0, 2.0, 0.0, 0.0) > expected_improvement(0.0, 1.0, 0.0, 0.0)
        );
        assert_eq!(expected_improvement(f64::NAN, 1.0, 0.0, 0.0), 0.0);
        assert!(expected_improvement(-50.0, 1.0, 0.0, 0.0) >= 0.0);
    }

    #[test]
    fn expected_max_gain_matches_closed_forms_and_a_monte_carlo_estimate() {
        // Two lines: E[max(0, Z − 1)] is the expected improvement at distance 1.
        let ei = expected_improvement(-1.0, 1.0, 0.0, 0.0);
        assert!((expected_max_gain(&[0.0, -1.0], &[0.0, 1.0]) - ei).abs() < 1e-9);
        // E[max(0, Z)] = φ(0); a constant line dominated everywhere adds nothing.
        let g = expected_max_gain(&[0.0, 0.0, -5.0], &[0.0, 1.0, 0.0]);
        assert!((g - 0.398_942_28).abs() < 1e-6);
        // Parallel lines: no gain, whatever the slope.
        assert_eq!(expected_max_gain(&[1.0, 0.0], &[0.7, 0.7]), 0.0);
        assert_eq!(expected_max_gain(&[], &[]), 0.0);
        assert_eq!(expected_max_gain(&[f64::NAN, 1.0], &[1.0, 0.0]), 0.0);
        // Several crossing lines against a Monte Carlo estimate on a fine quadrature.
        let a = [0.3, 0.0, -0.2, 0.1, -1.0];
        let b = [-0.5, 0.2, 0.9, 0.0, 1.5];
        let top = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (mut num, mut den) = (0.0, 0.0);
        let steps = 200_000;
        for k in 0..=steps {
            let z = -9.0 + 18.0 * k as f64 / steps as f64;
            let m = a
                .iter()
                .zip(&b)
                .map(|(a, b)| a + b * z)
                .fold(f64::NEG_INFINITY, f64::max);
            num += norm_pdf(z) * (m - top);
            den += norm_pdf(z);
        }
        let g = expected_max_gain(&a, &b);
        assert!((g - num / den).abs() < 1e-5, "{g} vs {}", num / den);
        // Order does not matter.
        let g2 = expected_max_gain(&[-1.0, 0.1, 0.3, -0.2, 0.0], &[1.5, 0.0, -0.5, 0.9, 0.2]);
        assert!((g - g2).abs() < 1e-12);
    }

    #[test]
    fn feasibility_probability() {
        assert!((prob_at_most(10.0, 1.0, 10.0) - 0.5).abs() < 1e-7);
        assert!(prob_at_most(5.0, 1.0, 10.0) > 0.999);
        assert_eq!(prob_at_most(11.0, 0.0, 10.0), 0.0);
        assert_eq!(prob_at_most(9.0, 0.0, 10.0), 1.0);
    }
}
