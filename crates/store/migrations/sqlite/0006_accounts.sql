-- Accounts for a team: roles, disabled accounts, refresh-token families and invites.

-- 1 for an administrator. The first account of an installation is one (create_user sets it
-- in the statement that inserts it, so two first registrations cannot both get it).
ALTER TABLE users ADD COLUMN is_admin BIGINT NOT NULL DEFAULT 0 CHECK (is_admin IN (0, 1));
-- Set while an administrator has disabled the account: its tokens stop working at once.
ALTER TABLE users ADD COLUMN disabled_at TEXT;

-- Every refresh token belongs to the family started by one sign-in; rotation keeps the
-- family. A rotated token is kept (used_at set) until it expires, so that presenting it
-- again is recognised as reuse and revokes the whole family. Tokens issued before this
-- migration each make a family of their own.
ALTER TABLE refresh_tokens ADD COLUMN family_id TEXT NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN used_at TEXT;
UPDATE refresh_tokens SET family_id = token_hash;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- Single-use invitations to register, created by administrators when registration is by
-- invite. Only the token's SHA-256 is stored.
CREATE TABLE invites (
    id         TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    created_by TEXT REFERENCES users (id) ON DELETE SET NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    used_by    TEXT REFERENCES users (id) ON DELETE SET NULL
);
CREATE UNIQUE INDEX invites_token ON invites (token_hash);
