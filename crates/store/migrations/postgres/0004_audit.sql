-- The audit log of security events (as SQLite's 0006_audit.sql, whose comments say why).
CREATE TABLE audit_events (
    id         UUID PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    kind       TEXT NOT NULL,
    actor_id   UUID,
    target_id  UUID,
    email      TEXT,
    address    TEXT,
    detail     JSON
);
CREATE INDEX audit_events_time ON audit_events (created_at);
CREATE INDEX audit_events_kind ON audit_events (kind, created_at);
