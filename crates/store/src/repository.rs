//! The storage seam: every operation the product asks of its database, one trait per
//! domain, implemented once per backend (`sqlite/`, `postgres/`). [`crate::Store`] holds
//! one implementation behind `Arc<dyn Repository>` and forwards to it.
//!
//! Each method is atomic: a method that writes more than one row does it in one
//! transaction of its backend, so a crash leaves all of it or none of it.

use agentbox_protocol::api::{Message, PermissionMode, QueuedMessage, UserSettings};
use agentbox_protocol::event::ChatEvent;
use agentbox_protocol::permission::{PendingPermission, StoredPermissionRule};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::records::{
    AuditFilter, AuditRecord, ChatListing, ChatRecord, ChatRepositoryRecord, ChatUpdate,
    CheckpointKind, CheckpointRecord, ExtensionRecord, InviteRecord, NewEvent, NodeRecord,
    OrphanedTurn, PermissionRecord, QueuedUpdate, RefreshRotation, Rewind, SecretRecord, Spending,
    StartedTurn, StoredControl, TurnJob, TurnQueueSummary, TurnResult, UserActivity, UserRecord,
    UserUsage,
};
use crate::search::ChatQuery;
use crate::tasks::{NewTaskRun, TaskRecord};
use crate::{DatabaseInfo, Result, Table};
use agentbox_protocol::task::{TaskRun, UnseenTaskRun};

#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Create a user, an administrator if it is the installation's first (decided in the
    /// same statement, so two first registrations cannot both be); the record as stored.
    /// With `invite` (a token hash), the invite is used up in the same transaction:
    /// `Conflict("invalid_invite")` if it is unknown, used or expired at `now`.
    /// `Conflict("email_taken")` if the (lower-cased) email exists; a valid invite is
    /// used up by that too (so that one invite tells about one email at most).
    async fn create_user(
        &self,
        user: &UserRecord,
        invite: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<UserRecord>;
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>>;
    async fn user(&self, id: Uuid) -> Result<Option<UserRecord>>;
    async fn count_users(&self) -> Result<i64>;
    /// Every user, oldest first.
    async fn list_users(&self) -> Result<Vec<UserRecord>>;
    /// Every user's chats, turns and recorded cost (users without chats are left out).
    async fn users_usage(&self) -> Result<Vec<UserUsage>>;
    /// The user's running turns, and the turns started since `since` with their cost.
    async fn user_activity(&self, user_id: Uuid, since: DateTime<Utc>) -> Result<UserActivity>;
    /// Disable (with the time) or re-enable an account; disabling also deletes its refresh
    /// tokens. `Conflict("last_admin")` when it would leave no enabled administrator.
    async fn set_user_disabled(
        &self,
        id: Uuid,
        disabled_at: Option<DateTime<Utc>>,
    ) -> Result<Option<UserRecord>>;
    /// Make or unmake an administrator; `Conflict("last_admin")` when it would leave no
    /// enabled administrator.
    async fn set_user_admin(&self, id: Uuid, is_admin: bool) -> Result<Option<UserRecord>>;
    /// Delete the account and everything it owns; `false` if there was none.
    /// `Conflict("last_admin")` for the last enabled administrator.
    async fn delete_user(&self, id: Uuid) -> Result<bool>;
    /// Remember a refresh token by its hash (the token itself is never stored), as a
    /// member of `family_id`.
    async fn add_refresh_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        family_id: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// Present the refresh token `token_hash` at `now`, atomically: if it is valid, mark it
    /// used and add `new_hash` (expiring at `new_expires_at`) to its family; if it was used
    /// before, revoke its family. Expired tokens of the user are cleaned up on the way.
    async fn rotate_refresh_token(
        &self,
        token_hash: &str,
        new_hash: &str,
        new_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<RefreshRotation>;
    /// Revoke the family of `token_hash` if the token is `user_id`'s; `false` if it is not.
    async fn revoke_refresh_family(&self, user_id: Uuid, token_hash: &str) -> Result<bool>;
    /// Replace the user's password hash and delete all their refresh tokens, in one
    /// transaction; `false` if there is no such user.
    async fn set_password_hash(&self, user_id: Uuid, password_hash: &str) -> Result<bool>;
    async fn remove_refresh_tokens(&self, user_id: Uuid) -> Result<()>;
    /// Store an invite by its token's hash.
    async fn create_invite(&self, invite: &InviteRecord, token_hash: &str) -> Result<()>;
    /// Every invite, newest first.
    async fn list_invites(&self) -> Result<Vec<InviteRecord>>;
    /// Delete an invite; `false` if there was none.
    async fn delete_invite(&self, id: Uuid) -> Result<bool>;
}

#[async_trait]
pub trait ChatRepository: Send + Sync {
    async fn create_chat(&self, chat: &ChatRecord) -> Result<()>;
    /// The user's chats, most recently active first.
    async fn list_chats(&self, user_id: Uuid) -> Result<Vec<ChatRecord>>;
    /// The chat if it exists and belongs to `user_id`.
    async fn chat(&self, user_id: Uuid, chat_id: Uuid) -> Result<Option<ChatRecord>>;
    /// The chat whoever owns it: for the turn runner, never for a request handler.
    async fn chat_unscoped(&self, chat_id: Uuid) -> Result<Option<ChatRecord>>;
    async fn update_chat(
        &self,
        user_id: Uuid,
        chat_id: Uuid,
        update: ChatUpdate,
    ) -> Result<Option<ChatRecord>>;
    /// Delete the chat with its messages and events; `false` if there was no such chat.
    async fn delete_chat(&self, user_id: Uuid, chat_id: Uuid) -> Result<bool>;
    /// Forget the CLI session (when it can no longer be resumed).
    async fn clear_session_id(&self, chat_id: Uuid) -> Result<()>;
    /// Record the repository the chat was started from; `Conflict("repository_exists")` if
    /// the chat has one already. Deleted with the chat.
    async fn set_chat_repository(&self, repository: &ChatRepositoryRecord) -> Result<()>;
    /// The repository the chat was started from, if it was.
    async fn chat_repository(&self, chat_id: Uuid) -> Result<Option<ChatRepositoryRecord>>;
    /// The user's chats that `query` selects, most recently active first, each with the
    /// start of its latest visible prompt or reply. Hidden (rewound) messages are neither
    /// searched nor previewed.
    async fn find_chats(&self, user_id: Uuid, query: &ChatQuery) -> Result<Vec<ChatListing>>;
    /// Give the chat a generated title if it still has the default one; `false` when it
    /// does not (the user named it, or it was named before).
    async fn set_generated_title(&self, chat_id: Uuid, title: &str) -> Result<bool>;
    /// What the user's turns cost: in `chat_id` (all of its turns, rewound ones too: they
    /// were paid for) and in every chat of theirs for turns finished at or after `since`.
    async fn spending(
        &self,
        user_id: Uuid,
        chat_id: Uuid,
        since: DateTime<Utc>,
    ) -> Result<Spending>;
}

#[async_trait]
pub trait EventRepository: Send + Sync {
    /// Append one event to the chat's log with the chat's next `seq`.
    async fn append_event(&self, chat_id: Uuid, event: NewEvent) -> Result<ChatEvent>;
    /// Up to `limit` events of the chat with `seq > after`, in order.
    async fn events_after(&self, chat_id: Uuid, after: i64, limit: i64) -> Result<Vec<ChatEvent>>;
    /// The chat's latest `system` event of `subtype` (the CLI's last `init`, say).
    async fn last_system_event(&self, chat_id: Uuid, subtype: &str) -> Result<Option<ChatEvent>>;
}

#[async_trait]
pub trait TurnRepository: Send + Sync {
    /// The user message with its `user_text` event and an `in_progress` assistant message.
    /// `Conflict("turn_in_progress")` if the chat already has a turn running.
    async fn begin_turn(
        &self,
        chat_id: Uuid,
        prompt: &str,
        model: &str,
        permission_mode: PermissionMode,
    ) -> Result<StartedTurn>;
    /// Set the message's final status and figures, remember the CLI session on the chat
    /// and append `message_completed`. `Conflict("turn_not_running")` if it is not running.
    async fn finish_turn(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
        result: TurnResult,
    ) -> Result<ChatEvent>;
    /// The assistant message of the chat's running turn, if one is running.
    async fn running_turn(&self, chat_id: Uuid) -> Result<Option<Uuid>>;
    /// Every turn left `in_progress` (by a crash), as (chat, message) pairs.
    async fn unfinished_turns(&self) -> Result<Vec<(Uuid, Uuid)>>;
    /// The chat's visible messages in order, each with its events as `content`.
    async fn messages(&self, chat_id: Uuid) -> Result<Vec<Message>>;
}

#[async_trait]
pub trait PermissionRepository: Send + Sync {
    /// Append an event, keeping the index of permission requests in step when it is a
    /// `permission_request` or `permission_resolved` event.
    async fn append_permission_event(&self, chat_id: Uuid, event: NewEvent) -> Result<ChatEvent>;
    /// The chat's open permission requests, oldest first.
    async fn pending_permissions(&self, chat_id: Uuid) -> Result<Vec<PendingPermission>>;
    /// One request of the chat, open or not.
    async fn permission_request(
        &self,
        chat_id: Uuid,
        request_id: &str,
    ) -> Result<Option<PermissionRecord>>;
    /// Every open request of every chat, as (chat, message, request id).
    async fn all_pending_permissions(&self) -> Result<Vec<(Uuid, Uuid, String)>>;
    /// Insert a rule; `Conflict("rule_exists")` when the chat has it already.
    async fn insert_permission_rule(
        &self,
        chat_id: Uuid,
        rule: &StoredPermissionRule,
    ) -> Result<()>;
    /// The chat's "always allow" rules, oldest first.
    async fn permission_rules(&self, chat_id: Uuid) -> Result<Vec<StoredPermissionRule>>;
    /// Remove one rule of the chat; `false` if the chat has no such rule.
    async fn delete_permission_rule(&self, chat_id: Uuid, rule_id: Uuid) -> Result<bool>;
}

#[async_trait]
pub trait QueueRepository: Send + Sync {
    /// Put a prompt at the end of the chat's queue.
    async fn enqueue(
        &self,
        chat_id: Uuid,
        prompt: &str,
        model: Option<&str>,
        permission_mode: Option<PermissionMode>,
    ) -> Result<QueuedMessage>;
    /// The chat's queue, next first.
    async fn queue(&self, chat_id: Uuid) -> Result<Vec<QueuedMessage>>;
    async fn update_queued(
        &self,
        chat_id: Uuid,
        id: Uuid,
        update: QueuedUpdate,
    ) -> Result<Option<QueuedMessage>>;
    async fn delete_queued(&self, chat_id: Uuid, id: Uuid) -> Result<bool>;
    async fn move_queued_to_front(&self, chat_id: Uuid, id: Uuid) -> Result<bool>;
    /// Take the queued prompt `id` (the next one when `None`) out of the queue and start
    /// its turn, in one transaction.
    async fn begin_queued_turn(
        &self,
        chat_id: Uuid,
        id: Option<Uuid>,
        model: &str,
        permission_mode: PermissionMode,
    ) -> Result<Option<(QueuedMessage, StartedTurn)>>;
    /// Every chat with a queued prompt.
    async fn chats_with_queued_messages(&self) -> Result<Vec<Uuid>>;
    /// Pause (the queue waits for `send now`) or resume the chat's queue.
    async fn set_queue_paused(&self, chat_id: Uuid, paused: bool) -> Result<()>;
    async fn queue_paused(&self, chat_id: Uuid) -> Result<bool>;
    /// Pause the queue of every chat that has a queued prompt; how many.
    async fn pause_waiting_queues(&self) -> Result<u64>;
}

#[async_trait]
pub trait SettingsRepository: Send + Sync {
    /// The user's settings; defaults when the user never changed any.
    async fn user_settings(&self, user_id: Uuid) -> Result<UserSettings>;
    async fn set_user_allowed_hosts(&self, user_id: Uuid, hosts: &[String]) -> Result<()>;
    async fn set_user_instructions(&self, user_id: Uuid, instructions: Option<&str>) -> Result<()>;
    /// Replace the model and mode the user's new chats start with (`None`: the server's).
    async fn set_user_defaults(
        &self,
        user_id: Uuid,
        model: Option<&str>,
        permission_mode: Option<PermissionMode>,
    ) -> Result<()>;
    async fn set_chat_permission_mode(&self, chat_id: Uuid, mode: PermissionMode) -> Result<()>;
    /// The limits an administrator set for the user (a JSON object), if any.
    async fn user_limits(&self, user_id: Uuid) -> Result<Option<String>>;
    /// Set them (`None` is the defaults for everything).
    async fn set_user_limits(&self, user_id: Uuid, limits: Option<&str>) -> Result<()>;
    /// An installation setting changed at run time, if it was.
    async fn server_setting(&self, name: &str) -> Result<Option<String>>;
    async fn set_server_setting(&self, name: &str, value: &str) -> Result<()>;
}

#[async_trait]
pub trait CheckpointRepository: Send + Sync {
    async fn record_checkpoint(
        &self,
        chat_id: Uuid,
        id: Uuid,
        kind: CheckpointKind,
        message_id: Option<Uuid>,
        session_id: Option<&str>,
    ) -> Result<CheckpointRecord>;
    /// The chat's checkpoints, newest first.
    async fn checkpoints(&self, chat_id: Uuid) -> Result<Vec<CheckpointRecord>>;
    async fn checkpoint(&self, chat_id: Uuid, id: Uuid) -> Result<Option<CheckpointRecord>>;
    async fn forget_checkpoints(&self, chat_id: Uuid, ids: &[Uuid]) -> Result<()>;
    async fn rewind(&self, chat_id: Uuid, to: &CheckpointRecord) -> Result<Rewind>;
    async fn copy_conversation(
        &self,
        source: &ChatRecord,
        target: Uuid,
        up_to: Uuid,
        session_id: Option<&str>,
    ) -> Result<()>;
}

/// The nodes of an installation and which node runs each turn. Instants come from the
/// caller (its clock), so that expiry is explicit and testable.
#[async_trait]
pub trait NodeRepository: Send + Sync {
    /// Register a node, or register it again after a restart (a new `started_at`).
    async fn register_node(&self, node: &NodeRecord) -> Result<()>;
    /// Record a heartbeat; `false` when the node is not registered.
    async fn node_heartbeat(&self, node_id: &str, at: DateTime<Utc>) -> Result<bool>;
    async fn nodes(&self) -> Result<Vec<NodeRecord>>;
    /// Mark the running turn of `message_id` as run by `node_id`. `false` when the turn has
    /// ended or another node started it: then the caller must not run it.
    async fn start_turn_on(&self, message_id: Uuid, node_id: &str) -> Result<bool>;
    /// The node running the turn of `message_id`, while it runs.
    async fn turn_node(&self, message_id: Uuid) -> Result<Option<String>>;
    /// `in_progress` turns that no live node runs: those of nodes whose heartbeat is older
    /// than `expired_before` (or that are not registered), those `own` says are the
    /// caller's (after a restart of `node_id`), and those no node started, no job holds and
    /// that were recorded before `expired_before` (a crash between recording and starting).
    async fn orphaned_turns(
        &self,
        node_id: &str,
        own: bool,
        expired_before: DateTime<Utc>,
    ) -> Result<Vec<OrphanedTurn>>;
    /// Take an orphaned turn over from `from` (`None`: no node) for `to`, so that one node
    /// alone closes it; controls queued for the turn go. `false` when another node took it
    /// first or it has ended.
    async fn adopt_turn(&self, message_id: Uuid, from: Option<&str>, to: &str) -> Result<bool>;
    /// Bind the chat to the worker `node_id` that holds its sandbox now; the node it was
    /// bound to before (`None`: unbound, or no such chat). The durable queue then gives the
    /// chat's jobs to that worker alone while it is alive (see
    /// [`TurnJobRepository::claim_turn_job`]).
    async fn bind_chat(&self, chat_id: Uuid, node_id: &str) -> Result<Option<String>>;
    /// The worker the chat is bound to, if any.
    async fn chat_binding(&self, chat_id: Uuid) -> Result<Option<String>>;
    /// Bind the chat to no worker: the next worker to run its turn sets its workspace up
    /// from the chat's newest checkpoint (after a restore made where the sandbox is not).
    async fn unbind_chat(&self, chat_id: Uuid) -> Result<()>;
}

/// The durable turn queue: recorded turns waiting for a worker. Delivery is at least once
/// (a lease that expires lets another worker claim the job again); the turn runs at most
/// once because starting it is [`NodeRepository::start_turn_on`]'s condition, in the same
/// transaction that removes the job.
#[async_trait]
pub trait TurnJobRepository: Send + Sync {
    /// Queue the recorded turn of `message_id` (an `in_progress` message) with what its
    /// worker needs to run it.
    async fn push_turn_job(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
        prompt: &str,
        model: &str,
        permission_mode: PermissionMode,
    ) -> Result<()>;
    /// The oldest job that nobody holds (no lease, or an expired one at `now`) and that
    /// `node_id` may run, leased to it until `lease_until`. A job may go to `node_id` when
    /// its chat is unbound, bound to `node_id`, or bound to a node that is gone (not
    /// registered, or its heartbeat older than `nodes_expired_before`): a chat's sandbox
    /// is on its worker's disk, so its turns wait for that worker while it lives. Jobs
    /// whose turn has already started or ended are removed on the way and never returned.
    async fn claim_turn_job(
        &self,
        node_id: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        nodes_expired_before: DateTime<Utc>,
    ) -> Result<Option<TurnJob>>;
    /// Extend every lease `node_id` holds to `until` (its heartbeat); how many.
    async fn extend_turn_job_leases(&self, node_id: &str, until: DateTime<Utc>) -> Result<u64>;
    /// Start the claimed job's turn on `node_id`: the job goes and the message gets its
    /// node, in one transaction, if `node_id` still holds an unexpired lease at `now` and
    /// the turn has not started. `false`: the caller must not run the turn.
    async fn start_turn_job(
        &self,
        message_id: Uuid,
        node_id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Every job, oldest first (for tests).
    async fn turn_jobs(&self) -> Result<Vec<TurnJob>>;
    /// The queue's depth, claimed jobs and oldest job in one aggregate (for `/health`,
    /// which must not read every waiting prompt).
    async fn turn_queue_summary(&self) -> Result<TurnQueueSummary>;
    /// A connection that wakes up when a job is queued (PostgreSQL: `NOTIFY agentbox_jobs`
    /// when the job's transaction commits), or `None` where workers poll (SQLite).
    async fn listen_jobs(&self) -> Result<Option<Box<dyn Wake>>>;
    /// End a recorded turn that no node has started (it waits in the queue) as
    /// `interrupted`: its job goes and `message_completed` is appended, in one transaction.
    /// `None` when it has started or ended: then its node must be asked instead.
    async fn cancel_unstarted_turn(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
    ) -> Result<Option<ChatEvent>>;
}

/// Controls for the node that runs a turn, kept in a table so that none is lost while a
/// node is not listening.
#[async_trait]
pub trait ControlRepository: Send + Sync {
    /// Queue a control for the node running the turn of `message_id`; that node's id, or
    /// `None` (nothing queued) when the turn is not running on a node. PostgreSQL also
    /// notifies the node (`NOTIFY agentbox_controls`) when the transaction commits.
    async fn push_control(
        &self,
        chat_id: Uuid,
        message_id: Uuid,
        command: &str,
    ) -> Result<Option<String>>;
    /// Take (remove and return) the controls queued for `node_id`, oldest first.
    async fn take_controls(&self, node_id: &str) -> Result<Vec<StoredControl>>;
    /// A connection that wakes up when controls are queued for `node_id`, or `None` on a
    /// backend without notifications (SQLite: one process, polled).
    async fn listen_controls(&self, node_id: &str) -> Result<Option<Box<dyn Wake>>>;
}

/// Waits for the next notification of a listening connection (controls queued for a node,
/// a turn queued for the workers).
#[async_trait]
pub trait Wake: Send {
    /// Returns when notified; an error when the connection broke (the caller polls, then
    /// listens again).
    async fn notified(&mut self) -> Result<()>;
}

/// The database itself: health, and whole tables for `agentbox migrate --from --to`.
#[async_trait]
pub trait DatabaseRepository: Send + Sync {
    async fn ping(&self) -> Result<()>;
    /// The backend, its version and how its connection pool is used.
    async fn info(&self) -> Result<DatabaseInfo>;
    async fn close(&self);
    async fn count_rows(&self, table: Table) -> Result<i64>;
    /// Up to `limit` rows of `table` after `cursor` (0 at first), each as a JSON object of
    /// its columns, and the cursor to continue from.
    async fn export_rows(
        &self,
        table: Table,
        cursor: i64,
        limit: i64,
    ) -> Result<(Vec<String>, i64)>;
    /// Write a consistent copy of the whole database, as it is at one moment, into a new
    /// SQLite file at `path` (which must not exist), while others go on writing: SQLite's
    /// `VACUUM INTO`. PostgreSQL refuses (`Refused`): its tables cannot be copied into
    /// SQLite yet, and one snapshot of them needs `pg_dump`.
    async fn snapshot_into(&self, path: &std::path::Path) -> Result<()>;
    /// Copy every table of `source` into this database, which must be empty, in one
    /// transaction; `progress` hears (table, rows copied, rows in all) after each batch.
    async fn import_from(
        &self,
        source: &dyn Repository,
        progress: &(dyn Fn(Table, i64, i64) + Send + Sync),
    ) -> Result<()>;
}

#[async_trait]
pub trait AuditRepository: Send + Sync {
    async fn append_audit(&self, event: &AuditRecord) -> Result<()>;
    /// Events matching the filter, newest first, at most `filter.limit`.
    async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>>;
    /// Delete the events older than `before`; how many were deleted.
    async fn purge_audit(&self, before: DateTime<Utc>) -> Result<u64>;
}

#[async_trait]
pub trait SecretRepository: Send + Sync {
    /// Insert the secret, or replace the sealed value of the one of its scope and name
    /// (keeping that one's id and `created_at`); `true` when it is new.
    async fn put_secret(&self, secret: &SecretRecord) -> Result<bool>;
    /// One scope's secrets (the user's own when `chat_id` is `None`), by name.
    async fn secrets(&self, user_id: Uuid, chat_id: Option<Uuid>) -> Result<Vec<SecretRecord>>;
    /// Whether there was one to delete.
    async fn delete_secret(&self, user_id: Uuid, chat_id: Option<Uuid>, name: &str)
    -> Result<bool>;
    /// Every secret of the installation (for the rotation of the key).
    async fn all_secrets(&self) -> Result<Vec<SecretRecord>>;
    /// Store new sealed values (`key_id`, `sealed`) of existing rows, by id, in one
    /// transaction: all or none. How many rows changed.
    async fn reseal_secrets(&self, secrets: &[SecretRecord]) -> Result<u64>;
}

/// Agent extensions (slash commands, skills, sub-agents, MCP servers): one scope per user
/// (`chat_id: None`) and one per chat, unique by (kind, name) within a scope.
#[async_trait]
pub trait ExtensionRepository: Send + Sync {
    /// Insert the definition, or replace the body of the one of its scope, kind and name
    /// (keeping that one's id and `created_at`); `true` when it is new.
    async fn put_extension(&self, extension: &ExtensionRecord) -> Result<bool>;
    /// One scope's definitions (the user's own when `chat_id` is `None`), of one kind or
    /// (`None`) of every kind, by kind and name.
    async fn extensions(
        &self,
        user_id: Uuid,
        chat_id: Option<Uuid>,
        kind: Option<&str>,
    ) -> Result<Vec<ExtensionRecord>>;
    /// Whether there was one to delete.
    async fn delete_extension(
        &self,
        user_id: Uuid,
        chat_id: Option<Uuid>,
        kind: &str,
        name: &str,
    ) -> Result<bool>;
}

/// Scheduled tasks and their runs. A run's row is the claim of its due time: the unique key
/// (task, due time) lets one claim through, whichever node or restart tries.
#[async_trait]
pub trait TaskRepository: Send + Sync {
    async fn create_task(&self, task: &TaskRecord) -> Result<()>;
    /// The task if it exists and belongs to `user_id`.
    async fn task(&self, user_id: Uuid, task_id: Uuid) -> Result<Option<TaskRecord>>;
    /// The task whoever owns it: for the scheduler, never for a request handler.
    async fn task_unscoped(&self, task_id: Uuid) -> Result<Option<TaskRecord>>;
    /// The user's tasks, oldest first.
    async fn list_tasks(&self, user_id: Uuid) -> Result<Vec<TaskRecord>>;
    /// Replace the task's fields (not its id, owner or creation time); `false` if the user
    /// has no such task.
    async fn update_task(&self, task: &TaskRecord) -> Result<bool>;
    /// Delete the task and its runs; `false` if the user has no such task.
    async fn delete_task(&self, user_id: Uuid, task_id: Uuid) -> Result<bool>;
    /// Enabled tasks whose next run is due at `now`, the longest due first.
    async fn due_tasks(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<TaskRecord>>;
    /// Move the task's next run from `from` to `to`; `false` if it was not at `from` any
    /// more (another scheduler, or an edit, moved it).
    async fn advance_task(
        &self,
        task_id: Uuid,
        from: DateTime<Utc>,
        to: Option<DateTime<Utc>>,
    ) -> Result<bool>;
    /// Claim a due time: the run as stored, or `None` when it was claimed before.
    async fn claim_task_run(&self, run: &NewTaskRun) -> Result<Option<TaskRun>>;
    async fn task_run(&self, run_id: Uuid) -> Result<Option<TaskRun>>;
    /// A claimed run's turn started; `false` if the run was not `claimed` any more.
    async fn start_task_run(
        &self,
        run_id: Uuid,
        chat_id: Uuid,
        message_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// A claimed run could not start its turn; `false` if it was not `claimed` any more.
    async fn fail_task_run(
        &self,
        run_id: Uuid,
        chat_id: Option<Uuid>,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    /// Runs claimed before `claimed_before` whose turn never started.
    async fn stale_task_runs(&self, claimed_before: DateTime<Utc>) -> Result<Vec<TaskRun>>;
    /// Started runs whose turn is still in progress.
    async fn running_task_runs(&self) -> Result<Vec<TaskRun>>;
    /// The task's runs, the latest due time first, at most `limit`.
    async fn task_runs(&self, task_id: Uuid, limit: i64) -> Result<Vec<TaskRun>>;
    /// Delete all but the task's latest `keep` runs (never a claimed one); how many went.
    async fn prune_task_runs(&self, task_id: Uuid, keep: i64) -> Result<u64>;
    /// The user's ended runs not yet seen, in `chat_id` or (`None`) in any chat of theirs,
    /// the latest due time first.
    async fn unseen_task_runs(
        &self,
        user_id: Uuid,
        chat_id: Option<Uuid>,
    ) -> Result<Vec<UnseenTaskRun>>;
    /// Mark the ended runs of the user's tasks in `chat_id` seen at `at`; how many.
    async fn mark_task_runs_seen(
        &self,
        user_id: Uuid,
        chat_id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<u64>;
}

/// Everything a backend implements.
pub trait Repository:
    UserRepository
    + ChatRepository
    + EventRepository
    + TurnRepository
    + PermissionRepository
    + QueueRepository
    + SettingsRepository
    + CheckpointRepository
    + NodeRepository
    + TurnJobRepository
    + ControlRepository
    + AuditRepository
    + SecretRepository
    + ExtensionRepository
    + TaskRepository
    + DatabaseRepository
    + Send
    + Sync
    + std::fmt::Debug
{
}

impl<T> Repository for T where
    T: UserRepository
        + ChatRepository
        + EventRepository
        + TurnRepository
        + PermissionRepository
        + QueueRepository
        + SettingsRepository
        + CheckpointRepository
        + NodeRepository
        + TurnJobRepository
        + ControlRepository
        + AuditRepository
        + SecretRepository
        + ExtensionRepository
        + TaskRepository
        + DatabaseRepository
        + Send
        + Sync
        + std::fmt::Debug
{
}
