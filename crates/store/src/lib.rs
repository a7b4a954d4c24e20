//! Persistence for agentbox: users, chats, messages and each chat's durable event log, the
//! index of permission requests and the rules, the queue, settings and checkpoints' metadata.
//!
//! This is the only crate that knows SQL. The operations are the traits of `repository`,
//! implemented twice: SQLite (`sqlite/`, the embedded default: WAL, foreign keys, a busy
//! timeout, every write one `BEGIN IMMEDIATE` transaction) and PostgreSQL (`postgres/`:
//! a pool with the seed's settings, per-chat row locks). [`Store`] is the handle the rest
//! of the product holds; it knows neither backend. Row → record mapping and validation live
//! once, in `records`. Migrations of both are embedded in the binary and run at open.

mod copy;
mod postgres;
mod records;
mod repository;
mod search;
mod sqlite;
mod tasks;
pub mod testing;

use std::sync::Arc;
use std::time::Duration;

use agentbox_protocol::api::{Message, PermissionMode, QueuedMessage, UserSettings};
use agentbox_protocol::event::ChatEvent;
use agentbox_protocol::permission::{PendingPermission, PermissionRule, StoredPermissionRule};
use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use copy::{CopyReport, copy_installation};
pub use records::{
    AuditFilter, AuditRecord, ChatListing, ChatRecord, ChatRepositoryRecord, ChatUpdate,
    CheckpointKind, CheckpointRecord, DEFAULT_CHAT_TITLE, ExtensionRecord, InviteRecord,
    LimitOverrides, NewChat, NewEvent, NodeRecord, NodeRole, OrphanedTurn, PermissionRecord,
    QueuedUpdate, RefreshRotation, Rewind, SecretRecord, Spending, StartedTurn, StoredControl,
    TitleSource, TurnJob, TurnQueueSummary, TurnResult, UserActivity, UserRecord, UserUsage,
};
pub use repository::{Repository, Wake};
pub use search::ChatQuery;
pub use tasks::{NewTaskRun, TaskRecord};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was hit; the string names it (`email_taken`, `turn_in_progress`).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    /// The database failed; the text is its cause.
    #[error("database error: {0}")]
    Database(String),
    #[error("migration failed: {0}")]
    Migrate(String),
    /// What was asked cannot be done (an unknown database URL, a copy into a database that
    /// is not empty); the text says why.
    #[error("{0}")]
    Refused(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::RowNotFound => Self::NotFound,
            other => Self::Database(other.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(err.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Map a unique-constraint violation to a named conflict.
pub(crate) fn conflict_on_unique(err: sqlx::Error, name: &'static str) -> StoreError {
    match &err {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(name),
        _ => StoreError::from(err),
    }
}

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names: `postgres://` or `postgresql://`, else SQLite
    /// (`sqlite://PATH` or a plain path). Other schemes are refused.
    pub fn of_url(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else if url.starts_with("sqlite:") || !url.contains("://") {
            Ok(Self::Sqlite)
        } else {
            Err(StoreError::Refused(format!(
                "unsupported database URL {}: use sqlite://PATH or postgres://...",
                redact_url(url)
            )))
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// A URL with any password replaced, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://<redacted>@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Connection pool settings, with the seed's meaning. `None` is the backend's default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections kept open (sqlx `min_connections`) [PostgreSQL: 30; SQLite: 0].
    pub size: Option<u32>,
    /// Connections opened beyond `size` under load and closed after `idle_timeout` idle;
    /// `size + max_overflow` is sqlx's `max_connections` [PostgreSQL: 20; SQLite: 8].
    pub max_overflow: Option<u32>,
    /// Close a connection this long after it was opened (`pool_recycle`, sqlx
    /// `max_lifetime`); zero never [PostgreSQL: 1800 s; SQLite: never].
    pub recycle: Option<Duration>,
    /// How long an overflow connection may sit idle [default: 60 s].
    pub idle_timeout: Option<Duration>,
}

impl PoolSettings {
    pub(crate) fn min_and_max(&self, default_size: u32, default_overflow: u32) -> (u32, u32) {
        let size = self.size.unwrap_or(default_size);
        let max = size.saturating_add(self.max_overflow.unwrap_or(default_overflow)).max(1);
        (size.min(max), max)
    }

    /// The connections' lifetime: `None` for ever.
    pub(crate) fn lifetime(&self, default: Option<Duration>) -> Option<Duration> {
        match self.recycle {
            Some(lifetime) if lifetime.is_zero() => None,
            Some(lifetime) => Some(lifetime),
            None => default,
        }
    }

    pub(crate) fn idle(&self) -> Duration {
        self.idle_timeout.unwrap_or(Duration::from_secs(60))
    }
}

/// How a connection pool is used right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolUse {
    /// Open connections.
    pub open: u32,
    /// Open connections nobody holds.
    pub idle: u32,
    /// Connections kept open.
    pub min: u32,
    /// The most the pool opens.
    pub max: u32,
}

impl PoolUse {
    pub(crate) fn of<DB: sqlx::Database>(pool: &sqlx::Pool<DB>) -> Self {
        let options = pool.options();
        Self {
            open: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            min: options.get_min_connections(),
            max: options.get_max_connections(),
        }
    }
}

/// What `/health` says about the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseInfo {
    pub backend: Backend,
    /// The server's (PostgreSQL) or the library's (SQLite) version.
    pub version: String,
    pub pool: PoolUse,
}

/// The tables of the schema, in an order that satisfies every foreign key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    Users,
    RefreshTokens,
    UserSettings,
    Chats,
    Messages,
    ChatEvents,
    PermissionRequests,
    PermissionRules,
    QueuedMessages,
    Checkpoints,
    Invites,
    AuditEvents,
    ServerSettings,
    Secrets,
    Tasks,
    TaskRuns,
    Extensions,
    ChatRepositories,
}

impl Table {
    pub const ALL: [Self; 18] = [
        Self::Users,
        Self::RefreshTokens,
        Self::UserSettings,
        Self::Chats,
        Self::Messages,
        Self::ChatEvents,
        Self::PermissionRequests,
        Self::PermissionRules,
        Self::QueuedMessages,
        Self::Checkpoints,
        Self::Invites,
        Self::AuditEvents,
        Self::ServerSettings,
        Self::Secrets,
        Self::Tasks,
        Self::TaskRuns,
        Self::Extensions,
        Self::ChatRepositories,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Users => "users",
            Self::RefreshTokens => "refresh_tokens",
            Self::UserSettings => "user_settings",
            Self::Chats => "chats",
            Self::Messages => "messages",
            Self::ChatEvents => "chat_events",
            Self::PermissionRequests => "permission_requests",
            Self::PermissionRules => "permission_rules",
            Self::QueuedMessages => "queued_messages",
            Self::Checkpoints => "checkpoints",
            Self::Invites => "invites",
            Self::AuditEvents => "audit_events",
            Self::ServerSettings => "server_settings",
            Self::Secrets => "secrets",
            Self::Tasks => "tasks",
            Self::TaskRuns => "task_runs",
            Self::Extensions => "extensions",
            Self::ChatRepositories => "chat_repositories",
        }
    }
}

/// A handle to the database; cheap to clone. Every method is one atomic operation of the
/// backend behind it.
#[derive(Clone, Debug)]
pub struct Store {
    repo: Arc<dyn Repository>,
    backend: Backend,
}

impl Store {
    /// Open (creating a SQLite file if needed) and migrate the database at `url`:
    /// `sqlite://PATH`, a plain file path, or `postgres://...`; default pool settings.
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, &PoolSettings::default()).await
    }

    /// [`Store::open`] with pool settings.
    pub async fn open_with(url: &str, pool: &PoolSettings) -> Result<Self> {
        let backend = Backend::of_url(url)?;
        let repo: Arc<dyn Repository> = match backend {
            Backend::Sqlite => Arc::new(sqlite::Sqlite::open(url, pool).await?),
            Backend::Postgres => Arc::new(postgres::Postgres::open(url, pool).await?),
        };
        Ok(Self { repo, backend })
    }

    /// Which database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The backend's implementation, for code that needs the interface itself.
    pub fn repository(&self) -> &dyn Repository {
        &*self.repo
    }

    /// Check that the database answers.
    pub async fn ping(&self) -> Result<()> {
        self.repo.ping().await
    }

    /// The backend, its version and its pool's use.
    pub async fn info(&self) -> Result<DatabaseInfo> {
        self.repo.info().await
    }

    pub async fn close(&self) {
        self.repo.close().await;
    }

    /// How many rows `table` has.
    pub async fn count_rows(&self, table: Table) -> Result<i64> {
        self.repo.count_rows(table).await
    }

    /// A consistent copy of the whole database, taken while others write, in a new SQLite
    /// file at `path` (SQLite only; PostgreSQL answers `Refused`).
    pub async fn snapshot_into(&self, path: &std::path::Path) -> Result<()> {
        self.repo.snapshot_into(path).await
    }

    // Users.

    /// Create a user; `Conflict("email_taken")` if the (lower-cased) email exists. The
    /// installation's first user is an administrator.
    pub async fn create_user(
        &self,
        email: &str,
        username: Option<&str>,
        password_hash: &str,
    ) -> Result<UserRecord> {
        self.create_user_with(email, username, password_hash, None).await
    }

    /// [`Store::create_user`], using up the invite whose token hashes to `invite`:
    /// `Conflict("invalid_invite")` (checked first) if it is unknown, used or expired.
    pub async fn create_user_with(
        &self,
        email: &str,
        username: Option<&str>,
        password_hash: &str,
        invite: Option<&str>,
    ) -> Result<UserRecord> {
        let user = UserRecord {
            id: Uuid::now_v7(),
            email: email.to_lowercase(),
            username: username.map(str::to_owned),
            password_hash: password_hash.to_owned(),
            created_at: records::now(),
            is_admin: false,
            disabled_at: None,
        };
        self.repo.create_user(&user, invite, records::now()).await
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>> {
        self.repo.user_by_email(&email.to_lowercase()).await
    }

    pub async fn user(&self, id: Uuid) -> Result<Option<UserRecord>> {
        self.repo.user(id).await
    }

    pub async fn count_users(&self) -> Result<i64> {
        self.repo.count_users().await
    }

    /// Every user, oldest first.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>> {
        self.repo.list_users().await
    }

    /// Chats, turns and recorded cost of every user who has a chat.
    pub async fn users_usage(&self) -> Result<Vec<UserUsage>> {
        self.repo.users_usage().await
    }

    /// The user's running turns, and the turns started since `since` with their cost.
    pub async fn user_activity(&self, user_id: Uuid, since: DateTime<Utc>) -> Result<UserActivity> {
        self.repo.user_activity(user_id, records::stored_time(since)).await
    }

    /// Disable an account (its refresh tokens are deleted) or re-enable it.
    /// `Conflict("last_admin")` for the last enabled administrator.
    pub async fn set_user_disabled(&self, id: Uuid, disabled: bool) -> Result<Option<UserRecord>> {
        self.repo.set_user_disabled(id, disabled.then(records::now)).await
    }

    /// `Conflict("last_admin")` when unmaking the last enabled administrator.
    pub async fn set_user_admin(&self, id: Uuid, is_admin: bool) -> Result<Option<UserRecord>> {
        self.repo.set_user_admin(id, is_admin).await
    }

    /// Delete an account with everything it owns. `Conflict("last_admin")` for the last
    /// enabled administrator.
    pub async fn delete_user(&self, id: Uuid) -> Result<bool> {
        self.repo.delete_user(id).await
    }

    /// Remember a refresh token by its hash (the token itself is never stored) as the first
    /// of a new family (a sign-in).
    pub async fn add_refresh_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        family_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        self.repo
            .add_refresh_token(user_id, token_hash, family_id, records::stored_time(expires_at))
            .await
    }

    /// Present a refresh token: used up and replaced by `new_hash` if valid; its family
    /// revoked if it had been used before (see [`RefreshRotation`]).
    pub async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        new_hash: &str,
        new_expires_at: DateTime<Utc>,
    ) -> Result<RefreshRotation> {
        self.repo
            .rotate_refresh_token(
                token_hash,
                new_hash,
                records::stored_time(new_expires_at),
                records::now(),
            )
            .await
    }

    /// Sign out one session: revoke the family of the user's refresh token.
    pub async fn revoke_refresh_family(&self, user_id: Uuid, token_hash: &str) -> Result<bool> {
        self.repo.revoke_refresh_family(user_id, token_hash).await
    }

    /// Change a user's password and sign them out everywhere (every refresh-token family
    /// dies with it, in the same transaction); `false` if there is no such user.
    pub async fn set_password_hash(&self, user_id: Uuid, password_hash: &str) -> Result<bool> {
        self.repo.set_password_hash(user_id, password_hash).await
    }

    /// Sign a user out everywhere.
    pub async fn remove_refresh_tokens(&self, user_id: Uuid) -> Result<()> {
        self.repo.remove_refresh_tokens(user_id).await
    }

    /// A new invite expiring at `expires_at`, stored by its token's hash.
    pub async fn create_invite(
        &self,
        created_by: Uuid,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<InviteRecord> {
        let invite = InviteRecord {
            id: Uuid::now_v7(),
            created_by: Some(created_by),
            created_at: records::now(),
            expires_at: records::stored_time(expires_at),
            used_at: None,
            used_by: None,
        };
        self.repo.create_invite(&invite, token_hash).await?;
        Ok(invite)
    }

    /// Every invite, newest first.
    pub async fn list_invites(&self) -> Result<Vec<InviteRecord>> {
        self.repo.list_invites().await
    }

    pub async fn delete_invite(&self, id: Uuid) -> Result<bool> {
        self.repo.delete_invite(id).await
    }

    // Secrets, sealed by the caller (crates/secrets); the store never sees a value.

    /// Set the sealed value of a user's secret (`chat_id: None`) or of a chat's override;
    /// `true` when it is new.
    pub async fn put_secret(
        &self,
        user_id: Uuid,
        chat_id: Option<Uuid>,
        name: &str,
        key_id: &str,
        sealed: &str,
    ) -> Result<bool> {
        let at = records::now();
        let secret = SecretRecord {
            id: Uuid::now_v7(),
            user_id,
            chat_id,
            name: name.to_owned(),
            key_id: key_id.to_owned(),
            sealed: sealed.to_owned(),
            created_at: at,
            updated_at: at,
        };
        self.repo.put_secret(&secret).await
    }

    /// One scope's secrets, by name: the user's own when `chat_id` is `None`, else that
    /// chat's overrides.
    pub async fn secrets(&self, user_id: Uuid, chat_id: Option<Uuid>) -> Result<Vec<SecretRecord>> {
        self.repo.secrets(user_id, chat_id).await
    }

    pub async fn delete_secret(
        &self,
        user_id: Uuid,
        chat_id: Option<Uuid>,
        name: &str,
    ) -> Result<bool> {
        self.repo.delete_secret(user_id, chat_id, name).await
    }

    /// Every secret of the installation, for `agentbox rotate-secret-key`.
    pub async fn all_secrets(&self) -> Result<Vec<SecretRecord>> {
        self.repo.all_secrets().await
    }

    /// Store re-sealed values of existing secrets, all in one transaction.
    pub async fn reseal_secrets(&self, secrets: &[SecretRecord]) -> Result<u64> {
        self.repo.reseal_secrets(secrets).await
    }

    // Agent extensions: definitions validated by the caller (agentbox_protocol::extension).

    /// Set a definition of the user (`chat_id: None`) or of a chat; `true` when it is new.
    pub async fn put_extension(
        &self,
        user_id: Uuid,
        chat_id: Option<Uuid>,
        kind: &str,
        name: &str,
        body: &str,
    ) -> Result<bool> {
        let at = records::now();
        let extension = ExtensionRecord {
            id: Uuid::now_v7(),
            user_id,
            chat_id,
            kind: kind.to_owned(),
            name: name.to_owned(),
            body: body.to_owned(),
            created_at: at,
            updated_at: at,
        };
        self.repo.put_extension(&extension).await
    }

    /// One scope's definitions (the user's own when `chat_id` is `None`, else that chat's),
    /// of one kind or all, by kind and name.
    pub async fn extensions(
        &self,
        user_id: Uuid,
        chat_id: Option<Uuid>,
        kind: Option<&str>,
    ) -> Result<Vec<ExtensionRecord>> {
        self.repo.extensions(user_id, chat_id, kind).await
    }

    pub async fn delete_extension(
        &self,
        user_id: Uuid,
        chat_id: Option<Uuid>,
        kind: &str,
        name: &str,
    ) -> Result<bool> {
        self.repo.delete_extension(user_id, chat_id, kind, name).await
    }

    // The audit log.

    /// Record a security event now; `detail` is a JSON object.
    pub async fn audit(
        &self,
        kind: &str,
        actor_id: Option<Uuid>,
        target_id: Option<Uuid>,
        email: Option<&str>,
        address: Option<&str>,
        detail: Option<&serde_json::Value>,
    ) -> Result<AuditRecord> {
        let event = AuditRecord {
            id: Uuid::now_v7(),
            created_at: records::now(),
            kind: kind.to_owned(),
            actor_id,
            target_id,
            email: email.map(str::to_lowercase),
            address: address.map(str::to_owned),
            detail: detail.map(records::to_json).transpose()?,
        };
        self.repo.append_audit(&event).await?;
        Ok(event)
    }

    /// Audit events matching `filter`, newest first.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let filter = AuditFilter {
            since: filter.since.map(records::stored_time),
            before: filter.before.map(records::stored_time),
            ..filter.clone()
        };
        self.repo.audit_events(&filter).await
    }

    /// Delete audit events older than `before`.
    pub async fn purge_audit(&self, before: DateTime<Utc>) -> Result<u64> {
        self.repo.purge_audit(records::stored_time(before)).await
    }

    // Chats: every query behind a request is scoped by the user, so that someone else's
    // chat is indistinguishable from one that does not exist.

    pub async fn create_chat(&self, chat: NewChat) -> Result<ChatRecord> {
        let record = chat.into_record();
        self.repo.create_chat(&record).await?;
        Ok(record)
    }

    /// The user's chats, most recently active first.
    pub async fn list_chats(&self, user_id: Uuid) -> Result<Vec<ChatRecord>> {
        self.repo.list_chats(user_id).await
    }

    /// The chat if it exists and belongs to `user_id`.
    pub async fn chat(&self, user_id: Uuid, chat_id: Uuid) -> Result<Option<ChatRecord>> {
        self.repo.chat(user_id, chat_id).await
    }

    /// The chat whoever owns it: for the turn runner, never for a request handler.
    pub async fn chat_unscoped(&self, chat_id: Uuid) -> Result<Option<ChatRecord>> {
        self.repo.chat_unscoped(chat_id).await
    }

    pub async fn update_chat(
        &self,
        user_id: Uuid,
        chat_id: Uuid,
        update: ChatUpdate,
    ) -> Result<Option<ChatRecord>> {
        self.repo.update_chat(user_id, chat_id, update).await
    }

    /// Delete the chat with its messages and events; `false` if there was no such chat.
    pub async fn delete_chat(&self, user_id: Uuid, chat_id: Uuid) -> Result<bool> {
        self.repo.delete_chat(user_id, chat_id).await
    }

    /// Record the repository the chat was started from (one per chat); its time is cut to
    /// the precision both backends keep.
    pub async fn set_chat_repository(&self, repository: &ChatRepositoryRecord) -> Result<()> {
        let created_at = records::stored_time(repository.created_at);
        self.repo
            .set_chat_repository(&ChatRepositoryRecord { created_at, ..repository.clone() })
            .await
    }

    /// The repository the chat was started from, if it was.
    pub async fn chat_repository(&self, chat_id: Uuid) -> Result<Option<ChatRepositoryRecord>> {
        self.repo.chat_repository(chat_id).await
    }

    /// Forget the CLI session (when it can no longer be resumed).
    pub async fn clear_session_id(&self, chat_id: Uuid) -> Result<()> {
        self.repo.clear_session_id(chat_id).await
    }

    /// The user's chats that `query` selects, most recently active first, with previews.
    pub async fn find_chats(&self, user_id: Uuid, query: &ChatQuery) -> Result<Vec<ChatListing>> {
        self.repo.find_chats(user_id, query).await
    }

    /// What the user's turns cost in the chat, and in all their chats since `since`.
    pub async fn spending(
        &self,
        user_id: Uuid,
        chat_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Spending> {
        self.repo.spending(user_id, chat_id, records::stored_time(since)).await
    }

    /// Name the chat unless it was named already (by its user or before); `false` then.
    pub async fn set_generated_title(&self, chat_id: Uuid, title: &str) -> Result<bool> {
        self.repo.set_generated_title(chat_id, title).await
    }

    // The event log: appending takes the chat's next `seq` in the same transaction as the
    // insert, so seqs are strictly increasing, without gaps, and an event is either fully
    // committed or absent.

    /// Append one event to the chat's log and return it with its `seq`.
    pub async fn append_event(&self, chat_id: Uuid, event: NewEvent) -> Result<ChatEvent> {
        self.repo.append_event(chat_id, event.normalized()).await
    }

    /// Up to `limit` events of the chat with `seq > after`, in order.
    /// The chat's latest `system` event of `subtype`.
    pub async fn last_system_event(
        &self,
        chat_id: Uuid,
        subtype: &str,
    ) -> Result<Option<ChatEvent>> {
        self.repo.last_system_event(chat_id, subtype).await
    }

    pub async fn events_after(
        &self,
        chat_id: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<ChatEvent>> {
        self.repo.events_after(chat_id, after, limit).await
    }

    // Turns: a user message and the assistant message that answers it, started and
    // finished atomically together with their events.

    /// Record a new turn: the user message with its `user_text` event and an `in_progress`
    /// assistant message. `Conflict("turn_in_progress")` if the chat already has a turn running.
    pub async fn begin_turn(
        &self,
        chat_id: Uuid,
        prompt: &str,
        model: &str,
        permission_mode: PermissionMode,
    ) -> Result<StartedTurn> {
        self.repo.begin_turn(chat_id, prompt, model, permission_mode).await
    }

    /// Finish a running turn: set the message's final status and figures, remember the CLI
    /// session on the chat and append `message_completed`, all in one transaction.
    /// `Conflict("turn_not_running")` if the message is not in progress.
    pub async fn finish_turn(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
        result: TurnResult,
    ) -> Result<ChatEvent> {
        self.repo.finish_turn(chat_id, message_id, result).await
    }

    /// The assistant message of the chat's running turn, if one is running.
    pub async fn running_turn(&self, chat_id: Uuid) -> Result<Option<Uuid>> {
        self.repo.running_turn(chat_id).await
    }

    /// Every turn left `in_progress` (by a crash), as (chat, message) pairs.
    pub async fn unfinished_turns(&self) -> Result<Vec<(Uuid, Uuid)>> {
        self.repo.unfinished_turns().await
    }

    /// The chat's messages in order, each with its events as `content`, without the ones a
    /// restore hid. Content is read from the event log, which is the single source of truth
    /// for what happened in a turn.
    pub async fn messages(&self, chat_id: Uuid) -> Result<Vec<Message>> {
        self.repo.messages(chat_id).await
    }

    // Permission requests and "always allow" rules. The log is the truth about a request:
    // its `permission_request` event and its `permission_resolved` event. The
    // `permission_requests` table is an index of the same facts, written in the
    // transaction that appends each of the two events.

    /// Append an event like [`Store::append_event`], keeping the index of permission
    /// requests in step when it is a `permission_request` or `permission_resolved` event.
    /// A resolution of a request that is not open is still logged but changes nothing else.
    pub async fn append_permission_event(
        &self,
        chat_id: Uuid,
        event: NewEvent,
    ) -> Result<ChatEvent> {
        self.repo.append_permission_event(chat_id, event.normalized()).await
    }

    /// The chat's open permission requests, oldest first.
    pub async fn pending_permissions(&self, chat_id: Uuid) -> Result<Vec<PendingPermission>> {
        self.repo.pending_permissions(chat_id).await
    }

    /// One request of the chat, open or not.
    pub async fn permission_request(
        &self,
        chat_id: Uuid,
        request_id: &str,
    ) -> Result<Option<PermissionRecord>> {
        self.repo.permission_request(chat_id, request_id).await
    }

    /// Every open request of every chat, as (chat, message, request id): what a restart
    /// must close.
    pub async fn all_pending_permissions(&self) -> Result<Vec<(Uuid, Uuid, String)>> {
        self.repo.all_pending_permissions().await
    }

    /// Store an "always allow" rule; storing one the chat already has returns the existing one.
    pub async fn add_permission_rule(
        &self,
        chat_id: Uuid,
        rule: &PermissionRule,
    ) -> Result<StoredPermissionRule> {
        let stored = StoredPermissionRule {
            id: Uuid::now_v7(),
            rule: rule.clone(),
            created_at: records::now(),
        };
        match self.repo.insert_permission_rule(chat_id, &stored).await {
            Ok(()) => Ok(stored),
            Err(StoreError::Conflict("rule_exists")) => self
                .permission_rules(chat_id)
                .await?
                .into_iter()
                .find(|existing| existing.rule == *rule)
                .ok_or(StoreError::NotFound),
            Err(other) => Err(other),
        }
    }

    /// The chat's "always allow" rules, oldest first.
    pub async fn permission_rules(&self, chat_id: Uuid) -> Result<Vec<StoredPermissionRule>> {
        self.repo.permission_rules(chat_id).await
    }

    /// Remove one rule of the chat; `false` if the chat has no such rule.
    pub async fn delete_permission_rule(&self, chat_id: Uuid, rule_id: Uuid) -> Result<bool> {
        self.repo.delete_permission_rule(chat_id, rule_id).await
    }

    // Queued prompts: sent while a turn was running, they wait in order. Taking one out of
    // the queue and starting its turn is one transaction, so a prompt is either still
    // queued or a turn, never both and never lost.

    /// Put a prompt at the end of the chat's queue.
    pub async fn enqueue(
        &self,
        chat_id: Uuid,
        prompt: &str,
        model: Option<&str>,
        permission_mode: Option<PermissionMode>,
    ) -> Result<QueuedMessage> {
        self.repo.enqueue(chat_id, prompt, model, permission_mode).await
    }

    /// The chat's queue, next first.
    pub async fn queue(&self, chat_id: Uuid) -> Result<Vec<QueuedMessage>> {
        self.repo.queue(chat_id).await
    }

    /// Change a queued prompt; `None` if the chat has no such queued prompt (any more).
    pub async fn update_queued(
        &self,
        chat_id: Uuid,
        id: Uuid,
        update: QueuedUpdate,
    ) -> Result<Option<QueuedMessage>> {
        self.repo.update_queued(chat_id, id, update).await
    }

    /// Remove a queued prompt; `false` if the chat has no such queued prompt (any more).
    pub async fn delete_queued(&self, chat_id: Uuid, id: Uuid) -> Result<bool> {
        self.repo.delete_queued(chat_id, id).await
    }

    /// Move a queued prompt to the front of the queue; `false` if there is no such prompt.
    pub async fn move_queued_to_front(&self, chat_id: Uuid, id: Uuid) -> Result<bool> {
        self.repo.move_queued_to_front(chat_id, id).await
    }

    /// Take the queued prompt `id` (the next one when `None`) out of the queue and start its
    /// turn, in one transaction. `model` and `permission_mode` are the chat's, used when the
    /// prompt has none of its own. `Ok(None)` when there is no such prompt;
    /// `Conflict("turn_in_progress")` (and the prompt stays queued) while a turn runs.
    pub async fn begin_queued_turn(
        &self,
        chat_id: Uuid,
        id: Option<Uuid>,
        model: &str,
        permission_mode: PermissionMode,
    ) -> Result<Option<(QueuedMessage, StartedTurn)>> {
        self.repo.begin_queued_turn(chat_id, id, model, permission_mode).await
    }

    /// Every chat with a queued prompt.
    pub async fn chats_with_queued_messages(&self) -> Result<Vec<Uuid>> {
        self.repo.chats_with_queued_messages().await
    }

    /// Pause or resume the chat's queue: a paused queue waits for `send now`. Kept in the
    /// database so that every node sees the same.
    pub async fn set_queue_paused(&self, chat_id: Uuid, paused: bool) -> Result<()> {
        self.repo.set_queue_paused(chat_id, paused).await
    }

    pub async fn queue_paused(&self, chat_id: Uuid) -> Result<bool> {
        self.repo.queue_paused(chat_id).await
    }

    /// Pause the queue of every chat with a queued prompt (after a restart).
    pub async fn pause_waiting_queues(&self) -> Result<u64> {
        self.repo.pause_waiting_queues().await
    }

    // Agent settings kept apart from the chat and user records.

    /// The user's settings; defaults when the user never changed any.
    pub async fn user_settings(&self, user_id: Uuid) -> Result<UserSettings> {
        self.repo.user_settings(user_id).await
    }

    /// Set the hosts the user's sandboxes may reach besides the server's allow-list.
    pub async fn set_user_allowed_hosts(
        &self,
        user_id: Uuid,
        hosts: &[String],
    ) -> Result<UserSettings> {
        self.repo.set_user_allowed_hosts(user_id, hosts).await?;
        self.user_settings(user_id).await
    }

    /// Set the user's custom instructions (`None` removes them) and return the settings.
    pub async fn set_user_instructions(
        &self,
        user_id: Uuid,
        instructions: Option<&str>,
    ) -> Result<UserSettings> {
        self.repo.set_user_instructions(user_id, instructions).await?;
        self.user_settings(user_id).await
    }

    /// Replace the model and permission mode the user's new chats start with when the
    /// request names none (`None`: the server's default) and return the settings.
    pub async fn set_user_defaults(
        &self,
        user_id: Uuid,
        model: Option<&str>,
        permission_mode: Option<PermissionMode>,
    ) -> Result<UserSettings> {
        self.repo.set_user_defaults(user_id, model, permission_mode).await?;
        self.user_settings(user_id).await
    }

    /// The limits an administrator set for the user (empty: the defaults for everything).
    pub async fn user_limits(&self, user_id: Uuid) -> Result<LimitOverrides> {
        records::limits_from_json(self.repo.user_limits(user_id).await?.as_deref())
    }

    /// Replace the limits an administrator set for the user (empty: back to the defaults).
    pub async fn set_user_limits(&self, user_id: Uuid, limits: &LimitOverrides) -> Result<()> {
        self.repo.set_user_limits(user_id, records::limits_json(limits)?.as_deref()).await
    }

    /// An installation setting an administrator changed at run time (`None`: never changed,
    /// the flag's value holds).
    pub async fn server_setting(&self, name: &str) -> Result<Option<String>> {
        self.repo.server_setting(name).await
    }

    pub async fn set_server_setting(&self, name: &str, value: &str) -> Result<()> {
        self.repo.set_server_setting(name, value).await
    }

    /// Set a chat's permission mode on behalf of the turn runner, which acts for the chat's
    /// owner (when a person approves a plan and picks the mode to continue in).
    pub async fn set_chat_permission_mode(
        &self,
        chat_id: Uuid,
        mode: PermissionMode,
    ) -> Result<()> {
        self.repo.set_chat_permission_mode(chat_id, mode).await
    }

    // Checkpoints: which checkpoint belongs to which turn, and the rewinds and forks that
    // use them. The workspace files themselves are in the checkpoint store.

    /// Remember a checkpoint of the chat's workspace with the conversation as it is now.
    /// A turn's checkpoint is also set on its message.
    pub async fn record_checkpoint(
        &self,
        chat_id: Uuid,
        id: Uuid,
        kind: CheckpointKind,
        message_id: Option<Uuid>,
        session_id: Option<&str>,
    ) -> Result<CheckpointRecord> {
        self.repo.record_checkpoint(chat_id, id, kind, message_id, session_id).await
    }

    /// The chat's checkpoints, newest first.
    pub async fn checkpoints(&self, chat_id: Uuid) -> Result<Vec<CheckpointRecord>> {
        self.repo.checkpoints(chat_id).await
    }

    pub async fn checkpoint(&self, chat_id: Uuid, id: Uuid) -> Result<Option<CheckpointRecord>> {
        self.repo.checkpoint(chat_id, id).await
    }

    /// Forget checkpoints the store pruned; messages no longer point at them.
    pub async fn forget_checkpoints(&self, chat_id: Uuid, ids: &[Uuid]) -> Result<()> {
        self.repo.forget_checkpoints(chat_id, ids).await
    }

    /// Make the conversation what it was at `to`: the messages visible then are shown, all
    /// others hidden (kept, restorable), the chat resumes `to`'s CLI session next, and a
    /// `system/rewind` event says so. All in one transaction.
    pub async fn rewind(&self, chat_id: Uuid, to: &CheckpointRecord) -> Result<Rewind> {
        self.repo.rewind(chat_id, to).await
    }

    /// Copy the conversation of `source` up to and including `up_to` (its visible messages
    /// and their events, renumbered) into the new chat `target`, which resumes `session_id`.
    pub async fn copy_conversation(
        &self,
        source: &ChatRecord,
        target: Uuid,
        up_to: Uuid,
        session_id: Option<&str>,
    ) -> Result<()> {
        self.repo.copy_conversation(source, target, up_to, session_id).await
    }

    // The cluster: nodes and their heartbeats, the node running each turn, the durable
    // turn queue and controls for running turns. Instants are the caller's, so that expiry
    // is explicit (and testable without waiting).

    /// Register a node (again, after a restart).
    pub async fn register_node(&self, node: &NodeRecord) -> Result<()> {
        self.repo.register_node(node).await
    }

    /// Record a node's heartbeat; `false` when it is not registered.
    pub async fn node_heartbeat(&self, node_id: &str, at: DateTime<Utc>) -> Result<bool> {
        self.repo.node_heartbeat(node_id, at).await
    }

    pub async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        self.repo.nodes().await
    }

    /// Mark a running turn as run by `node_id`; `false` (run nothing) when it has ended or
    /// another node started it.
    pub async fn start_turn_on(&self, message_id: Uuid, node_id: &str) -> Result<bool> {
        self.repo.start_turn_on(message_id, node_id).await
    }

    /// The node running the turn of `message_id`, while it runs.
    pub async fn turn_node(&self, message_id: Uuid) -> Result<Option<String>> {
        self.repo.turn_node(message_id).await
    }

    /// Running turns no live node runs (see `NodeRepository::orphaned_turns`).
    pub async fn orphaned_turns(
        &self,
        node_id: &str,
        own: bool,
        expired_before: DateTime<Utc>,
    ) -> Result<Vec<OrphanedTurn>> {
        self.repo.orphaned_turns(node_id, own, expired_before).await
    }

    /// Take an orphaned turn over from `from` for `to`; `false` when another node was first.
    pub async fn adopt_turn(&self, message_id: Uuid, from: Option<&str>, to: &str) -> Result<bool> {
        self.repo.adopt_turn(message_id, from, to).await
    }

    /// Bind the chat to the worker `node_id`; the node it was bound to before.
    pub async fn bind_chat(&self, chat_id: Uuid, node_id: &str) -> Result<Option<String>> {
        self.repo.bind_chat(chat_id, node_id).await
    }

    /// The worker the chat is bound to, if any.
    pub async fn chat_binding(&self, chat_id: Uuid) -> Result<Option<String>> {
        self.repo.chat_binding(chat_id).await
    }

    /// Bind the chat to no worker.
    pub async fn unbind_chat(&self, chat_id: Uuid) -> Result<()> {
        self.repo.unbind_chat(chat_id).await
    }

    /// Queue a recorded turn for a worker.
    pub async fn push_turn_job(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
        prompt: &str,
        model: &str,
        permission_mode: PermissionMode,
    ) -> Result<()> {
        self.repo.push_turn_job(chat_id, message_id, prompt, model, permission_mode).await
    }

    /// Lease the oldest free job that `node_id` may run to it until `lease_until` (a chat
    /// bound to another node whose heartbeat is not older than `nodes_expired_before`
    /// waits for that node).
    pub async fn claim_turn_job(
        &self,
        node_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        nodes_expired_before: DateTime<Utc>,
    ) -> Result<Option<TurnJob>> {
        self.repo.claim_turn_job(node_id, now, lease_until, nodes_expired_before).await
    }

    /// Extend every lease `node_id` holds to `until`.
    pub async fn extend_turn_job_leases(&self, node_id: &str, until: DateTime<Utc>) -> Result<u64> {
        self.repo.extend_turn_job_leases(node_id, until).await
    }

    /// Start a claimed job's turn on `node_id`; `false`: do not run it.
    pub async fn start_turn_job(
        &self,
        message_id: Uuid,
        node_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.repo.start_turn_job(message_id, node_id, now).await
    }

    pub async fn turn_jobs(&self) -> Result<Vec<TurnJob>> {
        self.repo.turn_jobs().await
    }

    /// How many jobs wait, how many are claimed, and the oldest one's queueing instant.
    pub async fn turn_queue_summary(&self) -> Result<TurnQueueSummary> {
        self.repo.turn_queue_summary().await
    }

    /// Wake-ups for queued jobs; `None` where the backend has none.
    pub async fn listen_jobs(&self) -> Result<Option<Box<dyn Wake>>> {
        self.repo.listen_jobs().await
    }

    /// End a queued turn no node has started as `interrupted`; `None` when one has.
    pub async fn cancel_unstarted_turn(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
    ) -> Result<Option<ChatEvent>> {
        self.repo.cancel_unstarted_turn(chat_id, message_id).await
    }

    /// Queue a control for the node running the turn; that node, or `None` when the turn
    /// runs nowhere.
    pub async fn push_control(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
        command: &str,
    ) -> Result<Option<String>> {
        self.repo.push_control(chat_id, message_id, command).await
    }

    /// Take the controls queued for `node_id`, oldest first.
    pub async fn take_controls(&self, node_id: &str) -> Result<Vec<StoredControl>> {
        self.repo.take_controls(node_id).await
    }

    /// Wake-ups for controls queued for `node_id`; `None` where the backend has none.
    pub async fn listen_controls(&self, node_id: &str) -> Result<Option<Box<dyn Wake>>> {
        self.repo.listen_controls(node_id).await
    }
}
