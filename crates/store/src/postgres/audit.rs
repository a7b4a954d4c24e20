//! The audit log on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::Postgres;
use crate::Result;
use crate::records::{AuditFilter, AuditRecord, audit_columns, audit_from_row};
use crate::repository::AuditRepository;

#[async_trait]
impl AuditRepository for Postgres {
    async fn append_audit(&self, event: &AuditRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_events (id, created_at, kind, actor_id, target_id, email, address, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8::json)",
        )
        .bind(event.id)
        .bind(event.created_at)
        .bind(&event.kind)
        .bind(event.actor_id)
        .bind(event.target_id)
        .bind(&event.email)
        .bind(&event.address)
        .bind(&event.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        // Ids are UUIDv7: their order is the order of creation, also within one timestamp.
        let rows = sqlx::query(concat!(
            "SELECT ",
            audit_columns!(),
            " FROM audit_events
             WHERE ($1::text IS NULL OR kind = $1)
               AND ($2::uuid IS NULL OR actor_id = $2 OR target_id = $2)
               AND ($3::timestamptz IS NULL OR created_at >= $3)
               AND ($4::timestamptz IS NULL OR created_at < $4)
             ORDER BY id DESC LIMIT $5"
        ))
        .bind(&filter.kind)
        .bind(filter.user_id)
        .bind(filter.since)
        .bind(filter.before)
        .bind(filter.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn purge_audit(&self, before: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM audit_events WHERE created_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
