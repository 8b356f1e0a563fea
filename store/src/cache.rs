//! The measurement cache: lookups by cache key within the TTL, statistics and flushing.

use crate::db::Tx;
use crate::records::{MEASUREMENT_COLUMNS, measurement_from_row};
use crate::{CACHE_TTL_S, CacheFilter, CacheStats, MeasurementRow, Param, Store, StoreError};

impl Store {
    /// The newest cacheable measurement under `cache_key` measured after `not_before_unix_s`
    /// (now minus the TTL), not flushed, from a run not deleted.
    pub fn cache_lookup(
        &mut self,
        cache_key: &str,
        not_before_unix_s: f64,
    ) -> Result<Option<MeasurementRow>, StoreError> {
        let sql = format!(
            "SELECT {MEASUREMENT_COLUMNS} FROM measurements m JOIN runs r ON r.run_id = m.run_id WHERE m.cache_key = ?1 AND m.cacheable = 1 AND m.error IS NULL AND m.flushed_unix_s IS NULL AND m.started_unix_s >= ?2 AND r.deleted_unix_s IS NULL ORDER BY m.started_unix_s DESC, m.run_id LIMIT 1"
        );
        self.db.tx(|tx| {
            let rows = tx.query(&sql, &[cache_key.into(), not_before_unix_s.into()])?;
            match rows.first() {
                Some(r) => Ok(Some(measurement_from_row(tx, r)?)),
                None => Ok(None),
            }
        })
    }

    /// What the cache holds at `now`.
    pub fn cache_stats(&mut self, now_unix_s: f64) -> Result<CacheStats, StoreError> {
        let cutoff = now_unix_s - CACHE_TTL_S;
        self.db.tx(|tx| {
            let count = |tx: &mut Tx<'_>, cond: &str, params: &[Param]| -> Result<i64, StoreError> {
                let sql = format!(
                    "SELECT COUNT(*) FROM measurements m JOIN runs r ON r.run_id = m.run_id WHERE {cond}"
                );
                tx.query(&sql, params)?
                    .first()
                    .map_or(Ok(0), |r| r.int(0))
            };
            let live = "m.cacheable = 1 AND m.error IS NULL AND r.deleted_unix_s IS NULL";
            let valid = count(
                tx,
                &format!("{live} AND m.flushed_unix_s IS NULL AND m.started_unix_s >= ?1"),
                &[cutoff.into()],
            )?;
            let expired = count(
                tx,
                &format!("{live} AND m.flushed_unix_s IS NULL AND m.started_unix_s < ?1"),
                &[cutoff.into()],
            )?;
            let flushed = count(tx, &format!("{live} AND m.flushed_unix_s IS NOT NULL"), &[])?;
            let hits = count(tx, "m.cache_from_run IS NOT NULL", &[])?;
            let misses = count(tx, "m.cacheable = 1", &[])?;
            let valid_by_engine = tx
                .query(
                    &format!(
                        "SELECT m.engine, COUNT(*) FROM measurements m JOIN runs r ON r.run_id = m.run_id WHERE {live} AND m.flushed_unix_s IS NULL AND m.started_unix_s >= ?1 GROUP BY m.engine ORDER BY m.engine"
                    ),
                    &[cutoff.into()],
                )?
                .iter()
                .map(|r| Ok((r.text(0)?, r.int(1)?)))
                .collect::<Result<_, StoreError>>()?;
            Ok(CacheStats {
                valid,
                expired,
                flushed,
                hits,
                misses,
                valid_by_engine,
            })
        })
    }

    /// Flush the cache entries matching `filter`; returns how many were flushed. The
    /// measurements stay in the history; they only stop answering lookups.
    pub fn cache_flush(
        &mut self,
        filter: &CacheFilter,
        now_unix_s: f64,
    ) -> Result<u64, StoreError> {
        let mut conds = vec![
            "cacheable = 1".to_string(),
            "flushed_unix_s IS NULL".to_string(),
        ];
        let mut params: Vec<Param> = vec![now_unix_s.into()];
        for (col, val) in [
            ("engine", &filter.engine),
            ("model", &filter.model),
            ("hardware", &filter.hardware),
            ("spec", &filter.spec),
        ] {
            if let Some(v) = val {
                params.push(v.into());
                conds.push(format!("{col} = ?{}", params.len()));
            }
        }
        if let Some(before) = filter.before_unix_s {
            params.push(before.into());
            conds.push(format!("started_unix_s < ?{}", params.len()));
        }
        let sql = format!(
            "UPDATE measurements SET flushed_unix_s = ?1 WHERE {}",
            conds.join(" AND ")
        );
        self.db.tx(|tx| tx.execute(&sql, &params))
    }
}
