//! Turns: a user message and the assistant message that answers it, started and finished
//! atomically together with their events.

use std::collections::HashMap;

use agentbox_protocol::api::{Message, PermissionMode, Role};
use agentbox_protocol::event::{ChatEvent, EventPayload, MessageStatus, Usage};
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use crate::events::{NewEvent, append, event_from_row};
use crate::{Result, Store, StoreError, conflict_on_unique, now, parse_uuid};

/// What starting a turn created.
#[derive(Clone, Debug, PartialEq)]
pub struct StartedTurn {
    pub user_message_id: Uuid,
    /// The assistant message, `in_progress` until the turn finishes.
    pub message_id: Uuid,
    /// The `user_text` event holding the prompt.
    pub user_event: ChatEvent,
}

/// How a turn ended, as recorded on its assistant message.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnResult {
    pub status: MessageStatus,
    pub total_cost_usd: Option<f64>,
    pub usage: Option<Usage>,
    /// The CLI session to resume next; `None` keeps the chat's current one.
    pub session_id: Option<String>,
}

impl TurnResult {
    pub fn status(status: MessageStatus) -> Self {
        Self { status, total_cost_usd: None, usage: None, session_id: None }
    }
}

impl Store {
    /// Record a new turn: the user message with its `user_text` event and an `in_progress`
    /// assistant message. `Conflict("turn_in_progress")` if the chat already has a turn running.
    pub async fn begin_turn(
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

    /// Finish a running turn: set the message's final status and figures, remember the CLI
    /// session on the chat and append `message_completed`, all in one transaction.
    /// `Conflict("turn_not_running")` if the message is not in progress.
    pub async fn finish_turn(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
        result: TurnResult,
    ) -> Result<ChatEvent> {
        if !result.status.is_final() {
            return Err(StoreError::Corrupt("a turn cannot finish in progress".into()));
        }
        let usage = result
            .usage
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
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
        let event = append(
            &mut tx,
            chat_id,
            NewEvent::new(
                message_id,
                EventPayload::MessageCompleted {
                    status: result.status,
                    total_cost_usd: result.total_cost_usd,
                },
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(event)
    }

    /// The assistant message of the chat's running turn, if one is running.
    pub async fn running_turn(&self, chat_id: Uuid) -> Result<Option<Uuid>> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM messages WHERE chat_id = $1 AND status = 'in_progress'",
        )
        .bind(chat_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        id.as_deref().map(parse_uuid).transpose()
    }

    /// Every turn left `in_progress` (by a crash), as (chat, message) pairs.
    pub async fn unfinished_turns(&self) -> Result<Vec<(Uuid, Uuid)>> {
        let rows = sqlx::query("SELECT chat_id, id FROM messages WHERE status = 'in_progress'")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| Ok((parse_uuid(row.try_get("chat_id")?)?, parse_uuid(row.try_get("id")?)?)))
            .collect()
    }

    /// The chat's messages in order, each with its events as `content`, without the ones a
    /// restore hid. Content is read from the event log, which is the single source of truth
    /// for what happened in a turn.
    pub async fn messages(&self, chat_id: Uuid) -> Result<Vec<Message>> {
        let rows = sqlx::query(
            "SELECT id, role, status, model, permission_mode, session_id, total_cost_usd, usage,
                    checkpoint_id, created_at, completed_at
             FROM messages WHERE chat_id = $1 AND hidden_at IS NULL ORDER BY position",
        )
        .bind(chat_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let event_rows = sqlx::query(
            "SELECT seq, message_id, parent_tool_use_id, data, created_at FROM chat_events
             WHERE chat_id = $1 ORDER BY seq",
        )
        .bind(chat_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut content: HashMap<Uuid, Vec<ChatEvent>> = HashMap::new();
        for row in &event_rows {
            let event = event_from_row(row)?;
            content.entry(event.message_id).or_default().push(event);
        }
        rows.iter()
            .map(|row| {
                let id = parse_uuid(row.try_get("id")?)?;
                let role: String = row.try_get("role")?;
                let status: String = row.try_get("status")?;
                let mode: Option<String> = row.try_get("permission_mode")?;
                let usage: Option<String> = row.try_get("usage")?;
                Ok(Message {
                    id,
                    chat_id,
                    role: Role::parse(&role)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?,
                    status: MessageStatus::parse(&status)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown status {status:?}")))?,
                    content: content.remove(&id).unwrap_or_default(),
                    model: row.try_get("model")?,
                    permission_mode: mode.as_deref().and_then(PermissionMode::parse),
                    session_id: row.try_get("session_id")?,
                    total_cost_usd: row.try_get("total_cost_usd")?,
                    usage: usage
                        .as_deref()
                        .map(serde_json::from_str)
                        .transpose()
                        .map_err(|err| StoreError::Corrupt(format!("usage: {err}")))?,
                    checkpoint_id: row.try_get("checkpoint_id")?,
                    created_at: row.try_get("created_at")?,
                    completed_at: row.try_get("completed_at")?,
                })
            })
            .collect()
    }
}

/// [`Store::begin_turn`] inside a transaction the caller commits.
pub(crate) async fn insert_turn(
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
    let insert = "INSERT INTO messages (id, chat_id, position, role, status, model,
                                            permission_mode, created_at, completed_at)
                      VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    for (id, position, role, status) in [
        (user_message_id, last + 1, Role::User, MessageStatus::Completed),
        (message_id, last + 2, Role::Assistant, MessageStatus::InProgress),
    ] {
        sqlx::query(insert)
            .bind(id.to_string())
            .bind(chat_id.to_string())
            .bind(position)
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
    let user_event = append(
        &mut *tx,
        chat_id,
        NewEvent::new(user_message_id, EventPayload::UserText { text: prompt.to_owned() }),
    )
    .await?;
    Ok(StartedTurn { user_message_id, message_id, user_event })
}
