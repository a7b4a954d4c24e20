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

mod config;
mod runner;
mod sink;

pub use config::{ModelAccess, RunnerConfig};
pub use runner::{RunError, TurnRequest, TurnRunner};
