-- l1 store schema 1 (PostgreSQL). Keep in step with ../sqlite/0001_init.sql: same tables, same
-- columns, same meaning; only the column types differ.

-- Every catalog snapshot a result refers to, with its text, so old snapshots stay readable.
CREATE TABLE catalog_snapshots (
    snapshot        TEXT PRIMARY KEY,          -- `v<version>-<content hash>`
    version         BIGINT NOT NULL,
    content         TEXT NOT NULL,             -- catalogs/kernels.yaml as it was
    recorded_unix_s DOUBLE PRECISION NOT NULL
);

-- One test invocation (all trials sharing L1_RUN_ID / NEXTEST_RUN_ID).
CREATE TABLE runs (
    run_id                  TEXT PRIMARY KEY,
    mode                    TEXT NOT NULL,     -- sweep | tune
    label                   TEXT,              -- L1_RUN_LABEL, e.g. the branch (`main`)
    started_unix_s          DOUBLE PRECISION NOT NULL,
    updated_unix_s          DOUBLE PRECISION NOT NULL,
    finished_unix_s         DOUBLE PRECISION,
    final_status            TEXT,              -- passed | failed, set by the end-of-run report
    harness_version         TEXT NOT NULL,
    hardware_fingerprint    TEXT NOT NULL,
    hardware                TEXT NOT NULL,     -- what the fingerprint was computed from
    host                    TEXT NOT NULL,
    catalog_snapshot        TEXT NOT NULL,
    cancel_requested_unix_s DOUBLE PRECISION,
    deleted_unix_s          DOUBLE PRECISION               -- soft delete
);
CREATE INDEX runs_started ON runs (started_unix_s);

-- The specs a run executed: file, source text and rendered text.
CREATE TABLE run_specs (
    run_id        TEXT NOT NULL REFERENCES runs (run_id),
    spec          TEXT NOT NULL,
    path          TEXT NOT NULL,
    source_text   TEXT NOT NULL,
    rendered_text TEXT NOT NULL,
    PRIMARY KEY (run_id, spec)
);

-- The raw reps of one combo of one target (one per measurement record).
CREATE TABLE measurements (
    run_id               TEXT NOT NULL REFERENCES runs (run_id),
    key                  TEXT NOT NULL,
    spec                 TEXT NOT NULL,
    engine               TEXT NOT NULL,
    target_version       TEXT NOT NULL,        -- the spec's engine@version
    engine_version       TEXT,                 -- as the installed engine reported it
    model                TEXT NOT NULL,
    hardware             TEXT NOT NULL,
    workload             TEXT NOT NULL,
    combo                TEXT NOT NULL,        -- canonical `dim=value,...`
    combo_hash           TEXT NOT NULL,
    catalog_snapshot     TEXT NOT NULL,
    catalog_version      BIGINT,
    model_hash           TEXT,
    hardware_fingerprint TEXT,
    workload_fingerprint TEXT,
    plan_hash            TEXT,
    cache_key            TEXT,
    simulated            BIGINT NOT NULL,
    started_unix_s       DOUBLE PRECISION NOT NULL,
    duration_s           DOUBLE PRECISION NOT NULL,
    reps                 BIGINT NOT NULL,
    error                TEXT,
    cache_from_run       TEXT,                 -- set when this is a cache hit
    cache_from_key       TEXT,
    cacheable            BIGINT NOT NULL,     -- may answer later cache lookups
    flushed_unix_s       DOUBLE PRECISION,                 -- `l1 cache flush`
    record               TEXT NOT NULL,        -- the whole JSON record
    ingested_unix_s      DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE INDEX measurements_cache ON measurements (cache_key, started_unix_s);

-- Raw per-rep metrics: statistics can be recomputed from these.
CREATE TABLE rep_metrics (
    run_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    rep    BIGINT NOT NULL,
    metric TEXT NOT NULL,
    value  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, key, rep, metric),
    FOREIGN KEY (run_id, key) REFERENCES measurements (run_id, key)
);

-- One generated test: a combo, a baseline or a gate of a target.
CREATE TABLE trials (
    run_id          TEXT NOT NULL REFERENCES runs (run_id),
    name            TEXT NOT NULL,
    spec            TEXT NOT NULL,
    kind            TEXT NOT NULL,             -- combo | baseline | gate
    engine          TEXT NOT NULL,
    target_version  TEXT NOT NULL,
    model           TEXT NOT NULL,
    hardware        TEXT NOT NULL,
    workload        TEXT NOT NULL,
    passed          BIGINT NOT NULL,
    message         TEXT NOT NULL,
    measurement_key TEXT,
    simulated       BIGINT NOT NULL,
    duration_s      DOUBLE PRECISION NOT NULL,
    cache_hit       BIGINT NOT NULL,
    record          TEXT NOT NULL,
    ingested_unix_s DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE INDEX trials_spec ON trials (spec);

-- Tier 2: a tuning session with the optimiser's whole state, persisted after every trial.
CREATE TABLE tune_sessions (
    session_id     TEXT PRIMARY KEY,
    run_id         TEXT,
    spec           TEXT NOT NULL,
    target         TEXT NOT NULL,
    status         TEXT NOT NULL,              -- running | finished | cancelled | failed
    objective      TEXT NOT NULL,              -- JSON
    budget         TEXT NOT NULL,              -- JSON
    bayesian_state TEXT NOT NULL,              -- JSON, the optimiser's full state
    best_trial     BIGINT,
    created_unix_s DOUBLE PRECISION NOT NULL,
    updated_unix_s DOUBLE PRECISION NOT NULL
);
CREATE TABLE tune_trials (
    session_id      TEXT NOT NULL REFERENCES tune_sessions (session_id),
    n               BIGINT NOT NULL,
    combo           TEXT NOT NULL,
    measurement_key TEXT,
    outcome         TEXT NOT NULL,             -- ok | failed | infeasible | cached
    value           DOUBLE PRECISION,
    created_unix_s  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (session_id, n)
);

-- Tier 3: proposed kernels and their reviews.
CREATE TABLE registry_entries (
    entry_id       TEXT PRIMARY KEY,
    engine         TEXT NOT NULL,
    dimension      TEXT NOT NULL,
    value          TEXT NOT NULL,
    status         TEXT NOT NULL,              -- proposed | approved | rejected | retired
    source         TEXT NOT NULL,
    created_unix_s DOUBLE PRECISION NOT NULL,
    updated_unix_s DOUBLE PRECISION NOT NULL
);
CREATE TABLE registry_approvals (
    entry_id       TEXT NOT NULL REFERENCES registry_entries (entry_id),
    reviewer       TEXT NOT NULL,
    decision       TEXT NOT NULL,              -- approve | reject
    comment        TEXT NOT NULL,
    created_unix_s DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (entry_id, reviewer, created_unix_s)
);
