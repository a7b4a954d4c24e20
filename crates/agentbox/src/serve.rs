//! `agentbox serve`: put the parts together, recover from a previous crash, serve until a
//! signal, then stop turns gracefully: the first SIGTERM (or Ctrl-C) drains the node (no new
//! turns, SSE clients told to reconnect, running turns given `--shutdown-grace-secs`), a
//! second one exits at once.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;

use agentbox_agent::CliInstall;
use agentbox_bus::EventBus;
use agentbox_protocol::api::ComponentHealth;
use agentbox_runs::{ChatSecrets, ModelAccess, NodeRole, NodeSettings, RunnerConfig, TurnRunner};
use agentbox_sandbox::SandboxProvider;
use agentbox_sandbox::egress::{AllowList, Egress, EgressPolicy};
use agentbox_sandbox::host::HostProvider;
use agentbox_sandbox::local::{LocalConfig, LocalProvider};
use agentbox_secrets::SealingKey;
use agentbox_server::{AppState, AuthKeys, Limits, ServerInfo, component};
use agentbox_store::Store;
use anyhow::Context;
use rand::RngCore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::Config;

/// How long a terminal's shell waits for its client to reconnect.
const TERMINAL_GRACE: std::time::Duration = std::time::Duration::from_secs(60);
const REFRESH_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// A started server.
pub struct Server {
    pub address: std::net::SocketAddr,
    /// The server's store and bus, for benchmarks that append and publish events the way a
    /// turn does, without a CLI.
    pub store: Store,
    pub bus: Arc<EventBus>,
    /// The task scheduler, for tests that tick it on a manual clock.
    pub scheduler: Arc<agentbox_runs::schedule::Scheduler>,
    shutdown: CancellationToken,
    draining: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Stop accepting requests, end streams, interrupt running turns and wait for all of it.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await?
    }

    /// What the first SIGTERM does: refuse new turns, tell SSE clients to reconnect, let
    /// running turns finish within the shutdown grace, interrupt the rest, then stop.
    /// [`Server::wait`] returns when it is done.
    pub fn drain(&self) {
        self.draining.cancel();
    }

    /// Wait until the server stops by itself (it does not, unless it fails).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await?
    }
}

/// Run until Ctrl-C or SIGTERM, then shut down gracefully; a second signal exits at once.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let mut signals = Signals::new()?;
    let server = start(config).await?;
    let draining = server.draining.clone();
    let (store, bus) = (server.store.clone(), server.bus.clone());
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!("shutting down: no new turns; running turns may finish");
        draining.cancel();
        signals.next().await;
        tracing::warn!(
            "a second signal: exiting now; turns still running are closed as interrupted at the next start"
        );
        // Every event is committed before it is published, so nothing a client saw can be
        // lost. Events still on their way to Redis go out (other nodes' streams would find
        // them in the log anyway), and closing the pool lets SQLite fold its write-ahead log
        // back in; both bounded, so a connection a turn holds is not waited for long.
        let quickly = std::time::Duration::from_secs(2);
        let _ = tokio::time::timeout(quickly, bus.flush()).await;
        let _ = tokio::time::timeout(quickly, store.close()).await;
        std::process::exit(FORCED_EXIT);
    });
    server.wait().await
}

/// The exit status after a second signal: 128 + SIGTERM, what a shell reports for a
/// process that SIGTERM ended.
const FORCED_EXIT: i32 = 143;

/// Open everything, close what a crash left open, and start serving on `config.bind`.
pub async fn start(config: Config) -> anyhow::Result<Server> {
    tracing::debug!(?config, "configuration");
    raise_open_file_limit();
    prepare_data_dir(&config.data_dir)?;
    let secret = secret_key(&config)?;
    let sealing_key = SealingKey::derive(secret.as_bytes());
    create_private_database(&config.database_url)?;
    let store =
        Store::open_with(&config.database_url, &config.db_pool).await.with_context(|| {
            format!("cannot open the database {}", agentbox_store::redact_url(&config.database_url))
        })?;

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
    make_private(&config.data_dir);
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

    let sandboxes = sandbox_provider(&config, &model_access, tools, &store, &sealing_key).await?;

    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let address = listener.local_addr()?;
    let node = NodeSettings {
        id: node_id(&config)?,
        role: config.node_role,
        // Where API nodes reach this node (a worker's internal API): as configured, else
        // the listener's own address.
        address: Some(config.node_address.clone().unwrap_or_else(|| format!("http://{address}"))),
        // Several heartbeats within the expiry, so that one slow beat expires nobody.
        heartbeat: (config.node_expiry / 6).max(std::time::Duration::from_millis(100)),
        expiry: config.node_expiry,
        ..NodeSettings::default()
    };
    tracing::info!(node = %node.id, role = node.role.as_str(), "this node");
    let role = node.role;

    let bus = Arc::new(match &config.redis {
        None => EventBus::new(),
        Some(redis) => {
            tracing::info!(prefix = %redis.prefix, "chat events travel on Redis Streams");
            EventBus::redis(redis.clone()).context("REDIS_URL")?
        }
    });
    let runner = TurnRunner::new(
        store.clone(),
        bus.clone(),
        sandboxes.clone(),
        RunnerConfig {
            model_access,
            require_user_model_key: config.require_user_model_key,
            sealing_key,
            max_concurrent_turns: config.max_concurrent_turns,
            interrupt_grace: config.interrupt_grace,
            idle_session_timeout: config.idle_session,
            max_kept_cli: config.max_kept_cli,
            cli_max_retries: config.cli_max_retries,
            append_system_prompt: None,
            permissions: config.permissions.clone(),
            checkpoints: config.checkpoints.clone(),
            node,
            git: agentbox_runs::GitSettings {
                // Plain-http repositories only where the operator opened the network.
                http_hosts: AllowList::parse(&config.sandbox.allow_hosts)
                    .map_err(anyhow::Error::msg)?,
                github_api_url: config.github_api_url.clone(),
                ..agentbox_runs::GitSettings::default()
            },
        },
    );
    let recovered = runner.recover().await.context("cannot close turns left open by a crash")?;
    if recovered > 0 {
        tracing::warn!(recovered, "marked turns cut off by the last shutdown as interrupted");
    }

    let (server_store, server_bus) = (store.clone(), bus.clone());
    let shutdown = CancellationToken::new();
    let draining = CancellationToken::new();
    runner.start_node(shutdown.clone());
    let clock: Arc<dyn agentbox_runs::schedule::WallClock> = match &config.tasks.clock {
        Some(clock) => clock.clone(),
        None => Arc::new(agentbox_runs::schedule::SystemWallClock),
    };
    let scheduler = agentbox_runs::schedule::Scheduler::new(
        store.clone(),
        runner.clone(),
        clock,
        config.tasks.settings.clone(),
    );
    // Nodes that serve the API schedule (a worker only runs turns): their claims make any
    // number of them safe, and a turn they submit goes through the node's queue, to a
    // worker when the node runs none.
    // It stops when a drain (or a stop) begins: a due time reached while the node refuses
    // turns stays unclaimed for the next node or start (its missed-run policy applies).
    let scheduling = CancellationToken::new();
    if role != NodeRole::Worker {
        scheduler.start(scheduling.clone());
    }
    let state = AppState {
        scheduler: scheduler.clone(),
        store: store.clone(),
        bus: bus.clone(),
        runner: runner.clone(),
        auth: Arc::new(AuthKeys::new(
            secret.as_bytes(),
            config.access_token_ttl,
            REFRESH_TOKEN_TTL,
        )),
        accounts: Arc::new({
            let mut accounts =
                agentbox_server::Accounts::new(config.registration, Default::default());
            accounts.invite_ttl = config.invite_ttl;
            accounts.audit = agentbox_server::AuditRetention::new(config.audit_retention);
            accounts.limits = config.turn_limits;
            accounts.trusted_proxies = config.trusted_proxies.clone();
            accounts
        }),
        limits: Limits { max_prompt_bytes: config.max_prompt_bytes, ..Limits::default() },
        info: Arc::new(ServerInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            default_model: config.default_model.clone(),
            cli: cli_health,
            model: model_health,
        }),
        shutdown: shutdown.clone(),
        draining: draining.clone(),
        metrics: agentbox_server::MetricsAccess::new(config.metrics_token.as_deref()),
        terminals: agentbox_server::TerminalRegistry::new(TERMINAL_GRACE),
        previews: Arc::new(agentbox_server::Previews::new(
            secret.as_bytes(),
            config.preview_domain.clone(),
        )),
    };
    if role != NodeRole::Worker {
        agentbox_server::warn_if_not_isolated(&state.previews);
    }
    // Queued prompts meet the per-user limits when the runner starts them after a turn.
    agentbox_server::LimitAdmission::install(&state, sandboxes);
    tracing::info!(%address, data_dir = %config.data_dir.display(), "agentbox is listening on http://{address}");
    let (stopping, drain) = (shutdown.clone(), draining.clone());
    let shutdown_grace = config.shutdown_grace;
    let task = tokio::spawn(async move {
        let router = match role {
            NodeRole::Worker => agentbox_server::worker_app(state),
            NodeRole::All | NodeRole::Api => agentbox_server::app(state),
        };
        let http = tokio::spawn(
            axum::serve(
                agentbox_server::ApiListener(listener),
                // The peer's address keys the sign-in rate limits.
                router.into_make_service_with_connect_info::<agentbox_server::PeerAddress>(),
            )
            .with_graceful_shutdown(stopping.clone().cancelled_owned())
            .into_future(),
        );
        // A drain lets running turns finish while the server still answers (refusing new
        // turns); a stop interrupts them at once.
        let grace = tokio::select! {
            () = drain.cancelled() => shutdown_grace,
            () = stopping.cancelled() => std::time::Duration::ZERO,
        };
        scheduling.cancel();
        runner.begin_shutdown();
        runner.shutdown(grace).await;
        // Streams and terminals end, and the HTTP server stops.
        stopping.cancel();
        http.await??;
        // The turns' last events, to the other nodes' subscribers.
        bus.flush().await;
        store.close().await;
        if let Some(mock) = demo_mock {
            mock.shutdown().await;
        }
        Ok(())
    });
    Ok(Server {
        address,
        store: server_store,
        bus: server_bus,
        scheduler,
        shutdown,
        draining,
        task,
    })
}

/// This node's id: the configured one, else the one kept in the data directory, made at
/// the first start. Keeping it lets a restarted node recognise its own turns at once.
fn node_id(config: &Config) -> anyhow::Result<String> {
    if let Some(id) = &config.node_id {
        return Ok(id.clone());
    }
    let path = config.data_dir.join("node-id");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim().to_owned();
            crate::config::check_node_id(&id)
                .with_context(|| format!("{} holds no valid node id", path.display()))?;
            Ok(id)
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let id = NodeSettings::generated_id();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            writeln!(file, "{id}")?;
            Ok(id)
        }
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The configured sandbox provider, ready to use.
async fn sandbox_provider(
    config: &Config,
    model_access: &ModelAccess,
    tools: agentbox_sandbox::Tools,
    store: &Store,
    sealing_key: &SealingKey,
) -> anyhow::Result<Arc<dyn SandboxProvider>> {
    let root = config.data_dir.join("sandboxes");
    if config.sandbox_provider == "host" {
        let host = HostProvider::new(root, tools);
        let reaped = host.reap_orphans();
        if reaped > 0 {
            tracing::warn!(reaped, "stopped sandbox processes left running by the previous server");
        }
        tracing::warn!(
            "the `host` sandbox provider isolates nothing: the agent runs unconfined as this server's user"
        );
        return Ok(Arc::new(host));
    }
    // Sandboxes run as users of their own that must walk through the data directory to their
    // workspace: it becomes traversable (not listable), and everything the server writes in it
    // stays private to the server.
    std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o711))?;
    let model_host = model_host(model_access.base_url.as_deref())?;
    let allowed = AllowList::parse(&config.sandbox.allow_hosts)
        .and_then(|list| Ok(list.merge(&AllowList::parse(&[model_host.as_str()])?)))
        .map_err(anyhow::Error::msg)?;
    tracing::info!(model = %model_host, others = config.sandbox.allow_hosts.len(), "sandboxes may reach the model API and the allowed hosts");
    let init_program = match &config.sandbox.init_program {
        Some(path) => path.clone(),
        None => std::env::current_exe().context("cannot find this binary, the sandboxes' init")?,
    };
    let provider = LocalProvider::new(LocalConfig {
        root,
        init_program,
        init_args: vec!["sandbox-init".into()],
        tools,
        limits: config.sandbox.limits,
        uid_base: config.sandbox.uid_base,
        idle_pause: config.sandbox.idle_pause,
        disk_check_interval: config.sandbox.disk_check_interval,
        egress: Arc::new(ServerEgress {
            allowed,
            store: store.clone(),
            sealing_key: sealing_key.clone(),
            user_hosts_private: config.sandbox.user_hosts_private,
            github_api: AllowList::parse(&[
                self::model_host(Some(&config.github_api_url))?.as_str()
            ])
            .map_err(anyhow::Error::msg)?,
        }),
    })
    .await
    .context(
        "cannot use the `local` sandbox provider (install bubblewrap with scripts/setup, or run \
         with --sandbox-provider host to run the agent unconfined)",
    )?;
    Ok(provider)
}

/// `host:port` of the model API, which sandboxes may always reach.
pub fn model_host(base_url: Option<&str>) -> anyhow::Result<String> {
    let Some(url) = base_url else { return Ok("api.anthropic.com:443".into()) };
    let (scheme, rest) =
        url.split_once("://").context("ANTHROPIC_BASE_URL must be an http(s) URL")?;
    let authority = rest.split('/').next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    let has_port = authority.rsplit_once(':').is_some_and(|(_, port)| port.parse::<u16>().is_ok())
        && !authority.ends_with(']');
    Ok(if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{}", if scheme == "https" { 443 } else { 80 })
    })
}

/// Where sandboxes may connect: the model API, the server's allow-list, the hosts the
/// chat's owner added in their settings, and the owner's own model API when their secrets
/// hold model credentials (`ANTHROPIC_BASE_URL`, else the Anthropic API); both are read at
/// each connection, so changes apply at once and never to another user's sandboxes.
struct ServerEgress {
    allowed: AllowList,
    store: Store,
    sealing_key: SealingKey,
    /// Whether users' own hosts may be on loopback or private networks (operator's choice).
    user_hosts_private: bool,
    /// The GitHub API's host, open to chats started from a repository (pull requests).
    github_api: AllowList,
}

#[async_trait::async_trait]
impl EgressPolicy for ServerEgress {
    async fn decide(&self, sandbox_id: &str, host: &str, port: u16) -> Egress {
        if self.allowed.allows(host, port) {
            return Egress::Allowed;
        }
        let Ok(chat_id) = uuid::Uuid::parse_str(sandbox_id) else { return Egress::Denied };
        let Ok(Some(chat)) = self.store.chat_unscoped(chat_id).await else {
            return Egress::Denied;
        };
        let allowed = match self.store.user_settings(chat.user_id).await {
            Ok(settings) => AllowList::parse(&settings.sandbox_allowed_hosts)
                .is_ok_and(|list| list.allows(host, port)),
            Err(err) => {
                tracing::warn!(%sandbox_id, %err, "could not read the user's allowed hosts");
                false
            }
        };
        let allowed = allowed
            || self.is_users_model_host(chat.user_id, chat_id, host, port).await
            || self.is_chats_repository_host(chat_id, host, port).await;
        match allowed {
            false => Egress::Denied,
            // A user's own addition must not open the host's or the network's services.
            true if self.user_hosts_private => Egress::Allowed,
            true => Egress::PublicOnly,
        }
    }
}

/// SIGTERM and SIGINT (Ctrl-C), listened to from the start, so that a second one is seen
/// however soon it follows the first.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
        })
    }

    /// The next SIGTERM or SIGINT.
    async fn next(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

impl ServerEgress {
    /// Whether `host:port` serves the repository the chat was started from, or is the
    /// GitHub API its pull requests go to (for that chat alone, under the same rule as the
    /// user's own hosts).
    async fn is_chats_repository_host(&self, chat_id: Uuid, host: &str, port: u16) -> bool {
        match self.store.chat_repository(chat_id).await {
            Ok(Some(repository)) => {
                self.github_api.allows(host, port)
                    || agentbox_runs::git::check_url(&repository.url, &self.allowed).is_ok_and(
                        |url| {
                            url.port == port
                                && url.host == host.trim_end_matches('.').to_ascii_lowercase()
                        },
                    )
            }
            Ok(None) => false,
            Err(err) => {
                tracing::warn!(%chat_id, %err, "could not read the chat's repository for the egress proxy");
                false
            }
        }
    }

    /// Whether `host:port` is the model API of the chat owner's own credentials.
    async fn is_users_model_host(
        &self,
        user_id: Uuid,
        chat_id: Uuid,
        host: &str,
        port: u16,
    ) -> bool {
        match ChatSecrets::load(&self.store, &self.sealing_key, user_id, chat_id).await {
            Ok(secrets) if secrets.has_own_model_access() => model_host(secrets.base_url())
                .ok()
                .and_then(|model| AllowList::parse(&[model.as_str()]).ok())
                .is_some_and(|list| list.allows(host, port)),
            Ok(_) => false,
            Err(err) => {
                tracing::warn!(%chat_id, %err, "could not open the user's secrets for the egress proxy");
                false
            }
        }
    }
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

/// Create the SQLite file with mode 0600 before SQLite does: its `-wal` and `-shm` files
/// take the database file's mode, so the whole database stays private whatever the umask.
pub fn create_private_database(url: &str) -> anyhow::Result<()> {
    if agentbox_store::Backend::of_url(url)? != agentbox_store::Backend::Sqlite {
        return Ok(());
    }
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
    let path = path.split('?').next().unwrap_or(path);
    if path.is_empty() || path.contains(":memory:") {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create the database file {path}"))?;
    Ok(())
}

/// Files of earlier versions may have been created world-readable; make them private.
fn make_private(data_dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(data_dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                let _ =
                    std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(0o600));
            }
        }
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

/// Every walk over a workspace holds one descriptor per directory level (up to 1024), and
/// every SSE stream, terminal and sandbox holds some; the common soft limit of 1024 open files
/// (systemd's default) would make a deep walk fail for want of descriptors. The hard limit is
/// the operator's; the soft one is raised to it, as servers commonly do.
pub fn raise_open_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(err) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!(%err, soft, hard, "could not raise the open-file limit");
            }
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(%err, "could not read the open-file limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::model_host;

    #[test]
    fn the_model_host_comes_from_the_base_url() {
        assert_eq!(model_host(None).unwrap(), "api.anthropic.com:443");
        assert_eq!(model_host(Some("http://127.0.0.1:8089")).unwrap(), "127.0.0.1:8089");
        assert_eq!(
            model_host(Some("https://gateway.example.com/anthropic")).unwrap(),
            "gateway.example.com:443"
        );
        assert_eq!(model_host(Some("http://user:pw@proxy.local/v1")).unwrap(), "proxy.local:80");
        assert!(model_host(Some("not a url")).is_err());
    }
}
