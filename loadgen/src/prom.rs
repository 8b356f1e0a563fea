//! Engines' own Prometheus metrics: scrape the text format, keep the engine's series, and take
//! the difference over a measurement (counters and histogram sums/counts grow; gauges are kept
//! as the last value).

use std::collections::BTreeMap;

/// Parse Prometheus text exposition: `name{labels} value` per line, comments skipped. Series
/// whose name does not start with one of `prefixes` are dropped (empty = keep all).
pub fn parse(text: &str, prefixes: &[&str]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
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
        if prefixes.is_empty() || prefixes.iter().any(|p| series.starts_with(p)) {
            out.insert(series.to_string(), value);
        }
    }
    out
}

/// `after - before` for series that look cumulative (`_total`, `_sum`, `_count`, `_bucket`),
/// the `after` value otherwise.
pub fn delta(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, &v)| {
            let name = k.split('{').next().unwrap_or(k);
            let cumulative = ["_total", "_sum", "_count", "_bucket"]
                .iter()
                .any(|s| name.ends_with(s));
            let d = if cumulative {
                v - before.get(k).copied().unwrap_or(0.0)
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
        assert!(!before.contains_key("other"));
        let d = delta(&before, &after);
        assert_eq!(d["llamacpp:tokens_predicted_total"], 15.0);
        assert_eq!(d["llamacpp:requests_processing"], 0.0);
        assert_eq!(d["vllm:x{a=\"b c\"}"], 3.0);
    }
}
