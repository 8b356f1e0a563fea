//! Checks of `gates`: at least one; metric names; each setting only on the methods that take
//! it, and in range; the fidelity thresholds (fractions in [0, 1], limits ≥ 0, `per_dtype`
//! keys that name a precision class).

use l1_engines::metrics::{metric, metric_names};

use super::at;
use crate::diag::{Diagnostic, did_you_mean};
use crate::model::{PRECISION_NAMES, Precision};
use crate::spec::{FidelityThresholds, Gate, GateMethod, LoadedSpec};

/// Every problem of the gates is pushed to `errs`.
pub(super) fn check(ls: &LoadedSpec, errs: &mut Vec<Diagnostic>) {
    let Some(gates) = &ls.doc.gates else {
        return;
    };
    if gates.is_empty() {
        errs.push(
            ls.diag_key("no gates listed", &at!["gates"])
                .field("gates")
                .expected(format!(
                    "at least one gate: {}",
                    GateMethod::NAMES.join(", ")
                )),
        );
    }
    for (i, g) in gates.iter().enumerate() {
        gate(ls, i, g, errs);
    }
}

/// Checks of gate `i`.
fn gate(ls: &LoadedSpec, i: usize, g: &Gate, errs: &mut Vec<Diagnostic>) {
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
    // `field` names the error; the first of `written` that the gate writes locates it.
    let bad_at = |field: &str, written: &[&str], why: &str| {
        let key = written
            .iter()
            .copied()
            .find(|f| ls.locations().key(&at!["gates", i, *f]).is_some())
            .unwrap_or(field);
        ls.diag_key(format!("gate `{}` {why}", g.method), &at!["gates", i, key])
            .field(format!("gates[{i}].{field}"))
    };
    let bad = |field: &str, why: &str| bad_at(field, &[field], why);
    for (field, set) in [("margin", g.margin.is_some()), ("k", g.k.is_some())] {
        if set && g.method != GateMethod::Topk5 {
            errs.push(bad(
                field,
                &format!("does not take `{field}` (only topk5 does)"),
            ));
        }
    }
    for (name, eps) in g.epsilons.iter().flatten() {
        let path = at!["gates", i, "epsilons", name];
        if metric(name).is_none() {
            let mut d = ls
                .diag_key(
                    format!("gate names unknown metric `{name}` in `epsilons`"),
                    &path,
                )
                .field(format!("gates[{i}].epsilons"))
                .choices(metric_names());
            d.help = did_you_mean(name, &metric_names());
            errs.push(d);
        }
        if !(0.0..1.0).contains(eps) {
            errs.push(
                ls.diag_key(
                    format!("epsilon {eps} for `{name}` is outside [0, 1)"),
                    &path,
                )
                .field(format!("gates[{i}].epsilons.{name}")),
            );
        }
    }
    // `pareto` against stored results takes `epsilon` (and `form`): how far a combo may fall
    // short of a stored frontier point and still cover it.
    let stored_pareto = g.method == GateMethod::Pareto && g.against.as_deref() == Some("stored");
    if (g.metrics.is_some() || g.epsilons.is_some() || (g.epsilon.is_some() && !stored_pareto))
        && g.method != GateMethod::Regression
    {
        errs.push(bad_at(
            "epsilon",
            &["epsilon", "metrics", "epsilons"],
            "does not take `epsilon` or `metrics` (only regression does)",
        ));
    }
    if g.latency_metric.is_some() && g.method != GateMethod::Pareto {
        errs.push(bad(
            "latency_metric",
            "does not take `latency_metric` (only pareto does)",
        ));
    }
    let margin_bad = g.margin.is_some_and(|x| !(0.0..1.0).contains(&x));
    if margin_bad || g.epsilon.is_some_and(|x| !(0.0..1.0).contains(&x)) {
        let written: &[&str] = if margin_bad {
            &["margin"]
        } else {
            &["epsilon"]
        };
        errs.push(
            bad_at("margin", written, "has a margin or epsilon outside [0, 1)")
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
        Some("stored") if matches!(g.method, GateMethod::Regression | GateMethod::Pareto) => {}
        Some("stored") => {
            errs.push(bad(
                "against",
                "does not take `against: stored` (only regression and pareto compare with stored results)",
            ));
        }
        Some(other) => {
            let mut d = ls
                .diag_key(
                    format!("`against: {other}` is not a comparison"),
                    &at!["gates", i, "against"],
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
    if g.form.is_some() && g.method != GateMethod::Regression && !stored_pareto {
        errs.push(
            bad(
                "form",
                "does not take `form` (only regression and pareto `against: stored` do)",
            )
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
    if let Err(d) = fidelity(ls, i, g) {
        errs.push(d);
    }
}

/// A gate's fidelity fields: only the `fidelity` gate takes them (`manual` too, to choose the
/// thresholds its listing reports against), fractions in [0, 1], limits ≥ 0, and `per_dtype`
/// keys that name a precision class. The first problem only.
fn fidelity(ls: &LoadedSpec, i: usize, g: &Gate) -> Result<(), Diagnostic> {
    if g.has_fidelity_fields() && !matches!(g.method, GateMethod::Fidelity | GateMethod::Manual) {
        let field = [
            ("min_exact_match", g.min_exact_match.is_some()),
            ("min_matched_prefix", g.min_matched_prefix.is_some()),
            ("max_logprob_delta", g.max_logprob_delta.is_some()),
            ("max_topk_divergence", g.max_topk_divergence.is_some()),
            ("per_dtype", g.per_dtype.is_some()),
            ("require_logprobs", g.require_logprobs.is_some()),
        ]
        .iter()
        .find(|x| x.1)
        .map_or("min_exact_match", |x| x.0);
        return Err(ls
            .diag_key(
                format!(
                    "gate `{}` does not take `{field}` (only fidelity does)",
                    g.method
                ),
                &at!["gates", i, field],
            )
            .field(format!("gates[{i}].{field}"))
            .expected("the fidelity thresholds in a `{ method: fidelity, ... }` gate"));
    }
    let mut all: Vec<(Option<&String>, &FidelityThresholds)> = Vec::new();
    let flat = g.fidelity_thresholds();
    for (class, t) in g.per_dtype.iter().flatten() {
        if Precision::from_name(class).is_none() {
            return Err(ls
                .diag_key(
                    format!("unknown precision class `{class}` in `per_dtype`"),
                    &at!["gates", i, "per_dtype", class],
                )
                .field(format!("gates[{i}].per_dtype"))
                .choices(PRECISION_NAMES));
        }
        all.push((Some(class), t));
    }
    all.push((None, &flat));
    for (class, t) in all {
        let checks = [
            ("min_exact_match", t.min_exact_match, true),
            ("min_matched_prefix", t.min_matched_prefix, true),
            ("max_logprob_delta", t.max_logprob_delta, false),
            ("max_topk_divergence", t.max_topk_divergence, false),
        ];
        for (name, v, fraction) in checks {
            let Some(v) = v else { continue };
            let ok = if fraction {
                (0.0..=1.0).contains(&v)
            } else {
                v >= 0.0 && v.is_finite() && (name != "max_topk_divergence" || v <= 1.0)
            };
            if !ok {
                let (path, field) = match class {
                    Some(c) => (
                        at!["gates", i, "per_dtype", c, name].to_vec(),
                        format!("gates[{i}].per_dtype.{c}.{name}"),
                    ),
                    None => (at!["gates", i, name].to_vec(), format!("gates[{i}].{name}")),
                };
                return Err(ls
                    .diag_key(format!("{name} {v} is out of range"), &path)
                    .field(field)
                    .expected(if fraction {
                        "a fraction in [0, 1], e.g. 0.75"
                    } else if name == "max_topk_divergence" {
                        "a Jensen-Shannon divergence in bits, in [0, 1], e.g. 0.01"
                    } else {
                        "a non-negative logprob difference in nats, e.g. 0.05"
                    }));
            }
        }
    }
    Ok(())
}
