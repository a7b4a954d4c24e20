-- Limits per user set by administrators, and installation settings changed at run time
-- (issue 12). Same portability rules as 0001.

-- The limits an administrator set for the user, as a JSON object: a field that is absent
-- takes the server's default (its flag), `null` is no limit, a number is the limit. NULL:
-- the user has the defaults for everything.
ALTER TABLE user_settings ADD COLUMN limits TEXT;

-- Settings of the whole installation that administrators change while it runs (the
-- registration mode), so that they survive restarts and every node reads the same. A
-- setting without a row has its flag's value.
CREATE TABLE server_settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
