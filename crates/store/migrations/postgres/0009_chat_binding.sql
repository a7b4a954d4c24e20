-- Where a chat's sandbox lives: the same column as SQLite's 0012_chat_binding.sql. The
-- worker that last started the chat's turn; the durable queue gives the chat's jobs to it
-- alone while its heartbeat is fresh. NULL: never run on a worker.
ALTER TABLE chats ADD COLUMN sandbox_node_id TEXT;
