//! Users, their refresh tokens and invites on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::Sqlite;
use crate::records::{
    Fields, InviteRecord, RefreshRotation, UserActivity, UserRecord, UserUsage, invite_columns,
    invite_from_row, now, usage_from_row, user_columns, user_from_row,
};
use crate::repository::UserRepository;
use crate::{Result, StoreError, conflict_on_unique};

async fn user_in(conn: &mut SqliteConnection, id: Uuid) -> Result<Option<UserRecord>> {
    let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    row.as_ref().map(user_from_row).transpose()
}

/// `Conflict("last_admin")` if `user` is the only enabled administrator.
async fn keep_an_admin(conn: &mut SqliteConnection, user: &UserRecord) -> Result<()> {
    if !user.is_admin || user.disabled_at.is_some() {
        return Ok(());
    }
    let others: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE is_admin = 1 AND disabled_at IS NULL AND id <> $1",
    )
    .bind(user.id.to_string())
    .fetch_one(&mut *conn)
    .await?;
    if others == 0 { Err(StoreError::Conflict("last_admin")) } else { Ok(()) }
}

#[async_trait]
impl UserRepository for Sqlite {
    async fn create_user(
        &self,
        user: &UserRecord,
        invite: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<UserRecord> {
        let mut tx = self.write().await?;
        // The invite first: someone without a valid one learns nothing about the email.
        if let Some(hash) = invite {
            let row = sqlx::query("SELECT expires_at, used_at FROM invites WHERE token_hash = $1")
                .bind(hash)
                .fetch_optional(&mut *tx)
                .await?;
            let usable = match &row {
                Some(row) => row.opt_time("used_at")?.is_none() && row.time("expires_at")? > now,
                None => false,
            };
            if !usable {
                return Err(StoreError::Conflict("invalid_invite"));
            }
            sqlx::query("UPDATE invites SET used_at = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(hash)
                .execute(&mut *tx)
                .await?;
            // The invite is spent even when the email has an account, so that one invite
            // can tell about one email at most.
            let taken: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE email = $1")
                .bind(&user.email)
                .fetch_one(&mut *tx)
                .await?;
            if taken > 0 {
                tx.commit().await?;
                return Err(StoreError::Conflict("email_taken"));
            }
        }
        sqlx::query(
            "INSERT INTO users (id, email, username, password_hash, created_at, is_admin)
             SELECT $1, $2, $3, $4, $5, CASE WHEN EXISTS (SELECT 1 FROM users) THEN 0 ELSE 1 END",
        )
        .bind(user.id.to_string())
        .bind(&user.email)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(&mut *tx)
        .await
        .map_err(|err| conflict_on_unique(err, "email_taken"))?;
        if let Some(hash) = invite {
            sqlx::query("UPDATE invites SET used_by = $1 WHERE token_hash = $2")
                .bind(user.id.to_string())
                .bind(hash)
                .execute(&mut *tx)
                .await?;
        }
        let stored = user_in(&mut tx, user.id).await?.ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        Ok(stored)
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1"))
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user(&self, id: Uuid) -> Result<Option<UserRecord>> {
        let mut conn = self.pool.acquire().await?;
        user_in(&mut conn, id).await
    }

    async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
    }

    async fn list_users(&self) -> Result<Vec<UserRecord>> {
        let rows =
            sqlx::query(concat!("SELECT ", user_columns!(), " FROM users ORDER BY created_at, id"))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn users_usage(&self) -> Result<Vec<UserUsage>> {
        let rows = sqlx::query(
            "SELECT c.user_id AS user_id, COUNT(DISTINCT c.id) AS chats, COUNT(m.id) AS turns,
                    SUM(m.total_cost_usd) AS cost_usd
             FROM chats c LEFT JOIN messages m ON m.chat_id = c.id AND m.role = 'assistant'
             GROUP BY c.user_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(usage_from_row).collect()
    }

    async fn user_activity(&self, user_id: Uuid, since: DateTime<Utc>) -> Result<UserActivity> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN m.status = 'in_progress' THEN 1 ELSE 0 END), 0) AS running,
                    COALESCE(SUM(CASE WHEN m.created_at >= $2 THEN 1 ELSE 0 END), 0) AS turns,
                    SUM(CASE WHEN m.created_at >= $2 THEN m.total_cost_usd END) AS cost_usd
             FROM messages m JOIN chats c ON c.id = m.chat_id
             WHERE c.user_id = $1 AND m.role = 'assistant'",
        )
        .bind(user_id.to_string())
        .bind(since)
        .fetch_one(&self.pool)
        .await?;
        Ok(UserActivity {
            running_turns: row.int("running")?,
            turns: row.int("turns")?,
            cost_usd: row.opt_real("cost_usd")?.unwrap_or(0.0),
        })
    }

    async fn set_user_disabled(
        &self,
        id: Uuid,
        disabled_at: Option<DateTime<Utc>>,
    ) -> Result<Option<UserRecord>> {
        let mut tx = self.write().await?;
        let Some(user) = user_in(&mut tx, id).await? else { return Ok(None) };
        if disabled_at.is_some() {
            keep_an_admin(&mut tx, &user).await?;
            sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        // Disabling a disabled account keeps the time it was first disabled.
        sqlx::query(
            "UPDATE users SET disabled_at = CASE WHEN $1 IS NULL THEN NULL
                                                ELSE COALESCE(disabled_at, $1) END
             WHERE id = $2",
        )
        .bind(disabled_at)
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        let user = user_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn set_user_admin(&self, id: Uuid, is_admin: bool) -> Result<Option<UserRecord>> {
        let mut tx = self.write().await?;
        let Some(user) = user_in(&mut tx, id).await? else { return Ok(None) };
        if !is_admin {
            keep_an_admin(&mut tx, &user).await?;
        }
        sqlx::query("UPDATE users SET is_admin = $1 WHERE id = $2")
            .bind(i64::from(is_admin))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        let user = user_in(&mut tx, id).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn delete_user(&self, id: Uuid) -> Result<bool> {
        let mut tx = self.write().await?;
        let Some(user) = user_in(&mut tx, id).await? else { return Ok(false) };
        keep_an_admin(&mut tx, &user).await?;
        sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn add_refresh_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        family_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, user_id, expires_at, created_at, family_id)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id.to_string())
        .bind(expires_at)
        .bind(now())
        .bind(family_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        new_hash: &str,
        new_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RefreshRotation> {
        let mut tx = self.write().await?;
        let row = sqlx::query(
            "SELECT user_id, family_id, expires_at, used_at FROM refresh_tokens
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(RefreshRotation::Invalid) };
        let (user_id, family) = (row.id("user_id")?, row.text("family_id")?);
        let outcome = if row.opt_time("used_at")?.is_some() {
            sqlx::query("DELETE FROM refresh_tokens WHERE family_id = $1")
                .bind(&family)
                .execute(&mut *tx)
                .await?;
            RefreshRotation::Reused { user_id }
        } else if row.time("expires_at")? <= now {
            RefreshRotation::Invalid
        } else {
            sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(token_hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, user_id, expires_at, created_at, family_id)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(new_hash)
            .bind(user_id.to_string())
            .bind(new_expires_at)
            .bind(now)
            .bind(&family)
            .execute(&mut *tx)
            .await?;
            RefreshRotation::Rotated { user_id }
        };
        // Used tokens are kept only to recognise reuse; once expired they can go.
        let tokens =
            sqlx::query("SELECT token_hash, expires_at FROM refresh_tokens WHERE user_id = $1")
                .bind(user_id.to_string())
                .fetch_all(&mut *tx)
                .await?;
        for token in &tokens {
            if token.time("expires_at")? <= now {
                sqlx::query("DELETE FROM refresh_tokens WHERE token_hash = $1")
                    .bind(token.text("token_hash")?)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(outcome)
    }

    async fn revoke_refresh_family(&self, user_id: Uuid, token_hash: &str) -> Result<bool> {
        let done = sqlx::query(
            "DELETE FROM refresh_tokens WHERE family_id IN
                (SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND user_id = $2)",
        )
        .bind(token_hash)
        .bind(user_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_password_hash(&self, user_id: Uuid, password_hash: &str) -> Result<bool> {
        let mut tx = self.write().await?;
        let changed = sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
            .bind(user_id.to_string())
            .bind(password_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
            .bind(user_id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(changed > 0)
    }

    async fn remove_refresh_tokens(&self, user_id: Uuid) -> Result<()> {
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_invite(&self, invite: &InviteRecord, token_hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO invites (id, token_hash, created_by, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(invite.id.to_string())
        .bind(token_hash)
        .bind(invite.created_by.map(|id| id.to_string()))
        .bind(invite.created_at)
        .bind(invite.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_invites(&self) -> Result<Vec<InviteRecord>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            invite_columns!(),
            " FROM invites ORDER BY created_at DESC, id DESC"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(invite_from_row).collect()
    }

    async fn delete_invite(&self, id: Uuid) -> Result<bool> {
        let done = sqlx::query("DELETE FROM invites WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
