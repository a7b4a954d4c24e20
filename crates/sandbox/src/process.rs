//! A process started in a sandbox: its pipes, its exit, and a handle to stop it.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};

/// How a process ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitStatus {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// The sandbox limit that ended the process, when the provider knows it for certain
    /// (the sandbox stopped over its disk quota; the kernel's OOM or pids accounting of the
    /// sandbox's cgroup counted an event while the process ran and it died by a signal).
    pub limit: Option<crate::SandboxLimit>,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signal)) => write!(f, "killed by signal {signal}"),
            (None, None) => f.write_str("unknown exit status"),
        }
    }
}

/// Something a provider can deliver stop signals to: a process group on the host, a process
/// inside a sandbox's init, a remote process.
pub trait StopTarget: Send + Sync {
    /// Ask politely (SIGTERM or the provider's equivalent).
    fn terminate(&self);
    /// Stop now (SIGKILL or the provider's equivalent), with everything it started.
    fn kill(&self);
    /// Resize the process's terminal; nothing for a process without one.
    fn resize(&self, _size: crate::PtySize) {}
}

/// A cloneable handle that stops a sandbox process and everything it started, and resizes
/// its terminal if it has one.
#[derive(Clone)]
pub struct ProcessKiller(Arc<dyn StopTarget>);

impl ProcessKiller {
    pub fn new(target: impl StopTarget + 'static) -> Self {
        Self(Arc::new(target))
    }

    pub fn terminate(&self) {
        self.0.terminate();
    }

    pub fn kill(&self) {
        self.0.kill();
    }

    pub fn resize(&self, size: crate::PtySize) {
        self.0.resize(size);
    }
}

impl fmt::Debug for ProcessKiller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProcessKiller")
    }
}

pub type ExitFuture = Pin<Box<dyn Future<Output = io::Result<ExitStatus>> + Send>>;

/// A running process with piped stdio. The parts are public so that a driver can hand each
/// one to the task that uses it.
pub struct SandboxProcess {
    pub stdin: Box<dyn AsyncWrite + Send + Unpin>,
    pub stdout: Box<dyn AsyncRead + Send + Unpin>,
    pub stderr: Box<dyn AsyncRead + Send + Unpin>,
    /// Resolves once the process has exited (and been reaped).
    pub exit: ExitFuture,
    pub killer: ProcessKiller,
}

impl fmt::Debug for SandboxProcess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxProcess").finish_non_exhaustive()
    }
}
