//! Checks of `space` (dims, pins, knobs) and of the baseline combo: known dimensions and
//! values, values the spec's engines accept, no dimension both swept and pinned, knobs of the
//! spec's engines.

use std::collections::{BTreeMap, BTreeSet};

use super::at;
use crate::catalog::LoadedCatalog;
use crate::diag::{Diagnostic, did_you_mean};
use crate::selection::Selection;
use crate::spec::{Baseline, LoadedSpec};
use crate::yaml::Step;

/// What the space checks need: the spec, the kernel catalog and the spec's known engines.
pub(super) struct Checker<'a> {
    pub ls: &'a LoadedSpec,
    pub cat: &'a LoadedCatalog,
    /// The catalog's dimensions, in order.
    pub dims: Vec<String>,
    /// The spec's known engines as `(name, version)`.
    pub engines: &'a [(String, String)],
}

impl Checker<'_> {
    /// The values of a dimension the spec's (known) engines accept, in catalog order, and a
    /// note naming those engines; every catalog value when none of them exposes the dimension.
    fn accepted(&self, dim: &str, all: &[String]) -> (Vec<String>, String) {
        let cat = self.cat;
        let owners: Vec<&str> = self
            .engines
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
    }

    /// An unknown value of `dim`, written under `path`: the choices are the values the spec's
    /// engines accept (then `extra`), and `did you mean` tries those first, then any catalog
    /// value.
    fn unknown_value(
        &self,
        message: String,
        path: &[Step],
        value: &str,
        field: String,
        dim: &str,
        extra: &[&str],
    ) -> Diagnostic {
        let all = self
            .cat
            .catalog
            .dimensions
            .get(dim)
            .map_or(&[][..], |d| d.values.as_slice());
        let (ok_vals, note) = self.accepted(dim, all);
        let mut e = self
            .ls
            .diag_value(message, path, value)
            .field(field)
            .choices(
                ok_vals
                    .iter()
                    .map(String::as_str)
                    .chain(extra.iter().copied()),
            );
        if let Some(x) = e.expected.as_mut() {
            x.push_str(&note);
        }
        e.help = did_you_mean(value, &ok_vals)
            .or_else(|| did_you_mean(value, all))
            .or_else(|| yaml_boolean_help(value, &ok_vals));
        e
    }

    /// An unknown dimension written at `path`, with the catalog's dimensions as choices.
    fn unknown_dimension(
        &self,
        message: String,
        path: &[Step],
        dim: &str,
        field: String,
    ) -> Diagnostic {
        let mut e = self
            .ls
            .diag_key(message, path)
            .field(field)
            .choices(&self.dims);
        e.help = did_you_mean(dim, &self.dims);
        e
    }

    /// `dims` and `pins` as one selection per dimension.
    pub fn selections(&self, errs: &mut Vec<Diagnostic>) -> BTreeMap<String, Selection> {
        let (ls, cat) = (self.ls, self.cat);
        let space = &ls.doc.space;
        let mut selections: BTreeMap<String, Selection> = BTreeMap::new();
        for (dim, sel) in &space.dims {
            let path = at!["space", "dims", dim];
            let Some(d) = cat.catalog.dimensions.get(dim) else {
                errs.push(self.unknown_dimension(
                    format!("unknown dimension `{dim}`"),
                    &path,
                    dim,
                    format!("space.dims.{dim}"),
                ));
                continue;
            };
            if let Selection::Values(vals) = sel {
                for v in vals {
                    if !d.values.contains(v) {
                        errs.push(self.unknown_value(
                            format!("unknown value `{v}` of dimension `{dim}`"),
                            &path,
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
                        ls.diag_key(format!("dimension `{dim}` lists a value twice"), &path)
                            .field(format!("space.dims.{dim}")),
                    );
                }
            }
            selections.insert(dim.clone(), sel.clone());
        }
        for (dim, v) in &space.pins {
            let path = at!["space", "pins", dim];
            let Some(d) = cat.catalog.dimensions.get(dim) else {
                errs.push(self.unknown_dimension(
                    format!("unknown dimension `{dim}`"),
                    &path,
                    dim,
                    format!("space.pins.{dim}"),
                ));
                continue;
            };
            if !d.values.contains(&v.0) {
                errs.push(self.unknown_value(
                    format!("unknown value `{}` of dimension `{dim}`", v.0),
                    &path,
                    &v.0,
                    format!("space.pins.{dim}"),
                    dim,
                    &[],
                ));
            }
            if selections.contains_key(dim) {
                errs.push(
                    ls.diag_key(
                        format!("dimension `{dim}` is both swept in `dims` and pinned in `pins`"),
                        &path,
                    )
                    .field(format!("space.pins.{dim}"))
                    .expected("each dimension in at most one of `dims` and `pins`"),
                );
                continue;
            }
            selections.insert(dim.clone(), Selection::Values(vec![v.0.clone()]));
        }
        selections
    }

    /// Every selected dimension is exposed by one of the spec's engines.
    pub fn exposed(&self, selections: &BTreeMap<String, Selection>, errs: &mut Vec<Diagnostic>) {
        let (ls, cat) = (self.ls, self.cat);
        for dim in selections.keys() {
            if !cat.catalog.dimensions.contains_key(dim) {
                continue;
            }
            if !self
                .engines
                .iter()
                .any(|(e, _)| cat.engine_values(e, dim).is_some())
            {
                let in_dims = ls.doc.space.dims.contains_key(dim);
                let path = at!["space", if in_dims { "dims" } else { "pins" }, dim];
                errs.push(
                    ls.diag_key(
                        format!("no engine of this spec exposes dimension `{dim}`"),
                        &path,
                    )
                    .field(format!("space.dims.{dim}"))
                    .expected(format!(
                        "a dimension one of the spec's engines exposes ({})",
                        self.engines
                            .iter()
                            .map(|(e, _)| e.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
            }
        }
    }

    /// Knobs (engine-specific: checked only when every engine is known).
    pub fn knobs(&self, errs: &mut Vec<Diagnostic>) {
        let (ls, cat) = (self.ls, self.cat);
        for (knob, sel) in &ls.doc.space.knobs {
            let path = at!["space", "knobs", knob];
            let owners: Vec<&String> = self
                .engines
                .iter()
                .map(|(e, _)| e)
                .filter(|e| cat.catalog.engines[*e].knobs.contains_key(knob))
                .collect();
            if owners.is_empty() {
                let known: BTreeSet<&String> = self
                    .engines
                    .iter()
                    .flat_map(|(e, _)| cat.catalog.engines[e].knobs.keys())
                    .collect();
                let mut e = ls
                    .diag_key(
                        format!("unknown knob `{knob}` for this spec's engines"),
                        &path,
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
                                .diag_value(
                                    format!("knob `{knob}` of engine `{e}` has no value `{v}`"),
                                    &path,
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

    /// The baseline combo's dimensions, each a known value of a known dimension.
    pub fn baseline(&self, errs: &mut Vec<Diagnostic>) -> BTreeMap<String, String> {
        let mut baseline_dims: BTreeMap<String, String> = BTreeMap::new();
        let Baseline::Combo(map) = &self.ls.doc.baseline else {
            return baseline_dims;
        };
        for (dim, v) in map {
            let path = at!["baseline", "combo", dim];
            let Some(d) = self.cat.catalog.dimensions.get(dim) else {
                errs.push(self.unknown_dimension(
                    format!("unknown dimension `{dim}` in the baseline"),
                    &path,
                    dim,
                    format!("baseline.combo.{dim}"),
                ));
                continue;
            };
            if !d.values.contains(&v.0) {
                errs.push(self.unknown_value(
                    format!("unknown value `{}` of `{dim}` in the baseline", v.0),
                    &path,
                    &v.0,
                    format!("baseline.combo.{dim}"),
                    dim,
                    &[],
                ));
                continue;
            }
            baseline_dims.insert(dim.clone(), v.0.clone());
        }
        baseline_dims
    }
}

/// YAML reads a bare `off`, `on`, `no` or `yes` as a boolean, so `cuda_graph: off` arrives as
/// `false`: when the dimension accepts such a word, say to quote it.
fn yaml_boolean_help(value: &str, accepted: &[String]) -> Option<String> {
    let words: &[&str] = match value {
        "false" => &["off", "no", "n"],
        "true" => &["on", "yes", "y"],
        _ => return None,
    };
    let word = words.iter().find(|w| accepted.iter().any(|a| a == *w))?;
    Some(format!(
        "YAML reads a bare `{word}` as the boolean `{value}`: quote it, \"{word}\""
    ))
}
