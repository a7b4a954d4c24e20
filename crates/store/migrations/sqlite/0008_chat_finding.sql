-- Finding a chat (issue 15): who set a chat's title, pins and the archive, and the
-- full-text index of the conversation's words. Same portability rules as 0001.

-- 'default' until the first turn names the chat ('generated'); a title the user chose
-- ('user') is never replaced.
ALTER TABLE chats ADD COLUMN title_source TEXT NOT NULL DEFAULT 'default'
    CHECK (title_source IN ('default', 'generated', 'user'));
-- Chats made before this migration were named by their user unless they kept the default.
UPDATE chats SET title_source = 'user' WHERE title <> 'New chat';
ALTER TABLE chats ADD COLUMN pinned_at TEXT;
ALTER TABLE chats ADD COLUMN archived_at TEXT;

-- The words of every prompt and reply, for GET /api/v1/chats?q=. SQLite only: PostgreSQL
-- indexes the same text in place (a GIN index over chat_events), so the schema-parity test
-- leaves this table and its shadow tables out. It keeps its own copy of the text rather than
-- pointing at chat_events' rowids, which a VACUUM may renumber.
CREATE VIRTUAL TABLE message_search USING fts5 (
    body,
    chat_id UNINDEXED,
    message_id UNINDEXED
);

-- Triggers keep the index in step with every way an event is written (a turn, a fork's
-- copy, an installation copy) without each writer having to remember it.
CREATE TRIGGER message_search_insert AFTER INSERT ON chat_events
WHEN NEW.type IN ('user_text', 'assistant_text')
BEGIN
    INSERT INTO message_search (body, chat_id, message_id)
    VALUES (COALESCE(json_extract(NEW.data, '$.text'), ''), NEW.chat_id, NEW.message_id);
END;

-- Events go only with their chat (ON DELETE CASCADE), so the index is cleaned per chat.
CREATE TRIGGER message_search_delete AFTER DELETE ON chats
BEGIN
    DELETE FROM message_search WHERE chat_id = OLD.id;
END;

INSERT INTO message_search (body, chat_id, message_id)
SELECT COALESCE(json_extract(data, '$.text'), ''), chat_id, message_id
FROM chat_events WHERE type IN ('user_text', 'assistant_text');
