-- Hosts a user's sandboxes may reach through the egress proxy, besides the server's
-- allow-list: a JSON array of host patterns, NULL for none.
ALTER TABLE user_settings ADD COLUMN sandbox_allowed_hosts TEXT;
