//! Agent settings kept apart from the chat and user records: a user's custom instructions,
//! and a chat's mode changed by the turn runner (an approved plan continues in another mode).

use agentbox_protocol::api::{PermissionMode, UserSettings};
use uuid::Uuid;

use sqlx::Row;

use crate::{Result, Store, StoreError, now};

impl Store {
    /// The user's settings; defaults when the user never changed any.
    pub async fn user_settings(&self, user_id: Uuid) -> Result<UserSettings> {
        let row = sqlx::query(
            "SELECT custom_instructions, sandbox_allowed_hosts FROM user_settings WHERE user_id = $1",
        )
        .bind(user_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(UserSettings::default()) };
        let hosts: Option<String> = row.try_get("sandbox_allowed_hosts")?;
        Ok(UserSettings {
            custom_instructions: row.try_get("custom_instructions")?,
            sandbox_allowed_hosts: hosts
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|err| StoreError::Corrupt(format!("allowed hosts: {err}")))?
                .unwrap_or_default(),
        })
    }

    /// Set the hosts the user's sandboxes may reach besides the server's allow-list.
    pub async fn set_user_allowed_hosts(
        &self,
        user_id: Uuid,
        hosts: &[String],
    ) -> Result<UserSettings> {
        let json = (!hosts.is_empty())
            .then(|| serde_json::to_string(hosts))
            .transpose()
            .map_err(|err| StoreError::Corrupt(err.to_string()))?;
        sqlx::query(
            "INSERT INTO user_settings (user_id, sandbox_allowed_hosts, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET sandbox_allowed_hosts = excluded.sandbox_allowed_hosts,
                                                 updated_at = excluded.updated_at",
        )
        .bind(user_id.to_string())
        .bind(json)
        .bind(now())
        .execute(&self.pool)
        .await?;
        self.user_settings(user_id).await
    }

    /// Set the user's custom instructions (`None` removes them) and return the settings.
    pub async fn set_user_instructions(
        &self,
        user_id: Uuid,
        instructions: Option<&str>,
    ) -> Result<UserSettings> {
        sqlx::query(
            "INSERT INTO user_settings (user_id, custom_instructions, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET custom_instructions = excluded.custom_instructions,
                                                 updated_at = excluded.updated_at",
        )
        .bind(user_id.to_string())
        .bind(instructions)
        .bind(now())
        .execute(&self.pool)
        .await?;
        self.user_settings(user_id).await
    }

    /// Set a chat's permission mode on behalf of the turn runner, which acts for the chat's
    /// owner (when a person approves a plan and picks the mode to continue in).
    pub async fn set_chat_permission_mode(
        &self,
        chat_id: Uuid,
        mode: PermissionMode,
    ) -> Result<()> {
        sqlx::query("UPDATE chats SET permission_mode = $2, updated_at = $3 WHERE id = $1")
            .bind(chat_id.to_string())
            .bind(mode.as_str())
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
