//! What the cache costs a trial: one lookup (hit and miss) in a store holding 1,000 and 10,000
//! measurements of 15 reps × 12 metrics, on SQLite and (when `L1_TEST_POSTGRES` names a server)
//! PostgreSQL; and the insert a measured trial pays. `cargo bench -p l1-store --bench cache_lookup`.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use l1_store::{KeyParts, Location, MeasurementRow, NewRun, Store};

fn row(run: &str, i: usize) -> MeasurementRow {
    MeasurementRow {
        run_id: run.into(),
        key: format!("k{i}"),
        spec: "bench".into(),
        engine: "vllm".into(),
        target_version: "0.32".into(),
        engine_version: Some("0.32.0".into()),
        model: "m".into(),
        hardware: "h".into(),
        workload: "w".into(),
        combo: format!("combo-{i}"),
        combo_hash: format!("{i:012}"),
        catalog_snapshot: "v3".into(),
        parts: Some(KeyParts {
            catalog_version: 3,
            model_hash: "m".into(),
            hardware_fingerprint: "h".into(),
            workload_fingerprint: "w".into(),
            plan_hash: "p".into(),
            cache_key: format!("ck{i}"),
        }),
        simulated: false,
        started_unix_s: l1_store::now_unix(),
        duration_s: 30.0,
        error: None,
        cache_from: None,
        cacheable: true,
        reps: (0..15)
            .map(|r| {
                (0..12)
                    .map(|m| (format!("metric_{m}"), (r * m) as f64))
                    .collect::<BTreeMap<_, _>>()
            })
            .collect(),
        record: "{}".repeat(1000),
    }
}

fn populated(loc: &Location, n: usize) -> Store {
    let mut s = Store::open(loc).unwrap();
    s.begin_run(&NewRun {
        run_id: "bench".into(),
        mode: "sweep".into(),
        label: None,
        started_unix_s: l1_store::now_unix(),
        harness_version: "0".into(),
        hardware_fingerprint: "h".into(),
        hardware: "h".into(),
        host: "h".into(),
        catalog_snapshot: "v3".into(),
    })
    .unwrap();
    let rows: Vec<MeasurementRow> = (0..n).map(|i| row("bench", i)).collect();
    for chunk in rows.chunks(500) {
        s.insert_all(chunk, &[]).unwrap();
    }
    s
}

fn locations(n: usize) -> Vec<(String, Location)> {
    let dir = std::env::temp_dir().join(format!("l1-bench-store-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut out = vec![("sqlite".into(), Location::Sqlite(dir.join("s.sqlite")))];
    if let Ok(admin) = std::env::var("L1_TEST_POSTGRES") {
        let name = format!("l1bench_{}_{n}", std::process::id());
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        out.push((
            "postgres".into(),
            Location::Postgres(format!("{base}/{name}")),
        ));
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("cache");
    g.sample_size(20);
    for n in [1_000usize, 10_000] {
        for (backend, loc) in locations(n) {
            let mut s = populated(&loc, n);
            let cutoff = l1_store::now_unix() - l1_store::CACHE_TTL_S;
            g.bench_with_input(
                BenchmarkId::new(format!("hit/{backend}"), n),
                &n,
                |b, &n| {
                    let mut i = 0;
                    b.iter(|| {
                        i = (i + 7919) % n;
                        black_box(s.cache_lookup(&format!("ck{i}"), cutoff).unwrap().unwrap());
                    });
                },
            );
            g.bench_with_input(
                BenchmarkId::new(format!("miss/{backend}"), n),
                &n,
                |b, _| {
                    b.iter(|| black_box(s.cache_lookup("absent", cutoff).unwrap()));
                },
            );
            let mut next = n;
            g.bench_with_input(
                BenchmarkId::new(format!("insert/{backend}"), n),
                &n,
                |b, _| {
                    b.iter(|| {
                        next += 1;
                        s.insert_measurement(&row("bench", next)).unwrap()
                    });
                },
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
