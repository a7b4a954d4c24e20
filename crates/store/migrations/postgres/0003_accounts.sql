-- Accounts for a team: roles, disabled accounts, refresh-token families and invites (the
-- same as SQLite's 0005_accounts.sql; the comments there say why).

ALTER TABLE users ADD COLUMN is_admin BIGINT NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1));
ALTER TABLE users ADD COLUMN disabled_at TIMESTAMPTZ;

ALTER TABLE refresh_tokens ADD COLUMN family_id TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN used_at TIMESTAMPTZ;
UPDATE refresh_tokens SET family_id = token_hash;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

CREATE TABLE invites (
    id         UUID PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_by UUID REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ,
    used_by    UUID REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX invites_token ON invites (token_hash);
