-- ibkrtool schema, version 4: one placing process at a time per (account, instrument).
-- On PostgreSQL `execute` takes a session-level pg_advisory_lock on a stable hash of the lock key instead; this
-- table is what SQLite uses (a row = the lock, owned by a process: a row whose process is gone on this host is
-- taken over). ibkrtool/store/tables.py mirrors it (tests/store/test_schema.py checks it).

CREATE TABLE ibkr_data.order_locks (
    lock_key     TEXT PRIMARY KEY,
    owner_pid    INTEGER NOT NULL,
    owner_host   TEXT NOT NULL,
    acquired_at  TIMESTAMPTZ NOT NULL
);
