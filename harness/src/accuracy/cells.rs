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
    out
}
