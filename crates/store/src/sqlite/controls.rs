//! The control table on SQLite: one process, so the runner polls it and nothing notifies.

use async_trait::async_trait;
use uuid::Uuid;

use super::Sqlite;
use crate::Result;
use crate::records::{StoredControl, control_from_row, now};
use crate::repository::{ControlRepository, Wake};

#[async_trait]
impl ControlRepository for Sqlite {
    async fn push_control(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
        command: &str,
    ) -> Result<Option<String>> {
        let mut tx = self.write().await?;
        let node: Option<String> = sqlx::query_scalar(
            "SELECT node_id FROM messages
             WHERE id = $1 AND chat_id = $2 AND status = 'in_progress'",
        )
        .bind(message_id.to_string())
        .bind(chat_id.to_string())
        .fetch_optional(&mut *tx)
        .await?
        .flatten();
        let Some(node) = node else { return Ok(None) };
        sqlx::query(
            "INSERT INTO turn_controls (id, node_id, chat_id, message_id, command, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(&node)
        .bind(chat_id.to_string())
        .bind(message_id.to_string())
        .bind(command)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(node))
    }

    async fn take_controls(&self, node_id: &str) -> Result<Vec<StoredControl>> {
        let rows = sqlx::query(
            "DELETE FROM turn_controls WHERE node_id = $1
             RETURNING id, chat_id, message_id, command",
        )
        .bind(node_id)
        .fetch_all(&self.pool)
        .await?;
        let mut controls = rows.iter().map(control_from_row).collect::<Result<Vec<_>>>()?;
        // Ids are UUIDv7: their order is the order they were queued in.
        controls.sort_by_key(|control| control.id);
        Ok(controls)
    }

    async fn listen_controls(&self, _node_id: &str) -> Result<Option<Box<dyn Wake>>> {
        Ok(None)
    }
}
