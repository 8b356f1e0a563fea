//! The load generator against the fixed-latency fixture: protocols, arrival, and every fault
//! counted per kind (never a panic).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use l1_loadgen::fixture::{Fault, Fixture, FixtureConfig};
use l1_loadgen::{ErrorKind, HttpApi, HttpBackend, Load, RequestSpec, Slo, driver, summarize};

fn requests(n: usize, max_tokens: u32) -> Vec<RequestSpec> {
    (0..n)
        .map(|i| RequestSpec {
            index: i,
            prompt: "one two three four".into(),
            target_input_tokens: 4,
            max_tokens,
        })
        .collect()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn every_protocol_streams_and_counts_tokens() {
    let fx = Fixture::start(FixtureConfig::default(), 1).unwrap();
    let rt = rt();
    for api in [
        HttpApi::OpenAiCompletions,
        HttpApi::OpenAiChat,
        HttpApi::KServeGenerateStream,
    ] {
        let b = Arc::new(HttpBackend::new(&fx.base_url(), api, "m").unwrap());
        let run = driver::run(
            &rt,
            b,
            requests(6, 8),
            &Load::Closed { concurrency: 3 },
            Duration::from_secs(10),
        );
        let s = summarize(&run, &Slo::default());
        assert_eq!(s.metrics["error_rate"], 0.0, "{api:?}: {}", s.error_text());
        for o in &run.observations {
            assert_eq!(o.output_tokens, 8, "{api:?}");
            assert_eq!(o.itl.len(), 7);
            // The fixture waits 5 ms before the first token: TTFT can only be longer.
            assert!(o.ttft.unwrap() >= Duration::from_millis(5), "{api:?} {o:?}");
            assert!(o.e2e >= o.ttft.unwrap());
        }
        assert_eq!(
            s.all_counted_from_usage,
            api != HttpApi::KServeGenerateStream
        );
        assert!(s.metrics["output_tokens_per_s"] > 0.0);
    }
}

#[test]
fn each_fault_is_counted_by_kind() {
    let cases = [
        (Fault::Http500, ErrorKind::HttpStatus, "HTTP 500"),
        (Fault::MalformedSse, ErrorKind::Malformed, "unexpected line"),
        (Fault::BadJson, ErrorKind::Malformed, "not JSON"),
        (Fault::DropMidStream, ErrorKind::Incomplete, ""),
        (
            Fault::ErrorEvent,
            ErrorKind::EngineError,
            "injected engine error",
        ),
        (Fault::Stall, ErrorKind::Timeout, "no complete response"),
    ];
    let rt = rt();
    for (fault, kind, text) in cases {
        let fx = Fixture::start(
            FixtureConfig {
                fault: Some((fault, 2)),
                ..FixtureConfig::default()
            },
            1,
        )
        .unwrap();
        let b =
            Arc::new(HttpBackend::new(&fx.base_url(), HttpApi::OpenAiCompletions, "m").unwrap());
        let run = driver::run(
            &rt,
            b,
            requests(6, 4),
            &Load::Closed { concurrency: 2 },
            Duration::from_millis(800),
        );
        let s = summarize(&run, &Slo::default());
        assert_eq!(s.errors.len(), 1, "{fault:?}: {}", s.error_text());
        let (n, example) = &s.errors[&kind];
        assert_eq!(*n, 3, "{fault:?}: {}", s.error_text());
        assert!(example.contains(text), "{fault:?}: {example}");
        assert_eq!(s.metrics["error_rate"], 0.5);
    }
}

#[test]
fn a_dead_server_is_a_connect_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let rt = rt();
    let b = Arc::new(
        HttpBackend::new(
            &format!("http://127.0.0.1:{port}"),
            HttpApi::OpenAiChat,
            "m",
        )
        .unwrap(),
    );
    let run = driver::run(
        &rt,
        b,
        requests(3, 4),
        &Load::Closed { concurrency: 1 },
        Duration::from_secs(2),
    );
    let s = summarize(&run, &Slo::default());
    assert_eq!(s.errors[&ErrorKind::Connect].0, 3);
    assert_eq!(s.metrics["error_rate"], 1.0);
}

#[test]
fn open_loop_latency_counts_from_the_intended_time() {
    // 40 req/s for 30 requests against a 5 ms / 1 ms fixture: the generator keeps up, so the
    // delivered ratio is near 1 and the send lag small relative to the 25 ms mean gap.
    let fx = Fixture::start(FixtureConfig::default(), 1).unwrap();
    let rt = rt();
    let b = Arc::new(HttpBackend::new(&fx.base_url(), HttpApi::OpenAiCompletions, "m").unwrap());
    let load = Load::Poisson {
        rate: 40.0,
        seed: 3,
    };
    let run = driver::run(&rt, b, requests(30, 4), &load, Duration::from_secs(10));
    let s = summarize(&run, &Slo::default());
    assert_eq!(s.metrics["error_rate"], 0.0);
    let schedule = driver::poisson_schedule(30, 40.0, 3);
    for (o, at) in run.observations.iter().zip(&schedule) {
        assert_eq!(o.intended, *at);
        assert!(o.e2e >= o.send_lag);
    }
    assert!(s.under_delivered.is_none(), "{:?}", s.under_delivered);
}

#[test]
fn empty_text_events_are_not_tokens() {
    // pytriton's decoupled models send `"text_output": ""` to requests of a batch that already
    // finished; the fixture sends one empty event before the first token (at once, before its
    // 5 ms TTFT) and three after the last. Only the 8 real tokens count, and TTFT is the first
    // non-empty one's.
    let fx = Fixture::start(
        FixtureConfig {
            fault: Some((Fault::EmptyEvents, 1)),
            ..FixtureConfig::default()
        },
        1,
    )
    .unwrap();
    let rt = rt();
    for api in [HttpApi::KServeGenerateStream, HttpApi::OpenAiCompletions] {
        let b = Arc::new(HttpBackend::new(&fx.base_url(), api, "m").unwrap());
        let run = driver::run(
            &rt,
            b,
            requests(4, 8),
            &Load::Closed { concurrency: 2 },
            Duration::from_secs(10),
        );
        let s = summarize(&run, &Slo::default());
        assert_eq!(s.metrics["error_rate"], 0.0, "{api:?}: {}", s.error_text());
        for o in &run.observations {
            assert_eq!(o.output_tokens, 8, "{api:?} {o:?}");
            assert_eq!(o.itl.len(), 7, "{api:?} {o:?}");
            assert!(o.ttft.unwrap() >= Duration::from_millis(5), "{api:?} {o:?}");
            // The trailing empty events (one per 1 ms) still hold the stream open: 7 gaps
            // between tokens and 3 after them (1 ms of slack for the client's timing).
            assert!(
                o.e2e >= o.ttft.unwrap() + Duration::from_millis(9),
                "{api:?} {o:?}"
            );
        }
    }
}
