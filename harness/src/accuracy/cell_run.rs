//! Running one cell: its comparisons on independent random streams, the decisions each design
//! makes, and the rates with their intervals.

use l1_engines::sim::{self, NoiseModel, SimTarget};
use l1_engines::{Combo, HardwareProfile, Metrics, ModelProfile, Workload};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::gates::{self, Arm, GateContext};
use crate::spec::{Gate, RegressionForm};
use crate::stats;

use super::{
    ALPHA, AccuracyError, Cell, Design, FrontierShift, LATENCY, METRIC, ONE_SIDED, Rate,
    TOPK_MARGIN, TRIM, cell_seed, noise_model, per_look_level,
};

/// What one cell measured.
#[derive(Clone, Debug, Serialize)]
pub struct CellOutcome {
    pub cell: Cell,
    pub title: String,
    pub comparisons: usize,
    /// The cell's stream seed (from the base seed and the cell id).
    pub seed: u64,
    pub noise_floor: f64,
    /// The launch-to-launch CV the statistics assume, and the one the sim draws.
    pub launch_cv_assumed: f64,
    pub launch_cv_true: f64,
    /// The planned looks and the per-look level (one look: α).
    pub looks: Vec<usize>,
    pub per_look_level: f64,
    pub rates: Vec<Rate>,
    /// Mean reps the candidate used (the baseline's are fixed by the design).
    pub mean_candidate_reps: f64,
}

/// What a cell's comparisons share.
struct Env<'a> {
    target: SimTarget<'a>,
    combo: Combo,
    noise: NoiseModel,
    floor: f64,
    launch_cv: f64,
    effect: f64,
    topk: Gate,
    regression: Gate,
    non_inferiority: Option<Gate>,
    /// The `pareto` gate `against: stored` in its two forms (fail on regression, non-inferiority).
    frontier: [Gate; 2],
}

/// The spacing of main's frontier points in a [`Design::Frontier`] cell: point `j`'s true
/// throughput and latency are both `1 − FRONTIER_STEP · j` times the first's (slower and
/// quicker), far apart against the noise, so every point is on main's measured frontier.
pub const FRONTIER_STEP: f64 = 0.15;
/// The most points a frontier cell's spacing holds (the last at 10 % of the first's truth).
pub const MAX_FRONTIER_POINTS: usize = 7;

fn gate_from_yaml(yaml: &str) -> Result<Gate, AccuracyError> {
    serde_saphyr::from_str::<Gate>(yaml).map_err(|e| AccuracyError::InternalGate {
        yaml: yaml.to_string(),
        message: e.to_string(),
    })
}

impl Env<'_> {
    fn ctx(&self, looks: usize) -> GateContext {
        GateContext {
            trim: TRIM,
            noise_floor: self.floor,
            launch_cv: self.launch_cv,
            calibration: None,
            looks,
        }
    }

    /// `reps` reps over `launches` fresh launches (rep `i` on launch `i mod L`), throughput
    /// scaled by `scale`; launch seeds from `rng`.
    fn measure(
        &self,
        rng: &mut ChaCha8Rng,
        reps: usize,
        launches: usize,
        scale: f64,
    ) -> Result<Vec<f64>, AccuracyError> {
        let mut ls = Vec::with_capacity(launches.max(1));
        for _ in 0..launches.max(1) {
            let mut l = sim::launch(&self.target, &self.combo, rng.next_u64())?;
            l.set_noise(self.noise);
            ls.push(l);
        }
        let n = ls.len();
        (0..reps)
            .map(|i| {
                let m = ls[i % n].rep((i / n) as u32)?;
                m.get(METRIC)
                    .map(|v| v * scale)
                    .ok_or(AccuracyError::MissingMetric { metric: METRIC })
            })
            .collect()
    }

    /// An arm of `reps` reps over `launches` fresh launches with both the throughput (scaled by
    /// `tps_scale`) and the latency (scaled by `lat_scale`) of each rep; launch seeds from `rng`.
    fn measure_arm(
        &self,
        rng: &mut ChaCha8Rng,
        label: String,
        (reps, launches): (usize, usize),
        tps_scale: f64,
        lat_scale: f64,
    ) -> Result<Arm, AccuracyError> {
        let mut ls = Vec::with_capacity(launches.max(1));
        for _ in 0..launches.max(1) {
            let mut l = sim::launch(&self.target, &self.combo, rng.next_u64())?;
            l.set_noise(self.noise);
            ls.push(l);
        }
        let n = ls.len();
        let reps = (0..reps)
            .map(|i| {
                let m = ls[i % n].rep((i / n) as u32)?;
                let get = |metric: &'static str| {
                    m.get(metric)
                        .copied()
                        .ok_or(AccuracyError::MissingMetric { metric })
                };
                Ok(Metrics::from([
                    (METRIC.to_string(), get(METRIC)? * tps_scale),
                    (LATENCY.to_string(), get(LATENCY)? * lat_scale),
                ]))
            })
            .collect::<Result<Vec<_>, AccuracyError>>()?;
        Ok(Arm {
            label,
            reps,
            launches: n,
        })
    }
}

fn arm(label: &str, values: &[f64], launches: usize) -> Arm {
    Arm {
        label: label.into(),
        reps: values
            .iter()
            .map(|v| Metrics::from([(METRIC.to_string(), *v)]))
            .collect(),
        launches,
    }
}

fn welch_on_trimmed(x: &[f64], y: &[f64]) -> Result<bool, AccuracyError> {
    let cut = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        let g = stats::trim_count(v.len(), TRIM);
        v[g..v.len() - g].to_vec()
    };
    let c = stats::compare(&cut(x), &cut(y), 0.0, 1.0 - ALPHA)?;
    Ok(c.difference > 0.0 && c.welch_p < ALPHA)
}

/// The harness's stopping rule at a planned look (`suite.rs`, `Stopper::check`): the
/// candidate's improvement interval at the per-look level against the gate's threshold.
pub fn stop_at_look(
    candidate: &[f64],
    baseline: &[f64],
    level: f64,
    between: stats::Between,
    threshold: f64,
    floor: f64,
) -> Option<stats::StopReason> {
    let c = stats::compare_with(candidate, baseline, TRIM, 1.0 - level, between).ok()?;
    stats::sequential_decision(c.ratio_ci, threshold, floor)
}

/// One comparison of `cell`: a flag per rate (in the order of [`rate_names`]) and the reps the
/// candidate used.
fn one(
    env: &Env<'_>,
    cell: &Cell,
    rng: &mut ChaCha8Rng,
) -> Result<(Vec<bool>, usize), AccuracyError> {
    let scale = 1.0 + env.effect;
    match &cell.design {
        Design::Pair { reps, launches } => {
            let base = env.measure(rng, *reps, *launches, 1.0)?;
            let cand = env.measure(rng, *reps, *launches, scale)?;
            let plain = stats::compare(&cand, &base, TRIM, 1.0 - ALPHA)?;
            let between = stats::Between {
                cv: env.launch_cv,
                candidate_launches: *launches,
                baseline_launches: *launches,
            };
            let with = stats::compare_with(&cand, &base, TRIM, 1.0 - ALPHA, between)?;
            let v = gates::evaluate(
                &env.topk,
                &env.ctx(1),
                &arm("baseline", &base, *launches),
                &[arm("candidate", &cand, *launches)],
            )?;
            Ok((
                vec![
                    plain.yuen_p < ALPHA && plain.difference > 0.0,
                    with.yuen_p < ALPHA && with.difference > 0.0,
                    welch_on_trimmed(&cand, &base)?,
                    v.passed,
                ],
                *reps,
            ))
        }
        Design::Topk { combos, k: _, reps } => {
            let base = env.measure(rng, *reps, 1, 1.0)?;
            let mut arms = Vec::with_capacity(*combos);
            for i in 0..*combos {
                arms.push(arm(
                    &format!("c{i:02}"),
                    &env.measure(rng, *reps, 1, scale)?,
                    1,
                ));
            }
            let v = gates::evaluate(&env.topk, &env.ctx(1), &arm("baseline", &base, 1), &arms)?;
            // A claim is a combo whose Holm-adjusted one-sided p is below half the level.
            let one_sided = per_look_level(ALPHA, 1) / 2.0;
            let claimed = v
                .rows
                .iter()
                .any(|r| r.adjusted_p.is_some_and(|p| p < one_sided));
            Ok((vec![v.passed, claimed], *reps))
        }
        Design::Regression { reps, .. } => {
            let base = arm("baseline", &env.measure(rng, *reps, 1, 1.0)?, 1);
            let cand = [arm("candidate", &env.measure(rng, *reps, 1, scale)?, 1)];
            let ctx = env.ctx(1);
            let fails = !gates::evaluate(&env.regression, &ctx, &base, &cand)?.passed;
            let mut flags = vec![fails];
            if let Some(g) = &env.non_inferiority {
                flags.push(gates::evaluate(g, &ctx, &base, &cand)?.passed);
            }
            Ok((flags, *reps))
        }
        Design::Sequential { min_reps, max_reps } => {
            let looks = stats::planned_looks(*min_reps, *max_reps);
            let level = per_look_level(ALPHA, looks.len());
            let threshold = 1.0 + TOPK_MARGIN.max(env.floor);
            let base = env.measure(rng, *max_reps, 1, 1.0)?;
            let cand = env.measure(rng, *max_reps, 1, scale)?;
            let between = stats::Between {
                cv: env.launch_cv,
                candidate_launches: 1,
                baseline_launches: 1,
            };
            let mut used = *max_reps;
            for (li, &n) in looks.iter().enumerate() {
                let last = li + 1 == looks.len();
                if last
                    || stop_at_look(&cand[..n], &base, level, between, threshold, env.floor)
                        .is_some()
                {
                    used = n;
                    break;
                }
            }
            let v = gates::evaluate(
                &env.topk,
                &env.ctx(looks.len()),
                &arm("baseline", &base, 1),
                &[arm("candidate", &cand[..used], 1)],
            )?;
            Ok((vec![v.passed], used))
        }
        Design::Frontier {
            points,
            shifted,
            axes,
            reps,
            launches,
            ..
        } => {
            let design = (*reps, *launches);
            let (on_tps, on_lat) = axes.shifts();
            let mut main = Vec::with_capacity(*points);
            for j in 0..*points {
                let s = 1.0 - FRONTIER_STEP * j as f64;
                main.push(env.measure_arm(rng, format!("p{j}"), design, s, s)?);
            }
            let mut now = Vec::with_capacity(*points);
            for j in 0..*points {
                let s = 1.0 - FRONTIER_STEP * j as f64;
                let hit = j == 0 || *shifted == FrontierShift::All;
                // The improvement ratio on a shifted axis is `scale`: throughput × scale,
                // latency ÷ scale.
                let t = if hit && on_tps { scale } else { 1.0 };
                let l = if hit && on_lat { scale } else { 1.0 };
                now.push(env.measure_arm(rng, format!("c{j}"), design, s * t, s / l)?);
            }
            let ctx = env.ctx(1);
            let mut flags = Vec::with_capacity(2);
            for (i, gate) in env.frontier.iter().enumerate() {
                let loss = gates::frontier::frontier_loss(gate, &ctx, &main, &now)?;
                if loss.points.len() != *points {
                    return Err(AccuracyError::FrontierPoints {
                        expected: *points,
                        found: loss.points.len(),
                    });
                }
                let passed = loss.verdict(gate, "`main` results", *points).passed;
                // Fail on regression: the gate fails; non-inferiority: the gate passes.
                flags.push(if i == 0 { !passed } else { passed });
            }
            Ok((flags, *reps))
        }
        Design::Ab {
            rounds,
            reps,
            launches,
            epsilon,
        } => {
            // Each side's reps reduce to the trimmed mean `l1 ab` reads (the spec's default trim).
            let trim = crate::spec::Measure::default().trim;
            let mut logs = Vec::with_capacity(*rounds);
            for _ in 0..*rounds {
                let base = env.measure(rng, *reps, *launches, 1.0)?;
                let head = env.measure(rng, *reps, *launches, scale)?;
                logs.push(
                    (stats::trimmed_mean(&head, trim)? / stats::trimmed_mean(&base, trim)?).ln(),
                );
            }
            let p = |form| {
                crate::ab::paired_test(form, *epsilon, &logs, 1.0)
                    .map(|t| t.p)
                    .map_err(|why| AccuracyError::Ab { why })
            };
            Ok((
                vec![
                    p(RegressionForm::FailOnRegression)? < ONE_SIDED,
                    p(RegressionForm::NonInferiority)? < ONE_SIDED,
                ],
                *reps,
            ))
        }
    }
}

/// The rates a cell reports, in the order of the flags of one comparison.
fn rate_specs(
    cell: &Cell,
    floor: f64,
    has_non_inferiority: bool,
) -> Vec<(&'static str, String, Option<f64>)> {
    let threshold = TOPK_MARGIN.max(floor);
    let at_or_below = |x: f64| cell.effect <= x + 1e-12;
    match &cell.design {
        Design::Pair { .. } => {
            let one_sided = at_or_below(0.0).then_some(ONE_SIDED);
            vec![
                ("yuen_reps_only", "claims `better`: Yuen on the reps alone, one-sided α/2".into(), one_sided),
                ("yuen", "claims `better`: Yuen with the launch-to-launch component (the gates' test), one-sided α/2".into(), one_sided),
                ("welch_trimmed", "claims `better`: Welch on already-trimmed samples (the known mistake), one-sided α/2".into(), one_sided),
                ("topk5_passes", format!("topk5 (margin {:.0} %) passes: the candidate beats 1 + {:.0} %", TOPK_MARGIN * 100.0, threshold * 100.0), at_or_below(threshold).then_some(ONE_SIDED)),
            ]
        }
        Design::Topk { k, .. } => {
            let nominal = at_or_below(threshold).then_some(ONE_SIDED);
            vec![
                ("topk5_passes", format!("topk5 (k = {k}) passes"), nominal),
                (
                    "any_claim",
                    "some combo is claimed to clear the threshold (Holm-adjusted p < α)".into(),
                    nominal,
                ),
            ]
        }
        Design::Regression { epsilon, .. } => {
            let eps = epsilon.max(floor);
            let mut v = vec![(
                "fail_on_regression_fails",
                format!(
                    "the fail-on-regression form fails (evidence of a regression beyond {:.0} %)",
                    eps * 100.0
                ),
                (cell.effect >= -eps - 1e-12).then_some(ONE_SIDED),
            )];
            if has_non_inferiority {
                v.push((
                    "non_inferiority_passes",
                    format!("the non-inferiority form passes (evidence of no regression beyond {:.0} %)", eps * 100.0),
                    at_or_below(-eps).then_some(ONE_SIDED),
                ));
            }
            v
        }
        Design::Frontier { epsilon, .. } => {
            let eps = epsilon.max(floor);
            vec![
                (
                    "fail_on_regression_fails",
                    format!(
                        "the fail-on-regression form fails (some point of main's frontier shown LOST: every combo shown worse by more than {:.0} % on an axis)",
                        eps * 100.0
                    ),
                    (cell.effect >= -eps - 1e-12).then_some(ONE_SIDED),
                ),
                (
                    "non_inferiority_passes",
                    format!(
                        "the non-inferiority form passes (every point shown covered: some combo shown within {:.0} % on both axes)",
                        eps * 100.0
                    ),
                    at_or_below(-eps).then_some(ONE_SIDED),
                ),
            ]
        }
        Design::Ab { epsilon, .. } => vec![
            (
                "fail_on_regression_fails",
                format!(
                    "l1 ab's fail-on-regression form fails (evidence of a regression beyond {:.0} %)",
                    epsilon * 100.0
                ),
                (cell.effect >= -epsilon - 1e-12).then_some(ONE_SIDED),
            ),
            (
                "non_inferiority_passes",
                format!(
                    "l1 ab's non-inferiority form passes (evidence of no regression beyond {:.0} %)",
                    epsilon * 100.0
                ),
                at_or_below(-epsilon).then_some(ONE_SIDED),
            ),
        ],
        Design::Sequential { .. } => vec![(
            "topk5_passes",
            format!(
                "topk5 (margin {:.0} %) passes after the stopper's early termination",
                TOPK_MARGIN * 100.0
            ),
            at_or_below(threshold).then_some(ONE_SIDED),
        )],
    }
}

/// Run `comparisons` comparisons of `cell` on `threads` threads (the result does not depend on
/// the thread count).
pub fn run_cell(
    model: &ModelProfile,
    hardware: &HardwareProfile,
    workload: &Workload,
    cell: &Cell,
    comparisons: usize,
    base_seed: u64,
    threads: usize,
) -> Result<CellOutcome, AccuracyError> {
    let noise = noise_model(cell.noise)
        .ok_or_else(|| AccuracyError::UnknownNoise(cell.noise.to_string()))?;
    if !(cell.launch_cv_factor.is_finite() && cell.launch_cv_factor >= 0.0) {
        return Err(AccuracyError::LaunchCvFactor {
            cell: cell.id.to_string(),
        });
    }
    if comparisons == 0 {
        return Err(AccuracyError::NoComparisons);
    }
    if let Design::Ab { rounds, .. } = cell.design
        && rounds < 2
    {
        return Err(AccuracyError::AbRounds {
            cell: cell.id.clone(),
            rounds,
        });
    }
    if let Design::Frontier { points, .. } = cell.design
        && !(1..=MAX_FRONTIER_POINTS).contains(&points)
    {
        return Err(AccuracyError::FrontierPointCount {
            cell: cell.id.clone(),
            points,
        });
    }
    let mut truth_hw = hardware.clone();
    truth_hw.launch_cv = hardware.launch_cv * cell.launch_cv_factor;
    let epsilon = match cell.design {
        Design::Regression { epsilon, .. } | Design::Frontier { epsilon, .. } => epsilon,
        _ => 0.05,
    };
    let k = match cell.design {
        Design::Topk { k, .. } => k,
        _ => 5,
    };
    let env = Env {
        target: SimTarget {
            model,
            hardware: &truth_hw,
            workload,
        },
        combo: Combo::default(),
        noise,
        floor: hardware.noise_floor_cv,
        launch_cv: hardware.launch_cv,
        effect: cell.effect,
        topk: gate_from_yaml(&format!(
            "{{ method: topk5, k: {k}, margin: {TOPK_MARGIN} }}"
        ))?,
        regression: gate_from_yaml(&format!(
            "{{ method: regression, form: fail_on_regression, metrics: [{METRIC}], epsilon: {epsilon} }}"
        ))?,
        non_inferiority: Some(gate_from_yaml(&format!(
            "{{ method: regression, form: non_inferiority, metrics: [{METRIC}], epsilon: {epsilon} }}"
        ))?),
        frontier: [
            gate_from_yaml(&format!(
                "{{ method: pareto, against: stored, label: main, form: fail_on_regression, epsilon: {epsilon} }}"
            ))?,
            gate_from_yaml(&format!(
                "{{ method: pareto, against: stored, label: main, form: non_inferiority, epsilon: {epsilon} }}"
            ))?,
        ],
    };
    let specs = rate_specs(cell, env.floor, env.non_inferiority.is_some());
    let seed = cell_seed(base_seed, &cell.id);
    let threads = threads.clamp(1, comparisons);
    let chunk = comparisons.div_ceil(threads);
    let results: Vec<Result<(Vec<usize>, usize), AccuracyError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (env, specs) = (&env, &specs);
                s.spawn(move || -> Result<(Vec<usize>, usize), AccuracyError> {
                    let mut counts = vec![0usize; specs.len()];
                    let mut reps = 0usize;
                    for i in (t * chunk)..((t + 1) * chunk).min(comparisons) {
                        let mut rng = ChaCha8Rng::seed_from_u64(seed);
                        rng.set_stream(i as u64);
                        let (flags, used) = one(env, cell, &mut rng)?;
                        for (c, f) in counts.iter_mut().zip(flags) {
                            *c += usize::from(f);
                        }
                        reps += used;
                    }
                    Ok((counts, reps))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(AccuracyError::WorkerPanicked)))
            .collect()
    });
    let mut counts = vec![0usize; specs.len()];
    let mut reps = 0usize;
    for r in results {
        let (c, u) = r?;
        for (a, b) in counts.iter_mut().zip(c) {
            *a += b;
        }
        reps += u;
    }
    let looks = match cell.design {
        Design::Sequential { min_reps, max_reps } => stats::planned_looks(min_reps, max_reps),
        Design::Pair { reps, .. }
        | Design::Topk { reps, .. }
        | Design::Regression { reps, .. }
        | Design::Frontier { reps, .. }
        | Design::Ab { reps, .. } => vec![reps],
    };
    Ok(CellOutcome {
        cell: cell.clone(),
        title: cell.title(),
        comparisons,
        seed,
        noise_floor: env.floor,
        launch_cv_assumed: env.launch_cv,
        launch_cv_true: truth_hw.launch_cv,
        per_look_level: per_look_level(ALPHA, looks.len()),
        looks,
        rates: specs
            .into_iter()
            .zip(counts)
            .map(|((name, meaning, nominal), c)| Rate::new(name, meaning, c, comparisons, nominal))
            .collect(),
        mean_candidate_reps: reps as f64 / comparisons as f64,
    })
}
