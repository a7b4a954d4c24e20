//! Running agent turns: the path from an accepted prompt to a finished message.
//!
//! [`TurnRunner::submit`] records the turn (one at a time per chat, enforced by the store)
//! and hands it to a task. The task waits for a free slot, makes sure the chat's sandbox
//! exists, reuses the chat's idle CLI process or starts one that resumes the chat's CLI
//! session, and runs the turn. Every event goes to the durable log first and to the bus
//! second ([`sink::LogSink`]); the turn ends with the message finalised and a
//! `message_completed` event in one transaction. At start-up [`TurnRunner::recover`] closes
//! turns a crash left open. Runs are in-process today; a durable queue for worker nodes
//! will take over [`TurnRunner::submit`]'s hand-off.
//!
//! While a turn runs, its permission requests wait for people without blocking it
//! ([`TurnRunner::answer_permission`]), changes of model, mode and thinking reach it live
//! ([`TurnRunner::apply_live`]), and prompts sent meanwhile wait in the chat's queue
//! ([`TurnRunner::enqueue`], [`TurnRunner::send_now`]), which runs them in order afterwards.
//!
//! After every turn the chat's workspace is checkpointed; [`TurnRunner::restore`] rewinds the
//! workspace, the conversation and the CLI session to a checkpoint, and
//! [`TurnRunner::fork`] starts a new chat from one (see [`checkpoints`]).

mod active;
mod admission;
mod checkpoints;
mod config;
mod control;
mod error;
mod extensions;
mod gates;
pub mod git;
mod idle;
mod lru;
mod metrics;
mod node;
mod notices;
mod paused;
mod permissions;
mod queue;
mod rebind;
mod recovery;
mod request;
mod restore;
mod runner;
pub mod schedule;
mod secrets;
mod sink;
mod submission;
pub mod titles;
mod turn;

pub use admission::Admission;
pub use agentbox_store::NodeRole;
pub use checkpoints::{CheckpointFailure, CheckpointSettings};
pub use config::{ModelAccess, NodeSettings, PermissionSettings, RunnerConfig};
pub use control::{Control, ControlChannel, InProcessControls, StoreControls};
pub use error::{PermissionError, RestartError, RunError};
pub use git::GitSettings;
pub use permissions::{BYPASS_REFUSAL, MAX_ANSWER_MESSAGE_CHARS};
pub use queue::{DurableQueue, Handoff, InProcessQueue, RecordedTurn, TurnQueue};
pub use request::{LiveChange, SendNow, TurnRequest};
pub use restore::Restoration;
pub use runner::TurnRunner;
pub use secrets::{ChatSecrets, SecretsError};

/// A poisoned lock still holds consistent state here: every critical section is a few map
/// operations that cannot panic half-way.
pub(crate) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
