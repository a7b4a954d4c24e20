//! The node registry and the turn owner on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Postgres;
use crate::Result;
use crate::records::{NodeRecord, OrphanedTurn, node_from_row, orphan_from_row, stored_time};
use crate::repository::NodeRepository;

#[async_trait]
impl NodeRepository for Postgres {
    async fn register_node(&self, node: &NodeRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO nodes (id, role, address, started_at, heartbeat_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET role = excluded.role, address = excluded.address,
                 started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at",
        )
        .bind(&node.id)
        .bind(node.role.as_str())
        .bind(&node.address)
        .bind(stored_time(node.started_at))
        .bind(stored_time(node.heartbeat_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn node_heartbeat(&self, node_id: &str, at: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query("UPDATE nodes SET heartbeat_at = $2 WHERE id = $1")
            .bind(node_id)
            .bind(stored_time(at))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        let rows = sqlx::query(
            "SELECT id, role, address, started_at, heartbeat_at FROM nodes ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(node_from_row).collect()
    }

    async fn start_turn_on(&self, message_id: Uuid, node_id: &str) -> Result<bool> {
        // One UPDATE: of two racing starts, the second waits for the first's row lock, then
        // re-checks `node_id IS NULL` at READ COMMITTED and changes nothing.
        let done = sqlx::query(
            "UPDATE messages SET node_id = $2
             WHERE id = $1 AND status = 'in_progress' AND node_id IS NULL",
        )
        .bind(message_id)
        .bind(node_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn turn_node(&self, message_id: Uuid) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT node_id FROM messages WHERE id = $1 AND status = 'in_progress'",
        )
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await?
        .flatten())
    }

    async fn orphaned_turns(
        &self,
        node_id: &str,
        own: bool,
        expired_before: DateTime<Utc>,
    ) -> Result<Vec<OrphanedTurn>> {
        let rows = sqlx::query(
            "SELECT m.chat_id, m.id, m.node_id FROM messages m
             LEFT JOIN nodes n ON n.id = m.node_id
             WHERE m.status = 'in_progress' AND (
                 ($2 AND m.node_id = $1)
                 OR (m.node_id IS NOT NULL AND m.node_id <> $1
                     AND (n.id IS NULL OR n.heartbeat_at < $3))
                 OR (m.node_id IS NULL AND m.created_at < $3
                     AND NOT EXISTS (SELECT 1 FROM turn_jobs j WHERE j.message_id = m.id)))
             ORDER BY m.created_at",
        )
        .bind(node_id)
        .bind(own)
        .bind(stored_time(expired_before))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(orphan_from_row).collect()
    }

    async fn adopt_turn(&self, message_id: Uuid, from: Option<&str>, to: &str) -> Result<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE messages SET node_id = $3
             WHERE id = $1 AND status = 'in_progress' AND node_id IS NOT DISTINCT FROM $2",
        )
        .bind(message_id)
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // Controls on their way to the old node would never be read: the turn is ending.
        sqlx::query("DELETE FROM turn_controls WHERE message_id = $1")
            .bind(message_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn bind_chat(&self, chat_id: Uuid, node_id: &str) -> Result<Option<String>> {
        // The row is locked from the read to the write, so two binders never both see the
        // same node before them.
        let mut tx = self.begin().await?;
        let before: Option<Option<String>> =
            sqlx::query_scalar("SELECT sandbox_node_id FROM chats WHERE id = $1 FOR UPDATE")
                .bind(chat_id)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query("UPDATE chats SET sandbox_node_id = $2 WHERE id = $1")
            .bind(chat_id)
            .bind(node_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(before.flatten())
    }

    async fn chat_binding(&self, chat_id: Uuid) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT sandbox_node_id FROM chats WHERE id = $1")
            .bind(chat_id)
            .fetch_optional(&self.pool)
            .await?
            .flatten())
    }

    async fn unbind_chat(&self, chat_id: Uuid) -> Result<()> {
        sqlx::query("UPDATE chats SET sandbox_node_id = NULL WHERE id = $1")
            .bind(chat_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
