-- When the task's owner saw an ended run (opened its chat): until then the run counts in
-- the web UI's attention badge. NULL: not seen yet (or not ended).
ALTER TABLE task_runs ADD COLUMN seen_at TEXT;
CREATE INDEX task_runs_chat ON task_runs (chat_id) WHERE seen_at IS NULL;
