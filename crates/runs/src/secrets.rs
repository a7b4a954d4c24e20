//! A chat's secrets opened for its sandbox: the user's own with the chat's overrides (the
//! chat's value wins), the model credentials among them, and a fingerprint that tells a
//! kept CLI process started with other values.

use std::collections::BTreeMap;
use std::fmt;

use agentbox_secrets::{
    MODEL_CREDENTIALS, MODEL_KEYS, SealError, Sealed, SealingKey, associated_data,
};
use agentbox_store::{SecretRecord, Store, StoreError};
use sha2::{Digest, Sha256};
use uuid::Uuid;
use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored value does not open; the name says which (never the value).
    #[error("the secret {name} cannot be opened: {source}")]
    Sealing { name: String, source: SealError },
}

/// The opened secrets of one chat. `Debug` shows names only.
pub struct ChatSecrets {
    values: BTreeMap<String, Zeroizing<String>>,
    fingerprint: String,
}

impl fmt::Debug for ChatSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatSecrets")
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl ChatSecrets {
    /// Open the secrets of `user_id` for `chat_id`.
    pub async fn load(
        store: &Store,
        key: &SealingKey,
        user_id: Uuid,
        chat_id: Uuid,
    ) -> Result<Self, SecretsError> {
        let mut rows: BTreeMap<String, SecretRecord> = BTreeMap::new();
        // The chat's overrides come second, so they replace the user's.
        for scope in [None, Some(chat_id)] {
            for row in store.secrets(user_id, scope).await? {
                rows.insert(row.name.clone(), row);
            }
        }
        let mut hash = Sha256::new();
        let mut values = BTreeMap::new();
        for (name, row) in rows {
            let owner = row.user_id.to_string();
            let chat = row.chat_id.map(|id| id.to_string());
            let ad = associated_data(&owner, chat.as_deref(), &name);
            let sealed = Sealed { key_id: row.key_id.clone(), text: row.sealed.clone() };
            let value = key
                .open_text(&sealed, &ad)
                .map_err(|source| SecretsError::Sealing { name: name.clone(), source })?;
            // The sealed text changes with every change of a value (a fresh nonce), so
            // hashing it, never the value, tells one set of values from another.
            for part in [name.as_bytes(), b"\0", row.sealed.as_bytes(), b"\0"] {
                hash.update(part);
            }
            values.insert(name, value);
        }
        let fingerprint = hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect();
        Ok(Self { values, fingerprint })
    }

    /// The variables of the chat's sandbox processes.
    pub fn env(&self) -> Vec<(String, String)> {
        self.values.iter().map(|(name, value)| (name.clone(), value.as_str().to_owned())).collect()
    }

    /// Whether the user brings model credentials of their own (any of the special names):
    /// then the server's are not passed at all.
    pub fn has_own_model_access(&self) -> bool {
        MODEL_CREDENTIALS.iter().any(|name| self.values.contains_key(*name))
    }

    /// Whether one of them is a key the model API accepts.
    pub fn has_own_model_key(&self) -> bool {
        MODEL_KEYS.iter().any(|name| self.values.contains_key(*name))
    }

    /// The value of one secret, if the chat has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|value| value.as_str())
    }

    /// The user's own `ANTHROPIC_BASE_URL`, if any.
    pub fn base_url(&self) -> Option<&str> {
        self.values.get("ANTHROPIC_BASE_URL").map(|value| value.as_str())
    }

    /// Names the set of values (a hash of their sealed texts, not of the values).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_chat_wins_and_nothing_shows_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite").display().to_string()).await.unwrap();
        let user = store.create_user("a@example.com", None, "hash").await.unwrap().id;
        let chat = store
            .create_chat(agentbox_store::NewChat {
                user_id: user,
                title: "t".into(),
                model: "m".into(),
                permission_mode: agentbox_protocol::api::PermissionMode::Ask,
                sandbox_provider: "local".into(),
                custom_instructions: None,
                max_thinking_tokens: None,
            })
            .await
            .unwrap()
            .id;
        let key = SealingKey::ephemeral();
        let put = |chat_id: Option<Uuid>, name: &'static str, value: &'static str| {
            let (store, key) = (store.clone(), key.clone());
            async move {
                let chat = chat_id.map(|id| id.to_string());
                let sealed = key.seal(
                    value.as_bytes(),
                    &associated_data(&user.to_string(), chat.as_deref(), name),
                );
                store.put_secret(user, chat_id, name, &sealed.key_id, &sealed.text).await.unwrap();
            }
        };
        put(None, "TOKEN", "user-value-1").await;
        put(None, "ANTHROPIC_BASE_URL", "http://example.com").await;
        put(Some(chat), "TOKEN", "chat-value-2").await;
        let secrets = ChatSecrets::load(&store, &key, user, chat).await.unwrap();
        assert_eq!(
            secrets.env(),
            [
                ("ANTHROPIC_BASE_URL".to_owned(), "http://example.com".to_owned()),
                ("TOKEN".to_owned(), "chat-value-2".to_owned())
            ]
        );
        assert!(secrets.has_own_model_access() && !secrets.has_own_model_key());
        assert_eq!(secrets.base_url(), Some("http://example.com"));
        let text = format!("{secrets:?}");
        assert!(!text.contains("value") && !text.contains("example.com"), "{text}");

        // Any change of a value changes the fingerprint.
        let before = secrets.fingerprint().to_owned();
        put(Some(chat), "TOKEN", "chat-value-2").await;
        let after = ChatSecrets::load(&store, &key, user, chat).await.unwrap();
        assert_ne!(after.fingerprint(), before);
        // Another key does not open them, and says which secret.
        let err =
            ChatSecrets::load(&store, &SealingKey::ephemeral(), user, chat).await.unwrap_err();
        assert!(
            matches!(&err, SecretsError::Sealing { source: SealError::UnknownKey { .. }, .. }),
            "{err}"
        );
    }
}
