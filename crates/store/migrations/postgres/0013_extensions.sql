-- Agent extensions (as SQLite's 0016_extensions.sql, whose comments say why).
CREATE TABLE extensions (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id    UUID REFERENCES chats (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('command', 'skill', 'agent', 'mcp_server')),
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX extensions_user_name ON extensions (user_id, kind, name) WHERE chat_id IS NULL;
CREATE UNIQUE INDEX extensions_chat_name ON extensions (chat_id, kind, name) WHERE chat_id IS NOT NULL;
