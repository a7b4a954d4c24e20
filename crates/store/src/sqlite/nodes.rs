//! The node registry and the turn owner on SQLite. Instants are compared with
//! `julianday()`, which reads the RFC 3339 text the store writes whatever its precision.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Sqlite;
use crate::Result;
use crate::records::{NodeRecord, OrphanedTurn, node_from_row, orphan_from_row, stored_time};
use crate::repository::NodeRepository;

#[async_trait]
impl NodeRepository for Sqlite {
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
        let done = sqlx::query(
            "UPDATE messages SET node_id = $2
             WHERE id = $1 AND status = 'in_progress' AND node_id IS NULL",
        )
        .bind(message_id.to_string())
        .bind(node_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn turn_node(&self, message_id: Uuid) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT node_id FROM messages WHERE id = $1 AND status = 'in_progress'",
        )
        .bind(message_id.to_string())
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
                     AND (n.id IS NULL OR julianday(n.heartbeat_at) < julianday($3)))
                 OR (m.node_id IS NULL AND julianday(m.created_at) < julianday($3)
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
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE messages SET node_id = $3
             WHERE id = $1 AND status = 'in_progress' AND node_id IS $2",
        )
        .bind(message_id.to_string())
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        // Controls on their way to the old node would never be read: the turn is ending.
        sqlx::query("DELETE FROM turn_controls WHERE message_id = $1")
            .bind(message_id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn bind_chat(&self, chat_id: Uuid, node_id: &str) -> Result<Option<String>> {
        // `BEGIN IMMEDIATE` holds the write lock, so the read and the write are one step.
        let mut tx = self.write().await?;
        let before: Option<Option<String>> =
            sqlx::query_scalar("SELECT sandbox_node_id FROM chats WHERE id = $1")
                .bind(chat_id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query("UPDATE chats SET sandbox_node_id = $2 WHERE id = $1")
            .bind(chat_id.to_string())
            .bind(node_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(before.flatten())
    }

    async fn chat_binding(&self, chat_id: Uuid) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT sandbox_node_id FROM chats WHERE id = $1")
            .bind(chat_id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .flatten())
    }

    async fn unbind_chat(&self, chat_id: Uuid) -> Result<()> {
        sqlx::query("UPDATE chats SET sandbox_node_id = NULL WHERE id = $1")
            .bind(chat_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
