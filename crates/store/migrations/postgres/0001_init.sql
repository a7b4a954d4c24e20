-- The PostgreSQL schema: the same tables, columns, keys, indexes and checks as the SQLite
-- migrations 0001-0004 together (the schema-parity test in crates/store/tests compares
-- them), with these types where SQLite has TEXT:
--   ids of our own (users, chats, messages, checkpoints, rules, queued prompts) -> UUID;
--   timestamps -> TIMESTAMPTZ (microseconds; the store writes them at that precision on
--   both backends, so they read back the same);
--   JSON documents -> JSON, not JSONB: JSON keeps the text exactly as written and accepts
--   every string serde_json writes, where JSONB would refuse "\u0000" (a NUL in a tool's
--   output) and rewrite the document.
-- Append-only: a change is a new file.

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    email         TEXT NOT NULL,
    username      TEXT,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL
);
-- Emails are stored lower-cased, so this also makes them unique without regard to case.
CREATE UNIQUE INDEX users_email ON users (email);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

CREATE TABLE chats (
    id                  UUID PRIMARY KEY,
    user_id             UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title               TEXT NOT NULL,
    model               TEXT NOT NULL,
    permission_mode     TEXT NOT NULL,
    -- The CLI session the next turn resumes.
    session_id          TEXT,
    sandbox_provider    TEXT NOT NULL,
    -- The seq of the chat's latest event: incremented by the UPDATE in the transaction
    -- that appends an event, whose row lock makes concurrent appenders (of any process)
    -- wait, so seq is strictly increasing without gaps per chat.
    last_seq            BIGINT NOT NULL DEFAULT 0,
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    -- Appended to the agent's system prompt in this chat.
    custom_instructions TEXT,
    -- NULL: the CLI's default thinking budget; 0: thinking off; N: at most N thinking tokens.
    max_thinking_tokens BIGINT
);
CREATE INDEX chats_user ON chats (user_id, updated_at);

CREATE TABLE messages (
    id              UUID PRIMARY KEY,
    chat_id         UUID NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    position        BIGINT NOT NULL,
    role            TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    status          TEXT NOT NULL
                    CHECK (status IN ('in_progress', 'completed', 'failed', 'interrupted')),
    model           TEXT,
    permission_mode TEXT,
    session_id      TEXT,
    total_cost_usd  DOUBLE PRECISION,
    usage           JSON,
    checkpoint_id   UUID,
    created_at      TIMESTAMPTZ NOT NULL,
    completed_at    TIMESTAMPTZ,
    -- Set when a restore rewound the conversation to before the message.
    hidden_at       TIMESTAMPTZ
);
CREATE UNIQUE INDEX messages_chat_position ON messages (chat_id, position);
-- One turn at a time per chat, enforced by the database so that two API nodes cannot both
-- start one.
CREATE UNIQUE INDEX messages_one_turn_per_chat ON messages (chat_id) WHERE status = 'in_progress';

-- The durable event log: what SSE replays and what a message's content is made of.
CREATE TABLE chat_events (
    chat_id            UUID NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    seq                BIGINT NOT NULL,
    message_id         UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    type               TEXT NOT NULL,
    parent_tool_use_id TEXT,
    data               JSON NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (chat_id, seq)
);
CREATE INDEX chat_events_message ON chat_events (message_id, seq);

CREATE TABLE user_settings (
    user_id               UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- Appended to the agent's system prompt in every chat of the user.
    custom_instructions   TEXT,
    updated_at            TIMESTAMPTZ NOT NULL,
    -- Hosts the user's sandboxes may reach besides the server's allow-list; NULL for none.
    sandbox_allowed_hosts JSON
);

-- One row per `permission_request` event, written in the same transaction as that event and
-- updated in the same transaction as its `permission_resolved` event.
CREATE TABLE permission_requests (
    chat_id     UUID NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    -- The CLI's id for the request; unique within a chat.
    request_id  TEXT NOT NULL,
    message_id  UUID NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    -- The seq of the `permission_request` event.
    seq         BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('tool', 'question', 'plan')),
    tool_name   TEXT NOT NULL,
    input       JSON NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'allowed', 'denied')),
    resolved_by TEXT,
    created_at  TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ,
    resolved_at TIMESTAMPTZ,
    PRIMARY KEY (chat_id, request_id)
);
CREATE INDEX permission_requests_pending ON permission_requests (chat_id) WHERE status = 'pending';

-- "Always allow" rules of a chat. A NULL rule_content allows every call of the tool.
CREATE TABLE permission_rules (
    id           UUID PRIMARY KEY,
    chat_id      UUID NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    tool_name    TEXT NOT NULL,
    rule_content TEXT,
    created_at   TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX permission_rules_unique
    ON permission_rules (chat_id, tool_name, COALESCE(rule_content, ''));

-- Prompts sent while a turn was running, waiting to run in `position` order.
CREATE TABLE queued_messages (
    id              UUID PRIMARY KEY,
    chat_id         UUID NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    position        BIGINT NOT NULL,
    prompt          TEXT NOT NULL,
    model           TEXT,
    permission_mode TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX queued_messages_chat_position ON queued_messages (chat_id, position);

-- Checkpoints of a chat's workspace (the files are in the checkpoint store).
CREATE TABLE checkpoints (
    id               UUID PRIMARY KEY,
    chat_id          UUID NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    message_id       UUID REFERENCES messages (id) ON DELETE SET NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('turn', 'before_restore', 'fork')),
    session_id       TEXT,
    -- JSON array of the ids of the messages visible when the checkpoint was taken.
    visible_messages JSON NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL
);
CREATE INDEX checkpoints_chat ON checkpoints (chat_id, created_at);
