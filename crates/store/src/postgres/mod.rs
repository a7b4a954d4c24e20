//! The PostgreSQL backend: a connection pool with the seed's settings (connections kept
//! open, an overflow closed when idle, recycled after a lifetime, checked before use).
//!
//! Transactions run at READ COMMITTED. A transaction that reads a chat's state and then
//! writes from it (a turn's positions, the queue's order, a rewind) first locks the chat's
//! row (`SELECT ... FOR UPDATE`), so writers of one chat, from any process, take turns
//! exactly as SQLite's `BEGIN IMMEDIATE` makes them, while other chats go on in parallel.
//! Appending an event increments `chats.last_seq` with an `UPDATE`, which takes the same
//! row lock until commit: that is what keeps `seq` gapless (a rolled-back append gives its
//! number back with its row). A crash of the client rolls back whatever it had open when
//! the server sees the connection close.

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

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Postgres as Db, Row, Transaction};
use uuid::Uuid;

use crate::records::Fields;
use crate::repository::{DatabaseRepository, Repository};
use crate::{Backend, DatabaseInfo, PoolSettings, PoolUse, Result, StoreError, Table};

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The seed's pool: 30 connections kept, 20 more under load, recycled after 30 minutes.
const DEFAULT_SIZE: u32 = 30;
const DEFAULT_OVERFLOW: u32 = 20;
const DEFAULT_RECYCLE: Duration = Duration::from_secs(1800);

#[derive(Clone, Debug)]
pub(crate) struct Postgres {
    pool: PgPool,
}

impl Postgres {
    pub(crate) async fn open(url: &str, settings: &PoolSettings) -> Result<Self> {
        let options: PgConnectOptions = url.parse()?;
        let options = options.application_name("agentbox");
        let (min, max) = settings.min_and_max(DEFAULT_SIZE, DEFAULT_OVERFLOW);
        let pool = PgPoolOptions::new()
            .min_connections(min)
            .max_connections(max)
            .max_lifetime(settings.lifetime(Some(DEFAULT_RECYCLE)))
            .idle_timeout(settings.idle())
            // The seed's `pool_pre_ping`: a connection the server dropped (a restart, a
            // failover) is noticed and replaced before a query is sent on it.
            .test_before_acquire(true)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        MIGRATIONS.run(&pool).await?;
        Ok(Self { pool })
    }

    async fn begin(&self) -> Result<Transaction<'static, Db>> {
        Ok(self.pool.begin().await?)
    }
}

/// Lock the chat's row for the rest of the transaction; `false` if there is no such chat.
async fn lock_chat(conn: &mut PgConnection, chat_id: Uuid) -> Result<bool> {
    let found = sqlx::query("SELECT id FROM chats WHERE id = $1 FOR UPDATE")
        .bind(chat_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(found.is_some())
}

impl Fields for PgRow {
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
        Ok(self.try_get(col)?)
    }
    fn opt_id(&self, col: &str) -> Result<Option<Uuid>> {
        Ok(self.try_get(col)?)
    }
    fn time(&self, col: &str) -> Result<DateTime<Utc>> {
        Ok(self.try_get(col)?)
    }
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self.try_get(col)?)
    }
    // A JSON column's value, in either wire format, is the document's text as stored (JSONB
    // would differ: its binary form has a version byte); the schema-parity test checks
    // that these columns are JSON.
    fn json(&self, col: &str) -> Result<String> {
        Ok(self.try_get_unchecked(col)?)
    }
    fn opt_json(&self, col: &str) -> Result<Option<String>> {
        Ok(self.try_get_unchecked(col)?)
    }
}

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

/// Insert a JSON array of row objects (as [`DatabaseRepository::export_rows`] makes them),
/// each field cast to its column's type. Documents arrive as strings and are cast from
/// their text, so they are stored exactly as they were, `\u0000` escapes included.
fn import_query(table: Table) -> &'static str {
    match table {
        Table::Users => {
            "INSERT INTO users (id, email, username, password_hash, created_at, is_admin, disabled_at)
             SELECT
                    (r->>'id')::uuid, r->>'email', r->>'username', r->>'password_hash',
                    (r->>'created_at')::timestamptz, (r->>'is_admin')::bigint,
                    (r->>'disabled_at')::timestamptz
             FROM json_array_elements($1::json) AS r"
        }
        Table::RefreshTokens => {
            "INSERT INTO refresh_tokens (token_hash, user_id, expires_at, created_at, family_id, used_at)
             SELECT
                    r->>'token_hash', (r->>'user_id')::uuid, (r->>'expires_at')::timestamptz,
                    (r->>'created_at')::timestamptz, r->>'family_id',
                    (r->>'used_at')::timestamptz
             FROM json_array_elements($1::json) AS r"
        }
        Table::UserSettings => {
            "INSERT INTO user_settings (user_id, custom_instructions, updated_at, sandbox_allowed_hosts, limits, default_model, default_permission_mode)
             SELECT
                    (r->>'user_id')::uuid, r->>'custom_instructions',
                    (r->>'updated_at')::timestamptz, (r->>'sandbox_allowed_hosts')::json,
                    (r->>'limits')::json, r->>'default_model', r->>'default_permission_mode'
             FROM json_array_elements($1::json) AS r"
        }
        Table::Chats => {
            "INSERT INTO chats (id, user_id, title, model, permission_mode, session_id, sandbox_provider, last_seq, created_at, updated_at, custom_instructions, max_thinking_tokens, title_source, pinned_at, archived_at)
             SELECT
                    (r->>'id')::uuid, (r->>'user_id')::uuid, r->>'title', r->>'model',
                    r->>'permission_mode', r->>'session_id', r->>'sandbox_provider',
                    (r->>'last_seq')::bigint, (r->>'created_at')::timestamptz,
                    (r->>'updated_at')::timestamptz, r->>'custom_instructions',
                    (r->>'max_thinking_tokens')::bigint, r->>'title_source',
                    (r->>'pinned_at')::timestamptz, (r->>'archived_at')::timestamptz
             FROM json_array_elements($1::json) AS r"
        }
        Table::Messages => {
            "INSERT INTO messages (id, chat_id, position, role, status, model, permission_mode, session_id, total_cost_usd, usage, checkpoint_id, created_at, completed_at, hidden_at)
             SELECT
                    (r->>'id')::uuid, (r->>'chat_id')::uuid, (r->>'position')::bigint,
                    r->>'role', r->>'status', r->>'model', r->>'permission_mode',
                    r->>'session_id', (r->>'total_cost_usd')::double precision,
                    (r->>'usage')::json, (r->>'checkpoint_id')::uuid,
                    (r->>'created_at')::timestamptz, (r->>'completed_at')::timestamptz,
                    (r->>'hidden_at')::timestamptz
             FROM json_array_elements($1::json) AS r"
        }
        Table::ChatEvents => {
            "INSERT INTO chat_events (chat_id, seq, message_id, type, parent_tool_use_id, data, created_at)
             SELECT
                    (r->>'chat_id')::uuid, (r->>'seq')::bigint, (r->>'message_id')::uuid,
                    r->>'type', r->>'parent_tool_use_id', (r->>'data')::json,
                    (r->>'created_at')::timestamptz
             FROM json_array_elements($1::json) AS r"
        }
        Table::PermissionRequests => {
            "INSERT INTO permission_requests (chat_id, request_id, message_id, seq, kind, tool_name, input, status, resolved_by, created_at, expires_at, resolved_at)
             SELECT
                    (r->>'chat_id')::uuid, r->>'request_id', (r->>'message_id')::uuid,
                    (r->>'seq')::bigint, r->>'kind', r->>'tool_name', (r->>'input')::json,
                    r->>'status', r->>'resolved_by', (r->>'created_at')::timestamptz,
                    (r->>'expires_at')::timestamptz, (r->>'resolved_at')::timestamptz
             FROM json_array_elements($1::json) AS r"
        }
        Table::PermissionRules => {
            "INSERT INTO permission_rules (id, chat_id, tool_name, rule_content, created_at)
             SELECT
                    (r->>'id')::uuid, (r->>'chat_id')::uuid, r->>'tool_name',
                    r->>'rule_content', (r->>'created_at')::timestamptz
             FROM json_array_elements($1::json) AS r"
        }
        Table::QueuedMessages => {
            "INSERT INTO queued_messages (id, chat_id, position, prompt, model, permission_mode, created_at, updated_at)
             SELECT
                    (r->>'id')::uuid, (r->>'chat_id')::uuid, (r->>'position')::bigint,
                    r->>'prompt', r->>'model', r->>'permission_mode',
                    (r->>'created_at')::timestamptz, (r->>'updated_at')::timestamptz
             FROM json_array_elements($1::json) AS r"
        }
        Table::Checkpoints => {
            "INSERT INTO checkpoints (id, chat_id, message_id, kind, session_id, visible_messages, created_at)
             SELECT
                    (r->>'id')::uuid, (r->>'chat_id')::uuid, (r->>'message_id')::uuid,
                    r->>'kind', r->>'session_id', (r->>'visible_messages')::json,
                    (r->>'created_at')::timestamptz
             FROM json_array_elements($1::json) AS r"
        }
        Table::Invites => {
            "INSERT INTO invites (id, token_hash, created_by, created_at, expires_at, used_at, used_by)
             SELECT
                    (r->>'id')::uuid, r->>'token_hash', (r->>'created_by')::uuid,
                    (r->>'created_at')::timestamptz, (r->>'expires_at')::timestamptz,
                    (r->>'used_at')::timestamptz, (r->>'used_by')::uuid
             FROM json_array_elements($1::json) AS r"
        }
        Table::AuditEvents => {
            "INSERT INTO audit_events (id, created_at, kind, actor_id, target_id, email, address, detail)
             SELECT
                    (r->>'id')::uuid, (r->>'created_at')::timestamptz, r->>'kind',
                    (r->>'actor_id')::uuid, (r->>'target_id')::uuid, r->>'email',
                    r->>'address', (r->>'detail')::json
             FROM json_array_elements($1::json) AS r"
        }
        Table::ServerSettings => {
            "INSERT INTO server_settings (name, value, updated_at)
             SELECT r->>'name', r->>'value', (r->>'updated_at')::timestamptz
             FROM json_array_elements($1::json) AS r"
        }
        Table::Secrets => {
            "INSERT INTO secrets (id, user_id, chat_id, name, key_id, sealed, created_at, updated_at)
             SELECT
                    (r->>'id')::uuid, (r->>'user_id')::uuid, (r->>'chat_id')::uuid, r->>'name',
                    r->>'key_id', r->>'sealed', (r->>'created_at')::timestamptz,
                    (r->>'updated_at')::timestamptz
             FROM json_array_elements($1::json) AS r"
        }
        Table::Tasks => {
            "INSERT INTO tasks (id, user_id, name, prompt, schedule, time_zone, model, permission_mode, permission_timeout_secs, target_chat_id, enabled, missed_runs, next_run_at, created_at, updated_at)
             SELECT
                    (r->>'id')::uuid, (r->>'user_id')::uuid, r->>'name', r->>'prompt',
                    r->>'schedule', r->>'time_zone', r->>'model', r->>'permission_mode',
                    (r->>'permission_timeout_secs')::bigint, (r->>'target_chat_id')::uuid,
                    (r->>'enabled')::bigint, r->>'missed_runs',
                    (r->>'next_run_at')::timestamptz, (r->>'created_at')::timestamptz,
                    (r->>'updated_at')::timestamptz
             FROM json_array_elements($1::json) AS r"
        }
        Table::TaskRuns => {
            "INSERT INTO task_runs (id, task_id, due_at, trigger, status, claimed_at, claimed_by, started_at, ended_at, chat_id, message_id, error, seen_at)
             SELECT
                    (r->>'id')::uuid, (r->>'task_id')::uuid, (r->>'due_at')::timestamptz,
                    r->>'trigger', r->>'status', (r->>'claimed_at')::timestamptz,
                    r->>'claimed_by', (r->>'started_at')::timestamptz,
                    (r->>'ended_at')::timestamptz, (r->>'chat_id')::uuid,
                    (r->>'message_id')::uuid, r->>'error', (r->>'seen_at')::timestamptz
             FROM json_array_elements($1::json) AS r"
        }
        Table::Extensions => {
            "INSERT INTO extensions (id, user_id, chat_id, kind, name, body, created_at, updated_at)
             SELECT
                    (r->>'id')::uuid, (r->>'user_id')::uuid, (r->>'chat_id')::uuid, r->>'kind',
                    r->>'name', r->>'body', (r->>'created_at')::timestamptz,
                    (r->>'updated_at')::timestamptz
             FROM json_array_elements($1::json) AS r"
        }
        Table::ChatRepositories => {
            "INSERT INTO chat_repositories (chat_id, url, branch, secret, directory, created_at)
             SELECT
                    (r->>'chat_id')::uuid, r->>'url', r->>'branch', r->>'secret',
                    r->>'directory', (r->>'created_at')::timestamptz
             FROM json_array_elements($1::json) AS r"
        }
    }
}

/// Rows copied per statement: large enough to keep round trips few, small enough that a
/// batch of big events stays a few megabytes.
const COPY_BATCH: i64 = 500;

#[async_trait]
impl DatabaseRepository for Postgres {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn info(&self) -> Result<DatabaseInfo> {
        let version: String =
            sqlx::query_scalar("SHOW server_version").fetch_one(&self.pool).await?;
        Ok(DatabaseInfo {
            backend: Backend::Postgres,
            version: format!("PostgreSQL {version}"),
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
        _table: Table,
        _cursor: i64,
        _limit: i64,
    ) -> Result<(Vec<String>, i64)> {
        Err(StoreError::Refused(
            "copying an installation out of PostgreSQL is not supported: the source must be SQLite"
                .into(),
        ))
    }

    async fn snapshot_into(&self, _path: &std::path::Path) -> Result<()> {
        Err(StoreError::Refused(
            "a snapshot of a PostgreSQL database into SQLite is not supported yet: back the \
             database up with pg_dump, and the files with `agentbox backup --files-only`"
                .into(),
        ))
    }

    async fn import_from(
        &self,
        source: &dyn Repository,
        progress: &(dyn Fn(Table, i64, i64) + Send + Sync),
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        // One transaction: a copy that fails half-way leaves the target as empty as it was.
        let mut found = Vec::new();
        for table in Table::ALL {
            let rows: i64 = sqlx::query_scalar(count_query(table)).fetch_one(&mut *tx).await?;
            if rows > 0 {
                found.push(format!("{rows} rows in {}", table.name()));
            }
        }
        if !found.is_empty() {
            return Err(StoreError::Refused(format!(
                "the target database is not empty ({}): copy into a new, empty database",
                found.join(", ")
            )));
        }
        for table in Table::ALL {
            let total = source.count_rows(table).await?;
            let (mut cursor, mut copied) = (0, 0);
            progress(table, 0, total);
            loop {
                let (rows, next) = source.export_rows(table, cursor, COPY_BATCH).await?;
                if rows.is_empty() {
                    break;
                }
                let batch = format!("[{}]", rows.join(","));
                sqlx::query(import_query(table)).bind(batch).execute(&mut *tx).await?;
                copied += i64::try_from(rows.len()).unwrap_or(i64::MAX);
                cursor = next;
                progress(table, copied, total);
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
