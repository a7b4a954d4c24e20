//! Queued prompts: sent while a turn was running, they wait in `position` order. Taking one
//! out of the queue and starting its turn is one transaction, so a prompt is either still
//! queued or a turn, never both and never lost.

use agentbox_protocol::api::{PermissionMode, QueuedMessage};
use sqlx::Row;
use uuid::Uuid;

use crate::turns::{StartedTurn, insert_turn};
use crate::{Result, Store, StoreError, now, parse_uuid};

/// Fields of a queued prompt to change; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct QueuedUpdate {
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub permission_mode: Option<PermissionMode>,
}

macro_rules! queued_columns {
    () => {
        "id, chat_id, prompt, model, permission_mode, created_at, updated_at"
    };
}

fn queued_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<QueuedMessage> {
    let mode: Option<String> = row.try_get("permission_mode")?;
    Ok(QueuedMessage {
        id: parse_uuid(row.try_get("id")?)?,
        chat_id: parse_uuid(row.try_get("chat_id")?)?,
        prompt: row.try_get("prompt")?,
        model: row.try_get("model")?,
        permission_mode: mode
            .map(|mode| {
                PermissionMode::parse(&mode)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown permission mode {mode:?}")))
            })
            .transpose()?,
        message_id: None,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Store {
    /// Put a prompt at the end of the chat's queue.
    pub async fn enqueue(
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
            _ => StoreError::Database(err),
        })?;
        let queued = queued_from_row(&row)?;
        tx.commit().await?;
        Ok(queued)
    }

    /// The chat's queue, next first.
    pub async fn queue(&self, chat_id: Uuid) -> Result<Vec<QueuedMessage>> {
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

    /// Change a queued prompt; `None` if the chat has no such queued prompt (any more).
    pub async fn update_queued(
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

    /// Remove a queued prompt; `false` if the chat has no such queued prompt (any more).
    pub async fn delete_queued(&self, chat_id: Uuid, id: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM queued_messages WHERE chat_id = $1 AND id = $2")
            .bind(chat_id.to_string())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Move a queued prompt to the front of the queue; `false` if there is no such prompt.
    pub async fn move_queued_to_front(&self, chat_id: Uuid, id: Uuid) -> Result<bool> {
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

    /// Take the queued prompt `id` (the next one when `None`) out of the queue and start its
    /// turn, in one transaction. `model` and `permission_mode` are the chat's, used when the
    /// prompt has none of its own. `Ok(None)` when there is no such prompt;
    /// `Conflict("turn_in_progress")` (and the prompt stays queued) while a turn runs.
    pub async fn begin_queued_turn(
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

    /// Every chat with a queued prompt.
    pub async fn chats_with_queued_messages(&self) -> Result<Vec<Uuid>> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT DISTINCT chat_id FROM queued_messages")
            .fetch_all(&self.pool)
            .await?;
        ids.iter().map(|id| parse_uuid(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use agentbox_protocol::api::PermissionMode;

    use crate::StoreError;
    use crate::test_support::store_with_chat;

    #[tokio::test]
    async fn the_queue_keeps_order_and_a_prompt_is_queued_or_a_turn_never_both() {
        let (_dir, store, chat) = store_with_chat().await;
        let a = store.enqueue(chat, "a", None, None).await.unwrap();
        let b = store.enqueue(chat, "b", Some("other-model"), Some(PermissionMode::Plan)).await;
        let b = b.unwrap();
        let c = store.enqueue(chat, "c", None, None).await.unwrap();
        let order = |queue: Vec<agentbox_protocol::api::QueuedMessage>| {
            queue.into_iter().map(|q| q.prompt).collect::<Vec<_>>()
        };
        assert_eq!(order(store.queue(chat).await.unwrap()), ["a", "b", "c"]);
        assert!(store.move_queued_to_front(chat, c.id).await.unwrap());
        assert_eq!(order(store.queue(chat).await.unwrap()), ["c", "a", "b"]);

        // The next prompt leaves the queue as a turn, with the chat's settings where it has
        // none of its own.
        let (queued, started) =
            store.begin_queued_turn(chat, None, "m", PermissionMode::Ask).await.unwrap().unwrap();
        assert_eq!((queued.id, queued.message_id), (c.id, Some(started.message_id)));
        // While it runs, another cannot start, and stays queued.
        let busy = store.begin_queued_turn(chat, Some(b.id), "m", PermissionMode::Ask).await;
        assert!(matches!(busy, Err(StoreError::Conflict("turn_in_progress"))), "{busy:?}");
        assert_eq!(order(store.queue(chat).await.unwrap()), ["a", "b"]);
        assert!(store.delete_queued(chat, a.id).await.unwrap());
        assert!(!store.delete_queued(chat, a.id).await.unwrap());
        assert_eq!(store.chats_with_queued_messages().await.unwrap(), [chat]);
        let messages = store.messages(chat).await.unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].model.as_deref(), Some("m"));
    }
}
