//! Queued prompts on SQLite, in `position` order.

use agentbox_protocol::api::{PermissionMode, QueuedMessage};
use async_trait::async_trait;
use uuid::Uuid;

use super::Sqlite;
use super::turns::insert_turn;
use crate::records::{Fields, QueuedUpdate, StartedTurn, now, queued_columns, queued_from_row};
use crate::repository::QueueRepository;
use crate::{Result, StoreError};

#[async_trait]
impl QueueRepository for Sqlite {
    async fn enqueue(
        &self,
        chat_id: Uuid,
        prompt: &str,
        model: Option<&str>,
        permission_mode: Option<PermissionMode>,
    ) -> Result<QueuedMessage> {
        let mut tx = self.write().await?;
        let last: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(position), 0) FROM queued_messages WHERE chat_id = $1",
        )
        .bind(chat_id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        let row = sqlx::query(concat!(
            "INSERT INTO queued_messages (id, chat_id, position, prompt, model, permission_mode,
                                          created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING ",
            queued_columns!()
        ))
        .bind(Uuid::now_v7().to_string())
        .bind(chat_id.to_string())
        .bind(last + 1)
        .bind(prompt)
        .bind(model)
        .bind(permission_mode.map(PermissionMode::as_str))
        .bind(now())
        .fetch_one(&mut *tx)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            _ => StoreError::from(err),
        })?;
        let queued = queued_from_row(&row)?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn queue(&self, chat_id: Uuid) -> Result<Vec<QueuedMessage>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            queued_columns!(),
            " FROM queued_messages WHERE chat_id = $1 ORDER BY position"
        ))
        .bind(chat_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(queued_from_row).collect()
    }

    async fn update_queued(
        &self,
        chat_id: Uuid,
        id: Uuid,
        update: QueuedUpdate,
    ) -> Result<Option<QueuedMessage>> {
        let row = sqlx::query(concat!(
            "UPDATE queued_messages SET prompt = COALESCE($3, prompt), model = COALESCE($4, model),
                    permission_mode = COALESCE($5, permission_mode), updated_at = $6
             WHERE chat_id = $1 AND id = $2 RETURNING ",
            queued_columns!()
        ))
        .bind(chat_id.to_string())
        .bind(id.to_string())
        .bind(update.prompt)
        .bind(update.model)
        .bind(update.permission_mode.map(PermissionMode::as_str))
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(queued_from_row).transpose()
    }

    async fn delete_queued(&self, chat_id: Uuid, id: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM queued_messages WHERE chat_id = $1 AND id = $2")
            .bind(chat_id.to_string())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn move_queued_to_front(&self, chat_id: Uuid, id: Uuid) -> Result<bool> {
        let mut tx = self.write().await?;
        let first: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MIN(position), 0) FROM queued_messages WHERE chat_id = $1",
        )
        .bind(chat_id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        let done =
            sqlx::query("UPDATE queued_messages SET position = $3 WHERE chat_id = $1 AND id = $2")
                .bind(chat_id.to_string())
                .bind(id.to_string())
                .bind(first - 1)
                .execute(&mut *tx)
                .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn begin_queued_turn(
        &self,
        chat_id: Uuid,
        id: Option<Uuid>,
        model: &str,
        permission_mode: PermissionMode,
    ) -> Result<Option<(QueuedMessage, StartedTurn)>> {
        let mut tx = self.write().await?;
        let row = match id {
            Some(id) => {
                sqlx::query(concat!(
                    "SELECT ",
                    queued_columns!(),
                    " FROM queued_messages WHERE chat_id = $1 AND id = $2"
                ))
                .bind(chat_id.to_string())
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    queued_columns!(),
                    " FROM queued_messages WHERE chat_id = $1 ORDER BY position LIMIT 1"
                ))
                .bind(chat_id.to_string())
                .fetch_optional(&mut *tx)
                .await?
            }
        };
        let Some(row) = row else { return Ok(None) };
        let mut queued = queued_from_row(&row)?;
        sqlx::query("DELETE FROM queued_messages WHERE id = $1")
            .bind(queued.id.to_string())
            .execute(&mut *tx)
            .await?;
        let started = insert_turn(
            &mut tx,
            chat_id,
            &queued.prompt,
            queued.model.as_deref().unwrap_or(model),
            queued.permission_mode.unwrap_or(permission_mode),
        )
        .await?;
        tx.commit().await?;
        queued.message_id = Some(started.message_id);
        Ok(Some((queued, started)))
    }

    async fn chats_with_queued_messages(&self) -> Result<Vec<Uuid>> {
        let rows = sqlx::query("SELECT DISTINCT chat_id FROM queued_messages")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| row.id("chat_id")).collect()
    }

    async fn set_queue_paused(&self, chat_id: Uuid, paused: bool) -> Result<()> {
        sqlx::query("UPDATE chats SET queue_paused_at = $2 WHERE id = $1")
            .bind(chat_id.to_string())
            .bind(paused.then(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn queue_paused(&self, chat_id: Uuid) -> Result<bool> {
        let paused: Option<bool> =
            sqlx::query_scalar("SELECT queue_paused_at IS NOT NULL FROM chats WHERE id = $1")
                .bind(chat_id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(paused.unwrap_or(false))
    }

    async fn pause_waiting_queues(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE chats SET queue_paused_at = $1
             WHERE queue_paused_at IS NULL
               AND id IN (SELECT chat_id FROM queued_messages)",
        )
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}
