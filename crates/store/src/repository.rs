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
    ChatListing, ChatRecord, ChatUpdate, CheckpointKind, CheckpointRecord, NewEvent,
    PermissionRecord, QueuedUpdate, Rewind, Spending, StartedTurn, TurnResult, UserRecord,
};
use crate::search::ChatQuery;
use crate::{DatabaseInfo, Result, Table};

#[async_trait]
pub trait UserRepository: Send + Sync {
    /// Create a user; `Conflict("email_taken")` if the (lower-cased) email exists.
    async fn create_user(&self, user: &UserRecord) -> Result<()>;
    async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>>;
    async fn user(&self, id: Uuid) -> Result<Option<UserRecord>>;
    async fn count_users(&self) -> Result<i64>;
    /// Remember a refresh token by its hash (the token itself is never stored).
    async fn add_refresh_token(
        &self,
        user_id: Uuid,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// Delete a refresh token and return its user and expiry, if it existed.
    async fn take_refresh_token(&self, token_hash: &str) -> Result<Option<(Uuid, DateTime<Utc>)>>;
    async fn remove_refresh_tokens(&self, user_id: Uuid) -> Result<()>;
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
}

#[async_trait]
pub trait SettingsRepository: Send + Sync {
    /// The user's settings; defaults when the user never changed any.
    async fn user_settings(&self, user_id: Uuid) -> Result<UserSettings>;
    async fn set_user_allowed_hosts(&self, user_id: Uuid, hosts: &[String]) -> Result<()>;
    async fn set_user_instructions(&self, user_id: Uuid, instructions: Option<&str>) -> Result<()>;
    async fn set_chat_permission_mode(&self, chat_id: Uuid, mode: PermissionMode) -> Result<()>;
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
    /// Copy every table of `source` into this database, which must be empty, in one
    /// transaction; `progress` hears (table, rows copied, rows in all) after each batch.
    async fn import_from(
        &self,
        source: &dyn Repository,
        progress: &(dyn Fn(Table, i64, i64) + Send + Sync),
    ) -> Result<()>;
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
        + DatabaseRepository
        + Send
        + Sync
        + std::fmt::Debug
{
}
