//! Per-user settings (custom instructions for the agent).

use agentbox_protocol::api::UserSettings;
use uuid::Uuid;

use crate::{Result, Store, now};

impl Store {
    /// The user's settings; defaults when the user never changed any.
    pub async fn user_settings(&self, user_id: Uuid) -> Result<UserSettings> {
        let instructions: Option<Option<String>> =
            sqlx::query_scalar("SELECT custom_instructions FROM user_settings WHERE user_id = $1")
                .bind(user_id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        Ok(UserSettings { custom_instructions: instructions.flatten() })
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
}
