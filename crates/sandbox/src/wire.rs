//! The control protocol between the server and the init process of a `local` sandbox.
//!
//! One Unix-socket connection per request. The server writes a [`Request`] as one JSON line;
//! the init answers with a [`Reply`] line. For an exec, both sides then exchange frames
//! (`kind: u8`, `length: u32` big-endian, payload) until the process has exited and its
//! output is drained: the init sends stdout, stderr and finally the exit status; the server
//! sends stdin, end of stdin, terminal resizes and stop signals. Closing the connection
//! kills the process and everything it started. A [`Request::Ports`] is answered by a second
//! line, a [`PortsReply`]. After an accepted [`Request::Connect`] the connection carries the
//! TCP connection's bytes as they are, both ways, until either side closes: one Unix-socket
//! connection per TCP connection, so the kernel's socket buffers bound what is in flight and
//! a slow reader slows the writer down (nothing is queued without limit). Everything the init
//! sends is treated as untrusted input: the agent can replace the init.

use serde::{Deserialize, Serialize};
use tokio::io::{
    AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt,
};

use crate::PtySize;

/// The largest frame payload and header line accepted.
pub const MAX_FRAME: usize = 1024 * 1024;

/// Frame kinds.
pub mod kind {
    pub const STDIN: u8 = 1;
    pub const STDIN_EOF: u8 = 2;
    pub const RESIZE: u8 = 3;
    pub const TERMINATE: u8 = 4;
    pub const KILL: u8 = 5;
    pub const STDOUT: u8 = 11;
    pub const STDERR: u8 = 12;
    pub const EXIT: u8 = 13;
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Exec(ExecSpec),
    /// Send `signal` to every process of the sandbox but the init (pause and resume).
    SignalAll {
        signal: i32,
    },
    Ping,
    /// The TCP ports listening inside the sandbox, answered by a [`PortsReply`] line.
    Ports,
    /// Connect to `127.0.0.1:port` inside the sandbox and relay the connection's bytes.
    Connect {
        port: u16,
    },
}

/// The most ports a [`PortsReply`] may list (more are left out, by the init and when read).
pub const MAX_PORTS: usize = 256;
/// The longest process name kept in a [`ListeningPort`].
pub const MAX_PROCESS_NAME: usize = 64;

/// A TCP port in the `LISTEN` state inside a sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListeningPort {
    pub port: u16,
    /// The name (`comm`) of a process holding the listening socket, when the init could
    /// find one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
}

/// The answer to [`Request::Ports`], after its [`Reply`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortsReply {
    pub ports: Vec<ListeningPort>,
}

/// `Debug` shows the environment's names only.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    pub pty: Option<PtySize>,
    pub timeout_ms: Option<u64>,
    /// Keep running after the connection closes.
    #[serde(default)]
    pub background: bool,
    /// Run under the commands' process limit (see [`crate::ExecRequest::as_command`]).
    #[serde(default)]
    pub as_command: bool,
}

impl std::fmt::Debug for ExecSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecSpec")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env", &crate::EnvNames(&self.env))
            .field("cwd", &self.cwd)
            .field("pty", &self.pty)
            .field("timeout_ms", &self.timeout_ms)
            .field("background", &self.background)
            .field("as_command", &self.as_command)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The `errno` of a failed system call behind `error`, so the server can tell causes
    /// apart (`EAGAIN` from fork: out of processes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
}

impl Reply {
    pub fn ok(pid: Option<u32>) -> Self {
        Self { ok: true, pid, error: None, errno: None }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self { ok: false, pid: None, error: Some(message.into()), errno: None }
    }

    /// A failed system call.
    pub fn os_error(err: &std::io::Error) -> Self {
        Self { errno: err.raw_os_error(), ..Self::error(err.to_string()) }
    }
}

/// How an exec ended, in an `EXIT` frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exit {
    pub code: Option<i32>,
    pub signal: Option<i32>,
}

pub async fn write_line<T: Serialize>(
    writer: &mut (impl AsyncWrite + Unpin),
    value: &T,
) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    line.push(b'\n');
    writer.write_all(&line).await?;
    writer.flush().await
}

/// One JSON line, at most [`MAX_FRAME`] bytes; `None` at end of stream.
pub async fn read_line<T: for<'de> Deserialize<'de>>(
    reader: &mut (impl AsyncBufRead + Unpin),
) -> std::io::Result<Option<T>> {
    let mut line = Vec::new();
    let read = (&mut *reader).take(MAX_FRAME as u64 + 1).read_until(b'\n', &mut line).await?;
    if read == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "header line too long or cut short",
        ));
    }
    serde_json::from_slice(&line)
        .map(Some)
        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))
}

pub async fn write_frame(
    writer: &mut (impl AsyncWrite + Unpin),
    kind: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(std::io::Error::other)?;
    let mut header = [0u8; 5];
    header[0] = kind;
    header[1..].copy_from_slice(&len.to_be_bytes());
    writer.write_all(&header).await?;
    writer.write_all(payload).await?;
    writer.flush().await
}

/// The next frame; `None` at a clean end of stream.
pub async fn read_frame(
    reader: &mut (impl AsyncRead + Unpin),
) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut header = [0u8; 5];
    match reader.read_exact(&mut header).await {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "frame too large"));
    }
    let mut payload = vec![0u8; len];
    reader.read_exact(&mut payload).await?;
    Ok(Some((header[0], payload)))
}

pub fn resize_payload(size: PtySize) -> [u8; 4] {
    let mut payload = [0u8; 4];
    payload[..2].copy_from_slice(&size.cols.to_be_bytes());
    payload[2..].copy_from_slice(&size.rows.to_be_bytes());
    payload
}

pub fn parse_resize(payload: &[u8]) -> Option<PtySize> {
    let bytes: [u8; 4] = payload.try_into().ok()?;
    Some(PtySize {
        cols: u16::from_be_bytes([bytes[0], bytes[1]]),
        rows: u16::from_be_bytes([bytes[2], bytes[3]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_and_lines_roundtrip() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut b = tokio::io::BufReader::new(b);
        write_line(&mut a, &Request::Ping).await.unwrap();
        write_frame(&mut a, kind::STDOUT, b"hello").await.unwrap();
        write_frame(&mut a, kind::RESIZE, &resize_payload(PtySize { cols: 100, rows: 30 }))
            .await
            .unwrap();
        drop(a);
        assert_eq!(read_line::<Request>(&mut b).await.unwrap(), Some(Request::Ping));
        assert_eq!(read_frame(&mut b).await.unwrap(), Some((kind::STDOUT, b"hello".to_vec())));
        let (k, payload) = read_frame(&mut b).await.unwrap().unwrap();
        assert_eq!(
            (k, parse_resize(&payload)),
            (kind::RESIZE, Some(PtySize { cols: 100, rows: 30 }))
        );
        assert_eq!(read_frame(&mut b).await.unwrap(), None);
    }

    #[tokio::test]
    async fn oversized_frames_are_refused() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&[kind::STDOUT, 0xff, 0xff, 0xff, 0xff]).await.unwrap();
        assert!(read_frame(&mut b).await.is_err());
    }
}
