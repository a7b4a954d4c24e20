//! Turns on SQLite: started and finished atomically together with their events.

use std::collections::HashMap;

use agentbox_protocol::api::{Message, PermissionMode};
use agentbox_protocol::event::ChatEvent;
use async_trait::async_trait;
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::Sqlite;
use super::events::append;
use crate::records::{
    Fields, StartedTurn, TurnResult, event_columns, event_from_row, message_columns,
    message_from_row, now, turn_messages, user_text,
};
use crate::repository::TurnRepository;
use crate::{Result, StoreError, conflict_on_unique};

#[async_trait]
impl TurnRepository for Sqlite {
    async fn begin_turn(
        &self,
        chat_id: Uuid,
        prompt: &str,
        model: &str,
        permission_mode: PermissionMode,
    ) -> Result<StartedTurn> {
        let mut tx = self.write().await?;
        let started = insert_turn(&mut tx, chat_id, prompt, model, permission_mode).await?;
        tx.commit().await?;
        Ok(started)
    }

    async fn finish_turn(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
        result: TurnResult,
    ) -> Result<ChatEvent> {
        let usage = result.checked_usage()?;
        let mut tx = self.write().await?;
        let updated = sqlx::query(
            "UPDATE messages SET status = $3, total_cost_usd = $4, usage = $5,
                                 session_id = $6, completed_at = $7
             WHERE id = $1 AND chat_id = $2 AND status = 'in_progress'",
        )
        .bind(message_id.to_string())
        .bind(chat_id.to_string())
        .bind(result.status.as_str())
        .bind(result.total_cost_usd)
        .bind(usage)
        .bind(&result.session_id)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::Conflict("turn_not_running"));
        }
        if let Some(session_id) = &result.session_id {
            sqlx::query("UPDATE chats SET session_id = $2 WHERE id = $1")
                .bind(chat_id.to_string())
                .bind(session_id)
                .execute(&mut *tx)
                .await?;
        }
        let event = append(&mut tx, chat_id, result.completed_event(message_id)).await?;
        tx.commit().await?;
        Ok(event)
    }

    async fn running_turn(&self, chat_id: Uuid) -> Result<Option<Uuid>> {
        let row =
            sqlx::query("SELECT id FROM messages WHERE chat_id = $1 AND status = 'in_progress'")
                .bind(chat_id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| row.id("id")).transpose()
    }

    async fn unfinished_turns(&self) -> Result<Vec<(Uuid, Uuid)>> {
        let rows = sqlx::query("SELECT chat_id, id FROM messages WHERE status = 'in_progress'")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok((row.id("chat_id")?, row.id("id")?))).collect()
    }

    async fn messages(&self, chat_id: Uuid) -> Result<Vec<Message>> {
        // One read transaction, so that the messages and the events are of the same moment.
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE chat_id = $1 AND hidden_at IS NULL ORDER BY position"
        ))
        .bind(chat_id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        let event_rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM chat_events WHERE chat_id = $1 ORDER BY seq"
        ))
        .bind(chat_id.to_string())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut content: HashMap<Uuid, Vec<ChatEvent>> = HashMap::new();
        for row in &event_rows {
            let event = event_from_row(row)?;
            content.entry(event.message_id).or_default().push(event);
        }
        rows.iter().map(|row| message_from_row(row, chat_id, &mut content)).collect()
    }
}

/// [`TurnRepository::begin_turn`] inside a transaction the caller commits.
pub(super) async fn insert_turn(
    tx: &mut SqliteConnection,
    chat_id: Uuid,
    prompt: &str,
    model: &str,
    permission_mode: PermissionMode,
) -> Result<StartedTurn> {
    let last: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(position), 0) FROM messages WHERE chat_id = $1")
            .bind(chat_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
    let created_at = now();
    let user_message_id = Uuid::now_v7();
    let message_id = Uuid::now_v7();
    for (id, offset, role, status) in turn_messages(user_message_id, message_id) {
        sqlx::query(
            "INSERT INTO messages (id, chat_id, position, role, status, model,
                                   permission_mode, created_at, completed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id.to_string())
        .bind(chat_id.to_string())
        .bind(last + offset)
        .bind(role.as_str())
        .bind(status.as_str())
        .bind(model)
        .bind(permission_mode.as_str())
        .bind(created_at)
        .bind(status.is_final().then_some(created_at))
        .execute(&mut *tx)
        .await
        .map_err(|err| match &err {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            _ => conflict_on_unique(err, "turn_in_progress"),
        })?;
    }
    let user_event = append(&mut *tx, chat_id, user_text(user_message_id, prompt)).await?;
    Ok(StartedTurn { user_message_id, message_id, user_event })
}
