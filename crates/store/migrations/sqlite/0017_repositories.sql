-- A chat started from a git repository (issue 14): what to clone into its workspace and
-- which of the owner's secrets authenticates git. `directory` is the clone's name under
-- the sandbox's home. `secret` names a secret, never holds a value; NULL: the owner's
-- GITHUB_TOKEN if they have one, else no credentials.
CREATE TABLE chat_repositories (
    chat_id    TEXT PRIMARY KEY REFERENCES chats (id) ON DELETE CASCADE,
    url        TEXT NOT NULL,
    branch     TEXT,
    secret     TEXT,
    directory  TEXT NOT NULL,
    created_at TEXT NOT NULL
);
