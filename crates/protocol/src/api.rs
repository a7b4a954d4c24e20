//! Request and response bodies of the HTTP API, contract v1 (DESIGN §4).
//!
//! Request bodies reject unknown fields: a misspelt option must fail loudly rather than be
//! ignored and leave the user wondering why it had no effect.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::event::{ChatEvent, MessageStatus, Usage};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub username: Option<String>,
    /// The invite token, when the server's registration is by invite.
    #[serde(default)]
    pub invite: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Sign out: with the session's refresh token, that sign-in's tokens are revoked; without
/// (or with no body at all), every refresh token of the user.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    #[serde(default)]
    pub refresh_token: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `"bearer"`.
    pub token_type: String,
    /// Lifetime of the access token, in seconds.
    pub expires_in: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub username: Option<String>,
    pub created_at: DateTime<Utc>,
    /// Administrators manage users, invites and registration.
    pub is_admin: bool,
}

/// How tool calls are approved in a chat.
///
/// These are agentbox's modes; [`PermissionMode::cli_mode`] gives the CLI's own mode each one
/// runs the CLI in (agentbox answers the CLI's permission requests itself in `ask` and `auto`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PermissionMode {
    /// The agent only reads and plans; the plan needs the user's approval.
    #[serde(rename = "plan")]
    Plan,
    /// Every tool call that can change something asks the user first.
    #[serde(rename = "ask")]
    Ask,
    /// A policy lets safe calls run and asks for risky ones.
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// Everything is allowed.
    #[serde(rename = "bypassPermissions")]
    BypassPermissions,
}

impl PermissionMode {
    pub const ALL: [Self; 4] = [Self::Plan, Self::Ask, Self::Auto, Self::BypassPermissions];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Ask => "ask",
            Self::Auto => "auto",
            Self::BypassPermissions => "bypassPermissions",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.as_str() == s)
    }

    /// The `--permission-mode` the CLI runs with.
    pub const fn cli_mode(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Ask | Self::Auto => "default",
            Self::BypassPermissions => "bypassPermissions",
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateChatRequest {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub permission_mode: Option<PermissionMode>,
    /// Appended to the agent's system prompt in this chat, after the user's own instructions.
    #[serde(default)]
    pub custom_instructions: Option<String>,
    /// The thinking budget in tokens: `0` turns thinking off, `null` (or absent) keeps the
    /// CLI's default.
    #[serde(default)]
    pub max_thinking_tokens: Option<u32>,
    /// Start from this git repository: it is cloned into `/home/user/<name>` before the
    /// first turn, and the agent works in it.
    #[serde(default)]
    pub repository: Option<RepositoryRequest>,
}

/// A git repository to start a chat from.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RepositoryRequest {
    /// `https://host/owner/name(.git)`; `http://` only for hosts on the operator's
    /// allow-list. No credentials in the URL: the token comes from a secret.
    pub url: String,
    /// The branch to check out; the remote's default without it.
    #[serde(default)]
    pub branch: Option<String>,
    /// The name of the secret that holds the token for git; without it the user's
    /// `GITHUB_TOKEN` if they have one, else none (a public repository).
    #[serde(default)]
    pub secret: Option<String>,
}

/// What kind of change git sees in a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GitChangeKind {
    Added,
    Modified,
    Deleted,
    Renamed,
    Copied,
    TypeChanged,
    Untracked,
    Conflicted,
}

/// One changed path of a chat's repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GitChange {
    /// Relative to the repository's root.
    pub path: String,
    /// A rename's or copy's source.
    pub original_path: Option<String>,
    pub kind: GitChangeKind,
    /// The index holds a change of this path.
    pub staged: bool,
    /// The working tree holds a change the index does not.
    pub unstaged: bool,
}

/// `GET /api/v1/chats/{chat_id}/git/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GitStatus {
    pub url: String,
    /// The clone's directory in the sandbox (`/home/user/<name>`).
    pub path: String,
    /// `None` on a detached HEAD.
    pub branch: Option<String>,
    /// `None` before the first commit.
    pub commit: Option<String>,
    pub upstream: Option<String>,
    pub ahead: u32,
    pub behind: u32,
    pub changes: Vec<GitChange>,
}

/// `GET /api/v1/chats/{chat_id}/git/diff`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GitDiff {
    /// A unified diff (`git diff`), at most 2 MiB.
    pub diff: String,
    /// The diff was longer and was cut.
    pub truncated: bool,
}

/// `POST /api/v1/chats/{chat_id}/git/commit`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GitCommitRequest {
    pub message: String,
    /// Commit these paths only (relative to the repository); without it, every change.
    #[serde(default)]
    pub paths: Option<Vec<String>>,
}

/// `POST /api/v1/chats/{chat_id}/git/branch`: create a branch at HEAD and switch to it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GitBranchRequest {
    pub name: String,
}

/// `POST /api/v1/chats/{chat_id}/git/pull-request`: open a pull request of the current
/// branch through the GitHub API.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GitPullRequestRequest {
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    /// The branch to merge into; the remote's default branch without it.
    #[serde(default)]
    pub base: Option<String>,
}

/// A pull request GitHub opened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GitPullRequest {
    /// Its page (`html_url`).
    pub url: String,
    pub number: u64,
    pub head: String,
    pub base: String,
}

/// What a commit, branch, push or pull left: where the repository now stands and git's
/// own words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GitResult {
    pub branch: Option<String>,
    pub commit: Option<String>,
    /// What git printed, without its progress lines.
    pub output: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateChatRequest {
    #[serde(default)]
    pub title: Option<String>,
    /// Applies to the running turn at once (the CLI's `set_model`), and to later turns.
    #[serde(default)]
    pub model: Option<String>,
    /// Applies to the running turn at once (the CLI's `set_permission_mode`), and to later
    /// turns.
    #[serde(default)]
    pub permission_mode: Option<PermissionMode>,
    /// Replaces the chat's instructions; an empty string removes them. Takes effect with the
    /// next turn.
    #[serde(default)]
    pub custom_instructions: Option<String>,
    /// `0` turns thinking off, a number sets the budget, `null` goes back to the CLI's
    /// default; absent leaves it as it is. The running CLI is told at once
    /// (`set_max_thinking_tokens`), and applies it from its next turn on.
    #[serde(default, deserialize_with = "present")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u32>, nullable))]
    pub max_thinking_tokens: Option<Option<u32>>,
    /// Pin the chat to the top of the list, or unpin it. Not activity: the chat keeps its
    /// place by date.
    #[serde(default)]
    pub pinned: Option<bool>,
    /// Archive the chat (the list leaves it out unless asked), or bring it back.
    #[serde(default)]
    pub archived: Option<bool>,
}

/// For fields where `null` and absent differ: absent is `None` (through `#[serde(default)]`),
/// present is `Some`, with `null` as `Some(None)`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Whether a chat has a turn running right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChatStatus {
    Idle,
    Running,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Chat {
    pub id: Uuid,
    pub title: String,
    pub model: String,
    pub permission_mode: PermissionMode,
    pub status: ChatStatus,
    /// Permission requests, questions and plans waiting for the user's answer (only a
    /// running turn has any).
    pub pending_requests: u32,
    /// The CLI session the next turn resumes, once there has been a turn.
    pub session_id: Option<String>,
    /// The `seq` of the chat's latest event; pass it as `Last-Event-ID` to stream only what
    /// comes after.
    pub last_event_id: i64,
    /// The sandbox provider the chat's turns run in (`host` isolates nothing).
    pub sandbox_provider: String,
    /// `running`, `paused` or `stopped` (a stopped sandbox starts on its next use).
    pub sandbox_status: String,
    /// The chat's own instructions for the agent, if any.
    pub custom_instructions: Option<String>,
    /// The thinking budget: `0` is off, `null` the CLI's default.
    pub max_thinking_tokens: Option<u32>,
    pub pinned: bool,
    pub archived: bool,
    /// In the chat list: the start of the latest prompt or reply, on one line; `null` in
    /// other answers and for a chat without one.
    pub preview: Option<String>,
    /// The latest run of a scheduled task in this chat that ended since its owner last
    /// opened the chat (`POST /api/v1/chats/{chat_id}/seen` marks it seen), else `null`.
    pub unseen_task_run: Option<crate::task::UnseenTaskRun>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What the user's turns cost, beside each message's own `total_cost_usd`: the whole chat
/// (rewound turns too: they were paid for), and every chat of the user since `since`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatCosts {
    pub chat_total_usd: f64,
    pub user_total_usd: f64,
    /// The start of the user's total: the `since` asked for, else today's start in UTC.
    pub since: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PostMessageRequest {
    pub prompt: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub permission_mode: Option<PermissionMode>,
    /// Not supported yet: a non-empty list is refused with 422 rather than silently dropped.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub attachments: Vec<Value>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostMessageResponse {
    /// The assistant message the turn fills; its `message_completed` event ends the turn.
    pub message_id: Uuid,
    pub chat_id: Uuid,
    /// The user message holding the prompt.
    pub user_message_id: Uuid,
}

/// A prompt waiting for the chat's running turn to end. Queued prompts run one after the
/// other, in order, each as a turn of its own, once a turn completes or fails; an interrupted
/// turn (or a server restart) pauses the queue until one is sent with `send`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueuedMessage {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub prompt: String,
    pub model: Option<String>,
    pub permission_mode: Option<PermissionMode>,
    /// Set when the prompt has left the queue and become a turn: its assistant message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The body of `POST /api/v1/chats/{chat_id}/queue`: the same fields as a message.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QueueMessageRequest {
    pub prompt: String,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub permission_mode: Option<PermissionMode>,
}

/// The body of `PATCH /api/v1/chats/{chat_id}/queue/{queued_id}`; absent fields stay.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateQueuedMessageRequest {
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub permission_mode: Option<PermissionMode>,
}

/// The answer to `POST /api/v1/chats/{chat_id}/queue/{queued_id}/send`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendQueuedResponse {
    pub queued_id: Uuid,
    /// The assistant message of the prompt's turn when it started at once; `null` when the
    /// running turn is being interrupted first (the turn starts as soon as it has stopped).
    pub message_id: Option<Uuid>,
}

/// The signed-in user's settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserSettings {
    /// Appended to the agent's system prompt in every chat of the user, before the chat's
    /// own instructions.
    pub custom_instructions: Option<String>,
    /// Hosts the user's sandboxes may reach through the egress proxy besides the server's
    /// allow-list (`host`, `host:port`, `*.domain`).
    #[serde(default)]
    pub sandbox_allowed_hosts: Vec<String>,
    /// The model a new chat starts with when its request names none; `null`: the server's
    /// default model.
    #[serde(default)]
    pub default_model: Option<String>,
    /// The permission mode a new chat starts with when its request names none; `null`:
    /// `auto`.
    #[serde(default)]
    pub default_permission_mode: Option<PermissionMode>,
}

/// The body of `PATCH /api/v1/settings`; absent fields stay, an empty string clears.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateUserSettingsRequest {
    #[serde(default)]
    pub custom_instructions: Option<String>,
    /// Replaces the list; `[]` clears it.
    #[serde(default)]
    pub sandbox_allowed_hosts: Option<Vec<String>>,
    /// The model new chats start with; an empty string goes back to the server's default.
    #[serde(default)]
    pub default_model: Option<String>,
    /// The permission mode new chats start with.
    #[serde(default)]
    pub default_permission_mode: Option<PermissionMode>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "assistant" => Some(Self::Assistant),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub id: Uuid,
    pub chat_id: Uuid,
    pub role: Role,
    pub status: MessageStatus,
    /// The message's chat events in order, in the same shape as on the stream.
    pub content: Vec<ChatEvent>,
    pub model: Option<String>,
    pub permission_mode: Option<PermissionMode>,
    pub session_id: Option<String>,
    pub total_cost_usd: Option<f64>,
    pub usage: Option<Usage>,
    /// Set once checkpoints exist (their own issue); `null` until then.
    pub checkpoint_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The body of every error response: `{"error": {"code": ..., "message": ...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// A stable, machine-readable name such as `chat_not_found` or `turn_in_progress`.
    pub code: String,
    /// A sentence for humans.
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    Healthy,
    Degraded,
}

/// One dependency's state in `/health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ComponentHealth {
    /// `ok`, `unavailable`, `not_configured` or `error`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// For the sandbox: whether the provider isolates the agent from the host at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolated: Option<bool>,
}

/// The database: the common fields (`version` is the server's or library's), which
/// backend it is, and how its connection pool is used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DatabaseHealth {
    #[serde(flatten)]
    pub component: ComponentHealth,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// Absent when the database did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolHealth>,
}

/// A connection pool's use at the moment of the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PoolHealth {
    /// Connections open now.
    pub open: u32,
    /// Open connections no request holds.
    pub idle: u32,
    /// Connections kept open (`--db-pool-size`).
    pub min: u32,
    /// The most it opens (`--db-pool-size` + `--db-max-overflow`).
    pub max: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    pub status: HealthStatus,
    pub version: String,
    pub database: DatabaseHealth,
    pub redis: ComponentHealth,
    pub sandbox: ComponentHealth,
    pub cli: ComponentHealth,
    pub model: ComponentHealth,
    /// The node that answered: its id and role.
    pub node: NodeHealth,
    /// The durable turn queue (the `turn_jobs` table every node shares). Absent when the
    /// database did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueHealth>,
    /// The other nodes registered in the database, alive or not, by id. Empty when the
    /// database did not answer.
    pub peers: Vec<PeerHealth>,
}

/// The node that answered `/health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeHealth {
    /// `--node-id` (or the generated one kept in the data directory).
    pub id: String,
    /// `all` (`serve`), `api` (`serve --no-worker`) or `worker` (`worker`).
    pub role: String,
    /// A node whose heartbeat is older than this is counted as gone (`--node-expiry-secs`).
    pub expiry_secs: u64,
}

/// The turn queue that workers claim from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueHealth {
    /// `in_process` on an all-in-one node (it runs the turns it records), `durable` on API
    /// and worker nodes.
    pub kind: String,
    /// Jobs waiting for a worker (queued turns no worker has started).
    pub depth: u64,
    /// Of those, the jobs a worker holds a lease on and is about to start.
    pub claimed: u64,
    /// How long the oldest job has waited, in milliseconds; absent when none waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_job_age_ms: Option<u64>,
}

/// Another node of the installation, as the `nodes` table knows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PeerHealth {
    pub id: String,
    /// `all`, `api` or `worker`.
    pub role: String,
    /// Where it answers, as it registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Milliseconds since its last heartbeat (0 if its clock is ahead of this node's).
    pub heartbeat_age_ms: u64,
    /// Whether its heartbeat is within the expiry: a node that is not alive has its
    /// running turns interrupted by the next sweep.
    pub alive: bool,
}

/// A checkpoint of a chat's workspace, as listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckpointInfo {
    pub id: Uuid,
    /// The turn (assistant message) it was taken after; for a `before_restore` checkpoint
    /// the latest message at that moment.
    pub message_id: Option<Uuid>,
    /// `turn`, `before_restore` (restoring it undoes a restore) or `fork` (a fork's start).
    pub kind: String,
    pub created_at: DateTime<Utc>,
    /// Paths added, modified and deleted since the checkpoint before it.
    pub files_added: u64,
    pub files_modified: u64,
    pub files_deleted: u64,
    /// Storage this checkpoint added (new contents only: the rest is shared).
    pub bytes_added: u64,
    /// Files in the workspace at that point, and their total size.
    pub files: u64,
    pub bytes: u64,
}

/// What a restore did.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RestoreResponse {
    pub checkpoint_id: Uuid,
    /// The checkpoint of the workspace as it was just before (taken then; on an API node of
    /// a cluster, the newest turn's): restoring it undoes this restore.
    pub undo_checkpoint_id: Option<Uuid>,
    /// Why there is no undo checkpoint, when the present could not be checkpointed (a
    /// workspace nested too deep or holding too many entries); the restore happened anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo_unavailable: Option<String>,
    /// Messages no longer shown (kept, and shown again by restoring a later checkpoint).
    pub hidden_message_ids: Vec<Uuid>,
    /// Messages shown again.
    pub shown_message_ids: Vec<Uuid>,
}

/// Start a new chat from a turn of this one.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    /// The assistant message whose checkpoint the fork starts from.
    pub message_id: Uuid,
    /// The new chat's title; "<title> (fork)" by default.
    #[serde(default)]
    pub title: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_modes_use_the_contract_names() {
        for mode in PermissionMode::ALL {
            let json = serde_json::to_value(mode).unwrap();
            assert_eq!(json, mode.as_str());
            assert_eq!(PermissionMode::parse(mode.as_str()), Some(mode));
        }
        assert_eq!(PermissionMode::BypassPermissions.cli_mode(), "bypassPermissions");
        assert_eq!(PermissionMode::Ask.cli_mode(), "default");
    }

    #[test]
    fn unknown_fields_are_refused() {
        let err = serde_json::from_str::<PostMessageRequest>(r#"{"prompt":"hi","modle":"x"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let ok: PostMessageRequest = serde_json::from_str(r#"{"prompt":"hi"}"#).unwrap();
        assert!(ok.attachments.is_empty());
    }

    #[test]
    fn thinking_budget_tells_null_from_absent() {
        let parse = |json: &str| {
            serde_json::from_str::<UpdateChatRequest>(json).unwrap().max_thinking_tokens
        };
        assert_eq!(parse("{}"), None);
        assert_eq!(parse(r#"{"max_thinking_tokens":null}"#), Some(None));
        assert_eq!(parse(r#"{"max_thinking_tokens":0}"#), Some(Some(0)));
        assert_eq!(parse(r#"{"max_thinking_tokens":4096}"#), Some(Some(4096)));
        assert!(
            serde_json::from_str::<UpdateChatRequest>(r#"{"max_thinking_tokens":-1}"#).is_err()
        );
    }
}

// ---------------------------------------------------------------------------------------
// Administration (`/api/v1/admin/...`, administrators only).

/// Who may create an account on this server (`--registration`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Registration {
    Open,
    Closed,
    Invite,
}

/// A user's figures over all their chats.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserUsage {
    pub chats: i64,
    /// Turns (assistant messages), whatever their outcome.
    pub turns: i64,
    /// The cost the CLI reported for those turns, in USD.
    pub cost_usd: f64,
}

/// A user as administrators see them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AdminUser {
    pub id: Uuid,
    pub email: String,
    pub username: Option<String>,
    pub created_at: DateTime<Utc>,
    pub is_admin: bool,
    /// Set while the account is disabled.
    pub disabled_at: Option<DateTime<Utc>>,
    pub usage: UserUsage,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub is_admin: bool,
}

/// Change an account: fields left out stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    /// `true` disables the account at once (its tokens stop working, its streams and
    /// terminals close, its running turns are interrupted); `false` enables it again.
    #[serde(default)]
    pub disabled: Option<bool>,
    #[serde(default)]
    pub is_admin: Option<bool>,
}

/// An invitation to register.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invite {
    pub id: Uuid,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub used_by: Option<Uuid>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateInviteRequest {
    /// How long the invite can be used, in hours (1 to 8760); the server's default
    /// (`--invite-ttl-hours`) when left out.
    #[serde(default)]
    pub expires_in_hours: Option<u32>,
}

/// A new invite with its token, shown this once (only its hash is stored).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedInvite {
    pub invite: Invite,
    pub token: String,
    /// The path of the web UI's sign-up with the invite filled in.
    pub path: String,
}

/// The server's account rules: set by its flags, and the registration mode as an
/// administrator last changed it (`PUT /api/v1/admin/settings`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountSettings {
    pub registration: Registration,
    pub invite_ttl_hours: u64,
}

/// Change the installation's account rules while it runs (stored in the database, so they
/// hold after a restart and on every node). Fields left out stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateAccountSettingsRequest {
    #[serde(default)]
    pub registration: Option<Registration>,
}

/// One limit as an administrator sets it for a user: a number (the limit), `null` (no
/// limit) or `"default"` (the server's default, set by its flag; also what a field left out
/// means).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum LimitSetting {
    #[default]
    Default,
    Unlimited,
    Value(f64),
}

impl LimitSetting {
    pub fn is_default(&self) -> bool {
        *self == Self::Default
    }
}

impl Serialize for LimitSetting {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Default => serializer.serialize_str("default"),
            Self::Unlimited => serializer.serialize_none(),
            Self::Value(value) => serializer.serialize_f64(*value),
        }
    }
}

impl<'de> Deserialize<'de> for LimitSetting {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(deserializer)? {
            Value::Null => Ok(Self::Unlimited),
            Value::String(text) if text == "default" => Ok(Self::Default),
            Value::Number(number) => number
                .as_f64()
                .filter(|value| value.is_finite() && *value >= 0.0)
                .map(Self::Value)
                .ok_or_else(|| D::Error::custom("a limit must be a number, 0 or more")),
            _ => Err(D::Error::custom(r#"a limit is a number, null (no limit) or "default""#)),
        }
    }
}

/// The limits an administrator sets for one user; it replaces what was set before. Each
/// field is a number (the limit), `null` (no limit for this user) or `"default"` / left
/// out (the server's default, from its flag). Counts are whole numbers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UserLimitsRequest {
    /// Turns running at once, over all the user's chats.
    #[serde(default, skip_serializing_if = "LimitSetting::is_default")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub running_turns: LimitSetting,
    /// Turns started per UTC day.
    #[serde(default, skip_serializing_if = "LimitSetting::is_default")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub turns_per_day: LimitSetting,
    /// USD per UTC day, from the cost the CLI reports.
    #[serde(default, skip_serializing_if = "LimitSetting::is_default")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub spend_per_day_usd: LimitSetting,
    /// Sandboxes kept running at once (checked before a turn, a terminal or a resume: the
    /// least recently used idle one is stopped, else `429 limit_reached`).
    #[serde(default, skip_serializing_if = "LimitSetting::is_default")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub running_sandboxes: LimitSetting,
    /// Bytes of one chat's workspace (checked before a turn and on upload).
    #[serde(default, skip_serializing_if = "LimitSetting::is_default")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub workspace_bytes_per_chat: LimitSetting,
    /// Bytes of all the user's workspaces together (checked before a turn and on upload).
    #[serde(default, skip_serializing_if = "LimitSetting::is_default")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub workspace_bytes_total: LimitSetting,
}

/// A set of limits; `null` is no limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitValues {
    pub running_turns: Option<u32>,
    pub turns_per_day: Option<u32>,
    pub spend_per_day_usd: Option<f64>,
    pub running_sandboxes: Option<u32>,
    pub workspace_bytes_per_chat: Option<u64>,
    pub workspace_bytes_total: Option<u64>,
}

/// What a user has used of the limits that count.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LimitUsage {
    pub running_turns: i64,
    /// Turns started since the start of the UTC day.
    pub turns_today: i64,
    pub spend_today_usd: f64,
}

/// A user's limits: those in force, the server's defaults, which ones an administrator set
/// for this user, and the usage they are counted against.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserLimits {
    pub user_id: Uuid,
    /// The limits in force for this user.
    pub effective: LimitValues,
    /// The server's defaults (its flags), which a limit not set for the user takes.
    pub defaults: LimitValues,
    /// The names of the limits an administrator set for this user (the others are defaults).
    pub set_by_admin: Vec<String>,
    pub usage: LimitUsage,
    /// When the daily limits start counting again (the next UTC midnight).
    pub day_resets_at: DateTime<Utc>,
}

/// Change your password.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePasswordRequest {
    pub current_password: String,
    pub new_password: String,
}

/// An administrator sets a user's password.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResetPasswordRequest {
    pub new_password: String,
}

/// One entry of the audit log of security events.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    /// `sign_in`, `sign_in_failed`, `sign_in_refused`, `rate_limited`,
    /// `refresh_token_reused`, `sign_out`, `account_created`, `user_created`, `user_updated`,
    /// `user_deleted`, `invite_created`, `invite_deleted`, `user_limits_changed`,
    /// `password_changed`, `password_change_failed`, `password_reset`, `settings_changed`,
    /// `secret_created`, `secret_changed`, `secret_deleted` (detail: the name and, for a
    /// chat's override, `chat_id`; never a value).
    pub kind: String,
    /// Who did it, or whose account a sign-in was for.
    pub actor_id: Option<Uuid>,
    /// The user or invite an administrator's action was about.
    pub target_id: Option<Uuid>,
    /// The email a sign-in named.
    pub email: Option<String>,
    /// The client's address.
    pub address: Option<String>,
    pub detail: Option<Value>,
}

/// `PUT /api/v1/secrets/{name}` (and a chat's override): the value, at most 32 KiB.
/// `Debug` leaves the value out.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PutSecretRequest {
    pub value: String,
}

impl std::fmt::Debug for PutSecretRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutSecretRequest").finish_non_exhaustive()
    }
}

/// What a secret is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    /// `ANTHROPIC_API_KEY`, `ANTHROPIC_AUTH_TOKEN`, `CLAUDE_CODE_OAUTH_TOKEN` or
    /// `ANTHROPIC_BASE_URL`: the user's turns use their own model credentials, not the
    /// server's.
    ModelCredential,
    /// An environment variable of the user's sandbox processes.
    Environment,
}

/// Whose a secret is: the user's own, or one chat's override of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SecretScope {
    User,
    Chat,
}

/// A secret as it is shown: never its value, only a mask (`sk-…abcd`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecretInfo {
    /// The environment variable's name.
    pub name: String,
    pub kind: SecretKind,
    pub scope: SecretScope,
    /// A few characters of long values at most; `…` alone for short ones.
    pub masked: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
