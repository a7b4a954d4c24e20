//! What the store hands out, and the one mapping from a row of either backend to it.
//!
//! Each backend reads its rows through [`Fields`], which hides how a column is stored (a
//! TEXT id on SQLite, a UUID on PostgreSQL; TEXT or TIMESTAMPTZ timestamps; TEXT or JSON
//! documents), so the parsing and validation below are written once.

use agentbox_protocol::api::{Message, PermissionMode, QueuedMessage, Role};
use agentbox_protocol::event::{ChatEvent, EventPayload, MessageStatus, Usage};
use agentbox_protocol::permission::{
    PendingPermission, PermissionKind, PermissionRule, ResolvedBy, StoredPermissionRule,
};
use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

use crate::{Result, StoreError};

/// The columns of one row, read the same way whichever backend stored them.
pub(crate) trait Fields {
    fn text(&self, col: &str) -> Result<String>;
    fn opt_text(&self, col: &str) -> Result<Option<String>>;
    fn int(&self, col: &str) -> Result<i64>;
    fn opt_int(&self, col: &str) -> Result<Option<i64>>;
    fn opt_real(&self, col: &str) -> Result<Option<f64>>;
    fn id(&self, col: &str) -> Result<Uuid>;
    fn opt_id(&self, col: &str) -> Result<Option<Uuid>>;
    fn time(&self, col: &str) -> Result<DateTime<Utc>>;
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>>;
    /// A JSON document as the text it was stored as.
    fn json(&self, col: &str) -> Result<String>;
    fn opt_json(&self, col: &str) -> Result<Option<String>>;
}

/// The current time at the precision both backends keep (PostgreSQL's TIMESTAMPTZ holds
/// microseconds), so that a timestamp reads back exactly as it was written on either.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A timestamp from outside the store, cut to the precision both backends keep.
pub(crate) fn stored_time(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

pub(crate) fn parse_uuid(text: &str) -> Result<Uuid> {
    Uuid::parse_str(text).map_err(|err| StoreError::Corrupt(format!("bad id {text:?}: {err}")))
}

pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|err| StoreError::Corrupt(format!("not JSON: {err}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|err| StoreError::Corrupt(format!("{what}: {err}")))
}

fn mode(text: &str) -> Result<PermissionMode> {
    PermissionMode::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown permission mode {text:?}")))
}

// ---------------------------------------------------------------------------------------
// Users.

#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    pub id: Uuid,
    pub email: String,
    pub username: Option<String>,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    pub is_admin: bool,
    /// Set while an administrator has disabled the account.
    pub disabled_at: Option<DateTime<Utc>>,
}

/// The columns `user_from_row` reads; a macro so that queries stay `&'static str`.
macro_rules! user_columns {
    () => {
        "id, email, username, password_hash, created_at, is_admin, disabled_at"
    };
}
pub(crate) use user_columns;

pub(crate) fn user_from_row(row: &impl Fields) -> Result<UserRecord> {
    Ok(UserRecord {
        id: row.id("id")?,
        email: row.text("email")?,
        username: row.opt_text("username")?,
        password_hash: row.text("password_hash")?,
        created_at: row.time("created_at")?,
        is_admin: row.int("is_admin")? != 0,
        disabled_at: row.opt_time("disabled_at")?,
    })
}

/// What presenting a refresh token did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshRotation {
    /// It was valid: it is now used, and the new token took its place in its family.
    Rotated { user_id: Uuid },
    /// It had been used before: someone replays a stolen token, or the owner's copy was
    /// stolen. Its whole family is revoked.
    Reused { user_id: Uuid },
    /// Unknown or expired: nothing changed.
    Invalid,
}

/// A user's figures over all their chats.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserUsage {
    pub user_id: Uuid,
    pub chats: i64,
    /// Assistant messages, whatever their outcome.
    pub turns: i64,
    /// The sum of the cost the CLI reported for them, in USD.
    pub cost_usd: f64,
}

/// What a user has going and has spent, for the per-user limits.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserActivity {
    /// Turns running now.
    pub running_turns: i64,
    /// Turns started since the given time.
    pub turns: i64,
    /// The cost the CLI reported for those turns, in USD.
    pub cost_usd: f64,
}

/// An invitation to register (its token is known only to whoever it was given to).
#[derive(Clone, Debug, PartialEq)]
pub struct InviteRecord {
    pub id: Uuid,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub used_by: Option<Uuid>,
}

macro_rules! invite_columns {
    () => {
        "id, created_by, created_at, expires_at, used_at, used_by"
    };
}
pub(crate) use invite_columns;

pub(crate) fn invite_from_row(row: &impl Fields) -> Result<InviteRecord> {
    Ok(InviteRecord {
        id: row.id("id")?,
        created_by: row.opt_id("created_by")?,
        created_at: row.time("created_at")?,
        expires_at: row.time("expires_at")?,
        used_at: row.opt_time("used_at")?,
        used_by: row.opt_id("used_by")?,
    })
}

pub(crate) fn usage_from_row(row: &impl Fields) -> Result<UserUsage> {
    Ok(UserUsage {
        user_id: row.id("user_id")?,
        chats: row.int("chats")?,
        turns: row.int("turns")?,
        cost_usd: row.opt_real("cost_usd")?.unwrap_or(0.0),
    })
}

// ---------------------------------------------------------------------------------------
// Chats.

#[derive(Clone, Debug, PartialEq)]
pub struct ChatRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub title: String,
    pub model: String,
    pub permission_mode: PermissionMode,
    pub session_id: Option<String>,
    pub sandbox_provider: String,
    pub last_seq: i64,
    pub custom_instructions: Option<String>,
    /// `None`: the CLI's default; `Some(0)`: thinking off.
    pub max_thinking_tokens: Option<u32>,
    pub title_source: TitleSource,
    pub pinned: bool,
    pub archived: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Who gave a chat its title: a generated title may replace only the default one, and a
/// title the user chose is never replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TitleSource {
    Default,
    Generated,
    User,
}

impl TitleSource {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Generated => "generated",
            Self::User => "user",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "default" => Self::Default,
            "generated" => Self::Generated,
            "user" => Self::User,
            other => return Err(StoreError::Corrupt(format!("unknown title source {other:?}"))),
        })
    }
}

/// The title a chat has until its first turn names it.
pub const DEFAULT_CHAT_TITLE: &str = "New chat";

#[derive(Clone, Debug)]
pub struct NewChat {
    pub user_id: Uuid,
    pub title: String,
    pub model: String,
    pub permission_mode: PermissionMode,
    pub sandbox_provider: String,
    pub custom_instructions: Option<String>,
    pub max_thinking_tokens: Option<u32>,
}

impl NewChat {
    /// The record a new chat is stored as.
    pub(crate) fn into_record(self) -> ChatRecord {
        let now = now();
        // A chat created with a title of its own keeps it; only the default is replaced.
        let title_source =
            if self.title == DEFAULT_CHAT_TITLE { TitleSource::Default } else { TitleSource::User };
        ChatRecord {
            id: Uuid::now_v7(),
            user_id: self.user_id,
            title: self.title,
            model: self.model,
            permission_mode: self.permission_mode,
            session_id: None,
            sandbox_provider: self.sandbox_provider,
            last_seq: 0,
            custom_instructions: self.custom_instructions,
            max_thinking_tokens: self.max_thinking_tokens,
            title_source,
            pinned: false,
            archived: false,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Fields to change; `None` leaves a field as it is, `Some(None)` clears an optional one.
#[derive(Clone, Debug, Default)]
pub struct ChatUpdate {
    pub title: Option<String>,
    pub model: Option<String>,
    pub permission_mode: Option<PermissionMode>,
    pub custom_instructions: Option<Option<String>>,
    pub max_thinking_tokens: Option<Option<u32>>,
    pub pinned: Option<bool>,
    pub archived: Option<bool>,
}

impl ChatUpdate {
    /// Whether the change counts as activity, which moves the chat up the list: pinning or
    /// archiving a chat does not.
    pub(crate) fn touches_activity(&self) -> bool {
        self.title.is_some()
            || self.model.is_some()
            || self.permission_mode.is_some()
            || self.custom_instructions.is_some()
            || self.max_thinking_tokens.is_some()
    }
}

/// The columns `chat_from_row` reads.
macro_rules! chat_columns {
    () => {
        "id, user_id, title, model, permission_mode, session_id, sandbox_provider, last_seq, \
         custom_instructions, max_thinking_tokens, title_source, pinned_at, archived_at, \
         created_at, updated_at"
    };
}
pub(crate) use chat_columns;

pub(crate) fn chat_from_row(row: &impl Fields) -> Result<ChatRecord> {
    Ok(ChatRecord {
        id: row.id("id")?,
        user_id: row.id("user_id")?,
        title: row.text("title")?,
        model: row.text("model")?,
        permission_mode: mode(&row.text("permission_mode")?)?,
        session_id: row.opt_text("session_id")?,
        sandbox_provider: row.text("sandbox_provider")?,
        last_seq: row.int("last_seq")?,
        custom_instructions: row.opt_text("custom_instructions")?,
        max_thinking_tokens: row
            .opt_int("max_thinking_tokens")?
            .map(|n| {
                u32::try_from(n)
                    .map_err(|_| StoreError::Corrupt(format!("thinking budget {n} out of range")))
            })
            .transpose()?,
        title_source: TitleSource::parse(&row.text("title_source")?)?,
        pinned: row.opt_time("pinned_at")?.is_some(),
        archived: row.opt_time("archived_at")?.is_some(),
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

/// A chat as the chat list shows it: the chat and the start of its latest prompt or reply.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatListing {
    pub chat: ChatRecord,
    pub preview: Option<String>,
}

/// Sums of turns' costs, in US dollars (turns without a reported cost count as nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Spending {
    pub chat_usd: f64,
    pub since_usd: f64,
}

pub(crate) fn listing_from_row(row: &impl Fields) -> Result<ChatListing> {
    Ok(ChatListing { chat: chat_from_row(row)?, preview: row.opt_text("preview")? })
}

// ---------------------------------------------------------------------------------------
// Events.

/// An event to append: what happened and to which message.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub message_id: Uuid,
    pub payload: EventPayload,
    pub parent_tool_use_id: Option<String>,
}

impl NewEvent {
    pub fn new(message_id: Uuid, payload: EventPayload) -> Self {
        Self { message_id, payload, parent_tool_use_id: None }
    }

    /// The event with the timestamps it carries cut to the precision both backends keep, so
    /// that the log and the index of permission requests hold the same instant.
    pub(crate) fn normalized(mut self) -> Self {
        if let EventPayload::PermissionRequest(request) = &mut self.payload {
            request.expires_at = request.expires_at.map(stored_time);
        }
        self
    }
}

/// The columns `event_from_row` reads.
macro_rules! event_columns {
    () => {
        "seq, message_id, parent_tool_use_id, data, created_at"
    };
}
pub(crate) use event_columns;

pub(crate) fn event_from_row(row: &impl Fields) -> Result<ChatEvent> {
    Ok(ChatEvent {
        seq: row.int("seq")?,
        message_id: row.id("message_id")?,
        parent_tool_use_id: row.opt_text("parent_tool_use_id")?,
        created_at: row.time("created_at")?,
        payload: parse_payload(&row.json("data")?)?,
    })
}

pub(crate) fn parse_payload(data: &str) -> Result<EventPayload> {
    from_json(data, "stored event does not parse")
}

/// Whether a copied conversation leaves the event out: the parent's restores name the
/// parent's checkpoints, which are not the fork's history.
pub(crate) fn skipped_in_copy(payload: &EventPayload) -> bool {
    matches!(payload, EventPayload::System(system) if system.subtype == "rewind")
}

// ---------------------------------------------------------------------------------------
// Turns and messages.

/// What starting a turn created.
#[derive(Clone, Debug, PartialEq)]
pub struct StartedTurn {
    pub user_message_id: Uuid,
    /// The assistant message, `in_progress` until the turn finishes.
    pub message_id: Uuid,
    /// The `user_text` event holding the prompt.
    pub user_event: ChatEvent,
}

/// How a turn ended, as recorded on its assistant message.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnResult {
    pub status: MessageStatus,
    pub total_cost_usd: Option<f64>,
    pub usage: Option<Usage>,
    /// The CLI session to resume next; `None` keeps the chat's current one.
    pub session_id: Option<String>,
}

impl TurnResult {
    pub fn status(status: MessageStatus) -> Self {
        Self { status, total_cost_usd: None, usage: None, session_id: None }
    }

    /// Checks the result and returns its usage as stored.
    pub(crate) fn checked_usage(&self) -> Result<Option<String>> {
        if !self.status.is_final() {
            return Err(StoreError::Corrupt("a turn cannot finish in progress".into()));
        }
        self.usage.as_ref().map(to_json).transpose()
    }

    pub(crate) fn completed_event(&self, message_id: Uuid) -> NewEvent {
        NewEvent::new(
            message_id,
            EventPayload::MessageCompleted {
                status: self.status,
                total_cost_usd: self.total_cost_usd,
            },
        )
    }
}

/// The two messages of a new turn: (id, position offset, role, status).
pub(crate) fn turn_messages(
    user_message_id: Uuid,
    message_id: Uuid,
) -> [(Uuid, i64, Role, MessageStatus); 2] {
    [
        (user_message_id, 1, Role::User, MessageStatus::Completed),
        (message_id, 2, Role::Assistant, MessageStatus::InProgress),
    ]
}

pub(crate) fn user_text(message_id: Uuid, prompt: &str) -> NewEvent {
    NewEvent::new(message_id, EventPayload::UserText { text: prompt.to_owned() })
}

/// The columns `message_from_row` reads.
macro_rules! message_columns {
    () => {
        "id, role, status, model, permission_mode, session_id, total_cost_usd, usage, \
         checkpoint_id, created_at, completed_at"
    };
}
pub(crate) use message_columns;

/// A message with its content taken from `content` (its events, by message id).
pub(crate) fn message_from_row(
    row: &impl Fields,
    chat_id: Uuid,
    content: &mut std::collections::HashMap<Uuid, Vec<ChatEvent>>,
) -> Result<Message> {
    let id = row.id("id")?;
    let role = row.text("role")?;
    let status = row.text("status")?;
    Ok(Message {
        id,
        chat_id,
        role: Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role {role:?}")))?,
        status: MessageStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown status {status:?}")))?,
        content: content.remove(&id).unwrap_or_default(),
        model: row.opt_text("model")?,
        permission_mode: row
            .opt_text("permission_mode")?
            .as_deref()
            .and_then(PermissionMode::parse),
        session_id: row.opt_text("session_id")?,
        total_cost_usd: row.opt_real("total_cost_usd")?,
        usage: row.opt_json("usage")?.as_deref().map(|u| from_json(u, "usage")).transpose()?,
        checkpoint_id: row.opt_id("checkpoint_id")?.map(|id| id.to_string()),
        created_at: row.time("created_at")?,
        completed_at: row.opt_time("completed_at")?,
    })
}

// ---------------------------------------------------------------------------------------
// Permission requests and rules.

/// Where a permission request stands, for answering it.
#[derive(Clone, Debug, PartialEq)]
pub struct PermissionRecord {
    pub request_id: String,
    pub message_id: Uuid,
    pub kind: PermissionKind,
    pub tool_name: String,
    /// `pending`, `allowed` or `denied`.
    pub status: String,
    pub resolved_by: Option<ResolvedBy>,
}

impl PermissionRecord {
    pub fn is_pending(&self) -> bool {
        self.status == "pending"
    }
}

fn kind_of(text: &str) -> Result<PermissionKind> {
    PermissionKind::parse(text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown permission kind {text:?}")))
}

pub(crate) fn pending_from_row(row: &impl Fields) -> Result<PendingPermission> {
    Ok(PendingPermission {
        request_id: row.text("request_id")?,
        message_id: row.id("message_id")?,
        kind: kind_of(&row.text("kind")?)?,
        tool_name: row.text("tool_name")?,
        input: from_json(&row.json("input")?, "request input")?,
        seq: row.int("seq")?,
        created_at: row.time("created_at")?,
        expires_at: row.opt_time("expires_at")?,
    })
}

pub(crate) fn permission_from_row(row: &impl Fields) -> Result<PermissionRecord> {
    Ok(PermissionRecord {
        request_id: row.text("request_id")?,
        message_id: row.id("message_id")?,
        kind: kind_of(&row.text("kind")?)?,
        tool_name: row.text("tool_name")?,
        status: row.text("status")?,
        resolved_by: row.opt_text("resolved_by")?.as_deref().and_then(ResolvedBy::parse),
    })
}

/// The status a resolution gives its request in the index.
pub(crate) fn resolution_status(approved: bool) -> &'static str {
    if approved { "allowed" } else { "denied" }
}

pub(crate) fn rule_from_row(row: &impl Fields) -> Result<StoredPermissionRule> {
    Ok(StoredPermissionRule {
        id: row.id("id")?,
        rule: PermissionRule {
            tool_name: row.text("tool_name")?,
            rule_content: row.opt_text("rule_content")?,
        },
        created_at: row.time("created_at")?,
    })
}

// ---------------------------------------------------------------------------------------
// The queue.

/// Fields of a queued prompt to change; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct QueuedUpdate {
    pub prompt: Option<String>,
    pub model: Option<String>,
    pub permission_mode: Option<PermissionMode>,
}

macro_rules! queued_columns {
    () => {
        "id, chat_id, prompt, model, permission_mode, created_at, updated_at"
    };
}
pub(crate) use queued_columns;

pub(crate) fn queued_from_row(row: &impl Fields) -> Result<QueuedMessage> {
    Ok(QueuedMessage {
        id: row.id("id")?,
        chat_id: row.id("chat_id")?,
        prompt: row.text("prompt")?,
        model: row.opt_text("model")?,
        permission_mode: row.opt_text("permission_mode")?.as_deref().map(mode).transpose()?,
        message_id: None,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

// ---------------------------------------------------------------------------------------
// Settings.

pub(crate) fn allowed_hosts_json(hosts: &[String]) -> Result<Option<String>> {
    (!hosts.is_empty()).then(|| to_json(hosts)).transpose()
}

/// The limits an administrator set for a user: a JSON object of limit names to values,
/// which the server gives meaning to; empty is stored as NULL.
pub type LimitOverrides = serde_json::Map<String, serde_json::Value>;

pub(crate) fn limits_json(limits: &LimitOverrides) -> Result<Option<String>> {
    (!limits.is_empty()).then(|| to_json(limits)).transpose()
}

pub(crate) fn limits_from_json(text: Option<&str>) -> Result<LimitOverrides> {
    text.map(|text| from_json(text, "user limits")).transpose().map(Option::unwrap_or_default)
}

pub(crate) fn settings_from_row(row: &impl Fields) -> Result<agentbox_protocol::api::UserSettings> {
    Ok(agentbox_protocol::api::UserSettings {
        custom_instructions: row.opt_text("custom_instructions")?,
        sandbox_allowed_hosts: row
            .opt_json("sandbox_allowed_hosts")?
            .as_deref()
            .map(|hosts| from_json(hosts, "allowed hosts"))
            .transpose()?
            .unwrap_or_default(),
        default_model: row.opt_text("default_model")?,
        default_permission_mode: row
            .opt_text("default_permission_mode")?
            .as_deref()
            .map(mode)
            .transpose()?,
    })
}

// ---------------------------------------------------------------------------------------
// Checkpoints.

/// Why a checkpoint was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointKind {
    /// After a turn.
    Turn,
    /// Before a restore changed the workspace: restoring it undoes the restore.
    BeforeRestore,
    /// The starting point of a forked chat.
    Fork,
}

impl CheckpointKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Turn => "turn",
            Self::BeforeRestore => "before_restore",
            Self::Fork => "fork",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "turn" => Some(Self::Turn),
            "before_restore" => Some(Self::BeforeRestore),
            "fork" => Some(Self::Fork),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CheckpointRecord {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub message_id: Option<Uuid>,
    pub kind: CheckpointKind,
    pub session_id: Option<String>,
    pub visible_messages: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl CheckpointRecord {
    /// The message a rewind to this checkpoint hangs its `system/rewind` event on.
    pub(crate) fn anchor(&self) -> Result<Uuid> {
        self.message_id.or_else(|| self.visible_messages.last().copied()).ok_or_else(|| {
            StoreError::Corrupt("a checkpoint without any message cannot be restored".into())
        })
    }
}

/// What a rewind changed in the conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Rewind {
    pub hidden: Vec<Uuid>,
    pub shown: Vec<Uuid>,
    /// The `system/rewind` event that tells clients.
    pub event: ChatEvent,
}

macro_rules! checkpoint_columns {
    () => {
        "id, chat_id, message_id, kind, session_id, visible_messages, created_at"
    };
}
pub(crate) use checkpoint_columns;

pub(crate) fn checkpoint_from_row(row: &impl Fields) -> Result<CheckpointRecord> {
    let kind = row.text("kind")?;
    Ok(CheckpointRecord {
        id: row.id("id")?,
        chat_id: row.id("chat_id")?,
        message_id: row.opt_id("message_id")?,
        kind: CheckpointKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("checkpoint kind {kind:?}")))?,
        session_id: row.opt_text("session_id")?,
        visible_messages: from_json(&row.json("visible_messages")?, "visible messages")?,
        created_at: row.time("created_at")?,
    })
}

/// The `system/rewind` event of a rewind to `to`.
pub(crate) fn rewind_event(
    to: &CheckpointRecord,
    hidden: &[Uuid],
    shown: &[Uuid],
) -> Result<NewEvent> {
    let ids = |list: &[Uuid]| {
        serde_json::Value::from(list.iter().map(ToString::to_string).collect::<Vec<_>>())
    };
    Ok(NewEvent::new(
        to.anchor()?,
        EventPayload::System(
            agentbox_protocol::event::SystemEvent::new("rewind")
                .with("checkpoint_id", to.id.to_string())
                .with("hidden_message_ids", ids(hidden))
                .with("shown_message_ids", ids(shown)),
        ),
    ))
}

/// What a node of an installation does: everything (`all`, the single-process default),
/// only the API (`api`), or only turns (`worker`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeRole {
    All,
    Api,
    Worker,
}

impl NodeRole {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Api => "api",
            Self::Worker => "worker",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "all" => Some(Self::All),
            "api" => Some(Self::Api),
            "worker" => Some(Self::Worker),
            _ => None,
        }
    }
}

/// A registered node and its last heartbeat.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRecord {
    pub id: String,
    pub role: NodeRole,
    pub address: Option<String>,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
}

pub(crate) fn node_from_row(row: &impl Fields) -> Result<NodeRecord> {
    let role = row.text("role")?;
    Ok(NodeRecord {
        id: row.text("id")?,
        role: NodeRole::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("node role {role:?}")))?,
        address: row.opt_text("address")?,
        started_at: row.time("started_at")?,
        heartbeat_at: row.time("heartbeat_at")?,
    })
}

/// An `in_progress` turn whose node is gone (or is the caller after a restart), so that it
/// must be closed; `node_id` is the node that ran it, `None` when none had started it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrphanedTurn {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub node_id: Option<String>,
}

pub(crate) fn orphan_from_row(row: &impl Fields) -> Result<OrphanedTurn> {
    Ok(OrphanedTurn {
        chat_id: row.id("chat_id")?,
        message_id: row.id("id")?,
        node_id: row.opt_text("node_id")?,
    })
}

/// A recorded turn waiting in the durable queue, as a worker claimed it.
#[derive(Clone, Debug, PartialEq)]
pub struct TurnJob {
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub prompt: String,
    pub model: String,
    pub permission_mode: PermissionMode,
    pub created_at: DateTime<Utc>,
    pub claimed_by: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// How many times it was claimed, this claim included.
    pub attempts: i64,
}

/// The durable turn queue at a glance (`/health`): how many jobs wait, how many of them
/// a worker holds a lease on, and when the oldest was queued.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TurnQueueSummary {
    pub jobs: u64,
    pub claimed: u64,
    pub oldest_queued_at: Option<DateTime<Utc>>,
}

pub(crate) fn turn_queue_summary_from_row(row: &impl Fields) -> Result<TurnQueueSummary> {
    let count = |col: &str| -> Result<u64> {
        let n = row.int(col)?;
        u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("{col} = {n}")))
    };
    Ok(TurnQueueSummary {
        jobs: count("jobs")?,
        claimed: count("claimed")?,
        oldest_queued_at: row.opt_time("oldest")?,
    })
}

macro_rules! turn_job_columns {
    () => {
        "message_id, chat_id, prompt, model, permission_mode, created_at, claimed_by,
         lease_expires_at, attempts"
    };
}
pub(crate) use turn_job_columns;

pub(crate) fn turn_job_from_row(row: &impl Fields) -> Result<TurnJob> {
    Ok(TurnJob {
        chat_id: row.id("chat_id")?,
        message_id: row.id("message_id")?,
        prompt: row.text("prompt")?,
        model: row.text("model")?,
        permission_mode: mode(&row.text("permission_mode")?)?,
        created_at: row.time("created_at")?,
        claimed_by: row.opt_text("claimed_by")?,
        lease_expires_at: row.opt_time("lease_expires_at")?,
        attempts: row.int("attempts")?,
    })
}

/// A control on its way to the node running a turn; `command` is the runner's JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredControl {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub message_id: Uuid,
    pub command: String,
}

pub(crate) fn control_from_row(row: &impl Fields) -> Result<StoredControl> {
    Ok(StoredControl {
        id: row.id("id")?,
        chat_id: row.id("chat_id")?,
        message_id: row.id("message_id")?,
        command: row.json("command")?,
    })
}

// ---------------------------------------------------------------------------------------
// The audit log.

/// One security event.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRecord {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    /// A stable snake_case name: `sign_in`, `sign_in_failed`, `rate_limited`, ...
    pub kind: String,
    pub actor_id: Option<Uuid>,
    pub target_id: Option<Uuid>,
    pub email: Option<String>,
    pub address: Option<String>,
    /// A JSON object, as text.
    pub detail: Option<String>,
}

/// Which audit events to read: all the given conditions hold; newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditFilter {
    pub kind: Option<String>,
    /// Events whose actor or target is this user.
    pub user_id: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    /// Events strictly older than this (the next page: the oldest `created_at` seen).
    pub before: Option<DateTime<Utc>>,
    pub limit: i64,
}

macro_rules! audit_columns {
    () => {
        "id, created_at, kind, actor_id, target_id, email, address, detail"
    };
}
pub(crate) use audit_columns;

pub(crate) fn audit_from_row(row: &impl Fields) -> Result<AuditRecord> {
    Ok(AuditRecord {
        id: row.id("id")?,
        created_at: row.time("created_at")?,
        kind: row.text("kind")?,
        actor_id: row.opt_id("actor_id")?,
        target_id: row.opt_id("target_id")?,
        email: row.opt_text("email")?,
        address: row.opt_text("address")?,
        detail: row.opt_json("detail")?,
    })
}

// ---------------------------------------------------------------------------------------
// Secrets.

/// One sealed secret: a user's own (`chat_id: None`) or a chat's override. The store keeps
/// the sealed text as it is given and never sees a value in clear. `Debug` leaves the
/// sealed text out.
#[derive(Clone, PartialEq)]
pub struct SecretRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub chat_id: Option<Uuid>,
    pub name: String,
    /// The id of the key `sealed` is sealed under.
    pub key_id: String,
    pub sealed: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl std::fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("chat_id", &self.chat_id)
            .field("name", &self.name)
            .field("key_id", &self.key_id)
            .field("updated_at", &self.updated_at)
            .finish_non_exhaustive()
    }
}

macro_rules! secret_columns {
    () => {
        "id, user_id, chat_id, name, key_id, sealed, created_at, updated_at"
    };
}
pub(crate) use secret_columns;

pub(crate) fn secret_from_row(row: &impl Fields) -> Result<SecretRecord> {
    Ok(SecretRecord {
        id: row.id("id")?,
        user_id: row.id("user_id")?,
        chat_id: row.opt_id("chat_id")?,
        name: row.text("name")?,
        key_id: row.text("key_id")?,
        sealed: row.text("sealed")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

// ---------------------------------------------------------------------------------------
// Agent extensions.

/// One extension definition: a user's own (`chat_id: None`) or a chat's override or
/// addition. `kind` is `command`, `skill`, `agent` or `mcp_server`; `body` is the
/// definition as a JSON document, validated by the caller (an MCP server's secret values are
/// never in it, only references to the user's secrets).
#[derive(Clone, Debug, PartialEq)]
pub struct ExtensionRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub chat_id: Option<Uuid>,
    pub kind: String,
    pub name: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

macro_rules! extension_columns {
    () => {
        "id, user_id, chat_id, kind, name, body, created_at, updated_at"
    };
}
pub(crate) use extension_columns;

pub(crate) fn extension_from_row(row: &impl Fields) -> Result<ExtensionRecord> {
    Ok(ExtensionRecord {
        id: row.id("id")?,
        user_id: row.id("user_id")?,
        chat_id: row.opt_id("chat_id")?,
        kind: row.text("kind")?,
        name: row.text("name")?,
        body: row.text("body")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

/// The git repository a chat was started from: cloned into `directory` under the
/// sandbox's home before its first turn. `secret` names the owner's secret that
/// authenticates git (never a value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatRepositoryRecord {
    pub chat_id: Uuid,
    pub url: String,
    pub branch: Option<String>,
    pub secret: Option<String>,
    pub directory: String,
    pub created_at: DateTime<Utc>,
}

macro_rules! chat_repository_columns {
    () => {
        "chat_id, url, branch, secret, directory, created_at"
    };
}
pub(crate) use chat_repository_columns;

pub(crate) fn chat_repository_from_row(row: &impl Fields) -> Result<ChatRepositoryRecord> {
    Ok(ChatRepositoryRecord {
        chat_id: row.id("chat_id")?,
        url: row.text("url")?,
        branch: row.opt_text("branch")?,
        secret: row.opt_text("secret")?,
        directory: row.text("directory")?,
        created_at: row.time("created_at")?,
    })
}
