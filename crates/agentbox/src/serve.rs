//! `agentbox serve`: put the parts together, recover from a previous crash, serve until a
//! signal, then stop turns gracefully.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use agentbox_agent::CliInstall;
use agentbox_bus::EventBus;
use agentbox_protocol::api::ComponentHealth;
use agentbox_runs::{ModelAccess, RunnerConfig, TurnRunner};
use agentbox_sandbox::SandboxProvider;
use agentbox_sandbox::host::HostProvider;
use agentbox_server::{AppState, AuthKeys, Limits, ServerInfo, component};
use agentbox_store::Store;
use anyhow::Context;
use rand::RngCore;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

const REFRESH_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// A started server.
pub struct Server {
    pub address: std::net::SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Stop accepting requests, end streams, interrupt running turns and wait for all of it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }

    /// Wait until the server stops by itself (it does not, unless it fails).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await?
    }
}

/// Run until Ctrl-C or SIGTERM, then shut down gracefully.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let server = start(config).await?;
    let shutdown = server.shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: interrupting running turns");
        shutdown.cancel();
    });
    server.wait().await
}

/// Open everything, close what a crash left open, and start serving on `config.bind`.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    tracing::debug!(?config, "configuration");
    prepare_data_dir(&config.data_dir)?;
    let secret = secret_key(&config)?;
    let store = Store::open(&config.database_url)
        .await
        .with_context(|| format!("cannot open the database in {}", config.data_dir.display()))?;

    // The mock model lives as long as the server in demo mode.
    let mut demo_mock = None;
    let model_access = if config.demo {
        let mock = mock_llm::MockLlm::start().await.context("cannot start the demo mock model")?;
        tracing::warn!(
            url = %mock.base_url(),
            "DEMO MODE: the agent talks to agentbox's scripted mock model; replies are scripted, not Claude"
        );
        let access = ModelAccess {
            api_key: Some("demo-mode-no-real-key".into()),
            auth_token: None,
            base_url: Some(mock.base_url()),
            demo: true,
        };
        demo_mock = Some(mock);
        access
    } else {
        ModelAccess {
            api_key: config.anthropic_api_key.clone(),
            auth_token: config.anthropic_auth_token.clone(),
            base_url: config.anthropic_base_url.clone(),
            demo: false,
        }
    };
    let model_health = if model_access.demo {
        component("demo", "scripted replies from agentbox's mock model (serve --demo)")
    } else if model_access.is_configured() {
        component("ok", model_access.base_url.clone().unwrap_or_else(|| "Anthropic API".into()))
    } else {
        tracing::warn!(
            "no model credentials: turns will fail until ANTHROPIC_API_KEY is set (or try `agentbox serve --demo`)"
        );
        component(
            "not_configured",
            "set ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN, or run with --demo",
        )
    };

    let (cli_health, tools) = match CliInstall::locate(config.claude_path.as_deref()) {
        Ok(cli) => {
            let version = cli.version().await;
            tracing::info!(path = %cli.path.display(), source = cli.source, version = ?version, "Claude Code CLI found");
            let health = ComponentHealth {
                status: if version.is_some() { "ok" } else { "error" }.into(),
                detail: Some(format!("{} (from {})", cli.path.display(), cli.source)),
                version,
                isolated: None,
            };
            (health, [("claude".to_owned(), cli.path)].into())
        }
        Err(reason) => {
            tracing::warn!("{reason}");
            (component("unavailable", reason), Default::default())
        }
    };

    let host = HostProvider::new(config.data_dir.join("sandboxes"), tools);
    let reaped = host.reap_orphans();
    if reaped > 0 {
        tracing::warn!(reaped, "stopped sandbox processes left running by the previous server");
    }
    let sandboxes: Arc<dyn SandboxProvider> = Arc::new(host);
    tracing::warn!(
        provider = sandboxes.name(),
        "the `host` sandbox provider isolates nothing: the agent runs unconfined as this server's user"
    );

    let bus = Arc::new(EventBus::new());
    let runner = TurnRunner::new(
        store.clone(),
        bus.clone(),
        sandboxes,
        RunnerConfig {
            model_access,
            max_concurrent_turns: config.max_concurrent_turns,
            interrupt_grace: config.interrupt_grace,
            idle_session_timeout: config.idle_session,
            cli_max_retries: config.cli_max_retries,
            append_system_prompt: None,
        },
    );
    let recovered = runner.recover().await.context("cannot close turns left open by a crash")?;
    if recovered > 0 {
        tracing::warn!(recovered, "marked turns cut off by the last shutdown as interrupted");
    }

    let shutdown = CancellationToken::new();
    let state = AppState {
        store: store.clone(),
        bus,
        runner: runner.clone(),
        auth: Arc::new(AuthKeys::new(
            secret.as_bytes(),
            config.access_token_ttl,
            REFRESH_TOKEN_TTL,
        )),
        limits: Limits { max_prompt_bytes: config.max_prompt_bytes, ..Limits::default() },
        info: Arc::new(ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            default_model: config.default_model.clone(),
            cli: cli_health,
            model: model_health,
        }),
        shutdown: shutdown.clone(),
    };
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, data_dir = %config.data_dir.display(), "agentbox is listening on http://{address}");
    let stopping = shutdown.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, agentbox_server::app(state))
            .with_graceful_shutdown(stopping.cancelled_owned())
            .await?;
        runner.shutdown().await;
        store.close().await;
        if let Some(mock) = demo_mock {
            mock.shutdown().await;
        }
        Ok(())
    });
    Ok(Server { address, shutdown, task })
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        () = term => {}
    }
}

/// The data directory, private to this user.
pub fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
}

/// `SECRET_KEY`, or the key in `<data-dir>/secret.key`, created (mode 0600) on first start.
fn secret_key(config: &Config) -> anyhow::Result<String> {
    if let Some(key) = &config.secret_key {
        return Ok(key.clone());
    }
    let path = config.data_dir.join("secret.key");
    match std::fs::read_to_string(&path) {
        Ok(key) => {
            let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the secret key was readable by others; making it private (0600)");
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
            }
            let key = key.trim().to_owned();
            anyhow::ensure!(key.len() >= 32, "the secret key in {} is too short", path.display());
            Ok(key)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            file.write_all(key.as_bytes())?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "generated a new secret key");
            Ok(key)
        }
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}
