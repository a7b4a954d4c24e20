//! User settings, the limits administrators set for a user, installation settings changed at
//! run time, and the runner's change of a chat's mode, on PostgreSQL.

use agentbox_protocol::api::{PermissionMode, UserSettings};
use async_trait::async_trait;
use uuid::Uuid;

use super::Postgres;
use crate::Result;
use crate::records::{Fields, allowed_hosts_json, now, settings_from_row};
use crate::repository::SettingsRepository;

#[async_trait]
impl SettingsRepository for Postgres {
    async fn user_settings(&self, user_id: Uuid) -> Result<UserSettings> {
        let row = sqlx::query(
            "SELECT custom_instructions, sandbox_allowed_hosts, default_model, default_permission_mode
             FROM user_settings WHERE user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(settings_from_row).transpose()?.unwrap_or_default())
    }

    async fn set_user_allowed_hosts(&self, user_id: Uuid, hosts: &[String]) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_settings (user_id, sandbox_allowed_hosts, updated_at) VALUES ($1, $2::json, $3)
             ON CONFLICT (user_id) DO UPDATE SET sandbox_allowed_hosts = excluded.sandbox_allowed_hosts,
                                                 updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(allowed_hosts_json(hosts)?)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_user_instructions(&self, user_id: Uuid, instructions: Option<&str>) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_settings (user_id, custom_instructions, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET custom_instructions = excluded.custom_instructions,
                                                 updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(instructions)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_user_defaults(
        &self,
        user_id: Uuid,
        model: Option<&str>,
        permission_mode: Option<PermissionMode>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_settings (user_id, default_model, default_permission_mode, updated_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id) DO UPDATE SET default_model = excluded.default_model,
                 default_permission_mode = excluded.default_permission_mode,
                 updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(model)
        .bind(permission_mode.map(PermissionMode::as_str))
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn set_chat_permission_mode(&self, chat_id: Uuid, mode: PermissionMode) -> Result<()> {
        sqlx::query("UPDATE chats SET permission_mode = $2, updated_at = $3 WHERE id = $1")
            .bind(chat_id)
            .bind(mode.as_str())
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn user_limits(&self, user_id: Uuid) -> Result<Option<String>> {
        let row = sqlx::query("SELECT limits FROM user_settings WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(|row| row.opt_json("limits")).transpose()?.flatten())
    }

    async fn set_user_limits(&self, user_id: Uuid, limits: Option<&str>) -> Result<()> {
        sqlx::query(
            "INSERT INTO user_settings (user_id, limits, updated_at) VALUES ($1, $2::json, $3)
             ON CONFLICT (user_id) DO UPDATE SET limits = excluded.limits,
                                                 updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(limits)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn server_setting(&self, name: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar("SELECT value FROM server_settings WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn set_server_setting(&self, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO server_settings (name, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value,
                                              updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
