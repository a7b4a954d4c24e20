//! Agent extensions (commands, skills, sub-agents, MCP servers) on Sqlite.

use async_trait::async_trait;
use sqlx::Row;
use uuid::Uuid;

use super::Sqlite;
use crate::Result;
use crate::records::{ExtensionRecord, extension_columns, extension_from_row};
use crate::repository::ExtensionRepository;

/// The upsert of each scope: its conflict target is that scope's partial unique index.
const PUT_USER_EXTENSION: &str =
    "INSERT INTO extensions (id, user_id, chat_id, kind, name, body, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (user_id, kind, name) WHERE chat_id IS NULL
     DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at
     RETURNING id";
const PUT_CHAT_EXTENSION: &str =
    "INSERT INTO extensions (id, user_id, chat_id, kind, name, body, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (chat_id, kind, name) WHERE chat_id IS NOT NULL
     DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at
     RETURNING id";

#[async_trait]
impl ExtensionRepository for Sqlite {
    async fn put_extension(&self, extension: &ExtensionRecord) -> Result<bool> {
        let query =
            if extension.chat_id.is_some() { PUT_CHAT_EXTENSION } else { PUT_USER_EXTENSION };
        let row = sqlx::query(query)
            .bind(extension.id.to_string())
            .bind(extension.user_id.to_string())
            .bind(extension.chat_id.map(|id| id.to_string()))
            .bind(&extension.kind)
            .bind(&extension.name)
            .bind(&extension.body)
            .bind(extension.created_at)
            .bind(extension.updated_at)
            .fetch_one(&self.pool)
            .await?;
        let id: String = row.try_get("id")?;
        Ok(id == extension.id.to_string())
    }

    async fn extensions(
        &self,
        user_id: Uuid,
        chat_id: Option<Uuid>,
        kind: Option<&str>,
    ) -> Result<Vec<ExtensionRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            extension_columns!(),
            " FROM extensions WHERE user_id = $1 AND chat_id IS $2 AND ($3 IS NULL OR kind = $3) ORDER BY kind, name"
        ))
        .bind(user_id.to_string())
        .bind(chat_id.map(|id| id.to_string()))
        .bind(kind)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(extension_from_row).collect()
    }

    async fn delete_extension(
        &self,
        user_id: Uuid,
        chat_id: Option<Uuid>,
        kind: &str,
        name: &str,
    ) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM extensions WHERE user_id = $1 AND chat_id IS $2 AND kind = $3 AND name = $4",
        )
        .bind(user_id.to_string())
        .bind(chat_id.map(|id| id.to_string()))
        .bind(kind)
        .bind(name)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }
}
