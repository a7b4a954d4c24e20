//! Where the agent runs: the [`Sandbox`] trait and its providers.
//!
//! This is the only crate that starts processes (the workspace's `clippy.toml` forbids it
//! elsewhere), so every command the agent runs goes through a sandbox. Providers:
//! - [`host::HostProvider`] (`host`): a directory per sandbox on the host and nothing else. It
//!   isolates nothing and says so everywhere it is reported.

pub mod host;
mod process;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

pub use process::{ExitFuture, ExitStatus, ProcessKiller, SandboxProcess, StopTarget};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("invalid sandbox id {0:?}: only ASCII letters, digits and '-' are allowed")]
    InvalidId(String),
    #[error("sandbox {0} does not exist")]
    NotFound(String),
    #[error("could not start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("sandbox I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = SandboxError> = std::result::Result<T, E>;

/// A command to run inside a sandbox. Paths are as the sandbox sees them.
#[derive(Clone, Debug, Default)]
pub struct ExecRequest {
    pub program: String,
    pub args: Vec<String>,
    /// Added to the sandbox's own minimal environment; nothing of the server's environment
    /// is passed on.
    pub env: Vec<(String, String)>,
    /// Working directory; the sandbox's home when `None`.
    pub cwd: Option<String>,
}

/// One sandbox: a home directory and a place to run processes.
#[async_trait]
pub trait Sandbox: Send + Sync {
    fn id(&self) -> &str;

    /// The home and default working directory of the agent, as the sandbox sees it.
    fn home(&self) -> &str;

    /// Where a tool the provider makes available (such as `claude`) can be run from inside
    /// the sandbox.
    fn tool_path(&self, name: &str) -> Option<String>;

    /// Start a process with piped stdin, stdout and stderr.
    async fn exec(&self, request: ExecRequest) -> Result<SandboxProcess>;
}

/// What a provider reports about itself for `/health`.
#[derive(Clone, Debug)]
pub struct ProviderHealth {
    pub ok: bool,
    pub detail: String,
}

/// Creates, reconnects to and deletes sandboxes of one kind.
#[async_trait]
pub trait SandboxProvider: Send + Sync {
    /// The provider's name in configuration and reports (`host`, `local`, `e2b`).
    fn name(&self) -> &'static str;

    /// Whether the agent is confined at all. `false` only for `host`.
    fn isolates(&self) -> bool;

    /// The sandbox with this id, created if it does not exist yet.
    async fn ensure(&self, id: &str) -> Result<Arc<dyn Sandbox>>;

    /// Remove the sandbox and everything in it. Removing a missing sandbox is not an error.
    async fn delete(&self, id: &str) -> Result<()>;

    async fn health(&self) -> ProviderHealth;
}

/// Host programs a provider makes runnable inside its sandboxes, by name.
pub type Tools = BTreeMap<String, PathBuf>;

/// Sandbox ids become directory names: refuse anything that could climb out of the root.
pub(crate) fn check_id(id: &str) -> Result<()> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if valid { Ok(()) } else { Err(SandboxError::InvalidId(id.to_owned())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_name_other_paths() {
        assert!(check_id("0b7e2c1a-1111-4a4a-9b9b-123456789abc").is_ok());
        for bad in ["", "..", "a/b", "../x", "a b", &"x".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad:?} accepted");
        }
    }
}
