-- Permission requests and "always allow" rules, queued prompts, and the agent settings of
-- chats and users (custom instructions, thinking budget). Same portability rules as 0001.

-- Appended to the agent's system prompt in this chat.
ALTER TABLE chats ADD COLUMN custom_instructions TEXT;
-- NULL: the CLI's default thinking budget; 0: thinking off; N: at most N thinking tokens.
ALTER TABLE chats ADD COLUMN max_thinking_tokens BIGINT;

CREATE TABLE user_settings (
    user_id             TEXT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- Appended to the agent's system prompt in every chat of the user.
    custom_instructions TEXT,
    updated_at          TEXT NOT NULL
);

-- One row per `permission_request` event, written in the same transaction as that event and
-- updated in the same transaction as its `permission_resolved` event, so that the open
-- requests can be listed without reading the log and never disagree with it.
CREATE TABLE permission_requests (
    chat_id     TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    -- The CLI's id for the request; unique within a chat.
    request_id  TEXT NOT NULL,
    message_id  TEXT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    -- The seq of the `permission_request` event.
    seq         BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('tool', 'question', 'plan')),
    tool_name   TEXT NOT NULL,
    input       TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'allowed', 'denied')),
    resolved_by TEXT,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    resolved_at TEXT,
    PRIMARY KEY (chat_id, request_id)
);
CREATE INDEX permission_requests_pending ON permission_requests (chat_id) WHERE status = 'pending';

-- "Always allow" rules of a chat. A NULL rule_content allows every call of the tool.
CREATE TABLE permission_rules (
    id           TEXT PRIMARY KEY,
    chat_id      TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    tool_name    TEXT NOT NULL,
    rule_content TEXT,
    created_at   TEXT NOT NULL
);
CREATE UNIQUE INDEX permission_rules_unique
    ON permission_rules (chat_id, tool_name, COALESCE(rule_content, ''));

-- Prompts sent while a turn was running, waiting to run in `position` order.
CREATE TABLE queued_messages (
    id              TEXT PRIMARY KEY,
    chat_id         TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    position        BIGINT NOT NULL,
    prompt          TEXT NOT NULL,
    model           TEXT,
    permission_mode TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE UNIQUE INDEX queued_messages_chat_position ON queued_messages (chat_id, position);
