-- Finding a chat (issue 15): the same columns as SQLite's 0005, and full-text search over
-- the conversation's words.

-- 'default' until the first turn names the chat ('generated'); a title the user chose
-- ('user') is never replaced.
ALTER TABLE chats ADD COLUMN title_source TEXT NOT NULL DEFAULT 'default'
    CHECK (title_source IN ('default', 'generated', 'user'));
-- Chats made before this migration were named by their user unless they kept the default.
UPDATE chats SET title_source = 'user' WHERE title <> 'New chat';
ALTER TABLE chats ADD COLUMN pinned_at TIMESTAMPTZ;
ALTER TABLE chats ADD COLUMN archived_at TIMESTAMPTZ;

-- The text of a user_text or assistant_text event. `data ->> 'text'` fails on a text
-- holding a NUL (stored as the escape \u0000, which PostgreSQL's text type cannot hold),
-- and an index expression that fails would refuse the event itself; such a text is indexed
-- (and previewed) as the document's own text, escapes and all.
CREATE FUNCTION event_text(data json) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
    RETURN data ->> 'text';
EXCEPTION WHEN untranslatable_character THEN
    RETURN data::text;
END
$$;

-- The words of prompts and replies, for GET /api/v1/chats?q=: built-in full-text search
-- (a tsvector expression under a GIN index) rather than pg_trgm, which is an extension a
-- managed server may not offer, and which matches substrings where SQLite's FTS5 matches
-- words; with the 'simple' configuration (no stemming, no stop words) both backends find a
-- chat by the same words. Indexed in place, so there is no copy to keep in step; PostgreSQL
-- only, which the schema-parity test knows.
CREATE INDEX chat_events_search ON chat_events
    USING GIN (to_tsvector('simple', event_text(data)))
    WHERE type IN ('user_text', 'assistant_text');
