//! Drives the Claude Code CLI: one [`AgentSession`] per running CLI process, inside a sandbox.
//!
//! - [`install`]: finding the pinned CLI and reading its version.
//! - [`lines`]: robust stdout framing (partial lines, ANSI codes, non-JSON noise, huge lines).
//! - [`session`]: starting the CLI with the stream-json flags and talking to it.
//! - [`mapper`]: turning CLI output into chat events.
//! - [`policy`]: the `auto` mode's policy, which decides which tool calls need a person.
//! - [`turn`]: one user turn from prompt to `result`, with permission answers (which may
//!   wait for a person), live controls and interrupts.

pub mod figures;
pub mod install;
pub mod lines;
pub mod mapper;
pub mod policy;
pub mod session;
pub mod turn;

pub use install::{CliInstall, PINNED_CLI_VERSION};
pub use policy::{Assessment, AutoPolicy, rule_for, rule_matches};
pub use session::{AgentSession, SessionOptions, SessionOutput};
pub use turn::{
    AgentEvent, AllowAll, EventSink, PROCESS_LIMIT_TEXT, PermissionDecision, PermissionPolicy,
    PersonAnswer, SinkError, ToolRequest, TurnControls, TurnOptions, TurnOutcome, Verdict,
    hit_process_limit, limit_exit, run_turn,
};

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("the Claude Code CLI is not available in this sandbox")]
    CliUnavailable,
    #[error(transparent)]
    Sandbox(#[from] agentbox_sandbox::SandboxError),
    #[error("the CLI process has exited")]
    Closed,
    #[error("could not record an event: {0}")]
    Sink(#[from] SinkError),
}
