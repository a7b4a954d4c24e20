//! Persistence for agentbox: users, chats, messages and each chat's durable event log.
//!
//! This is the only crate that knows SQL. It runs on SQLite (WAL, foreign keys, a busy
//! timeout) with migrations embedded in the binary; the schema is written so that a
//! PostgreSQL implementation can follow without redesign. Every write that must be atomic
//! (starting a turn, appending an event, finishing a turn) is one `BEGIN IMMEDIATE`
//! transaction, so a crash leaves either all of it or none of it.

mod chats;
mod checkpoints;
mod events;
mod permissions;
mod queue;
mod settings;
mod turns;
mod users;

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

pub use chats::{ChatRecord, ChatUpdate, NewChat};
pub use checkpoints::{CheckpointKind, CheckpointRecord, Rewind};
pub use events::NewEvent;
pub use permissions::PermissionRecord;
pub use queue::QueuedUpdate;
pub use turns::{StartedTurn, TurnResult};
pub use users::UserRecord;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was hit; the string names it (`email_taken`, `turn_in_progress`).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A handle to the database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Open (creating it if needed) and migrate the database at `url`: `sqlite://PATH` or a
    /// plain file path.
    pub async fn open(url: &str) -> Result<Self> {
        let options = if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)?
        } else {
            SqliteConnectOptions::new().filename(url)
        };
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL loses nothing when the process crashes; only a power cut
            // can take back the last transactions.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        MIGRATIONS.run(&pool).await?;
        Ok(Self { pool })
    }

    /// Check that the database answers.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A write transaction that takes the write lock at once, so it never fails half-way
    /// on lock upgrade.
    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub(crate) fn parse_uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|err| StoreError::Corrupt(format!("bad id {text:?}: {err}")))
}

pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}

/// Map a unique-constraint violation to a named conflict.
pub(crate) fn conflict_on_unique(err: sqlx::Error, name: &'static str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(name),
        _ => StoreError::Database(err),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use agentbox_protocol::api::PermissionMode;

    use crate::{NewChat, Store};

    /// A store in a temporary directory with one user and one chat (in `ask` mode).
    pub async fn store_with_chat() -> (tempfile::TempDir, Store, uuid::Uuid) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("db.sqlite").to_str().unwrap()).await.unwrap();
        let user = store.create_user("q@example.com", None, "hash").await.unwrap();
        let chat = store
            .create_chat(NewChat {
                user_id: user.id,
                title: "t".into(),
                model: "m".into(),
                permission_mode: PermissionMode::Ask,
                sandbox_provider: "local".into(),
                custom_instructions: None,
                max_thinking_tokens: None,
            })
            .await
            .unwrap();
        (dir, store, chat.id)
    }
}
