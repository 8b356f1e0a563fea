//! The spec's kind and its own settings: a sweep's `mode` and `gates`; a tune spec's fields
//! (objective, constraints, budget, gate margin, re-measurement, acquisition, seed spec),
//! required and checked on `kind: tune`, refused on sweeps. Makes the typed [`SpecKind`] of
//! the document; the first problem only.

use l1_engines::metrics::{metric, metric_names};
use l1_tune::Budget;

use super::at;
use crate::diag::Diagnostic;
use crate::spec::{
    DEFAULT_GATES, KindName, LoadedSpec, Mode, SpecKind, Sweep, TUNE_FIELDS, Tune, TuneBudget,
};

/// The typed kind of the document, or its first problem.
pub(super) fn kind(ls: &LoadedSpec) -> Result<SpecKind, Diagnostic> {
    let spec = &ls.doc;
    if spec.kind == KindName::Sweep {
        // In the order of `TUNE_FIELDS`.
        let set = [
            spec.objective.is_some(),
            !spec.constraints.is_empty(),
            spec.budget.is_some(),
            spec.seed_from.is_some(),
            spec.gate.is_some(),
            spec.remeasure.is_some(),
            spec.acquisition.is_some(),
        ];
        for (field, set) in TUNE_FIELDS.into_iter().zip(set) {
            if set {
                return Err(ls
                    .diag_key(
                        format!("`{field}` is a tune spec field; this spec is `kind: sweep`"),
                        &at![field],
                    )
                    .field(field)
                    .expected("`kind: tune`, or remove the field (sweeps use `gates`)"));
            }
        }
        return Ok(SpecKind::Sweep(Sweep {
            mode: spec.space.mode.unwrap_or_default(),
            gates: spec.gates.clone().unwrap_or_else(|| DEFAULT_GATES.to_vec()),
        }));
    }
    let kind = || at!["kind"];
    if spec.gates.is_some() {
        return Err(ls
            .diag_key("tune specs take `gate: { margin }`, not `gates`", &at!["gates"])
            .field("gates")
            .expected("`gate: { margin: 0.03 }` (the recommended point must beat the baseline by the margin)"));
    }
    if spec.space.mode == Some(Mode::Quick) {
        return Err(ls
            .diag_value(
                "tune specs search every legal combo; `mode: quick` does not apply",
                &at!["space", "mode"],
                Mode::Quick.name(),
            )
            .field("space.mode")
            .choices([Mode::Exhaustive.name()]));
    }
    let Some(o) = &spec.objective else {
        return Err(ls
            .diag_value("a tune spec needs an objective", &kind(), "tune")
            .field("objective")
            .expected("`objective: { metric: output_tokens_per_s, direction: maximize }`"));
    };
    if metric(&o.metric.value).is_none() {
        return Err(ls
            .diag_span(
                format!("objective names unknown metric `{}`", o.metric.value),
                &o.metric,
            )
            .field("objective.metric")
            .choices(metric_names()));
    }
    for (i, c) in spec.constraints.iter().enumerate() {
        let field = format!("constraints[{i}]");
        if metric(&c.metric.value).is_none() {
            return Err(ls
                .diag_span(
                    format!("constraint names unknown metric `{}`", c.metric.value),
                    &c.metric,
                )
                .field(format!("{field}.metric"))
                .choices(metric_names()));
        }
        let threshold = match (c.at_most, c.at_least) {
            (Some(x), None) | (None, Some(x)) => x,
            _ => {
                return Err(ls
                    .diag_span(
                        format!(
                            "constraint on `{}` needs exactly one of `at_most` and `at_least`",
                            c.metric.value
                        ),
                        &c.metric,
                    )
                    .field(field)
                    .expected("`{ metric: ttft_p95_ms, at_most: 200 }`"));
            }
        };
        // Every metric is non-negative: such a constraint no legal point can meet.
        let impossible = !threshold.is_finite() || c.at_most.is_some_and(|x| x < 0.0);
        if impossible {
            return Err(ls
                .diag_span(
                    format!(
                        "no legal point can meet the constraint on `{}` (threshold {threshold}): metrics are finite and non-negative",
                        c.metric.value
                    ),
                    &c.metric,
                )
                .field(field)
                .expected("a finite threshold a measurement can meet"));
        }
    }
    let b: TuneBudget = spec.budget.clone().unwrap_or_default();
    let budget = Budget {
        wall_clock_minutes: b.minutes,
        gpu_hours: b.gpu_hours,
        max_trials: b.max_trials,
    };
    if let Err(e) = budget.validate() {
        let d = if spec.budget.is_some() {
            ls.diag_key(format!("{e}"), &at!["budget"])
        } else {
            ls.diag_value(format!("a tune spec needs a budget ({e})"), &kind(), "tune")
        };
        return Err(d
            .field("budget")
            .expected("at least one of `minutes`, `gpu_hours`, `max_trials`, each positive, e.g. `budget: { max_trials: 25 }`"));
    }
    if let Some(m) = spec.gate.as_ref().and_then(|g| g.margin)
        && !(0.0..1.0).contains(&m)
    {
        return Err(ls
            .diag_key(
                format!("gate margin {m} is outside [0, 1)"),
                &at!["gate", "margin"],
            )
            .field("gate.margin")
            .expected("a relative improvement, e.g. 0.03 for 3 %"));
    }
    if let Some(share) = spec.remeasure.as_ref().and_then(|r| r.share)
        && !(share.is_finite() && (0.0..=0.5).contains(&share))
    {
        return Err(ls
            .diag_key(
                format!("remeasure share {share} is outside [0, 0.5]"),
                &at!["remeasure", "share"],
            )
            .field("remeasure.share")
            .expected("the share of the budget kept for re-measuring the top candidates, e.g. 0.1 (0: none)"));
    }
    if spec.acquisition == Some(l1_tune::Acquisition::KnowledgeGradient) && spec.remeasure.is_some()
    {
        return Err(ls
            .diag_key(
                "`remeasure` does not apply with `acquisition: knowledge_gradient` (it replicates whenever a replicate pays, with no reserved final phase)",
                &at!["remeasure"],
            )
            .field("remeasure")
            .expected("remove `remeasure`, or use `acquisition: expected_improvement`"));
    }
    if let Some(s) = &spec.seed_from
        && (s.value.is_empty()
            || !s
                .value
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
    {
        return Err(ls
            .diag_span(format!("seed_from `{}` is not a spec name", s.value), s)
            .field("seed_from")
            .expected("the name of a sweep spec whose results are in the store"));
    }
    Ok(SpecKind::Tune(Box::new(Tune {
        objective: o.clone(),
        constraints: spec.constraints.clone(),
        budget: b,
        seed_from: spec.seed_from.clone(),
        gate: spec.gate.clone().unwrap_or_default(),
        remeasure: spec.remeasure.clone(),
        acquisition: spec.acquisition.unwrap_or_default(),
    })))
}
