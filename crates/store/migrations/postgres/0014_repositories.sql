-- A chat started from a git repository (as SQLite's 0017_repositories.sql, whose comments
-- say why).
CREATE TABLE chat_repositories (
    chat_id    UUID PRIMARY KEY REFERENCES chats (id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    branch     TEXT,
    secret     TEXT,
    directory  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
