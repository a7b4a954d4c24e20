-- Users' secrets, sealed (as SQLite's 0009_secrets.sql, whose comments say why).
CREATE TABLE secrets (
    id         UUID PRIMARY KEY,
    user_id    UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    chat_id    UUID REFERENCES chats (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    sealed     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX secrets_user_name ON secrets (user_id, name) WHERE chat_id IS NULL;
CREATE UNIQUE INDEX secrets_chat_name ON secrets (chat_id, name) WHERE chat_id IS NOT NULL;
