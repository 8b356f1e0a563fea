//! The designs a cell can measure and the cells of the published accuracy table.

use serde::Serialize;

use crate::stats;

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
    /// The `pareto` gate `against: stored` (the frontier comparison, `gates::frontier`), both
    /// forms (ε = `epsilon`): main's frontier of `points` combos measured in a "main" run, and
    /// as many combos measured now, combo `j` covering point `j`. The cell's effect is the true
    /// change of the covering combo's improvement ratio on `axes`, for the `shifted` points
    /// (−0.05: 5 % lower throughput, or a latency 1/0.95 times main's); the other points are
    /// covered exactly. `reps` reps over `launches` launches per arm, in both runs.
    Frontier {
        points: usize,
        shifted: FrontierShift,
        axes: FrontierAxes,
        epsilon: f64,
        reps: usize,
        launches: usize,
    },
    /// `l1 ab`: `rounds` rounds, each measuring the base and the head in launches of their own
    /// (`reps` reps over `launches` launches per side), judged by `l1 ab`'s paired test on the
    /// rounds' throughput ratios in both forms (ε = `epsilon`). The cell's effect is the head's
    /// true throughput change.
    Ab {
        rounds: usize,
        reps: usize,
        launches: usize,
        epsilon: f64,
    },
}

/// Which of main's frontier points a [`Design::Frontier`] cell's effect applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontierShift {
    /// Only the throughput-best point's cover (a change that slows main's fastest combo).
    One,
    /// Every point's cover.
    All,
}

/// Which axes of the covering combo a [`Design::Frontier`] cell's effect applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FrontierAxes {
    Throughput,
    Latency,
    Both,
}

impl FrontierAxes {
    /// Whether the effect applies to (throughput, latency).
    pub fn shifts(self) -> (bool, bool) {
        match self {
            Self::Throughput => (true, false),
            Self::Latency => (false, true),
            Self::Both => (true, true),
        }
    }

    fn short(self) -> &'static str {
        match self {
            Self::Throughput => "tps",
            Self::Latency => "lat",
            Self::Both => "both",
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::Throughput => "throughput",
            Self::Latency => "latency",
            Self::Both => "throughput and latency",
        }
    }
}

/// One cell of the accuracy table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cell {
    /// Stable identifier: names the cell's random stream and selects it on the command line.
    pub id: String,
    pub noise: &'static str,
    /// True relative change of the candidate's throughput (0.03: 3 % faster; −0.05: 5 % slower);
    /// in a frontier cell, of the shifted covers' improvement ratio on the shifted axes.
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

/// `-sb2x` when the true launch-to-launch CV is `sb` times the assumed one; nothing at 1.
fn sb_id(sb: f64) -> String {
    if sb == 1.0 {
        String::new()
    } else {
        format!("-sb{sb}x")
    }
}

impl Cell {
    fn pair(noise: &'static str, reps: usize, launches: usize, effect: f64, sb: f64) -> Self {
        Self {
            id: format!(
                "pair-{noise}-{reps}x{launches}{}{}",
                pct_id(effect),
                sb_id(sb)
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
            id: format!("regression-7x1{}{}", pct_id(effect), sb_id(sb)),
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

    fn frontier(
        points: usize,
        shifted: FrontierShift,
        axes: FrontierAxes,
        (reps, launches): (usize, usize),
        effect: f64,
        sb: f64,
    ) -> Self {
        let shift = match (points, shifted) {
            (1, _) => String::new(),
            (_, FrontierShift::One) => "one-".to_string(),
            (_, FrontierShift::All) => "all-".to_string(),
        };
        Self {
            id: format!(
                "frontier-{points}pt-{shift}{}-{reps}x{launches}{}{}",
                axes.short(),
                pct_id(effect),
                sb_id(sb)
            ),
            noise: "normal",
            effect,
            launch_cv_factor: sb,
            design: Design::Frontier {
                points,
                shifted,
                axes,
                epsilon: 0.05,
                reps,
                launches,
            },
        }
    }

    fn ab(rounds: usize, (reps, launches): (usize, usize), effect: f64, sb: f64) -> Self {
        Self {
            id: format!(
                "ab-{rounds}r-{reps}x{launches}{}{}",
                pct_id(effect),
                sb_id(sb)
            ),
            noise: "normal",
            effect,
            launch_cv_factor: sb,
            design: Design::Ab {
                rounds,
                reps,
                launches,
                epsilon: 0.05,
            },
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
            Design::Frontier {
                points,
                shifted,
                axes,
                epsilon,
                reps,
                launches,
            } => {
                let whose = match (points, shifted) {
                    (1, _) => "its cover",
                    (_, FrontierShift::One) => "the throughput-best point's cover",
                    (_, FrontierShift::All) => "every point's cover",
                };
                format!(
                    "pareto against stored ε={:.0} %: main's frontier of {points} point(s), {reps} reps in {launches} launch(es) per arm; {whose} {eff} on {}{sb}",
                    epsilon * 100.0,
                    axes.words()
                )
            }
            Design::Ab {
                rounds,
                reps,
                launches,
                epsilon,
            } => format!(
                "l1 ab ε={:.0} %: {rounds} rounds, {reps} reps in {launches} launch(es) per side and round, the head's true change {eff}{sb}",
                epsilon * 100.0
            ),
        }
    }
}

/// The cells of the published tables (`docs/src/statistics.md`, "Measured error rates").
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
    // The frontier comparison (`pareto` `against: stored`) at the pull-request recipe's 7 reps
    // in one launch per arm: one point, then four; the boundary (a shortfall of exactly ε) on
    // one axis and on both, for one point and for all; then 15 reps over 3 launches, and the
    // true σ_b twice the assumed one (main measured on another machine).
    use FrontierAxes::{Both, Latency, Throughput};
    use FrontierShift::{All, One};
    let pr = (7, 1);
    out.push(Cell::frontier(1, All, Both, pr, 0.0, 1.0));
    for axes in [Throughput, Latency, Both] {
        out.push(Cell::frontier(1, All, axes, pr, -0.05, 1.0));
    }
    for (axes, e) in [(Throughput, -0.10), (Both, -0.10), (Throughput, -0.15)] {
        out.push(Cell::frontier(1, All, axes, pr, e, 1.0));
    }
    out.push(Cell::frontier(4, All, Both, pr, 0.0, 1.0));
    for shifted in [All, One] {
        for axes in [Throughput, Both] {
            out.push(Cell::frontier(4, shifted, axes, pr, -0.05, 1.0));
        }
    }
    for (axes, e) in [(Throughput, -0.10), (Both, -0.10), (Throughput, -0.15)] {
        out.push(Cell::frontier(4, One, axes, pr, e, 1.0));
    }
    out.push(Cell::frontier(4, All, Both, (15, 3), 0.0, 1.0));
    out.push(Cell::frontier(4, One, Throughput, (15, 3), -0.05, 1.0));
    out.push(Cell::frontier(4, One, Throughput, (15, 3), -0.10, 1.0));
    out.push(Cell::frontier(1, All, Throughput, pr, -0.05, 2.0));
    out.push(Cell::frontier(4, All, Both, pr, 0.0, 2.0));
    // `l1 ab` at its default 6 rounds of 7 reps in one launch per side: no change, the
    // boundary (exactly ε), beyond it; 3 and 12 rounds at the boundary; and the true σ_b twice
    // the assumed one, which a stored comparison cannot absorb and the rounds do.
    for e in [0.0, -0.05, -0.08, -0.10] {
        out.push(Cell::ab(6, pr, e, 1.0));
    }
    out.push(Cell::ab(3, pr, -0.05, 1.0));
    out.push(Cell::ab(12, pr, -0.05, 1.0));
    out.push(Cell::ab(6, pr, -0.05, 2.0));
    out.push(Cell::ab(6, pr, 0.0, 2.0));
    out
}
