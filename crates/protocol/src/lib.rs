//! Wire types shared by every agentbox crate and client: no I/O, no runtime, only data.
//!
//! - [`cli`]: the Claude Code CLI's stream-json messages, both directions, including the
//!   control protocol.
//! - [`event`]: chat events, the one format used in the durable log, on the SSE stream and in
//!   `messages.content`.
//! - [`api`]: request and response bodies of the HTTP API (contract v1).
//! - [`permission`]: permission requests, their answers and how they were settled.
//! - [`task`]: scheduled tasks, their runs and their API bodies.
//! - [`extension`]: users' and chats' commands, skills, agents and MCP servers, and what
//!   makes one valid.

pub mod api;
pub mod cli;
pub mod event;
pub mod extension;
pub mod permission;
pub mod task;

pub use event::{ChatEvent, EventPayload, MessageStatus, TransientEvent};
