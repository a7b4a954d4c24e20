//! The limit on sandboxes one user keeps running (`--max-running-sandboxes-per-user`, or an
//! administrator's value for the user), applied before a chat's sandbox is put to use: a
//! turn, a terminal, a resume. At the limit with other chats' sandboxes, the least recently
//! used of them that is idle (no turn running or starting, no terminal open) is stopped —
//! its files stay, its next use starts it again — and the start goes on; with none idle,
//! `429 limit_reached`.

use agentbox_protocol::api::LimitValues;
use agentbox_runs::TurnRunner;
use agentbox_sandbox::SandboxStatus;
use agentbox_store::Store;
use chrono::Utc;
use uuid::Uuid;

use crate::error::ApiError;
use crate::limits::limit_reached;
use crate::terminal::TerminalRegistry;

/// Make room for `chat_id`'s sandbox among the user's running ones, or refuse.
pub async fn make_room(
    store: &Store,
    runner: &TurnRunner,
    terminals: &TerminalRegistry,
    limits: &LimitValues,
    user_id: Uuid,
    chat_id: Uuid,
) -> Result<(), ApiError> {
    let Some(max) = limits.running_sandboxes else { return Ok(()) };
    let provider = runner.sandbox_provider();
    let mut running = Vec::new();
    for chat in store.list_chats(user_id).await? {
        if chat.id == chat_id {
            continue;
        }
        let id = chat.id.to_string();
        if provider.status(&id).await == SandboxStatus::Running {
            running.push((provider.last_used(&id).await, chat.id));
        }
    }
    if running.len() < max as usize {
        return Ok(());
    }
    // Least recently used first; one the provider keeps no time for, first of all.
    running.sort();
    let mut stopped = 0;
    for (_, other) in running.iter() {
        if running.len() - stopped < max as usize {
            break;
        }
        if terminals.has_open(*other) {
            continue;
        }
        if runner.stop_idle_sandbox(*other).await.map_err(ApiError::from)? {
            stopped += 1;
        }
    }
    if running.len() - stopped < max as usize {
        return Ok(());
    }
    Err(limit_reached(
        format!(
            "Limit reached: sandboxes running ({max} at once). Stop one of your chats' sandboxes or wait for a turn to end"
        ),
        None,
        Utc::now(),
    ))
}
