//! The server's side of [`crate::wire`]: requests to a sandbox's init, and a running exec as
//! a [`SandboxProcess`].

use std::io;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use crate::process::{ExitStatus, ProcessKiller, SandboxProcess, StopTarget};
use crate::wire::{self, ExecSpec, Exit, Reply, Request, kind};
use crate::{PtySize, Result, SandboxError};

/// How long the init has to answer a request's first line.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

async fn request(
    socket: &Path,
    request: &Request,
) -> Result<(BufReader<tokio::net::unix::OwnedReadHalf>, tokio::net::unix::OwnedWriteHalf)> {
    let conn = UnixStream::connect(socket).await.map_err(|err| {
        SandboxError::Unavailable(format!("the sandbox's init does not answer: {err}"))
    })?;
    let (read, mut write) = conn.into_split();
    let mut read = BufReader::new(read);
    wire::write_line(&mut write, request).await?;
    let reply: Option<Reply> =
        tokio::time::timeout(REPLY_TIMEOUT, wire::read_line(&mut read)).await.map_err(|_| {
            SandboxError::Unavailable("the sandbox's init did not answer in time".into())
        })??;
    match reply {
        Some(Reply { ok: true, .. }) => Ok((read, write)),
        Some(Reply { error, errno, .. }) => Err(SandboxError::Spawn {
            program: match request {
                Request::Exec(spec) => spec.program.clone(),
                _ => "request".into(),
            },
            // Only the number crosses as a cause: the init's words are the agent's to choose.
            source: match errno {
                Some(errno) if errno > 0 => io::Error::from_raw_os_error(errno),
                _ => io::Error::other(error.unwrap_or_else(|| "refused".into())),
            },
        }),
        None => Err(SandboxError::Unavailable("the sandbox's init closed the connection".into())),
    }
}

/// The TCP ports listening inside the sandbox. What the init lists is checked again: at most
/// [`wire::MAX_PORTS`] ports, names cleaned.
pub async fn ports(socket: &Path) -> Result<Vec<wire::ListeningPort>> {
    let (mut read, _write) = request(socket, &Request::Ports).await?;
    let reply: Option<wire::PortsReply> =
        tokio::time::timeout(REPLY_TIMEOUT, wire::read_line(&mut read)).await.map_err(|_| {
            SandboxError::Unavailable("the sandbox's init did not list its ports in time".into())
        })??;
    let Some(reply) = reply else {
        return Err(SandboxError::Unavailable("the sandbox's init closed the connection".into()));
    };
    let mut ports: Vec<wire::ListeningPort> = reply
        .ports
        .into_iter()
        .take(wire::MAX_PORTS)
        .map(|p| wire::ListeningPort {
            port: p.port,
            process: p.process.map(|n| super::ports::clean_name(&n)).filter(|n| !n.is_empty()),
        })
        .collect();
    ports.sort_by_key(|p| p.port);
    ports.dedup_by_key(|p| p.port);
    Ok(ports)
}

/// A connection to `127.0.0.1:port` inside the sandbox, relayed by the init.
pub async fn connect(socket: &Path, port: u16) -> Result<PortStream> {
    match request(socket, &Request::Connect { port }).await {
        Ok((read, write)) => Ok(PortStream { read, write }),
        Err(SandboxError::Spawn { source, .. })
            if source.raw_os_error() == Some(libc::ECONNREFUSED) =>
        {
            Err(SandboxError::NothingListens(port))
        }
        Err(SandboxError::Spawn { source, .. }) => Err(SandboxError::Io(source)),
        Err(err) => Err(err),
    }
}

/// The server's end of a relayed TCP connection. The read half is the buffered reader the
/// reply line was read through, so bytes that came right behind it are not lost.
pub struct PortStream {
    read: BufReader<tokio::net::unix::OwnedReadHalf>,
    write: tokio::net::unix::OwnedWriteHalf,
}

impl tokio::io::AsyncRead for PortStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for PortStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.write).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.write).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.write).poll_shutdown(cx)
    }
}

/// Whether the init answers.
pub async fn ping(socket: &Path) -> Result<()> {
    request(socket, &Request::Ping).await.map(drop)
}

pub async fn signal_all(socket: &Path, signal: i32) -> Result<()> {
    request(socket, &Request::SignalAll { signal }).await.map(drop)
}

/// Start a process through the init and expose it as a [`SandboxProcess`]. Dropping every
/// handle of it (stdin, the killer) closes the connection, which makes the init kill it.
pub async fn exec(socket: &Path, spec: ExecSpec) -> Result<SandboxProcess> {
    let (mut read, mut write) = request(socket, &Request::Exec(spec)).await?;
    // Stop signals and resizes must never wait behind stdin data, so they have a channel
    // of their own.
    let (control, mut control_rx) = mpsc::unbounded_channel::<(u8, Vec<u8>)>();
    let (stdin_frames, mut data_rx) = mpsc::channel::<(u8, Vec<u8>)>(64);

    // The caller's stdin, relayed as frames.
    let (stdin_caller, mut stdin_pump) = tokio::io::duplex(64 * 1024);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match stdin_pump.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    let _ = stdin_frames.send((kind::STDIN_EOF, Vec::new())).await;
                    return;
                }
                Ok(n) => {
                    if stdin_frames.send((kind::STDIN, buf[..n].to_vec())).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    // One writer owns the socket's write half; it ends when every sender is gone.
    tokio::spawn(async move {
        let (mut control_open, mut data_open) = (true, true);
        while control_open || data_open {
            let frame = tokio::select! {
                biased;
                frame = control_rx.recv(), if control_open => frame.or_else(|| { control_open = false; None }),
                frame = data_rx.recv(), if data_open => frame.or_else(|| { data_open = false; None }),
            };
            if let Some((k, payload)) = frame
                && wire::write_frame(&mut write, k, &payload).await.is_err()
            {
                return;
            }
        }
        let _ = write.shutdown().await;
    });

    let (mut stdout_tx, stdout_rx) = tokio::io::duplex(256 * 1024);
    let (mut stderr_tx, stderr_rx) = tokio::io::duplex(64 * 1024);
    let (exit_tx, exit_rx) = oneshot::channel::<io::Result<ExitStatus>>();
    tokio::spawn(async move {
        let outcome = loop {
            match wire::read_frame(&mut read).await {
                Ok(Some((kind::STDOUT, data))) => {
                    // A reader that went away is not a reason to stop following the process.
                    let _ = stdout_tx.write_all(&data).await;
                }
                Ok(Some((kind::STDERR, data))) => {
                    let _ = stderr_tx.write_all(&data).await;
                }
                Ok(Some((kind::EXIT, payload))) => {
                    break serde_json::from_slice::<Exit>(&payload)
                        .map(|exit| ExitStatus {
                            code: exit.code,
                            signal: exit.signal,
                            limit: None,
                        })
                        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err));
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    break Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the sandbox's init went away",
                    ));
                }
                Err(err) => break Err(err),
            }
        };
        drop(stdout_tx);
        drop(stderr_tx);
        let _ = exit_tx.send(outcome);
    });
    let exit = Box::pin(async move {
        exit_rx.await.unwrap_or_else(|_| {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "the sandbox's init went away"))
        })
    });
    Ok(SandboxProcess {
        stdin: Box::new(stdin_caller),
        stdout: Box::new(stdout_rx),
        stderr: Box::new(stderr_rx),
        exit,
        killer: ProcessKiller::new(RemoteProcess { control }),
    })
}

struct RemoteProcess {
    control: mpsc::UnboundedSender<(u8, Vec<u8>)>,
}

impl StopTarget for RemoteProcess {
    // A closed channel means the exec is over: there is nothing left to signal.
    fn terminate(&self) {
        let _ = self.control.send((kind::TERMINATE, Vec::new()));
    }

    fn kill(&self) {
        let _ = self.control.send((kind::KILL, Vec::new()));
    }

    fn resize(&self, size: PtySize) {
        let _ = self.control.send((kind::RESIZE, wire::resize_payload(size).to_vec()));
    }
}
