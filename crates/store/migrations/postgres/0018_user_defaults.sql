-- The model and permission mode a user's new chats start with when the request names none
-- (NULL: the server's default model, the `auto` mode).
ALTER TABLE user_settings ADD COLUMN default_model TEXT;
ALTER TABLE user_settings ADD COLUMN default_permission_mode TEXT;
