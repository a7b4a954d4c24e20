//! Users and their refresh tokens.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::{Result, Store, conflict_on_unique, now, parse_uuid};

#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    pub id: Uuid,
    pub email: String,
    pub username: Option<String>,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// The columns `user_from_row` reads; a macro so that queries stay `&'static str`.
macro_rules! user_columns {
    () => {
        "id, email, username, password_hash, created_at"
    };
}

fn user_from_row(row: &sqlx::sqlite::SqliteRow) -> Result<UserRecord> {
    Ok(UserRecord {
        id: parse_uuid(row.try_get("id")?)?,
        email: row.try_get("email")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        created_at: row.try_get("created_at")?,
    })
}

impl Store {
    /// Create a user; `Conflict("email_taken")` if the (lower-cased) email exists.
    pub async fn create_user(
        &self,
        email: &str,
        username: Option<&str>,
        password_hash: &str,
    ) -> Result<UserRecord> {
        let user = UserRecord {
            id: Uuid::now_v7(),
            email: email.to_lowercase(),
            username: username.map(str::to_owned),
            password_hash: password_hash.to_owned(),
            created_at: now(),
        };
        sqlx::query(
            "INSERT INTO users (id, email, username, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user.id.to_string())
        .bind(&user.email)
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(&self.pool)
        .await
        .map_err(|err| conflict_on_unique(err, "email_taken"))?;
        Ok(user)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1"))
            .bind(email.to_lowercase())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn user(&self, id: Uuid) -> Result<Option<UserRecord>> {
        let row = sqlx::query(concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    pub async fn count_users(&self) -> Result<i64> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
    }

    /// Remember a refresh token by its hash (the token itself is never stored).
    pub async fn add_refresh_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, user_id, expires_at, created_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user_id.to_string())
        .bind(expires_at)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Use up a refresh token: it is deleted, and its user returned if it had not expired.
    /// A token works once; the caller issues a new one (rotation).
    pub async fn take_refresh_token(&self, token_hash: &str) -> Result<Option<Uuid>> {
        let row = sqlx::query(
            "DELETE FROM refresh_tokens WHERE token_hash = $1 RETURNING user_id, expires_at",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: DateTime<Utc> = row.try_get("expires_at")?;
        if expires_at <= now() {
            return Ok(None);
        }
        Ok(Some(parse_uuid(row.try_get("user_id")?)?))
    }

    /// Sign a user out everywhere.
    pub async fn remove_refresh_tokens(&self, user_id: Uuid) -> Result<()> {
        sqlx::query("DELETE FROM refresh_tokens WHERE user_id = $1")
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
