//! Why the runner refused something; nothing changed.

use agentbox_protocol::permission::ResolvedBy;
use agentbox_sandbox::SandboxError;
use agentbox_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("a turn is already running in this chat")]
    Busy,
    #[error("no turn is running in this chat")]
    NotRunning,
    #[error("the chat does not exist")]
    ChatNotFound,
    #[error("the chat has no such queued message")]
    QueuedNotFound,
    #[error("bypassPermissions needs an isolating sandbox")]
    BypassNotAllowed,
    /// The node is shutting down and starts no new turns.
    #[error("agentbox is shutting down")]
    ShuttingDown,
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for RunError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict("turn_in_progress") => Self::Busy,
            StoreError::NotFound => Self::ChatNotFound,
            other => Self::Store(other),
        }
    }
}

/// Why an answer to a permission request was refused; nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum PermissionError {
    #[error("the chat has no such permission request")]
    NotFound,
    /// Answered already, timed out, withdrawn, or closed with its turn or by a restart.
    #[error("the permission request was already settled")]
    AlreadyResolved(Option<ResolvedBy>),
    #[error("the turn that asked is no longer running")]
    TurnNotRunning,
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a chat's sandbox could not be restarted.
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    /// A turn started while the running one was being stopped for the restart.
    #[error("a turn is running in this chat")]
    Busy,
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}
