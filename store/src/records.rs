//! Measurements (with their per-rep metrics) and trial verdicts: idempotent inserts and reads, the
//! stored baselines regression gates and tune specs' `seed_from` read.

use std::collections::BTreeMap;

use crate::db::Tx;
use crate::{KeyParts, MeasurementRow, Param, Row, Store, StoreError, TrialRow, now_unix};

pub(crate) const MEASUREMENT_COLUMNS: &str = "m.run_id, m.key, m.spec, m.engine, m.target_version, m.engine_version, m.model, m.hardware, m.workload, m.combo, m.combo_hash, m.catalog_snapshot, m.catalog_version, m.model_hash, m.hardware_fingerprint, m.workload_fingerprint, m.plan_hash, m.cache_key, m.simulated, m.started_unix_s, m.duration_s, m.error, m.cache_from_run, m.cache_from_key, m.cacheable, m.record";

const TRIAL_COLUMNS: &str = "run_id, name, spec, kind, engine, target_version, model, hardware, workload, passed, message, measurement_key, simulated, duration_s, cache_hit, record";
impl Store {
    /// Insert a measurement with its per-rep metrics in one transaction. Returns `false` when it
    /// was already stored (the first write wins; records are immutable).
    pub fn insert_measurement(&mut self, m: &MeasurementRow) -> Result<bool, StoreError> {
        self.db.tx(|tx| insert_measurement(tx, m))
    }

    /// Insert a trial's verdict. Returns `false` when it was already stored.
    pub fn insert_trial(&mut self, t: &TrialRow) -> Result<bool, StoreError> {
        self.db.tx(|tx| insert_trial(tx, t))
    }

    /// Insert many rows in one transaction (ingesting a run directory).
    pub fn insert_all(
        &mut self,
        measurements: &[MeasurementRow],
        trials: &[TrialRow],
    ) -> Result<(usize, usize), StoreError> {
        self.db.tx(|tx| {
            let mut nm = 0;
            for m in measurements {
                nm += usize::from(insert_measurement(tx, m)?);
            }
            let mut nt = 0;
            for t in trials {
                nt += usize::from(insert_trial(tx, t)?);
            }
            Ok((nm, nt))
        })
    }

    /// The newest successful measurement of the same combo, target and machine in the newest
    /// run labelled `label` (e.g. `main`): a stored baseline for regression gating.
    pub fn stored_measurement(
        &mut self,
        label: &str,
        cache_key: &str,
        exclude_run: &str,
    ) -> Result<Option<MeasurementRow>, StoreError> {
        let sql = format!(
            "SELECT {MEASUREMENT_COLUMNS} FROM measurements m JOIN runs r ON r.run_id = m.run_id WHERE r.label = ?1 AND m.cache_key = ?2 AND m.run_id <> ?3 AND m.error IS NULL AND r.deleted_unix_s IS NULL ORDER BY r.started_unix_s DESC, m.started_unix_s DESC LIMIT 1"
        );
        self.db.tx(|tx| {
            let rows = tx.query(&sql, &[label.into(), cache_key.into(), exclude_run.into()])?;
            match rows.first() {
                Some(r) => Ok(Some(measurement_from_row(tx, r)?)),
                None => Ok(None),
            }
        })
    }

    /// Successful measurements of one target (by engine, model, hardware and workload names) in
    /// runs labelled `label` other than `exclude_run`, newest run first: what a `pareto` gate
    /// `against: stored` reads (the caller keeps the newest run whose cache keys match its own).
    pub fn labelled_target_measurements(
        &mut self,
        label: &str,
        exclude_run: &str,
        target: [&str; 4],
    ) -> Result<Vec<MeasurementRow>, StoreError> {
        let [engine, model, hardware, workload] = target;
        let sql = format!(
            "SELECT {MEASUREMENT_COLUMNS} FROM measurements m JOIN runs r ON r.run_id = m.run_id WHERE r.label = ?1 AND m.run_id <> ?2 AND m.engine = ?3 AND m.model = ?4 AND m.hardware = ?5 AND m.workload = ?6 AND m.error IS NULL AND r.deleted_unix_s IS NULL ORDER BY r.started_unix_s DESC, r.run_id, m.started_unix_s DESC, m.key"
        );
        self.db.tx(|tx| {
            let rows = tx.query(
                &sql,
                &[
                    label.into(),
                    exclude_run.into(),
                    engine.into(),
                    model.into(),
                    hardware.into(),
                    workload.into(),
                ],
            )?;
            rows.iter().map(|r| measurement_from_row(tx, r)).collect()
        })
    }

    /// Every measurement of a run (with reps), by key.
    pub fn measurements(&mut self, run_id: &str) -> Result<Vec<MeasurementRow>, StoreError> {
        let sql = format!(
            "SELECT {MEASUREMENT_COLUMNS} FROM measurements m WHERE m.run_id = ?1 ORDER BY m.key"
        );
        self.db.tx(|tx| {
            let rows = tx.query(&sql, &[run_id.into()])?;
            rows.iter().map(|r| measurement_from_row(tx, r)).collect()
        })
    }

    /// The measurement `key` of run `run_id` (with reps), if stored: what another runner of the
    /// same run (a partition with its own target directory) measured, so that nobody takes it
    /// again.
    pub fn run_measurement(
        &mut self,
        run_id: &str,
        key: &str,
    ) -> Result<Option<MeasurementRow>, StoreError> {
        let sql = format!(
            "SELECT {MEASUREMENT_COLUMNS} FROM measurements m WHERE m.run_id = ?1 AND m.key = ?2"
        );
        self.db.tx(|tx| {
            let rows = tx.query(&sql, &[run_id.into(), key.into()])?;
            match rows.first() {
                Some(r) => Ok(Some(measurement_from_row(tx, r)?)),
                None => Ok(None),
            }
        })
    }

    /// Every trial of a run, by name.
    pub fn trials(&mut self, run_id: &str) -> Result<Vec<TrialRow>, StoreError> {
        let sql = format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE run_id = ?1 ORDER BY name");
        self.db.tx(|tx| {
            tx.query(&sql, &[run_id.into()])?
                .iter()
                .map(|r| {
                    Ok(TrialRow {
                        run_id: r.text(0)?,
                        name: r.text(1)?,
                        spec: r.text(2)?,
                        kind: r.text(3)?,
                        engine: r.text(4)?,
                        target_version: r.text(5)?,
                        model: r.text(6)?,
                        hardware: r.text(7)?,
                        workload: r.text(8)?,
                        passed: r.flag(9)?,
                        message: r.text(10)?,
                        measurement_key: r.opt_text(11)?,
                        simulated: r.flag(12)?,
                        duration_s: r.real(13)?,
                        cache_hit: r.flag(14)?,
                        record: r.text(15)?,
                    })
                })
                .collect()
        })
    }

    /// Integrity counts for tests and `l1 store check`: measurements whose rep count differs
    /// from their stored per-rep rows (a half-written measurement would show here).
    pub fn incomplete_measurements(&mut self) -> Result<Vec<(String, String)>, StoreError> {
        self.db.tx(|tx| {
            tx.query(
                "SELECT m.run_id, m.key FROM measurements m WHERE m.reps <> (SELECT COUNT(DISTINCT rm.rep) FROM rep_metrics rm WHERE rm.run_id = m.run_id AND rm.key = m.key) ORDER BY 1, 2",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?)))
            .collect()
        })
    }

    /// Successful measurements of `spec` for one target (any run not deleted, newest run
    /// first): what a tune spec's `seed_from` reads.
    pub fn spec_measurements(
        &mut self,
        spec: &str,
        engine: &str,
        target_version: &str,
        model: &str,
        hardware: &str,
        workload: &str,
    ) -> Result<Vec<MeasurementRow>, StoreError> {
        let sql = format!(
            "SELECT {MEASUREMENT_COLUMNS} FROM measurements m JOIN runs r ON r.run_id = m.run_id WHERE m.spec = ?1 AND m.engine = ?2 AND m.target_version = ?3 AND m.model = ?4 AND m.hardware = ?5 AND m.workload = ?6 AND m.error IS NULL AND r.deleted_unix_s IS NULL ORDER BY r.started_unix_s DESC, m.key"
        );
        self.db.tx(|tx| {
            let rows = tx.query(
                &sql,
                &[
                    spec.into(),
                    engine.into(),
                    target_version.into(),
                    model.into(),
                    hardware.into(),
                    workload.into(),
                ],
            )?;
            rows.iter().map(|r| measurement_from_row(tx, r)).collect()
        })
    }
}

fn insert_measurement(tx: &mut Tx<'_>, m: &MeasurementRow) -> Result<bool, StoreError> {
    let parts = m.parts.clone().unwrap_or_default();
    let has_parts = m.parts.is_some();
    let opt = |s: &str| -> Param {
        if has_parts {
            s.into()
        } else {
            Param::Text(None)
        }
    };
    let (from_run, from_key) = match &m.cache_from {
        Some((r, k)) => (Some(r.clone()), Some(k.clone())),
        None => (None, None),
    };
    let inserted = tx.execute(
        "INSERT INTO measurements (run_id, key, spec, engine, target_version, engine_version, model, hardware, workload, combo, combo_hash, catalog_snapshot, catalog_version, model_hash, hardware_fingerprint, workload_fingerprint, plan_hash, cache_key, simulated, started_unix_s, duration_s, reps, error, cache_from_run, cache_from_key, cacheable, record, ingested_unix_s) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28) ON CONFLICT (run_id, key) DO NOTHING",
        &[
            (&m.run_id).into(),
            (&m.key).into(),
            (&m.spec).into(),
            (&m.engine).into(),
            (&m.target_version).into(),
            m.engine_version.clone().into(),
            (&m.model).into(),
            (&m.hardware).into(),
            (&m.workload).into(),
            (&m.combo).into(),
            (&m.combo_hash).into(),
            (&m.catalog_snapshot).into(),
            Param::Int(has_parts.then_some(parts.catalog_version)),
            opt(&parts.model_hash),
            opt(&parts.hardware_fingerprint),
            opt(&parts.workload_fingerprint),
            opt(&parts.plan_hash),
            opt(&parts.cache_key),
            m.simulated.into(),
            m.started_unix_s.into(),
            m.duration_s.into(),
            (m.reps.len() as i64).into(),
            m.error.clone().into(),
            from_run.into(),
            from_key.into(),
            (m.cacheable && m.error.is_none() && m.cache_from.is_none() && has_parts).into(),
            (&m.record).into(),
            now_unix().into(),
        ],
    )?;
    if inserted == 0 {
        return Ok(false);
    }
    // One statement per chunk of rows rather than per value: on PostgreSQL every statement is a
    // round trip (15 reps × 12 metrics was 180 of them).
    let rows: Vec<(i64, &String, f64)> = m
        .reps
        .iter()
        .enumerate()
        .flat_map(|(i, rep)| rep.iter().map(move |(k, v)| (i as i64, k, *v)))
        .filter(|(_, _, v)| v.is_finite())
        .collect();
    for chunk in rows.chunks(REP_ROWS_PER_INSERT) {
        let mut sql =
            String::from("INSERT INTO rep_metrics (run_id, key, rep, metric, value) VALUES ");
        let mut params: Vec<Param> = Vec::with_capacity(chunk.len() * 5);
        for (j, (rep, metric, value)) in chunk.iter().enumerate() {
            let b = j * 5;
            if j > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!(
                "(?{}, ?{}, ?{}, ?{}, ?{})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5
            ));
            params.extend([
                (&m.run_id).into(),
                (&m.key).into(),
                (*rep).into(),
                (*metric).into(),
                (*value).into(),
            ]);
        }
        tx.execute(&sql, &params)?;
    }
    Ok(true)
}

/// Rep-metric rows per `INSERT` statement (5 parameters each: well under SQLite's and
/// PostgreSQL's limits on bound parameters).
const REP_ROWS_PER_INSERT: usize = 200;

fn insert_trial(tx: &mut Tx<'_>, t: &TrialRow) -> Result<bool, StoreError> {
    let n = tx.execute(
        &format!(
            "INSERT INTO trials ({TRIAL_COLUMNS}, ingested_unix_s) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) ON CONFLICT (run_id, name) DO NOTHING"
        ),
        &[
            (&t.run_id).into(),
            (&t.name).into(),
            (&t.spec).into(),
            (&t.kind).into(),
            (&t.engine).into(),
            (&t.target_version).into(),
            (&t.model).into(),
            (&t.hardware).into(),
            (&t.workload).into(),
            t.passed.into(),
            (&t.message).into(),
            t.measurement_key.clone().into(),
            t.simulated.into(),
            t.duration_s.into(),
            t.cache_hit.into(),
            (&t.record).into(),
            now_unix().into(),
        ],
    )?;
    // The run's last activity (what `l1 runs list` shows for a run without a verdict).
    tx.execute(
        "UPDATE runs SET updated_unix_s = ?2 WHERE run_id = ?1 AND updated_unix_s < ?2",
        &[(&t.run_id).into(), now_unix().into()],
    )?;
    Ok(n > 0)
}
pub(crate) fn measurement_from_row(tx: &mut Tx<'_>, r: &Row) -> Result<MeasurementRow, StoreError> {
    let run_id = r.text(0)?;
    let key = r.text(1)?;
    let reps_rows = tx.query(
        "SELECT rep, metric, value FROM rep_metrics WHERE run_id = ?1 AND key = ?2 ORDER BY rep, metric",
        &[(&run_id).into(), (&key).into()],
    )?;
    let mut reps: Vec<BTreeMap<String, f64>> = Vec::new();
    for x in &reps_rows {
        let i = usize::try_from(x.int(0)?)
            .map_err(|_| StoreError::Corrupt(format!("negative rep index in {run_id}/{key}")))?;
        while reps.len() <= i {
            reps.push(BTreeMap::new());
        }
        reps[i].insert(x.text(1)?, x.real(2)?);
    }
    let parts = match r.opt_text(17)? {
        Some(cache_key) => Some(KeyParts {
            catalog_version: r.opt_int(12)?.unwrap_or(0),
            model_hash: r.opt_text(13)?.unwrap_or_default(),
            hardware_fingerprint: r.opt_text(14)?.unwrap_or_default(),
            workload_fingerprint: r.opt_text(15)?.unwrap_or_default(),
            plan_hash: r.opt_text(16)?.unwrap_or_default(),
            cache_key,
        }),
        None => None,
    };
    let cache_from = match (r.opt_text(22)?, r.opt_text(23)?) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    };
    Ok(MeasurementRow {
        run_id,
        key,
        spec: r.text(2)?,
        engine: r.text(3)?,
        target_version: r.text(4)?,
        engine_version: r.opt_text(5)?,
        model: r.text(6)?,
        hardware: r.text(7)?,
        workload: r.text(8)?,
        combo: r.text(9)?,
        combo_hash: r.text(10)?,
        catalog_snapshot: r.text(11)?,
        parts,
        simulated: r.flag(18)?,
        started_unix_s: r.real(19)?,
        duration_s: r.real(20)?,
        error: r.opt_text(21)?,
        cache_from,
        cacheable: r.flag(24)?,
        reps,
        record: r.text(25)?,
    })
}
