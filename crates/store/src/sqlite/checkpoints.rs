//! Checkpoints' metadata, rewinds and forks on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use uuid::Uuid;

use super::Sqlite;
use super::events::append;
use crate::records::{
    ChatRecord, CheckpointKind, CheckpointRecord, Fields, NewEvent, Rewind, checkpoint_columns,
    checkpoint_from_row, now, parse_payload, rewind_event, skipped_in_copy, to_json,
};
use crate::repository::CheckpointRepository;
use crate::{Result, StoreError};

async fn visible_messages(conn: &mut sqlx::SqliteConnection, chat_id: Uuid) -> Result<Vec<Uuid>> {
    let rows = sqlx::query(
        "SELECT id FROM messages WHERE chat_id = $1 AND hidden_at IS NULL ORDER BY position",
    )
    .bind(chat_id.to_string())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|row| row.id("id")).collect()
}

#[async_trait]
impl CheckpointRepository for Sqlite {
    async fn record_checkpoint(
        &self,
        chat_id: Uuid,
        id: Uuid,
        kind: CheckpointKind,
        message_id: Option<Uuid>,
        session_id: Option<&str>,
    ) -> Result<CheckpointRecord> {
        let mut tx = self.write().await?;
        let visible = visible_messages(&mut tx, chat_id).await?;
        let created_at = now();
        sqlx::query(
            "INSERT INTO checkpoints (id, chat_id, message_id, kind, session_id, visible_messages, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id.to_string())
        .bind(chat_id.to_string())
        .bind(message_id.map(|m| m.to_string()))
        .bind(kind.as_str())
        .bind(session_id)
        .bind(to_json(&visible)?)
        .bind(created_at)
        .execute(&mut *tx)
        .await?;
        if let (CheckpointKind::Turn, Some(message_id)) = (kind, message_id) {
            sqlx::query("UPDATE messages SET checkpoint_id = $2 WHERE id = $1")
                .bind(message_id.to_string())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(CheckpointRecord {
            id,
            chat_id,
            message_id,
            kind,
            session_id: session_id.map(str::to_owned),
            visible_messages: visible,
            created_at,
        })
    }

    async fn checkpoints(&self, chat_id: Uuid) -> Result<Vec<CheckpointRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            checkpoint_columns!(),
            " FROM checkpoints WHERE chat_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(chat_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(checkpoint_from_row).collect()
    }

    async fn checkpoint(&self, chat_id: Uuid, id: Uuid) -> Result<Option<CheckpointRecord>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            checkpoint_columns!(),
            " FROM checkpoints WHERE chat_id = $1 AND id = $2"
        ))
        .bind(chat_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(checkpoint_from_row).transpose()
    }

    async fn forget_checkpoints(&self, chat_id: Uuid, ids: &[Uuid]) -> Result<()> {
        let mut tx = self.write().await?;
        for id in ids {
            sqlx::query(
                "UPDATE messages SET checkpoint_id = NULL WHERE chat_id = $1 AND checkpoint_id = $2",
            )
            .bind(chat_id.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM checkpoints WHERE chat_id = $1 AND id = $2")
                .bind(chat_id.to_string())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rewind(&self, chat_id: Uuid, to: &CheckpointRecord) -> Result<Rewind> {
        let mut tx = self.write().await?;
        let rows =
            sqlx::query("SELECT id, hidden_at FROM messages WHERE chat_id = $1 ORDER BY position")
                .bind(chat_id.to_string())
                .fetch_all(&mut *tx)
                .await?;
        let (mut hidden, mut shown) = (Vec::new(), Vec::new());
        let at = now();
        for row in &rows {
            let id = row.id("id")?;
            let was_hidden = row.opt_time("hidden_at")?.is_some();
            let visible = to.visible_messages.contains(&id);
            if visible == was_hidden {
                sqlx::query("UPDATE messages SET hidden_at = $2 WHERE id = $1")
                    .bind(id.to_string())
                    .bind((!visible).then_some(at))
                    .execute(&mut *tx)
                    .await?;
                if visible { shown.push(id) } else { hidden.push(id) }
            }
        }
        sqlx::query("UPDATE chats SET session_id = $2 WHERE id = $1")
            .bind(chat_id.to_string())
            .bind(&to.session_id)
            .execute(&mut *tx)
            .await?;
        let event = append(&mut tx, chat_id, rewind_event(to, &hidden, &shown)?).await?;
        tx.commit().await?;
        Ok(Rewind { hidden, shown, event })
    }

    async fn copy_conversation(
        &self,
        source: &ChatRecord,
        target: Uuid,
        up_to: Uuid,
        session_id: Option<&str>,
    ) -> Result<()> {
        let mut tx = self.write().await?;
        let limit: i64 =
            sqlx::query_scalar("SELECT position FROM messages WHERE chat_id = $1 AND id = $2")
                .bind(source.id.to_string())
                .bind(up_to.to_string())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or(StoreError::NotFound)?;
        let messages = sqlx::query(
            "SELECT id FROM messages WHERE chat_id = $1 AND hidden_at IS NULL AND position <= $2
             ORDER BY position",
        )
        .bind(source.id.to_string())
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let mut position = 0i64;
        for row in &messages {
            let old: String = row.try_get("id")?;
            let new = Uuid::now_v7();
            position += 1;
            sqlx::query(
                "INSERT INTO messages (id, chat_id, position, role, status, model, permission_mode,
                                       session_id, total_cost_usd, usage, checkpoint_id,
                                       created_at, completed_at)
                 SELECT $1, $2, $3, role, status, model, permission_mode, session_id, total_cost_usd,
                        usage, NULL, created_at, completed_at
                 FROM messages WHERE id = $4",
            )
            .bind(new.to_string())
            .bind(target.to_string())
            .bind(position)
            .bind(&old)
            .execute(&mut *tx)
            .await?;
            let events = sqlx::query(
                "SELECT data, parent_tool_use_id FROM chat_events WHERE message_id = $1 ORDER BY seq",
            )
            .bind(&old)
            .fetch_all(&mut *tx)
            .await?;
            for event in &events {
                let payload = parse_payload(&event.json("data")?)?;
                if skipped_in_copy(&payload) {
                    continue;
                }
                let parent_tool_use_id = event.opt_text("parent_tool_use_id")?;
                append(&mut tx, target, NewEvent { message_id: new, payload, parent_tool_use_id })
                    .await?;
            }
        }
        sqlx::query("UPDATE chats SET session_id = $2 WHERE id = $1")
            .bind(target.to_string())
            .bind(session_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}
