//! One running Claude Code CLI process in stream-json mode, inside a sandbox.
//!
//! Three tasks serve a session: a writer that turns [`CliInput`]s into stdin lines, a reader
//! that frames and parses stdout into [`SessionOutput`]s and reports the exit last, and a
//! collector that keeps the tail of stderr for error messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use agentbox_protocol::cli::{CliInput, CliOutput, ControlRequest};
use agentbox_sandbox::{ExecRequest, ExitStatus, ProcessKiller, Sandbox};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Mutex, mpsc};

use crate::AgentError;
use crate::lines::{Line, LineReader};

/// How long the reader keeps draining stdout after the process has exited.
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// How much of stderr is kept for the error shown when the CLI fails.
const STDERR_TAIL: usize = 8 * 1024;

/// How to start the CLI for a chat. `Debug` shows the environment's names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SessionOptions {
    pub model: String,
    /// The CLI's own `--permission-mode` (`default`, `plan`, `bypassPermissions`, ...).
    pub cli_permission_mode: String,
    /// Continue this CLI session (`--resume`).
    pub resume: Option<String>,
    pub append_system_prompt: Option<String>,
    /// `--max-thinking-tokens`: `0` turns thinking off; `None` keeps the CLI's default.
    pub max_thinking_tokens: Option<u32>,
    /// `--allow-dangerously-skip-permissions`: lets `set_permission_mode` switch a running CLI
    /// to `bypassPermissions`, which the CLI otherwise refuses.
    pub allow_bypass: bool,
    /// `--mcp-config`: the chat's MCP servers as the CLI's JSON, secrets only as `${VAR}`
    /// references to `env`.
    pub mcp_config: Option<String>,
    /// Model credentials, endpoints, proxies: passed to the CLI's environment only.
    pub env: Vec<(String, String)>,
    /// The CLI's working directory (a chat's repository); the sandbox's home when `None`.
    pub cwd: Option<String>,
}

impl std::fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionOptions")
            .field("model", &self.model)
            .field("cli_permission_mode", &self.cli_permission_mode)
            .field("resume", &self.resume)
            .field("append_system_prompt", &self.append_system_prompt)
            .field("max_thinking_tokens", &self.max_thinking_tokens)
            .field("allow_bypass", &self.allow_bypass)
            .field("mcp_config", &self.mcp_config)
            .field("env", &agentbox_sandbox::EnvNames(&self.env))
            .field("cwd", &self.cwd)
            .finish()
    }
}

impl SessionOptions {
    /// The CLI's arguments. `--permission-prompt-tool stdio` makes it ask us on stdout.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "-p",
            "--input-format",
            "stream-json",
            "--output-format",
            "stream-json",
            "--verbose",
            // Text as the model writes it (`stream_event` lines), for the live view.
            "--include-partial-messages",
            "--permission-prompt-tool",
            "stdio",
            "--permission-mode",
        ]
        .map(str::to_owned)
        .into();
        args.push(self.cli_permission_mode.clone());
        args.extend(["--model".to_owned(), self.model.clone()]);
        if let Some(id) = &self.resume {
            args.extend(["--resume".to_owned(), id.clone()]);
        }
        if let Some(prompt) = &self.append_system_prompt {
            args.extend(["--append-system-prompt".to_owned(), prompt.clone()]);
        }
        // By default the CLI records the system prompt of a conversation's first request and
        // sends that record on every later request, even after `--resume` with other
        // `--append-system-prompt` text; custom instructions changed between turns would then
        // never reach the model.
        args.extend(["--system-prompt-snapshot".to_owned(), "off".to_owned()]);
        if let Some(tokens) = self.max_thinking_tokens {
            args.extend(["--max-thinking-tokens".to_owned(), tokens.to_string()]);
        }
        if self.allow_bypass {
            args.push("--allow-dangerously-skip-permissions".to_owned());
        }
        if let Some(config) = &self.mcp_config {
            args.extend(["--mcp-config".to_owned(), config.clone()]);
        }
        args
    }

    /// The CLI's environment: quiet, no self-update, and what the caller adds.
    pub fn environment(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("DISABLE_TELEMETRY", "1"),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
            ("DISABLE_AUTOUPDATER", "1"),
            ("DISABLE_ERROR_REPORTING", "1"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
        env.extend(self.env.iter().cloned());
        env
    }
}

/// What the reader task reports.
#[derive(Debug)]
pub enum SessionOutput {
    Message(CliOutput),
    /// A line that is not a protocol message (noise, or JSON of an unexpected shape).
    Noise(String),
    /// The process ended; always the last output.
    Exited {
        status: Option<ExitStatus>,
        stderr: String,
    },
}

pub struct AgentSession {
    input: mpsc::Sender<CliInput>,
    output: mpsc::Receiver<SessionOutput>,
    killer: ProcessKiller,
    alive: Arc<AtomicBool>,
    next_request: AtomicU64,
    options: SessionOptions,
    stderr: Arc<Mutex<Vec<u8>>>,
    /// The session's running cost in the process's latest `result`, to tell a turn's own
    /// cost when the CLI does not report it (see `figures`).
    reported_cost: std::sync::Mutex<Option<f64>>,
}

impl std::fmt::Debug for AgentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentSession").field("options", &self.options).finish_non_exhaustive()
    }
}

impl AgentSession {
    /// Start the CLI in the sandbox and send `initialize`.
    pub async fn start(sandbox: &dyn Sandbox, options: SessionOptions) -> Result<Self, AgentError> {
        let program = sandbox.tool_path("claude").ok_or(AgentError::CliUnavailable)?;
        let mut env = options.environment();
        if let Some(shell) = sandbox.command_shell() {
            // The CLI runs every Bash call in this shell (it accepts a path naming bash).
            env.push(("CLAUDE_CODE_SHELL".to_owned(), shell));
        }
        let process = sandbox
            .exec(ExecRequest {
                program,
                args: options.args(),
                env,
                cwd: options.cwd.clone(),
                ..ExecRequest::default()
            })
            .await?;
        let alive = Arc::new(AtomicBool::new(true));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (input_tx, input_rx) = mpsc::channel(64);
        let (output_tx, output_rx) = mpsc::channel(256);
        tokio::spawn(write_inputs(process.stdin, input_rx));
        let stderr_task = tokio::spawn(collect_tail(process.stderr, stderr.clone()));
        tokio::spawn(read_outputs(
            process.stdout,
            process.exit,
            stderr_task,
            stderr.clone(),
            alive.clone(),
            output_tx,
        ));
        let session = Self {
            input: input_tx,
            output: output_rx,
            killer: process.killer,
            alive,
            next_request: AtomicU64::new(1),
            options,
            stderr,
            reported_cost: std::sync::Mutex::new(None),
        };
        session
            .send(CliInput::ControlRequest {
                request_id: "req_init".into(),
                request: ControlRequest::Initialize { hooks: None },
            })
            .await?;
        Ok(session)
    }

    /// Remember the running cost a `result` reported; the one remembered before, if any.
    pub(crate) fn remember_reported_cost(&self, total: Option<f64>) -> Option<f64> {
        let mut reported =
            self.reported_cost.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let previous = *reported;
        *reported = total.or(previous);
        previous
    }

    pub fn options(&self) -> &SessionOptions {
        &self.options
    }

    /// Whether the process is still running.
    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// Write one line to the CLI.
    pub async fn send(&self, input: CliInput) -> Result<(), AgentError> {
        self.input.send(input).await.map_err(|_| AgentError::Closed)
    }

    /// Send a control request of ours and return its id.
    pub async fn control(&self, request: ControlRequest) -> Result<String, AgentError> {
        let request_id = format!("req_{}", self.next_request.fetch_add(1, Ordering::Relaxed));
        self.send(CliInput::ControlRequest { request_id: request_id.clone(), request }).await?;
        Ok(request_id)
    }

    /// The next thing the CLI said; `None` after [`SessionOutput::Exited`] was returned.
    pub async fn next(&mut self) -> Option<SessionOutput> {
        self.output.recv().await
    }

    /// The last few kilobytes of the CLI's stderr.
    pub async fn stderr_tail(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().await).into_owned()
    }

    pub fn killer(&self) -> ProcessKiller {
        self.killer.clone()
    }

    /// Stop the process group now.
    pub fn kill(&self) {
        self.killer.kill();
    }

    /// Close stdin so the CLI finishes on its own, and kill it if it has not after `grace`.
    pub async fn shutdown(mut self, grace: Duration) {
        let (closed_tx, _) = mpsc::channel(1);
        // Dropping the only sender closes stdin once the writer has flushed what it had.
        drop(std::mem::replace(&mut self.input, closed_tx));
        let exited = tokio::time::timeout(grace, async {
            while let Some(output) = self.output.recv().await {
                if matches!(output, SessionOutput::Exited { .. }) {
                    break;
                }
            }
        })
        .await;
        if exited.is_err() {
            self.killer.kill();
        }
    }
}

impl Drop for AgentSession {
    fn drop(&mut self) {
        // A session dropped without `shutdown` must not leave an agent running.
        self.killer.kill();
    }
}

async fn write_inputs(
    mut stdin: Box<dyn AsyncWrite + Send + Unpin>,
    mut inputs: mpsc::Receiver<CliInput>,
) {
    while let Some(input) = inputs.recv().await {
        let mut line = match serde_json::to_vec(&input) {
            Ok(line) => line,
            Err(err) => {
                tracing::error!(%err, "could not encode a CLI input");
                continue;
            }
        };
        line.push(b'\n');
        if let Err(err) = async {
            stdin.write_all(&line).await?;
            stdin.flush().await
        }
        .await
        {
            tracing::debug!(%err, "CLI stdin closed");
            return;
        }
    }
    let _ = stdin.shutdown().await;
}

async fn collect_tail(mut stderr: Box<dyn AsyncRead + Send + Unpin>, tail: Arc<Mutex<Vec<u8>>>) {
    let mut chunk = vec![0u8; 4096];
    while let Ok(n) = stderr.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let mut tail = tail.lock().await;
        tail.extend_from_slice(&chunk[..n]);
        let excess = tail.len().saturating_sub(STDERR_TAIL);
        tail.drain(..excess);
    }
}

async fn read_outputs(
    stdout: Box<dyn AsyncRead + Send + Unpin>,
    mut exit: agentbox_sandbox::ExitFuture,
    stderr_task: tokio::task::JoinHandle<()>,
    stderr: Arc<Mutex<Vec<u8>>>,
    alive: Arc<AtomicBool>,
    outputs: mpsc::Sender<SessionOutput>,
) {
    let mut reader = LineReader::new(stdout);
    let mut status = None;
    let mut drain_deadline = None;
    loop {
        let line = tokio::select! {
            line = reader.next_line() => line,
            result = &mut exit, if status.is_none() => {
                status = Some(result);
                alive.store(false, Ordering::SeqCst);
                drain_deadline = Some(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
                continue;
            }
            () = sleep_until(drain_deadline) => break,
        };
        let output = match line {
            Ok(Some(Line::Text(text))) if text.is_empty() => continue,
            Ok(Some(Line::Text(text))) => parse_line(text),
            Ok(Some(Line::TooLong(len))) => {
                tracing::warn!(len, "dropped an over-long line from the CLI");
                SessionOutput::Noise(format!("[a {len}-byte line was dropped]"))
            }
            Ok(None) => break,
            Err(err) => {
                tracing::warn!(%err, "reading the CLI's stdout failed");
                break;
            }
        };
        if outputs.send(output).await.is_err() {
            // Nobody listens any more; the session was dropped and killed the process.
            return;
        }
    }
    let status = match status {
        Some(result) => result,
        None => exit.await,
    };
    alive.store(false, Ordering::SeqCst);
    let _ = tokio::time::timeout(DRAIN_AFTER_EXIT, stderr_task).await;
    let stderr = String::from_utf8_lossy(&stderr.lock().await).into_owned();
    let status = status.map_err(|err| tracing::warn!(%err, "waiting for the CLI failed")).ok();
    let _ = outputs.send(SessionOutput::Exited { status, stderr }).await;
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// A JSON protocol message, or noise. Noise is kept (not dropped silently) so that it can be
/// logged; it never becomes a chat event.
pub fn parse_line(text: String) -> SessionOutput {
    if !text.starts_with('{') {
        return SessionOutput::Noise(text);
    }
    match serde_json::from_str::<CliOutput>(&text) {
        Ok(message) => SessionOutput::Message(message),
        Err(err) => {
            tracing::warn!(%err, "unexpected line from the CLI");
            SessionOutput::Noise(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_has_the_stream_json_flags() {
        let options = SessionOptions {
            model: "claude-sonnet-4-5".into(),
            cli_permission_mode: "default".into(),
            resume: Some("abc".into()),
            env: vec![("ANTHROPIC_API_KEY".into(), "k".into())],
            ..SessionOptions::default()
        };
        let args = options.args().join(" ");
        assert_eq!(
            args,
            "-p --input-format stream-json --output-format stream-json --verbose \
             --include-partial-messages --permission-prompt-tool stdio --permission-mode default --model claude-sonnet-4-5 \
             --resume abc --system-prompt-snapshot off"
        );
        let tuned = SessionOptions {
            append_system_prompt: Some("Be brief.".into()),
            max_thinking_tokens: Some(0),
            allow_bypass: true,
            mcp_config: Some(r#"{"mcpServers":{}}"#.into()),
            ..options.clone()
        };
        let args = tuned.args().join(" ");
        assert!(
            args.ends_with(
                "--append-system-prompt Be brief. --system-prompt-snapshot off \
                 --max-thinking-tokens 0 --allow-dangerously-skip-permissions \
                 --mcp-config {\"mcpServers\":{}}"
            ),
            "{args}"
        );
        let env = options.environment();
        assert!(env.contains(&("DISABLE_TELEMETRY".into(), "1".into())));
        assert!(env.contains(&("ANTHROPIC_API_KEY".into(), "k".into())));
    }

    #[test]
    fn non_json_lines_are_noise() {
        assert!(matches!(parse_line("Warning: x".into()), SessionOutput::Noise(_)));
        assert!(matches!(parse_line("{broken".into()), SessionOutput::Noise(_)));
        assert!(matches!(
            parse_line(r#"{"type":"system","subtype":"init","session_id":"s"}"#.into()),
            SessionOutput::Message(CliOutput::System(_))
        ));
    }
}
