//! Acquisition: expected improvement (in the maximising orientation the session works in) and
//! the probability that a constraint is met, with the standard normal functions they need.

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
    fn feasibility_probability() {
        assert!((prob_at_most(10.0, 1.0, 10.0) - 0.5).abs() < 1e-7);
        assert!(prob_at_most(5.0, 1.0, 10.0) > 0.999);
        assert_eq!(prob_at_most(11.0, 0.0, 10.0), 0.0);
        assert_eq!(prob_at_most(9.0, 0.0, 10.0), 1.0);
    }
}
