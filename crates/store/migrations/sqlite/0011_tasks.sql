-- Scheduled tasks (issue 18): a prompt that runs on a schedule, and its runs.
CREATE TABLE tasks (
    id                      TEXT PRIMARY KEY,
    user_id                 TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                    TEXT NOT NULL,
    prompt                  TEXT NOT NULL,
    -- The schedule as its API JSON (`{"kind":"daily","time":"09:00"}`).
    schedule                TEXT NOT NULL,
    time_zone               TEXT NOT NULL,
    model                   TEXT NOT NULL,
    permission_mode         TEXT NOT NULL,
    -- NULL: the server's --task-permission-timeout-secs.
    permission_timeout_secs BIGINT,
    -- NULL: a new chat for every run. No foreign key: a run finds a deleted chat and fails
    -- saying so, the task stays.
    target_chat_id          TEXT,
    enabled                 BIGINT NOT NULL CHECK (enabled IN (0, 1)),
    missed_runs             TEXT NOT NULL CHECK (missed_runs IN ('skip', 'run_once')),
    -- The due time the scheduler runs next; NULL when disabled or done (a `once` task).
    next_run_at             TEXT,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
);
CREATE INDEX tasks_user ON tasks (user_id, created_at);
CREATE INDEX tasks_due ON tasks (next_run_at) WHERE enabled = 1;

-- One row per due time: inserting it is the claim, and the unique key makes a second
-- claim of the same due time (another node, a restart) a no-op.
CREATE TABLE task_runs (
    id          TEXT PRIMARY KEY,
    task_id     TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    due_at      TEXT NOT NULL,
    trigger     TEXT NOT NULL CHECK (trigger IN ('scheduled', 'missed', 'manual')),
    -- 'started' runs take their outcome, cost and end from their message.
    status      TEXT NOT NULL CHECK (status IN ('claimed', 'started', 'failed', 'skipped')),
    claimed_at  TEXT NOT NULL,
    claimed_by  TEXT NOT NULL,
    started_at  TEXT,
    ended_at    TEXT,
    chat_id     TEXT,
    message_id  TEXT,
    error       TEXT
);
CREATE UNIQUE INDEX task_runs_claim ON task_runs (task_id, due_at);
CREATE INDEX task_runs_claimed ON task_runs (claimed_at) WHERE status = 'claimed';
