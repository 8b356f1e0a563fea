//! Expansion: a parsed spec plus the catalogs become targets, each with its legal combos (all of
//! them, or a pairwise covering set), its baseline, and the combos it left out with the rule that
//! rejected each. Pure: no I/O, no detected hardware (legality follows the declared target).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;

use l1_engines::Combo;
use l1_engines::combo::UNSET;
use l1_engines::metrics::{metric, metric_names};
use serde::Serialize;

use crate::catalog::Rejection;
use crate::diag::{Diagnostic, did_you_mean, nearest};
use crate::profiles::Catalogs;
use crate::selection::Selection;
use crate::spec::{Baseline, Gate, GateMethod, LoadedSpec, Mode};
use crate::stats;

/// engine@version × model × hardware × workload.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
pub struct TargetId {
    pub engine: String,
    pub version: String,
    pub model: String,
    pub hardware: String,
    pub workload: String,
}

impl fmt::Display for TargetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}::{}::{}::{}",
            self.engine, self.version, self.model, self.hardware, self.workload
        )
    }
}

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
    /// The combos to measure, in a stable order.
    pub combos: Vec<Combo>,
    /// How many legal combos exist (`combos.len()` in exhaustive mode).
    pub legal: usize,
    pub baseline: Combo,
    pub rejected: Vec<RejectedCombo>,
}

/// A spec expanded against the catalogs.
#[derive(Clone, Debug)]
pub struct Expanded {
    pub spec: String,
    pub mode: Mode,
    pub targets: Vec<ExpandedTarget>,
}

/// Split `engine@version`.
pub fn split_engine(s: &str) -> Option<(&str, &str)> {
    let (e, v) = s.split_once('@')?;
    (!e.is_empty() && !v.is_empty()).then_some((e, v))
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
    let spec = &ls.spec;
    let cat = &cats.kernels;
    let dims: Vec<String> = cat.catalog.dimensions.keys().cloned().collect();

    // Validation collects every independent error of the spec (up to a limit) before it
    // returns, so one pass shows them all; checks that depend on an earlier part (knobs on the
    // engines) are skipped when that part is wrong.
    let mut errs: Vec<Diagnostic> = Vec::new();

    // Targets.
    let engine_names: Vec<&String> = cat.catalog.engines.keys().collect();
    let mut engines = Vec::new();
    let mut engines_ok = true;
    for (i, e) in spec.targets.engines.iter().enumerate() {
        let field = format!("targets.engines[{i}]");
        let Some((name, version)) = split_engine(&e.value) else {
            engines_ok = false;
            let mut d = ls
                .diag_span(format!("engine `{}` has no version", e.value), e)
                .field(field)
                .expected(format!(
                    "`engine@version`, e.g. `sim@1.0`; engines: {}",
                    cat.catalog
                        .engines
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            if let Some(entry) = cat.catalog.engines.get(e.value.as_str())
                && let Some(v) = entry.versions.last()
            {
                d = d.help(format!(
                    "write `{}@{v}` (or another of its versions)",
                    e.value
                ));
            }
            errs.push(d);
            continue;
        };
        let Some(entry) = cat.catalog.engines.get(name) else {
            engines_ok = false;
            let mut d = ls
                .diag_span(format!("unknown engine `{name}`"), e)
                .field(field)
                .choices(cat.catalog.engines.keys());
            d.help = did_you_mean(name, engine_names.iter().copied());
            errs.push(d);
            continue;
        };
        if !entry.versions.iter().any(|v| v == version) {
            engines_ok = false;
            let mut d = ls
                .diag_span(
                    format!("engine `{name}` has no supported version `{version}`"),
                    e,
                )
                .field(field)
                .choices(entry.versions.iter().map(|v| format!("{name}@{v}")));
            let near: Vec<String> = nearest(version, &entry.versions)
                .into_iter()
                .map(|v| format!("{name}@{v}"))
                .collect();
            d.help = did_you_mean(version, &near).or_else(|| {
                (!near.is_empty()).then(|| format!("did you mean `{}`?", near.join("` or `")))
            });
            errs.push(d);
            continue;
        }
        engines.push((name.to_string(), version.to_string()));
    }
    if spec.targets.engines.is_empty() {
        engines_ok = false;
        errs.push(
            ls.diag_find("no engine listed", "engines", "engines")
                .field("targets.engines")
                .expected("at least one `engine@version`"),
        );
    }
    let mut check_names =
        |list: &[serde_saphyr::Spanned<String>], known: Vec<&String>, what: &str, key: &str| {
            for (i, item) in list.iter().enumerate() {
                if !known.contains(&&item.value) {
                    let mut d = ls
                        .diag_span(format!("unknown {what} `{}`", item.value), item)
                        .field(format!("targets.{key}[{i}]"))
                        .choices(known.iter().map(|s| s.as_str()));
                    d.help = did_you_mean(&item.value, known.iter().copied());
                    errs.push(d);
                }
            }
            if list.is_empty() {
                errs.push(
                    ls.diag_find(format!("no {what} listed"), key, key)
                        .field(format!("targets.{key}"))
                        .expected(format!("at least one {what}")),
                );
            }
        };
    check_names(
        &spec.targets.models,
        cats.models.keys().collect(),
        "model",
        "models",
    );
    check_names(
        &spec.targets.hardware,
        cats.hardware.keys().collect(),
        "hardware profile",
        "hardware",
    );
    check_names(
        &spec.targets.workloads,
        cats.workloads.keys().collect(),
        "workload",
        "workloads",
    );

    // The values of a dimension the spec's (known) engines accept, in catalog order, and a note
    // naming those engines; every catalog value when none of them exposes the dimension.
    let accepted = |dim: &str, all: &[String]| -> (Vec<String>, String) {
        let owners: Vec<&str> = engines
            .iter()
            .map(|(e, _)| e.as_str())
            .filter(|e| cat.engine_values(e, dim).is_some())
            .collect();
        if owners.is_empty() {
            return (all.to_vec(), String::new());
        }
        let vals: Vec<String> = all
            .iter()
            .filter(|v| {
                owners
                    .iter()
                    .any(|e| cat.engine_values(e, dim).is_some_and(|x| x.contains(v)))
            })
            .cloned()
            .collect();
        let note = if owners.len() == 1 {
            format!(" (the values engine `{}` accepts)", owners[0])
        } else {
            format!(
                " (the values engines {} accept)",
                owners
                    .iter()
                    .map(|e| format!("`{e}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        (vals, note)
    };
    // An unknown value of `dim`, found at `key`/`value`: the choices are the values the spec's
    // engines accept (then `extra`), and `did you mean` tries those first, then any catalog value.
    let unknown_value =
        |message: String, key: &str, value: &str, field: String, dim: &str, extra: &[&str]| {
            let all = cat
                .catalog
                .dimensions
                .get(dim)
                .map_or(&[][..], |d| d.values.as_slice());
            let (ok_vals, note) = accepted(dim, all);
            let mut e = ls.diag_find(message, key, value).field(field).choices(
                ok_vals
                    .iter()
                    .map(String::as_str)
                    .chain(extra.iter().copied()),
            );
            if let Some(x) = e.expected.as_mut() {
                x.push_str(&note);
            }
            e.help = did_you_mean(value, &ok_vals).or_else(|| did_you_mean(value, all));
            e
        };
    // An unknown dimension, found at `key`/`dim`, with the catalog's dimensions as choices.
    let unknown_dimension = |message: String, key: &str, dim: &str, field: String| {
        let mut e = ls.diag_find(message, key, dim).field(field).choices(&dims);
        e.help = did_you_mean(dim, &dims);
        e
    };

    // Space: dims and pins.
    let mut selections: BTreeMap<String, Selection> = BTreeMap::new();
    for (dim, sel) in &spec.space.dims {
        let Some(d) = cat.catalog.dimensions.get(dim) else {
            errs.push(unknown_dimension(
                format!("unknown dimension `{dim}`"),
                "dims",
                dim,
                format!("space.dims.{dim}"),
            ));
            continue;
        };
        if let Selection::Values(vals) = sel {
            for v in vals {
                if !d.values.contains(v) {
                    errs.push(unknown_value(
                        format!("unknown value `{v}` of dimension `{dim}`"),
                        dim,
                        v,
                        format!("space.dims.{dim}"),
                        dim,
                        &["all"],
                    ));
                }
            }
            let unique: BTreeSet<&String> = vals.iter().collect();
            if unique.len() != vals.len() {
                errs.push(
                    ls.diag_find(
                        format!("dimension `{dim}` lists a value twice"),
                        "dims",
                        dim,
                    )
                    .field(format!("space.dims.{dim}")),
                );
            }
        }
        selections.insert(dim.clone(), sel.clone());
    }
    for (dim, v) in &spec.space.pins {
        let Some(d) = cat.catalog.dimensions.get(dim) else {
            errs.push(unknown_dimension(
                format!("unknown dimension `{dim}`"),
                "pins",
                dim,
                format!("space.pins.{dim}"),
            ));
            continue;
        };
        if !d.values.contains(&v.0) {
            errs.push(unknown_value(
                format!("unknown value `{}` of dimension `{dim}`", v.0),
                "pins",
                &v.0,
                format!("space.pins.{dim}"),
                dim,
                &[],
            ));
        }
        if selections.contains_key(dim) {
            errs.push(
                ls.diag_find(
                    format!("dimension `{dim}` is both swept in `dims` and pinned in `pins`"),
                    "pins",
                    dim,
                )
                .field(format!("space.pins.{dim}"))
                .expected("each dimension in at most one of `dims` and `pins`"),
            );
            continue;
        }
        selections.insert(dim.clone(), Selection::Values(vec![v.0.clone()]));
    }
    if engines_ok {
        for dim in selections.keys() {
            if !cat.catalog.dimensions.contains_key(dim) {
                continue;
            }
            if !engines
                .iter()
                .any(|(e, _)| cat.engine_values(e, dim).is_some())
            {
                errs.push(
                    ls.diag_find(
                        format!("no engine of this spec exposes dimension `{dim}`"),
                        "space",
                        dim,
                    )
                    .field(format!("space.dims.{dim}"))
                    .expected(format!(
                        "a dimension one of the spec's engines exposes ({})",
                        engines
                            .iter()
                            .map(|(e, _)| e.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
            }
        }
        // Knobs (engine-specific: checked only when every engine is known).
        for (knob, sel) in &spec.space.knobs {
            let owners: Vec<&String> = engines
                .iter()
                .map(|(e, _)| e)
                .filter(|e| cat.catalog.engines[*e].knobs.contains_key(knob))
                .collect();
            if owners.is_empty() {
                let known: BTreeSet<&String> = engines
                    .iter()
                    .flat_map(|(e, _)| cat.catalog.engines[e].knobs.keys())
                    .collect();
                let mut e = ls
                    .diag_find(
                        format!("unknown knob `{knob}` for this spec's engines"),
                        "knobs",
                        knob,
                    )
                    .field(format!("space.knobs.{knob}"))
                    .choices(&known);
                e.help = did_you_mean(knob, known.iter().copied());
                errs.push(e);
                continue;
            }
            if let Selection::Values(vals) = sel {
                for e in &owners {
                    let allowed = &cat.catalog.engines[*e].knobs[knob].values;
                    for v in vals {
                        if !allowed.contains(v) {
                            let mut d = ls
                                .diag_find(
                                    format!("knob `{knob}` of engine `{e}` has no value `{v}`"),
                                    knob,
                                    v,
                                )
                                .field(format!("space.knobs.{knob}"))
                                .choices(allowed.iter().map(String::as_str).chain(["all"]));
                            d.help = did_you_mean(v, allowed);
                            errs.push(d);
                        }
                    }
                }
            }
        }
    }

    // Measurement settings.
    check_measure(ls, &mut errs);

    // Tune fields: validated for tune specs, refused on sweeps.
    if let Err(d) = crate::tuning::validate_spec(ls) {
        errs.push(d);
    }

    // Gates.
    if spec.gates.is_empty() {
        errs.push(
            ls.diag_find("no gates listed", "gates", "gates")
                .field("gates")
                .expected("at least one gate: topk5, pareto, regression, manual, drift, fidelity"),
        );
    }
    for (i, g) in spec.gates.iter().enumerate() {
        check_gate(ls, i, g, &mut errs);
    }

    // Baseline dims.
    let mut baseline_dims: BTreeMap<String, String> = BTreeMap::new();
    if let Baseline::Combo(map) = &spec.baseline {
        for (dim, v) in map {
            let Some(d) = cat.catalog.dimensions.get(dim) else {
                errs.push(unknown_dimension(
                    format!("unknown dimension `{dim}` in the baseline"),
                    "baseline",
                    dim,
                    format!("baseline.combo.{dim}"),
                ));
                continue;
            };
            if !d.values.contains(&v.0) {
                errs.push(unknown_value(
                    format!("unknown value `{}` of `{dim}` in the baseline", v.0),
                    "baseline",
                    &v.0,
                    format!("baseline.combo.{dim}"),
                    dim,
                    &[],
                ));
                continue;
            }
            baseline_dims.insert(dim.clone(), v.0.clone());
        }
    }
    if let Some(d) = Diagnostic::combine(errs) {
        return Err(d);
    }

    let mut targets = Vec::new();
    for (engine, version) in &engines {
        let entry = &cat.catalog.engines[engine];
        for model in &spec.targets.models {
            for hw_name in &spec.targets.hardware {
                let hw = &cats.hardware[&hw_name.value];
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
                    // Axes: each dimension's candidate values for this engine.
                    let mut axes: Vec<(String, Vec<String>, bool)> = Vec::new();
                    for dim in &dims {
                        let values = match (cat.engine_values(engine, dim), selections.get(dim)) {
                            (None, _) => vec![UNSET.to_string()],
                            (Some(offered), Some(Selection::All)) => offered,
                            (Some(_), Some(Selection::Values(v))) => v.clone(),
                            (Some(_), None) => vec![entry.defaults[dim].clone()],
                        };
                        axes.push((dim.clone(), values, false));
                    }
                    for (knob, sel) in &spec.space.knobs {
                        if let Some(k) = entry.knobs.get(knob) {
                            let values = match sel {
                                Selection::All => k.values.clone(),
                                Selection::Values(v) => v.clone(),
                            };
                            axes.push((knob.clone(), values, true));
                        }
                    }
                    let mut legal = Vec::new();
                    let mut rejected = Vec::new();
                    for combo in cartesian(&axes) {
                        let r = cat.check(engine, version, hw, &combo);
                        if r.is_empty() {
                            legal.push(combo);
                        } else {
                            rejected.push(RejectedCombo {
                                combo,
                                rejections: r,
                            });
                        }
                    }
                    if legal.is_empty() {
                        // Point at the value the first rejecting rule is about, when the spec wrote it.
                        let token = rejected.first().and_then(|r| {
                            let rule = cat
                                .catalog
                                .rules
                                .iter()
                                .find(|x| r.rejections.iter().any(|j| j.rule == x.id))?;
                            rule.when
                                .keys()
                                .map(|d| r.combo.dim(d).to_string())
                                .find(|v| ls.rendered.text.contains(v.as_str()))
                        });
                        let mut d = ls.diag_find(
                            format!("target {id} has no legal combo: {}", summarize(&rejected)),
                            "space",
                            token.as_deref().unwrap_or("space"),
                        );
                        if selections
                            .values()
                            .all(|s| matches!(s, Selection::Values(v) if v.len() == 1))
                        {
                            d.message = format!(
                                "the pinned combo is illegal for target {id}: {}",
                                summarize(&rejected)
                            );
                        }
                        return Err(d.field("space").expected("a space with at least one combo legal on the target's declared hardware"));
                    }
                    let n_legal = legal.len();
                    // A tune spec's search space is every legal combo.
                    let mode = if spec.kind == crate::spec::SpecKind::Tune {
                        Mode::Exhaustive
                    } else {
                        spec.space.mode
                    };
                    let combos = match mode {
                        Mode::Exhaustive => legal,
                        Mode::Quick => {
                            let keep = covering(&legal);
                            keep.into_iter().map(|i| legal[i].clone()).collect()
                        }
                    };
                    // Baseline: engine defaults, overridden by the named combo; knobs at defaults.
                    let mut baseline = Combo::default();
                    for dim in &dims {
                        let v = match cat.engine_values(engine, dim) {
                            None => UNSET.to_string(),
                            Some(_) => baseline_dims
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
                            .diag_find(
                                format!(
                                    "the baseline is illegal for target {id}: {}",
                                    reasons.join("; ")
                                ),
                                "baseline",
                                "baseline",
                            )
                            .field("baseline")
                            .expected("a baseline combo legal on the target's declared hardware"));
                    }
                    targets.push(ExpandedTarget {
                        id,
                        combos,
                        legal: n_legal,
                        baseline,
                        rejected,
                    });
                }
            }
        }
    }
    Ok(Expanded {
        spec: spec.name.value.clone(),
        mode: spec.space.mode,
        targets,
    })
}

/// The most reps a measurement may plan (`reps`, `min_reps`, `max_reps`): each rep is a whole
/// workload run against a launched engine, and 10,000 reps already narrow an interval about 38
/// times compared with the default 7; a larger number is a typo or a study to split into runs.
pub const MAX_REPS: u32 = 10_000;

/// The most warm-up reps per launch: whole reps whose results are discarded.
pub const MAX_WARMUP_REPS: u32 = 1_000;

/// Range checks of `measure`: every problem is pushed to `errs`.
fn check_measure(ls: &LoadedSpec, errs: &mut Vec<Diagnostic>) {
    let m = &ls.spec.measure;
    let out_of_range = |field: &str, value: String, expected: String| {
        ls.diag_find(
            format!("measure.{field} {value} is out of range"),
            "measure",
            field,
        )
        .field(format!("measure.{field}"))
        .expected(expected)
    };
    let trim_ok = (0.0..0.5).contains(&m.trim);
    if !trim_ok {
        errs.push(
            ls.diag_find(
                format!("trim fraction {} is out of range", m.trim),
                "measure",
                "trim",
            )
            .field("measure.trim")
            .expected("a fraction in [0, 0.5)"),
        );
    }
    if m.reps > MAX_REPS {
        errs.push(out_of_range(
            "reps",
            m.reps.to_string(),
            format!("at most {MAX_REPS} reps (each rep is a whole workload run; split a longer study into several runs)"),
        ));
    } else if trim_ok && let Err(e) = stats::check_reps(m.reps as usize, m.trim) {
        errs.push(
            ls.diag_find(e.to_string(), "measure", "reps")
                .field("measure.reps")
                .expected("enough reps to keep at least 2 after trimming"),
        );
    }
    if m.warmup_reps > MAX_WARMUP_REPS {
        errs.push(out_of_range(
            "warmup_reps",
            m.warmup_reps.to_string(),
            format!("0 to {MAX_WARMUP_REPS} warm-up reps per launch (whole reps, discarded)"),
        ));
    }
    for (field, v) in [("min_reps", m.min_reps), ("max_reps", m.max_reps)] {
        if let Some(v) = v
            && v > MAX_REPS
        {
            errs.push(out_of_range(
                field,
                v.to_string(),
                format!("at most {MAX_REPS} reps (each rep is a whole workload run)"),
            ));
        }
    }
    let seq_in_range =
        m.min_reps.is_none_or(|v| v <= MAX_REPS) && m.max_reps.is_none_or(|v| v <= MAX_REPS);
    if m.min_reps.is_some() && m.max_reps.is_none() {
        errs.push(
            ls.diag_find("`min_reps` without `max_reps`", "measure", "min_reps")
                .field("measure.min_reps")
                .expected(
                    "`max_reps` as well: early termination runs between min_reps and max_reps",
                ),
        );
    }
    if let Some((lo, hi)) = m.sequential()
        && seq_in_range
    {
        if lo < 3 || lo > hi {
            errs.push(
                ls.diag_find(
                    format!("early termination between {lo} and {hi} reps is not a valid plan"),
                    "measure",
                    "min_reps",
                )
                .field("measure.min_reps")
                .expected("3 <= min_reps <= max_reps"),
            );
        } else if trim_ok && let Err(e) = stats::check_reps(lo as usize, m.trim) {
            errs.push(
                ls.diag_find(format!("min_reps: {e}"), "measure", "min_reps")
                    .field("measure.min_reps")
                    .expected("enough reps at the first look to keep at least 2 after trimming"),
            );
        }
    }
    // Every launch runs at least one rep (rep i runs on launch i mod launches).
    let full = m.full_reps();
    if m.launches == 0 || (m.launches > full && full <= MAX_REPS) {
        errs.push(out_of_range(
            "launches",
            m.launches.to_string(),
            format!(
                "1 to {} launches (at most one per rep: the reps are spread over the launches, so every launch runs at least one)",
                full.clamp(1, MAX_REPS)
            ),
        ));
    }
    for (field, v) in [("noise_floor", m.noise_floor), ("launch_cv", m.launch_cv)] {
        if v.is_some_and(|x| !(0.0..0.5).contains(&x)) {
            errs.push(
                ls.diag_find(
                    format!("measure.{field} {} is out of range", v.unwrap_or_default()),
                    "measure",
                    field,
                )
                .field(format!("measure.{field}"))
                .expected("a coefficient of variation in [0, 0.5), e.g. 0.02 for 2 %"),
            );
        }
    }
    if let Some(t) = m.startup_timeout_s
        && !(t > 0.0 && t <= 86_400.0)
    {
        errs.push(
            ls.diag_find(
                format!("measure.startup_timeout_s {t} is out of range"),
                "measure",
                "startup_timeout_s",
            )
            .field("measure.startup_timeout_s")
            .expected("seconds in (0, 86400], e.g. 600 for a large model"),
        );
    }
}

/// Checks of gate `i`: every problem is pushed to `errs`.
fn check_gate(ls: &LoadedSpec, i: usize, g: &Gate, errs: &mut Vec<Diagnostic>) {
    let names = g
        .metric
        .iter()
        .chain(g.latency_metric.iter())
        .chain(g.metrics.iter().flatten());
    for n in names {
        if metric(&n.value).is_none() {
            let mut d = ls
                .diag_span(format!("gate names unknown metric `{}`", n.value), n)
                .field(format!("gates[{i}]"))
                .choices(metric_names());
            d.help = did_you_mean(&n.value, &metric_names());
            errs.push(d);
        }
    }
    let bad = |field: &str, why: &str| {
        ls.diag_find(
            format!("gate `{:?}` {why}", g.method).to_lowercase(),
            "gates",
            field,
        )
        .field(format!("gates[{i}].{field}"))
    };
    for (field, set) in [("margin", g.margin.is_some()), ("k", g.k.is_some())] {
        if set && g.method != GateMethod::Topk5 {
            errs.push(bad(
                field,
                &format!("does not take `{field}` (only topk5 does)"),
            ));
        }
    }
    for (name, eps) in g.epsilons.iter().flatten() {
        if metric(name).is_none() {
            let mut d = ls
                .diag_find(
                    format!("gate names unknown metric `{name}` in `epsilons`"),
                    "gates",
                    name,
                )
                .field(format!("gates[{i}].epsilons"))
                .choices(metric_names());
            d.help = did_you_mean(name, &metric_names());
            errs.push(d);
        }
        if !(0.0..1.0).contains(eps) {
            errs.push(
                ls.diag_find(
                    format!("epsilon {eps} for `{name}` is outside [0, 1)"),
                    "gates",
                    name,
                )
                .field(format!("gates[{i}].epsilons.{name}")),
            );
        }
    }
    if (g.epsilon.is_some() || g.metrics.is_some() || g.epsilons.is_some())
        && g.method != GateMethod::Regression
    {
        errs.push(bad(
            "epsilon",
            "does not take `epsilon` or `metrics` (only regression does)",
        ));
    }
    if g.latency_metric.is_some() && g.method != GateMethod::Pareto {
        errs.push(bad(
            "latency_metric",
            "does not take `latency_metric` (only pareto does)",
        ));
    }
    if g.margin.is_some_and(|x| !(0.0..1.0).contains(&x))
        || g.epsilon.is_some_and(|x| !(0.0..1.0).contains(&x))
    {
        errs.push(
            bad("margin", "has a margin or epsilon outside [0, 1)")
                .expected("a relative change in [0, 1), e.g. 0.03 for 3 %"),
        );
    }
    if g.alpha.is_some_and(|a| !(a > 0.0 && a < 0.5)) {
        errs.push(bad("alpha", "has alpha outside (0, 0.5)").expected("e.g. 0.05"));
    }
    if g.k == Some(0) {
        errs.push(bad("k", "needs k >= 1"));
    }
    match g.against.as_deref() {
        None | Some("baseline") => {}
        Some("stored") if g.method == GateMethod::Regression => {}
        Some("stored") => {
            errs.push(bad(
                "against",
                "does not take `against: stored` (only regression compares with stored results)",
            ));
        }
        Some(other) => {
            let mut d = ls
                .diag_find(
                    format!("`against: {other}` is not a comparison"),
                    "gates",
                    "against",
                )
                .field(format!("gates[{i}].against"))
                .choices(["baseline", "stored"]);
            d.help = did_you_mean(other, &["baseline", "stored"]);
            errs.push(d);
        }
    }
    if g.label.is_some() && g.against.as_deref() != Some("stored") {
        errs.push(bad("label", "takes `label` only with `against: stored`"));
    }
    if g.form.is_some() && g.method != GateMethod::Regression {
        errs.push(
            bad("form", "does not take `form` (only regression does)")
                .choices(["fail_on_regression", "non_inferiority"]),
        );
    }
    if g.max_mde.is_some_and(|x| !(x > 0.0 && x <= 10.0)) {
        errs.push(
            bad("max_mde", "has max_mde outside (0, 10]")
                .expected("a relative effect, e.g. 0.10 for 10 %"),
        );
    }
    if g.max_mde.is_some() && matches!(g.method, GateMethod::Drift | GateMethod::Fidelity) {
        errs.push(bad(
            "max_mde",
            "does not take `max_mde` (only gates that compare combos with the baseline do)",
        ));
    }
    if let Err(d) = crate::fidelity::validate_gate(ls, i, g) {
        errs.push(d);
    }
}

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

/// Every combination of the axes, in a stable order.
fn cartesian(axes: &[(String, Vec<String>, bool)]) -> Vec<Combo> {
    let mut out = vec![Combo::default()];
    for (name, values, is_knob) in axes {
        let mut next = Vec::with_capacity(out.len() * values.len());
        for c in &out {
            for v in values {
                let mut c = c.clone();
                if *is_knob {
                    c.knobs.insert(name.clone(), v.clone());
                } else {
                    c.dims.insert(name.clone(), v.clone());
                }
                next.push(c);
            }
        }
        out = next;
    }
    out
}

/// A pairwise covering subset of `legal` (indices, in their original order): greedily take the
/// combo covering the most uncovered value pairs, the first one on ties, until every pair that
/// appears in some legal combo is covered. Deterministic, so every process agrees on it.
pub fn covering(legal: &[Combo]) -> Vec<usize> {
    if legal.is_empty() {
        return Vec::new();
    }
    // Encode each combo as a vector of (axis, value) ids over the axes that vary.
    let axes: Vec<String> = legal[0]
        .dims
        .keys()
        .map(|k| format!("d:{k}"))
        .chain(legal[0].knobs.keys().map(|k| format!("k:{k}")))
        .collect();
    let value_of = |c: &Combo, axis: &str| -> String {
        match axis.split_at(2) {
            ("d:", k) => c.dim(k).to_string(),
            (_, k) => c.knob(k).unwrap_or("").to_string(),
        }
    };
    let mut varying = Vec::new();
    for a in &axes {
        let distinct: BTreeSet<String> = legal.iter().map(|c| value_of(c, a)).collect();
        if distinct.len() > 1 {
            varying.push((a.clone(), distinct.into_iter().collect::<Vec<_>>()));
        }
    }
    let codes: Vec<Vec<u16>> = legal
        .iter()
        .map(|c| {
            varying
                .iter()
                .map(|(a, vals)| vals.iter().position(|v| *v == value_of(c, a)).unwrap_or(0) as u16)
                .collect()
        })
        .collect();
    let pairs_of = |code: &[u16]| {
        let mut p = Vec::with_capacity(code.len() * code.len() / 2);
        for i in 0..code.len() {
            for j in i + 1..code.len() {
                p.push((i as u16, code[i], j as u16, code[j]));
            }
        }
        p
    };
    if varying.len() < 2 {
        // With fewer than two varying axes, covering pairs means covering every value.
        let mut seen = HashSet::new();
        return codes
            .iter()
            .enumerate()
            .filter(|(_, c)| seen.insert((*c).clone()))
            .map(|(i, _)| i)
            .collect();
    }
    let all_pairs: Vec<Vec<(u16, u16, u16, u16)>> = codes.iter().map(|c| pairs_of(c)).collect();
    let mut uncovered: HashSet<(u16, u16, u16, u16)> =
        all_pairs.iter().flatten().copied().collect();
    let mut chosen = Vec::new();
    let mut taken = vec![false; legal.len()];
    while !uncovered.is_empty() {
        let mut best = None;
        let mut best_gain = 0;
        for (i, pairs) in all_pairs.iter().enumerate() {
            if taken[i] {
                continue;
            }
            let gain = pairs.iter().filter(|p| uncovered.contains(p)).count();
            if gain > best_gain {
                best_gain = gain;
                best = Some(i);
            }
        }
        let Some(i) = best else { break };
        taken[i] = true;
        for p in &all_pairs[i] {
            uncovered.remove(p);
        }
        chosen.push(i);
    }
    chosen.sort_unstable();
    chosen
}
