//! From one rep's observations to its metrics: throughput, goodput, latency percentiles, error
//! counts per kind, and whether the generator delivered the load it was asked for.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::driver::{Load, RepRun};
use crate::request::{ErrorKind, Observation};

/// Service-level objectives a request must meet to count toward goodput.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Slo {
    pub ttft_ms: Option<f64>,
    pub tpot_ms: Option<f64>,
    pub e2e_ms: Option<f64>,
}

/// A rep's results.
#[derive(Clone, Debug, PartialEq)]
pub struct RepSummary {
    /// Metric name -> value (names as in l1's metric table: `output_tokens_per_s`, `ttft_p95_ms`...).
    pub metrics: BTreeMap<String, f64>,
    /// Failed requests per kind, with one example message each.
    pub errors: BTreeMap<ErrorKind, (u32, String)>,
    /// Requests sent.
    pub requests: usize,
    /// Did the generator deliver the configured load? `None` when it did; the shortfall otherwise.
    pub under_delivered: Option<String>,
    /// Whether every request's tokens were counted from the engine's usage report.
    pub all_counted_from_usage: bool,
}

impl RepSummary {
    /// `3 timeout, 1 http_status (HTTP 500 ...)`: the errors, for messages.
    pub fn error_text(&self) -> String {
        self.errors
            .iter()
            .map(|(k, (n, ex))| format!("{n} {} (e.g. {ex})", k.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `q` quantile (linear interpolation); 0 when empty.
pub fn quantile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    values[lo] + (values[hi] - values[lo]) * (pos - lo as f64)
}

/// Summarize a rep.
pub fn summarize(run: &RepRun, slo: &Slo) -> RepSummary {
    let obs = &run.observations;
    let ok: Vec<&Observation> = obs.iter().filter(|o| o.error.is_none()).collect();
    let wall = run.wall.as_secs_f64().max(1e-9);
    let mut m = BTreeMap::new();
    let out_tokens: u64 = ok.iter().map(|o| u64::from(o.output_tokens)).sum();
    m.insert("output_tokens_per_s".into(), out_tokens as f64 / wall);
    m.insert("requests_per_s".into(), ok.len() as f64 / wall);
    let good = ok.iter().filter(|o| meets(o, slo)).count();
    m.insert("goodput_requests_per_s".into(), good as f64 / wall);
    let mut put = |name: &str, mut v: Vec<f64>| {
        for (q, suffix) in [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")] {
            m.insert(format!("{name}_{suffix}_ms"), quantile(&mut v, q));
        }
    };
    put("ttft", ok.iter().filter_map(|o| o.ttft.map(ms)).collect());
    put(
        "itl",
        ok.iter()
            .flat_map(|o| o.itl.iter().map(|d| ms(*d)))
            .collect(),
    );
    put("tpot", ok.iter().filter_map(|o| o.tpot().map(ms)).collect());
    put("e2e", ok.iter().map(|o| ms(o.e2e)).collect());
    let n = obs.len().max(1) as f64;
    m.insert("error_rate".into(), (obs.len() - ok.len()) as f64 / n);
    let mut lags: Vec<f64> = obs.iter().map(|o| ms(o.send_lag)).collect();
    m.insert("send_lag_p99_ms".into(), quantile(&mut lags, 0.99));
    m.insert(
        "input_tokens_mean".into(),
        ok.iter().map(|o| f64::from(o.input_tokens)).sum::<f64>() / ok.len().max(1) as f64,
    );
    let mut errors: BTreeMap<ErrorKind, (u32, String)> = BTreeMap::new();
    for e in obs.iter().filter_map(|o| o.error.as_ref()) {
        let entry = errors.entry(e.kind).or_insert((0, e.detail.clone()));
        entry.0 += 1;
    }
    // Delivered load: the achieved send rate (open loop) or mean requests in flight (closed).
    let (ratio, under) = match run.load {
        Load::Poisson { rate, .. } => {
            let first = obs.iter().map(|o| o.intended + o.send_lag).min();
            let last = obs.iter().map(|o| o.intended + o.send_lag).max();
            let achieved = match (first, last) {
                (Some(a), Some(b)) if b > a && obs.len() > 1 => {
                    (obs.len() - 1) as f64 / (b - a).as_secs_f64()
                }
                _ => rate,
            };
            m.insert("achieved_rate_per_s".into(), achieved);
            let lag99 = quantile(&mut lags, 0.99);
            let ratio = achieved / rate;
            // A Poisson sample of n arrivals has a rate estimate with sd rate/sqrt(n): allow 4 sd.
            let tol = (4.0 / (obs.len().max(1) as f64).sqrt()).max(0.1);
            let under = (ratio < 1.0 - tol || lag99 > 50.0).then(|| {
                format!(
                    "the generator sent {achieved:.2} req/s of the configured {rate:.2} (p99 send lag {lag99:.2} ms)"
                )
            });
            (ratio, under)
        }
        Load::Closed { concurrency } => {
            let busy: f64 = obs.iter().map(|o| o.e2e.as_secs_f64()).sum();
            let mean_in_flight = busy / wall;
            let target = f64::from(concurrency).min(obs.len() as f64).max(1.0);
            m.insert("mean_in_flight".into(), mean_in_flight);
            let ratio = mean_in_flight / target;
            // The tail of a closed-loop rep drains below the target; 25 % below it is a shortfall.
            let under = (ratio < 0.75).then(|| {
                format!(
                    "the generator kept {mean_in_flight:.2} requests in flight on average of the configured {concurrency}"
                )
            });
            (ratio, under)
        }
    };
    m.insert("load_delivered_ratio".into(), ratio);
    RepSummary {
        metrics: m,
        errors,
        requests: obs.len(),
        under_delivered: under,
        all_counted_from_usage: ok.iter().all(|o| o.counted_from_usage),
    }
}

fn meets(o: &Observation, slo: &Slo) -> bool {
    let within = |limit: Option<f64>, v: Option<Duration>| match (limit, v) {
        (None, _) => true,
        (Some(l), Some(v)) => ms(v) <= l,
        (Some(_), None) => false,
    };
    within(slo.ttft_ms, o.ttft) && within(slo.tpot_ms, o.tpot()) && within(slo.e2e_ms, Some(o.e2e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::request::RequestError;

    fn obs(i: usize, ttft_ms: u64, tokens: u32, e2e_ms: u64) -> Observation {
        Observation {
            index: i,
            intended: Duration::from_millis(i as u64 * 10),
            send_lag: Duration::ZERO,
            ttft: Some(Duration::from_millis(ttft_ms)),
            itl: vec![Duration::from_millis(2); tokens as usize - 1],
            e2e: Duration::from_millis(e2e_ms),
            input_tokens: 10,
            output_tokens: tokens,
            counted_from_usage: true,
            error: None,
        }
    }

    #[test]
    fn throughput_goodput_percentiles_and_errors() {
        let mut o: Vec<_> = (0..4)
            .map(|i| obs(i, 10 + i as u64 * 10, 11, 100))
            .collect();
        o[3].error = Some(RequestError::new(ErrorKind::Timeout, "slow"));
        let run = RepRun {
            observations: o,
            wall: Duration::from_millis(500),
            load: Load::Closed { concurrency: 1 },
        };
        let s = summarize(
            &run,
            &Slo {
                ttft_ms: Some(25.0),
                ..Slo::default()
            },
        );
        assert_eq!(s.metrics["output_tokens_per_s"], 33.0 / 0.5);
        assert_eq!(s.metrics["requests_per_s"], 6.0);
        assert_eq!(s.metrics["goodput_requests_per_s"], 4.0);
        assert_eq!(s.metrics["error_rate"], 0.25);
        assert_eq!(s.metrics["ttft_p50_ms"], 20.0);
        assert_eq!(s.metrics["itl_p99_ms"], 2.0);
        // tpot: (100 - ttft) / 10 tokens
        assert_eq!(s.metrics["tpot_p50_ms"], 8.0);
        assert_eq!(s.errors[&ErrorKind::Timeout].0, 1);
        assert!(s.error_text().contains("1 timeout"));
    }

    #[test]
    fn an_under_delivering_sender_is_named() {
        let mut o: Vec<_> = (0..100).map(|i| obs(i, 5, 3, 10)).collect();
        for x in &mut o {
            x.send_lag = Duration::from_millis(x.index as u64 * 10);
        }
        let run = RepRun {
            observations: o,
            wall: Duration::from_secs(2),
            load: Load::Poisson {
                rate: 100.0,
                seed: 1,
            },
        };
        let s = summarize(&run, &Slo::default());
        let msg = s.under_delivered.unwrap();
        assert!(msg.contains("of the configured 100.00"), "{msg}");
        assert!(s.metrics["load_delivered_ratio"] < 0.6);
    }
}
