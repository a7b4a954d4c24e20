//! The per-chat event log. Appending takes the chat's next `seq` in the same transaction as
//! the insert, so seqs are strictly increasing, without gaps, and an event is either fully
//! committed or absent.

use agentbox_protocol::event::{ChatEvent, EventPayload};
use chrono::{DateTime, Utc};
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use crate::{Result, Store, StoreError, now, parse_uuid};

/// An event to append: what happened and to which message.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub message_id: Uuid,
    pub payload: EventPayload,
    pub parent_tool_use_id: Option<String>,
}

impl NewEvent {
    pub fn new(message_id: Uuid, payload: EventPayload) -> Self {
        Self { message_id, payload, parent_tool_use_id: None }
    }
}

pub(crate) async fn append(
    conn: &mut SqliteConnection,
    chat_id: Uuid,
    event: NewEvent,
) -> Result<ChatEvent> {
    let created_at = now();
    let seq: i64 = sqlx::query_scalar(
        "UPDATE chats SET last_seq = last_seq + 1, updated_at = $2 WHERE id = $1 RETURNING last_seq",
    )
    .bind(chat_id.to_string())
    .bind(created_at)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(StoreError::NotFound)?;
    let data = serde_json::to_string(&event.payload)
        .map_err(|err| StoreError::Corrupt(format!("event does not serialize: {err}")))?;
    sqlx::query(
        "INSERT INTO chat_events (chat_id, seq, message_id, type, parent_tool_use_id, data, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(chat_id.to_string())
    .bind(seq)
    .bind(event.message_id.to_string())
    .bind(event.payload.kind())
    .bind(&event.parent_tool_use_id)
    .bind(data)
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

pub(crate) fn event_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<ChatEvent> {
    let data: String = row.try_get("data")?;
    let payload: EventPayload = serde_json::from_str(&data)
        .map_err(|err| StoreError::Corrupt(format!("stored event does not parse: {err}")))?;
    let created_at: DateTime<Utc> = row.try_get("created_at")?;
    Ok(ChatEvent {
        seq: row.try_get("seq")?,
        message_id: parse_uuid(row.try_get("message_id")?)?,
        parent_tool_use_id: row.try_get("parent_tool_use_id")?,
        created_at,
        payload,
    })
}

impl Store {
    /// Append one event to the chat's log and return it with its `seq`.
    pub async fn append_event(&self, chat_id: Uuid, event: NewEvent) -> Result<ChatEvent> {
        let mut tx = self.write().await?;
        let event = append(&mut tx, chat_id, event).await?;
        tx.commit().await?;
        Ok(event)
    }

    /// Up to `limit` events of the chat with `seq > after`, in order.
    pub async fn events_after(
        &self,
        chat_id: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ChatEvent>> {
        let rows = sqlx::query(
            "SELECT seq, message_id, parent_tool_use_id, data, created_at FROM chat_events
             WHERE chat_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(chat_id.to_string())
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(event_from_row).collect()
    }
}
