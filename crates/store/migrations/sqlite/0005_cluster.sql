-- The cluster's shared state: which nodes there are, which node runs each turn, the
-- durable queue of turns waiting for a worker, and controls on their way to the node that
-- runs a turn. On SQLite (one process) the same tables exist so that both backends keep
-- one schema; the node registry and the turn owner are used there too.

-- Every agentbox process registers itself and beats; a node whose heartbeat is older than
-- the bound (`--node-expiry-secs`) is gone, and its running turns are interrupted.
CREATE TABLE nodes (
    -- `--node-id`, or the one generated at the first start and kept in the data directory.
    id           TEXT PRIMARY KEY,
    role         TEXT NOT NULL CHECK (role IN ('all', 'api', 'worker')),
    -- Where the node answers (its HTTP address), for operators and peers; NULL if none.
    address      TEXT,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);

-- The node running the turn of an `in_progress` message: set once, when the turn starts
-- (the second start of one turn finds it set and does nothing).
ALTER TABLE messages ADD COLUMN node_id TEXT;
CREATE INDEX messages_running_node ON messages (node_id) WHERE status = 'in_progress';

-- Turns recorded by an API node and waiting for a worker. A worker claims a job with a
-- lease (claimed_by, lease_expires_at) that its heartbeat extends; when the lease expires
-- another worker may claim it. Starting the turn deletes the job and sets the message's
-- node_id in one transaction.
CREATE TABLE turn_jobs (
    message_id       TEXT PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    chat_id          TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    prompt           TEXT NOT NULL,
    -- The turn's model and permission mode, as recorded on its message.
    model            TEXT NOT NULL,
    permission_mode  TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    claimed_by       TEXT,
    lease_expires_at TEXT,
    attempts         BIGINT NOT NULL
);
CREATE INDEX turn_jobs_order ON turn_jobs (created_at);

-- Controls (interrupt, permission answers, live changes, send now) for the node that runs
-- a turn. A row is the durable half: a node takes its rows when notified and at every
-- poll, so a notification that was missed delays a control and never loses it.
CREATE TABLE turn_controls (
    id         TEXT PRIMARY KEY,
    node_id    TEXT NOT NULL,
    chat_id    TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    message_id TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    -- JSON: the control, as the runner's `Control` type writes it.
    command    TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX turn_controls_node ON turn_controls (node_id, id);

-- Set while the chat's queue waits for `send now` (its last turn was interrupted, or a
-- restart cut it off): shared, so that every node moves the queue the same way.
ALTER TABLE chats ADD COLUMN queue_paused_at TEXT;
