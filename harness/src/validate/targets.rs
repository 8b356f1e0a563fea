//! Checks of `targets`: each engine (`engine@version`, a known engine, a supported version),
//! model, hardware profile and workload names one the catalogs know, and no list is empty.

use serde_saphyr::Spanned;

use super::at;
use crate::diag::{Diagnostic, did_you_mean, nearest};
use crate::profiles::Catalogs;
use crate::spec::{LoadedSpec, split_engine};

/// The spec's engines as `(name, version)`, and whether every one is known.
pub(super) fn engines(
    ls: &LoadedSpec,
    cats: &Catalogs,
    errs: &mut Vec<Diagnostic>,
) -> (Vec<(String, String)>, bool) {
    let cat = &cats.kernels;
    let spec = &ls.doc;
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
            ls.diag_key("no engine listed", &at!["targets", "engines"])
                .field("targets.engines")
                .expected("at least one `engine@version`"),
        );
    }
    (engines, engines_ok)
}

/// A list of names in the spec, the names the catalogs know, what they are, and their key.
type NameList<'a> = (&'a [Spanned<String>], Vec<&'a String>, &'a str, &'a str);

/// Models, hardware profiles and workloads: each known, none of the lists empty.
pub(super) fn names(ls: &LoadedSpec, cats: &Catalogs, errs: &mut Vec<Diagnostic>) {
    let t = &ls.doc.targets;
    let lists: [NameList; 3] = [
        (&t.models, cats.models.keys().collect(), "model", "models"),
        (
            &t.hardware,
            cats.hardware.keys().collect(),
            "hardware profile",
            "hardware",
        ),
        (
            &t.workloads,
            cats.workloads.keys().collect(),
            "workload",
            "workloads",
        ),
    ];
    for (list, known, what, key) in lists {
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
                ls.diag_key(format!("no {what} listed"), &at!["targets", key])
                    .field(format!("targets.{key}"))
                    .expected(format!("at least one {what}")),
            );
        }
    }
}
