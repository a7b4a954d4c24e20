//! What every handler can reach.

use std::sync::Arc;

use agentbox_bus::EventBus;
use agentbox_runs::TurnRunner;
use agentbox_store::Store;
use tokio_util::sync::CancellationToken;

use crate::accounts::Accounts;
use crate::auth::AuthKeys;
use crate::health::ServerInfo;

/// Input size limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Any request body; larger ones get 413 before they are parsed.
    pub max_body_bytes: usize,
    /// A prompt's length in bytes.
    pub max_prompt_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_body_bytes: 1024 * 1024, max_prompt_bytes: 256 * 1024 }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub bus: Arc<EventBus>,
    pub runner: Arc<TurnRunner>,
    pub auth: Arc<AuthKeys>,
    /// Registration mode and sign-in rate limits.
    pub accounts: Arc<Accounts>,
    pub limits: Limits,
    /// Facts about the installation gathered once at start-up (CLI version, model access).
    pub info: Arc<ServerInfo>,
    /// Cancelled when the server shuts down, so long-lived responses (SSE) end.
    pub shutdown: CancellationToken,
    /// Cancelled when a shutdown begins (the first SIGTERM): new turns are refused, SSE
    /// streams are told to reconnect elsewhere, `/readyz` says 503.
    pub draining: CancellationToken,
    /// The `/metrics` recorder and its optional token.
    pub metrics: crate::metrics::MetricsAccess,
    /// Open terminals (shells on PTYs in sandboxes).
    pub terminals: Arc<crate::terminal::TerminalRegistry>,
    /// Scheduled tasks: their clock, "run now" and their next due times.
    pub scheduler: Arc<agentbox_runs::schedule::Scheduler>,
    /// Port previews: where they are served and their tokens' key.
    pub previews: Arc<crate::preview::Previews>,
}
