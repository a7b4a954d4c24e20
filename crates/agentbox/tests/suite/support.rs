//! Test harness: a server on a free port with its own data directory and mock model, an
//! HTTP client that speaks the API, and an SSE reader.

use std::path::{Path, PathBuf};
use std::time::Duration;

use agentbox::config::{Config, ServeArgs};
use agentbox::serve::{Server, start};
use agentbox_store::testing::TestDatabase;
use futures::StreamExt;
use mock_llm::MockLlm;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// No test step waits longer than this for the server; only a hang reaches it.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// The pinned CLI, installed by `scripts/setup`; tests never run without it.
pub fn cli_path() -> PathBuf {
    if let Some(path) = std::env::var_os("AGENTBOX_CLAUDE_PATH") {
        return path.into();
    }
    agentbox_agent::CliInstall::project_install()
        .expect("the Claude Code CLI is not installed: run scripts/setup --dev (or scripts/test)")
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        ))
        .with_test_writer()
        .try_init();
}

/// A range of 100 sandbox user ids no other test server of this run uses.
pub fn unique_uid_base() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let slot = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 100;
    400_000 + (std::process::id() % 1000) * 10_000 + slot * 100
}

/// Settings for a test server in `data_dir`, talking to `mock`.
pub fn test_config(data_dir: &Path, mock: &MockLlm) -> Config {
    let mut config = ServeArgs {
        data_dir: Some(data_dir.to_owned()),
        bind: Some("127.0.0.1:0".parse().unwrap()),
        anthropic_api_key: Some("test-key".into()),
        anthropic_base_url: Some(mock.base_url()),
        claude_path: Some(cli_path()),
        ..ServeArgs::default()
    }
    .resolve()
    .unwrap();
    // Fail fast on scripted model errors instead of retrying with backoff.
    config.cli_max_retries = 0;
    // Sandboxes run this build's init, and every test server gets user ids of its own, so
    // that concurrent tests never share a sandbox user (or its process limit).
    config.sandbox.init_program = Some(env!("CARGO_BIN_EXE_agentbox").into());
    config.sandbox.uid_base = unique_uid_base();
    config.interrupt_grace = Duration::from_secs(3);
    config.db_pool = test_pool();
    config
}

/// Which database a test server stores its data in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    /// A file in the server's data directory (the default).
    Sqlite,
    /// A PostgreSQL database created for the test (see `agentbox_store::testing`) and
    /// dropped after it.
    Postgres,
}

impl Db {
    /// A database for one test: `None` for SQLite (the data directory's file), else a new
    /// PostgreSQL database, dropped with the guard.
    pub async fn create(self, label: &str) -> Option<TestDatabase> {
        match self {
            Self::Sqlite => None,
            Self::Postgres => Some(TestDatabase::create(label).await.unwrap()),
        }
    }
}

/// A small pool: many test servers share one PostgreSQL server.
pub fn test_pool() -> agentbox_store::PoolSettings {
    agentbox_store::PoolSettings {
        size: Some(1),
        max_overflow: Some(7),
        ..agentbox_store::PoolSettings::default()
    }
}

pub struct TestServer {
    /// Kept so the server lives as long as the test.
    pub _server: Server,
    pub base: String,
    pub mock: MockLlm,
    /// The server's data directory (inside `_tmp`).
    pub data_dir: PathBuf,
    _tmp: tempfile::TempDir,
    pub http: reqwest::Client,
    /// The PostgreSQL database, if the server runs on one; dropped after the server.
    pub database: Option<TestDatabase>,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server on `db`, otherwise like [`TestServer::start`].
    pub async fn start_on(db: Db, label: &str) -> Self {
        let database = db.create(label).await;
        let url = database.as_ref().map(|d| d.url.clone());
        let mut server = Self::start_with(|config| {
            if let Some(url) = url {
                config.database_url = url;
            }
        })
        .await;
        server.database = database;
        server
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        init_logs();
        let mock = MockLlm::start().await.unwrap();
        let tmp = tempfile::tempdir().unwrap();
        // A directory that does not exist yet, as on a first start.
        let mut config = test_config(&tmp.path().join("agentbox-data"), &mock);
        adjust(&mut config);
        let data_dir = config.data_dir.clone();
        let server = start(config).await.unwrap();
        let base = format!("http://{}", server.address);
        Self {
            _server: server,
            base,
            mock,
            data_dir,
            _tmp: tmp,
            http: reqwest::Client::new(),
            database: None,
        }
    }

    pub fn sandbox_home(&self, chat: &str) -> PathBuf {
        self.data_dir.join("sandboxes").join(chat).join("home")
    }

    pub fn api(&self) -> Api {
        Api { base: self.base.clone(), http: self.http.clone(), token: None }
    }

    /// A new account, signed in.
    pub async fn user(&self, email: &str) -> Api {
        TestServerless(self.api()).user(email).await
    }
}

/// Account helpers for a server the test did not start in-process.
pub struct TestServerless(pub Api);

impl TestServerless {
    pub async fn user(&self, email: &str) -> Api {
        let api = self.0.clone();
        let (status, body) = api
            .call(
                Method::POST,
                "/api/v1/auth/register",
                Some(json!({"email": email, "password": "correct horse"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (status, body) = api
            .call(
                Method::POST,
                "/api/v1/auth/login",
                Some(json!({"email": email, "password": "correct horse"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        Api { token: Some(body["access_token"].as_str().unwrap().to_owned()), ..api }
    }
}

/// An API client, signed in or not.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
    pub token: Option<String>,
}

impl Api {
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Status and JSON body (`null` when the body is empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response =
            tokio::time::timeout(PATIENCE, request.send()).await.expect("request hung").unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, json)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, None).await
    }

    pub async fn new_chat(&self) -> String {
        let (status, chat) = self.call(Method::POST, "/api/v1/chats", Some(json!({}))).await;
        assert_eq!(status, StatusCode::CREATED, "{chat}");
        chat["id"].as_str().unwrap().to_owned()
    }

    /// Post a prompt; returns the assistant message id.
    pub async fn send(&self, chat: &str, prompt: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/api/v1/chats/{chat}/messages"),
                Some(json!({"prompt": prompt})),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body["message_id"].as_str().unwrap().to_owned()
    }

    pub async fn messages(&self, chat: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/api/v1/chats/{chat}/messages")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().unwrap().clone()
    }

    pub async fn stream(&self, chat: &str, last_event_id: Option<i64>) -> Sse {
        let mut request = self.request(Method::GET, &format!("/api/v1/chats/{chat}/stream"));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Sse { body: Box::pin(response.bytes_stream()), buffer: Vec::new() }
    }

    /// Every event of the turn that ends with `message_id`, from the stream.
    pub async fn turn_events(&self, chat: &str, message_id: &str) -> Vec<SseEvent> {
        self.stream(chat, None).await.until_completed(message_id).await
    }
}

/// One SSE event as received.
#[derive(Clone, Debug)]
pub struct SseEvent {
    pub id: i64,
    pub event: String,
    pub data: Value,
}

pub struct Sse {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    /// Bytes received but not yet parsed; a chunk may end inside a UTF-8 character.
    buffer: Vec<u8>,
}

impl Sse {
    /// The next event (comments and keep-alives skipped). Keep-alives do not extend the
    /// wait: an event must arrive within [`PATIENCE`].
    pub async fn next(&mut self) -> SseEvent {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let frame = String::from_utf8(frame).unwrap();
                let (mut id, mut event, mut data) = (None, None, String::new());
                for line in frame.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse().unwrap());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if let (Some(id), Some(event)) = (id, event) {
                    return SseEvent { id, event, data: serde_json::from_str(&data).unwrap() };
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .expect("no SSE event arrived")
                .expect("the SSE stream ended")
                .unwrap();
            self.buffer.extend_from_slice(&chunk);
        }
    }

    /// Wait for the server to end the stream; the events that came before the end.
    pub async fn until_closed(&mut self) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        loop {
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .expect("the SSE stream stayed open");
            match chunk {
                None | Some(Err(_)) => return seen,
                Some(Ok(bytes)) => seen.push(String::from_utf8_lossy(&bytes).into_owned()),
            }
        }
    }

    /// Events up to and including the `message_completed` of `message_id`.
    pub async fn until_completed(&mut self, message_id: &str) -> Vec<SseEvent> {
        let mut events = Vec::new();
        loop {
            let event = self.next().await;
            let done = event.event == "message_completed" && event.data["message_id"] == message_id;
            events.push(event);
            if done {
                return events;
            }
        }
    }

    /// Events until one of type `kind` (included).
    pub async fn until(&mut self, kind: &str) -> Vec<SseEvent> {
        let mut events = Vec::new();
        loop {
            let event = self.next().await;
            let done = event.event == kind;
            events.push(event);
            if done {
                return events;
            }
        }
    }
}

/// Event types, with the subtype for `system` events.
pub fn kinds(events: &[SseEvent]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e.data["subtype"].as_str() {
            Some(sub) if e.event == "system" => format!("system/{sub}"),
            _ => e.event.clone(),
        })
        .collect()
}

pub fn assert_strictly_increasing(events: &[SseEvent]) {
    for pair in events.windows(2) {
        assert!(pair[1].id > pair[0].id, "ids not increasing: {} then {}", pair[0].id, pair[1].id);
    }
    for event in events {
        assert_eq!(event.data["seq"], event.id, "the id and the seq of an event differ");
    }
}

/// `agentbox serve` as a separate process on `data_dir` (for crash and restart tests);
/// returns it with its base URL. A restart passes the same `uid_base`, as a real one would.
pub async fn spawn_server(
    data_dir: &Path,
    mock: &MockLlm,
    uid_base: u32,
) -> (tokio::process::Child, String) {
    spawn_server_on(data_dir, None, mock, uid_base).await
}

/// [`spawn_server`] on the database at `database_url` (`None`: the data directory's SQLite).
pub async fn spawn_server_on(
    data_dir: &Path,
    database_url: Option<&str>,
    mock: &MockLlm,
    uid_base: u32,
) -> (tokio::process::Child, String) {
    spawn_node(&["serve"], data_dir, database_url, mock, uid_base).await
}

/// The binary run with `command` (`serve`, `serve --no-worker`, `worker`, each with flags)
/// as a separate process, like [`spawn_server_on`].
pub async fn spawn_node(
    command_args: &[&str],
    data_dir: &Path,
    database_url: Option<&str>,
    mock: &MockLlm,
    uid_base: u32,
) -> (tokio::process::Child, String) {
    let (child, base, _log) =
        spawn_node_logged(command_args, data_dir, database_url, mock, uid_base).await;
    (child, base)
}

/// [`spawn_node`], with the server's log lines (after the one that says where it listens).
pub async fn spawn_node_logged(
    command_args: &[&str],
    data_dir: &Path,
    database_url: Option<&str>,
    mock: &MockLlm,
    uid_base: u32,
) -> (tokio::process::Child, String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::AsyncBufReadExt;
    #[allow(clippy::disallowed_methods)] // The test starts the real binary, not agent code.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_agentbox"));
    command
        .args(command_args)
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("ANTHROPIC_API_KEY", "test-key")
        .env("ANTHROPIC_BASE_URL", mock.base_url())
        .env("AGENTBOX_CLAUDE_PATH", cli_path())
        .env("AGENTBOX_CLI_MAX_RETRIES", "0")
        .env("AGENTBOX_SANDBOX_UID_BASE", uid_base.to_string())
        .env("AGENTBOX_DB_POOL_SIZE", "1")
        .env("AGENTBOX_DB_MAX_OVERFLOW", "7")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(url) = database_url {
        command.env("DATABASE_URL", url);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let base = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("listening on ").nth(1) {
                // The address ends the text line, or the message of a JSON one.
                return rest
                    .split(|c: char| c.is_whitespace() || c == '"')
                    .next()
                    .unwrap()
                    .to_owned();
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server did not start");
    // Keep draining the log so the server never blocks on a full pipe.
    let (sender, log) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            // Nobody may be listening; the pipe is drained all the same.
            let _ = sender.send(line);
        }
    });
    (child, base, log)
}

/// Every file under `dir` whose bytes contain one of `markers` (what a test of a secret
/// looks for: none).
pub fn files_containing(dir: &Path, markers: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                let bytes = std::fs::read(entry.path()).unwrap_or_default();
                for marker in markers {
                    if bytes.windows(marker.len()).any(|w| w == marker.as_bytes()) {
                        found.push(format!("{} holds {marker}", entry.path().display()));
                    }
                }
            }
        }
    }
    found
}
