//! The store's behaviour, on SQLite and on a real PostgreSQL server (see `common`).
#![allow(clippy::unwrap_used)]

mod common;

use common::{backends, measurement, run, trial};
use l1_store::{CacheFilter, Location, RunFilter, RunStatus, Store, StoreError};

#[test]
fn measurements_and_trials_round_trip_once() {
    for (backend, loc) in backends("roundtrip") {
        let mut s = Store::open(&loc).unwrap();
        assert_eq!(
            s.current_schema_version().unwrap(),
            l1_store::schema_version()
        );
        s.begin_run(&run("r1")).unwrap();
        let m = measurement("r1", "k1", "ck1", 5);
        assert!(s.insert_measurement(&m).unwrap(), "{backend}");
        // The first write wins; a second ingest of the same record changes nothing.
        let mut other = m.clone();
        other.duration_s = 99.0;
        assert!(!s.insert_measurement(&other).unwrap(), "{backend}");
        assert!(
            s.insert_trial(&trial("r1", "t1", true, Some("k1")))
                .unwrap()
        );
        assert!(!s.insert_trial(&trial("r1", "t1", false, None)).unwrap());
        assert!(s.insert_trial(&trial("r1", "t2", false, None)).unwrap());
        // 250 reps × 2 metrics: 500 rep rows, written in several multi-row statements.
        let many = measurement("r1", "k-many", "ck-many", 250);
        assert!(s.insert_measurement(&many).unwrap(), "{backend}");
        let back = s.measurements("r1").unwrap();
        assert_eq!(back.len(), 2, "{backend}");
        let by_key = |k: &str| back.iter().find(|b| b.key == k).unwrap();
        assert_eq!(
            by_key("k1"),
            &m,
            "{backend}: every field and every rep comes back"
        );
        assert_eq!(
            by_key("k-many"),
            &many,
            "{backend}: across insert chunks too"
        );
        // One measurement of one run, by key (what another runner of the run looks up).
        assert_eq!(s.run_measurement("r1", "k1").unwrap().as_ref(), Some(&m));
        assert_eq!(
            s.run_measurement("r1", "k-none").unwrap(),
            None,
            "{backend}"
        );
        assert_eq!(s.run_measurement("r2", "k1").unwrap(), None, "{backend}");
        let trials = s.trials("r1").unwrap();
        assert_eq!(trials.len(), 2);
        assert!(trials[0].passed && !trials[1].passed);
        let runs = s.list_runs(&RunFilter::default()).unwrap();
        assert_eq!(runs.len(), 1);
        let r = &runs[0];
        assert_eq!(
            (
                r.trials_passed,
                r.trials_failed,
                r.measurements,
                r.cache_hits
            ),
            (1, 1, 2, 0),
            "{backend}"
        );
        assert_eq!(r.status, RunStatus::Unfinished);
        assert_eq!(r.specs, vec!["spec-a".to_string()]);
        assert_eq!(r.engines, vec!["llamacpp".to_string()]);
        assert!(s.incomplete_measurements().unwrap().is_empty());
        // Reopening migrates nothing and keeps everything.
        drop(s);
        let mut s = Store::open(&loc).unwrap();
        assert_eq!(s.measurements("r1").unwrap().len(), 2);
    }
}

#[test]
fn the_cache_answers_only_valid_entries() {
    for (backend, loc) in backends("cache") {
        let mut s = Store::open(&loc).unwrap();
        let now = l1_store::now_unix();
        s.begin_run(&run("old")).unwrap();
        s.begin_run(&run("new")).unwrap();
        // An entry 31 days old has outlived the TTL.
        let mut stale = measurement("old", "k", "ck-stale", 3);
        stale.started_unix_s = now - 31.0 * 86_400.0;
        s.insert_measurement(&stale).unwrap();
        let cutoff = now - l1_store::CACHE_TTL_S;
        assert!(
            s.cache_lookup("ck-stale", cutoff).unwrap().is_none(),
            "{backend}: TTL"
        );
        // A failed measurement never answers.
        let mut failed = measurement("new", "kf", "ck-failed", 0);
        failed.error = Some("engine crashed".into());
        s.insert_measurement(&failed).unwrap();
        assert!(s.cache_lookup("ck-failed", cutoff).unwrap().is_none());
        // A measurement taken with caching off (`L1_CACHE=read`/`off`) never answers.
        let mut private = measurement("new", "kp", "ck-private", 3);
        private.cacheable = false;
        s.insert_measurement(&private).unwrap();
        assert!(s.cache_lookup("ck-private", cutoff).unwrap().is_none());
        // The newest of two valid entries answers.
        let mut older = measurement("old", "k2", "ck", 3);
        older.started_unix_s = now - 86_400.0;
        s.insert_measurement(&older).unwrap();
        let newer = measurement("new", "k2", "ck", 4);
        s.insert_measurement(&newer).unwrap();
        let hit = s.cache_lookup("ck", cutoff).unwrap().unwrap();
        assert_eq!(
            (hit.run_id.as_str(), hit.reps.len()),
            ("new", 4),
            "{backend}"
        );
        // A hit recorded in a third run never answers itself: its TTL runs from the original.
        s.begin_run(&run("third")).unwrap();
        let mut copy = measurement("third", "k2", "ck", 4);
        copy.cache_from = Some(("new".into(), "k2".into()));
        s.insert_measurement(&copy).unwrap();
        assert_eq!(s.cache_lookup("ck", cutoff).unwrap().unwrap().run_id, "new");
        let stats = s.cache_stats(now).unwrap();
        assert_eq!(
            (stats.valid, stats.expired, stats.flushed, stats.hits),
            (2, 1, 0, 1),
            "{backend}: {stats:?}"
        );
        // Deleting a run takes its entries out of the cache.
        s.delete_run("new").unwrap();
        assert_eq!(s.cache_lookup("ck", cutoff).unwrap().unwrap().run_id, "old");
        // Flushing by engine: other engines' entries stay.
        let mut vllm = measurement("old", "kv", "ck-vllm", 3);
        vllm.engine = "vllm".into();
        s.insert_measurement(&vllm).unwrap();
        let n = s
            .cache_flush(
                &CacheFilter {
                    engine: Some("llamacpp".into()),
                    ..CacheFilter::default()
                },
                now,
            )
            .unwrap();
        assert_eq!(
            n, 3,
            "{backend}: the stale, the older and the deleted run's entry"
        );
        assert!(s.cache_lookup("ck", cutoff).unwrap().is_none());
        assert!(s.cache_lookup("ck-vllm", cutoff).unwrap().is_some());
        // The history keeps flushed measurements.
        assert_eq!(s.measurements("old").unwrap().len(), 3);
    }
}

#[test]
fn run_lifecycle_filters_and_pagination() {
    for (backend, loc) in backends("lifecycle") {
        let mut s = Store::open(&loc).unwrap();
        for i in 0..5 {
            let mut r = run(&format!("run-{i}"));
            r.started_unix_s = 1_000.0 + i as f64;
            r.label = (i % 2 == 0).then(|| "main".to_string());
            s.begin_run(&r).unwrap();
        }
        let mut t = trial("run-3", "x", true, None);
        t.engine = "vllm".into();
        t.spec = "spec-b".into();
        s.insert_trial(&t).unwrap();
        s.finish_run("run-1", true).unwrap();
        s.finish_run("run-2", false).unwrap();
        s.request_cancel("run-4").unwrap();
        assert!(s.cancel_requested("run-4").unwrap().is_some());
        assert!(s.cancel_requested("run-3").unwrap().is_none());
        let ids = |rows: Vec<l1_store::RunRow>| -> Vec<String> {
            rows.into_iter().map(|r| r.run.run_id).collect()
        };
        let all = s.list_runs(&RunFilter::default()).unwrap();
        assert_eq!(
            ids(all.clone()),
            ["run-4", "run-3", "run-2", "run-1", "run-0"],
            "{backend}: newest first"
        );
        let status: Vec<&str> = all.iter().map(|r| r.status.as_str()).collect();
        assert_eq!(
            status,
            ["cancelled", "unfinished", "failed", "passed", "unfinished"]
        );
        let page = s
            .list_runs(&RunFilter {
                limit: Some(2),
                offset: 1,
                ..RunFilter::default()
            })
            .unwrap();
        assert_eq!(ids(page), ["run-3", "run-2"]);
        let f = |filter: RunFilter, s: &mut Store| ids(s.list_runs(&filter).unwrap());
        assert_eq!(
            f(
                RunFilter {
                    engine: Some("vllm".into()),
                    ..RunFilter::default()
                },
                &mut s
            ),
            ["run-3"]
        );
        assert_eq!(
            f(
                RunFilter {
                    spec: Some("spec-b".into()),
                    ..RunFilter::default()
                },
                &mut s
            ),
            ["run-3"]
        );
        assert_eq!(
            f(
                RunFilter {
                    status: Some(RunStatus::Unfinished),
                    ..RunFilter::default()
                },
                &mut s
            ),
            ["run-3", "run-0"]
        );
        assert_eq!(
            f(
                RunFilter {
                    since_unix_s: Some(1_003.0),
                    ..RunFilter::default()
                },
                &mut s
            ),
            ["run-4", "run-3"]
        );
        assert_eq!(
            f(
                RunFilter {
                    label: Some("main".into()),
                    ..RunFilter::default()
                },
                &mut s
            ),
            ["run-4", "run-2", "run-0"]
        );
        // Soft delete: gone from listings, still there for `--deleted`, and still readable.
        s.delete_run("run-0").unwrap();
        assert_eq!(s.list_runs(&RunFilter::default()).unwrap().len(), 4);
        let with_deleted = s
            .list_runs(&RunFilter {
                include_deleted: true,
                ..RunFilter::default()
            })
            .unwrap();
        assert_eq!(with_deleted.len(), 5);
        assert!(s.run("run-0").unwrap().unwrap().deleted_unix_s.is_some());
        // Unknown runs: a clear error with a suggestion.
        let err = s.request_cancel("run-9").unwrap_err().to_string();
        assert!(err.contains("unknown run `run-9`"), "{backend}: {err}");
        let err = s.delete_run("nope").unwrap_err().to_string();
        assert!(err.contains("`l1 runs list`"), "{err}");
        let err = s.delete_run("run-").unwrap_err().to_string();
        assert!(err.contains("did you mean"), "{err}");
    }
}

#[test]
fn catalog_snapshots_and_specs_are_kept() {
    for (backend, loc) in backends("snapshots") {
        let mut s = Store::open(&loc).unwrap();
        s.record_catalog_snapshot("v3-abc", 3, "version: 3\n")
            .unwrap();
        s.record_catalog_snapshot("v3-abc", 3, "changed").unwrap();
        s.record_catalog_snapshot("v4-def", 4, "version: 4\n")
            .unwrap();
        let snaps = s.catalog_snapshots().unwrap();
        assert_eq!(snaps.len(), 2, "{backend}");
        assert_eq!(
            s.catalog_snapshot("v3-abc").unwrap().as_deref(),
            Some("version: 3\n"),
            "the first recording is kept"
        );
        assert!(s.catalog_snapshot("v9").unwrap().is_none());
        s.begin_run(&run("r")).unwrap();
        s.record_spec("r", "spec-a", "specs/a.yaml", "{{ x }}", "x: 1")
            .unwrap();
        let specs = s.run_specs("r").unwrap();
        assert_eq!(specs[0].3, "x: 1");
    }
}

#[test]
fn bad_stores_give_clear_errors() {
    // A corrupted SQLite file: named, and left as it was (nothing overwritten).
    let path = common::sqlite_path("corrupt");
    std::fs::write(
        &path,
        b"this is not a database, it is a text file that got in the way\n".repeat(100),
    )
    .unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = Store::open(&Location::Sqlite(path.clone())).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, StoreError::Open { .. })
            && msg.contains(&path.display().to_string())
            && msg.contains("not an l1 store"),
        "{msg}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // Another application's SQLite database.
    let path = common::sqlite_path("foreign");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch("CREATE TABLE invoices (id INTEGER); INSERT INTO invoices VALUES (1);")
            .unwrap();
    }
    let msg = Store::open(&Location::Sqlite(path.clone()))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("is not an l1 store") && msg.contains("invoices"),
        "{msg}"
    );

    // A store written by a newer l1.
    for (backend, loc) in backends("toonew") {
        let mut s = Store::open(&loc).unwrap();
        s.execute(
            "INSERT INTO schema_migrations (version, name, applied_unix_s) VALUES (?1, ?2, ?3)",
            &[99_i64.into(), "future".into(), 0.0.into()],
        )
        .unwrap();
        drop(s);
        let msg = Store::open(&loc).unwrap_err().to_string();
        assert!(
            msg.contains("schema version 99") && msg.contains("newer"),
            "{backend}: {msg}"
        );
    }

    // An unreachable PostgreSQL server (nothing listens on port 1): a clear error, password hidden.
    let msg = Store::open(&Location::parse("postgres://l1:hunter2@127.0.0.1:1/l1"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("failed to open the results store postgres://l1:***@127.0.0.1:1/l1")
            && !msg.contains("hunter2"),
        "{msg}"
    );
}
