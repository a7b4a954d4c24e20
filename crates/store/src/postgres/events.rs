//! The per-chat event log on PostgreSQL. The next `seq` is `chats.last_seq + 1`, taken by the
//! `UPDATE` in the appending transaction, which locks the chat's row until it commits: a
//! concurrent appender (of this process or another) waits, then reads the committed value
//! and takes the next number; a rolled-back append gives its number back.

use agentbox_protocol::event::ChatEvent;
use async_trait::async_trait;
use sqlx::PgConnection;
use uuid::Uuid;

use super::Postgres;
use crate::records::{NewEvent, event_columns, event_from_row, now, to_json};
use crate::repository::EventRepository;
use crate::{Result, StoreError};

pub(super) async fn append(
    conn: &mut PgConnection,
    chat_id: Uuid,
    event: NewEvent,
) -> Result<ChatEvent> {
    let created_at = now();
    let seq: i64 = sqlx::query_scalar(
        "UPDATE chats SET last_seq = last_seq + 1, updated_at = $2 WHERE id = $1 RETURNING last_seq",
    )
    .bind(chat_id)
    .bind(created_at)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    sqlx::query(
        "INSERT INTO chat_events (chat_id, seq, message_id, type, parent_tool_use_id, data, created_at)
         VALUES ($1, $2, $3, $4, $5, $6::json, $7)",
    )
    .bind(chat_id)
    .bind(seq)
    .bind(event.message_id)
    .bind(event.payload.kind())
    .bind(&event.parent_tool_use_id)
    .bind(to_json(&event.payload)?)
    .bind(created_at)
    .execute(&mut *conn)
    .await?;
    Ok(ChatEvent {
        seq,
        message_id: event.message_id,
        parent_tool_use_id: event.parent_tool_use_id,
        created_at,
        payload: event.payload,
    })
}

#[async_trait]
impl EventRepository for Postgres {
    async fn append_event(&self, chat_id: Uuid, event: NewEvent) -> Result<ChatEvent> {
        let mut tx = self.begin().await?;
        let event = append(&mut tx, chat_id, event).await?;
        tx.commit().await?;
        Ok(event)
    }

    async fn events_after(&self, chat_id: Uuid, after: i64, limit: i64) -> Result<Vec<ChatEvent>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM chat_events WHERE chat_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .bind(chat_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    async fn last_system_event(&self, chat_id: Uuid, subtype: &str) -> Result<Option<ChatEvent>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            event_columns!(),
            " FROM chat_events WHERE chat_id = $1 AND type = 'system' AND data->>'subtype' = $2 ORDER BY seq DESC LIMIT 1"
        ))
        .bind(chat_id)
        .bind(subtype)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(event_from_row).transpose()
    }
}
