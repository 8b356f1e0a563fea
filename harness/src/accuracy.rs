//! Decision accuracy of the harness's statistics, measured on the sim engine's known truth.
//!
//! A **cell** is one design (how the arms are measured and which decision is made) under one
//! noise model and one true effect. Each of its comparisons launches the baseline and the
//! candidate(s) in their own engine launch(es) of the sim (launch-to-launch variation on), runs
//! their reps, scales the candidate's throughput by `1 + effect` (so the truth is known
//! exactly) and records the decisions. Every rate is printed with its 95 % Wilson score
//! interval.
//!
//! Designs:
//!
//! - [`Design::Pair`]: one candidate, `reps` reps over `launches` launches per arm (rep `i` on
//!   launch `i mod L`, as the harness lays them out). Rates: one-sided claims of "better"
//!   (two-sided p < α and a positive difference, nominal α/2) by Yuen's test on the reps alone,
//!   by Yuen's test with the known launch-to-launch component (what the gates use) and by
//!   Welch's test on already-trimmed samples (the known mistake); and the `topk5` gate's verdict
//!   at its default margin (nominal α/2 at its boundary, a true ratio of 1 + max(margin, floor)).
//! - [`Design::Topk`]: `combos` candidates, all at the same true effect, under `topk5` with `k`:
//!   the share of passes, and the share of comparisons with **any** claim that a combo clears
//!   the threshold (Holm-adjusted one-sided p < α/2) — every such claim is false when the effect
//!   is at the threshold.
//! - [`Design::Regression`]: the `regression` gate on throughput in both its forms: how often
//!   the fail-on-regression form fails, and how often the non-inferiority form passes.
//! - [`Design::Sequential`]: the group-sequential design as the harness runs it (`suite.rs`'s
//!   stopper): the baseline at `max_reps`, the candidate looked at after the planned looks at
//!   the per-look level the gates use, stopped by [`stats::sequential_decision`], then judged by
//!   the `topk5` gate with the same number of looks. The fixed design is its one-look case.
//!
//! Every claim is one-sided at α/2 (the gates' intervals are two-sided at the per-look level,
//! α for a fixed design), so every error rate's nominal value is α/2 = 2.5 %.
//!
//! Random streams: each cell's seed is derived from (base seed, cell id) by SHA-256, and each
//! comparison draws its launch seeds from its own ChaCha stream of that seed, so cells are
//! independent, a cell's result does not depend on which other cells run or on the number of
//! threads, and the whole run is reproducible.

use l1_engines::sim::{self, NoiseModel, SimTarget};
use l1_engines::{Combo, HardwareProfile, Metrics, ModelProfile, Workload};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::gates::{self, Arm, GateContext};
use crate::spec::Gate;
use crate::stats;

/// Family-wise significance level of every decision measured here (the gates' default).
pub const ALPHA: f64 = 0.05;
/// Trim of every comparison (the specs' default).
pub const TRIM: f64 = 0.10;
/// The metric compared.
const METRIC: &str = "output_tokens_per_s";
/// The 0.975 normal quantile.
const Z95: f64 = 1.959_963_984_540_054;

/// The 95 % Wilson score interval of `count` successes in `n` trials.
pub fn wilson(count: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (k, n) = (count as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = (p + z2 / (2.0 * n)) / denom;
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// One measured rate with its 95 % Wilson score interval.
#[derive(Clone, Debug, Serialize)]
pub struct Rate {
    /// Short name, stable across runs (the independent check matches on it).
    pub name: &'static str,
    /// What is counted.
    pub meaning: String,
    pub count: usize,
    pub n: usize,
    pub rate: f64,
    /// 95 % Wilson score interval.
    pub ci95: (f64, f64),
    /// The error rate the procedure promises in this cell, where the rate is an error rate (the
    /// truth is at or beyond the procedure's null).
    pub nominal: Option<f64>,
    /// Whether it holds: the rate is at or below nominal, or nominal lies inside its interval.
    pub holds: Option<bool>,
}

impl Rate {
    fn new(
        name: &'static str,
        meaning: String,
        count: usize,
        n: usize,
        nominal: Option<f64>,
    ) -> Self {
        let ci95 = wilson(count, n);
        let rate = if n == 0 {
            f64::NAN
        } else {
            count as f64 / n as f64
        };
        Self {
            name,
            meaning,
            count,
            n,
            rate,
            ci95,
            nominal,
            holds: nominal.map(|a| rate <= a || ci95.0 <= a),
        }
    }
}

/// How the arms of one comparison are measured and judged.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Design {
    /// One candidate; `reps` reps over `launches` launches per arm.
    Pair { reps: usize, launches: usize },
    /// `combos` candidates under `topk5` with `k`, 7 reps in one launch each.
    Topk {
        combos: usize,
        k: usize,
        reps: usize,
    },
    /// The `regression` gate on throughput (ε = `epsilon`), both forms; one launch per arm.
    Regression { epsilon: f64, reps: usize },
    /// The group-sequential design `min_reps..max_reps` under `topk5` (one launch per arm).
    Sequential { min_reps: usize, max_reps: usize },
}

/// One cell of the accuracy table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cell {
    /// Stable identifier: names the cell's random stream and selects it on the command line.
    pub id: String,
    pub noise: &'static str,
    /// True relative change of the candidate's throughput (0.03: 3 % faster; −0.05: 5 % slower).
    pub effect: f64,
    /// The true launch-to-launch CV over the assumed one (the hardware profile's): 1 = as assumed.
    pub launch_cv_factor: f64,
    pub design: Design,
}

/// The default `topk5` margin.
pub const TOPK_MARGIN: f64 = 0.03;

fn pct_id(effect: f64) -> String {
    format!("@{:+}", (effect * 100.0).round() as i64)
}

impl Cell {
    fn pair(noise: &'static str, reps: usize, launches: usize, effect: f64, sb: f64) -> Self {
        Self {
            id: format!(
                "pair-{noise}-{reps}x{launches}{}{}",
                pct_id(effect),
                if sb == 1.0 {
                    String::new()
                } else {
                    format!("-sb{sb}x")
                }
            ),
            noise,
            effect,
            launch_cv_factor: sb,
            design: Design::Pair { reps, launches },
        }
    }

    fn topk(combos: usize, k: usize, effect: f64) -> Self {
        Self {
            id: format!("topk-{combos}-k{k}{}", pct_id(effect)),
            noise: "normal",
            effect,
            launch_cv_factor: 1.0,
            design: Design::Topk { combos, k, reps: 7 },
        }
    }

    fn regression(effect: f64, sb: f64) -> Self {
        Self {
            id: format!(
                "regression-7x1{}{}",
                pct_id(effect),
                if sb == 1.0 {
                    String::new()
                } else {
                    format!("-sb{sb}x")
                }
            ),
            noise: "normal",
            effect,
            launch_cv_factor: sb,
            design: Design::Regression {
                epsilon: 0.05,
                reps: 7,
            },
        }
    }

    fn sequential(min_reps: usize, max_reps: usize, effect: f64) -> Self {
        Self {
            id: format!("seq-{min_reps}..{max_reps}{}", pct_id(effect)),
            noise: "normal",
            effect,
            launch_cv_factor: 1.0,
            design: Design::Sequential { min_reps, max_reps },
        }
    }

    /// A one-line description for the text table.
    pub fn title(&self) -> String {
        let sb = if self.launch_cv_factor == 1.0 {
            String::new()
        } else {
            format!(", true σ_b {}× the assumed", self.launch_cv_factor)
        };
        let eff = format!("{:+.0} %", self.effect * 100.0);
        match &self.design {
            Design::Pair { reps, launches } => {
                format!(
                    "{} noise, {reps} reps in {launches} launch(es) per arm, true effect {eff}{sb}",
                    self.noise
                )
            }
            Design::Topk { combos, k, reps } => format!(
                "topk5 k={k}: {combos} combos all at {eff} ({reps} reps each, one launch){sb}"
            ),
            Design::Regression { epsilon, reps } => format!(
                "regression ε={:.0} %, {reps} reps in one launch per arm, true change {eff}{sb}",
                epsilon * 100.0
            ),
            Design::Sequential { min_reps, max_reps } if min_reps == max_reps => {
                format!("fixed {max_reps} reps (one look), true effect {eff}{sb}")
            }
            Design::Sequential { min_reps, max_reps } => {
                format!(
                    "sequential {min_reps}..{max_reps} ({} looks), true effect {eff}{sb}",
                    stats::planned_looks(*min_reps, *max_reps).len()
                )
            }
        }
    }
}

/// The cells of the published table (README "Measured decision accuracy").
pub fn published_cells() -> Vec<Cell> {
    let mut out = Vec::new();
    for e in [0.0, 0.02, 0.03, 0.04, 0.05, 0.06] {
        out.push(Cell::pair("normal", 7, 1, e, 1.0));
    }
    for noise in ["lognormal", "contaminated"] {
        for e in [0.0, 0.03, 0.05] {
            out.push(Cell::pair(noise, 7, 1, e, 1.0));
        }
    }
    for e in [0.0, 0.03, 0.05] {
        out.push(Cell::pair("normal", 15, 3, e, 1.0));
    }
    // The launch term's assumption: the true σ_b twice the assumed one.
    for e in [0.0, 0.03] {
        out.push(Cell::pair("normal", 7, 1, e, 2.0));
    }
    out.push(Cell::pair("normal", 15, 3, 0.0, 2.0));
    // Selection: 40 combos all exactly at the threshold.
    out.push(Cell::topk(40, 5, TOPK_MARGIN));
    out.push(Cell::topk(40, 1, TOPK_MARGIN));
    for e in [0.0, -0.05, -0.08, -0.10] {
        out.push(Cell::regression(e, 1.0));
    }
    out.push(Cell::regression(-0.05, 2.0));
    out.push(Cell::regression(0.0, 2.0));
    for (lo, hi) in [(7, 7), (4, 4), (3, 7), (15, 15), (3, 15)] {
        for e in [0.03, 0.04, 0.06] {
            out.push(Cell::sequential(lo, hi, e));
        }
    }
    out
}

/// The noise models the benchmark runs under.
pub fn noise_model(name: &str) -> Option<NoiseModel> {
    match name {
        "normal" => Some(NoiseModel {
            lognormal: false,
            outlier_p: 0.0,
            outlier_slowdown: 1.0,
        }),
        "lognormal" => Some(NoiseModel {
            lognormal: true,
            outlier_p: 0.0,
            outlier_slowdown: 1.0,
        }),
        "contaminated" => Some(NoiseModel {
            lognormal: false,
            outlier_p: 0.10,
            outlier_slowdown: 1.15,
        }),
        _ => None,
    }
}

/// The per-look (two-sided) level of a design with `looks` planned looks:
/// [`stats::per_look_level`], the one function the gates and the harness's stopper use (one
/// look: α itself). One-sided claims are made at half of it.
pub fn per_look_level(alpha: f64, looks: usize) -> f64 {
    stats::per_look_level(alpha, looks)
}

/// The nominal rate of a false one-sided claim (an improvement, a regression or a
/// non-inferiority) over a whole design: α/2.
pub const ONE_SIDED: f64 = ALPHA / 2.0;

/// The seed of a cell's random stream: SHA-256 of (base seed, cell id).
pub fn cell_seed(base: u64, id: &str) -> u64 {
    let digest = Sha256::digest(format!("l1-accuracy:{base}:{id}").as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(b)
}

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
}

fn gate_from_yaml(yaml: &str) -> Result<Gate, String> {
    serde_saphyr::from_str::<Gate>(yaml).map_err(|e| format!("internal gate `{yaml}`: {e}"))
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
    ) -> Result<Vec<f64>, String> {
        let mut ls = Vec::with_capacity(launches.max(1));
        for _ in 0..launches.max(1) {
            let mut l = sim::launch(&self.target, &self.combo, rng.next_u64())
                .map_err(|e| e.to_string())?;
            l.set_noise(self.noise);
            ls.push(l);
        }
        let n = ls.len();
        (0..reps)
            .map(|i| {
                let m = ls[i % n].rep((i / n) as u32).map_err(|e| e.to_string())?;
                m.get(METRIC)
                    .map(|v| v * scale)
                    .ok_or_else(|| format!("the sim reported no `{METRIC}`"))
            })
            .collect()
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

fn welch_on_trimmed(x: &[f64], y: &[f64]) -> Result<bool, String> {
    let cut = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        let g = stats::trim_count(v.len(), TRIM);
        v[g..v.len() - g].to_vec()
    };
    let c = stats::compare(&cut(x), &cut(y), 0.0, 1.0 - ALPHA).map_err(|e| e.to_string())?;
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
fn one(env: &Env<'_>, cell: &Cell, rng: &mut ChaCha8Rng) -> Result<(Vec<bool>, usize), String> {
    let scale = 1.0 + env.effect;
    match &cell.design {
        Design::Pair { reps, launches } => {
            let base = env.measure(rng, *reps, *launches, 1.0)?;
            let cand = env.measure(rng, *reps, *launches, scale)?;
            let plain =
                stats::compare(&cand, &base, TRIM, 1.0 - ALPHA).map_err(|e| e.to_string())?;
            let between = stats::Between {
                cv: env.launch_cv,
                candidate_launches: *launches,
                baseline_launches: *launches,
            };
            let with = stats::compare_with(&cand, &base, TRIM, 1.0 - ALPHA, between)
                .map_err(|e| e.to_string())?;
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
) -> Result<CellOutcome, String> {
    let noise =
        noise_model(cell.noise).ok_or_else(|| format!("unknown noise model `{}`", cell.noise))?;
    if !(cell.launch_cv_factor.is_finite() && cell.launch_cv_factor >= 0.0) {
        return Err(format!("{}: launch_cv_factor must be ≥ 0", cell.id));
    }
    if comparisons == 0 {
        return Err("at least one comparison per cell is needed".into());
    }
    let mut truth_hw = hardware.clone();
    truth_hw.launch_cv = hardware.launch_cv * cell.launch_cv_factor;
    let epsilon = match cell.design {
        Design::Regression { epsilon, .. } => epsilon,
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
    };
    let specs = rate_specs(cell, env.floor, env.non_inferiority.is_some());
    let seed = cell_seed(base_seed, &cell.id);
    let threads = threads.clamp(1, comparisons);
    let chunk = comparisons.div_ceil(threads);
    let results: Vec<Result<(Vec<usize>, usize), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (env, specs) = (&env, &specs);
                s.spawn(move || -> Result<(Vec<usize>, usize), String> {
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
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a worker thread panicked".into()))
            })
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
        Design::Pair { reps, .. } | Design::Topk { reps, .. } | Design::Regression { reps, .. } => {
            vec![reps]
        }
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

// ---------------------------------------------------------------------------------------------
// The scenario API the older tests use (`early_termination.rs`): one seed per call, rates
// without intervals. The published table and `l1 accuracy` use the cells above.
// ---------------------------------------------------------------------------------------------

/// One accuracy scenario.
#[derive(Clone, Debug, Serialize)]
pub struct Scenario {
    pub noise: &'static str,
    /// True relative improvement of the candidate, in multiples of the noise floor.
    pub effect_floors: f64,
    pub reps: usize,
    /// Engine launches per arm (reps spread over them).
    pub launches: usize,
}

/// What a scenario measured.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub scenario: Scenario,
    pub comparisons: usize,
    pub yuen_reps_only: f64,
    pub yuen: f64,
    pub gate: f64,
    pub welch_trimmed: f64,
}

fn legacy_welch_on_trimmed(x: &[f64], y: &[f64], trim: f64) -> f64 {
    let cut = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        let g = stats::trim_count(v.len(), trim);
        v[g..v.len() - g].to_vec()
    };
    match stats::compare(&cut(x), &cut(y), 0.0, 0.95) {
        Ok(c) if c.difference > 0.0 => c.welch_p,
        _ => 1.0,
    }
}

/// Run `comparisons` comparisons of one scenario with fixed seeds.
pub fn run(
    model: &ModelProfile,
    hardware: &HardwareProfile,
    workload: &Workload,
    scenario: &Scenario,
    comparisons: usize,
    seed: u64,
) -> Result<Outcome, String> {
    let noise = noise_model(scenario.noise)
        .ok_or_else(|| format!("unknown noise model `{}`", scenario.noise))?;
    let target = SimTarget {
        model,
        hardware,
        workload,
    };
    let combo = Combo::default();
    let floor = hardware.noise_floor_cv;
    let effect = 1.0 + scenario.effect_floors * floor;
    let (alpha, trim) = (0.05, 0.10);
    let (mut plain, mut yuen, mut gate, mut naive) = (0usize, 0usize, 0usize, 0usize);
    let launches = scenario.launches.max(1);
    let between = stats::Between {
        cv: hardware.launch_cv,
        candidate_launches: launches,
        baseline_launches: launches,
    };
    let arm = |s: u64, scale: f64| -> Result<Vec<f64>, String> {
        let mut ls = Vec::new();
        for l in 0..launches as u64 {
            let mut launch =
                sim::launch(&target, &combo, s.wrapping_add(l)).map_err(|e| e.to_string())?;
            launch.set_noise(noise);
            ls.push(launch);
        }
        (0..scenario.reps)
            .map(|i| {
                ls[i % launches]
                    .rep((i / launches) as u32)
                    .map(|m| m["output_tokens_per_s"] * scale)
                    .map_err(|e| e.to_string())
            })
            .collect()
    };
    for i in 0..comparisons as u64 {
        let base = arm(seed.wrapping_add(2 * i).wrapping_mul(0x9E37_79B9), 1.0)?;
        let cand = arm(
            seed.wrapping_add(2 * i + 1).wrapping_mul(0x9E37_79B9),
            effect,
        )?;
        let p = stats::compare(&cand, &base, trim, 1.0 - alpha).map_err(|e| e.to_string())?;
        if p.yuen_p < alpha && p.difference > 0.0 {
            plain += 1;
        }
        let c = stats::compare_with(&cand, &base, trim, 1.0 - alpha, between)
            .map_err(|e| e.to_string())?;
        if c.yuen_p < alpha && c.difference > 0.0 {
            yuen += 1;
        }
        let t = (c.ratio.ln() - (1.0 + floor).ln()) / c.log_ratio_se;
        if stats::upper_tail(t, c.yuen_df) < alpha {
            gate += 1;
        }
        if legacy_welch_on_trimmed(&cand, &base, trim) < alpha {
            naive += 1;
        }
    }
    let n = comparisons as f64;
    Ok(Outcome {
        scenario: scenario.clone(),
        comparisons,
        yuen_reps_only: plain as f64 / n,
        yuen: yuen as f64 / n,
        gate: gate as f64 / n,
        welch_trimmed: naive as f64 / n,
    })
}

/// Throughput reps of one arm: `reps` reps spread over `launches` launches of the default combo.
fn arm_reps(
    target: &SimTarget<'_>,
    noise: NoiseModel,
    launches: usize,
    reps: usize,
    seed: u64,
    scale: f64,
) -> Result<Vec<f64>, String> {
    let combo = Combo::default();
    let mut ls = Vec::new();
    for l in 0..launches.max(1) as u64 {
        let mut launch =
            sim::launch(target, &combo, seed.wrapping_add(l)).map_err(|e| e.to_string())?;
        launch.set_noise(noise);
        ls.push(launch);
    }
    let n = ls.len();
    (0..reps)
        .map(|i| {
            ls[i % n]
                .rep((i / n) as u32)
                .map(|m| m["output_tokens_per_s"] * scale)
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// What the group-sequential design measured for one scenario.
#[derive(Clone, Debug, Serialize)]
pub struct SequentialOutcome {
    pub noise: &'static str,
    pub effect_floors: f64,
    pub min_reps: usize,
    pub max_reps: usize,
    pub comparisons: usize,
    /// Claims of "better" with the threshold at 1 (any win) and the reps the candidate used.
    pub yuen: f64,
    pub yuen_mean_reps: f64,
    /// Claims of "better than 1 + noise floor" (the gate's threshold) and the reps used.
    pub gate: f64,
    pub gate_mean_reps: f64,
}

/// The group-sequential design as the harness runs it: the baseline measured at `max_reps`, the
/// candidate looked at after the planned looks with Pocock's per-look level, stopped by
/// [`stats::sequential_decision`]; a claim is a `Win` stop, or a final interval above the
/// threshold.
pub fn run_sequential(
    target: &SimTarget<'_>,
    noise_name: &'static str,
    effect_floors: f64,
    (min_reps, max_reps): (usize, usize),
    comparisons: usize,
    seed: u64,
) -> Result<SequentialOutcome, String> {
    let noise =
        noise_model(noise_name).ok_or_else(|| format!("unknown noise model `{noise_name}`"))?;
    let hardware = target.hardware;
    let floor = hardware.noise_floor_cv;
    let effect = 1.0 + effect_floors * floor;
    let (alpha, trim) = (0.05, 0.10);
    let looks = stats::planned_looks(min_reps, max_reps);
    let level = per_look_level(alpha, looks.len());
    let between = stats::Between {
        cv: hardware.launch_cv,
        candidate_launches: 1,
        baseline_launches: 1,
    };
    let (mut claims, mut reps_used) = ([0usize; 2], [0usize; 2]);
    for i in 0..comparisons as u64 {
        let base = arm_reps(
            target,
            noise,
            1,
            max_reps,
            seed.wrapping_add(2 * i).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            1.0,
        )?;
        let cand = arm_reps(
            target,
            noise,
            1,
            max_reps,
            seed.wrapping_add(2 * i + 1)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15),
            effect,
        )?;
        for (j, threshold) in [1.0, 1.0 + floor].into_iter().enumerate() {
            for (li, &n) in looks.iter().enumerate() {
                let c = stats::compare_with(&cand[..n], &base, trim, 1.0 - level, between)
                    .map_err(|e| e.to_string())?;
                let last = li + 1 == looks.len();
                let decision = stats::sequential_decision(c.ratio_ci, threshold, floor);
                if decision.is_some() || last {
                    if decision == Some(stats::StopReason::Win)
                        || (last && c.ratio_ci.0 > threshold)
                    {
                        claims[j] += 1;
                    }
                    reps_used[j] += n;
                    break;
                }
            }
        }
    }
    let n = comparisons as f64;
    Ok(SequentialOutcome {
        noise: noise_name,
        effect_floors,
        min_reps,
        max_reps,
        comparisons,
        yuen: claims[0] as f64 / n,
        yuen_mean_reps: reps_used[0] as f64 / n,
        gate: claims[1] as f64 / n,
        gate_mean_reps: reps_used[1] as f64 / n,
    })
}

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
) -> Result<SweepOutcome, String> {
    use crate::spec::GateMethod;
    let truth: Vec<f64> = combos
        .iter()
        .map(|c| {
            sim::truth(target, c)
                .map(|m| m["output_tokens_per_s"])
                .map_err(|e| e.to_string())
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
            )
            .map_err(|e| e.to_string())?;
            let reps = (0..reps as u32)
                .map(|r| launch.rep(r).map_err(|e| e.to_string()))
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
            .ok_or("no winner")?;
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
