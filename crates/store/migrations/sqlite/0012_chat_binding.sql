-- Where a chat's sandbox lives (issue 11, item 3): a `local` sandbox is on one worker's
-- disk, so a chat is bound to the worker that last started its turn. The durable queue
-- gives a bound chat's jobs only to that worker while its heartbeat is fresh; once it has
-- expired, the next worker to claim one rebinds the chat to itself and restores the
-- workspace from the chat's newest checkpoint. NULL: never run on a worker (new chats,
-- single-process installations, chats copied by `migrate`).
ALTER TABLE chats ADD COLUMN sandbox_node_id TEXT;
