//! Which checkpoint belongs to which turn, and the conversation rewinds and forks that use
//! them. The workspace files themselves are in the checkpoint store, not in the database.

use agentbox_protocol::event::{ChatEvent, EventPayload, SystemEvent};
use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::events::{NewEvent, append};
use crate::{ChatRecord, Result, Store, StoreError, now, parse_uuid};

/// Why a checkpoint was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointKind {
    /// After a turn.
    Turn,
    /// Before a restore changed the workspace: restoring it undoes the restore.
    BeforeRestore,
    /// The starting point of a forked chat.
    Fork,
}

impl CheckpointKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Turn => "turn",
            Self::BeforeRestore => "before_restore",
            Self::Fork => "fork",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "turn" => Some(Self::Turn),
            "before_restore" => Some(Self::BeforeRestore),
            "fork" => Some(Self::Fork),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointRecord {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub message_id: Option<Uuid>,
    pub kind: CheckpointKind,
    pub session_id: Option<String>,
    pub visible_messages: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// What a rewind changed in the conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Rewind {
    pub hidden: Vec<Uuid>,
    pub shown: Vec<Uuid>,
    /// The `system/rewind` event that tells clients.
    pub event: ChatEvent,
}

fn record_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<CheckpointRecord> {
    let kind: String = row.try_get("kind")?;
    let visible: String = row.try_get("visible_messages")?;
    let message_id: Option<String> = row.try_get("message_id")?;
    Ok(CheckpointRecord {
        id: parse_uuid(row.try_get("id")?)?,
        chat_id: parse_uuid(row.try_get("chat_id")?)?,
        message_id: message_id.as_deref().map(parse_uuid).transpose()?,
        kind: CheckpointKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("checkpoint kind {kind:?}")))?,
        session_id: row.try_get("session_id")?,
        visible_messages: serde_json::from_str::<Vec<Uuid>>(&visible)
            .map_err(|err| StoreError::Corrupt(format!("visible messages: {err}")))?,
        created_at: row.try_get("created_at")?,
    })
}

async fn visible_messages(conn: &mut sqlx::SqliteConnection, chat_id: Uuid) -> Result<Vec<Uuid>> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM messages WHERE chat_id = $1 AND hidden_at IS NULL ORDER BY position",
    )
    .bind(chat_id.to_string())
    .fetch_all(&mut *conn)
    .await?;
    ids.iter().map(|id| parse_uuid(id)).collect()
}

impl Store {
    /// Remember a checkpoint of the chat's workspace with the conversation as it is now.
    /// A turn's checkpoint is also set on its message.
    pub async fn record_checkpoint(
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
        .bind(serde_json::to_string(&visible).map_err(|err| StoreError::Corrupt(err.to_string()))?)
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

    /// The chat's checkpoints, newest first.
    pub async fn checkpoints(&self, chat_id: Uuid) -> Result<Vec<CheckpointRecord>> {
        let rows = sqlx::query(
            "SELECT id, chat_id, message_id, kind, session_id, visible_messages, created_at
             FROM checkpoints WHERE chat_id = $1 ORDER BY created_at DESC, id DESC",
        )
        .bind(chat_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(record_from_row).collect()
    }

    pub async fn checkpoint(&self, chat_id: Uuid, id: Uuid) -> Result<Option<CheckpointRecord>> {
        let row = sqlx::query(
            "SELECT id, chat_id, message_id, kind, session_id, visible_messages, created_at
             FROM checkpoints WHERE chat_id = $1 AND id = $2",
        )
        .bind(chat_id.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// Forget checkpoints the store pruned; messages no longer point at them.
    pub async fn forget_checkpoints(&self, chat_id: Uuid, ids: &[Uuid]) -> Result<()> {
        let mut tx = self.write().await?;
        for id in ids {
            sqlx::query("UPDATE messages SET checkpoint_id = NULL WHERE chat_id = $1 AND checkpoint_id = $2")
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

    /// Make the conversation what it was at `to`: the messages visible then are shown, all
    /// others hidden (kept, restorable), the chat resumes `to`'s CLI session next, and a
    /// `system/rewind` event says so. All in one transaction.
    pub async fn rewind(&self, chat_id: Uuid, to: &CheckpointRecord) -> Result<Rewind> {
        let mut tx = self.write().await?;
        let rows =
            sqlx::query("SELECT id, hidden_at FROM messages WHERE chat_id = $1 ORDER BY position")
                .bind(chat_id.to_string())
                .fetch_all(&mut *tx)
                .await?;
        let (mut hidden, mut shown) = (Vec::new(), Vec::new());
        let at = now();
        for row in &rows {
            let id = parse_uuid(row.try_get("id")?)?;
            let was_hidden = row.try_get::<Option<DateTime<Utc>>, _>("hidden_at")?.is_some();
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
        let anchor =
            to.message_id.or_else(|| to.visible_messages.last().copied()).ok_or_else(|| {
                StoreError::Corrupt("a checkpoint without any message cannot be restored".into())
            })?;
        let ids = |list: &[Uuid]| {
            serde_json::Value::from(list.iter().map(ToString::to_string).collect::<Vec<_>>())
        };
        let event = append(
            &mut tx,
            chat_id,
            NewEvent::new(
                anchor,
                EventPayload::System(
                    SystemEvent::new("rewind")
                        .with("checkpoint_id", to.id.to_string())
                        .with("hidden_message_ids", ids(&hidden))
                        .with("shown_message_ids", ids(&shown)),
                ),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(Rewind { hidden, shown, event })
    }

    /// Copy the conversation of `source` up to and including `up_to` (its visible messages
    /// and their events, renumbered) into the new chat `target`, which resumes `session_id`.
    pub async fn copy_conversation(
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
            "SELECT id FROM messages WHERE chat_id = $1 AND hidden_at IS NULL AND position <= $2 ORDER BY position",
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
                                       session_id, total_cost_usd, usage, checkpoint_id, created_at, completed_at)
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
            let events = sqlx::query("SELECT data, parent_tool_use_id FROM chat_events WHERE message_id = $1 ORDER BY seq")
                .bind(&old)
                .fetch_all(&mut *tx)
                .await?;
            for event in &events {
                let data: String = event.try_get("data")?;
                let payload: EventPayload = serde_json::from_str(&data).map_err(|err| {
                    StoreError::Corrupt(format!("stored event does not parse: {err}"))
                })?;
                // The parent's restores name the parent's checkpoints: not the fork's history.
                if matches!(&payload, EventPayload::System(system) if system.subtype == "rewind") {
                    continue;
                }
                append(
                    &mut tx,
                    target,
                    NewEvent {
                        message_id: new,
                        payload,
                        parent_tool_use_id: event.try_get("parent_tool_use_id")?,
                    },
                )
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
