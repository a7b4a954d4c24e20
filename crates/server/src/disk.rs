//! Workspace disk limits per user (`--max-workspace-bytes-per-chat`,
//! `--max-workspace-bytes-per-user`, or what an administrator set for the user), checked
//! before a turn starts and when a file is uploaded through the files API: over one, `429
//! limit_reached` naming the limit. Sizes are the bytes of the regular files, measured with
//! the workspace's bounded walker (symlinks, FIFOs and devices count nothing); the walk is
//! per check, nothing is cached.
//!
//! Not covered: what the agent's own commands write during a turn (the sandbox's disk quota
//! is what bounds that). A prompt the runner starts from the queue is checked through
//! `admission.rs`.

use agentbox_protocol::api::LimitValues;
use agentbox_sandbox::{SandboxProvider, Workspace};
use agentbox_store::Store;
use axum::http::StatusCode;
use uuid::Uuid;

use crate::error::ApiError;

/// The bytes of the regular files in `workspace`.
pub async fn used(workspace: Workspace) -> Result<u64, ApiError> {
    agentbox_sandbox::blocking(move || {
        let mut total = 0u64;
        workspace.walk("", |entry| {
            total = total.saturating_add(entry.size);
            Ok(())
        })?;
        Ok(total)
    })
    .await
    .map_err(ApiError::from)
}

fn over(what: &str, max: u64, used: u64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "limit_reached",
        format!(
            "Limit reached: {what} ({max} bytes; {used} bytes would be used). It frees up when files are deleted"
        ),
    )
}

/// `limit_reached` if `chat_id`'s workspace, after `adding` bytes more (and `replacing`
/// bytes fewer), would pass a disk limit of the user; with nothing added, if it is already
/// at one.
#[allow(clippy::too_many_arguments)]
pub async fn check(
    store: &Store,
    provider: &dyn SandboxProvider,
    limits: &LimitValues,
    user_id: Uuid,
    chat_id: Uuid,
    adding: u64,
    replacing: u64,
) -> Result<(), ApiError> {
    if limits.workspace_bytes_per_chat.is_none() && limits.workspace_bytes_total.is_none() {
        return Ok(());
    }
    let this = used(provider.workspace(&chat_id.to_string()).await?).await?;
    let after = |used: u64| used.saturating_sub(replacing).saturating_add(adding);
    let refused = |max: u64, used: u64| if adding == 0 { used >= max } else { after(used) > max };
    if let Some(max) = limits.workspace_bytes_per_chat
        && refused(max, this)
    {
        return Err(over("workspace disk per chat", max, after(this)));
    }
    if let Some(max) = limits.workspace_bytes_total {
        let mut total = this;
        for chat in store.list_chats(user_id).await? {
            if chat.id != chat_id {
                let workspace = provider.workspace(&chat.id.to_string()).await?;
                total = total.saturating_add(used(workspace).await?);
            }
        }
        if refused(max, total) {
            return Err(over("workspace disk in total", max, after(total)));
        }
    }
    Ok(())
}
