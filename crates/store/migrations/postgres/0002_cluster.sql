-- The cluster's shared state (SQLite's 0005_cluster.sql, with the usual type mapping):
-- the nodes, the node running each turn, the durable turn queue and the control table.
-- Node ids are the operator's text (`--node-id`), so TEXT on both backends.

CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    role         TEXT NOT NULL CHECK (role IN ('all', 'api', 'worker')),
    address      TEXT,
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);

ALTER TABLE messages ADD COLUMN node_id TEXT;
CREATE INDEX messages_running_node ON messages (node_id) WHERE status = 'in_progress';

-- Claimed with SELECT ... FOR UPDATE SKIP LOCKED, so that workers never wait on each other.
CREATE TABLE turn_jobs (
    message_id       UUID PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    chat_id          UUID NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    prompt           TEXT NOT NULL,
    -- The turn's model and permission mode, as recorded on its message.
    model            TEXT NOT NULL,
    permission_mode  TEXT NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    claimed_by       TEXT,
    lease_expires_at TIMESTAMPTZ,
    attempts         BIGINT NOT NULL
);
CREATE INDEX turn_jobs_order ON turn_jobs (created_at);

-- Written, then announced with NOTIFY agentbox_controls (payload: the node id); the row
-- is what counts, the notification only wakes the node early.
CREATE TABLE turn_controls (
    id         UUID PRIMARY KEY,
    node_id    TEXT NOT NULL,
    chat_id    UUID NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    message_id UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    command    JSON NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX turn_controls_node ON turn_controls (node_id, id);

-- Set while the chat's queue waits for `send now` (its last turn was interrupted, or a
-- restart cut it off): shared, so that every node moves the queue the same way.
ALTER TABLE chats ADD COLUMN queue_paused_at TIMESTAMPTZ;
