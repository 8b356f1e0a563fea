-- l1 store schema 2 (SQLite). Keep in step with ../postgres/0002_measurement_locks.sql.

-- Who is measuring which cache key right now (src/lock.rs): one row per key being measured,
-- a lease the holder renews (heartbeat) while it measures and deletes when the measurement is
-- stored; a row whose lease ran out belongs to a dead holder and may be taken over. Times are
-- the store's clock, never a runner's, so runners with skewed clocks agree on expiry.
CREATE TABLE measurement_locks (
    cache_key       TEXT PRIMARY KEY,
    holder          TEXT NOT NULL,             -- `<host>/<pid>/<n>`: one claim of one process
    run_id          TEXT NOT NULL,             -- the holder's run (for `l1` and messages)
    acquired_unix_s REAL NOT NULL,
    expires_unix_s  REAL NOT NULL              -- renewed by the heartbeat
);
