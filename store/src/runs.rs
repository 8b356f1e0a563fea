//! Runs: catalog snapshots, recording a run and its specs, cancellation, verdicts, soft
//! deletion and listing with counts.

use crate::{NewRun, Param, RunFilter, RunRow, RunStatus, Store, StoreError, now_unix};

impl Store {
    /// Record a catalog snapshot (once; later calls with the same id change nothing).
    pub fn record_catalog_snapshot(
        &mut self,
        snapshot: &str,
        version: i64,
        content: &str,
    ) -> Result<(), StoreError> {
        self.db.tx(|tx| {
            tx.execute(
                "INSERT INTO catalog_snapshots (snapshot, version, content, recorded_unix_s) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (snapshot) DO NOTHING",
                &[snapshot.into(), version.into(), content.into(), now_unix().into()],
            )?;
            Ok(())
        })
    }

    /// The recorded catalog snapshots: (snapshot, version, recorded at), newest first.
    pub fn catalog_snapshots(&mut self) -> Result<Vec<(String, i64, f64)>, StoreError> {
        self.db.tx(|tx| {
            tx.query(
                "SELECT snapshot, version, recorded_unix_s FROM catalog_snapshots ORDER BY recorded_unix_s DESC, snapshot",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.int(1)?, r.real(2)?)))
            .collect()
        })
    }

    /// A recorded snapshot's catalog text.
    pub fn catalog_snapshot(&mut self, snapshot: &str) -> Result<Option<String>, StoreError> {
        self.db.tx(|tx| {
            tx.query(
                "SELECT content FROM catalog_snapshots WHERE snapshot = ?1",
                &[snapshot.into()],
            )?
            .first()
            .map(|r| r.text(0))
            .transpose()
        })
    }

    /// Record a run, or note activity on one already recorded.
    pub fn begin_run(&mut self, run: &NewRun) -> Result<(), StoreError> {
        self.db.tx(|tx| {
            tx.execute(
                "INSERT INTO runs (run_id, mode, label, started_unix_s, updated_unix_s, harness_version, hardware_fingerprint, hardware, host, catalog_snapshot) VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (run_id) DO UPDATE SET updated_unix_s = ?4",
                &[
                    (&run.run_id).into(),
                    (&run.mode).into(),
                    run.label.clone().into(),
                    run.started_unix_s.into(),
                    (&run.harness_version).into(),
                    (&run.hardware_fingerprint).into(),
                    (&run.hardware).into(),
                    (&run.host).into(),
                    (&run.catalog_snapshot).into(),
                ],
            )?;
            Ok(())
        })
    }

    /// Record a spec of a run (its file, source and rendered text).
    pub fn record_spec(
        &mut self,
        run_id: &str,
        spec: &str,
        path: &str,
        source: &str,
        rendered: &str,
    ) -> Result<(), StoreError> {
        self.db.tx(|tx| {
            tx.execute(
                "INSERT INTO run_specs (run_id, spec, path, source_text, rendered_text) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (run_id, spec) DO NOTHING",
                &[run_id.into(), spec.into(), path.into(), source.into(), rendered.into()],
            )?;
            Ok(())
        })
    }

    /// The specs of a run: (spec, path, source, rendered).
    pub fn run_specs(
        &mut self,
        run_id: &str,
    ) -> Result<Vec<(String, String, String, String)>, StoreError> {
        self.db.tx(|tx| {
            tx.query(
                "SELECT spec, path, source_text, rendered_text FROM run_specs WHERE run_id = ?1 ORDER BY spec",
                &[run_id.into()],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?, r.text(2)?, r.text(3)?)))
            .collect()
        })
    }

    /// Ask a run to stop: its trials check this before measuring.
    pub fn request_cancel(&mut self, run_id: &str) -> Result<(), StoreError> {
        self.require_run(run_id)?;
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE runs SET cancel_requested_unix_s = ?2 WHERE run_id = ?1 AND cancel_requested_unix_s IS NULL",
                &[run_id.into(), now_unix().into()],
            )?;
            Ok(())
        })
    }

    /// When cancellation of `run_id` was requested, if it was.
    pub fn cancel_requested(&mut self, run_id: &str) -> Result<Option<f64>, StoreError> {
        self.db.tx(|tx| {
            Ok(tx
                .query(
                    "SELECT cancel_requested_unix_s FROM runs WHERE run_id = ?1",
                    &[run_id.into()],
                )?
                .first()
                .map(|r| r.opt_real(0))
                .transpose()?
                .flatten())
        })
    }

    /// Mark a run finished with its final status (the end-of-run report does this).
    pub fn finish_run(&mut self, run_id: &str, passed: bool) -> Result<(), StoreError> {
        self.finish_run_status(run_id, if passed { "passed" } else { "failed" })
    }

    /// Record a run's verdict as its report found it: `passed`, `failed`, or `unfinished`
    /// (trials without an outcome: the run keeps no finish time and lists as unfinished).
    pub fn finish_run_status(&mut self, run_id: &str, status: &str) -> Result<(), StoreError> {
        let finished = status != "unfinished";
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE runs SET finished_unix_s = ?2, updated_unix_s = ?3, final_status = ?4 WHERE run_id = ?1",
                &[
                    run_id.into(),
                    finished.then(now_unix).into(),
                    now_unix().into(),
                    status.into(),
                ],
            )?;
            Ok(())
        })
    }

    /// Soft-delete a run: hidden from listings and the cache, kept in the database.
    pub fn delete_run(&mut self, run_id: &str) -> Result<(), StoreError> {
        self.require_run(run_id)?;
        self.db.tx(|tx| {
            tx.execute(
                "UPDATE runs SET deleted_unix_s = ?2 WHERE run_id = ?1 AND deleted_unix_s IS NULL",
                &[run_id.into(), now_unix().into()],
            )?;
            Ok(())
        })
    }

    fn require_run(&mut self, run_id: &str) -> Result<(), StoreError> {
        if self.run(run_id)?.is_some() {
            return Ok(());
        }
        let ids: Vec<String> = self
            .list_runs(&RunFilter {
                include_deleted: true,
                ..RunFilter::default()
            })?
            .into_iter()
            .map(|r| r.run.run_id)
            .collect();
        let near: Vec<&String> = ids
            .iter()
            .filter(|id| id.starts_with(run_id) || id.contains(run_id))
            .take(5)
            .collect();
        Err(StoreError::UnknownRun {
            id: run_id.to_string(),
            hint: if near.is_empty() {
                format!(
                    " in {} (`l1 runs list` shows the {} runs it holds)",
                    self.location.display(),
                    ids.len()
                )
            } else {
                format!(
                    "; did you mean {}?",
                    near.iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        })
    }

    /// One run, deleted or not.
    pub fn run(&mut self, run_id: &str) -> Result<Option<RunRow>, StoreError> {
        let rows = self.runs_where("r.run_id = ?1", vec![run_id.into()])?;
        Ok(rows.into_iter().next())
    }

    /// Runs matching `filter`, newest first.
    pub fn list_runs(&mut self, filter: &RunFilter) -> Result<Vec<RunRow>, StoreError> {
        let mut conds = vec!["1 = 1".to_string()];
        let mut params: Vec<Param> = Vec::new();
        if !filter.include_deleted {
            conds.push("r.deleted_unix_s IS NULL".into());
        }
        if let Some(since) = filter.since_unix_s {
            params.push(since.into());
            conds.push(format!("r.started_unix_s >= ?{}", params.len()));
        }
        if let Some(label) = &filter.label {
            params.push(label.into());
            conds.push(format!("r.label = ?{}", params.len()));
        }
        if let Some(spec) = &filter.spec {
            params.push(spec.into());
            let n = params.len();
            conds.push(format!(
                "(EXISTS (SELECT 1 FROM trials t WHERE t.run_id = r.run_id AND t.spec = ?{n}) OR EXISTS (SELECT 1 FROM run_specs s WHERE s.run_id = r.run_id AND s.spec = ?{n}))"
            ));
        }
        if let Some(engine) = &filter.engine {
            params.push(engine.into());
            conds.push(format!(
                "EXISTS (SELECT 1 FROM trials t WHERE t.run_id = r.run_id AND t.engine = ?{})",
                params.len()
            ));
        }
        let mut rows = self.runs_where(&conds.join(" AND "), params)?;
        if let Some(status) = filter.status {
            rows.retain(|r| r.status == status);
        }
        let rows = rows.into_iter().skip(filter.offset);
        Ok(match filter.limit {
            Some(n) => rows.take(n).collect(),
            None => rows.collect(),
        })
    }

    fn runs_where(&mut self, cond: &str, params: Vec<Param>) -> Result<Vec<RunRow>, StoreError> {
        let sql = format!(
            "SELECT r.run_id, r.mode, r.label, r.started_unix_s, r.harness_version, r.hardware_fingerprint, r.hardware, r.host, r.catalog_snapshot, r.updated_unix_s, r.finished_unix_s, r.final_status, r.cancel_requested_unix_s, r.deleted_unix_s, \
             (SELECT COUNT(*) FROM trials t WHERE t.run_id = r.run_id AND t.passed = 1), \
             (SELECT COUNT(*) FROM trials t WHERE t.run_id = r.run_id AND t.passed = 0), \
             (SELECT COUNT(*) FROM measurements m WHERE m.run_id = r.run_id), \
             (SELECT COUNT(*) FROM measurements m WHERE m.run_id = r.run_id AND m.cache_from_run IS NOT NULL) \
             FROM runs r WHERE {cond} ORDER BY r.started_unix_s DESC, r.run_id DESC"
        );
        self.db.tx(|tx| {
            let rows = tx.query(&sql, &params)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let run_id = r.text(0)?;
                let specs = tx
                    .query(
                        "SELECT DISTINCT spec FROM trials WHERE run_id = ?1 UNION SELECT spec FROM run_specs WHERE run_id = ?1 ORDER BY 1",
                        &[(&run_id).into()],
                    )?
                    .iter()
                    .map(|x| x.text(0))
                    .collect::<Result<_, _>>()?;
                let engines = tx
                    .query(
                        "SELECT DISTINCT engine FROM trials WHERE run_id = ?1 ORDER BY 1",
                        &[(&run_id).into()],
                    )?
                    .iter()
                    .map(|x| x.text(0))
                    .collect::<Result<_, _>>()?;
                let cancel = r.opt_real(12)?;
                let status = match (r.opt_text(11)?.as_deref(), cancel) {
                    (_, Some(_)) => RunStatus::Cancelled,
                    (Some("passed"), None) => RunStatus::Passed,
                    (Some("failed"), None) => RunStatus::Failed,
                    _ => RunStatus::Unfinished,
                };
                out.push(RunRow {
                    run: NewRun {
                        run_id,
                        mode: r.text(1)?,
                        label: r.opt_text(2)?,
                        started_unix_s: r.real(3)?,
                        harness_version: r.text(4)?,
                        hardware_fingerprint: r.text(5)?,
                        hardware: r.text(6)?,
                        host: r.text(7)?,
                        catalog_snapshot: r.text(8)?,
                    },
                    status,
                    updated_unix_s: r.real(9)?,
                    finished_unix_s: r.opt_real(10)?,
                    cancel_requested_unix_s: cancel,
                    deleted_unix_s: r.opt_real(13)?,
                    trials_passed: r.int(14)?,
                    trials_failed: r.int(15)?,
                    measurements: r.int(16)?,
                    cache_hits: r.int(17)?,
                    specs,
                    engines,
                });
            }
            Ok(out)
        })
    }
}
