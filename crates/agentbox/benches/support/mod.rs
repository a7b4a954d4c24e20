//! What the benchmarks share: a server's base settings, starting it in this process, and
//! a signed-in API client (register, sign in, chats, one turn timed to its end).

use std::path::Path;
use std::time::{Duration, Instant};

use agentbox::config::{Config, ServeArgs};
use agentbox::serve::Server;
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The benchmarks' account. It must pass the password rules of
/// `crates/server/src/credentials.rs` (8+ characters, not a common password, not the
/// email): [`Client::sign_in`] fails loudly if a rule change refuses it.
pub const EMAIL: &str = "bench@example.com";
pub const PASSWORD: &str = "benchmark";

/// A server's settings for a benchmark: `data` as its data directory, a free loopback
/// port, a placeholder API key and `model_url` (a mock) as the model, if any.
pub fn config(data: &Path, model_url: Option<String>) -> Config {
    ServeArgs {
        data_dir: Some(data.to_owned()),
        bind: Some("127.0.0.1:0".parse().unwrap()),
        anthropic_api_key: Some("bench".into()),
        anthropic_base_url: model_url,
        ..ServeArgs::default()
    }
    .resolve()
    .unwrap()
}

/// Settings for a server that runs turns: the project's CLI, and this build's binary as
/// the sandboxes' init (a benchmark is another program).
pub fn turn_config(data: &Path, model_url: String) -> Config {
    let mut config = config(data, Some(model_url));
    config.claude_path = Some(cli());
    config.sandbox.init_program = Some(env!("CARGO_BIN_EXE_agentbox").into());
    config
}

/// The pinned CLI, installed by `scripts/setup`.
pub fn cli() -> std::path::PathBuf {
    agentbox_agent::CliInstall::project_install()
        .expect("run scripts/setup first: the CLI is not installed")
}

/// Start a server in this process; its API's base URL (`http://host:port/api/v1`).
pub async fn start(config: Config) -> (Server, String) {
    let server = agentbox::serve::start(config).await.unwrap();
    let base = format!("http://{}/api/v1", server.address);
    (server, base)
}

/// A signed-in client of one server.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
    pub token: String,
}

impl Client {
    /// Register the benchmark account on the server at `base` (its first account) and
    /// sign in.
    pub async fn sign_in(base: &str) -> Self {
        let http = reqwest::Client::new();
        let credentials = json!({"email": EMAIL, "password": PASSWORD});
        let registered =
            http.post(format!("{base}/auth/register")).json(&credentials).send().await.unwrap();
        let status = registered.status();
        assert_eq!(status, StatusCode::CREATED, "register: {}", registered.text().await.unwrap());
        Self::log_in(base, http).await
    }

    /// Sign in with the benchmark account, registered before (on any node of the same
    /// database).
    pub async fn log_in(base: &str, http: reqwest::Client) -> Self {
        let credentials = json!({"email": EMAIL, "password": PASSWORD});
        let response =
            http.post(format!("{base}/auth/login")).json(&credentials).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let tokens: Value = response.json().await.unwrap();
        let token = tokens["access_token"].as_str().unwrap().to_owned();
        Self { base: base.to_owned(), http, token }
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base)).bearer_auth(&self.token)
    }

    /// A new chat in `permission_mode`; its id.
    pub async fn new_chat(&self, permission_mode: &str) -> String {
        let response =
            self.post("/chats").json(&json!({"permission_mode": permission_mode})).send().await;
        let response = response.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let chat: Value = response.json().await.unwrap();
        chat["id"].as_str().unwrap().to_owned()
    }

    /// One turn of `prompt`: POST → its `message_completed` on a stream opened before the
    /// POST (from the chat's latest event on). Fails unless the turn completed.
    pub async fn turn(&self, chat: &str, prompt: &str) -> Duration {
        let current: Value =
            self.get(&format!("/chats/{chat}")).send().await.unwrap().json().await.unwrap();
        let response = self
            .get(&format!("/chats/{chat}/stream"))
            .header("Last-Event-ID", current["last_event_id"].to_string())
            .send()
            .await
            .unwrap();
        let mut body = response.bytes_stream();
        let started = Instant::now();
        let posted = self
            .post(&format!("/chats/{chat}/messages"))
            .json(&json!({"prompt": prompt}))
            .send()
            .await
            .unwrap();
        assert_eq!(posted.status(), StatusCode::ACCEPTED);
        let posted: Value = posted.json().await.unwrap();
        let message_id = posted["message_id"].as_str().expect("no message id").to_owned();
        let mut text = String::new();
        while let Some(chunk) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text.contains("event: message_completed") && text.contains(&message_id) {
                let elapsed = started.elapsed();
                assert!(text.contains("\"status\":\"completed\""), "{text}");
                return elapsed;
            }
        }
        panic!("the stream ended before the turn did");
    }
}

/// Logs to stderr when `RUST_LOG` is set (a benchmark is quiet otherwise).
pub fn init_logs() {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
}

/// The sample at quantile `q` (0 to 1) of `sorted`.
pub fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}
