-- ibkrtool schema, version 3: the process that owns each run (pid, host), so that a row left 'running' by a
-- process that no longer exists (killed, machine restarted) is marked 'abandoned' by the next command.
-- status: running, ok, failed, interrupted, abandoned.
ALTER TABLE ibkr_data.runs ADD COLUMN pid INTEGER;
ALTER TABLE ibkr_data.runs ADD COLUMN host TEXT;
