-- Users' secrets: environment variables of their sandboxes and their own model
-- credentials, sealed (crates/secrets): `sealed` is base64(nonce || ciphertext) under the
-- key `key_id`, bound to user_id, chat_id and name. Never the value in clear.
CREATE TABLE secrets (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- A chat's override of the user's secret of the same name; NULL: the user's own.
    chat_id    TEXT REFERENCES chats (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    sealed     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX secrets_user_name ON secrets (user_id, name) WHERE chat_id IS NULL;
CREATE UNIQUE INDEX secrets_chat_name ON secrets (chat_id, name) WHERE chat_id IS NOT NULL;
