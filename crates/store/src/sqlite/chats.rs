//! Chats on SQLite; every query behind a request is scoped by the user.

use agentbox_protocol::api::PermissionMode;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use super::Sqlite;
use crate::Result;
use crate::records::{
    ChatListing, ChatRecord, ChatRepositoryRecord, ChatUpdate, Spending, chat_columns,
    chat_from_row, chat_repository_columns, chat_repository_from_row, listing_from_row, now,
};
use crate::repository::ChatRepository;
use crate::search::{self, ChatQuery};

/// The chat list's columns: the chat and its preview, the start of its latest visible
/// prompt or reply (found through the log's primary key, newest first).
macro_rules! listing {
    ($search:literal) => {
        concat!(
            "SELECT ",
            chat_columns!(),
            ", (SELECT substr(json_extract(e.data, '$.text'), 1, 300)
                FROM chat_events e JOIN messages m ON m.id = e.message_id
                WHERE e.chat_id = chats.id AND e.type IN ('user_text', 'assistant_text')
                  AND m.hidden_at IS NULL
                ORDER BY e.seq DESC LIMIT 1) AS preview
             FROM chats
             WHERE user_id = $1
               AND ($2 IS NULL OR (pinned_at IS NOT NULL) = $2)
               AND ($3 IS NULL OR (archived_at IS NOT NULL) = $3) ",
            $search,
            " ORDER BY updated_at DESC, id DESC"
        )
    };
}

/// The words are matched in the FTS5 index; `lower()` folds ASCII only, so a title is
/// matched without regard to case for ASCII letters.
const LIST: &str = listing!("");
const TITLE_SEARCH: &str = listing!("AND instr(lower(title), $4) > 0");
const FULL_SEARCH: &str = listing!(
    "AND (instr(lower(title), $4) > 0 OR id IN (
         SELECT s.chat_id FROM message_search s JOIN messages m ON m.id = s.message_id
         WHERE message_search MATCH $5 AND m.hidden_at IS NULL))"
);

#[async_trait]
impl ChatRepository for Sqlite {
    async fn create_chat(&self, record: &ChatRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO chats (id, user_id, title, model, permission_mode, sandbox_provider,
                                last_seq, custom_instructions, max_thinking_tokens,
                                title_source, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 0, $8, $9, $10, $7, $7)",
        )
        .bind(record.id.to_string())
        .bind(record.user_id.to_string())
        .bind(&record.title)
        .bind(&record.model)
        .bind(record.permission_mode.as_str())
        .bind(&record.sandbox_provider)
        .bind(record.created_at)
        .bind(&record.custom_instructions)
        .bind(record.max_thinking_tokens.map(i64::from))
        .bind(record.title_source.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_chats(&self, user_id: Uuid) -> Result<Vec<ChatRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            chat_columns!(),
            " FROM chats WHERE user_id = $1 ORDER BY updated_at DESC, id DESC"
        ))
        .bind(user_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(chat_from_row).collect()
    }

    async fn chat(&self, user_id: Uuid, chat_id: Uuid) -> Result<Option<ChatRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            chat_columns!(),
            " FROM chats WHERE id = $1 AND user_id = $2"
        ))
        .bind(chat_id.to_string())
        .bind(user_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(chat_from_row).transpose()
    }

    async fn chat_unscoped(&self, chat_id: Uuid) -> Result<Option<ChatRecord>> {
        let row = sqlx::query(concat!("SELECT ", chat_columns!(), " FROM chats WHERE id = $1"))
            .bind(chat_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(chat_from_row).transpose()
    }

    async fn update_chat(
        &self,
        user_id: Uuid,
        chat_id: Uuid,
        update: ChatUpdate,
    ) -> Result<Option<ChatRecord>> {
        let touches = update.touches_activity();
        let row = sqlx::query(concat!(
            "UPDATE chats SET title = COALESCE($3, title), model = COALESCE($4, model),
                              title_source = CASE WHEN $3 IS NULL THEN title_source
                                                  ELSE 'user' END,
                              permission_mode = COALESCE($5, permission_mode),
                              updated_at = CASE WHEN $13 THEN $6 ELSE updated_at END,
                              custom_instructions = CASE WHEN $7 THEN $8
                                                         ELSE custom_instructions END,
                              max_thinking_tokens = CASE WHEN $9 THEN $10
                                                         ELSE max_thinking_tokens END,
                              pinned_at = CASE WHEN $11 IS NULL THEN pinned_at
                                               WHEN $11 THEN COALESCE(pinned_at, $6)
                                               ELSE NULL END,
                              archived_at = CASE WHEN $12 IS NULL THEN archived_at
                                                 WHEN $12 THEN COALESCE(archived_at, $6)
                                                 ELSE NULL END
             WHERE id = $1 AND user_id = $2
             RETURNING ",
            chat_columns!()
        ))
        .bind(chat_id.to_string())
        .bind(user_id.to_string())
        .bind(update.title)
        .bind(update.model)
        .bind(update.permission_mode.map(PermissionMode::as_str))
        .bind(now())
        .bind(update.custom_instructions.is_some())
        .bind(update.custom_instructions.flatten())
        .bind(update.max_thinking_tokens.is_some())
        .bind(update.max_thinking_tokens.flatten().map(i64::from))
        .bind(update.pinned)
        .bind(update.archived)
        .bind(touches)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(chat_from_row).transpose()
    }

    async fn delete_chat(&self, user_id: Uuid, chat_id: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM chats WHERE id = $1 AND user_id = $2")
            .bind(chat_id.to_string())
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_chat_repository(&self, repository: &ChatRepositoryRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO chat_repositories (chat_id, url, branch, secret, directory, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(repository.chat_id.to_string())
        .bind(&repository.url)
        .bind(&repository.branch)
        .bind(&repository.secret)
        .bind(&repository.directory)
        .bind(repository.created_at)
        .execute(&self.pool)
        .await
        .map_err(|err| crate::conflict_on_unique(err, "repository_exists"))?;
        Ok(())
    }

    async fn chat_repository(&self, chat_id: Uuid) -> Result<Option<ChatRepositoryRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            chat_repository_columns!(),
            " FROM chat_repositories WHERE chat_id = $1"
        ))
        .bind(chat_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(chat_repository_from_row).transpose()
    }

    async fn clear_session_id(&self, chat_id: Uuid) -> Result<()> {
        sqlx::query("UPDATE chats SET session_id = NULL WHERE id = $1")
            .bind(chat_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn find_chats(&self, user_id: Uuid, query: &ChatQuery) -> Result<Vec<ChatListing>> {
        let search = search::text(query.search.as_deref());
        let words = search.as_deref().map(search::words).unwrap_or_default();
        let matcher = search::fts5_query(&words);
        let sql = match (&search, &matcher) {
            (None, _) => LIST,
            (Some(_), None) => TITLE_SEARCH,
            (Some(_), Some(_)) => FULL_SEARCH,
        };
        // Each query has the parameters it names and no more.
        let mut statement =
            sqlx::query(sql).bind(user_id.to_string()).bind(query.pinned).bind(query.archived);
        if let Some(text) = search {
            statement = statement.bind(text);
        }
        if let Some(matcher) = matcher {
            statement = statement.bind(matcher);
        }
        let rows = statement.fetch_all(&self.pool).await?;
        rows.iter().map(listing_from_row).collect()
    }

    async fn set_generated_title(&self, chat_id: Uuid, title: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE chats SET title = $2, title_source = 'generated'
             WHERE id = $1 AND title_source = 'default'",
        )
        .bind(chat_id.to_string())
        .bind(title)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn spending(
        &self,
        user_id: Uuid,
        chat_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Spending> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN m.chat_id = $2 THEN m.total_cost_usd END), 0.0) AS chat_usd,
                    COALESCE(SUM(CASE WHEN m.completed_at >= $3 THEN m.total_cost_usd END), 0.0)
                        AS since_usd
             FROM messages m JOIN chats c ON c.id = m.chat_id
             WHERE c.user_id = $1 AND m.total_cost_usd IS NOT NULL
               AND (m.chat_id = $2 OR m.completed_at >= $3)",
        )
        .bind(user_id.to_string())
        .bind(chat_id.to_string())
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(Spending { chat_usd: row.try_get("chat_usd")?, since_usd: row.try_get("since_usd")? })
    }
}
