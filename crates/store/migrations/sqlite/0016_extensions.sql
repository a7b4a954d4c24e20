-- Agent extensions (issue 13): a user's slash commands, skills, sub-agents and MCP servers,
-- and a chat's own overrides or additions (chat_id set). `body` is the definition as a
-- JSON document; an MCP server's secret values are never in it, only `{"secret": NAME}`
-- references resolved when a CLI starts.
CREATE TABLE extensions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- NULL: the user's own set; else that chat's override or addition.
    chat_id    TEXT REFERENCES chats (id) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('command', 'skill', 'agent', 'mcp_server')),
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX extensions_user_name ON extensions (user_id, kind, name) WHERE chat_id IS NULL;
CREATE UNIQUE INDEX extensions_chat_name ON extensions (chat_id, kind, name) WHERE chat_id IS NOT NULL;
