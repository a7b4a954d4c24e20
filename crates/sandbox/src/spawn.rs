//! Starting one process with piped stdio or on a pseudo-terminal, as a session leader.
//!
//! Both the `host` provider (in the server) and the init process inside a `local` sandbox
//! start processes with this, so the two behave alike: each process leads a session of its
//! own (a PTY becomes its controlling terminal), carries a marker variable that every
//! descendant inherits, and can be stopped together with everything it started.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::process::{ExitFuture, ExitStatus};

/// The size of a terminal, in character cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PtySize {
    pub cols: u16,
    pub rows: u16,
}

/// What to start. `env` is the complete environment: nothing is inherited. `Debug` shows
/// its names only.
#[derive(Clone, Default)]
pub struct SpawnSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub pty: Option<PtySize>,
    /// `NAME=VALUE` set for the process and inherited by everything it starts.
    pub marker: (String, String),
    /// Make the process die when its parent does (for processes started by the server).
    pub die_with_parent: bool,
    /// Keep the process when its exit future is dropped (a background process).
    pub keep_when_dropped: bool,
    /// Lower `RLIMIT_NPROC` (soft and hard) to this for the process and what it starts.
    pub process_limit: Option<u64>,
}

impl std::fmt::Debug for SpawnSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpawnSpec")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env", &crate::EnvNames(&self.env))
            .field("cwd", &self.cwd)
            .field("pty", &self.pty)
            .field("marker", &self.marker)
            .field("die_with_parent", &self.die_with_parent)
            .field("keep_when_dropped", &self.keep_when_dropped)
            .field("process_limit", &self.process_limit)
            .finish()
    }
}

/// A started process. With a PTY, `stdout` carries the terminal's output (stderr included)
/// and `stderr` is empty.
pub struct Spawned {
    pub pid: u32,
    pub stdin: Box<dyn AsyncWrite + Send + Unpin>,
    pub stdout: Box<dyn AsyncRead + Send + Unpin>,
    pub stderr: Box<dyn AsyncRead + Send + Unpin>,
    pub exit: ExitFuture,
    /// The terminal, for resizing; `None` without a PTY.
    pub pty: Option<Arc<OwnedFd>>,
}

pub fn spawn(spec: SpawnSpec) -> io::Result<Spawned> {
    #[allow(clippy::disallowed_methods)] // This crate is where processes are started.
    let mut command = tokio::process::Command::new(&spec.program);
    command
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env(&spec.marker.0, &spec.marker.1)
        .current_dir(&spec.cwd)
        .kill_on_drop(!spec.keep_when_dropped);
    let pty = match spec.pty {
        Some(size) => {
            let pty = nix::pty::openpty(Some(&winsize(size)), None).map_err(io::Error::from)?;
            command
                .stdin(Stdio::from(pty.slave.try_clone()?))
                .stdout(Stdio::from(pty.slave.try_clone()?))
                .stderr(Stdio::from(pty.slave));
            set_nonblocking(&pty.master)?;
            Some(Arc::new(pty.master))
        }
        None => {
            command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
            None
        }
    };
    prepare_child(&mut command, pty.is_some(), spec.die_with_parent, spec.process_limit);
    let mut child = command.spawn()?;
    // The command holds the PTY's slave ends; the child has its own copies now.
    drop(command);
    let pid = child.id().ok_or_else(|| io::Error::other("the process exited before it started"))?;
    type Reader = Box<dyn AsyncRead + Send + Unpin>;
    let (stdin, stdout, stderr): (Box<dyn AsyncWrite + Send + Unpin>, Reader, Reader) = match &pty {
        Some(master) => {
            let stream = PtyStream::new(master.clone())?;
            (Box::new(stream.clone()), Box::new(stream), Box::new(tokio::io::empty()))
        }
        None => match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
            (Some(stdin), Some(stdout), Some(stderr)) => {
                (Box::new(stdin), Box::new(stdout), Box::new(stderr))
            }
            _ => return Err(io::Error::other("the child's stdio was not piped")),
        },
    };
    let exit: ExitFuture = Box::pin(async move {
        let status = child.wait().await?;
        Ok(ExitStatus { code: status.code(), signal: status.signal(), limit: None })
    });
    Ok(Spawned { pid, stdin, stdout, stderr, exit, pty })
}

/// Session leader, controlling terminal, death with the parent: all set in the child
/// between fork and exec.
#[allow(unsafe_code)]
fn prepare_child(
    command: &mut tokio::process::Command,
    controlling_tty: bool,
    die_with_parent: bool,
    process_limit: Option<u64>,
) {
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (setsid, ioctl, prctl, getrlimit, setrlimit) without
    // allocating.
    unsafe {
        command.pre_exec(move || {
            nix::unistd::setsid().map_err(io::Error::from)?;
            if controlling_tty && libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if die_with_parent {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
            }
            if let Some(wanted) = process_limit {
                use nix::sys::resource::{Resource, getrlimit, setrlimit};
                let (_, hard) = getrlimit(Resource::RLIMIT_NPROC).map_err(io::Error::from)?;
                let limit = wanted.min(hard);
                setrlimit(Resource::RLIMIT_NPROC, limit, limit).map_err(io::Error::from)?;
            }
            Ok(())
        });
    }
}

fn winsize(size: PtySize) -> nix::pty::Winsize {
    nix::pty::Winsize { ws_row: size.rows, ws_col: size.cols, ws_xpixel: 0, ws_ypixel: 0 }
}

/// Tell the terminal (and so the program on it) its new size.
pub fn resize(master: &OwnedFd, size: PtySize) -> io::Result<()> {
    let size = rustix::termios::Winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(master, size).map_err(io::Error::from)
}

fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

/// Signal a process's group, and every process carrying `marker` (`NAME=VALUE`), which
/// includes descendants that moved to groups or sessions of their own.
pub fn kill_tree(pid: u32, marker: &str, signal: Signal) {
    if let Ok(pid) = i32::try_from(pid) {
        // ESRCH (already gone) is the normal case after an exit.
        let _ = killpg(Pid::from_raw(pid), signal);
    }
    signal_marked(|var| var == marker.as_bytes(), signal);
}

/// Signal every process of this user whose environment has a variable for which `is_ours`
/// holds, except the calling process. Returns how many were signalled.
pub fn signal_marked(is_ours: impl Fn(&[u8]) -> bool, signal: Signal) -> usize {
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    let mut signalled = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if u32::try_from(pid).is_ok_and(|pid| pid == own) {
            continue;
        }
        // Unreadable (another user's process) or gone: not ours either way.
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if environ.split(|&b| b == 0).any(&is_ours) && kill(Pid::from_raw(pid), signal).is_ok() {
            signalled += 1;
        }
    }
    signalled
}

/// The master side of a PTY as an async byte stream. Reading after the program has exited
/// gives `EIO`, which is the terminal's way of saying end of file.
#[derive(Clone)]
struct PtyStream {
    fd: Arc<AsyncFd<FdRef>>,
}

/// Lets `AsyncFd` share the master with the resizer without owning it twice.
struct FdRef(Arc<OwnedFd>);

impl AsRawFd for FdRef {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0.as_raw_fd()
    }
}

impl PtyStream {
    #[allow(unsafe_code)]
    fn new(master: Arc<OwnedFd>) -> io::Result<Self> {
        // SAFETY: `FdRef` holds an `Arc` of the owned descriptor, so the descriptor stays
        // open and the same for as long as the `AsyncFd` lives, and `as_raw_fd` always
        // returns it.
        let fd = unsafe { AsyncFd::register(FdRef(master)) }.map_err(|err| err.into_parts().1)?;
        Ok(Self { fd: Arc::new(fd) })
    }
}

impl AsyncRead for PtyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| {
                rustix::io::read(fd.get_ref().0.as_fd(), &mut *unfilled).map_err(io::Error::from)
            }) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(err)) if err.raw_os_error() == Some(libc::EIO) => {
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(err)) => return Poll::Ready(Err(err)),
                Err(_would_block) => {}
            }
        }
    }
}

impl AsyncWrite for PtyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| {
                rustix::io::write(fd.get_ref().0.as_fd(), data).map_err(io::Error::from)
            }) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => {}
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
