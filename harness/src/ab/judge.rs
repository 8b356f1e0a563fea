//! The verdict of an A/B comparison: per trial and metric, the rounds' paired log-ratios
//! ln(head / base) of the trimmed means, their mean with a t interval on rounds − 1 degrees of
//! freedom, and the `regression` gate's one-sided test at ε in the chosen form; Holm across
//! every (trial, metric) pair under `fail_on_regression`, the intersection–union rule (no
//! adjustment) under `non_inferiority`.

use std::collections::BTreeMap;

use l1_engines::metrics::{Direction, metric};
use serde::Serialize;

use super::{Measured, Options, Pairing, Resolved, Rounds, SideName};
use crate::spec::RegressionForm;
use crate::stats;

/// One metric of one trial, judged.
#[derive(Clone, Debug, Serialize)]
pub struct MetricVerdict {
    pub metric: String,
    /// exp(mean of the rounds' ln(head / base)): the raw ratio (> 1: the head's value is higher).
    pub ratio: f64,
    /// Its two-sided interval at 1 − α.
    pub ratio_ci: (f64, f64),
    /// Direction-aware: > 1 is better for the head (throughput up, latency down).
    pub improvement: f64,
    pub improvement_ci: (f64, f64),
    /// The one-sided p-value of the form's test, and after Holm (`fail_on_regression`; equal
    /// under `non_inferiority`).
    pub p: f64,
    pub adjusted_p: f64,
    pub passed: bool,
    /// Each round's (base, head) trimmed mean.
    pub rounds: Vec<(f64, f64)>,
}

/// One trial that both sides measured in every round.
#[derive(Clone, Debug, Serialize)]
pub struct TrialVerdict {
    pub trial: String,
    pub passed: bool,
    pub metrics: Vec<MetricVerdict>,
}

/// A trial that could not be compared, with the side and why.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub trial: String,
    pub side: Option<SideName>,
    pub round: Option<usize>,
    pub why: String,
}

/// The comparison's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// `passed`, `failed` (a regression found, or a head trial failed) or `error` (a part of the
    /// comparison could not be made).
    pub verdict: &'static str,
    /// The exit code `l1 ab` ends with: 0 passed, 1 failed, 2 error.
    pub exit_code: u8,
    pub form: RegressionForm,
    pub epsilon: f64,
    pub alpha: f64,
    pub rounds: usize,
    pub pairing: Pairing,
    pub trials: Vec<TrialVerdict>,
    /// A side's trial failed (crash, launch failure): head failures fail the comparison.
    pub failed: Vec<Problem>,
    /// Not comparable: not run on a side, a metric missing, a spec error of a side.
    pub errors: Vec<Problem>,
    pub new_in_head: Vec<String>,
    pub removed: Vec<String>,
    pub unknown: Vec<String>,
    pub skipped: Vec<(String, String)>,
    /// Wall seconds of each round, both sides together.
    pub round_seconds: Vec<f64>,
    /// Each round's seeds (base, head).
    pub seeds: Vec<(u64, u64)>,
}

/// Judge the rounds of `resolved.compared`.
pub fn judge(opts: &Options, resolved: Resolved, rounds: &Rounds) -> Outcome {
    let mut failed = Vec::new();
    let mut errors = Vec::new();
    for (side, names) in &resolved.invalid {
        for n in names {
            let p = Problem {
                trial: n.clone(),
                side: Some(*side),
                round: None,
                why: "the side's specs do not plan (a spec error); its trials are missing from the listing".into(),
            };
            match side {
                SideName::Head => failed.push(p),
                SideName::Base => errors.push(p),
            }
        }
    }
    for n in &resolved.unknown {
        errors.push(Problem {
            trial: n.clone(),
            side: None,
            round: None,
            why: "neither side lists this trial".into(),
        });
    }
    let one_sided = opts.alpha / 2.0;
    let n_rounds = rounds.measured.len();
    let tq = stats::t_quantile(n_rounds.saturating_sub(1) as f64, 1.0 - opts.alpha / 2.0);
    // (trial, its metric verdicts) for the trials measured on both sides in every round.
    let mut measured: Vec<(String, Vec<MetricVerdict>)> = Vec::new();
    let mut skipped = resolved.skipped;
    // A trial that read the same measurements as an earlier one in every round and side (a
    // baseline and the combo it is) is compared once: the family counts each comparison once.
    let mut seen: BTreeMap<&Vec<String>, &String> = BTreeMap::new();
    for trial in &resolved.compared {
        if let Some(keys) = rounds.keys.get(trial).filter(|k| k.len() == 2 * n_rounds) {
            if let Some(first) = seen.get(keys) {
                skipped.push((
                    trial.clone(),
                    format!("the same measurement as `{first}` in every round: compared there"),
                ));
                continue;
            }
            seen.insert(keys, trial);
        }
        match per_round(trial, rounds) {
            Err(p) => {
                if p.side == Some(SideName::Head) && p.why.starts_with("failed: ") {
                    failed.push(p);
                } else {
                    errors.push(p);
                }
            }
            Ok(means) => {
                let mut list = Vec::new();
                for name in &opts.metrics {
                    match metric_verdict(opts, name, &means, tq) {
                        Ok(v) => list.push(v),
                        Err(why) => errors.push(Problem {
                            trial: trial.clone(),
                            side: None,
                            round: None,
                            why,
                        }),
                    }
                }
                measured.push((trial.clone(), list));
            }
        }
    }
    // The family: every (trial, metric) pair of the comparison.
    let ps: Vec<f64> = (measured.iter())
        .flat_map(|(_, l)| l.iter().map(|m| m.p))
        .collect();
    let adjusted = match opts.form {
        RegressionForm::FailOnRegression => stats::holm(&ps),
        RegressionForm::NonInferiority => ps.clone(),
    };
    let mut adj = adjusted.into_iter();
    let trials: Vec<TrialVerdict> = (measured.into_iter())
        .map(|(trial, mut list)| {
            for m in &mut list {
                m.adjusted_p = adj.next().unwrap_or(1.0);
                m.passed = match opts.form {
                    RegressionForm::FailOnRegression => m.adjusted_p >= one_sided,
                    RegressionForm::NonInferiority => m.adjusted_p < one_sided,
                };
            }
            TrialVerdict {
                passed: list.iter().all(|m| m.passed),
                trial,
                metrics: list,
            }
        })
        .collect();
    let regressed = trials.iter().any(|t| !t.passed) || !failed.is_empty();
    let (verdict, exit_code) = if !errors.is_empty() {
        ("error", 2)
    } else if regressed {
        ("failed", 1)
    } else {
        ("passed", 0)
    };
    Outcome {
        verdict,
        exit_code,
        form: opts.form,
        epsilon: opts.epsilon,
        alpha: opts.alpha,
        rounds: n_rounds,
        pairing: opts.pairing,
        trials,
        failed,
        errors,
        new_in_head: resolved.new_in_head,
        removed: resolved.removed,
        unknown: resolved.unknown,
        skipped,
        round_seconds: rounds.seconds.iter().map(|s| s.values().sum()).collect(),
        seeds: (rounds.seeds.iter())
            .map(|s| {
                (
                    s.get(&SideName::Base).copied().unwrap_or(0),
                    s.get(&SideName::Head).copied().unwrap_or(0),
                )
            })
            .collect(),
    }
}

/// One round's (base, head) metric means of a trial.
type RoundMeans = (BTreeMap<String, f64>, BTreeMap<String, f64>);

/// Each round's (base, head) metric means of `trial`, or the first problem: a side whose trial
/// failed or did not run.
fn per_round(trial: &str, rounds: &Rounds) -> Result<Vec<RoundMeans>, Problem> {
    let mut out = Vec::new();
    for (r, sides) in rounds.measured.iter().enumerate() {
        let get = |side: SideName| -> Result<&BTreeMap<String, f64>, Problem> {
            let problem = |why: String| Problem {
                trial: trial.to_string(),
                side: Some(side),
                round: Some(r + 1),
                why,
            };
            match sides.get(&side).and_then(|m| m.get(trial)) {
                Some(Measured::Means(m)) => Ok(m),
                Some(Measured::Failed(why)) => Err(problem(format!("failed: {why}"))),
                Some(Measured::NotRun(why)) => Err(problem(why.clone())),
                None => Err(problem("not measured".into())),
            }
        };
        // The head's failure is reported first: it is the pull request's.
        let head = get(SideName::Head)?;
        let base = get(SideName::Base)?;
        out.push((base.clone(), head.clone()));
    }
    Ok(out)
}

/// The paired test of one metric over the rounds: the mean of the rounds' `ln(head/base)`, its
/// standard error, and the one-sided p of `form`'s test on rounds − 1 degrees of freedom.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairedTest {
    pub mean: f64,
    pub se: f64,
    pub p: f64,
}

/// `l1 ab`'s test of one metric, on each round's `ln(head/base)` (`logs`; `sign` +1 when higher
/// is better, −1 when lower is): the rounds are the unit, so their plain mean and its standard
/// error (no trim, no launch term) against the margin `1 − epsilon` in `form`, on rounds − 1
/// degrees of freedom. The accuracy benchmark measures its error rates with this function.
pub fn paired_test(
    form: RegressionForm,
    epsilon: f64,
    logs: &[f64],
    sign: f64,
) -> Result<PairedTest, String> {
    let (mean, se) = stats::trimmed_mean_se(logs, 0.0, 0.0, 1).map_err(|e| e.to_string())?;
    let df = logs.len().saturating_sub(1) as f64;
    let p = form.one_sided_p(sign * mean, epsilon, se, df);
    Ok(PairedTest { mean, se, p })
}

/// One metric's paired test over the rounds (`tq`: the two-sided t quantile for the interval).
fn metric_verdict(
    opts: &Options,
    name: &str,
    means: &[RoundMeans],
    tq: f64,
) -> Result<MetricVerdict, String> {
    let info = metric(name).ok_or_else(|| format!("unknown metric `{name}`"))?;
    let mut pairs = Vec::with_capacity(means.len());
    for (r, (b, h)) in means.iter().enumerate() {
        let (Some(&b), Some(&h)) = (b.get(name), h.get(name)) else {
            return Err(format!("round {}: a side reports no `{name}`", r + 1));
        };
        if !(b > 0.0 && h > 0.0 && b.is_finite() && h.is_finite()) {
            return Err(format!(
                "round {}: `{name}` is {b} (base) and {h} (head); a ratio needs positive values",
                r + 1
            ));
        }
        pairs.push((b, h));
    }
    let logs: Vec<f64> = pairs.iter().map(|(b, h)| (h / b).ln()).collect();
    let sign = match info.direction {
        Direction::HigherIsBetter => 1.0,
        Direction::LowerIsBetter => -1.0,
    };
    let PairedTest { mean, se, p } = paired_test(opts.form, opts.epsilon, &logs, sign)?;
    let (lo, hi) = (mean - tq * se, mean + tq * se);
    let (ilo, ihi) = if sign > 0.0 { (lo, hi) } else { (-hi, -lo) };
    Ok(MetricVerdict {
        metric: name.to_string(),
        ratio: mean.exp(),
        ratio_ci: (lo.exp(), hi.exp()),
        improvement: (sign * mean).exp(),
        improvement_ci: (ilo.exp(), ihi.exp()),
        p,
        adjusted_p: p,
        passed: false,
        rounds: pairs,
    })
}
