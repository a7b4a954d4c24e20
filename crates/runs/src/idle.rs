//! CLI processes kept between a chat's turns, each until its idle timeout, and at most
//! `--max-kept-cli` of them: a turn that ends with the cap reached ends the least recently
//! used kept process (its chat resumes its session in a new one, as after the timeout).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentbox_agent::AgentSession;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::lock;
use crate::lru::LruMap;

/// How a CLI process was started; a turn asking for something else gets a new one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionKey {
    pub model: String,
    /// The CLI's own mode: `ask` and `auto` share `default`, so they share a process.
    pub cli_mode: &'static str,
    pub max_thinking_tokens: Option<u32>,
    pub system_prompt: Option<String>,
    pub allow_bypass: bool,
    /// The fingerprint of the chat's secrets when the process started (see
    /// `ChatSecrets::fingerprint`), so that a changed secret starts a new process; set when
    /// the turn opens the secrets.
    pub secrets: String,
    /// The chat's extension definitions when the process started (see
    /// `ChatExtensions::fingerprint`): a changed command, skill, agent or MCP server starts
    /// a new process that resumes the session.
    pub extensions: String,
    /// The CLI's working directory: the chat's repository once it is cloned, so that the
    /// first turn after a clone starts a process there; set when the turn prepares it.
    pub cwd: Option<String>,
}

struct IdleSession {
    session: AgentSession,
    key: SessionKey,
    /// Which parking this is, so that the timer of an earlier one leaves a later one alone.
    generation: u64,
}

/// At most one idle CLI process per chat, and at most `max_kept` in all.
pub(crate) struct IdleSessions {
    sessions: Arc<Mutex<LruMap<Uuid, IdleSession>>>,
    generation: AtomicU64,
    timeout: Duration,
    grace: Duration,
    /// The runner's tasks: a server shutdown waits until stopped processes are gone.
    tasks: TaskTracker,
}

impl IdleSessions {
    pub fn new(timeout: Duration, grace: Duration, max_kept: usize, tasks: TaskTracker) -> Self {
        Self {
            sessions: Arc::new(Mutex::new(LruMap::new(max_kept))),
            generation: AtomicU64::new(0),
            timeout,
            grace,
            tasks,
        }
    }

    /// How the chat's idle CLI process was started, if there is one.
    pub fn key_of(&self, chat_id: Uuid) -> Option<SessionKey> {
        lock(&self.sessions).get(&chat_id).map(|idle| idle.key.clone())
    }

    /// The chat's idle CLI process, if it is alive and was started the same way; otherwise
    /// it is stopped.
    pub fn take(&self, chat_id: Uuid, key: &SessionKey) -> Option<AgentSession> {
        let idle = lock(&self.sessions).remove(&chat_id)?;
        if idle.key == *key && idle.session.is_alive() {
            return Some(idle.session);
        }
        self.stop(idle.session);
        None
    }

    /// Keep a CLI process for the chat's next turn when `keep` and it is alive (and idle
    /// processes are kept at all), or stop it.
    pub fn park_or_stop(&self, chat_id: Uuid, key: SessionKey, session: AgentSession, keep: bool) {
        let timeout = self.timeout;
        if !keep || !session.is_alive() || timeout.is_zero() {
            self.stop(session);
            return;
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let left = lock(&self.sessions).insert(chat_id, IdleSession { session, key, generation });
        // Stopped outside the lock. With `--max-kept-cli 0` the process itself comes back.
        for (left_chat, idle) in left {
            if left_chat != chat_id {
                tracing::info!(
                    chat_id = %left_chat,
                    "ended the least recently used kept CLI process (--max-kept-cli reached)"
                );
                crate::metrics::kept_cli_evicted();
            }
            self.stop(idle.session);
        }
        let sessions = self.sessions.clone();
        let grace = self.grace;
        // Not tracked by `tasks`: shutdown must not wait for idle timers.
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            let expired = {
                let mut sessions = lock(&sessions);
                match sessions.get(&chat_id) {
                    Some(entry) if entry.generation == generation => sessions.remove(&chat_id),
                    _ => None,
                }
            };
            if let Some(entry) = expired {
                entry.session.shutdown(grace).await;
            }
        });
    }

    /// Stop a CLI process in the background (tracked, so that a shutdown waits for it).
    pub fn stop(&self, session: AgentSession) {
        self.tasks.spawn(session.shutdown(self.grace));
    }

    /// Drop the chat's idle process (its sandbox is about to stop, or the chat goes).
    pub fn remove(&self, chat_id: Uuid) {
        let idle = lock(&self.sessions).remove(&chat_id);
        drop(idle);
    }

    /// How many CLI processes are kept.
    pub fn len(&self) -> usize {
        lock(&self.sessions).len()
    }

    pub fn clear(&self) {
        lock(&self.sessions).clear();
    }
}
