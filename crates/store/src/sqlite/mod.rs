//! The SQLite backend, the embedded default: one file, WAL, foreign keys, a busy timeout.
//! Every write that must be atomic is one `BEGIN IMMEDIATE` transaction: it takes the
//! database's write lock at once, so writers (of this process or another) queue instead of
//! failing half-way on a lock upgrade, and a crash leaves all of it or none of it.

mod audit;
mod chats;
mod checkpoints;
mod controls;
mod events;
mod extensions;
mod jobs;
mod nodes;
mod permissions;
mod queue;
mod secrets;
mod settings;
mod tasks;
mod turns;
mod users;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite as Db, SqlitePool, Transaction};
use uuid::Uuid;

use crate::records::{Fields, parse_uuid};
use crate::repository::{DatabaseRepository, Repository};
use crate::{Backend, DatabaseInfo, PoolSettings, PoolUse, Result, StoreError, Table};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone, Debug)]
pub(crate) struct Sqlite {
    pool: SqlitePool,
}

impl Sqlite {
    pub(crate) async fn open(url: &str, settings: &PoolSettings) -> Result<Self> {
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
        let (min, max) = settings.min_and_max(0, 8);
        let pool = SqlitePoolOptions::new()
            .min_connections(min)
            .max_connections(max)
            .max_lifetime(settings.lifetime(None))
            .idle_timeout(settings.idle())
            .connect_with(options)
            .await?;
        MIGRATIONS.run(&pool).await?;
        Ok(Self { pool })
    }

    /// A write transaction that takes the write lock at once, so it never fails half-way
    /// on lock upgrade.
    async fn write(&self) -> Result<Transaction<'static, Db>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

impl Fields for SqliteRow {
    fn text(&self, col: &str) -> Result<String> {
        Ok(self.try_get(col)?)
    }
    fn opt_text(&self, col: &str) -> Result<Option<String>> {
        Ok(self.try_get(col)?)
    }
    fn int(&self, col: &str) -> Result<i64> {
        Ok(self.try_get(col)?)
    }
    fn opt_int(&self, col: &str) -> Result<Option<i64>> {
        Ok(self.try_get(col)?)
    }
    fn opt_real(&self, col: &str) -> Result<Option<f64>> {
        Ok(self.try_get(col)?)
    }
    fn id(&self, col: &str) -> Result<Uuid> {
        parse_uuid(self.try_get(col)?)
    }
    fn opt_id(&self, col: &str) -> Result<Option<Uuid>> {
        self.try_get::<Option<&str>, _>(col)?.map(parse_uuid).transpose()
    }
    fn time(&self, col: &str) -> Result<DateTime<Utc>> {
        Ok(self.try_get(col)?)
    }
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self.try_get(col)?)
    }
    fn json(&self, col: &str) -> Result<String> {
        Ok(self.try_get(col)?)
    }
    fn opt_json(&self, col: &str) -> Result<Option<String>> {
        Ok(self.try_get(col)?)
    }
}

/// `SELECT COUNT(*)` of each table.
fn count_query(table: Table) -> &'static str {
    match table {
        Table::Users => "SELECT COUNT(*) FROM users",
        Table::RefreshTokens => "SELECT COUNT(*) FROM refresh_tokens",
        Table::UserSettings => "SELECT COUNT(*) FROM user_settings",
        Table::Chats => "SELECT COUNT(*) FROM chats",
        Table::Messages => "SELECT COUNT(*) FROM messages",
        Table::ChatEvents => "SELECT COUNT(*) FROM chat_events",
        Table::PermissionRequests => "SELECT COUNT(*) FROM permission_requests",
        Table::PermissionRules => "SELECT COUNT(*) FROM permission_rules",
        Table::QueuedMessages => "SELECT COUNT(*) FROM queued_messages",
        Table::Checkpoints => "SELECT COUNT(*) FROM checkpoints",
        Table::Invites => "SELECT COUNT(*) FROM invites",
        Table::AuditEvents => "SELECT COUNT(*) FROM audit_events",
        Table::ServerSettings => "SELECT COUNT(*) FROM server_settings",
        Table::Secrets => "SELECT COUNT(*) FROM secrets",
        Table::Tasks => "SELECT COUNT(*) FROM tasks",
        Table::TaskRuns => "SELECT COUNT(*) FROM task_runs",
        Table::Extensions => "SELECT COUNT(*) FROM extensions",
        Table::ChatRepositories => "SELECT COUNT(*) FROM chat_repositories",
    }
}

/// Each table's rows as JSON objects, in rowid order after a rowid: every column as a
/// string or a number, JSON documents as the text they are stored as (a string). A
/// message's cost comes as a column of its own: SQLite writes a REAL into JSON with 15
/// digits and would round it.
fn export_query(table: Table) -> &'static str {
    match table {
        Table::Users => {
            "SELECT rowid, json_object('id', id, 'email', email, 'username', username,
                    'password_hash', password_hash, 'created_at', created_at,
                    'is_admin', is_admin, 'disabled_at', disabled_at)
             FROM users WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::RefreshTokens => {
            "SELECT rowid, json_object('token_hash', token_hash, 'user_id', user_id,
                    'expires_at', expires_at, 'created_at', created_at,
                    'family_id', family_id, 'used_at', used_at)
             FROM refresh_tokens WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::UserSettings => {
            "SELECT rowid, json_object('user_id', user_id, 'custom_instructions',
                    custom_instructions, 'updated_at', updated_at, 'sandbox_allowed_hosts',
                    sandbox_allowed_hosts, 'limits', limits, 'default_model', default_model,
                    'default_permission_mode', default_permission_mode)
             FROM user_settings WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::Chats => {
            "SELECT rowid, json_object('id', id, 'user_id', user_id, 'title', title,
                    'model', model, 'permission_mode', permission_mode, 'session_id', session_id,
                    'sandbox_provider', sandbox_provider, 'last_seq', last_seq,
                    'created_at', created_at, 'updated_at', updated_at,
                    'custom_instructions', custom_instructions,
                    'max_thinking_tokens', max_thinking_tokens, 'title_source', title_source,
                    'pinned_at', pinned_at, 'archived_at', archived_at)
             FROM chats WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::Messages => {
            "SELECT rowid, json_object('id', id, 'chat_id', chat_id, 'position', position,
                    'role', role, 'status', status, 'model', model,
                    'permission_mode', permission_mode, 'session_id', session_id,
                    'usage', usage,
                    'checkpoint_id', checkpoint_id, 'created_at', created_at,
                    'completed_at', completed_at, 'hidden_at', hidden_at), total_cost_usd
             FROM messages WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::ChatEvents => {
            "SELECT rowid, json_object('chat_id', chat_id, 'seq', seq, 'message_id', message_id,
                    'type', type, 'parent_tool_use_id', parent_tool_use_id, 'data', data,
                    'created_at', created_at)
             FROM chat_events WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::PermissionRequests => {
            "SELECT rowid, json_object('chat_id', chat_id, 'request_id', request_id,
                    'message_id', message_id, 'seq', seq, 'kind', kind, 'tool_name', tool_name,
                    'input', input, 'status', status, 'resolved_by', resolved_by,
                    'created_at', created_at, 'expires_at', expires_at,
                    'resolved_at', resolved_at)
             FROM permission_requests WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::PermissionRules => {
            "SELECT rowid, json_object('id', id, 'chat_id', chat_id, 'tool_name', tool_name,
                    'rule_content', rule_content, 'created_at', created_at)
             FROM permission_rules WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::QueuedMessages => {
            "SELECT rowid, json_object('id', id, 'chat_id', chat_id, 'position', position,
                    'prompt', prompt, 'model', model, 'permission_mode', permission_mode,
                    'created_at', created_at, 'updated_at', updated_at)
             FROM queued_messages WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::Checkpoints => {
            "SELECT rowid, json_object('id', id, 'chat_id', chat_id, 'message_id', message_id,
                    'kind', kind, 'session_id', session_id,
                    'visible_messages', visible_messages, 'created_at', created_at)
             FROM checkpoints WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::Invites => {
            "SELECT rowid, json_object('id', id, 'token_hash', token_hash,
                    'created_by', created_by, 'created_at', created_at,
                    'expires_at', expires_at, 'used_at', used_at, 'used_by', used_by)
             FROM invites WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::AuditEvents => {
            "SELECT rowid, json_object('id', id, 'created_at', created_at, 'kind', kind,
                    'actor_id', actor_id, 'target_id', target_id, 'email', email,
                    'address', address, 'detail', detail)
             FROM audit_events WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::ServerSettings => {
            "SELECT rowid, json_object('name', name, 'value', value, 'updated_at', updated_at)
             FROM server_settings WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::Secrets => {
            "SELECT rowid, json_object('id', id, 'user_id', user_id, 'chat_id', chat_id,
                    'name', name, 'key_id', key_id, 'sealed', sealed,
                    'created_at', created_at, 'updated_at', updated_at)
             FROM secrets WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::Tasks => {
            "SELECT rowid, json_object('id', id, 'user_id', user_id, 'name', name,
                    'prompt', prompt, 'schedule', schedule, 'time_zone', time_zone,
                    'model', model, 'permission_mode', permission_mode,
                    'permission_timeout_secs', permission_timeout_secs,
                    'target_chat_id', target_chat_id, 'enabled', enabled,
                    'missed_runs', missed_runs, 'next_run_at', next_run_at,
                    'created_at', created_at, 'updated_at', updated_at)
             FROM tasks WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::TaskRuns => {
            "SELECT rowid, json_object('id', id, 'task_id', task_id, 'due_at', due_at,
                    'trigger', trigger, 'status', status, 'claimed_at', claimed_at,
                    'claimed_by', claimed_by, 'started_at', started_at, 'ended_at', ended_at,
                    'chat_id', chat_id, 'message_id', message_id, 'error', error,
                    'seen_at', seen_at)
             FROM task_runs WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::Extensions => {
            "SELECT rowid, json_object('id', id, 'user_id', user_id, 'chat_id', chat_id,
                    'kind', kind, 'name', name, 'body', body,
                    'created_at', created_at, 'updated_at', updated_at)
             FROM extensions WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
        Table::ChatRepositories => {
            "SELECT rowid, json_object('chat_id', chat_id, 'url', url, 'branch', branch,
                    'secret', secret, 'directory', directory, 'created_at', created_at)
             FROM chat_repositories WHERE rowid > $1 ORDER BY rowid LIMIT $2"
        }
    }
}

/// A row object with `total_cost_usd` added as text that reads back as the same double.
fn with_cost(object: &str, cost: f64) -> Result<String> {
    let mut row: serde_json::Map<String, serde_json::Value> = serde_json::from_str(object)
        .map_err(|err| StoreError::Corrupt(format!("exported row: {err}")))?;
    row.insert("total_cost_usd".into(), cost.to_string().into());
    crate::records::to_json(&row)
}

#[async_trait]
impl DatabaseRepository for Sqlite {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn info(&self) -> Result<DatabaseInfo> {
        let version: String =
            sqlx::query_scalar("SELECT sqlite_version()").fetch_one(&self.pool).await?;
        Ok(DatabaseInfo {
            backend: Backend::Sqlite,
            version: format!("SQLite {version}"),
            pool: PoolUse::of(&self.pool),
        })
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn count_rows(&self, table: Table) -> Result<i64> {
        Ok(sqlx::query_scalar(count_query(table)).fetch_one(&self.pool).await?)
    }

    async fn export_rows(
        &self,
        table: Table,
        cursor: i64,
        limit: i64,
    ) -> Result<(Vec<String>, i64)> {
        let rows =
            sqlx::query(export_query(table)).bind(cursor).bind(limit).fetch_all(&self.pool).await?;
        let mut next = cursor;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            next = row.try_get(0)?;
            let object: String = row.try_get(1)?;
            if table == Table::Messages
                && let Some(cost) = row.try_get::<Option<f64>, _>(2)?
            {
                out.push(with_cost(&object, cost)?);
            } else {
                out.push(object);
            }
        }
        Ok((out, next))
    }

    async fn snapshot_into(&self, path: &std::path::Path) -> Result<()> {
        let path = path.to_str().ok_or_else(|| {
            StoreError::Refused(format!("the snapshot path {} is not UTF-8", path.display()))
        })?;
        // One read transaction of its own: writers go on (WAL), and the copy is the database
        // as of the moment it began.
        sqlx::query("VACUUM INTO $1").bind(path).execute(&self.pool).await?;
        Ok(())
    }

    async fn import_from(
        &self,
        _source: &dyn Repository,
        _progress: &(dyn Fn(Table, i64, i64) + Send + Sync),
    ) -> Result<()> {
        Err(StoreError::Refused(
            "copying an installation into SQLite is not supported: the target must be PostgreSQL"
                .into(),
        ))
    }
}
