-- The first schema. Types and constraints are chosen so that PostgreSQL can follow with the
-- same tables: TEXT ids (UUIDs), TEXT timestamps (RFC 3339, TIMESTAMPTZ there), TEXT JSON
-- (JSONB there), BIGINT sequence numbers, CHECK constraints instead of SQLite-only features.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL,
    username      TEXT,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
-- Emails are stored lower-cased, so this also makes them unique without regard to case.
CREATE UNIQUE INDEX users_email ON users (email);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE chats (
    id               TEXT PRIMARY KEY,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title            TEXT NOT NULL,
    model            TEXT NOT NULL,
    permission_mode  TEXT NOT NULL,
    -- The CLI session the next turn resumes.
    session_id       TEXT,
    sandbox_provider TEXT NOT NULL,
    -- The seq of the chat's latest event: incremented in the same transaction that appends
    -- an event, which makes seq strictly increasing without gaps per chat.
    last_seq         BIGINT NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX chats_user ON chats (user_id, updated_at);

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    chat_id         TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    position        BIGINT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    status          TEXT NOT NULL
                    CHECK (status IN ('in_progress', 'completed', 'failed', 'interrupted')),
    model           TEXT,
    permission_mode TEXT,
    session_id      TEXT,
    total_cost_usd  DOUBLE PRECISION,
    usage           TEXT,
    checkpoint_id   TEXT,
    created_at      TEXT NOT NULL,
    completed_at    TEXT
);
CREATE UNIQUE INDEX messages_chat_position ON messages (chat_id, position);
-- One turn at a time per chat, enforced by the database so that two API nodes cannot both
-- start one.
CREATE UNIQUE INDEX messages_one_turn_per_chat ON messages (chat_id) WHERE status = 'in_progress';

-- The durable event log: what SSE replays and what a message's content is made of.
CREATE TABLE chat_events (
    chat_id            TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq                BIGINT NOT NULL,
    message_id         TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    type               TEXT NOT NULL,
    parent_tool_use_id TEXT,
    data               TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    PRIMARY KEY (chat_id, seq)
);
CREATE INDEX chat_events_message ON chat_events (message_id, seq);
