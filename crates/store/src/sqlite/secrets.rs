//! Users' sealed secrets on SQLite.

use async_trait::async_trait;
use sqlx::Row;
use uuid::Uuid;

use super::Sqlite;
use crate::Result;
use crate::records::{SecretRecord, secret_columns, secret_from_row};
use crate::repository::SecretRepository;

/// The upsert of each scope: its conflict target is that scope's partial unique index.
const PUT_USER_SECRET: &str = "INSERT INTO secrets (id, user_id, chat_id, name, key_id, sealed, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (user_id, name) WHERE chat_id IS NULL
     DO UPDATE SET key_id = excluded.key_id, sealed = excluded.sealed, updated_at = excluded.updated_at
     RETURNING id";
const PUT_CHAT_SECRET: &str = "INSERT INTO secrets (id, user_id, chat_id, name, key_id, sealed, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (chat_id, name) WHERE chat_id IS NOT NULL
     DO UPDATE SET key_id = excluded.key_id, sealed = excluded.sealed, updated_at = excluded.updated_at
     RETURNING id";

#[async_trait]
impl SecretRepository for Sqlite {
    async fn put_secret(&self, secret: &SecretRecord) -> Result<bool> {
        let query = if secret.chat_id.is_some() { PUT_CHAT_SECRET } else { PUT_USER_SECRET };
        let row = sqlx::query(query)
            .bind(secret.id.to_string())
            .bind(secret.user_id.to_string())
            .bind(secret.chat_id.map(|id| id.to_string()))
            .bind(&secret.name)
            .bind(&secret.key_id)
            .bind(&secret.sealed)
            .bind(secret.created_at)
            .bind(secret.updated_at)
            .fetch_one(&self.pool)
            .await?;
        let id: String = row.try_get("id")?;
        Ok(id == secret.id.to_string())
    }

    async fn secrets(&self, user_id: Uuid, chat_id: Option<Uuid>) -> Result<Vec<SecretRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            secret_columns!(),
            " FROM secrets WHERE user_id = $1 AND chat_id IS $2 ORDER BY name"
        ))
        .bind(user_id.to_string())
        .bind(chat_id.map(|id| id.to_string()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(secret_from_row).collect()
    }

    async fn delete_secret(
        &self,
        user_id: Uuid,
        chat_id: Option<Uuid>,
        name: &str,
    ) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM secrets WHERE user_id = $1 AND chat_id IS $2 AND name = $3")
                .bind(user_id.to_string())
                .bind(chat_id.map(|id| id.to_string()))
                .bind(name)
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn all_secrets(&self) -> Result<Vec<SecretRecord>> {
        let rows = sqlx::query(concat!("SELECT ", secret_columns!(), " FROM secrets ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(secret_from_row).collect()
    }

    async fn reseal_secrets(&self, secrets: &[SecretRecord]) -> Result<u64> {
        let mut tx = self.write().await?;
        let mut changed = 0;
        for secret in secrets {
            let done = sqlx::query("UPDATE secrets SET key_id = $2, sealed = $3 WHERE id = $1")
                .bind(secret.id.to_string())
                .bind(&secret.key_id)
                .bind(&secret.sealed)
                .execute(&mut *tx)
                .await?;
            changed += done.rows_affected();
        }
        tx.commit().await?;
        Ok(changed)
    }
}
