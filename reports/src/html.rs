//! The HTML report: one self-contained file (inline CSS, SVG and a little script; nothing is
//! fetched), rendered with minijinja from `reports/templates/`.
//!
//! Plot geometry (scales, ticks, the frontier's path, box-plot quartiles) is computed here, so the
//! template only places elements and the page shows its plots without running any script; the
//! script only sorts tables. Every value reaches the page through minijinja's HTML auto-escaping
//! (the template is named `*.html`), so combo names, messages and spec text cannot inject markup.

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value, context};
use serde::Serialize;

use crate::model::{ComboReport, FidelityCell, RunReport, TargetReport};

const TEMPLATE: &str = include_str!("../templates/report.html");
const STYLE: &str = include_str!("../templates/report.css");
const SCRIPT: &str = include_str!("../templates/report.js");

/// Why the report could not be rendered (a template bug: the model itself cannot cause it).
#[derive(Debug, thiserror::Error)]
#[error("failed to render the HTML report: {0:#}")]
pub struct HtmlError(#[from] minijinja::Error);

/// Render the report as one HTML document.
pub fn render_html(report: &RunReport) -> Result<String, HtmlError> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("num", num);
    env.add_filter("pct", pct);
    env.add_filter("first_line", |s: String| {
        s.lines().next().unwrap_or("").to_string()
    });
    env.add_template("report.html", TEMPLATE)?;
    let views: Vec<TargetView> = report.targets.iter().enumerate().map(target_view).collect();
    let html = env.get_template("report.html")?.render(context! {
        r => Value::from(Serde(report)),
        targets => Value::from(Serde(&views)),
        style => Value::from_safe_string(STYLE.to_string()),
        script => Value::from_safe_string(SCRIPT.to_string()),
        generated => crate::dates::report_time(report.generated_unix_s),
    })?;
    Ok(html)
}

/// A number with `digits` decimals (default: 3 significant-ish), `–` for none/NaN.
fn num(v: Value, digits: Option<usize>) -> String {
    match f64::try_from(v).ok().filter(|x| x.is_finite()) {
        Some(x) => match digits {
            Some(d) => format!("{x:.d$}"),
            None => short(x),
        },
        None => "–".into(),
    }
}

/// A signed percentage, `–` for none.
fn pct(v: Value) -> String {
    match f64::try_from(v).ok().filter(|x| x.is_finite()) {
        Some(x) => format!("{x:+.1} %"),
        None => "–".into(),
    }
}

fn short(x: f64) -> String {
    let a = x.abs();
    if a >= 1000.0 {
        format!("{x:.0}")
    } else if a >= 100.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// What the template needs beyond the model for one target: plot geometry.
#[derive(Debug, Serialize)]
struct TargetView {
    /// Index into `r.targets`.
    index: usize,
    anchor: String,
    pareto: Option<Pareto>,
    /// Whether a point on the pareto plot fails output fidelity (shows the legend entry).
    pareto_fidelity_failed: bool,
    dist: Option<Dist>,
    effects: Vec<EffectView>,
    /// Per combo (aligned with the model's combos): its label without the `key=value` parts
    /// every combo of the target shares.
    short: Vec<String>,
    /// The shared parts.
    common: String,
    /// Per combo (aligned with the model's combos): its fidelity cell, `None` without one.
    fidelity: Vec<Option<FidelityView>>,
    /// Whether any combo of the target has fidelity numbers (shows the column).
    has_fidelity: bool,
    /// The target's verdict line (the summary leads with it).
    line: LineView,
    /// Whether any combo has latency percentiles (shows the latency table).
    has_latency: bool,
    /// The tag of the gates' best combo in the tables: `winner`, or why it is not one.
    winner_tag: String,
}

/// One verdict line, in parts the page can style (and the browser test can read).
#[derive(Debug, Serialize)]
struct LineView {
    /// `pass`, `fail`, `none`, plus `unestablished` for a best combo no gate established (CSS).
    class: String,
    /// `PASS`, `FAIL`, `NONE`.
    verdict: String,
    /// `winner` or `best`; with `winner`, `change` … only on a PASS row that names one.
    role: String,
    winner: Option<String>,
    /// `+12.3` (%), and the interval's ends.
    change: Option<String>,
    lo: Option<String>,
    hi: Option<String>,
    metric: String,
    /// `0.97`.
    p_best: Option<String>,
    /// The head when no winner is shown (`no winner (failed: topk5)`).
    head: String,
    notes: Vec<String>,
    /// The whole line as the terminal prints it.
    text: String,
}

fn line_view(t: &TargetReport) -> LineView {
    let l = crate::verdict::VerdictLine::of_target(t);
    let winner = l.shown_winner().map(str::to_string);
    let change = l.change_pct.filter(|x| x.is_finite() && winner.is_some());
    let ci = l
        .interval_pct
        .filter(|[a, b]| a.is_finite() && b.is_finite() && change.is_some());
    LineView {
        class: if l.shown_winner().is_some() && !l.established {
            "pass unestablished".into()
        } else {
            l.verdict().to_lowercase()
        },
        verdict: l.verdict().into(),
        role: l.role().into(),
        change: change.map(crate::verdict::signed),
        lo: ci.map(|[a, _]| crate::verdict::signed(a)),
        hi: ci.map(|[_, b]| crate::verdict::signed(b)),
        metric: t.metric.name.clone(),
        p_best: l
            .p_best
            .filter(|p| p.is_finite() && winner.is_some())
            .map(|p| format!("{p:.2}")),
        head: l.head(),
        notes: l.notes(),
        text: l.text(),
        winner,
    }
}

/// How the table and the plot show one combo's output fidelity.
#[derive(Debug, Serialize)]
struct FidelityView {
    /// `pass`, `fail` or `unjudged` (a CSS class).
    class: String,
    /// `✓`, `✗`.
    mark: String,
    /// `exact 0.875 · prefix 0.953`, `not judged`, …
    text: String,
    /// `tokens only` when the engine returned no logprobs.
    extra: Option<String>,
    /// Every measure, threshold, failure and note (the cell's tooltip).
    title: String,
    /// Sort key: not judged 0, failures 1–2, passes 3–4 (by exact match and matched prefix).
    sort: f64,
}

#[derive(Debug, Serialize)]
struct Tick {
    pos: f64,
    label: String,
}

#[derive(Debug, Serialize)]
struct Point {
    x: f64,
    y: f64,
    label: String,
    class: String,
    tip: String,
    /// Fails output fidelity: drawn with a red ring.
    fidelity_failed: bool,
}

#[derive(Debug, Serialize)]
struct Pareto {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x_ticks: Vec<Tick>,
    y_ticks: Vec<Tick>,
    x_label: String,
    y_label: String,
    frontier: String,
    points: Vec<Point>,
}

#[derive(Debug, Serialize)]
struct Dist {
    width: f64,
    ticks: Vec<Tick>,
    rows: Vec<DistRow>,
}

#[derive(Debug, Serialize)]
struct DistRow {
    label: String,
    class: String,
    points: Vec<DistPoint>,
    /// Box: whisker ends, quartiles, median (x positions), over the kept reps.
    bx: Option<[f64; 5]>,
}

#[derive(Debug, Serialize)]
struct DistPoint {
    x: f64,
    y: f64,
    trimmed: bool,
    tip: String,
}

#[derive(Debug, Serialize)]
struct EffectView {
    dimension: String,
    levels: Vec<EffectBar>,
}

#[derive(Debug, Serialize)]
struct EffectBar {
    value: String,
    pct: f64,
    combos: usize,
    x: f64,
    w: f64,
    positive: bool,
}

fn target_view((index, t): (usize, &TargetReport)) -> TargetView {
    let (short, common) = short_labels(t);
    let fidelity: Vec<Option<FidelityView>> = t
        .combos
        .iter()
        .map(|c| c.fidelity.as_ref().map(fidelity_view))
        .collect();
    let pareto = pareto(t);
    TargetView {
        line: line_view(t),
        has_latency: t.combos.iter().any(|c| c.latency.is_some()),
        winner_tag: match t.passed {
            Some(true) if t.winner_established => "winner",
            Some(true) => "best, not established",
            Some(false) => "best, gate failed",
            None => "best, no gate trial",
        }
        .into(),
        index,
        anchor: format!("t{index}"),
        pareto_fidelity_failed: pareto
            .as_ref()
            .is_some_and(|p| p.points.iter().any(|pt| pt.fidelity_failed)),
        pareto,
        has_fidelity: fidelity.iter().any(Option::is_some),
        fidelity,
        dist: dist(t),
        effects: effects(t),
        short,
        common,
    }
}

/// Combo labels are `key=value,…` over every dimension; most parts are the same for all combos
/// of a target. Show only the parts that differ, and the shared ones once.
fn short_labels(t: &TargetReport) -> (Vec<String>, String) {
    let parts = |l: &str| -> Vec<String> { l.split(',').map(str::to_string).collect() };
    let combos: Vec<Vec<String>> = t
        .combos
        .iter()
        .filter(|c| !c.is_baseline)
        .map(|c| parts(&c.label))
        .collect();
    let common: Vec<String> = match combos.first() {
        Some(first) if combos.len() > 1 => first
            .iter()
            .filter(|p| p.contains('=') && combos.iter().all(|c| c.contains(p)))
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    let short = t
        .combos
        .iter()
        .map(|c| {
            if c.is_baseline {
                return c.label.clone();
            }
            let rest: Vec<String> = parts(&c.label)
                .into_iter()
                .filter(|p| !common.contains(p))
                .collect();
            if rest.is_empty() {
                c.label.clone()
            } else {
                rest.join(", ")
            }
        })
        .collect();
    (short, common.join(", "))
}

fn short_of(t: &TargetReport, label: &str) -> String {
    let (short, _) = short_labels(t);
    t.combos
        .iter()
        .position(|c| c.label == label)
        .and_then(|i| short.get(i).cloned())
        .unwrap_or_else(|| label.to_string())
}

fn opt_num(x: Option<f64>, digits: usize) -> String {
    match x.filter(|v| v.is_finite()) {
        Some(v) => format!("{v:.digits$}"),
        None => "–".into(),
    }
}

fn fidelity_view(f: &FidelityCell) -> FidelityView {
    let tokens_only = f.logprobs.as_deref() == Some("none");
    let score = f.exact_match.unwrap_or(0.0) * 0.5 + f.matched_prefix.unwrap_or(0.0) * 0.5;
    let (class, mark, text, sort) = if let Some(why) = &f.unjudged {
        ("unjudged", "✗", format!("not judged: {why}"), 0.0)
    } else {
        (
            if f.passed { "pass" } else { "fail" },
            if f.passed { "✓" } else { "✗" },
            format!(
                "exact {} · prefix {}",
                opt_num(f.exact_match, 3),
                opt_num(f.matched_prefix, 3)
            ),
            if f.passed { 3.0 } else { 1.0 } + score,
        )
    };
    let l = &f.limits;
    let mut title = vec![
        format!(
            "output fidelity: {} ({} gate, {}; precision class {})",
            if f.unjudged.is_some() {
                "not judged (fails)"
            } else if f.passed {
                "pass"
            } else {
                "FAIL"
            },
            f.gate,
            if f.enforced {
                "enforced"
            } else {
                "reported only"
            },
            f.precision
        ),
        format!("probes compared: {}", f.probes),
        format!(
            "exact match: {} (min {})",
            opt_num(f.exact_match, 3),
            l.min_exact_match
        ),
        format!(
            "matched prefix: {} (min {}); mean first divergence {} tokens",
            opt_num(f.matched_prefix, 3),
            l.min_matched_prefix,
            opt_num(f.mean_first_divergence, 2)
        ),
        format!(
            "mean |Δ logprob|: {} nats (max {})",
            opt_num(f.mean_abs_logprob_delta, 4),
            l.max_logprob_delta
        ),
        format!(
            "top-k JS divergence: {} bits (max {})",
            opt_num(f.topk_js_divergence, 4),
            l.max_topk_divergence
        ),
        format!(
            "logprobs: {}",
            match f.logprobs.as_deref() {
                Some("none") => "none (compared by tokens only)",
                Some(s) => s,
                None => "unknown",
            }
        ),
    ];
    if !f.divergence_positions.is_empty() {
        let p: Vec<String> = f.divergence_positions.iter().map(u32::to_string).collect();
        title.push(format!("diverged at tokens: {}", p.join(", ")));
    }
    if let Some(u) = &f.unjudged {
        title.push(format!("not judged: {u}"));
    }
    title.extend(f.failures.iter().map(|x| format!("failure: {x}")));
    title.extend(f.failed_probes.iter().map(|x| format!("failed probe: {x}")));
    title.extend(
        f.length_mismatches
            .iter()
            .map(|x| format!("different token counts: {x}")),
    );
    title.extend(f.notes.iter().map(|x| format!("note: {x}")));
    FidelityView {
        class: class.into(),
        mark: mark.into(),
        text,
        extra: tokens_only.then(|| "tokens only".to_string()),
        title: title.join("\n"),
        sort,
    }
}

/// Round "nice" tick positions covering `[lo, hi]`.
fn ticks(lo: f64, hi: f64, n: usize) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if (hi - lo).abs() < f64::EPSILON * hi.abs().max(1.0) {
        let d = if lo == 0.0 { 1.0 } else { lo.abs() * 0.05 };
        (lo - d, hi + d)
    } else {
        (lo, hi)
    };
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let mut v = Vec::new();
    let mut x = start;
    while x <= end + step * 1e-9 && v.len() < 50 {
        v.push(x);
        x += step;
    }
    (start, end, v)
}

fn scale(v: f64, (d0, d1): (f64, f64), (r0, r1): (f64, f64)) -> f64 {
    if d1 == d0 {
        (r0 + r1) / 2.0
    } else {
        r0 + (v - d0) / (d1 - d0) * (r1 - r0)
    }
}

fn combo_class(c: &ComboReport) -> &'static str {
    if c.is_winner {
        "winner"
    } else if c.is_baseline {
        "baseline"
    } else if c.on_frontier {
        "frontier"
    } else if !c.passed {
        "failed"
    } else {
        "combo"
    }
}

fn pareto(t: &TargetReport) -> Option<Pareto> {
    let pts: Vec<(&ComboReport, f64, f64)> = t
        .combos
        .iter()
        .filter_map(|c| Some((c, c.latency_p95_ms?, c.throughput?)))
        .filter(|(_, x, y)| x.is_finite() && y.is_finite())
        .collect();
    if pts.is_empty() {
        return None;
    }
    let (width, height, left, right, top, bottom) = (640.0, 360.0, 64.0, 30.0, 16.0, 44.0);
    let xs = pts.iter().map(|p| p.1);
    let ys = pts.iter().map(|p| p.2);
    let (x0, x1, xt) = ticks(
        xs.clone().fold(f64::INFINITY, f64::min),
        xs.fold(f64::NEG_INFINITY, f64::max),
        6,
    );
    let (y0, y1, yt) = ticks(
        ys.clone().fold(f64::INFINITY, f64::min),
        ys.fold(f64::NEG_INFINITY, f64::max),
        5,
    );
    let sx = |v| scale(v, (x0, x1), (left, width - right));
    let sy = |v| scale(v, (y0, y1), (height - bottom, top));
    let mut frontier: Vec<(f64, f64)> = pts
        .iter()
        .filter(|p| p.0.on_frontier)
        .map(|p| (sx(p.1), sy(p.2)))
        .collect();
    frontier.sort_by(|a, b| a.0.total_cmp(&b.0));
    // A staircase: from each frontier point, right at its throughput, then up/down to the next.
    let mut path = String::new();
    for (i, (x, y)) in frontier.iter().enumerate() {
        if i == 0 {
            path.push_str(&format!("M{x:.1},{y:.1}"));
        } else {
            let (_, py) = frontier[i - 1];
            path.push_str(&format!(" L{x:.1},{py:.1} L{x:.1},{y:.1}"));
        }
    }
    let mut points: Vec<Point> = pts
        .iter()
        .map(|(c, x, y)| {
            let fidelity_failed = c.fidelity.as_ref().is_some_and(|f| !f.passed);
            let mut tip = format!(
                "{}\n{} {}: {}\n{}: {} ms",
                short_of(t, &c.label),
                t.metric.name,
                t.metric.unit,
                short(*y),
                t.latency_metric,
                short(*x)
            );
            if let Some(f) = &c.fidelity {
                tip.push_str(&format!(
                    "\noutput fidelity: {}",
                    match (&f.unjudged, f.passed) {
                        (Some(u), _) => format!("not judged ({u})"),
                        (None, true) => "pass".into(),
                        (None, false) => format!("FAILS ({})", f.failures.join("; ")),
                    }
                ));
            }
            Point {
                x: sx(*x),
                y: sy(*y),
                label: c.label.clone(),
                class: combo_class(c).into(),
                tip,
                fidelity_failed,
            }
        })
        .collect();
    // Draw baseline and winner last, so they are on top.
    points.sort_by_key(|p| match p.class.as_str() {
        "winner" => 3,
        "baseline" => 2,
        "frontier" => 1,
        _ => 0,
    });
    Some(Pareto {
        width,
        height,
        left,
        right,
        top,
        bottom,
        x_ticks: xt
            .iter()
            .map(|v| Tick {
                pos: sx(*v),
                label: short(*v),
            })
            .collect(),
        y_ticks: yt
            .iter()
            .map(|v| Tick {
                pos: sy(*v),
                label: short(*v),
            })
            .collect(),
        x_label: format!("{} (ms, lower is better) →", t.latency_metric),
        y_label: "output tok/s (higher is better) →".into(),
        frontier: path,
        points,
    })
}

/// Quantile by linear interpolation of sorted values.
fn q(sorted: &[f64], p: f64) -> f64 {
    if sorted.len() == 1 {
        return sorted[0];
    }
    let h = (sorted.len() - 1) as f64 * p;
    let (i, f) = (h.floor() as usize, h - h.floor());
    let j = (i + 1).min(sorted.len() - 1);
    sorted[i] + (sorted[j] - sorted[i]) * f
}

fn dist(t: &TargetReport) -> Option<Dist> {
    let all: Vec<f64> = t
        .combos
        .iter()
        .flat_map(|c| c.values.iter().copied())
        .filter(|v| v.is_finite())
        .collect();
    if all.is_empty() {
        return None;
    }
    let width = 420.0;
    // Wide enough margins that the first and last tick labels (centred on their tick) stay
    // inside the SVG.
    let (pad, row_h) = (28.0, 22.0);
    let (d0, d1, tk) = ticks(
        all.iter().copied().fold(f64::INFINITY, f64::min),
        all.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        5,
    );
    let sx = |v| scale(v, (d0, d1), (pad, width - pad));
    let rows = t
        .combos
        .iter()
        .map(|c| {
            let n = c.values.len().max(1);
            let points = c
                .values
                .iter()
                .enumerate()
                .filter(|(_, v)| v.is_finite())
                .map(|(i, v)| {
                    let trimmed = c.trimmed.get(i).copied().unwrap_or(false);
                    // Deterministic jitter by rep index keeps overlapping reps visible.
                    let y = row_h / 2.0 + ((i as f64 / n as f64) - 0.5) * 8.0;
                    DistPoint {
                        x: sx(*v),
                        y,
                        trimmed,
                        tip: format!(
                            "rep {}: {}{}",
                            i + 1,
                            short(*v),
                            if trimmed { " (trimmed)" } else { "" }
                        ),
                    }
                })
                .collect();
            let mut kept: Vec<f64> = c
                .values
                .iter()
                .enumerate()
                .filter(|(i, v)| v.is_finite() && !c.trimmed.get(*i).copied().unwrap_or(false))
                .map(|(_, v)| *v)
                .collect();
            kept.sort_by(f64::total_cmp);
            let bx = (!kept.is_empty()).then(|| {
                [
                    sx(kept[0]),
                    sx(q(&kept, 0.25)),
                    sx(q(&kept, 0.5)),
                    sx(q(&kept, 0.75)),
                    sx(kept[kept.len() - 1]),
                ]
            });
            DistRow {
                label: short_of(t, &c.label),
                class: combo_class(c).into(),
                points,
                bx,
            }
        })
        .collect();
    Some(Dist {
        width,
        ticks: tk
            .iter()
            .map(|v| Tick {
                pos: sx(*v),
                label: short(*v),
            })
            .collect(),
        rows,
    })
}

fn effects(t: &TargetReport) -> Vec<EffectView> {
    let max = t
        .main_effects
        .iter()
        .flat_map(|e| e.levels.iter().map(|l| l.mean_improvement_pct.abs()))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let (width, mid) = (240.0, 120.0);
    t.main_effects
        .iter()
        .map(|e| EffectView {
            dimension: e.dimension.clone(),
            levels: e
                .levels
                .iter()
                .map(|l| {
                    let v = if l.mean_improvement_pct.is_finite() {
                        l.mean_improvement_pct
                    } else {
                        0.0
                    };
                    let w = (v.abs() / max * (width / 2.0 - 4.0)).max(1.0);
                    EffectBar {
                        value: l.value.clone(),
                        pct: v,
                        combos: l.combos,
                        x: if v >= 0.0 { mid } else { mid - w },
                        w,
                        positive: v >= 0.0,
                    }
                })
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_range_with_round_steps() {
        let (lo, hi, t) = ticks(13.0, 87.0, 5);
        assert!(lo <= 13.0 && hi >= 87.0, "{lo} {hi}");
        assert_eq!(t.first().copied(), Some(lo));
        assert!(t.len() >= 3 && t.len() <= 12, "{t:?}");
        // A single value still gets a non-empty range.
        let (lo, hi, _) = ticks(5.0, 5.0, 5);
        assert!(lo < 5.0 && hi > 5.0);
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(q(&v, 0.5), 2.5);
        assert_eq!(q(&v, 0.0), 1.0);
        assert_eq!(q(&v, 1.0), 4.0);
    }
}
