-- Checkpoints of a chat's workspace, and the conversation they belong to. The files live in
-- the checkpoint store (crates/checkpoints); these rows say which turn a checkpoint was
-- taken after, which messages were visible then, and which CLI session the next turn
-- resumes after a restore to it.

CREATE TABLE checkpoints (
    -- The checkpoint store's own id.
    id               TEXT PRIMARY KEY,
    chat_id          TEXT NOT NULL REFERENCES chats (id) ON DELETE CASCADE,
    -- The assistant message the checkpoint was taken after (for a checkpoint taken before a
    -- restore: the latest visible message at that moment).
    message_id       TEXT REFERENCES messages (id) ON DELETE SET NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('turn', 'before_restore', 'fork')),
    session_id       TEXT,
    -- JSON array of the ids of the messages visible when the checkpoint was taken: a
    -- restore shows exactly these again and hides the others.
    visible_messages TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX checkpoints_chat ON checkpoints (chat_id, created_at);

-- Set when a restore rewound the conversation to before the message; a later restore can
-- show it again. Hidden messages stay in the log and are left out of the conversation.
ALTER TABLE messages ADD COLUMN hidden_at TEXT;
