//! The metrics one rep produces, with their units and which direction is better.

use std::collections::BTreeMap;

/// Metric name -> value for one rep. Names come from [`METRICS`].
pub type Metrics = BTreeMap<String, f64>;

/// Whether a larger or a smaller value is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    HigherIsBetter,
    LowerIsBetter,
}

/// A metric every engine run reports.
#[derive(Clone, Copy, Debug)]
pub struct MetricInfo {
    pub name: &'static str,
    pub unit: &'static str,
    pub direction: Direction,
    pub doc: &'static str,
}

const fn m(
    name: &'static str,
    unit: &'static str,
    direction: Direction,
    doc: &'static str,
) -> MetricInfo {
    MetricInfo {
        name,
        unit,
        direction,
        doc,
    }
}

use Direction::{HigherIsBetter as Up, LowerIsBetter as Down};

/// Every metric a rep reports. Latency percentiles are over the requests of one rep.
pub const METRICS: &[MetricInfo] = &[
    m(
        "output_tokens_per_s",
        "tok/s",
        Up,
        "generated tokens per second over the rep",
    ),
    m(
        "requests_per_s",
        "req/s",
        Up,
        "completed requests per second over the rep",
    ),
    m(
        "goodput_requests_per_s",
        "req/s",
        Up,
        "completed requests per second that met the workload's SLOs",
    ),
    m("ttft_p50_ms", "ms", Down, "time to first token, median"),
    m(
        "ttft_p95_ms",
        "ms",
        Down,
        "time to first token, 95th percentile",
    ),
    m(
        "ttft_p99_ms",
        "ms",
        Down,
        "time to first token, 99th percentile",
    ),
    m("itl_p50_ms", "ms", Down, "inter-token latency, median"),
    m(
        "itl_p95_ms",
        "ms",
        Down,
        "inter-token latency, 95th percentile",
    ),
    m(
        "itl_p99_ms",
        "ms",
        Down,
        "inter-token latency, 99th percentile",
    ),
    m(
        "tpot_p50_ms",
        "ms",
        Down,
        "time per output token after the first, median over requests",
    ),
    m(
        "tpot_p95_ms",
        "ms",
        Down,
        "time per output token after the first, 95th percentile",
    ),
    m(
        "tpot_p99_ms",
        "ms",
        Down,
        "time per output token after the first, 99th percentile",
    ),
    m(
        "e2e_p50_ms",
        "ms",
        Down,
        "end-to-end request latency, median",
    ),
    m(
        "e2e_p95_ms",
        "ms",
        Down,
        "end-to-end request latency, 95th percentile",
    ),
    m(
        "e2e_p99_ms",
        "ms",
        Down,
        "end-to-end request latency, 99th percentile",
    ),
    m(
        "peak_memory_gib",
        "GiB",
        Down,
        "peak device memory (GPU) or engine RSS (CPU)",
    ),
    m(
        "error_rate",
        "fraction",
        Down,
        "failed requests / sent requests",
    ),
];

/// Look a metric up by name.
pub fn metric(name: &str) -> Option<&'static MetricInfo> {
    METRICS.iter().find(|m| m.name == name)
}

/// The names of all metrics, for error messages.
pub fn metric_names() -> Vec<&'static str> {
    METRICS.iter().map(|m| m.name).collect()
}

/// The `q`-quantile (0..=1) of `values` by linear interpolation; `None` when empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(v[lo] + (v[hi] - v[lo]) * frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&v, 1.0), Some(4.0));
        assert_eq!(quantile(&v, 0.5), Some(2.5));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn metric_names_are_unique() {
        let mut names = metric_names();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METRICS.len());
    }
}
