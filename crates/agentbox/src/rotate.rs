//! `agentbox rotate-secret-key`: re-seal every user's secret from the current `SECRET_KEY`
//! to a new one, in one transaction, and (when the key lives in `<data-dir>/secret.key`)
//! put the new key in its place. The same key signs access and refresh tokens, so a
//! rotation also signs everyone out. Run it while no server uses the database.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use agentbox_secrets::{Sealed, SealingKey, associated_data};
use agentbox_store::Store;
use anyhow::{Context, bail};
use rand::RngCore;

use crate::config::Config;

/// Where the current key came from.
enum KeySource {
    /// `--secret-key` or `SECRET_KEY`: the operator changes it after the rotation.
    Given,
    /// `<data-dir>/secret.key`, which the rotation replaces.
    File(PathBuf),
}

/// What a rotation did.
#[derive(Debug, PartialEq, Eq)]
pub struct Rotation {
    pub resealed: u64,
    /// Secrets that were under the new key already (an earlier, interrupted rotation).
    pub already_new: usize,
    pub old_key_id: String,
    pub new_key_id: String,
}

/// Re-seal every secret under `new_key` (at least 32 characters), or under a new random key
/// when the current one is the data directory's file and `new_key` is `None`. A secret
/// under any other key stops the rotation before anything changed.
pub async fn rotate(config: &Config, new_key: Option<String>) -> anyhow::Result<Rotation> {
    let (old_key, source) = current_key(config)?;
    let new_key = match (new_key, &source) {
        (Some(key), _) if key.len() < 32 => bail!("--new-key must be at least 32 characters long"),
        (Some(key), _) => key,
        (None, KeySource::File(_)) => random_key(),
        (None, KeySource::Given) => bail!(
            "the current key comes from --secret-key or SECRET_KEY: give the new one with \
             --new-key (or AGENTBOX_NEW_SECRET_KEY), then start the server with it"
        ),
    };
    if new_key == old_key {
        bail!("the new key is the current key");
    }
    let (old, new) =
        (SealingKey::derive(old_key.as_bytes()), SealingKey::derive(new_key.as_bytes()));
    let store =
        Store::open_with(&config.database_url, &config.db_pool).await.with_context(|| {
            format!("cannot open the database {}", agentbox_store::redact_url(&config.database_url))
        })?;
    let mut resealed = Vec::new();
    let mut already_new = 0;
    for mut secret in store.all_secrets().await? {
        if secret.key_id == new.id() {
            already_new += 1;
            continue;
        }
        let (owner, chat) = (secret.user_id.to_string(), secret.chat_id.map(|id| id.to_string()));
        let ad = associated_data(&owner, chat.as_deref(), &secret.name);
        let sealed = Sealed { key_id: secret.key_id.clone(), text: secret.sealed.clone() };
        let value = old.open(&sealed, &ad).with_context(|| {
            format!(
                "the secret {} of user {owner} cannot be opened; nothing was changed",
                secret.name
            )
        })?;
        let sealed = new.seal(&value, &ad);
        secret.key_id = sealed.key_id;
        secret.sealed = sealed.text;
        resealed.push(secret);
    }
    // The new key is on disk before the database depends on it; if the process dies in
    // between, `secret.key.new` holds the key the database's secrets are under.
    let staged = match &source {
        KeySource::File(path) => Some(stage(path, &new_key)?),
        KeySource::Given => None,
    };
    let count = store.reseal_secrets(&resealed).await?;
    store.close().await;
    if let (Some(staged), KeySource::File(path)) = (staged, &source) {
        std::fs::rename(&staged, path)
            .with_context(|| format!("cannot move {} to {}", staged.display(), path.display()))?;
    }
    Ok(Rotation {
        resealed: count,
        already_new,
        old_key_id: old.id().to_owned(),
        new_key_id: new.id().to_owned(),
    })
}

fn current_key(config: &Config) -> anyhow::Result<(String, KeySource)> {
    if let Some(key) = &config.secret_key {
        return Ok((key.clone(), KeySource::Given));
    }
    let path = config.data_dir.join("secret.key");
    let key = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the secret key {}", path.display()))?;
    Ok((key.trim().to_owned(), KeySource::File(path)))
}

fn random_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Write the new key next to the old one, private and synced; its path.
fn stage(path: &Path, key: &str) -> anyhow::Result<PathBuf> {
    let staged = path.with_extension("key.new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&staged)
        .with_context(|| format!("cannot create {}", staged.display()))?;
    file.write_all(key.as_bytes())?;
    file.sync_all()?;
    Ok(staged)
}
