//! The measurement lock (`l1_store::lock`) on both backends: taking, renewing and releasing it,
//! a lease that runs out, the schema migration that adds it, many claimants measuring each key
//! once, and a holder process SIGKILLed while it holds a lock (the waiter takes over once the
//! lease runs out). The test binary re-runs itself as the holder (`child_holder`, a no-op unless
//! `L1_LOCK_CHILD` is set). No assertion depends on how fast anything runs: waits have generous
//! deadlines, and expiry is checked only after sleeping past the lease.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{backends, measurement, run};
use l1_store::lock::{LockState, claim};
use l1_store::{Claim, Location, LockOptions, LockRequest, Store};

const LONG: Duration = Duration::from_secs(300);

fn location_arg(loc: &Location) -> String {
    match loc {
        Location::Sqlite(p) => p.display().to_string(),
        Location::Postgres(u) => u.clone(),
    }
}

fn held_by(state: &LockState) -> Option<&str> {
    match state {
        LockState::Held { holder, .. } => Some(holder),
        LockState::Acquired { .. } => None,
    }
}

#[test]
fn a_lock_is_taken_once_renewed_released_and_taken_over_when_its_lease_ran_out() {
    for (backend, loc) in backends("lockbasic") {
        let mut s = Store::open(&loc).unwrap();
        let got = s.try_lock_measurement("ck1", "a", "run-a", LONG).unwrap();
        assert_eq!(got, LockState::Acquired { took_over: None }, "{backend}");
        let other = s.try_lock_measurement("ck1", "b", "run-b", LONG).unwrap();
        assert_eq!(held_by(&other), Some("a"), "{backend}: {other:?}");
        let LockState::Held {
            run_id,
            expires_in_s,
            ..
        } = other
        else {
            unreachable!()
        };
        assert_eq!(run_id, "run-a");
        assert!(
            expires_in_s > 0.0 && expires_in_s <= 300.0,
            "{expires_in_s}"
        );
        // Another key is independent.
        assert_eq!(
            s.try_lock_measurement("ck2", "b", "run-b", LONG).unwrap(),
            LockState::Acquired { took_over: None }
        );
        // Only the holder renews or releases.
        assert!(s.renew_measurement_lock("ck1", "a", LONG).unwrap());
        assert!(!s.renew_measurement_lock("ck1", "b", LONG).unwrap());
        assert!(!s.release_measurement_lock("ck1", "b").unwrap());
        let rows = s.measurement_locks().unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| (r.cache_key.as_str(), r.holder.as_str()))
                .collect::<Vec<_>>(),
            [("ck1", "a"), ("ck2", "b")],
            "{backend}"
        );
        assert!(s.release_measurement_lock("ck1", "a").unwrap());
        assert_eq!(
            s.try_lock_measurement("ck1", "b", "run-b", LONG).unwrap(),
            LockState::Acquired { took_over: None },
            "{backend}: free again after release"
        );
        // A short lease, then a sleep well past it: expired, taken over, the old holder's renewal
        // refused.
        let short = Duration::from_millis(300);
        assert_eq!(
            s.try_lock_measurement("ck3", "dead", "run-d", short)
                .unwrap(),
            LockState::Acquired { took_over: None }
        );
        std::thread::sleep(Duration::from_millis(1200));
        let rows = s.measurement_locks().unwrap();
        let dead = rows.iter().find(|r| r.cache_key == "ck3").unwrap();
        assert!(dead.expires_in_s < 0.0, "{backend}: {dead:?}");
        assert_eq!(
            s.try_lock_measurement("ck3", "c", "run-c", LONG).unwrap(),
            LockState::Acquired {
                took_over: Some("dead".into())
            },
            "{backend}"
        );
        assert!(!s.renew_measurement_lock("ck3", "dead", LONG).unwrap());
        assert!(!s.release_measurement_lock("ck3", "dead").unwrap());
        assert_eq!(
            held_by(&s.try_lock_measurement("ck3", "d", "run-d", LONG).unwrap()),
            Some("c")
        );
    }
}

#[test]
fn a_schema_1_store_migrates_to_the_lock_table_and_keeps_its_data() {
    for (backend, loc) in backends("lockmigrate") {
        let mut s = Store::open(&loc).unwrap();
        s.begin_run(&run("old")).unwrap();
        assert!(
            s.insert_measurement(&measurement("old", "k", "ck", 3))
                .unwrap()
        );
        // Back to schema 1, as a store written before the lock existed.
        s.execute("DROP TABLE measurement_locks", &[]).unwrap();
        s.execute("DELETE FROM schema_migrations WHERE version >= 2", &[])
            .unwrap();
        assert_eq!(s.current_schema_version().unwrap(), 1);
        drop(s);
        let mut s = Store::open(&loc).unwrap();
        assert_eq!(s.current_schema_version().unwrap(), 2, "{backend}");
        assert_eq!(l1_store::schema_version(), 2);
        assert_eq!(s.measurements("old").unwrap().len(), 1, "{backend}");
        assert_eq!(
            s.try_lock_measurement("ck", "a", "r", LONG).unwrap(),
            LockState::Acquired { took_over: None },
            "{backend}"
        );
        let names: Vec<String> = s
            .query("SELECT name FROM schema_migrations ORDER BY version", &[])
            .unwrap()
            .iter()
            .map(|r| r.text(0).unwrap())
            .collect();
        assert_eq!(names, ["init", "measurement_locks"], "{backend}");
    }
}

/// Claim `cache_key` on `s` the way the harness does: the cache lookup is the store's, the
/// "measurement" inserts a cacheable measurement of run `run_id` (counted in `measured`).
fn claim_and_measure(
    s: &mut Store,
    loc: &Location,
    cache_key: &str,
    run_id: &str,
    measured: &AtomicUsize,
) -> bool {
    let req = LockRequest {
        location: loc,
        cache_key,
        run_id,
        options: LockOptions::new(Duration::from_secs(30)),
    };
    let store = std::cell::RefCell::new(s);
    let deadline = Instant::now() + LONG;
    let got = claim(
        &req,
        || {
            assert!(
                Instant::now() < deadline,
                "claim of {cache_key} never ended"
            );
            store.borrow_mut().cache_lookup(cache_key, 0.0)
        },
        |k, h, r, lease| store.borrow_mut().try_lock_measurement(k, h, r, lease),
        |k, h| store.borrow_mut().release_measurement_lock(k, h),
    )
    .unwrap();
    match got {
        Claim::Found { .. } => false,
        Claim::Mine { lock, .. } => {
            measured.fetch_add(1, Ordering::SeqCst);
            // Measuring takes a while: the others arrive and wait.
            std::thread::sleep(Duration::from_millis(50));
            let mut m = measurement(run_id, cache_key, cache_key, 3);
            m.key = format!("{cache_key}-{run_id}");
            store.borrow_mut().insert_measurement(&m).unwrap();
            drop(lock);
            true
        }
    }
}

#[test]
fn eight_claimants_measure_each_key_once() {
    const CLAIMANTS: usize = 8;
    const KEYS: usize = 6;
    for (backend, loc) in backends("lockclaim") {
        Store::open(&loc).unwrap();
        let measured = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..CLAIMANTS)
            .map(|i| {
                let (loc, measured) = (loc.clone(), measured.clone());
                std::thread::spawn(move || {
                    // One connection per claimant, as separate processes have.
                    let mut s = Store::open(&loc).unwrap();
                    let run_id = format!("run-{i}");
                    s.begin_run(&run(&run_id)).unwrap();
                    (0..KEYS)
                        .filter(|k| {
                            claim_and_measure(&mut s, &loc, &format!("ck{k}"), &run_id, &measured)
                        })
                        .count()
                })
            })
            .collect();
        let per_claimant: Vec<usize> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(measured.load(Ordering::SeqCst), KEYS, "{backend}");
        assert_eq!(per_claimant.iter().sum::<usize>(), KEYS, "{backend}");
        // The store agrees: one measurement per key, and no lock left behind.
        let mut s = Store::open(&loc).unwrap();
        let n = s
            .query(
                "SELECT COUNT(*), COUNT(DISTINCT cache_key) FROM measurements",
                &[],
            )
            .unwrap();
        assert_eq!(
            (n[0].int(0).unwrap(), n[0].int(1).unwrap()),
            (KEYS as i64, KEYS as i64),
            "{backend}"
        );
        assert!(s.measurement_locks().unwrap().is_empty(), "{backend}");
    }
}

/// The holder side: claim `ck-killed` with the lease `L1_LOCK_CHILD_LEASE_MS`, write the holder's
/// name to the marker file, and wait to be killed (the heartbeat keeps renewing meanwhile).
#[test]
fn child_holder() {
    let Ok(loc) = std::env::var("L1_LOCK_CHILD") else {
        return;
    };
    let loc = Location::parse(&loc);
    let lease: u64 = std::env::var("L1_LOCK_CHILD_LEASE_MS")
        .unwrap()
        .parse()
        .unwrap();
    let marker = std::env::var("L1_LOCK_CHILD_MARKER").unwrap();
    let s = std::cell::RefCell::new(Store::open(&loc).unwrap());
    let req = LockRequest {
        location: &loc,
        cache_key: "ck-killed",
        run_id: "run-child",
        options: LockOptions::new(Duration::from_millis(lease)),
    };
    let got = claim(
        &req,
        || s.borrow_mut().cache_lookup("ck-killed", 0.0),
        |k, h, r, l| s.borrow_mut().try_lock_measurement(k, h, r, l),
        |k, h| s.borrow_mut().release_measurement_lock(k, h),
    )
    .unwrap();
    let Claim::Mine { lock, .. } = got else {
        panic!("nothing should hold or have measured ck-killed yet");
    };
    let tmp = format!("{marker}.tmp");
    std::fs::write(&tmp, lock.holder()).unwrap();
    std::fs::rename(&tmp, &marker).unwrap();
    std::thread::sleep(Duration::from_secs(600));
    panic!("the parent should have killed this holder");
}

#[test]
fn a_holder_killed_while_measuring_blocks_others_only_until_its_lease_runs_out() {
    for (backend, loc) in backends("lockkilled") {
        let mut s = Store::open(&loc).unwrap();
        s.begin_run(&run("survivor")).unwrap();
        let marker =
            std::env::temp_dir().join(format!("l1-lock-marker-{}-{backend}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let lease = Duration::from_secs(3);
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_holder",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("L1_LOCK_CHILD", location_arg(&loc))
            .env("L1_LOCK_CHILD_LEASE_MS", lease.as_millis().to_string())
            .env("L1_LOCK_CHILD_MARKER", &marker)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while !marker.exists() {
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "{backend}: the holder never took the lock"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "{backend}: the holder exited"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let holder = std::fs::read_to_string(&marker).unwrap();
        let _ = std::fs::remove_file(&marker);
        // While the holder lives, its heartbeat pushes the expiry forward.
        let first = s.measurement_locks().unwrap();
        assert_eq!(first.len(), 1, "{backend}: {first:?}");
        assert_eq!(first[0].holder, holder);
        let t0 = Instant::now();
        loop {
            let now = s.measurement_locks().unwrap();
            if now[0].expires_unix_s > first[0].expires_unix_s {
                break;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "{backend}: the holder's heartbeat never renewed its lease"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // A waiter arriving now finds the lock held by the live holder.
        assert_eq!(
            held_by(
                &s.try_lock_measurement("ck-killed", "probe", "survivor", LONG)
                    .unwrap()
            ),
            Some(holder.as_str()),
            "{backend}"
        );
        child.kill().unwrap(); // SIGKILL: no destructor, no release, no more heartbeats
        child.wait().unwrap();
        // The waiter waits for the lease to run out, then takes the lock over and measures.
        let measured = AtomicUsize::new(0);
        let req = LockRequest {
            location: &loc,
            cache_key: "ck-killed",
            run_id: "survivor",
            options: LockOptions::new(lease),
        };
        let store = std::cell::RefCell::new(&mut s);
        let deadline = Instant::now() + LONG;
        let got = claim(
            &req,
            || {
                assert!(
                    Instant::now() < deadline,
                    "{backend}: still waiting for the killed holder's lock"
                );
                store.borrow_mut().cache_lookup("ck-killed", 0.0)
            },
            |k, h, r, l| store.borrow_mut().try_lock_measurement(k, h, r, l),
            |k, h| store.borrow_mut().release_measurement_lock(k, h),
        )
        .unwrap();
        let Claim::Mine { lock, waited_for } = got else {
            panic!("{backend}: the killed holder measured nothing, so the waiter must measure");
        };
        assert_eq!(lock.took_over(), Some(holder.as_str()), "{backend}");
        assert_eq!(
            waited_for,
            Some((holder.clone(), "run-child".to_string())),
            "{backend}"
        );
        measured.fetch_add(1, Ordering::SeqCst);
        store
            .borrow_mut()
            .insert_measurement(&measurement("survivor", "k", "ck-killed", 3))
            .unwrap();
        drop(lock);
        let s = store.into_inner();
        assert!(s.measurement_locks().unwrap().is_empty(), "{backend}");
        // A later claimant finds the measurement and takes no lock.
        let got = claim(
            &req,
            || s.cache_lookup("ck-killed", 0.0),
            |_, _, _, _| -> Result<LockState, l1_store::StoreError> {
                panic!("a cache hit takes no lock")
            },
            |_, _| -> Result<bool, l1_store::StoreError> { panic!("nothing to release") },
        )
        .unwrap();
        assert!(
            matches!(
                got,
                Claim::Found {
                    waited_for: None,
                    ..
                }
            ),
            "{backend}: {got:?}"
        );
        assert_eq!(measured.load(Ordering::SeqCst), 1);
    }
}

/// A row whose lease ran out long ago is swept (a key nobody asks for again, like a killed
/// runner's run lock, would keep its row forever); a live row, and a row that expired only a
/// moment ago (the next waiter takes it over), stay. Taking any lock sweeps with
/// `SWEEP_EXPIRED_AFTER`.
#[test]
fn rows_expired_long_ago_are_swept_and_live_or_recent_ones_kept() {
    let keys = |s: &mut Store| -> Vec<String> {
        (s.measurement_locks().unwrap().into_iter())
            .map(|r| r.cache_key)
            .collect()
    };
    for (backend, loc) in backends("locksweep") {
        let mut s = Store::open(&loc).unwrap();
        let short = Duration::from_millis(100);
        let free = LockState::Acquired { took_over: None };
        assert_eq!(
            s.try_lock_measurement("dead", "d", "run:x", short).unwrap(),
            free
        );
        assert_eq!(
            s.try_lock_measurement("live", "a", "run-a", LONG).unwrap(),
            free
        );
        // Expired at least 1.1 s ago, by the database's clock.
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(
            s.sweep_expired_locks(Duration::from_secs(3600)).unwrap(),
            0,
            "{backend}"
        );
        assert_eq!(keys(&mut s), ["dead", "live"], "{backend}");
        assert_eq!(
            s.sweep_expired_locks(Duration::from_millis(500)).unwrap(),
            1,
            "{backend}"
        );
        assert_eq!(keys(&mut s), ["live"], "{backend}");
        // Taking a lock sweeps only rows expired a day ago: a fresh corpse stays for its waiter.
        assert_eq!(
            s.try_lock_measurement("recent", "d", "run:y", short)
                .unwrap(),
            free
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(
            s.try_lock_measurement("other", "b", "run-b", LONG).unwrap(),
            free
        );
        assert_eq!(keys(&mut s), ["live", "other", "recent"], "{backend}");
        assert!(l1_store::lock::SWEEP_EXPIRED_AFTER >= Duration::from_secs(3600));
    }
}
