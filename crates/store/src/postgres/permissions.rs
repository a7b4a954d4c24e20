//! Permission requests (the index beside the log) and "always allow" rules on PostgreSQL.

use agentbox_protocol::event::{ChatEvent, EventPayload};
use agentbox_protocol::permission::{PendingPermission, ResolvedBy, StoredPermissionRule};
use async_trait::async_trait;
use uuid::Uuid;

use super::Postgres;
use super::events::append;
use crate::records::{
    Fields, NewEvent, PermissionRecord, pending_from_row, permission_from_row, resolution_status,
    rule_from_row, to_json,
};
use crate::repository::PermissionRepository;
use crate::{Result, conflict_on_unique};

#[async_trait]
impl PermissionRepository for Postgres {
    async fn append_permission_event(&self, chat_id: Uuid, event: NewEvent) -> Result<ChatEvent> {
        let mut tx = self.begin().await?;
        let event = append(&mut tx, chat_id, event).await?;
        match &event.payload {
            EventPayload::PermissionRequest(request) => {
                sqlx::query(
                    "INSERT INTO permission_requests (chat_id, request_id, message_id, seq, kind,
                                 tool_name, input, status, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7::json, 'pending', $8, $9)",
                )
                .bind(chat_id)
                .bind(&request.request_id)
                .bind(event.message_id)
                .bind(event.seq)
                .bind(request.kind.as_str())
                .bind(&request.tool_name)
                .bind(to_json(&request.input)?)
                .bind(event.created_at)
                .bind(request.expires_at)
                .execute(&mut *tx)
                .await
                .map_err(|err| conflict_on_unique(err, "permission_request_exists"))?;
            }
            EventPayload::PermissionResolved(resolution) => {
                sqlx::query(
                    "UPDATE permission_requests SET status = $3, resolved_by = $4, resolved_at = $5
                     WHERE chat_id = $1 AND request_id = $2 AND status = 'pending'",
                )
                .bind(chat_id)
                .bind(&resolution.request_id)
                .bind(resolution_status(resolution.approved))
                .bind(resolution.resolved_by.map(ResolvedBy::as_str))
                .bind(event.created_at)
                .execute(&mut *tx)
                .await?;
            }
            _ => {}
        }
        tx.commit().await?;
        Ok(event)
    }

    async fn pending_permissions(&self, chat_id: Uuid) -> Result<Vec<PendingPermission>> {
        let rows = sqlx::query(
            "SELECT request_id, message_id, seq, kind, tool_name, input, created_at, expires_at
             FROM permission_requests WHERE chat_id = $1 AND status = 'pending' ORDER BY seq",
        )
        .bind(chat_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(pending_from_row).collect()
    }

    async fn permission_request(
        &self,
        chat_id: Uuid,
        request_id: &str,
    ) -> Result<Option<PermissionRecord>> {
        let row = sqlx::query(
            "SELECT request_id, message_id, kind, tool_name, status, resolved_by
             FROM permission_requests WHERE chat_id = $1 AND request_id = $2",
        )
        .bind(chat_id)
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(permission_from_row).transpose()
    }

    async fn all_pending_permissions(&self) -> Result<Vec<(Uuid, Uuid, String)>> {
        let rows = sqlx::query(
            "SELECT chat_id, message_id, request_id FROM permission_requests
             WHERE status = 'pending' ORDER BY chat_id, seq",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.id("chat_id")?, row.id("message_id")?, row.text("request_id")?)))
            .collect()
    }

    async fn insert_permission_rule(
        &self,
        chat_id: Uuid,
        stored: &StoredPermissionRule,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO permission_rules (id, chat_id, tool_name, rule_content, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(stored.id)
        .bind(chat_id)
        .bind(&stored.rule.tool_name)
        .bind(&stored.rule.rule_content)
        .bind(stored.created_at)
        .execute(&self.pool)
        .await
        .map_err(|err| conflict_on_unique(err, "rule_exists"))?;
        Ok(())
    }

    async fn permission_rules(&self, chat_id: Uuid) -> Result<Vec<StoredPermissionRule>> {
        let rows = sqlx::query(
            "SELECT id, tool_name, rule_content, created_at FROM permission_rules
             WHERE chat_id = $1 ORDER BY created_at, id",
        )
        .bind(chat_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(rule_from_row).collect()
    }

    async fn delete_permission_rule(&self, chat_id: Uuid, rule_id: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM permission_rules WHERE chat_id = $1 AND id = $2")
            .bind(chat_id)
            .bind(rule_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
