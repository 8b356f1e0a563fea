//! Many writer processes at once, and writers killed mid-transaction, on both backends. The test
//! binary re-runs itself as the writer (`child_writer`, a no-op unless `L1_STORE_CHILD` is set).
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{backends, measurement, run, trial};
use l1_store::{Location, Store};

const WRITERS: usize = 16;
const SHARED: usize = 20;
const OWN: usize = 10;

fn location_arg(loc: &Location) -> String {
    match loc {
        Location::Sqlite(p) => p.display().to_string(),
        Location::Postgres(u) => u.clone(),
    }
}

fn spawn_child(role: &str, loc: &Location, id: usize, extra: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_writer",
        "--nocapture",
        "--test-threads",
        "1",
    ])
    .env("L1_STORE_CHILD", role)
    .env("L1_STORE_CHILD_LOCATION", location_arg(loc))
    .env("L1_STORE_CHILD_ID", id.to_string())
    .stdout(Stdio::null())
    .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// The writer side. Roles: `write` (shared and own measurements, trials), `hold` (open a
/// transaction, write half a measurement, signal, wait to be killed), `loop` (write big
/// measurements as fast as it can until killed).
#[test]
fn child_writer() {
    let Ok(role) = std::env::var("L1_STORE_CHILD") else {
        return;
    };
    let loc = Location::parse(&std::env::var("L1_STORE_CHILD_LOCATION").unwrap());
    let id: usize = std::env::var("L1_STORE_CHILD_ID").unwrap().parse().unwrap();
    let mut s = Store::open(&loc).unwrap();
    s.begin_run(&run("conc")).unwrap();
    match role.as_str() {
        "write" => {
            for i in 0..SHARED {
                // Every writer offers the same shared measurements: exactly one insert wins.
                s.insert_measurement(&measurement("conc", &format!("shared-{i}"), "ck", 5))
                    .unwrap();
            }
            for i in 0..OWN {
                let key = format!("w{id}-{i}");
                s.insert_measurement(&measurement("conc", &key, "ck", 7))
                    .unwrap();
                s.insert_trial(&trial("conc", &format!("trial-{key}"), true, Some(&key)))
                    .unwrap();
            }
        }
        "hold" => {
            let marker = std::env::var("L1_STORE_CHILD_MARKER").unwrap();
            let _ = s.transaction(|tx| {
                tx.execute(
                    "INSERT INTO measurements (run_id, key, spec, engine, target_version, model, hardware, workload, combo, combo_hash, catalog_snapshot, simulated, started_unix_s, duration_s, reps, cacheable, record, ingested_unix_s) VALUES ('conc', 'half', 's', 'e', 'v', 'm', 'h', 'w', 'c', 'x', 'v3', 0, 0, 0, 3, 1, '{}', 0)",
                    &[],
                )?;
                tx.execute(
                    "INSERT INTO rep_metrics (run_id, key, rep, metric, value) VALUES ('conc', 'half', 0, 'output_tokens_per_s', 1.0)",
                    &[],
                )?;
                std::fs::write(&marker, "in transaction").unwrap();
                std::thread::sleep(Duration::from_secs(120));
                Ok(())
            });
            panic!("the parent should have killed this writer");
        }
        "loop" => {
            for i in 0.. {
                s.insert_measurement(&measurement("conc", &format!("loop{id}-{i}"), "ck", 200))
                    .unwrap();
            }
        }
        other => panic!("unknown child role {other}"),
    }
}

#[test]
fn sixteen_concurrent_writers_lose_and_duplicate_nothing() {
    for (backend, loc) in backends("writers") {
        // Create the schema first so the writers race on data, then again on a fresh store so
        // they also race on the migration.
        for premigrate in [true, false] {
            let loc = match (&loc, premigrate) {
                (l, true) => l.clone(),
                (Location::Sqlite(_), false) => Location::Sqlite(common::sqlite_path("writers2")),
                (Location::Postgres(_), false) => {
                    Location::Postgres(common::postgres_db("writers2").unwrap())
                }
            };
            if premigrate {
                Store::open(&loc).unwrap();
            }
            let children: Vec<Child> = (0..WRITERS)
                .map(|i| spawn_child("write", &loc, i, &[]))
                .collect();
            for mut c in children {
                let status = c.wait().unwrap();
                assert!(status.success(), "{backend}: a writer failed: {status}");
            }
            let mut s = Store::open(&loc).unwrap();
            let ms = s.measurements("conc").unwrap();
            assert_eq!(
                ms.len(),
                SHARED + WRITERS * OWN,
                "{backend} premigrate={premigrate}"
            );
            assert!(
                ms.iter()
                    .all(|m| m.reps.len() == if m.key.starts_with("shared") { 5 } else { 7 })
            );
            assert_eq!(s.trials("conc").unwrap().len(), WRITERS * OWN);
            assert!(s.incomplete_measurements().unwrap().is_empty());
            let reps = s.query("SELECT COUNT(*) FROM rep_metrics", &[]).unwrap()[0]
                .int(0)
                .unwrap();
            assert_eq!(
                reps as usize,
                (SHARED * 5 + WRITERS * OWN * 7) * 2,
                "{backend}"
            );
            assert_eq!(
                s.current_schema_version().unwrap(),
                l1_store::schema_version()
            );
        }
    }
}

#[test]
fn a_writer_killed_mid_transaction_leaves_nothing() {
    for (backend, loc) in backends("killed") {
        Store::open(&loc).unwrap();
        let marker =
            std::env::temp_dir().join(format!("l1-store-marker-{}-{backend}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let mut child = spawn_child(
            "hold",
            &loc,
            0,
            &[("L1_STORE_CHILD_MARKER", marker.display().to_string())],
        );
        let t0 = Instant::now();
        while !marker.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(60),
                "{backend}: the writer never started its transaction"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().unwrap(); // SIGKILL: no destructor, no rollback by the client
        child.wait().unwrap();
        // PostgreSQL ends the dead session's transaction when it notices the socket closed.
        let mut s = Store::open(&loc).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let half = loop {
            let n = s
                .query("SELECT COUNT(*) FROM measurements WHERE key = 'half'", &[])
                .unwrap()[0]
                .int(0)
                .unwrap();
            let r = s
                .query("SELECT COUNT(*) FROM rep_metrics WHERE key = 'half'", &[])
                .unwrap()[0]
                .int(0)
                .unwrap();
            if n + r == 0 || Instant::now() > deadline {
                break (n, r);
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(
            half,
            (0, 0),
            "{backend}: nothing of the killed transaction is visible"
        );
        // The store takes writes again (the dead writer's lock is gone).
        s.begin_run(&run("after")).unwrap();
        assert!(
            s.insert_measurement(&measurement("after", "k", "ck", 3))
                .unwrap()
        );
        if let Location::Sqlite(_) = loc {
            let ok = s.query("PRAGMA integrity_check", &[]).unwrap()[0]
                .text(0)
                .unwrap();
            assert_eq!(ok, "ok");
        }
    }
}

#[test]
fn writers_killed_at_random_points_leave_only_whole_measurements() {
    for (backend, loc) in backends("randomkill") {
        Store::open(&loc).unwrap();
        // Kill times spread over a few hundred milliseconds of busy writing.
        for (round, delay_ms) in [150_u64, 230, 310, 420].into_iter().enumerate() {
            let children: Vec<Child> = (0..4)
                .map(|i| spawn_child("loop", &loc, round * 10 + i, &[]))
                .collect();
            std::thread::sleep(Duration::from_millis(delay_ms + 500));
            for mut c in children {
                c.kill().unwrap();
                c.wait().unwrap();
            }
        }
        let mut s = Store::open(&loc).unwrap();
        let written = s.measurements("conc").unwrap();
        assert!(
            !written.is_empty(),
            "{backend}: the writers wrote something before dying"
        );
        assert!(
            written.iter().all(|m| m.reps.len() == 200),
            "{backend}: every visible measurement has all its reps"
        );
        assert!(s.incomplete_measurements().unwrap().is_empty(), "{backend}");
        eprintln!(
            "{backend}: {} whole measurements survived 16 kills",
            written.len()
        );
    }
}
