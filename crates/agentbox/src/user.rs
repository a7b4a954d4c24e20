//! `agentbox user ...`: the operator's account commands, for one locked out of the web UI.
//! They work on the store directly (the same `DATABASE_URL` and data directory as `serve`,
//! also while it runs) and keep the admin API's rules: the server's email, password and
//! username checks and its password hash (`agentbox_server::account_rules`), and the store's
//! own rules (never fewer than one enabled administrator; disabling an account or setting
//! its password ends its refresh-token families in the same transaction). Each change is
//! written to the audit log like the admin API's, with `cli` as the actor.

use std::io::{BufRead, Write};

use agentbox_server::account_rules;
use agentbox_store::{Store, StoreError, UserRecord};
use anyhow::{Context, bail};
use rand::RngCore;
use serde::Serialize;
use uuid::Uuid;

use crate::config::Config;

/// What to do.
#[derive(Debug, Clone)]
pub enum Action {
    List,
    Create { email: String, username: Option<String>, admin: bool, password_from_stdin: bool },
    Disable { user: String },
    Enable { user: String },
    ResetPassword { user: String, password_from_stdin: bool },
    MakeAdmin { user: String },
    RemoveAdmin { user: String },
}

/// One account as the commands print it.
#[derive(Debug, Serialize)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub username: Option<String>,
    pub is_admin: bool,
    pub disabled: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<&UserRecord> for UserRow {
    fn from(user: &UserRecord) -> Self {
        Self {
            id: user.id,
            email: user.email.clone(),
            username: user.username.clone(),
            is_admin: user.is_admin,
            disabled: user.disabled_at.is_some(),
            created_at: user.created_at,
        }
    }
}

/// What a command answers: the accounts it shows or changed, and a password it generated
/// (printed once, never stored in plain text).
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub users: Vec<UserRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated_password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Run `action` against the configured store, reading a password from `stdin` when asked.
pub async fn run(
    config: &Config,
    action: Action,
    stdin: &mut dyn BufRead,
) -> anyhow::Result<Outcome> {
    let store =
        Store::open_with(&config.database_url, &config.db_pool).await.with_context(|| {
            format!("cannot open the database {}", agentbox_store::redact_url(&config.database_url))
        })?;
    let outcome = act(&store, action, stdin).await;
    store.close().await;
    outcome
}

async fn act(store: &Store, action: Action, stdin: &mut dyn BufRead) -> anyhow::Result<Outcome> {
    let done = |user: &UserRecord, message: String| Outcome {
        users: vec![UserRow::from(user)],
        generated_password: None,
        message: Some(message),
    };
    match action {
        Action::List => Ok(Outcome {
            users: store.list_users().await?.iter().map(UserRow::from).collect(),
            generated_password: None,
            message: None,
        }),
        Action::Create { email, username, admin, password_from_stdin } => {
            let email = account_rules::email(&email).map_err(rule)?.to_owned();
            account_rules::username(username.as_deref()).map_err(rule)?;
            let (password, generated) = new_password(password_from_stdin, stdin)?;
            account_rules::password(&password, &email).map_err(rule)?;
            let hash = account_rules::hash_password(password).await.map_err(rule)?;
            let mut user = store
                .create_user(&email, username.as_deref().map(str::trim), &hash)
                .await
                .map_err(|err| match err {
                    StoreError::Conflict(_) => {
                        anyhow::anyhow!("an account with the email {email} exists already")
                    }
                    other => other.into(),
                })?;
            if admin && !user.is_admin {
                user =
                    store.set_user_admin(user.id, true).await?.context("the account vanished")?;
            }
            let detail = serde_json::json!({"email": user.email, "is_admin": user.is_admin});
            audit(store, "user_created", &user, detail).await;
            Ok(Outcome { generated_password: generated, ..done(&user, "created".into()) })
        }
        Action::Disable { user } => {
            let user = find(store, &user).await?;
            let user = store
                .set_user_disabled(user.id, true)
                .await
                .map_err(last_admin)?
                .context("the account vanished")?;
            let detail = serde_json::json!({"disabled": true, "is_admin": null});
            audit(store, "user_updated", &user, detail).await;
            Ok(done(
                &user,
                "disabled: its tokens stop working at their next request and its sign-ins \
                 (refresh tokens) are ended; a turn running now finishes"
                    .into(),
            ))
        }
        Action::Enable { user } => {
            let user = find(store, &user).await?;
            let user =
                store.set_user_disabled(user.id, false).await?.context("the account vanished")?;
            let detail = serde_json::json!({"disabled": false, "is_admin": null});
            audit(store, "user_updated", &user, detail).await;
            Ok(done(&user, "enabled".into()))
        }
        Action::MakeAdmin { user } => set_admin(store, &user, true).await,
        Action::RemoveAdmin { user } => set_admin(store, &user, false).await,
        Action::ResetPassword { user, password_from_stdin } => {
            let user = find(store, &user).await?;
            let (password, generated) = new_password(password_from_stdin, stdin)?;
            account_rules::password(&password, &user.email).map_err(rule)?;
            let hash = account_rules::hash_password(password).await.map_err(rule)?;
            if !store.set_password_hash(user.id, &hash).await? {
                bail!("no user {}", user.email);
            }
            audit(store, "password_reset", &user, serde_json::json!({})).await;
            Ok(Outcome {
                generated_password: generated,
                ..done(&user, "password set; every sign-in of the account ended".into())
            })
        }
    }
}

async fn set_admin(store: &Store, user: &str, is_admin: bool) -> anyhow::Result<Outcome> {
    let user = find(store, user).await?;
    let user = store
        .set_user_admin(user.id, is_admin)
        .await
        .map_err(last_admin)?
        .context("the account vanished")?;
    let detail = serde_json::json!({"disabled": null, "is_admin": is_admin});
    audit(store, "user_updated", &user, detail).await;
    let message = if is_admin { "is an administrator now" } else { "is no administrator now" };
    Ok(Outcome {
        users: vec![UserRow::from(&user)],
        generated_password: None,
        message: Some(message.into()),
    })
}

/// A user by id or email; an error naming what was looked for if there is none.
async fn find(store: &Store, who: &str) -> anyhow::Result<UserRecord> {
    let found = match Uuid::parse_str(who.trim()) {
        Ok(id) => store.user(id).await?,
        Err(_) => store.user_by_email(who.trim()).await?,
    };
    found.with_context(|| format!("no user {who:?} (give an email or an id; `agentbox user list`)"))
}

fn rule(err: agentbox_server::ApiError) -> anyhow::Error {
    anyhow::anyhow!("{} ({})", err.message, err.code)
}

fn last_admin(err: StoreError) -> anyhow::Error {
    match err {
        StoreError::Conflict("last_admin") => anyhow::anyhow!(
            "this is the last enabled administrator: make another user an administrator first \
             (`agentbox user make-admin EMAIL`)"
        ),
        other => other.into(),
    }
}

/// The password from the first line of `stdin`, or a generated one (then also returned to
/// be printed once).
fn new_password(
    from_stdin: bool,
    stdin: &mut dyn BufRead,
) -> anyhow::Result<(String, Option<String>)> {
    if from_stdin {
        let mut line = String::new();
        stdin.read_line(&mut line).context("cannot read the password from stdin")?;
        let password = line.strip_suffix('\n').unwrap_or(&line);
        let password = password.strip_suffix('\r').unwrap_or(password).to_owned();
        if password.is_empty() {
            bail!("stdin gave no password (one line is read)");
        }
        return Ok((password, None));
    }
    // 18 random bytes as 24 URL-safe characters: far past any guessing, easy to paste.
    let mut bytes = [0u8; 18];
    rand::rng().fill_bytes(&mut bytes);
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut password = String::with_capacity(24);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            password.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
        }
    }
    Ok((password.clone(), Some(password)))
}

/// Like the admin API's entries, with the actor `cli` (it has no account): the address and
/// the detail's `actor` say so.
async fn audit(store: &Store, kind: &str, target: &UserRecord, detail: serde_json::Value) {
    let mut detail = detail;
    if let Some(object) = detail.as_object_mut() {
        object.insert("actor".into(), "cli".into());
    }
    let written = store
        .audit(kind, None, Some(target.id), Some(&target.email), Some("cli"), Some(&detail))
        .await;
    if let Err(err) = written {
        tracing::warn!(kind, %err, "could not write to the audit log");
    }
}

/// The outcome for people: a table of the accounts, then what happened.
pub fn print_table(outcome: &Outcome, out: &mut dyn Write) -> std::io::Result<()> {
    let rows: Vec<[String; 6]> = outcome
        .users
        .iter()
        .map(|u| {
            [
                u.id.to_string(),
                u.email.clone(),
                u.username.clone().unwrap_or_default(),
                if u.is_admin { "admin" } else { "user" }.to_owned(),
                if u.disabled { "disabled" } else { "enabled" }.to_owned(),
                u.created_at.format("%Y-%m-%d %H:%M").to_string(),
            ]
        })
        .collect();
    let header = ["ID", "EMAIL", "USERNAME", "ROLE", "STATE", "CREATED (UTC)"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(&header.map(str::to_owned)))?;
    for row in &rows {
        writeln!(out, "{}", line(row))?;
    }
    if let (Some(message), Some(user)) = (&outcome.message, outcome.users.first()) {
        writeln!(out, "\n{}: {message}", user.email)?;
    }
    if let Some(password) = &outcome.generated_password {
        writeln!(out, "\nThe new password (shown this once; it is stored only as a hash):")?;
        writeln!(out, "{password}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_keep_the_rules_and_differ() {
        let mut none: &[u8] = b"";
        let (first, shown) = new_password(false, &mut none).unwrap();
        assert_eq!(shown.as_deref(), Some(first.as_str()));
        assert_eq!(first.chars().count(), 24);
        account_rules::password(&first, "someone@example.com").unwrap();
        assert_ne!(new_password(false, &mut none).unwrap().0, first);
    }

    #[test]
    fn a_password_from_stdin_is_its_first_line_and_not_shown() {
        let mut input: &[u8] = b"two words here\r\nsecond line\n";
        assert_eq!(new_password(true, &mut input).unwrap(), ("two words here".into(), None));
        let mut empty: &[u8] = b"\n";
        assert!(new_password(true, &mut empty).is_err());
    }

    #[test]
    fn the_table_has_a_header_a_row_per_user_and_the_password_once() {
        let outcome = Outcome {
            users: vec![UserRow {
                id: Uuid::nil(),
                email: "a@example.com".into(),
                username: None,
                is_admin: true,
                disabled: false,
                created_at: chrono::DateTime::UNIX_EPOCH,
            }],
            generated_password: Some("p4ss-word-xyz".into()),
            message: Some("created".into()),
        };
        let mut out = Vec::new();
        print_table(&outcome, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ID") && lines[0].contains("EMAIL"), "{text}");
        assert!(lines[1].contains("a@example.com") && lines[1].contains("admin"), "{text}");
        assert_eq!(text.matches("p4ss-word-xyz").count(), 1, "{text}");
    }
}
