-- The same column as SQLite's 0015_task_run_seen.sql: when the task's owner saw an ended
-- run (opened its chat); until then the run counts in the web UI's attention badge.
ALTER TABLE task_runs ADD COLUMN seen_at TIMESTAMPTZ;
CREATE INDEX task_runs_chat ON task_runs (chat_id) WHERE seen_at IS NULL;
