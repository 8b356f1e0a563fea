//! Test backends: a fresh SQLite file, and a fresh database on the PostgreSQL server named by
//! `L1_TEST_POSTGRES` (an admin URL such as `postgres://l1:l1@127.0.0.1:5432/postgres`, which
//! `.ci/run` sets after starting Debian's server). Without it the PostgreSQL half is skipped with
//! the reason, unless `L1_REQUIRE_ENGINES=1` or `L1_REQUIRE_POSTGRES=1` (CI), where it fails.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use l1_store::{Location, MeasurementRow, NewRun, TrialRow};

static N: AtomicUsize = AtomicUsize::new(0);

/// A new, empty store location per call: `(backend name, location)`.
pub fn backends(test: &str) -> Vec<(&'static str, Location)> {
    let mut out = vec![("sqlite", Location::Sqlite(sqlite_path(test)))];
    match postgres_db(test) {
        Some(url) => out.push(("postgres", Location::Postgres(url))),
        None => {
            let required = ["L1_REQUIRE_ENGINES", "L1_REQUIRE_POSTGRES"]
                .iter()
                .any(|v| std::env::var(v).is_ok_and(|x| x == "1"));
            assert!(
                !required,
                "L1_TEST_POSTGRES is not set, and L1_REQUIRE_ENGINES/L1_REQUIRE_POSTGRES=1 requires the PostgreSQL half of the store tests (.ci/run starts a server and sets it)"
            );
            eprintln!(
                "{test}: PostgreSQL half SKIPPED: L1_TEST_POSTGRES is not set (an admin URL of a running server; .ci/run sets it)"
            );
        }
    }
    out
}

pub fn sqlite_path(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "l1-store-{test}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("store.sqlite")
}

/// Create a fresh database on the test server and return its URL.
pub fn postgres_db(test: &str) -> Option<String> {
    let admin = std::env::var("L1_TEST_POSTGRES").ok()?;
    let name = format!(
        "l1t_{}_{}_{}",
        test.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
    .to_lowercase();
    let mut client = postgres::Client::connect(&admin, postgres::NoTls)
        .unwrap_or_else(|e| panic!("L1_TEST_POSTGRES={admin}: cannot connect: {e}"));
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap();
    // Same server and credentials, the new database.
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
    Some(format!("{base}/{name}"))
}

pub fn run(id: &str) -> NewRun {
    NewRun {
        run_id: id.into(),
        mode: "sweep".into(),
        label: None,
        started_unix_s: l1_store::now_unix(),
        harness_version: "0.1.0".into(),
        hardware_fingerprint: "hw-1".into(),
        hardware: "cpu: test".into(),
        host: "host".into(),
        catalog_snapshot: "v3-abc".into(),
    }
}

pub fn measurement(run_id: &str, key: &str, cache_key: &str, reps: usize) -> MeasurementRow {
    MeasurementRow {
        run_id: run_id.into(),
        key: key.into(),
        spec: "spec-a".into(),
        engine: "llamacpp".into(),
        target_version: "b6000".into(),
        engine_version: Some("b6300".into()),
        model: "tiny".into(),
        hardware: "cpu".into(),
        workload: "w".into(),
        combo: "attention_backend=flash_attn_v2".into(),
        combo_hash: "c0ffee".into(),
        catalog_snapshot: "v3-abc".into(),
        parts: Some(l1_store::KeyParts {
            catalog_version: 3,
            model_hash: "m".into(),
            hardware_fingerprint: "hw-1".into(),
            workload_fingerprint: "w".into(),
            plan_hash: "p".into(),
            cache_key: cache_key.into(),
        }),
        simulated: false,
        started_unix_s: l1_store::now_unix(),
        duration_s: 1.5,
        error: None,
        cache_from: None,
        cacheable: true,
        reps: (0..reps)
            .map(|i| {
                BTreeMap::from([
                    ("output_tokens_per_s".to_string(), 100.0 + i as f64),
                    ("ttft_p95_ms".to_string(), 20.0 - i as f64 * 0.1),
                ])
            })
            .collect(),
        record: format!("{{\"key\":\"{key}\"}}"),
    }
}

pub fn trial(run_id: &str, name: &str, passed: bool, measurement: Option<&str>) -> TrialRow {
    TrialRow {
        run_id: run_id.into(),
        name: name.into(),
        spec: "spec-a".into(),
        kind: "combo".into(),
        engine: "llamacpp".into(),
        target_version: "b6000".into(),
        model: "tiny".into(),
        hardware: "cpu".into(),
        workload: "w".into(),
        passed,
        message: "ok".into(),
        measurement_key: measurement.map(Into::into),
        simulated: false,
        duration_s: 0.5,
        cache_hit: false,
        record: "{}".into(),
    }
}
