//! Tier-2 tune sessions in the store, on SQLite and on a real PostgreSQL server (see `common`):
//! a session is created once (a re-run resumes the stored one), every trial persists the state
//! and its row together and exactly once, `cancelled` is never overwritten by a running worker,
//! `l1 tune resume` reopens, and `seed_from` reads a sweep's stored measurements.
#![allow(clippy::unwrap_used)]

mod common;

use common::{backends, measurement, run};
use l1_store::{Store, TuneSessionRow, TuneTrialRow};

fn session(id: &str, run_id: &str, created: f64) -> TuneSessionRow {
    TuneSessionRow {
        session_id: id.into(),
        run_id: Some(run_id.into()),
        spec: "tune-a".into(),
        target: "llamacpp@b6000::tiny::cpu::w".into(),
        status: "running".into(),
        objective: r#"{"metric":"output_tokens_per_s","direction":"maximize"}"#.into(),
        budget: r#"{"max_trials":5}"#.into(),
        bayesian_state: r#"{"format":1,"observations":[]}"#.into(),
        best_trial: None,
        created_unix_s: created,
        updated_unix_s: created,
    }
}

fn trial(sid: &str, n: i64, outcome: &str, value: Option<f64>) -> TuneTrialRow {
    TuneTrialRow {
        session_id: sid.into(),
        n,
        combo: format!("combo-{n}"),
        measurement_key: Some(format!("key-{n}")),
        outcome: outcome.into(),
        value,
        created_unix_s: l1_store::now_unix(),
    }
}

#[test]
fn tune_sessions_persist_resume_and_keep_a_cancellation() {
    for (backend, loc) in backends("tune") {
        let mut s = Store::open(&loc).unwrap();
        s.begin_run(&run("r1")).unwrap();
        let now = l1_store::now_unix();
        let first = s.begin_tune_session(&session("tune-1", "r1", now)).unwrap();
        assert_eq!(first.status, "running", "{backend}");
        assert_eq!(first.run_id.as_deref(), Some("r1"));

        // Trials: state, best pointer and row in one transaction; a repeated n changes nothing.
        s.record_tune_trial(
            "tune-1",
            r#"{"n":1}"#,
            Some(0),
            &trial("tune-1", 0, "ok", Some(10.5)),
        )
        .unwrap();
        s.record_tune_trial(
            "tune-1",
            r#"{"n":2}"#,
            Some(1),
            &trial("tune-1", 1, "cached", Some(12.25)),
        )
        .unwrap();
        s.record_tune_trial(
            "tune-1",
            r#"{"n":3}"#,
            Some(1),
            &trial("tune-1", 2, "failed", None),
        )
        .unwrap();
        s.record_tune_trial(
            "tune-1",
            r#"{"n":3}"#,
            Some(1),
            &trial("tune-1", 2, "ok", Some(99.0)),
        )
        .unwrap();
        let rows = s.tune_trials("tune-1").unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| (r.n, r.outcome.as_str(), r.value))
                .collect::<Vec<_>>(),
            vec![
                (0, "ok", Some(10.5)),
                (1, "cached", Some(12.25)),
                (2, "failed", None)
            ],
            "{backend}: in order, each once, the first write wins"
        );
        assert_eq!(rows[1].measurement_key.as_deref(), Some("key-1"));
        let back = s.tune_session("tune-1").unwrap().unwrap();
        assert_eq!(back.bayesian_state, r#"{"n":3}"#, "{backend}");
        assert_eq!(back.best_trial, Some(1));

        // A re-run of the same session id resumes the stored session, not the new text.
        let mut again = session("tune-1", "r1", now + 5.0);
        again.bayesian_state = "{}".into();
        let resumed = s.begin_tune_session(&again).unwrap();
        assert_eq!(resumed.bayesian_state, r#"{"n":3}"#, "{backend}");
        assert_eq!(resumed.created_unix_s, back.created_unix_s);

        // Cancel: a running worker's `running`/`finished` never overwrite it; resume reopens.
        assert!(s.set_tune_status("tune-1", "cancelled", None).unwrap());
        s.set_tune_status("tune-1", "running", None).unwrap();
        s.set_tune_status("tune-1", "finished", Some(r#"{"n":4}"#))
            .unwrap();
        let c = s.tune_session("tune-1").unwrap().unwrap();
        assert_eq!(c.status, "cancelled", "{backend}");
        assert_eq!(
            c.bayesian_state, r#"{"n":3}"#,
            "a refused update writes nothing"
        );
        // Trials still land while cancelled (the trial in flight when it was cancelled).
        s.record_tune_trial(
            "tune-1",
            r#"{"n":4}"#,
            Some(1),
            &trial("tune-1", 3, "ok", Some(11.0)),
        )
        .unwrap();
        assert_eq!(
            s.tune_session("tune-1").unwrap().unwrap().status,
            "cancelled"
        );
        assert!(
            s.reopen_tune_session("tune-1", r#"{"n":4,"cancelled":false}"#)
                .unwrap()
        );
        let r = s.tune_session("tune-1").unwrap().unwrap();
        assert_eq!(
            (r.status.as_str(), r.bayesian_state.as_str()),
            ("running", r#"{"n":4,"cancelled":false}"#)
        );
        assert!(s.set_tune_status("tune-1", "finished", None).unwrap());
        assert!(!s.set_tune_status("no-such", "finished", None).unwrap());
        assert!(!s.reopen_tune_session("no-such", "{}").unwrap());
        assert!(s.tune_session("no-such").unwrap().is_none());
        assert!(s.tune_trials("no-such").unwrap().is_empty());

        // Listing: newest first.
        s.begin_tune_session(&session("tune-2", "r1", now + 10.0))
            .unwrap();
        let ids: Vec<String> = s
            .tune_sessions()
            .unwrap()
            .into_iter()
            .map(|t| t.session_id)
            .collect();
        assert_eq!(
            ids,
            vec!["tune-2".to_string(), "tune-1".to_string()],
            "{backend}"
        );

        // Reopening the store keeps everything.
        drop(s);
        let mut s = Store::open(&loc).unwrap();
        assert_eq!(s.tune_trials("tune-1").unwrap().len(), 4, "{backend}");
    }
}

#[test]
fn seed_from_reads_a_sweeps_successful_measurements_newest_run_first() {
    for (backend, loc) in backends("tune-seed") {
        let mut s = Store::open(&loc).unwrap();
        let mut old = run("old");
        old.started_unix_s -= 100.0;
        s.begin_run(&old).unwrap();
        s.begin_run(&run("new")).unwrap();
        s.begin_run(&run("gone")).unwrap();
        s.insert_measurement(&measurement("old", "k-old", "ck1", 3))
            .unwrap();
        s.insert_measurement(&measurement("new", "k-new", "ck2", 3))
            .unwrap();
        let mut failed = measurement("new", "k-failed", "ck3", 0);
        failed.error = Some("engine exited".into());
        s.insert_measurement(&failed).unwrap();
        let mut other_target = measurement("new", "k-other", "ck4", 3);
        other_target.workload = "other".into();
        s.insert_measurement(&other_target).unwrap();
        s.insert_measurement(&measurement("gone", "k-gone", "ck5", 3))
            .unwrap();
        s.delete_run("gone").unwrap();
        let got = s
            .spec_measurements("spec-a", "llamacpp", "b6000", "tiny", "cpu", "w")
            .unwrap();
        let keys: Vec<&str> = got.iter().map(|m| m.key.as_str()).collect();
        assert_eq!(
            keys,
            vec!["k-new", "k-old"],
            "{backend}: no failed, other-target or deleted-run measurements; newest run first"
        );
        assert_eq!(got[0].reps.len(), 3, "reps come back");
        assert!(
            s.spec_measurements("other-spec", "llamacpp", "b6000", "tiny", "cpu", "w")
                .unwrap()
                .is_empty()
        );
    }
}
