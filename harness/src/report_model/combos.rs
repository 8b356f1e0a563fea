//! A target's combos in the report: each combo's numbers from its measurement (reps, trimmed
//! mean and interval at the run's trim, latency percentiles, logs), its comparison with the
//! baseline (the gate's row, else recomputed), the throughput/latency frontier and the main
//! effects of each dimension.

use std::collections::BTreeMap;

use l1_reports::model::{CacheHitReport, ComboReport, EffectLevel, MainEffect, VsBaseline};

use super::{FIDELITY_METRIC, THROUGHPUT_METRIC, finite_or};
use crate::model::{MeasurementRecord, Row, TrialRecord};
use crate::stats;

/// Trimmed mean and 95 % interval of one metric of a measurement.
pub(super) fn trimmed_of(m: &MeasurementRecord, name: &str, trim: f64) -> Option<(f64, [f64; 2])> {
    let v: Vec<f64> = m.reps.iter().filter_map(|r| r.get(name).copied()).collect();
    interval(&v, trim, m.launches.max(1) as usize)
}

fn interval(v: &[f64], trim: f64, launches: usize) -> Option<(f64, [f64; 2])> {
    let (tm, se) = stats::trimmed_mean_se(v, trim, 0.0, launches).ok()?;
    let h = v.len() - 2 * stats::trim_count(v.len(), trim);
    let q = stats::t_quantile(h as f64 - 1.0, 0.975);
    if !(tm.is_finite() && se.is_finite() && q.is_finite()) {
        return tm.is_finite().then_some((tm, [tm, tm]));
    }
    Some((tm, [tm - q * se, tm + q * se]))
}

pub(super) fn fill_from_measurement(
    c: &mut ComboReport,
    m: &MeasurementRecord,
    metric: &str,
    trim: f64,
) {
    c.dims = m.combo.dims.clone();
    c.knobs = m.combo.knobs.clone();
    c.simulated |= m.simulated;
    c.engine_version = m.engine_version.clone();
    c.error = m.error.clone();
    c.cache_hit = m.cache_hit.as_ref().map(|h| CacheHitReport {
        from_run: h.from_run.clone(),
        from_key: h.from_key.clone(),
        measured_unix_s: finite_or(h.measured_unix_s, 0.0),
    });
    c.logs = m.notes.iter().filter_map(|n| log_path(n)).collect();
    c.logs.dedup();
    c.values = m
        .reps
        .iter()
        .filter_map(|r| r.get(metric).copied())
        .filter(|v| v.is_finite())
        .collect();
    c.reps = c.values.len();
    let g = stats::trim_count(c.reps, trim);
    let mut order: Vec<usize> = (0..c.reps).collect();
    order.sort_by(|a, b| c.values[*a].total_cmp(&c.values[*b]));
    c.trimmed = vec![false; c.reps];
    if stats::check_reps(c.reps, trim).is_ok() {
        for &i in order.iter().take(g).chain(order.iter().rev().take(g)) {
            c.trimmed[i] = true;
        }
        c.reps_used = c.reps - 2 * g;
    } else {
        c.reps_used = c.reps;
    }
    if let Some((tm, ci)) = interval(&c.values, trim, m.launches.max(1) as usize) {
        c.trimmed_mean = Some(tm);
        c.interval = Some(ci);
    }
    c.throughput = trimmed_of(m, THROUGHPUT_METRIC, trim).map(|(t, _)| t);
    c.latency = latency(m, trim);
}

/// Latency percentiles of a measurement: per metric, each rep's own p50/p95/p99 aggregated
/// over the reps by the trimmed mean (the target's trim); `None` when no rep carries any.
fn latency(m: &MeasurementRecord, trim: f64) -> Option<l1_reports::model::LatencyReport> {
    use l1_reports::model::{LatencyReport, Percentiles};
    let of = |name: &str| -> Percentiles {
        let one = |p: &str| {
            let v: Vec<f64> = (m.reps.iter())
                .filter_map(|r| r.get(&format!("{name}_{p}_ms")).copied())
                .filter(|x| x.is_finite())
                .collect();
            match v.as_slice() {
                [one] => Some(*one),
                _ => stats::trimmed_mean(&v, trim).ok().filter(|x| x.is_finite()),
            }
        };
        Percentiles {
            p50: one("p50"),
            p95: one("p95"),
            p99: one("p99"),
        }
    };
    let l = LatencyReport {
        ttft_ms: of("ttft"),
        itl_ms: of("itl"),
        tpot_ms: of("tpot"),
        e2e_ms: of("e2e"),
    };
    let any = [&l.ttft_ms, &l.itl_ms, &l.tpot_ms, &l.e2e_ms]
        .iter()
        .any(|p| p.p50.is_some() || p.p95.is_some() || p.p99.is_some());
    any.then_some(l)
}

/// `engine log: /path` (or `engine log /path:`) in a note → the path.
fn log_path(note: &str) -> Option<String> {
    let i = note.find("engine log")?;
    let rest = note[i + "engine log".len()..].trim_start_matches([':', ' ']);
    let p: String = rest
        .split_whitespace()
        .next()?
        .trim_end_matches(':')
        .to_string();
    p.starts_with('/').then_some(p)
}

pub(super) fn compare_with_baseline(
    combos: &mut [ComboReport],
    gate: Option<&TrialRecord>,
    metric: &str,
    higher: bool,
    trim: f64,
    notes: &mut Vec<String>,
) {
    let rows: BTreeMap<&str, &Row> = gate
        .and_then(|g| {
            g.gates
                .iter()
                .find(|v| v.rows.iter().any(|r| r.metric != FIDELITY_METRIC))
        })
        .map(|v| {
            v.rows
                .iter()
                .filter(|r| r.metric == metric)
                .map(|r| (r.combo.as_str(), r))
                .collect()
        })
        .unwrap_or_default();
    let base: Option<Vec<f64>> = combos
        .iter()
        .find(|c| c.is_baseline && c.error.is_none())
        .map(|c| c.values.clone());
    let mut recomputed = 0;
    for c in combos.iter_mut().filter(|c| !c.is_baseline) {
        if let Some(r) = rows.get(c.label.as_str())
            && let Some(imp) = r.improvement.filter(|x| x.is_finite())
        {
            c.vs_baseline = Some(VsBaseline {
                improvement_pct: (imp - 1.0) * 100.0,
                interval_pct: r
                    .improvement_ci
                    .filter(|(a, b)| a.is_finite() && b.is_finite())
                    .map(|(a, b)| [(a - 1.0) * 100.0, (b - 1.0) * 100.0]),
                p: r.yuen_p.filter(|p| p.is_finite()),
                adjusted_p: r.adjusted_p.filter(|p| p.is_finite()),
                effect_size: r.hedges_g.filter(|g| g.is_finite()),
                source: "gate".into(),
            });
            continue;
        }
        let (Some(b), None) = (&base, &c.error) else {
            continue;
        };
        if let Ok(cmp) = stats::compare(&c.values, b, trim, 0.95) {
            let (ratio, (lo, hi)) = if higher {
                (cmp.ratio, cmp.ratio_ci)
            } else {
                (
                    1.0 / cmp.ratio,
                    (1.0 / cmp.ratio_ci.1, 1.0 / cmp.ratio_ci.0),
                )
            };
            if !ratio.is_finite() {
                continue;
            }
            recomputed += 1;
            c.vs_baseline = Some(VsBaseline {
                improvement_pct: (ratio - 1.0) * 100.0,
                interval_pct: (lo.is_finite() && hi.is_finite())
                    .then_some([(lo - 1.0) * 100.0, (hi - 1.0) * 100.0]),
                p: Some(cmp.yuen_p).filter(|p| p.is_finite()),
                adjusted_p: None,
                effect_size: Some(if higher { cmp.hedges_g } else { -cmp.hedges_g })
                    .filter(|g| g.is_finite()),
                source: "recomputed".into(),
            });
        }
    }
    if recomputed > 0 {
        notes.push(format!(
            "{recomputed} comparison(s) recomputed from the reps (Yuen's test, no launch-to-launch \
             component, no multiplicity adjustment): the gate did not tabulate them"
        ));
    }
}

/// A combo is on the frontier when no other combo has both higher throughput and lower latency
/// (at least as good in both, better in one).
pub(super) fn mark_frontier(combos: &mut [ComboReport]) {
    let pts: Vec<Option<(f64, f64)>> = combos
        .iter()
        .map(|c| match (c.throughput, c.latency_p95_ms, &c.error) {
            (Some(t), Some(l), None) if t.is_finite() && l.is_finite() => Some((t, l)),
            _ => None,
        })
        .collect();
    for (i, c) in combos.iter_mut().enumerate() {
        let Some((t, l)) = pts[i] else { continue };
        c.on_frontier = !pts.iter().enumerate().any(|(j, p)| {
            j != i && p.is_some_and(|(t2, l2)| t2 >= t && l2 <= l && (t2 > t || l2 < l))
        });
    }
}

pub(super) fn main_effects(combos: &[ComboReport]) -> Vec<MainEffect> {
    let measured: Vec<&ComboReport> = combos
        .iter()
        .filter(|c| !c.is_baseline && c.vs_baseline.is_some())
        .collect();
    let mut dims: BTreeMap<&str, BTreeMap<&str, (f64, usize)>> = BTreeMap::new();
    for c in &measured {
        let Some(v) = &c.vs_baseline else { continue };
        for (d, val) in c.dims.iter().chain(c.knobs.iter()) {
            let e = dims.entry(d).or_default().entry(val).or_default();
            e.0 += v.improvement_pct;
            e.1 += 1;
        }
    }
    dims.into_iter()
        .filter(|(_, levels)| levels.len() > 1)
        .map(|(d, levels)| MainEffect {
            dimension: d.to_string(),
            levels: levels
                .into_iter()
                .map(|(v, (sum, n))| EffectLevel {
                    value: v.to_string(),
                    mean_improvement_pct: sum / n as f64,
                    combos: n,
                })
                .collect(),
        })
        .collect()
}
