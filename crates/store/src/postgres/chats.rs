//! Chats on PostgreSQL; every query behind a request is scoped by the user.

use agentbox_protocol::api::PermissionMode;
use async_trait::async_trait;
use uuid::Uuid;

use super::Postgres;
use crate::Result;
use crate::records::{ChatRecord, ChatUpdate, chat_columns, chat_from_row, now};
use crate::repository::ChatRepository;

#[async_trait]
impl ChatRepository for Postgres {
    async fn create_chat(&self, record: &ChatRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO chats (id, user_id, title, model, permission_mode, sandbox_provider,
                                last_seq, custom_instructions, max_thinking_tokens,
                                created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 0, $8, $9, $7, $7)",
        )
        .bind(record.id)
        .bind(record.user_id)
        .bind(&record.title)
        .bind(&record.model)
        .bind(record.permission_mode.as_str())
        .bind(&record.sandbox_provider)
        .bind(record.created_at)
        .bind(&record.custom_instructions)
        .bind(record.max_thinking_tokens.map(i64::from))
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
        .bind(user_id)
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
        .bind(chat_id)
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(chat_from_row).transpose()
    }

    async fn chat_unscoped(&self, chat_id: Uuid) -> Result<Option<ChatRecord>> {
        let row = sqlx::query(concat!("SELECT ", chat_columns!(), " FROM chats WHERE id = $1"))
            .bind(chat_id)
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
        .bind(chat_id)
        .bind(user_id)
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

    async fn delete_chat(&self, user_id: Uuid, chat_id: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM chats WHERE id = $1 AND user_id = $2")
            .bind(chat_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn clear_session_id(&self, chat_id: Uuid) -> Result<()> {
        sqlx::query("UPDATE chats SET session_id = NULL WHERE id = $1")
            .bind(chat_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
