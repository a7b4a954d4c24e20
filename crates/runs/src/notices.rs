//! What a turn tells its user outside the CLI's own output: why it failed, and notices.

use agentbox_agent::AgentError;
use agentbox_protocol::event::{EventPayload, SystemEvent};
use agentbox_sandbox::{SandboxError, SandboxLimit};

/// The end of a sandbox failure's message: what a user can do about it.
const RESTART_HINT: &str = "If this keeps happening, restart the sandbox from the workspace \
                            panel (that stops running commands, servers and terminals; files \
                            are kept).";

/// Why a turn failed outside the CLI, as shown to the user.
pub(crate) struct Failure {
    pub code: &'static str,
    pub message: String,
}

impl Failure {
    pub fn from_agent(err: AgentError) -> Self {
        match err {
            AgentError::CliUnavailable => Self {
                code: "cli_unavailable",
                message: "The Claude Code CLI is not installed for this server. Run \
                          scripts/setup, or set AGENTBOX_CLAUDE_PATH to the `claude` binary."
                    .into(),
            },
            AgentError::Sandbox(err) => Self::from_sandbox(&err, None),
            AgentError::Closed => Self {
                code: "cli_exited",
                message: "The Claude Code CLI stopped before the turn could start.".into(),
            },
            AgentError::Sink(err) => Self {
                code: "storage_error",
                message: format!("Events could not be stored: {err}"),
            },
        }
    }
}

impl Failure {
    /// A sandbox that failed to start or to run the CLI. The cause is named only where it is
    /// certain: a refused fork (`EAGAIN`) is the process limit, and a sandbox the provider
    /// stopped itself (`stopped_because`) was over its disk quota.
    pub fn from_sandbox(err: &SandboxError, stopped_because: Option<String>) -> Self {
        if err.limit() == Some(SandboxLimit::Processes) {
            return Self {
                code: "sandbox_out_of_processes",
                message: "The agent could not start because the chat's sandbox is out of \
                          processes: what runs there already holds all that its limit allows. \
                          Restart the sandbox from the workspace panel (that stops running \
                          commands, servers and terminals; files are kept), then send the \
                          message again."
                    .into(),
            };
        }
        if let Some(reason) = stopped_because {
            return Self {
                code: "sandbox_out_of_disk",
                message: format!(
                    "The chat's sandbox was stopped because {reason}. Delete files in the \
                     workspace panel, then send the message again."
                ),
            };
        }
        Self {
            code: "sandbox_error",
            message: format!("The chat's sandbox failed: {err}. {RESTART_HINT}"),
        }
    }
}

/// A `system` event with a text for the user.
pub(crate) fn notice(subtype: &str, text: &str) -> EventPayload {
    EventPayload::System(SystemEvent::new(subtype).with("text", text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sandbox_failure_names_the_limit_only_when_it_is_certain() {
        let refused = SandboxError::Spawn {
            program: "/opt/agentbox/bin/claude".into(),
            source: std::io::Error::from_raw_os_error(11), // EAGAIN,
        };
        let failure = Failure::from_sandbox(&refused, None);
        assert_eq!(failure.code, "sandbox_out_of_processes");
        assert!(failure.message.contains("Restart the sandbox from the workspace panel"));

        let over_quota = SandboxError::Unavailable("the workspace uses 120 MiB".into());
        let reason = "the workspace grew to 120 MiB, over its 100 MiB disk quota".to_owned();
        let failure = Failure::from_sandbox(&over_quota, Some(reason));
        assert_eq!(failure.code, "sandbox_out_of_disk");
        assert!(failure.message.contains("over its 100 MiB disk quota"), "{}", failure.message);

        // Anything else is said as it is, with the way out.
        let other = SandboxError::Spawn {
            program: "/opt/agentbox/bin/claude".into(),
            source: std::io::Error::from_raw_os_error(2), // ENOENT,
        };
        let failure = Failure::from_sandbox(&other, None);
        assert_eq!(failure.code, "sandbox_error");
        assert!(failure.message.starts_with("The chat's sandbox failed: could not start"));
        assert!(failure.message.contains("restart the sandbox from the workspace panel"));
    }
}
