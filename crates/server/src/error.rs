//! One error type for every handler: a status, a stable code and a sentence, rendered as
//! `{"error": {"code", "message"}}`. Internal causes are logged, never sent.

use agentbox_protocol::api::{ErrorBody, ErrorDetail};
use agentbox_sandbox::SandboxError;
use agentbox_store::StoreError;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (rate limits).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    /// `429 rate_limited`, with `Retry-After: seconds`.
    pub fn rate_limited(seconds: u64, message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(seconds),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message)
        }
    }

    /// `503 shutting_down`, with `Retry-After`: this node is draining; another node (or this
    /// one, restarted) takes the request.
    pub fn shutting_down() -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "agentbox is shutting down and starts no new turns; try again in a moment.",
            )
        }
    }

    /// `503 not_ready`: a dependency the node needs did not answer.
    pub fn not_ready(what: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("not ready: {} did not answer", what.into()),
        )
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// `404` with a code of its own (something of the chat that does not exist).
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn chat_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "chat_not_found", "No such chat.")
    }

    pub fn task_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "task_not_found", "No such task.")
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// A failure that is ours, not the client's: logged with its cause, reported vaguely.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on the server.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            ErrorBody { error: ErrorDetail { code: self.code.to_owned(), message: self.message } };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// The worker that holds a chat's sandbox is gone or not answering: 503
/// `sandbox_node_unavailable`, with `Retry-After`. Once its heartbeat has expired, the
/// chat's next turn moves it to a live worker (with its last checkpoint's files).
impl From<crate::forward::ForwardError> for ApiError {
    fn from(err: crate::forward::ForwardError) -> Self {
        match err {
            crate::forward::ForwardError::NodeUnavailable { .. } => Self {
                retry_after: Some(5),
                ..Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "sandbox_node_unavailable",
                    format!(
                        "The chat's files, terminals and sandbox are unavailable: {err}. Try \
                         again later; once that worker counts as gone, the chat's next \
                         message moves it to a live worker with the files of its last \
                         checkpoint."
                    ),
                )
            },
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound => Self::new(StatusCode::NOT_FOUND, "not_found", "Not found."),
            StoreError::Conflict(code) => {
                Self::conflict(code, "The request conflicts with the current state.")
            }
            other => Self::internal(other),
        }
    }
}

/// A definition of an agent extension that is not valid: 422 with its code
/// (`invalid_extension_name`, `invalid_extension`, `extension_too_large`).
impl From<agentbox_protocol::extension::ExtensionError> for ApiError {
    fn from(err: agentbox_protocol::extension::ExtensionError) -> Self {
        Self::unprocessable(err.code, err.message)
    }
}

/// A secret that does not open is the installation's state (another `SECRET_KEY`, an
/// unfinished rotation), not the client's fault: 503 with the reason, which names the
/// secret and the keys' ids, never a value.
impl From<agentbox_runs::SecretsError> for ApiError {
    fn from(err: agentbox_runs::SecretsError) -> Self {
        match err {
            agentbox_runs::SecretsError::Store(err) => err.into(),
            sealing @ agentbox_runs::SecretsError::Sealing { .. } => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "secrets_unavailable",
                sealing.to_string(),
            ),
        }
    }
}

/// Git in a chat's sandbox: a request's URL, branch or path that breaks a rule is 422;
/// a refusal of git's is 409 (the repository's state: rejected push, conflict, no branch),
/// but a credential the user must fix is 422; a command over its time is 504.
impl From<agentbox_runs::git::GitError> for ApiError {
    fn from(err: agentbox_runs::git::GitError) -> Self {
        use agentbox_runs::git::GitError;
        match err {
            GitError::Invalid { code, message } => Self::unprocessable(code, message),
            GitError::Refused {
                code: code @ ("git_auth_failed" | "secret_not_found"),
                message,
            } => Self::unprocessable(code, message),
            GitError::Refused { code, message } => Self::conflict(code, message),
            timeout @ GitError::Timeout(_) => {
                Self::new(StatusCode::GATEWAY_TIMEOUT, "git_timeout", timeout.to_string())
            }
            GitError::Sandbox(err) => err.into(),
        }
    }
}

/// A schedule that cannot be used (bad cron, unknown zone, a time that is not HH:MM).
impl From<agentbox_runs::schedule::ScheduleError> for ApiError {
    fn from(err: agentbox_runs::schedule::ScheduleError) -> Self {
        Self::unprocessable("invalid_schedule", err.0)
    }
}

impl From<agentbox_runs::schedule::ScheduleRunError> for ApiError {
    fn from(err: agentbox_runs::schedule::ScheduleRunError) -> Self {
        match err {
            agentbox_runs::schedule::ScheduleRunError::Duplicate => {
                Self::conflict("run_exists", err.to_string())
            }
            agentbox_runs::schedule::ScheduleRunError::Store(err) => err.into(),
        }
    }
}

/// The one place where a sandbox's errors get their status and code. What the client (or
/// the agent, through what it left in the workspace) caused is a 4xx; only the server's own
/// faults are 500.
impl From<SandboxError> for ApiError {
    fn from(err: SandboxError) -> Self {
        let (status, code) = match &err {
            SandboxError::PathOutside(_) => (StatusCode::BAD_REQUEST, "path_outside_workspace"),
            SandboxError::InvalidPath(reason) => {
                return Self::bad_request("invalid_path", reason.clone());
            }
            SandboxError::NotFound(_) => (StatusCode::NOT_FOUND, "file_not_found"),
            SandboxError::NotADirectory(_) => (StatusCode::BAD_REQUEST, "not_a_directory"),
            SandboxError::IsADirectory(_) => (StatusCode::BAD_REQUEST, "is_a_directory"),
            SandboxError::NotARegularFile(_) => (StatusCode::BAD_REQUEST, "not_a_regular_file"),
            SandboxError::NameTooLong(_) => (StatusCode::BAD_REQUEST, "name_too_long"),
            SandboxError::InvalidMove { .. } => (StatusCode::BAD_REQUEST, "invalid_move"),
            SandboxError::PermissionDenied(_) => (StatusCode::FORBIDDEN, "permission_denied"),
            SandboxError::AlreadyExists(_) => (StatusCode::CONFLICT, "already_exists"),
            SandboxError::Busy(_) => (StatusCode::CONFLICT, "file_busy"),
            SandboxError::Changed(_) => (StatusCode::CONFLICT, "workspace_changed"),
            SandboxError::TooLarge { size, max } => {
                return Self::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "file_too_large",
                    format!("the file has {size} bytes; at most {max} can be transferred"),
                );
            }
            SandboxError::TooDeep { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "workspace_too_deep")
            }
            SandboxError::TooManyEntries { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "too_many_entries")
            }
            SandboxError::TooManyLinks(_) => (StatusCode::UNPROCESSABLE_ENTITY, "too_many_links"),
            SandboxError::DiskFull(_) => (StatusCode::INSUFFICIENT_STORAGE, "disk_full"),
            SandboxError::Unsupported(_) => (StatusCode::NOT_IMPLEMENTED, "unsupported"),
            SandboxError::NothingListens(_) => (StatusCode::BAD_GATEWAY, "nothing_listens"),
            SandboxError::Unavailable(reason) => {
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "sandbox_unavailable",
                    reason.clone(),
                );
            }
            // A process the sandbox could not start because it is at its process limit is the
            // sandbox's state, not a fault of the server.
            SandboxError::Spawn { .. } if err.limit().is_some() => {
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "sandbox_out_of_processes",
                    "The sandbox is at its process limit, so nothing more can start in it. \
                     Restart the sandbox from the workspace panel (that stops its processes; \
                     files are kept).",
                );
            }
            SandboxError::InvalidId(_) | SandboxError::Spawn { .. } | SandboxError::Io(_) => {
                return Self::internal(err);
            }
        };
        Self::new(status, code, err.to_string())
    }
}

/// An unknown path; `spa` answers with it for everything that is not part of the web UI.
pub fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such endpoint.")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This endpoint does not accept that method.",
    )
}
