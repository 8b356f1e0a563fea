//! Tier-2 tune sessions and their trials: create or resume, persist after each trial, status
//! changes and reads.

use crate::db::Tx;
use crate::{Param, Store, StoreError, TuneSessionRow, TuneTrialRow, now_unix};

impl Store {
    /// Create a tune session, or return the one already stored under its id (the stored one
    /// wins: a re-run resumes it).
    pub fn begin_tune_session(
        &mut self,
        row: &TuneSessionRow,
    ) -> Result<TuneSessionRow, StoreError> {
        self.db.tx(|tx| {
            tx.execute(
                "INSERT INTO tune_sessions (session_id, run_id, spec, target, status, objective, budget, bayesian_state, best_trial, created_unix_s, updated_unix_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (session_id) DO NOTHING",
                &[
                    (&row.session_id).into(),
                    row.run_id.clone().into(),
                    (&row.spec).into(),
                    (&row.target).into(),
                    (&row.status).into(),
                    (&row.objective).into(),
                    (&row.budget).into(),
                    (&row.bayesian_state).into(),
                    Param::Int(row.best_trial),
                    row.created_unix_s.into(),
                    row.updated_unix_s.into(),
                ],
            )?;
            tune_session_in(tx, &row.session_id)?.ok_or_else(|| {
                StoreError::Corrupt(format!("tune session {} vanished", row.session_id))
            })
        })
    }

    /// Persist a session after a trial: its new state and best-trial pointer, and the trial's
    /// row, in one transaction (a writer killed at any moment leaves both or neither). A session
    /// already `cancelled` keeps that status.
    pub fn record_tune_trial(
        &mut self,
        session_id: &str,
        bayesian_state: &str,
        best_trial: Option<i64>,
        trial: &TuneTrialRow,
    ) -> Result<(), StoreError> {
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE tune_sessions SET bayesian_state = ?2, best_trial = ?3, updated_unix_s = ?4 WHERE session_id = ?1",
                &[
                    session_id.into(),
                    bayesian_state.into(),
                    Param::Int(best_trial),
                    now_unix().into(),
                ],
            )?;
            tx.execute(
                "INSERT INTO tune_trials (session_id, n, combo, measurement_key, outcome, value, created_unix_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (session_id, n) DO NOTHING",
                &[
                    session_id.into(),
                    trial.n.into(),
                    (&trial.combo).into(),
                    trial.measurement_key.clone().into(),
                    (&trial.outcome).into(),
                    Param::Real(trial.value),
                    trial.created_unix_s.into(),
                ],
            )?;
            Ok(())
        })
    }

    /// Set a session's status (`running`, `finished`, `cancelled`, `failed`), optionally with
    /// its final state. `running` and `finished` never overwrite `cancelled`.
    pub fn set_tune_status(
        &mut self,
        session_id: &str,
        status: &str,
        bayesian_state: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.db.tx(|tx| {
            let keep_cancelled = if status == "cancelled" {
                ""
            } else {
                " AND status <> 'cancelled'"
            };
            let n = match bayesian_state {
                Some(state) => tx.execute(
                    &format!("UPDATE tune_sessions SET status = ?2, bayesian_state = ?3, updated_unix_s = ?4 WHERE session_id = ?1{keep_cancelled}"),
                    &[session_id.into(), status.into(), state.into(), now_unix().into()],
                )?,
                None => tx.execute(
                    &format!("UPDATE tune_sessions SET status = ?2, updated_unix_s = ?3 WHERE session_id = ?1{keep_cancelled}"),
                    &[session_id.into(), status.into(), now_unix().into()],
                )?,
            };
            Ok(n > 0)
        })
    }

    /// Reopen a session for `l1 tune resume`: status `running` (even when cancelled) and the
    /// given state (with its cancelled flag cleared by the caller).
    pub fn reopen_tune_session(
        &mut self,
        session_id: &str,
        bayesian_state: &str,
    ) -> Result<bool, StoreError> {
        self.db.tx(|tx| {
            let n = tx.execute(
                "UPDATE tune_sessions SET status = 'running', bayesian_state = ?2, updated_unix_s = ?3 WHERE session_id = ?1",
                &[session_id.into(), bayesian_state.into(), now_unix().into()],
            )?;
            Ok(n > 0)
        })
    }

    /// One tune session.
    pub fn tune_session(&mut self, session_id: &str) -> Result<Option<TuneSessionRow>, StoreError> {
        self.db.tx(|tx| tune_session_in(tx, session_id))
    }

    /// Every tune session, newest first.
    pub fn tune_sessions(&mut self) -> Result<Vec<TuneSessionRow>, StoreError> {
        self.db.tx(|tx| {
            let ids = tx.query(
                "SELECT session_id FROM tune_sessions ORDER BY created_unix_s DESC, session_id",
                &[],
            )?;
            let mut out = Vec::new();
            for r in &ids {
                if let Some(s) = tune_session_in(tx, &r.text(0)?)? {
                    out.push(s);
                }
            }
            Ok(out)
        })
    }

    /// A session's trials, in order.
    pub fn tune_trials(&mut self, session_id: &str) -> Result<Vec<TuneTrialRow>, StoreError> {
        self.db.tx(|tx| {
            tx.query(
                "SELECT session_id, n, combo, measurement_key, outcome, value, created_unix_s FROM tune_trials WHERE session_id = ?1 ORDER BY n",
                &[session_id.into()],
            )?
            .iter()
            .map(|r| {
                Ok(TuneTrialRow {
                    session_id: r.text(0)?,
                    n: r.int(1)?,
                    combo: r.text(2)?,
                    measurement_key: r.opt_text(3)?,
                    outcome: r.text(4)?,
                    value: r.opt_real(5)?,
                    created_unix_s: r.real(6)?,
                })
            })
            .collect()
        })
    }
}

fn tune_session_in(
    tx: &mut Tx<'_>,
    session_id: &str,
) -> Result<Option<TuneSessionRow>, StoreError> {
    let rows = tx.query(
        "SELECT session_id, run_id, spec, target, status, objective, budget, bayesian_state, best_trial, created_unix_s, updated_unix_s FROM tune_sessions WHERE session_id = ?1",
        &[session_id.into()],
    )?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(TuneSessionRow {
        session_id: r.text(0)?,
        run_id: r.opt_text(1)?,
        spec: r.text(2)?,
        target: r.text(3)?,
        status: r.text(4)?,
        objective: r.text(5)?,
        budget: r.text(6)?,
        bayesian_state: r.text(7)?,
        best_trial: r.opt_int(8)?,
        created_unix_s: r.real(9)?,
        updated_unix_s: r.real(10)?,
    }))
}
