//! Robust two-sample statistics: trimmed means, Yuen's trimmed-mean test (winsorized variances,
//! Welch–Satterthwaite degrees of freedom), Welch's test on the untrimmed data for comparison,
//! confidence intervals for the difference and the ratio, and Hedges' g.
//!
//! Trim count: `g = round(trim · n)` per side (half rounds up), so 10 % of 7 reps trims 1 from
//! each end (floor would trim nothing). At least 2 values must remain.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Why a comparison could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    #[error("{n} reps with trim {trim} leave {left} after trimming; at least 2 are needed")]
    TooFewReps { n: usize, trim: f64, left: usize },
    #[error("a sample contains a non-finite value ({value})")]
    NonFinite { value: f64 },
    #[error("both samples have zero spread after winsorizing, so no interval can be formed")]
    ZeroVariance,
    #[error("the baseline's trimmed mean is zero, so no ratio can be formed")]
    ZeroBaseline,
}

/// Reps removed from each end.
pub fn trim_count(n: usize, trim: f64) -> usize {
    (trim * n as f64 + 0.5).floor() as usize
}

/// Check `n` reps leave enough after trimming.
pub fn check_reps(n: usize, trim: f64) -> Result<(), StatsError> {
    let g = trim_count(n, trim);
    let left = n.saturating_sub(2 * g);
    if left < 2 {
        return Err(StatsError::TooFewReps { n, trim, left });
    }
    Ok(())
}

fn sorted(x: &[f64]) -> Result<Vec<f64>, StatsError> {
    if let Some(&value) = x.iter().find(|v| !v.is_finite()) {
        return Err(StatsError::NonFinite { value });
    }
    let mut v = x.to_vec();
    v.sort_by(f64::total_cmp);
    Ok(v)
}

/// The trimmed mean.
pub fn trimmed_mean(x: &[f64], trim: f64) -> Result<f64, StatsError> {
    check_reps(x.len(), trim)?;
    let v = sorted(x)?;
    let g = trim_count(v.len(), trim);
    let kept = &v[g..v.len() - g];
    Ok(kept.iter().sum::<f64>() / kept.len() as f64)
}

/// The trimmed mean and its standard error (Yuen's, plus the launch-to-launch component for
/// reps spread over `launches` launches; see [`Between`]).
pub fn trimmed_mean_se(
    x: &[f64],
    trim: f64,
    launch_cv: f64,
    launches: usize,
) -> Result<(f64, f64), StatsError> {
    let m = trimmed_mean(x, trim)?;
    let n = x.len() as f64;
    let h = n - 2.0 * trim_count(x.len(), trim) as f64;
    let d = (n - 1.0) * winsorized_variance(x, trim)? / (h * (h - 1.0));
    let e = (launch_cv * m).powi(2) * (1.0 / launches.max(1) as f64 - 1.0 / n).max(0.0);
    Ok((m, (d + e).sqrt()))
}

/// The winsorized sample variance (n − 1 denominator): the `g` smallest values are replaced by
/// the next one up, the `g` largest by the next one down.
pub fn winsorized_variance(x: &[f64], trim: f64) -> Result<f64, StatsError> {
    check_reps(x.len(), trim)?;
    let mut v = sorted(x)?;
    let n = v.len();
    let g = trim_count(n, trim);
    let (lo, hi) = (v[g], v[n - 1 - g]);
    for item in v.iter_mut() {
        *item = item.clamp(lo, hi);
    }
    Ok(variance(&v))
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn variance(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (x.len() as f64 - 1.0)
}

/// The result of comparing a candidate sample with a baseline sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub n_candidate: usize,
    pub n_baseline: usize,
    pub trim: f64,
    pub candidate_trimmed_mean: f64,
    pub baseline_trimmed_mean: f64,
    /// candidate − baseline (trimmed means).
    pub difference: f64,
    /// Two-sided confidence interval of the difference at `confidence`.
    pub difference_ci: (f64, f64),
    /// candidate / baseline (trimmed means).
    pub ratio: f64,
    /// Confidence interval of the ratio (delta method on the log ratio).
    pub ratio_ci: (f64, f64),
    /// Standard error of ln(ratio) (delta method), on `yuen_df` degrees of freedom.
    pub log_ratio_se: f64,
    pub confidence: f64,
    /// Yuen's statistic, degrees of freedom and two-sided p-value.
    pub yuen_t: f64,
    pub yuen_df: f64,
    pub yuen_p: f64,
    /// Welch's test on the untrimmed samples, for comparison.
    pub welch_t: f64,
    pub welch_df: f64,
    pub welch_p: f64,
    /// Hedges' g (Cohen's d with the small-sample correction), on the untrimmed samples.
    pub hedges_g: f64,
    /// The smallest relative difference this comparison finds with 80 % power: a "no
    /// significant difference" means "smaller than this, if any", never "equal".
    pub mde: f64,
}

/// The upper-tail probability P(T > t) of Student's t with `df` degrees of freedom.
pub fn upper_tail(t: f64, df: f64) -> f64 {
    match StudentsT::new(0.0, 1.0, df) {
        Ok(d) => (1.0 - d.cdf(t)).clamp(0.0, 1.0),
        Err(_) => f64::NAN,
    }
}

/// The `p` quantile of Student's t with `df` degrees of freedom. Above 10^5 degrees of freedom
/// (and for infinite ones, as when one arm has no spread) this is the normal quantile, to four
/// digits; statrs's inverse beta function does not terminate for some extreme `df`, so it is
/// never asked for those. NaN for NaN or non-positive `df` or `p` outside (0, 1).
pub fn t_quantile(df: f64, p: f64) -> f64 {
    if df.is_nan() || df <= 0.0 || !(p > 0.0 && p < 1.0) {
        return f64::NAN;
    }
    if df > 1e5 {
        return statrs::distribution::Normal::standard().inverse_cdf(p);
    }
    match StudentsT::new(0.0, 1.0, df.max(0.05)) {
        Ok(t) => t.inverse_cdf(p),
        Err(_) => f64::NAN,
    }
}

fn two_sided_p(t: f64, df: f64) -> f64 {
    match StudentsT::new(0.0, 1.0, df) {
        Ok(d) => (2.0 * (1.0 - d.cdf(t.abs()))).clamp(0.0, 1.0),
        Err(_) => f64::NAN,
    }
}

/// Yuen's test of candidate against baseline, with intervals at `confidence` (e.g. 0.95).
pub fn compare(
    candidate: &[f64],
    baseline: &[f64],
    trim: f64,
    confidence: f64,
) -> Result<Comparison, StatsError> {
    compare_with(candidate, baseline, trim, confidence, Between::NONE)
}

/// Launch-to-launch variation that reps inside one launch cannot see (clocks, allocation,
/// compilation caches). Its variance, `(cv · mean)² / launches` per arm, is added to each arm's
/// squared standard error as a known component (from calibration or the hardware profile), so
/// comparisons of arms measured in few launches are not overconfident.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Between {
    pub cv: f64,
    pub candidate_launches: usize,
    pub baseline_launches: usize,
}

impl Between {
    /// No between-launch component (every arm's reps are independent).
    pub const NONE: Between = Between {
        cv: 0.0,
        candidate_launches: 1,
        baseline_launches: 1,
    };
}

/// [`compare`] with a between-launch variance component.
pub fn compare_with(
    candidate: &[f64],
    baseline: &[f64],
    trim: f64,
    confidence: f64,
    between: Between,
) -> Result<Comparison, StatsError> {
    let (x, y) = (sorted(candidate)?, sorted(baseline)?);
    check_reps(x.len(), trim)?;
    check_reps(y.len(), trim)?;
    let part = |v: &[f64]| -> Result<(f64, f64, f64), StatsError> {
        let n = v.len() as f64;
        let h = n - 2.0 * trim_count(v.len(), trim) as f64;
        let sw2 = winsorized_variance(v, trim)?;
        Ok((trimmed_mean(v, trim)?, (n - 1.0) * sw2 / (h * (h - 1.0)), h))
    };
    let (mx, dx, hx) = part(&x)?;
    let (my, dy, hy) = part(&y)?;
    if dx + dy <= 0.0 {
        return Err(StatsError::ZeroVariance);
    }
    if my == 0.0 {
        return Err(StatsError::ZeroBaseline);
    }
    // The between-launch components are known (calibrated), so they add variance but no
    // uncertainty about the variance: the degrees of freedom come from the reps alone. Reps
    // spread over L launches already show part of it in their spread (as if every rep had its
    // own launch, σ_b²/n); the rest, σ_b²·(1/L − 1/n), is added.
    let extra = |m: f64, launches: usize, n: usize| {
        (between.cv * m).powi(2) * (1.0 / launches.max(1) as f64 - 1.0 / n as f64).max(0.0)
    };
    let ex = extra(mx, between.candidate_launches, x.len());
    let ey = extra(my, between.baseline_launches, y.len());
    let se = (dx + dy + ex + ey).sqrt();
    let yuen_t = (mx - my) / se;
    let yuen_df = (dx + dy + ex + ey).powi(2) / (dx * dx / (hx - 1.0) + dy * dy / (hy - 1.0));
    let q = t_quantile(yuen_df, 0.5 + confidence / 2.0);
    let difference = mx - my;
    let ratio = mx / my;
    let se_log = ((dx + ex) / (mx * mx) + (dy + ey) / (my * my)).sqrt();
    // Minimum detectable effect at 80 % power (two-sided α = 1 − confidence), relative to the
    // baseline: (t_{1−α/2} + t_{0.8}) · SE / baseline.
    let mde = (q + t_quantile(yuen_df, 0.8)) * se / my.abs();
    // Welch on the untrimmed data.
    let (nx, ny) = (x.len() as f64, y.len() as f64);
    let (vx, vy) = (variance(&x), variance(&y));
    let wse = (vx / nx + vy / ny).sqrt();
    let welch_t = if wse > 0.0 {
        (mean(&x) - mean(&y)) / wse
    } else {
        0.0
    };
    let welch_df = if wse > 0.0 {
        (vx / nx + vy / ny).powi(2)
            / ((vx / nx).powi(2) / (nx - 1.0) + (vy / ny).powi(2) / (ny - 1.0))
    } else {
        nx + ny - 2.0
    };
    let pooled = (((nx - 1.0) * vx + (ny - 1.0) * vy) / (nx + ny - 2.0)).sqrt();
    let j = 1.0 - 3.0 / (4.0 * (nx + ny) - 9.0);
    let hedges_g = if pooled > 0.0 {
        (mean(&x) - mean(&y)) / pooled * j
    } else {
        0.0
    };
    Ok(Comparison {
        n_candidate: x.len(),
        n_baseline: y.len(),
        trim,
        candidate_trimmed_mean: mx,
        baseline_trimmed_mean: my,
        difference,
        difference_ci: (difference - q * se, difference + q * se),
        ratio,
        ratio_ci: if ratio > 0.0 {
            (
                (ratio.ln() - q * se_log).exp(),
                (ratio.ln() + q * se_log).exp(),
            )
        } else {
            (f64::NAN, f64::NAN)
        },
        log_ratio_se: se_log,
        confidence,
        yuen_t,
        yuen_df,
        yuen_p: two_sided_p(yuen_t, yuen_df),
        welch_t,
        welch_df,
        welch_p: if wse > 0.0 {
            two_sided_p(welch_t, welch_df)
        } else {
            1.0
        },
        hedges_g,
        mde,
    })
}

/// Pocock's constant nominal per-look level for K equally spaced looks at an overall two-sided
/// α = 0.05 (Pocock 1977, Table 1: 0.0294, 0.0221, 0.0182, 0.0158 for K = 2..5). Other α are
/// scaled proportionally (an approximation; the decision-accuracy benchmark measures the result).
pub fn pocock_level(alpha: f64, looks: usize) -> f64 {
    let at_005 = match looks {
        0 | 1 => 0.05,
        2 => 0.0294,
        3 => 0.0221,
        4 => 0.0182,
        _ => 0.0158,
    };
    at_005 * alpha / 0.05
}

/// The planned looks between `min_reps` and `max_reps`: at most 5, evenly spaced, the last at
/// `max_reps`.
pub fn planned_looks(min_reps: usize, max_reps: usize) -> Vec<usize> {
    if max_reps <= min_reps {
        return vec![max_reps.max(min_reps)];
    }
    let k = (max_reps - min_reps + 1).min(5);
    let mut looks: Vec<usize> = (0..k)
        .map(|i| {
            min_reps + ((max_reps - min_reps) as f64 * i as f64 / (k - 1) as f64).round() as usize
        })
        .collect();
    looks.dedup();
    looks
}

/// Why a sequential measurement stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The whole interval is above the gate's threshold.
    Win,
    /// The whole interval is below the gate's threshold: this combo cannot pass.
    Loss,
    /// The interval lies within ± the noise floor: equivalent to the baseline.
    Futility,
    /// The interval is narrower than the noise floor: more reps cannot change the verdict much.
    Precision,
}

/// The group-sequential rule applied at a planned look: the improvement interval (`ratio_ci`,
/// direction-aware, at the per-look level) against the gate's `threshold` (e.g. 1.03) and the
/// noise floor (e.g. 0.02).
pub fn sequential_decision(ci: (f64, f64), threshold: f64, floor: f64) -> Option<StopReason> {
    let (lo, hi) = ci;
    if !(lo.is_finite() && hi.is_finite()) {
        return None;
    }
    if lo > threshold {
        Some(StopReason::Win)
    } else if hi < threshold {
        Some(StopReason::Loss)
    } else if lo > 1.0 - floor && hi < 1.0 + floor {
        Some(StopReason::Futility)
    } else if hi - lo < floor {
        Some(StopReason::Precision)
    } else {
        None
    }
}

/// Holm's step-down adjustment of p-values (family-wise error control, valid under any
/// dependence between the comparisons — they share one baseline).
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in idx.iter().enumerate() {
        let adj = ((m - rank) as f64 * p[i]).min(1.0);
        running = running.max(adj);
        out[i] = running;
    }
    out
}

#[cfg(test)]
mod t_quantile_tests {
    use super::t_quantile;

    #[test]
    fn extreme_degrees_of_freedom_terminate() {
        for df in [
            1e-9,
            0.01,
            0.5,
            1.0,
            3.7,
            1e4,
            1e6,
            1e12,
            1e300,
            f64::INFINITY,
        ] {
            let q = t_quantile(df, 0.975);
            assert!(q.is_finite() && q > 1.9, "df {df}: {q}");
        }
        assert!((t_quantile(f64::INFINITY, 0.975) - 1.959964).abs() < 1e-5);
        assert!((t_quantile(10.0, 0.975) - 2.228139).abs() < 1e-5);
        assert!(t_quantile(f64::NAN, 0.9).is_nan() && t_quantile(5.0, 1.0).is_nan());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn trim_count_rounds() {
        assert_eq!(trim_count(7, 0.1), 1);
        assert_eq!(trim_count(20, 0.1), 2);
        assert_eq!(trim_count(4, 0.1), 0);
        assert_eq!(trim_count(10, 0.2), 2);
        assert!(check_reps(3, 0.1).is_ok());
        assert!(check_reps(3, 0.4).is_err());
    }

    #[test]
    fn trimmed_mean_and_winsorized_variance() {
        // 20 % trimming of 10 values drops 2 from each end.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 100.0];
        assert!(close(trimmed_mean(&x, 0.2).unwrap(), 5.5, 1e-12));
        // Winsorized: [3,3,3,4,5,6,7,8,8,8], variance 4.7222...
        assert!(close(
            winsorized_variance(&x, 0.2).unwrap(),
            42.5 / 9.0,
            1e-12
        ));
    }

    #[test]
    fn welch_matches_a_known_case() {
        // Two samples whose Welch statistic is easy to compute by hand:
        // x: mean 20.0, var 2.5 (n 5); y: mean 22.0, var 10.0 (n 5).
        let x = [18.0, 19.0, 20.0, 21.0, 22.0];
        let y = [18.0, 20.0, 22.0, 24.0, 26.0];
        let c = compare(&x, &y, 0.0, 0.95).unwrap();
        let se = (2.5f64 / 5.0 + 10.0 / 5.0).sqrt();
        assert!(close(c.welch_t, -2.0 / se, 1e-12));
        // Welch–Satterthwaite: (0.5 + 2)^2 / (0.25/4 + 4/4) = 6.25 / 1.0625 = 5.882...
        assert!(close(c.welch_df, 6.25 / 1.0625, 1e-9));
        // With no trimming Yuen's test is Welch's test.
        assert!(close(c.yuen_t, c.welch_t, 1e-12));
        assert!(close(c.yuen_df, c.welch_df, 1e-9));
    }

    #[test]
    fn yuen_on_wilcox_example() {
        // Wilcox (2012, Introduction to Robust Estimation, §5.3) style check computed by hand:
        // 20 % trimming, n = 10 each.
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 100.0];
        let y = [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0];
        let c = compare(&x, &y, 0.2, 0.95).unwrap();
        // x: tm 5.5, sw2 4.7222, h 6 -> d = 9*4.7222/30 = 1.41667
        // y: tm 7.5, winsorized [5,5,5,6,7,8,9,10,10,10] var 4.7222 -> d = 1.41667
        let d: f64 = 9.0 * (42.5 / 9.0) / 30.0;
        assert!(close(c.yuen_t, -2.0 / (2.0 * d).sqrt(), 1e-12));
        // df = (2d)^2 / (2 d^2 / 5) = 10
        assert!(close(c.yuen_df, 10.0, 1e-9));
        // t = -1.1882 on 10 df -> p ≈ 0.262 (t table).
        assert!(close(c.yuen_p, 0.262, 0.002), "{}", c.yuen_p);
    }

    #[test]
    fn comparison_is_antisymmetric_and_scale_invariant() {
        let a = [100.0, 102.0, 98.0, 101.0, 99.5, 103.0, 97.0];
        let b = [104.0, 105.5, 103.0, 106.0, 102.0, 107.0, 104.5];
        let ab = compare(&a, &b, 0.1, 0.95).unwrap();
        let ba = compare(&b, &a, 0.1, 0.95).unwrap();
        assert!(close(ab.yuen_t, -ba.yuen_t, 1e-12));
        assert!(close(ab.yuen_p, ba.yuen_p, 1e-12));
        let a10: Vec<f64> = a.iter().map(|v| v * 10.0).collect();
        let b10: Vec<f64> = b.iter().map(|v| v * 10.0).collect();
        let s = compare(&a10, &b10, 0.1, 0.95).unwrap();
        assert!(close(s.yuen_t, ab.yuen_t, 1e-9));
        assert!(close(s.ratio, ab.ratio, 1e-12));
        assert!(close(s.hedges_g, ab.hedges_g, 1e-9));
    }

    #[test]
    fn constant_sample_and_bad_input() {
        assert_eq!(trimmed_mean(&[5.0; 7], 0.1).unwrap(), 5.0);
        assert_eq!(
            compare(&[5.0; 7], &[5.0; 7], 0.1, 0.95),
            Err(StatsError::ZeroVariance)
        );
        assert!(matches!(
            compare(&[1.0, f64::NAN, 2.0], &[1.0, 2.0, 3.0], 0.0, 0.95),
            Err(StatsError::NonFinite { .. })
        ));
        assert!(matches!(
            compare(&[1.0, 2.0], &[1.0, 2.0, 3.0], 0.3, 0.95),
            Err(StatsError::TooFewReps { .. })
        ));
    }

    #[test]
    fn between_launch_component_widens_the_interval_and_reports_mde() {
        let a = [100.0, 102.0, 98.0, 101.0, 99.5, 103.0, 97.0];
        let b = [104.0, 105.5, 103.0, 106.0, 102.0, 107.0, 104.5];
        let plain = compare(&a, &b, 0.1, 0.95).unwrap();
        let with = compare_with(
            &a,
            &b,
            0.1,
            0.95,
            Between {
                cv: 0.02,
                candidate_launches: 1,
                baseline_launches: 1,
            },
        )
        .unwrap();
        assert!(with.yuen_p > plain.yuen_p);
        assert!(
            with.difference_ci.1 - with.difference_ci.0
                > plain.difference_ci.1 - plain.difference_ci.0
        );
        assert_eq!(with.difference, plain.difference);
        // Reps spread over as many launches as reps need no component at all.
        let many = compare_with(
            &a,
            &b,
            0.1,
            0.95,
            Between {
                cv: 0.02,
                candidate_launches: 7,
                baseline_launches: 7,
            },
        )
        .unwrap();
        assert!(many.yuen_p < with.yuen_p);
        assert!((many.log_ratio_se - plain.log_ratio_se).abs() < 1e-12);
        // n = 7 per arm at CV 2 %: the MDE is about 1.6 × CV (stats-tuning.md, [SIM E1]) for the
        // plain test; trimming one rep per side costs a little.
        let noise: Vec<f64> = [-1.2, -0.6, -0.2, 0.0, 0.3, 0.7, 1.1]
            .iter()
            .map(|z| 100.0 * (1.0 + 0.02 * z))
            .collect();
        let c = compare(&noise, &noise, 0.1, 0.95).unwrap();
        assert!(c.mde > 0.02 && c.mde < 0.06, "mde {}", c.mde);
    }

    /// Properties over many seeded random samples: a constant sample's trimmed mean is the
    /// constant; trimmed means and tests are invariant under scaling; swapping the arms flips
    /// the statistic and keeps the p-value; the interval contains the difference.
    #[test]
    fn properties_hold_on_random_samples() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for case in 0..500 {
            let n = rng.random_range(3..25);
            let m = rng.random_range(3..25);
            let trim = [0.0, 0.1, 0.2][case % 3];
            if check_reps(n, trim).is_err() || check_reps(m, trim).is_err() {
                continue;
            }
            let x: Vec<f64> = (0..n)
                .map(|_| 100.0 + rng.random_range(-5.0..5.0))
                .collect();
            let y: Vec<f64> = (0..m)
                .map(|_| 102.0 + rng.random_range(-5.0..5.0))
                .collect();
            let c = rng.random_range(-50.0..50.0);
            assert!((trimmed_mean(&vec![c; n], trim).unwrap() - c).abs() < 1e-9);
            let k = rng.random_range(0.1..10.0);
            let xs: Vec<f64> = x.iter().map(|v| v * k).collect();
            assert!(
                (trimmed_mean(&xs, trim).unwrap() - k * trimmed_mean(&x, trim).unwrap()).abs()
                    < 1e-6
            );
            let ab = compare(&x, &y, trim, 0.95).unwrap();
            let ba = compare(&y, &x, trim, 0.95).unwrap();
            assert!((ab.yuen_t + ba.yuen_t).abs() < 1e-9);
            assert!((ab.yuen_p - ba.yuen_p).abs() < 1e-9);
            let ys: Vec<f64> = y.iter().map(|v| v * k).collect();
            let s = compare(&xs, &ys, trim, 0.95).unwrap();
            assert!((s.yuen_t - ab.yuen_t).abs() < 1e-6 && (s.ratio - ab.ratio).abs() < 1e-9);
            assert!(ab.difference_ci.0 <= ab.difference && ab.difference <= ab.difference_ci.1);
            assert!(ab.yuen_p >= 0.0 && ab.yuen_p <= 1.0 && ab.mde > 0.0);
        }
    }

    #[test]
    fn sequential_plan_and_rules() {
        assert_eq!(planned_looks(3, 15), [3, 6, 9, 12, 15]);
        assert_eq!(planned_looks(3, 5), [3, 4, 5]);
        assert_eq!(planned_looks(7, 7), [7]);
        assert!(pocock_level(0.05, 5) < pocock_level(0.05, 2));
        assert!((pocock_level(0.05, 1) - 0.05).abs() < 1e-12);
        assert_eq!(
            sequential_decision((1.05, 1.10), 1.03, 0.02),
            Some(StopReason::Win)
        );
        assert_eq!(
            sequential_decision((0.95, 1.01), 1.03, 0.02),
            Some(StopReason::Loss)
        );
        assert_eq!(
            sequential_decision((0.99, 1.04), 1.03, 0.05),
            Some(StopReason::Futility)
        );
        assert_eq!(
            sequential_decision((1.02, 1.035), 1.03, 0.02),
            Some(StopReason::Precision)
        );
        assert_eq!(sequential_decision((0.97, 1.08), 1.03, 0.02), None);
    }

    #[test]
    fn holm_adjusts_step_down() {
        let p = [0.01, 0.04, 0.03, 0.5];
        let adj = holm(&p);
        assert!(close(adj[0], 0.04, 1e-12));
        assert!(close(adj[2], 0.09, 1e-12));
        assert!(close(adj[1], 0.09, 1e-12));
        assert!(close(adj[3], 0.5, 1e-12));
    }
}
