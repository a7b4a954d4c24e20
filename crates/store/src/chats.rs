//! Chats: each belongs to one user, and every query here is scoped by that user so that a
//! chat of someone else is indistinguishable from a chat that does not exist.

use agentbox_protocol::api::PermissionMode;
use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::{Result, Store, StoreError, now, parse_uuid};

#[derive(Clone, Debug, PartialEq)]
pub struct ChatRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    pub model: String,
    pub permission_mode: PermissionMode,
    pub session_id: Option<String>,
    pub sandbox_provider: String,
    pub last_seq: i64,
    pub custom_instructions: Option<String>,
    /// `None`: the CLI's default; `Some(0)`: thinking off.
    pub max_thinking_tokens: Option<u32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Clone, Debug)]
pub struct NewChat {
    pub user_id: Uuid,
    pub title: String,
    pub model: String,
    pub permission_mode: PermissionMode,
    pub sandbox_provider: String,
    pub custom_instructions: Option<String>,
    pub max_thinking_tokens: Option<u32>,
}

/// Fields to change; `None` leaves a field as it is, `Some(None)` clears an optional one.
#[derive(Clone, Debug, Default)]
pub struct ChatUpdate {
    pub title: Option<String>,
    pub model: Option<String>,
    pub permission_mode: Option<PermissionMode>,
    pub custom_instructions: Option<Option<String>>,
    pub max_thinking_tokens: Option<Option<u32>>,
}

/// The columns `chat_from_row` reads; a macro so that queries stay `&'static str`.
macro_rules! chat_columns {
    () => {
        "id, user_id, title, model, permission_mode, session_id, sandbox_provider, last_seq, \
         custom_instructions, max_thinking_tokens, created_at, updated_at"
    };
}

fn chat_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ChatRecord> {
    let mode: String = row.try_get("permission_mode")?;
    let thinking: Option<i64> = row.try_get("max_thinking_tokens")?;
    Ok(ChatRecord {
        id: parse_uuid(row.try_get("id")?)?,
        user_id: parse_uuid(row.try_get("user_id")?)?,
        title: row.try_get("title")?,
        model: row.try_get("model")?,
        permission_mode: PermissionMode::parse(&mode)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown permission mode {mode:?}")))?,
        session_id: row.try_get("session_id")?,
        sandbox_provider: row.try_get("sandbox_provider")?,
        last_seq: row.try_get("last_seq")?,
        custom_instructions: row.try_get("custom_instructions")?,
        max_thinking_tokens: thinking
            .map(|n| {
                u32::try_from(n)
                    .map_err(|_| StoreError::Corrupt(format!("thinking budget {n} out of range")))
            })
            .transpose()?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    pub async fn create_chat(&self, chat: NewChat) -> Result<ChatRecord> {
        let now = now();
        let record = ChatRecord {
            id: Uuid::now_v7(),
            user_id: chat.user_id,
            title: chat.title,
            model: chat.model,
            permission_mode: chat.permission_mode,
            session_id: None,
            sandbox_provider: chat.sandbox_provider,
            last_seq: 0,
            custom_instructions: chat.custom_instructions,
            max_thinking_tokens: chat.max_thinking_tokens,
            created_at: now,
            updated_at: now,
        };
        sqlx::query(
            "INSERT INTO chats (id, user_id, title, model, permission_mode, sandbox_provider,
                                last_seq, custom_instructions, max_thinking_tokens,
                                created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 0, $8, $9, $7, $7)",
        )
        .bind(record.id.to_string())
        .bind(record.user_id.to_string())
        .bind(&record.title)
        .bind(&record.model)
        .bind(record.permission_mode.as_str())
        .bind(&record.sandbox_provider)
        .bind(now)
        .bind(&record.custom_instructions)
        .bind(record.max_thinking_tokens.map(i64::from))
        .execute(&self.pool)
        .await?;
        Ok(record)
    }

    /// The user's chats, most recently active first.
    pub async fn list_chats(&self, user_id: Uuid) -> Result<Vec<ChatRecord>> {
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

    /// The chat if it exists and belongs to `user_id`.
    pub async fn chat(&self, user_id: Uuid, chat_id: Uuid) -> Result<Option<ChatRecord>> {
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

    /// The chat whoever owns it: for the turn runner, never for a request handler.
    pub async fn chat_unscoped(&self, chat_id: Uuid) -> Result<Option<ChatRecord>> {
        let row = sqlx::query(concat!("SELECT ", chat_columns!(), " FROM chats WHERE id = $1"))
            .bind(chat_id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(chat_from_row).transpose()
    }

    pub async fn update_chat(
        &self,
        user_id: Uuid,
        chat_id: Uuid,
        update: ChatUpdate,
    ) -> Result<Option<ChatRecord>> {
        let row = sqlx::query(concat!(
            "UPDATE chats SET title = COALESCE($3, title), model = COALESCE($4, model),
                              permission_mode = COALESCE($5, permission_mode), updated_at = $6,
                              custom_instructions = CASE WHEN $7 THEN $8
                                                         ELSE custom_instructions END,
                              max_thinking_tokens = CASE WHEN $9 THEN $10
                                                         ELSE max_thinking_tokens END
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
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(chat_from_row).transpose()
    }

    /// Delete the chat with its messages and events; `false` if there was no such chat.
    pub async fn delete_chat(&self, user_id: Uuid, chat_id: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM chats WHERE id = $1 AND user_id = $2")
            .bind(chat_id.to_string())
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Forget the CLI session (when it can no longer be resumed).
    pub async fn clear_session_id(&self, chat_id: Uuid) -> Result<()> {
        sqlx::query("UPDATE chats SET session_id = NULL WHERE id = $1")
            .bind(chat_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
