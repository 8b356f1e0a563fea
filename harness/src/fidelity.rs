//! Output fidelity: does a combo still say what the baseline says?
//!
//! Every measurement ends with the workload's probe set answered greedily (after the reps; see
//! [`l1_engines::probe`]); the baseline's answers are the reference. A combo's answers are
//! compared position by position:
//!
//! - **exact match**: the share of probes whose generated token sequence equals the reference's;
//! - **first divergence**: per probe the index of the first differing token (its length when
//!   none differs), summarized as the mean position, the mean *matched prefix* (position over
//!   length) and the sorted positions of the probes that diverged;
//! - **mean |Δ logprob|** of the chosen tokens, over the positions whose context is still
//!   identical (every position up to and including the first divergence; at the divergence the
//!   candidate's logprob of the *reference's* token, when its top-k holds it);
//! - **top-k divergence**: the Jensen–Shannon divergence (base 2, in [0, 1]) between the two
//!   top-k distributions, over the same positions. Each side's distribution is its top-k
//!   probabilities over the union of both lists plus one bucket for the rest of its mass; a token
//!   missing from one side's list falls into that side's rest bucket. Jensen–Shannon rather than
//!   KL because KL is infinite or depends on an invented floor when a token is in one list and
//!   not the other; JS is symmetric, bounded and zero only when the bucketed distributions agree
//!   (bucketing can only lower it, so it never overstates a difference).
//!
//! Measures after the first divergence would compare different contexts, so none is taken.
//!
//! The `fidelity` gate checks each measure against thresholds chosen by the combo's numeric
//! precision class (the lowest of its activation and KV-cache dtypes): [`Precision`].

use std::collections::BTreeMap;

use l1_engines::Combo;
use l1_engines::probe::{LogprobSupport, ProbeFailure, ProbeRun, Step};
use serde::{Deserialize, Serialize};

pub use crate::model::fidelity::{ComboFidelity, Limits, Measures, PRECISION_NAMES, Precision};
use crate::model::{GateVerdict, MeasurementRecord, Row};
use crate::spec::{FidelityThresholds, Gate};
use l1_reports::model::{FidelityCell, FidelityLimits};

impl Limits {
    fn apply(mut self, t: &FidelityThresholds) -> Self {
        if let Some(x) = t.min_exact_match {
            self.min_exact_match = x;
        }
        if let Some(x) = t.min_matched_prefix {
            self.min_matched_prefix = x;
        }
        if let Some(x) = t.max_logprob_delta {
            self.max_logprob_delta = x;
        }
        if let Some(x) = t.max_topk_divergence {
            self.max_topk_divergence = x;
        }
        self
    }

    /// The class defaults, then the gate's flat overrides, then its `per_dtype` entry.
    pub fn for_combo(gate: Option<&Gate>, class: Precision) -> Self {
        let mut l = class.defaults();
        if let Some(g) = gate {
            l = l.apply(&g.fidelity_thresholds());
            if let Some(t) = g.per_dtype.as_ref().and_then(|m| m.get(class.name())) {
                l = l.apply(t);
            }
        }
        l
    }
}

/// Support ordering: the weaker of two.
fn weaker(a: LogprobSupport, b: LogprobSupport) -> LogprobSupport {
    let rank = |s| match s {
        LogprobSupport::None => 0,
        LogprobSupport::Chosen => 1,
        LogprobSupport::TopK => 2,
    };
    if rank(a) <= rank(b) { a } else { b }
}

fn failure_text(kind: &Option<ProbeFailure>, error: &Option<String>) -> String {
    let what = match kind {
        Some(ProbeFailure::ContextExceeded) => "the probe does not fit the engine's context",
        Some(ProbeFailure::TokenCount) => "the engine returned an inconsistent token count",
        Some(ProbeFailure::Engine) | None => "the engine failed to answer",
    };
    match error {
        Some(e) => format!("{what}: {e}"),
        None => what.to_string(),
    }
}

/// Jensen–Shannon divergence (bits) of two top-k lists, bucketed as the module docs say.
pub fn topk_js(a: &[(String, f64)], b: &[(String, f64)]) -> f64 {
    let mut keys: Vec<&String> = a.iter().chain(b).map(|(t, _)| t).collect();
    keys.sort();
    keys.dedup();
    let dist = |side: &[(String, f64)]| -> Vec<f64> {
        let mut p: Vec<f64> = keys
            .iter()
            .map(|k| {
                side.iter()
                    .find(|(t, _)| t == *k)
                    .map_or(0.0, |(_, lp)| lp.exp())
            })
            .collect();
        let rest = (1.0 - p.iter().sum::<f64>()).max(0.0);
        p.push(rest);
        let total: f64 = p.iter().sum();
        if total > 0.0 {
            p.iter_mut().for_each(|x| *x /= total);
        }
        p
    };
    let (p, q) = (dist(a), dist(b));
    let kl = |x: &[f64], m: &[f64]| -> f64 {
        x.iter()
            .zip(m)
            .filter(|(xi, _)| **xi > 0.0)
            .map(|(xi, mi)| xi * (xi / mi).log2())
            .sum()
    };
    let m: Vec<f64> = p.iter().zip(&q).map(|(x, y)| 0.5 * (x + y)).collect();
    (0.5 * kl(&p, &m) + 0.5 * kl(&q, &m)).clamp(0.0, 1.0)
}

/// Compare a combo's probe answers with the reference's.
pub fn compare(reference: &ProbeRun, candidate: &ProbeRun) -> Measures {
    let mut m = Measures::default();
    if let Some(why) = &reference.unsupported {
        m.unjudged = Some(format!("the baseline has no reference answers: {why}"));
        return m;
    }
    if let Some(why) = &candidate.unsupported {
        m.unjudged = Some(format!("the combo answered no probes: {why}"));
        return m;
    }
    if reference.set != candidate.set {
        m.unjudged = Some(format!(
            "the combo answered probe set {} but the reference is for {} (probe prompts, lengths or k changed between the measurements)",
            candidate.set, reference.set
        ));
        return m;
    }
    m.logprobs = Some(weaker(reference.logprobs, candidate.logprobs));
    let mut exact = 0usize;
    let mut first = Vec::new();
    let mut prefix = Vec::new();
    let mut deltas = Vec::new();
    let mut js = Vec::new();
    for r in &reference.answers {
        let Some(c) = candidate.answers.iter().find(|c| c.index == r.index) else {
            m.failed_probes
                .push(format!("probe {}: the combo returned no answer", r.index));
            continue;
        };
        if r.failure.is_some() {
            m.failed_probes.push(format!(
                "probe {}: reference: {}",
                r.index,
                failure_text(&r.failure, &r.error)
            ));
            continue;
        }
        if c.failure.is_some() {
            m.failed_probes.push(format!(
                "probe {}: {}",
                r.index,
                failure_text(&c.failure, &c.error)
            ));
            continue;
        }
        m.probes += 1;
        let (rs, cs): (&[Step], &[Step]) = (&r.steps, &c.steps);
        let d = rs
            .iter()
            .zip(cs)
            .position(|(a, b)| a.token != b.token)
            .unwrap_or(rs.len().min(cs.len()));
        if rs.len() != cs.len() {
            m.length_mismatches.push(format!(
                "probe {}: {} tokens against the reference's {} (finish: {} vs {})",
                r.index,
                cs.len(),
                rs.len(),
                c.finish_reason.as_deref().unwrap_or("?"),
                r.finish_reason.as_deref().unwrap_or("?")
            ));
        }
        let same = d == rs.len() && rs.len() == cs.len();
        if same {
            exact += 1;
        } else {
            m.divergence_positions.push(d as u32);
        }
        first.push(d as f64);
        prefix.push(if rs.is_empty() {
            1.0
        } else {
            d as f64 / rs.len() as f64
        });
        // Identical-context positions: 0..d (same tokens) and d itself (same context).
        for k in 0..=d.min(rs.len().saturating_sub(1)) {
            let (Some(a), Some(b)) = (rs.get(k), cs.get(k)) else {
                break;
            };
            let cand_lp = if a.token == b.token {
                b.logprob
            } else {
                b.top.iter().find(|(t, _)| *t == a.token).map(|x| x.1)
            };
            if let (Some(x), Some(y)) = (a.logprob, cand_lp) {
                deltas.push((x - y).abs());
            }
            if !a.top.is_empty() && !b.top.is_empty() {
                js.push(topk_js(&a.top, &b.top));
            }
        }
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    if m.probes > 0 {
        m.exact_match = Some(exact as f64 / m.probes as f64);
    }
    m.mean_first_divergence = mean(&first);
    m.matched_prefix = mean(&prefix);
    m.divergence_positions.sort_unstable();
    if m.logprobs != Some(LogprobSupport::None) {
        m.mean_abs_logprob_delta = mean(&deltas);
    }
    if m.logprobs == Some(LogprobSupport::TopK) {
        m.topk_js_divergence = mean(&js);
    }
    if m.probes == 0 && m.unjudged.is_none() {
        m.unjudged = Some("no probe could be compared".into());
    }
    m
}

/// Judge one combo's measures against its limits. `require_logprobs` turns missing logprobs into
/// a failure instead of a note.
pub fn judge(label: &str, combo: &Combo, measures: Measures, gate: Option<&Gate>) -> ComboFidelity {
    let precision = Precision::of(combo);
    let limits = Limits::for_combo(gate, precision);
    let require = gate.and_then(|g| g.require_logprobs).unwrap_or(false);
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    if let Some(why) = &measures.unjudged {
        failures.push(format!("not judged: {why}"));
    }
    for f in &measures.failed_probes {
        failures.push(f.clone());
    }
    if !measures.length_mismatches.is_empty() {
        notes.push(format!(
            "different token counts: {}",
            measures.length_mismatches.join("; ")
        ));
    }
    let mut check_min = |name: &str, v: Option<f64>, t: f64| {
        if let Some(v) = v
            && v < t
        {
            failures.push(format!("{name} {v:.3} < {t:.3}"));
        }
    };
    check_min("exact_match", measures.exact_match, limits.min_exact_match);
    check_min(
        "matched_prefix",
        measures.matched_prefix,
        limits.min_matched_prefix,
    );
    let mut check_max = |name: &str, v: Option<f64>, t: f64, missing: &str| match v {
        Some(v) if v > t => failures.push(format!("{name} {v:.4} > {t:.4}")),
        Some(_) => {}
        None if measures.unjudged.is_none() && measures.probes > 0 => {
            if require {
                failures.push(format!("{name} not measured: {missing} (require_logprobs)"));
            } else {
                notes.push(format!(
                    "{name} not measured: {missing}; compared by tokens only"
                ));
            }
        }
        None => {}
    };
    let support = measures.logprobs.unwrap_or(LogprobSupport::None);
    check_max(
        "mean_abs_logprob_delta",
        measures.mean_abs_logprob_delta,
        limits.max_logprob_delta,
        if support == LogprobSupport::None {
            "the engine returned no logprobs"
        } else {
            "no position with both logprobs"
        },
    );
    check_max(
        "topk_js_divergence",
        measures.topk_js_divergence,
        limits.max_topk_divergence,
        if support == LogprobSupport::TopK {
            "no position with both top-k lists"
        } else {
            "the engine returned no top-k alternatives"
        },
    );
    ComboFidelity {
        combo: label.to_string(),
        precision,
        limits,
        passed: failures.is_empty(),
        measures,
        failures,
        notes,
    }
}

/// A target's fidelity: every combo against the baseline's reference answers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Combo label → its verdict.
    pub combos: BTreeMap<String, ComboFidelity>,
    /// Why the reference is unusable, if it is (then every combo is unjudged).
    pub reference_problem: Option<String>,
    /// Where the reference came from (probe set, protocol).
    pub reference: String,
}

impl Report {
    /// Build from the baseline's probe run and each combo's `(label, combo, run)`.
    pub fn build(
        reference: Option<&ProbeRun>,
        combos: &[(String, Combo, Option<ProbeRun>)],
        gate: Option<&Gate>,
    ) -> Self {
        let mut out = Self::default();
        let missing = |what: &str| ProbeRun {
            set: String::new(),
            source: String::new(),
            max_tokens: 0,
            top_k: 0,
            protocol: String::new(),
            logprobs: LogprobSupport::None,
            unsupported: Some(what.to_string()),
            answers: Vec::new(),
            duration_s: 0.0,
        };
        let reference = match reference {
            Some(r) => {
                out.reference = format!(
                    "{} probes from {} ({} tokens, top-{}; {}; logprobs: {:?})",
                    r.answers.len(),
                    r.source,
                    r.max_tokens,
                    r.top_k,
                    r.protocol,
                    r.logprobs
                )
                .to_lowercase();
                if let Some(why) = &r.unsupported {
                    out.reference_problem = Some(why.clone());
                }
                r.clone()
            }
            None => {
                let why = "the baseline's measurement record carries no probe answers (measured before fidelity probes existed, or the measurement failed)";
                out.reference_problem = Some(why.into());
                missing(why)
            }
        };
        for (label, combo, run) in combos {
            let run = run.clone().unwrap_or_else(|| {
                missing("the combo's measurement record carries no probe answers")
            });
            let measures = compare(&reference, &run);
            out.combos
                .insert(label.clone(), judge(label, combo, measures, gate));
        }
        out
    }

    /// Labels of combos that fail fidelity.
    pub fn failing(&self) -> Vec<&str> {
        self.combos
            .values()
            .filter(|c| !c.passed)
            .map(|c| c.combo.as_str())
            .collect()
    }
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "n/a".into(), |x| format!("{x:.digits$}"))
}

/// One line of numbers for a combo (gate messages and the manual listing).
pub fn describe(c: &ComboFidelity) -> String {
    let m = &c.measures;
    let positions = if m.divergence_positions.is_empty() {
        "none".to_string()
    } else {
        m.divergence_positions
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        "  {}: {} [{}]: exact_match {} over {} probes, first divergence mean {} tokens (matched prefix {}; diverged at {}), mean |Δ logprob| {}, top-k JS {} bits",
        c.combo,
        if c.passed { "ok" } else { "FAILS" },
        c.precision.name(),
        opt(m.exact_match, 3),
        m.probes,
        opt(m.mean_first_divergence, 2),
        opt(m.matched_prefix, 3),
        positions,
        opt(m.mean_abs_logprob_delta, 4),
        opt(m.topk_js_divergence, 4),
    )
}

/// The `fidelity` gate's verdict from a report.
pub fn verdict(report: &Report) -> GateVerdict {
    let failing: Vec<&ComboFidelity> = report.combos.values().filter(|c| !c.passed).collect();
    let passed = failing.is_empty() && !report.combos.is_empty();
    let mut message = if report.combos.is_empty() {
        "fidelity failed: no combo was measured, so nothing could be compared".to_string()
    } else if passed {
        format!(
            "fidelity passed: every combo's greedy answers stay within its thresholds against the baseline's reference ({})",
            report.reference
        )
    } else {
        format!(
            "fidelity failed: {} of {} combos change the model's answers beyond their thresholds and cannot be the winner (reference: {}):\n{}",
            failing.len(),
            report.combos.len(),
            report.reference,
            failing
                .iter()
                .map(|c| format!("  {}: {}", c.combo, c.failures.join("; ")))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    if let Some(p) = &report.reference_problem {
        message.push_str(&format!("\n  the reference is unusable: {p}"));
    }
    message.push_str("\n  per combo:");
    for c in report.combos.values() {
        message.push('\n');
        message.push_str(&describe(c));
        for n in &c.notes {
            message.push_str(&format!("\n    note: {n}"));
        }
    }
    message.push_str(&format!(
        "\n  thresholds by precision class (combo's lowest activation/KV dtype): {}",
        report
            .combos
            .values()
            .map(|c| (c.precision, c.limits))
            .collect::<BTreeMap<_, _>>()
            .iter()
            .map(|(p, l)| format!(
                "{}: exact_match ≥ {}, matched_prefix ≥ {}, |Δ logprob| ≤ {}, top-k JS ≤ {}",
                p.name(),
                l.min_exact_match,
                l.min_matched_prefix,
                l.max_logprob_delta,
                l.max_topk_divergence
            ))
            .collect::<Vec<_>>()
            .join("; ")
    ));
    GateVerdict {
        method: crate::spec::GateMethod::Fidelity.to_string(),
        passed,
        message,
        winner: None,
        p_best: None,
        rows: report.combos.values().map(Row::fidelity).collect(),
        established_winner: None,
        inconclusive: None,
        checks: Vec::new(),
    }
}

/// A gate row's fidelity verdict as the report shows it; `gate` is the verdict's method.
pub fn fidelity_cell(c: &ComboFidelity, gate: &str) -> FidelityCell {
    use l1_engines::probe::LogprobSupport;
    let m = &c.measures;
    let finite = |x: Option<f64>| x.filter(|v| v.is_finite());
    FidelityCell {
        passed: c.passed,
        gate: gate.to_string(),
        enforced: gate == "fidelity",
        precision: c.precision.name().to_string(),
        probes: m.probes,
        exact_match: finite(m.exact_match),
        matched_prefix: finite(m.matched_prefix),
        mean_first_divergence: finite(m.mean_first_divergence),
        divergence_positions: m.divergence_positions.clone(),
        mean_abs_logprob_delta: finite(m.mean_abs_logprob_delta),
        topk_js_divergence: finite(m.topk_js_divergence),
        logprobs: m.logprobs.map(|l| {
            match l {
                LogprobSupport::TopK => "top_k",
                LogprobSupport::Chosen => "chosen",
                LogprobSupport::None => "none",
            }
            .to_string()
        }),
        limits: FidelityLimits {
            min_exact_match: c.limits.min_exact_match,
            min_matched_prefix: c.limits.min_matched_prefix,
            max_logprob_delta: c.limits.max_logprob_delta,
            max_topk_divergence: c.limits.max_topk_divergence,
        },
        failures: c.failures.clone(),
        notes: c.notes.clone(),
        unjudged: m.unjudged.clone(),
        failed_probes: m.failed_probes.clone(),
        length_mismatches: m.length_mismatches.clone(),
    }
}

/// Per combo, its fidelity from a gate trial's verdicts: the `fidelity` gate's rows first, then
/// `manual`'s, then any other gate's rows that carry it.
pub fn fidelity_cells(gates: &[GateVerdict]) -> BTreeMap<String, FidelityCell> {
    let rank = |m: &str| match m {
        "fidelity" => 0,
        "manual" => 1,
        _ => 2,
    };
    let mut ordered: Vec<&GateVerdict> = gates.iter().collect();
    ordered.sort_by_key(|v| rank(&v.method));
    let mut out = BTreeMap::new();
    for v in ordered {
        for row in &v.rows {
            if let Some(f) = &row.fidelity {
                out.entry(row.combo.clone())
                    .or_insert_with(|| fidelity_cell(f, &v.method));
            }
        }
    }
    out
}

/// The probe set of a workload: its own (`probes:` in `workloads.yaml`), else the bundled default.
pub fn probe_set(
    w: &l1_engines::Workload,
) -> Result<l1_engines::probe::ProbeSet, l1_engines::probe::ProbeSetError> {
    w.probes.clone().unwrap_or_default().resolve()
}

/// Answer a target's probes on a started launch, after its reps. A probe set that cannot be
/// built is recorded as an unsupported run carrying the reason.
pub fn run_probes(
    launch: &mut dyn l1_engines::launch::Launch,
    w: &l1_engines::Workload,
) -> ProbeRun {
    match probe_set(w) {
        Ok(set) => launch.probe(&set),
        Err(e) => unresolved(&e),
    }
}

/// The sim's answers for `combo` (its deterministic divergence model).
pub fn sim_probes(w: &l1_engines::Workload, combo: &Combo) -> ProbeRun {
    match probe_set(w) {
        Ok(set) => l1_engines::sim::fidelity::answer(&set, combo),
        Err(e) => unresolved(&e),
    }
}

fn unresolved(e: &l1_engines::probe::ProbeSetError) -> ProbeRun {
    ProbeRun {
        set: String::new(),
        source: String::new(),
        max_tokens: 0,
        top_k: 0,
        protocol: "none".into(),
        logprobs: LogprobSupport::None,
        unsupported: Some(format!("no probe set: {e}")),
        answers: Vec::new(),
        duration_s: 0.0,
    }
}

/// Build a target's fidelity report when its gates need one (`fidelity`, or `manual` to list
/// the numbers): the baseline's answers against each combo's.
pub fn report_for(
    gates: &[Gate],
    baseline: &MeasurementRecord,
    combos: &[(String, &MeasurementRecord)],
) -> Option<Report> {
    use crate::spec::GateMethod;
    let gate = gates.iter().find(|g| g.method == GateMethod::Fidelity);
    let manual = gates.iter().find(|g| g.method == GateMethod::Manual);
    if gate.is_none() && manual.is_none() {
        return None;
    }
    let list: Vec<(String, Combo, Option<ProbeRun>)> = combos
        .iter()
        .map(|(label, r)| (label.clone(), r.combo.clone(), r.probes.clone()))
        .collect();
    Some(Report::build(
        baseline.probes.as_ref(),
        &list,
        gate.or(manual),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use l1_engines::probe::{ProbeAnswer, ProbeSpec};
    use l1_engines::sim::fidelity::answer;

    fn combo(pairs: &[(&str, &str)]) -> Combo {
        let mut c = Combo::default();
        for (d, v) in pairs {
            c.dims.insert((*d).into(), (*v).into());
        }
        c
    }

    fn set() -> l1_engines::probe::ProbeSet {
        ProbeSpec {
            output_tokens: 32,
            ..ProbeSpec::default()
        }
        .resolve()
        .unwrap()
    }

    #[test]
    fn precision_classes_follow_the_lowest_dtype() {
        assert_eq!(Precision::of(&combo(&[])), Precision::Bf16);
        assert_eq!(
            Precision::of(&combo(&[
                ("activation_dtype", "bf16"),
                ("kv_cache_dtype", "q8_0")
            ])),
            Precision::Fp8
        );
        assert_eq!(
            Precision::of(&combo(&[
                ("activation_dtype", "fp8_e4m3"),
                ("kv_cache_dtype", "q4_0")
            ])),
            Precision::Q4
        );
        assert!(
            Precision::Fp8.defaults().min_exact_match < Precision::Bf16.defaults().min_exact_match
        );
    }

    #[test]
    fn identical_answers_match_exactly() {
        let s = set();
        let c = combo(&[("kv_cache_dtype", "fp16")]);
        let m = compare(&answer(&s, &c), &answer(&s, &c));
        assert_eq!(m.exact_match, Some(1.0));
        assert_eq!(m.matched_prefix, Some(1.0));
        assert_eq!(m.mean_abs_logprob_delta, Some(0.0));
        assert_eq!(m.topk_js_divergence, Some(0.0));
        assert!(m.divergence_positions.is_empty());
        assert!(judge("x", &c, m, None).passed);
    }

    #[test]
    fn sim_q4_fails_and_diverges_more_than_q8() {
        let s = set();
        let base = answer(&s, &combo(&[("kv_cache_dtype", "fp16")]));
        let q8c = combo(&[("kv_cache_dtype", "q8_0")]);
        let q4c = combo(&[("kv_cache_dtype", "q4_0")]);
        let q8 = judge("q8", &q8c, compare(&base, &answer(&s, &q8c)), None);
        let q4 = judge("q4", &q4c, compare(&base, &answer(&s, &q4c)), None);
        eprintln!("{}\n{}", describe(&q8), describe(&q4));
        assert!(q8.passed, "{:?}", q8.failures);
        assert!(!q4.passed);
        assert!(
            q4.measures.exact_match < q8.measures.exact_match
                && q4.measures.mean_abs_logprob_delta > q8.measures.mean_abs_logprob_delta
        );
        assert!(
            q4.failures.iter().any(|f| f.starts_with("exact_match")),
            "{:?}",
            q4.failures
        );
    }

    #[test]
    fn js_is_zero_for_equal_lists_and_bounded() {
        let a = vec![("a".to_string(), -0.1), ("b".to_string(), -2.5)];
        assert!(topk_js(&a, &a).abs() < 1e-12);
        let b = vec![("c".to_string(), -0.01)];
        let d = topk_js(&a, &b);
        assert!(d > 0.5 && d <= 1.0, "{d}");
    }

    #[test]
    fn bad_input_never_passes_silently() {
        let s = set();
        let c = combo(&[]);
        let good = answer(&s, &c);
        // No reference at all.
        let r = Report::build(None, &[("c".into(), c.clone(), Some(good.clone()))], None);
        assert_eq!(r.failing(), ["c"]);
        // The engine cannot answer probes.
        let none = ProbeRun::unsupported(&s, "none", "KServe has no logprobs");
        let m = compare(&good, &none);
        assert!(!judge("c", &c, m, None).passed);
        // A probe that did not fit the context.
        let mut ctx = good.clone();
        ctx.answers[2] = ProbeAnswer {
            steps: Vec::new(),
            failure: Some(ProbeFailure::ContextExceeded),
            error: Some("prompt (80) + 16 > 64".into()),
            ..ctx.answers[2].clone()
        };
        let j = judge("c", &c, compare(&good, &ctx), None);
        assert!(!j.passed);
        assert!(
            j.failures[0].contains("does not fit the engine's context"),
            "{:?}",
            j.failures
        );
        // Tokens only: compared by tokens, said so, passes on tokens.
        let mut plain = good.clone();
        plain.logprobs = LogprobSupport::None;
        for a in &mut plain.answers {
            for st in &mut a.steps {
                st.logprob = None;
                st.top.clear();
            }
        }
        let j = judge("c", &c, compare(&good, &plain), None);
        assert!(j.passed, "{:?}", j.failures);
        assert!(
            j.notes.iter().any(|n| n.contains("no logprobs")),
            "{:?}",
            j.notes
        );
        // Different token counts: not an exact match, and reported.
        let mut short = good.clone();
        short.answers[0].steps.truncate(5);
        let m = compare(&good, &short);
        assert_eq!(m.length_mismatches.len(), 1);
        assert!(m.exact_match.unwrap() < 1.0);
        // A different probe set is never compared.
        let mut other = good.clone();
        other.set = "different".into();
        assert!(compare(&good, &other).unjudged.is_some());
    }
}
