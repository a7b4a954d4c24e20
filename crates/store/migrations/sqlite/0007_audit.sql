-- The audit log of security events (sign-ins, failures, rate limits, token reuse, admin
-- actions). No foreign keys: an entry outlives the account it names. Kept for the
-- configured time (`--audit-retention-days`), then deleted.
CREATE TABLE audit_events (
    id         TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    kind       TEXT NOT NULL,
    -- Who did it (the signed-in user, or the account a sign-in was for), if known.
    actor_id   TEXT,
    -- Whom it was done to (admin actions).
    target_id  TEXT,
    -- The email a sign-in attempt named (lower-cased), also when no account has it.
    email      TEXT,
    -- The client's address.
    address    TEXT,
    -- More about it, a JSON object.
    detail     TEXT
);
CREATE INDEX audit_events_time ON audit_events (created_at);
CREATE INDEX audit_events_kind ON audit_events (kind, created_at);
