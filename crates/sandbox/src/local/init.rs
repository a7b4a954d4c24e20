//! The init of a `local` sandbox: the long-lived process inside it that starts and watches
//! the sandbox's processes on the server's behalf, so that they can outlive any one request.
//!
//! bubblewrap starts it (as the sandbox's unprivileged user, after the namespaces, mounts,
//! capabilities and seccomp filter are in place) with a listening Unix socket inherited on
//! the descriptor named by [`LISTEN_FD_ENV`]. It serves [`crate::wire`] requests on it and
//! forwards TCP connections to `127.0.0.1:3128` (the `HTTP(S)_PROXY` of every process) to the
//! server's egress proxy through the socket mounted at [`PROXY_SOCKET`]. It holds no secret
//! and no privilege: the agent may kill or replace it, which only breaks its own sandbox.

use std::io;
use std::os::fd::{FromRawFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::spawn::{SpawnSpec, kill_tree, spawn};
use crate::wire::{self, ExecSpec, Exit, Reply, Request, kind};

/// Names the inherited listening descriptor.
pub const LISTEN_FD_ENV: &str = "AGENTBOX_INIT_FD";
/// Where the server's egress proxy socket is mounted.
pub const PROXY_SOCKET: &str = "/run/agentbox/proxy.sock";
/// The in-sandbox proxy port (`HTTP_PROXY=http://127.0.0.1:3128`).
pub const PROXY_PORT: u16 = 3128;
/// Inherited by every process an exec starts, so the exec can be stopped as a whole.
pub(crate) const EXEC_MARKER: &str = "AGENTBOX_EXEC";
/// How long output is still forwarded after a process exits (its children may hold the
/// pipes open forever).
const DRAIN: Duration = Duration::from_secs(2);

/// Run the init. Returns only on a fatal error.
pub fn main() -> io::Result<()> {
    let fd: RawFd =
        std::env::var(LISTEN_FD_ENV).ok().and_then(|v| v.parse().ok()).ok_or_else(|| {
            io::Error::other(format!(
                "{LISTEN_FD_ENV} is not set: run by the local sandbox provider only"
            ))
        })?;
    // Before anything else opens descriptors: nothing inherited but stdio and the listener
    // may stay open, or a host descriptor could leak to the agent.
    close_inherited(fd);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(serve(fd))
}

fn close_inherited(keep: RawFd) {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else { return };
    let fds: Vec<RawFd> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
        .collect();
    for fd in fds {
        if fd > 2 && fd != keep {
            let _ = nix::unistd::close(fd);
        }
    }
}

async fn serve(fd: RawFd) -> io::Result<()> {
    #[allow(unsafe_code)]
    // SAFETY: the descriptor was inherited from the provider for exactly this purpose and
    // nothing else in this process owns it (all other inherited descriptors were closed).
    let std_listener = unsafe { std::os::unix::net::UnixListener::from_raw_fd(fd) };
    std_listener.set_nonblocking(true)?;
    let listener = UnixListener::from_std(std_listener)?;
    let base_env: Arc<Vec<(String, String)>> =
        Arc::new(std::env::vars().filter(|(k, _)| k != LISTEN_FD_ENV).collect());
    tokio::spawn(forward_proxy());
    let execs = Arc::new(AtomicU64::new(1));
    loop {
        let (conn, _) = listener.accept().await?;
        let base_env = base_env.clone();
        let execs = execs.clone();
        tokio::spawn(async move {
            if let Err(err) = handle(conn, &base_env, &execs).await {
                eprintln!("agentbox-init: {err}");
            }
        });
    }
}

async fn handle(
    conn: UnixStream,
    base_env: &[(String, String)],
    execs: &AtomicU64,
) -> io::Result<()> {
    let (read, mut write) = conn.into_split();
    let mut read = BufReader::new(read);
    let Some(request) = wire::read_line::<Request>(&mut read).await? else { return Ok(()) };
    match request {
        Request::Ping => wire::write_line(&mut write, &Reply::ok(None)).await,
        Request::SignalAll { signal } => {
            // kill(-1) reaches every process we may signal except pid 1 and ourselves: the
            // whole sandbox, since its pid namespace holds nothing else.
            let result = Signal::try_from(signal).map_err(io::Error::from).and_then(|s| {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(-1), s).map_err(io::Error::from)
            });
            let reply = match result {
                Ok(()) => Reply::ok(None),
                // ESRCH: nothing to signal, which is fine.
                Err(err) if err.raw_os_error() == Some(libc::ESRCH) => Reply::ok(None),
                Err(err) => Reply::error(err.to_string()),
            };
            wire::write_line(&mut write, &reply).await
        }
        Request::Exec(spec) => {
            exec(spec, read, write, base_env, execs.fetch_add(1, Ordering::Relaxed)).await
        }
        Request::Ports => {
            let ports = tokio::task::spawn_blocking(|| super::ports::listening(&[PROXY_PORT]))
                .await
                .map_err(io::Error::other)?;
            wire::write_line(&mut write, &Reply::ok(None)).await?;
            wire::write_line(&mut write, &wire::PortsReply { ports }).await
        }
        Request::Connect { port } => connect(port, read, write).await,
    }
}

/// Relay the connection to `127.0.0.1:port` (or `[::1]:port`, for a server that listens on
/// IPv6 loopback only) over this control connection until both directions have ended. Each
/// direction is a plain copy through a fixed buffer: it reads only as fast as the other side
/// takes, so a slow reader holds the writer back instead of making the init buffer.
async fn connect(
    port: u16,
    mut read: BufReader<tokio::net::unix::OwnedReadHalf>,
    mut write: tokio::net::unix::OwnedWriteHalf,
) -> io::Result<()> {
    let tcp = match TcpStream::connect(("127.0.0.1", port)).await {
        Ok(tcp) => tcp,
        Err(first) => match TcpStream::connect(("::1", port)).await {
            Ok(tcp) => tcp,
            Err(_) => return wire::write_line(&mut write, &Reply::os_error(&first)).await,
        },
    };
    let _ = tcp.set_nodelay(true);
    wire::write_line(&mut write, &Reply::ok(None)).await?;
    let (mut tcp_read, mut tcp_write) = tcp.into_split();
    // The BufReader may already hold bytes the server sent after its request line; copying
    // from it passes them on first.
    let up = async {
        let copied = tokio::io::copy(&mut read, &mut tcp_write).await;
        let _ = tcp_write.shutdown().await;
        copied
    };
    let down = async {
        let copied = tokio::io::copy(&mut tcp_read, &mut write).await;
        let _ = write.shutdown().await;
        copied
    };
    // A direction that fails (a reset) ends both; one that ends cleanly (a half-close)
    // leaves the other running.
    tokio::pin!(up, down);
    let (mut up_done, mut down_done) = (false, false);
    while !(up_done && down_done) {
        tokio::select! {
            copied = &mut up, if !up_done => {
                if copied.is_err() { break }
                up_done = true;
            }
            copied = &mut down, if !down_done => {
                if copied.is_err() { break }
                down_done = true;
            }
        }
    }
    Ok(())
}

async fn exec(
    spec: ExecSpec,
    mut read: BufReader<tokio::net::unix::OwnedReadHalf>,
    mut write: tokio::net::unix::OwnedWriteHalf,
    base_env: &[(String, String)],
    number: u64,
) -> io::Result<()> {
    let mut env: Vec<(String, String)> = base_env.to_vec();
    if spec.pty.is_some() {
        env.push(("TERM".into(), "xterm-256color".into()));
    }
    env.extend(spec.env);
    let home = std::env::var("HOME").unwrap_or_else(|_| "/".into());
    let marker = (EXEC_MARKER.to_owned(), number.to_string());
    let marker_var = format!("{EXEC_MARKER}={number}");
    let spawned = match spawn(SpawnSpec {
        program: spec.program.clone(),
        args: spec.args,
        env,
        cwd: spec.cwd.unwrap_or(home),
        pty: spec.pty,
        marker,
        die_with_parent: false,
        keep_when_dropped: spec.background,
        process_limit: if spec.as_command { command_processes() } else { None },
    }) {
        Ok(spawned) => spawned,
        Err(err) => return wire::write_line(&mut write, &Reply::os_error(&err)).await,
    };
    let pid = spawned.pid;
    let background = spec.background;
    wire::write_line(&mut write, &Reply::ok(Some(pid))).await?;

    let (frames, mut outgoing) = mpsc::channel::<(u8, Vec<u8>)>(64);
    let writer = tokio::spawn(async move {
        while let Some((k, payload)) = outgoing.recv().await {
            if wire::write_frame(&mut write, k, &payload).await.is_err() {
                break;
            }
        }
    });
    let stdout = tokio::spawn(pump(spawned.stdout, kind::STDOUT, frames.clone()));
    let stderr = tokio::spawn(pump(spawned.stderr, kind::STDERR, frames.clone()));
    let pty = spawned.pty.clone();
    let kill_marker = marker_var.clone();
    let mut stdin = Some(spawned.stdin);
    let input = tokio::spawn(async move {
        loop {
            match wire::read_frame(&mut read).await {
                Ok(Some((kind::STDIN, data))) => {
                    if let Some(pipe) = stdin.as_mut()
                        && pipe.write_all(&data).await.is_err()
                    {
                        stdin = None;
                    }
                }
                Ok(Some((kind::STDIN_EOF, _))) => {
                    if let Some(mut pipe) = stdin.take() {
                        let _ = pipe.shutdown().await;
                    }
                }
                Ok(Some((kind::RESIZE, payload))) => {
                    if let (Some(pty), Some(size)) = (&pty, wire::parse_resize(&payload)) {
                        let _ = crate::spawn::resize(pty, size);
                    }
                }
                Ok(Some((kind::TERMINATE, _))) => {
                    if let Ok(pid) = i32::try_from(pid) {
                        let _ = nix::sys::signal::killpg(
                            nix::unistd::Pid::from_raw(pid),
                            Signal::SIGTERM,
                        );
                    }
                }
                Ok(Some((kind::KILL, _))) => kill_tree(pid, &kill_marker, Signal::SIGKILL),
                Ok(Some(_)) => {}
                // The server let go of the process: unless asked to run in the background,
                // it must not run on unsupervised.
                Ok(None) | Err(_) => {
                    if !background {
                        kill_tree(pid, &kill_marker, Signal::SIGKILL);
                    }
                    return;
                }
            }
        }
    });
    let status = match spec.timeout_ms {
        Some(ms) => {
            let mut exit = spawned.exit;
            tokio::select! {
                status = &mut exit => status,
                () = tokio::time::sleep(Duration::from_millis(ms)) => {
                    kill_tree(pid, &marker_var, Signal::SIGKILL);
                    exit.await
                }
            }
        }
        None => spawned.exit.await,
    };
    let _ = tokio::time::timeout(DRAIN, async {
        let _ = stdout.await;
        let _ = stderr.await;
    })
    .await;
    let exit = match status {
        Ok(status) => Exit { code: status.code, signal: status.signal },
        Err(_) => Exit { code: None, signal: None },
    };
    let payload = serde_json::to_vec(&exit).map_err(io::Error::other)?;
    let _ = frames.send((kind::EXIT, payload)).await;
    drop(frames);
    let _ = writer.await;
    input.abort();
    Ok(())
}

/// The commands' process limit the provider put in the sandbox's environment, if any.
fn command_processes() -> Option<u64> {
    std::env::var(super::shell::COMMAND_PROCESSES_ENV).ok()?.trim().parse().ok()
}

async fn pump(
    mut from: Box<dyn AsyncRead + Send + Unpin>,
    kind: u8,
    frames: mpsc::Sender<(u8, Vec<u8>)>,
) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if frames.send((kind, buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Each TCP connection to the in-sandbox proxy port is relayed to the server's egress proxy.
async fn forward_proxy() {
    let listener = match TcpListener::bind(("127.0.0.1", PROXY_PORT)).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("agentbox-init: cannot listen on the proxy port: {err}");
            return;
        }
    };
    while let Ok((mut client, _)) = listener.accept().await {
        tokio::spawn(async move {
            if let Ok(mut upstream) = UnixStream::connect(PROXY_SOCKET).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        });
    }
}
