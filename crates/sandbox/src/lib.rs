//! Where the agent runs: the [`Sandbox`] trait and its providers.
//!
//! This is the only crate that starts processes (the workspace's `clippy.toml` forbids it
//! elsewhere), so every command the agent runs goes through a sandbox. Providers:
//! - [`local::LocalProvider`] (`local`, the default): a bubblewrap container per sandbox with
//!   its own user, mount, pid, ipc, uts and network namespaces, a seccomp filter, resource
//!   limits, and network access only through the allow-list [`egress`] proxy.
//! - [`host::HostProvider`] (`host`): a directory per sandbox on the host and nothing else. It
//!   isolates nothing and says so everywhere it is reported.
//!
//! Shared parts: [`spawn`] starts a process on pipes or a PTY as a session leader;
//! [`fs::Workspace`] does file operations confined to a sandbox's home.

pub mod egress;
pub mod fs;
pub mod host;
pub mod local;
mod process;
pub mod spawn;
pub mod wire;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use fs::{FileInfo, FileKind, Listing, Survey, Workspace};
pub use process::{ExitFuture, ExitStatus, ProcessKiller, SandboxProcess, StopTarget};
pub use spawn::PtySize;
pub use wire::ListeningPort;

/// A byte stream both ways: a TCP connection to a port inside a sandbox.
pub trait PortConnection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> PortConnection for T {}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("invalid sandbox id {0:?}: only ASCII letters, digits and '-' are allowed")]
    InvalidId(String),
    #[error("could not start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the sandbox provider cannot {0}")]
    Unsupported(&'static str),
    #[error("the sandbox is not available: {0}")]
    Unavailable(String),
    #[error("invalid path: {0}")]
    InvalidPath(String),
    #[error("{0} is outside the workspace")]
    PathOutside(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error("{0} is not a directory")]
    NotADirectory(String),
    #[error("{0} is a directory")]
    IsADirectory(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("the file has {size} bytes; at most {max} are allowed")]
    TooLarge { size: u64, max: u64 },
    #[error("{0} is not a regular file (it is a FIFO, a socket or a device)")]
    NotARegularFile(String),
    #[error("{0}: a name is longer than 255 bytes or the path longer than 4095")]
    NameTooLong(String),
    #[error("cannot move {from} to {to}: a directory cannot be moved into itself")]
    InvalidMove { from: String, to: String },
    #[error("no space left for {0}: the disk or the workspace's quota is full")]
    DiskFull(String),
    #[error("permission denied: {0}")]
    PermissionDenied(String),
    #[error("{0} is busy (a program that is running, or a mount point)")]
    Busy(String),
    #[error("{0} has too many links or subdirectories")]
    TooManyLinks(String),
    /// A walk met a directory nested deeper than [`fs::MAX_DEPTH`] levels below its start.
    #[error("{path} is nested more than {limit} directory levels deep")]
    TooDeep { path: String, limit: usize },
    /// A walk met more than [`fs::MAX_ENTRIES`] entries.
    #[error("{path} holds more than {limit} files and directories")]
    TooManyEntries { path: String, limit: u64 },
    /// A directory a walk was in was moved while the walk ran.
    #[error("{0} changed while it was being read; try again")]
    Changed(String),
    /// Nothing listens on this TCP port inside the sandbox.
    #[error("nothing listens on port {0} inside the sandbox")]
    NothingListens(u16),
    #[error("sandbox I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

impl From<rustix::io::Errno> for SandboxError {
    fn from(errno: rustix::io::Errno) -> Self {
        Self::Io(errno.into())
    }
}

impl SandboxError {
    /// The limit of the sandbox this failure shows was reached, where that is certain: a
    /// process that could not be forked for `EAGAIN` means the sandbox is out of processes.
    pub fn limit(&self) -> Option<SandboxLimit> {
        match self {
            Self::Spawn { source, .. } if source.raw_os_error() == Some(libc::EAGAIN) => {
                Some(SandboxLimit::Processes)
            }
            _ => None,
        }
    }
}

/// A resource limit of a sandbox, as the cause of a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxLimit {
    Processes,
    Memory,
    Disk,
}

pub type Result<T, E = SandboxError> = std::result::Result<T, E>;

/// An environment as `Debug` shows it: the names, never the values (users' secrets and
/// model credentials travel in environments).
pub struct EnvNames<'a>(pub &'a [(String, String)]);

impl std::fmt::Debug for EnvNames<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.iter().map(|(name, _)| name)).finish()
    }
}

/// A command to run inside a sandbox. Paths are as the sandbox sees them. `Debug` shows the
/// environment's names only.
#[derive(Clone, Default)]
pub struct ExecRequest {
    pub program: String,
    pub args: Vec<String>,
    /// Added to the sandbox's own minimal environment; nothing of the server's environment
    /// is passed on.
    pub env: Vec<(String, String)>,
    /// Working directory; the sandbox's home when `None`.
    pub cwd: Option<String>,
    /// Run on a pseudo-terminal of this size (stdout then carries everything).
    pub pty: Option<PtySize>,
    /// Kill the process (and what it started) after this long.
    pub timeout: Option<Duration>,
    /// Keep the process running when the server lets go of it (drops every handle); by
    /// default that kills it.
    pub background: bool,
    /// Run under the commands' process limit, below the one the CLI runs under, like the
    /// agent's own commands: for shells that people type into, so that what they start
    /// cannot starve the agent either. Providers without such a limit ignore it.
    pub as_command: bool,
}

impl std::fmt::Debug for ExecRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecRequest")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env", &EnvNames(&self.env))
            .field("cwd", &self.cwd)
            .field("pty", &self.pty)
            .field("timeout", &self.timeout)
            .field("background", &self.background)
            .field("as_command", &self.as_command)
            .finish()
    }
}

/// Where a sandbox stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SandboxStatus {
    /// Ready to run processes.
    Running,
    /// Its processes are frozen; any use resumes it.
    Paused,
    /// Nothing runs; the next use starts it (its files are kept).
    Stopped,
}

impl SandboxStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Stopped => "stopped",
        }
    }
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

    /// Start a process with piped stdin, stdout and stderr (or on a PTY).
    async fn exec(&self, request: ExecRequest) -> Result<SandboxProcess>;

    /// File operations confined to the home directory. Paths are relative to the home, or
    /// absolute under it.
    fn files(&self) -> &Workspace;

    /// A bash to run the agent's commands in (the CLI's `CLAUDE_CODE_SHELL`), as the sandbox
    /// sees it, when the provider has one that keeps them under the commands' limits and
    /// ends them with the CLI; `None` leaves the CLI to find its own.
    fn command_shell(&self) -> Option<String> {
        None
    }

    /// The TCP ports listening inside the sandbox, by port.
    async fn ports(&self) -> Result<Vec<ListeningPort>> {
        Err(SandboxError::Unsupported("list the ports listening inside a sandbox"))
    }

    /// A TCP connection to `127.0.0.1:port` inside the sandbox;
    /// [`SandboxError::NothingListens`] when nothing accepts it.
    async fn connect(&self, _port: u16) -> Result<Box<dyn PortConnection>> {
        Err(SandboxError::Unsupported("connect to ports inside a sandbox"))
    }
}

/// Run a blocking file operation of a sandbox off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| SandboxError::Io(std::io::Error::other(err)))?
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

    /// The sandbox's files, without starting the sandbox if the provider keeps them on this
    /// machine.
    async fn workspace(&self, id: &str) -> Result<Workspace> {
        Ok(self.ensure(id).await?.files().clone())
    }

    /// Where the sandbox stands; `Stopped` for one that does not exist.
    async fn status(&self, _id: &str) -> SandboxStatus {
        SandboxStatus::Running
    }

    /// End every process of the sandbox but keep its files; the next use starts it again.
    /// For operations that rewrite the workspace under its feet (a checkpoint restore).
    async fn stop(&self, _id: &str) -> Result<()> {
        Ok(())
    }

    /// End every process of the sandbox (its commands, servers, terminals and the CLI), keep
    /// its files, and return once it is ready to run processes again: how a person gets a
    /// sandbox back that its processes have made unusable.
    async fn restart(&self, id: &str) -> Result<()> {
        self.stop(id).await?;
        self.ensure(id).await.map(drop)
    }

    /// Why the provider itself stopped the sandbox, if it did (the disk quota is the only
    /// reason today); cleared when it starts again.
    async fn stopped_because(&self, _id: &str) -> Option<String> {
        None
    }

    /// When the sandbox last started, ended a process or was otherwise put to use, if it is
    /// running and the provider keeps track (`None` otherwise): which of a user's running
    /// sandboxes is the least recently used one.
    async fn last_used(&self, _id: &str) -> Option<std::time::Instant> {
        None
    }

    /// Freeze the sandbox's processes (releasing memory where the platform can).
    async fn pause(&self, _id: &str) -> Result<()> {
        Err(SandboxError::Unsupported("pause sandboxes"))
    }

    /// Undo [`SandboxProvider::pause`]. [`SandboxProvider::ensure`] also resumes.
    async fn resume(&self, _id: &str) -> Result<()> {
        Err(SandboxError::Unsupported("resume sandboxes"))
    }

    async fn health(&self) -> ProviderHealth;

    /// The status of every sandbox this provider keeps track of on this node (a gauge of
    /// `/metrics`); empty for providers that keep no such list.
    fn statuses(&self) -> Vec<SandboxStatus> {
        Vec::new()
    }
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
    fn debug_output_names_the_environment_without_its_values() {
        let request = ExecRequest {
            program: "/bin/true".into(),
            env: vec![("MY_SECRET".into(), "value-never-printed".into())],
            ..ExecRequest::default()
        };
        let spec = wire::ExecSpec { env: request.env.clone(), ..wire::ExecSpec::default() };
        let spawn = spawn::SpawnSpec { env: request.env.clone(), ..spawn::SpawnSpec::default() };
        for text in [format!("{request:?}"), format!("{spec:?}"), format!("{spawn:?}")] {
            assert!(text.contains("MY_SECRET") && !text.contains("never-printed"), "{text}");
        }
    }

    #[test]
    fn ids_cannot_name_other_paths() {
        assert!(check_id("0b7e2c1a-1111-4a4a-9b9b-123456789abc").is_ok());
        for bad in ["", "..", "a/b", "../x", "a b", &"x".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad:?} accepted");
        }
    }
}
