//! Expansion: a validated spec plus the catalogs become targets, each with its legal combos (all
//! of them, or a pairwise covering set), its baseline, and the combos it left out with the rule
//! that rejected each. Pure: no I/O, no detected hardware (legality follows the declared target).
//! Every check of the spec itself happens first, in [`crate::validate`].

mod covering;
mod space;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use l1_engines::Combo;
use l1_engines::combo::UNSET;
use serde::Serialize;

pub use self::covering::covering;
pub use self::space::{Axis, Space};
use crate::catalog::{LoadedCatalog, Rejection};
use crate::diag::Diagnostic;
use crate::profiles::Catalogs;
use crate::selection::Selection;
use crate::spec::{LoadedSpec, Mode};
use crate::validate::{self, Valid, at};

/// engine@version × model × hardware × workload (a saved format: [`crate::model::TargetId`]).
pub use crate::model::TargetId;

/// A combo that was not selected, and why.
#[derive(Clone, Debug, Serialize)]
pub struct RejectedCombo {
    pub combo: Combo,
    pub rejections: Vec<Rejection>,
}

/// One target with its combos.
#[derive(Clone, Debug)]
pub struct ExpandedTarget {
    pub id: TargetId,
    /// The target's space: the combos are numbered in it.
    pub space: Space,
    /// The combos to measure, in a stable order: their ordinals in `space` (see
    /// [`Self::combos`]).
    pub picked: Vec<usize>,
    /// How many legal combos exist (`picked.len()` in exhaustive mode).
    pub legal: usize,
    pub baseline: Combo,
    /// The combos the catalog's rules reject: their ordinals in `space` (see
    /// [`Self::rejected`]).
    pub rejected_at: Vec<usize>,
    /// The picked combos, built when first asked for: a listing never builds them.
    combos: OnceLock<Vec<Combo>>,
}

impl ExpandedTarget {
    /// The combos to measure, in a stable order.
    pub fn combos(&self) -> &[Combo] {
        self.combos.get_or_init(|| {
            self.picked
                .iter()
                .map(|&o| self.space.combo_at(o))
                .collect()
        })
    }

    /// The `i`-th combo to measure, built alone.
    pub fn combo(&self, i: usize) -> Combo {
        match self.combos.get() {
            Some(all) => all[i].clone(),
            None => self.space.combo_at(self.picked[i]),
        }
    }

    /// How many combos are to be measured.
    pub fn combo_count(&self) -> usize {
        self.picked.len()
    }

    /// The combos the catalog's rules reject, each with every rejection, as `cats` (the
    /// catalogs the target was expanded against) gives them.
    pub fn rejected(&self, cats: &Catalogs) -> Vec<RejectedCombo> {
        let Some(hw) = cats.hardware.get(&self.id.hardware) else {
            return Vec::new();
        };
        let checker = cats.kernels.checker(&self.id.engine, &self.id.version, hw);
        (self.rejected_at.iter())
            .map(|&o| {
                let combo = self.space.combo_at(o);
                let rejections = checker.check(&combo);
                RejectedCombo { combo, rejections }
            })
            .collect()
    }
}

/// A spec expanded against the catalogs.
#[derive(Clone, Debug)]
pub struct Expanded {
    pub spec: String,
    pub mode: Mode,
    pub targets: Vec<ExpandedTarget>,
    /// The spec as validation typed it (its kind's settings, gates, measure).
    pub typed: crate::spec::Spec,
}

/// Expand `ls` against `cats`.
pub fn expand(ls: &LoadedSpec, cats: &Catalogs) -> Result<Expanded, Diagnostic> {
    expand_only(ls, cats, None)
}

/// Expand, keeping only the target whose id reads `only` (`engine@version::model::hardware::workload`):
/// the `--exact` fast path validates the whole spec but pays for one target's combos.
pub fn expand_only(
    ls: &LoadedSpec,
    cats: &Catalogs,
    only: Option<&str>,
) -> Result<Expanded, Diagnostic> {
    let valid = validate::validate(ls, cats)?;
    let spec = &valid.spec;
    let cat = &cats.kernels;
    let dims: Vec<String> = cat.catalog.dimensions.keys().cloned().collect();
    let mut targets = Vec::new();
    for (engine, version) in &valid.engines {
        for model in &spec.targets.models {
            for hw_name in &spec.targets.hardware {
                for workload in &spec.targets.workloads {
                    let id = TargetId {
                        engine: engine.clone(),
                        version: version.clone(),
                        model: model.value.clone(),
                        hardware: hw_name.value.clone(),
                        workload: workload.value.clone(),
                    };
                    if only.is_some_and(|o| o != id.to_string()) {
                        continue;
                    }
                    targets.push(target(ls, cats, &valid, &dims, id)?);
                }
            }
        }
    }
    Ok(Expanded {
        spec: spec.name.value.clone(),
        mode: spec.mode(),
        targets,
        typed: valid.spec,
    })
}

/// One target's combos, legal ones selected by the spec's mode, and its baseline.
fn target(
    ls: &LoadedSpec,
    cats: &Catalogs,
    valid: &Valid,
    dims: &[String],
    id: TargetId,
) -> Result<ExpandedTarget, Diagnostic> {
    let spec = &valid.spec;
    let cat = &cats.kernels;
    let (engine, version) = (id.engine.as_str(), id.version.as_str());
    let entry = &cat.catalog.engines[engine];
    let hw = &cats.hardware[&id.hardware];
    // Axes: each dimension's candidate values for this engine.
    let mut axes: Vec<Axis> = Vec::new();
    for dim in dims {
        let values = match (cat.engine_values(engine, dim), valid.selections.get(dim)) {
            (None, _) => vec![UNSET.to_string()],
            (Some(offered), Some(Selection::All)) => offered,
            (Some(_), Some(Selection::Values(v))) => v.clone(),
            (Some(_), None) => vec![entry.defaults[dim].clone()],
        };
        axes.push(Axis {
            name: dim.clone(),
            values,
            knob: false,
        });
    }
    for (knob, sel) in &spec.space.knobs {
        if let Some(k) = entry.knobs.get(knob) {
            let values = match sel {
                Selection::All => k.values.clone(),
                Selection::Values(v) => v.clone(),
            };
            axes.push(Axis {
                name: knob.clone(),
                values,
                knob: true,
            });
        }
    }
    let space = Space { axes };
    // Legal and rejected combos by ordinal: a combo is built only when the value tables cannot
    // tell, and a rejected one's rejections only when asked for (or when no combo is legal).
    let mut legal: Vec<usize> = Vec::new();
    let mut rejected_at = Vec::new();
    let checker = cat.checker(engine, version, hw);
    let dim_values: Vec<&[String]> = (space.axes.iter())
        .take_while(|a| !a.knob)
        .map(|a| &a.values[..])
        .collect();
    let legality = checker.legality(&dim_values);
    space.for_each(|ordinal, at| {
        if legality.as_ref().is_some_and(|l| l.is_legal(at)) {
            legal.push(ordinal);
            return;
        }
        if legality.is_none() && checker.check(&space.combo(at)).is_empty() {
            legal.push(ordinal);
        } else {
            rejected_at.push(ordinal);
        }
    });
    if legal.is_empty() {
        let rejected: Vec<RejectedCombo> = (rejected_at.iter())
            .map(|&o| {
                let combo = space.combo_at(o);
                let rejections = checker.check(&combo);
                RejectedCombo { combo, rejections }
            })
            .collect();
        return Err(no_legal_combo(ls, cat, valid, &id, &rejected));
    }
    let n_legal = legal.len();
    let combos = OnceLock::new();
    let picked = match spec.mode() {
        Mode::Exhaustive => legal,
        Mode::Quick => {
            let all: Vec<Combo> = legal.iter().map(|&o| space.combo_at(o)).collect();
            let keep = covering(&all);
            let picked = keep.iter().map(|&i| legal[i]).collect();
            let _ = combos.set(keep.into_iter().map(|i| all[i].clone()).collect());
            picked
        }
    };
    // Baseline: engine defaults, overridden by the named combo; knobs at defaults.
    let mut baseline = Combo::default();
    for dim in dims {
        let v = match cat.engine_values(engine, dim) {
            None => UNSET.to_string(),
            Some(_) => valid
                .baseline_dims
                .get(dim)
                .cloned()
                .unwrap_or_else(|| entry.defaults[dim].clone()),
        };
        baseline.dims.insert(dim.clone(), v);
    }
    for knob in spec.space.knobs.keys() {
        if let Some(k) = entry.knobs.get(knob) {
            baseline.knobs.insert(knob.clone(), k.default.clone());
        }
    }
    let r = cat.check(engine, version, hw, &baseline);
    if !r.is_empty() {
        let reasons: Vec<String> = r.iter().map(|x| x.to_string()).collect();
        return Err(ls
            .diag_key(
                format!(
                    "the baseline is illegal for target {id}: {}",
                    reasons.join("; ")
                ),
                &at!["baseline"],
            )
            .field("baseline")
            .expected("a baseline combo legal on the target's declared hardware"));
    }
    Ok(ExpandedTarget {
        id,
        space,
        picked,
        legal: n_legal,
        baseline,
        rejected_at,
        combos,
    })
}

/// A target whose space holds no legal combo: located at the value the first rejecting rule is
/// about, when the spec's space writes it.
fn no_legal_combo(
    ls: &LoadedSpec,
    cat: &LoadedCatalog,
    valid: &Valid,
    id: &TargetId,
    rejected: &[RejectedCombo],
) -> Diagnostic {
    let space = at!["space"];
    let token = rejected.first().and_then(|r| {
        let rule = cat
            .catalog
            .rules
            .iter()
            .find(|x| r.rejections.iter().any(|j| j.rule == x.id))?;
        rule.when
            .keys()
            .map(|d| r.combo.dim(d))
            .find(|v| ls.locations().scalar_under(&space, v).is_some())
    });
    let mut d = match token {
        Some(v) => ls.diag_value("", &space, v),
        None => ls.diag_key("", &space),
    };
    let pinned = valid
        .selections
        .values()
        .all(|s| matches!(s, Selection::Values(v) if v.len() == 1));
    d.message = if pinned {
        format!(
            "the pinned combo is illegal for target {id}: {}",
            summarize(rejected)
        )
    } else {
        format!("target {id} has no legal combo: {}", summarize(rejected))
    };
    d.field("space")
        .expected("a space with at least one combo legal on the target's declared hardware")
}

/// `rule `r` rejected N (reason)` for each rule, joined by `; `.
fn summarize(rejected: &[RejectedCombo]) -> String {
    let mut by_rule: BTreeMap<String, (usize, String)> = BTreeMap::new();
    for r in rejected {
        for x in &r.rejections {
            let e = by_rule
                .entry(x.rule.clone())
                .or_insert((0, x.reason.clone()));
            e.0 += 1;
        }
    }
    let parts: Vec<String> = by_rule
        .iter()
        .map(|(rule, (n, reason))| format!("rule `{rule}` rejected {n} ({reason})"))
        .collect();
    parts.join("; ")
}
