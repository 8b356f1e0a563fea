//! Gates as a spec writes them: the methods (one list of names for serde, `L1_GATES` and
//! display), the regression forms, the fidelity thresholds and each gate's settings.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::diag::did_you_mean;

/// Gate methods. Their names (`topk5`, `pareto`, ...) are defined once, in [`GateMethod::name`]:
/// serde, [`FromStr`](std::str::FromStr) (the `L1_GATES` parser) and [`Display`](fmt::Display)
/// all use it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GateMethod {
    /// The top k combos by the metric each beat the baseline by at least the margin.
    Topk5,
    /// The winning combo lies on the throughput-versus-latency pareto frontier.
    Pareto,
    /// No metric of the winner regresses against the baseline by more than epsilon.
    Regression,
    /// No verdict: every combo is surfaced for review.
    Manual,
    /// The baseline (the deployed combo) measured now against its recorded calibration:
    /// 5–15 % is minor drift (a warning), over 15 % is significant (fails).
    Drift,
    /// Output fidelity: every combo's greedy answers to the probe set stay within thresholds
    /// of the baseline's (per precision class); a combo that fails cannot win another gate.
    Fidelity,
}

impl GateMethod {
    /// Every method, in the order they are listed to users.
    pub const ALL: [GateMethod; 6] = [
        Self::Topk5,
        Self::Pareto,
        Self::Regression,
        Self::Manual,
        Self::Drift,
        Self::Fidelity,
    ];

    /// Every method's name, in the order of [`GateMethod::ALL`].
    pub const NAMES: [&'static str; 6] = [
        Self::ALL[0].name(),
        Self::ALL[1].name(),
        Self::ALL[2].name(),
        Self::ALL[3].name(),
        Self::ALL[4].name(),
        Self::ALL[5].name(),
    ];

    /// The method's name as specs, `L1_GATES`, records and reports spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Topk5 => "topk5",
            Self::Pareto => "pareto",
            Self::Regression => "regression",
            Self::Manual => "manual",
            Self::Drift => "drift",
            Self::Fidelity => "fidelity",
        }
    }
}

impl fmt::Display for GateMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A gate method name that is none of [`GateMethod::NAMES`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown gate method `{name}`")]
pub struct UnknownGateMethod {
    pub name: String,
}

impl UnknownGateMethod {
    /// `did you mean ...?` for a near miss of a method name.
    pub fn help(&self) -> Option<String> {
        did_you_mean(&self.name, &GateMethod::NAMES)
    }
}

impl FromStr for GateMethod {
    type Err = UnknownGateMethod;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| UnknownGateMethod {
                name: s.to_string(),
            })
    }
}

impl Serialize for GateMethod {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for GateMethod {
    /// As a unit-variant enum (as serde derives it, so errors and their locations read the
    /// same), with the names of [`GateMethod::name`].
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{self, EnumAccess, VariantAccess};

        /// The variant name, checked as the derived identifier visitor checks it.
        struct Name;
        impl<'de> de::DeserializeSeed<'de> for Name {
            type Value = GateMethod;
            fn deserialize<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<GateMethod, D::Error> {
                d.deserialize_identifier(self)
            }
        }
        impl de::Visitor<'_> for Name {
            type Value = GateMethod;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("variant identifier")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<GateMethod, E> {
                v.parse()
                    .map_err(|_| E::unknown_variant(v, &GateMethod::NAMES))
            }
        }

        struct Method;
        impl<'de> de::Visitor<'de> for Method {
            type Value = GateMethod;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("enum GateMethod")
            }
            fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<GateMethod, A::Error> {
                let (method, variant) = data.variant_seed(Name)?;
                variant.unit_variant()?;
                Ok(method)
            }
        }
        d.deserialize_enum("GateMethod", &GateMethod::NAMES, Method)
    }
}

/// The two forms of the `regression` gate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RegressionForm {
    /// Fail only on evidence of a regression beyond ε (one-sided test per metric, Holm across
    /// the metrics): false failures are controlled, missed regressions are not. The default.
    #[default]
    FailOnRegression,
    /// Pass only on evidence that no metric regresses by ε or more (non-inferiority: the
    /// one-sided bound of every metric's change lies above −ε): a missed regression is what is
    /// controlled; too few reps fail.
    NonInferiority,
}

impl RegressionForm {
    /// The form's name in specs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            RegressionForm::FailOnRegression => "fail_on_regression",
            RegressionForm::NonInferiority => "non_inferiority",
        }
    }

    /// The one-sided p-value of this form's test of a direction-aware improvement ratio
    /// (`log_imp` = ln(improvement), > 0 is better) against the margin `1 − epsilon`, with
    /// standard error `se` of the log on `df` degrees of freedom: `fail_on_regression` tests
    /// H0 "no regression beyond ε" (a small p is evidence of a regression),
    /// `non_inferiority` tests H0 "a regression of ε or more" (a small p is evidence of none).
    /// NaN (no spread and no difference from the margin) reads as 1: no evidence either way.
    /// The `regression` gate's test and `l1 ab`'s.
    pub fn one_sided_p(self, log_imp: f64, epsilon: f64, se: f64, df: f64) -> f64 {
        let z = (log_imp - (1.0 - epsilon).ln()) / se;
        let t = match self {
            RegressionForm::FailOnRegression => -z,
            RegressionForm::NonInferiority => z,
        };
        // No spread: the evidence is certain one way (the t distribution is not asked at ±∞).
        let p = match t {
            f64::INFINITY => 0.0,
            f64::NEG_INFINITY => 1.0,
            t => crate::stats::upper_tail(t, df),
        };
        if p.is_nan() { 1.0 } else { p }
    }
}

/// Fidelity thresholds (all optional: unset ones keep the precision class's default).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FidelityThresholds {
    /// Least share of probes whose greedy tokens equal the reference's.
    #[serde(default)]
    pub min_exact_match: Option<f64>,
    /// Least mean matched prefix (first divergence over length).
    #[serde(default)]
    pub min_matched_prefix: Option<f64>,
    /// Largest mean |Δ logprob| of chosen tokens (nats) over identical contexts.
    #[serde(default)]
    pub max_logprob_delta: Option<f64>,
    /// Largest mean top-k Jensen–Shannon divergence (bits) over identical contexts.
    #[serde(default)]
    pub max_topk_divergence: Option<f64>,
}

/// One gate. Fields that do not apply to a method are rejected at validation.
#[derive(Clone, Debug, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub method: GateMethod,
    /// The metric ranked and compared (default `output_tokens_per_s`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub metric: Option<Spanned<String>>,
    /// Minimum relative improvement over the baseline (topk5; default 0.03).
    #[serde(default)]
    pub margin: Option<f64>,
    /// How many top combos must win (topk5; default 5).
    #[serde(default)]
    pub k: Option<u32>,
    /// Largest allowed relative regression (regression, and pareto against stored results:
    /// how far a combo may fall short of a stored frontier point and still cover it; default 0.05).
    #[serde(default)]
    pub epsilon: Option<f64>,
    /// Per-metric ε overriding `epsilon` (regression), e.g. `{ ttft_p95_ms: 0.10 }`.
    #[serde(default)]
    pub epsilons: Option<BTreeMap<String, f64>>,
    /// Metrics checked for regressions (regression; default throughput, TTFT p95, E2E p95).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub metrics: Option<Vec<Spanned<String>>>,
    /// The latency axis of the frontier (pareto; default `e2e_p95_ms`).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub latency_metric: Option<Spanned<String>>,
    /// Family-wise significance level (default 0.05).
    #[serde(default)]
    pub alpha: Option<f64>,
    /// Fidelity: thresholds for every precision class (override the class defaults).
    #[serde(default)]
    pub min_exact_match: Option<f64>,
    #[serde(default)]
    pub min_matched_prefix: Option<f64>,
    #[serde(default)]
    pub max_logprob_delta: Option<f64>,
    #[serde(default)]
    pub max_topk_divergence: Option<f64>,
    /// Fidelity: thresholds per precision class (`bf16`, `fp8`, `q4`), applied after the flat ones.
    #[serde(default)]
    pub per_dtype: Option<BTreeMap<String, FidelityThresholds>>,
    /// Fidelity: fail combos whose engine returns no logprobs instead of comparing tokens only.
    #[serde(default)]
    pub require_logprobs: Option<bool>,
    /// Regression and pareto: what is compared with: `baseline` (this run's baseline combo, the
    /// default) or `stored` (regression: the same combo's newest measurement in the results store
    /// from a run labelled `label`, with the same cache key: same engine version, model, hardware,
    /// workload and plan; pareto: the frontier of the newest such run, point by point against the
    /// combos measured now).
    #[serde(default)]
    pub against: Option<String>,
    /// Against stored results: the run label to compare with (default `main`).
    #[serde(default)]
    pub label: Option<String>,
    /// Regression, and pareto against stored results: `fail_on_regression` (default) or
    /// `non_inferiority` (see [`RegressionForm`]).
    #[serde(default)]
    pub form: Option<RegressionForm>,
    /// Largest minimum detectable effect (relative, 80 % power) at which the winner's comparison
    /// still counts as decided; above it the verdict is marked inconclusive with the reps or
    /// launches that would bring it down (default 0.10; for `regression` at least its ε).
    #[serde(default)]
    pub max_mde: Option<f64>,
}

impl Gate {
    /// A gate of `method` with every setting at its default.
    pub const fn new(method: GateMethod) -> Self {
        Self {
            method,
            metric: None,
            margin: None,
            k: None,
            epsilon: None,
            epsilons: None,
            metrics: None,
            latency_metric: None,
            alpha: None,
            min_exact_match: None,
            min_matched_prefix: None,
            max_logprob_delta: None,
            max_topk_divergence: None,
            per_dtype: None,
            require_logprobs: None,
            against: None,
            label: None,
            form: None,
            max_mde: None,
        }
    }

    /// The gate's flat fidelity thresholds.
    pub fn fidelity_thresholds(&self) -> FidelityThresholds {
        FidelityThresholds {
            min_exact_match: self.min_exact_match,
            min_matched_prefix: self.min_matched_prefix,
            max_logprob_delta: self.max_logprob_delta,
            max_topk_divergence: self.max_topk_divergence,
        }
    }

    /// Whether any fidelity-only field is set.
    pub fn has_fidelity_fields(&self) -> bool {
        self.fidelity_thresholds() != FidelityThresholds::default()
            || self.per_dtype.is_some()
            || self.require_logprobs.is_some()
    }
}

/// Which gates take a method-specific field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Takes {
    /// Gates of these methods.
    Methods(&'static [GateMethod]),
    /// Gates of these methods, and `pareto` gates with `against: stored`.
    MethodsOrStoredPareto(&'static [GateMethod]),
    /// Gates with `against: stored`.
    AgainstStored,
}

impl Takes {
    /// Whether a gate of `method`, comparing with `against`, takes the field.
    pub fn allows(self, method: GateMethod, against: Option<&str>) -> bool {
        let stored = against == Some("stored");
        match self {
            Self::Methods(ms) => ms.contains(&method),
            Self::MethodsOrStoredPareto(ms) => {
                ms.contains(&method) || (method == GateMethod::Pareto && stored)
            }
            Self::AgainstStored => stored,
        }
    }
}

/// Where each method-specific gate field applies: the rules `l1 validate` enforces
/// (`validate::gates`, with a message per field) and the JSON Schema states
/// ([`schema`](super::schema)); `harness/tests/schema.rs` checks that both agree with this table
/// on every method and field. Fields not listed (`method`, `metric`, `alpha`, `against`) apply
/// to every gate; `against: stored` only to [`AGAINST_STORED`].
pub const GATE_FIELDS: &[(&str, Takes)] = {
    use GateMethod::{Fidelity, Manual, Pareto, Regression, Topk5};
    const FIDELITY: Takes = Takes::Methods(&[Fidelity, Manual]);
    &[
        ("margin", Takes::Methods(&[Topk5])),
        ("k", Takes::Methods(&[Topk5])),
        ("latency_metric", Takes::Methods(&[Pareto])),
        ("metrics", Takes::Methods(&[Regression])),
        ("epsilons", Takes::Methods(&[Regression])),
        ("epsilon", Takes::MethodsOrStoredPareto(&[Regression])),
        ("form", Takes::MethodsOrStoredPareto(&[Regression])),
        ("label", Takes::AgainstStored),
        (
            "max_mde",
            Takes::Methods(&[Topk5, Pareto, Regression, Manual]),
        ),
        ("min_exact_match", FIDELITY),
        ("min_matched_prefix", FIDELITY),
        ("max_logprob_delta", FIDELITY),
        ("max_topk_divergence", FIDELITY),
        ("per_dtype", FIDELITY),
        ("require_logprobs", FIDELITY),
    ]
};

/// The values of `against`.
pub const AGAINST: [&str; 2] = ["baseline", "stored"];

/// The methods that compare with stored results (`against: stored`).
pub const AGAINST_STORED: &[GateMethod] = &[GateMethod::Regression, GateMethod::Pareto];

/// The gates of a sweep that lists none.
pub const DEFAULT_GATES: &[Gate] = &[Gate::new(GateMethod::Topk5)];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_method_names_are_one_list_for_serde_parsing_and_display() {
        for m in GateMethod::ALL {
            let name = m.to_string();
            assert_eq!(name.parse::<GateMethod>(), Ok(m));
            let parsed: GateMethod =
                serde_saphyr::from_str(&name).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(parsed, m);
            assert_eq!(serde_json::to_string(&m).ok(), Some(format!("\"{name}\"")));
        }
        assert_eq!(
            GateMethod::NAMES,
            [
                "topk5",
                "pareto",
                "regression",
                "manual",
                "drift",
                "fidelity"
            ]
        );
        let e = "paretto".parse::<GateMethod>().err();
        assert_eq!(
            e.as_ref().map(ToString::to_string).as_deref(),
            Some("unknown gate method `paretto`")
        );
        assert_eq!(
            e.and_then(|e| e.help()).as_deref(),
            Some("did you mean `pareto`?")
        );
        // serde reports an unknown name as derived enums do (the YAML layer turns the list into
        // choices and a suggestion).
        let err = serde_saphyr::from_str::<GateMethod>("Topk5")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains(
                "unknown variant `Topk5`, expected one of topk5, pareto, regression, manual, drift, fidelity"
            )),
            "{err:?}"
        );
    }
}
