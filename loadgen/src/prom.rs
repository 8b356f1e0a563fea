//! Engines' own Prometheus metrics: scrape the text format, keep the engine's series, and take
//! the difference over a measurement (counters and histogram sums/counts grow; gauges are kept
//! as the last value).

use std::collections::{BTreeMap, BTreeSet};

/// One scrape: every kept series with its value, and the metric families the exposition
/// declared as counters (`# TYPE name counter`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    pub values: BTreeMap<String, f64>,
    pub counters: BTreeSet<String>,
}

/// Parse Prometheus text exposition: `name{labels} value` per line, `# TYPE` lines noted, other
/// comments, `_created` timestamps and `_info` metadata series skipped. Series whose name does not start with one of `prefixes` are dropped
/// (empty = keep all).
pub fn parse(text: &str, prefixes: &[&str]) -> Scrape {
    let mut out = Scrape::default();
    for line in text.lines() {
        let line = line.trim();
        if let Some(decl) = line.strip_prefix("# TYPE ") {
            let mut parts = decl.split_whitespace();
            if let (Some(name), Some("counter")) = (parts.next(), parts.next()) {
                out.counters.insert(name.to_string());
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The value follows the series (which may contain spaces inside quoted labels).
        let series_end = match line.find('}') {
            Some(i) => i + 1,
            None => line.find(char::is_whitespace).unwrap_or(line.len()),
        };
        let (series, rest) = line.split_at(series_end);
        let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        // `_created` series are creation timestamps and `_info` series metadata (vLLM's
        // `cache_config_info{...} 1`): neither is a measurement.
        let family = series.split('{').next().unwrap_or(series);
        if family.ends_with("_created") || family.ends_with("_info") {
            continue;
        }
        if prefixes.is_empty() || prefixes.iter().any(|p| series.starts_with(p)) {
            out.values.insert(series.to_string(), value);
        }
    }
    out
}

/// `after - before` for cumulative series, the `after` value for gauges. A series is cumulative
/// when its family is declared a counter (Triton's `nv_inference_request_success` has no
/// `_total` suffix), or when its name ends in `_total`, `_sum`, `_count` or `_bucket` (histogram
/// parts, and expositions without `# TYPE` lines).
pub fn delta(before: &Scrape, after: &Scrape) -> BTreeMap<String, f64> {
    after
        .values
        .iter()
        .map(|(k, &v)| {
            let name = k.split('{').next().unwrap_or(k);
            let cumulative = after.counters.contains(name)
                || ["_total", "_sum", "_count", "_bucket"]
                    .iter()
                    .any(|s| name.ends_with(s));
            let d = if cumulative {
                v - before.values.get(k).copied().unwrap_or(0.0)
            } else {
                v
            };
            (k.clone(), d)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_differences_engine_series() {
        let before = parse(
            "# HELP x\nllamacpp:tokens_predicted_total 10\nllamacpp:requests_processing 2\nother 1\n",
            &["llamacpp:"],
        );
        let after = parse(
            "llamacpp:tokens_predicted_total 25\nllamacpp:requests_processing 0\nvllm:x{a=\"b c\"} 3\n",
            &["llamacpp:", "vllm:"],
        );
        assert!(!before.values.contains_key("other"));
        let d = delta(&before, &after);
        assert_eq!(d["llamacpp:tokens_predicted_total"], 15.0);
        assert_eq!(d["llamacpp:requests_processing"], 0.0);
        assert_eq!(d["vllm:x{a=\"b c\"}"], 3.0);
    }

    #[test]
    fn declared_counters_are_differenced_whatever_their_name() {
        let text = |n: u32| {
            format!(
                "# HELP nv_inference_request_success Number of successful requests\n# TYPE nv_inference_request_success counter\nnv_inference_request_success{{model=\"m\"}} {n}\n# TYPE nv_gpu_utilization gauge\nnv_gpu_utilization 0.5\n"
            )
        };
        let d = delta(&parse(&text(28), &["nv_"]), &parse(&text(40), &["nv_"]));
        assert_eq!(d["nv_inference_request_success{model=\"m\"}"], 12.0);
        assert_eq!(d["nv_gpu_utilization"], 0.5);
        let meta = parse(
            "vllm:x_total 3\nvllm:x_created 1.7e9\nvllm:cache_config_info{block_size=\"32\"} 1\n",
            &["vllm:"],
        );
        assert_eq!(meta.values.keys().collect::<Vec<_>>(), ["vllm:x_total"]);
    }
}
