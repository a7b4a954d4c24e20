//! Configuration in two layers: what the operator said (flags, environment, an optional
//! TOML file: each optional) and the resolved [`Config`] with every default filled in.
//! Precedence: flag, then environment variable, then file, then default.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agentbox_agent::AutoPolicy;
use agentbox_bus::RedisConfig;
use agentbox_runs::CheckpointSettings;
use agentbox_runs::{NodeRole, PermissionSettings};
use agentbox_sandbox::egress::AllowList;
use agentbox_sandbox::local::limits::Limits;
use agentbox_server::{RegistrationMode, TurnLimits};
use agentbox_store::{Backend, PoolSettings, redact_url};
use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

/// `agentbox serve` options. Each can also come from the environment or the config file.
#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys as the long flags, with `_`).
    #[arg(long, env = "AGENTBOX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "AGENTBOX_BIND")]
    pub bind: Option<SocketAddr>,
    /// Where agentbox keeps its database, secret key and sandboxes
    /// [default: $XDG_DATA_HOME/agentbox or ~/.local/share/agentbox].
    #[arg(long, env = "AGENTBOX_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`
    /// [default: sqlite in the data directory].
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Database connections kept open (sqlx `min_connections`)
    /// [default: 30 on PostgreSQL, 0 on SQLite].
    #[arg(long, env = "AGENTBOX_DB_POOL_SIZE")]
    pub db_pool_size: Option<u32>,
    /// Connections opened beyond the pool size under load, closed again after a minute idle
    /// (`max_connections` = size + overflow) [default: 20 on PostgreSQL, 8 on SQLite].
    #[arg(long, env = "AGENTBOX_DB_MAX_OVERFLOW")]
    pub db_max_overflow: Option<u32>,
    /// Close and replace a connection this many seconds after it was opened (sqlx
    /// `max_lifetime`); 0 never [default: 1800 on PostgreSQL, never on SQLite].
    #[arg(long, env = "AGENTBOX_DB_POOL_RECYCLE_SECS")]
    pub db_pool_recycle_secs: Option<u64>,
    /// Redis URL (`redis://[user:password@]host:port/db`): carry chat events on Redis
    /// Streams instead of the in-process bus [default: in-process].
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Put before every Redis key, so several installations can share one Redis
    /// [default: `agentbox:`].
    #[arg(long, env = "AGENTBOX_REDIS_PREFIX")]
    pub redis_prefix: Option<String>,
    /// Key that signs access tokens [default: generated into <data-dir>/secret.key].
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Anthropic API key the agent uses.
    #[arg(long, env = "ANTHROPIC_API_KEY", hide_env_values = true)]
    pub anthropic_api_key: Option<String>,
    /// Bearer token for an Anthropic-compatible gateway, instead of an API key.
    #[arg(long, env = "ANTHROPIC_AUTH_TOKEN", hide_env_values = true)]
    pub anthropic_auth_token: Option<String>,
    /// Model API endpoint [default: Anthropic's].
    #[arg(long, env = "ANTHROPIC_BASE_URL")]
    pub anthropic_base_url: Option<String>,
    /// Run agentbox's scripted mock model in-process and use it: replies are scripted.
    #[arg(long, env = "AGENTBOX_DEMO")]
    pub demo: bool,
    /// The Claude Code CLI binary [default: `claude` on PATH, then the project's install].
    #[arg(long, env = "AGENTBOX_CLAUDE_PATH")]
    pub claude_path: Option<PathBuf>,
    /// Where turns run: `local` (an isolated sandbox per chat) or `host` (isolates nothing)
    /// [default: local].
    #[arg(long, env = "AGENTBOX_SANDBOX_PROVIDER")]
    pub sandbox_provider: Option<String>,
    /// Hosts sandboxes may reach through the egress proxy, comma-separated (`host`,
    /// `host:port`, `*.domain`); the model API's host is always allowed
    /// [default: common package registries].
    #[arg(long, env = "AGENTBOX_SANDBOX_ALLOW_HOSTS")]
    pub sandbox_allow_hosts: Option<String>,
    /// Let the hosts users add for their own sandboxes (in their settings) be on loopback or
    /// private networks; without it those reach public addresses only.
    #[arg(long, env = "AGENTBOX_SANDBOX_USER_HOSTS_PRIVATE")]
    pub sandbox_user_hosts_private: bool,
    /// Memory per sandbox in MiB (per process where cgroup v2 is missing) [default: 4096].
    #[arg(long, env = "AGENTBOX_SANDBOX_MEMORY_MB")]
    pub sandbox_memory_mb: Option<u64>,
    /// Processes per sandbox [default: 512].
    #[arg(long, env = "AGENTBOX_SANDBOX_PROCESSES")]
    pub sandbox_processes: Option<u64>,
    /// CPU per sandbox, 100 = one core (cgroup v2 only) [default: 200].
    #[arg(long, env = "AGENTBOX_SANDBOX_CPU_PERCENT")]
    pub sandbox_cpu_percent: Option<u32>,
    /// Workspace disk quota per sandbox in MiB [default: 10240].
    #[arg(long, env = "AGENTBOX_SANDBOX_DISK_MB")]
    pub sandbox_disk_mb: Option<u64>,
    /// Size of each sandbox's private /tmp in MiB [default: 512].
    #[arg(long, env = "AGENTBOX_SANDBOX_TMP_MB")]
    pub sandbox_tmp_mb: Option<u64>,
    /// Pause a sandbox after this many idle seconds; 0 never [default: 900].
    #[arg(long, env = "AGENTBOX_SANDBOX_IDLE_PAUSE_SECS")]
    pub sandbox_idle_pause_secs: Option<u64>,
    /// First host user id given to sandboxes when the server runs as root [default: 200000].
    #[arg(long, env = "AGENTBOX_SANDBOX_UID_BASE")]
    pub sandbox_uid_base: Option<u32>,
    /// Keep at most this many checkpoints per chat; 0 keeps all [default: 100].
    #[arg(long, env = "AGENTBOX_CHECKPOINT_KEEP_LAST")]
    pub checkpoint_keep_last: Option<usize>,
    /// Drop checkpoints older than this many days (the newest always stays); 0 keeps all
    /// [default: 30].
    #[arg(long, env = "AGENTBOX_CHECKPOINT_MAX_AGE_DAYS")]
    pub checkpoint_max_age_days: Option<u64>,
    /// Workspace paths checkpoints skip, comma-separated globs
    /// [default: .cache,node_modules/.cache,__pycache__,.npm/_cacache].
    #[arg(long, env = "AGENTBOX_CHECKPOINT_EXCLUDES")]
    pub checkpoint_excludes: Option<String>,
    /// Where the chats' checkpoints are kept [default: <data>/checkpoints]. On a cluster,
    /// one directory every worker mounts (NFS, EFS): a chat whose worker is gone is restored
    /// from it on another. Its locks are `flock`s, so a network file system must support
    /// them across machines (Linux NFS emulates them with fcntl locks; NFSv4 or NFSv3 with
    /// lockd).
    #[arg(long, env = "AGENTBOX_CHECKPOINT_STORE")]
    pub checkpoint_store: Option<PathBuf>,
    /// Take no checkpoints (no restore, no fork).
    #[arg(long, env = "AGENTBOX_NO_CHECKPOINTS")]
    pub no_checkpoints: bool,
    /// The program sandboxes run as their init [default: this binary, `sandbox-init`].
    #[arg(long, env = "AGENTBOX_SANDBOX_INIT", hide = true)]
    pub sandbox_init_program: Option<PathBuf>,
    /// Model of new chats [default: claude-sonnet-4-5].
    #[arg(long, env = "AGENTBOX_DEFAULT_MODEL")]
    pub default_model: Option<String>,
    /// Turns running at once; more wait in line [default: 8].
    #[arg(long, env = "AGENTBOX_MAX_CONCURRENT_TURNS")]
    pub max_concurrent_turns: Option<usize>,
    /// Seconds a chat's CLI process stays up after a turn; 0 stops it at once [default: 600].
    #[arg(long, env = "AGENTBOX_IDLE_SESSION_SECS")]
    pub idle_session_secs: Option<u64>,
    /// CLI processes kept between turns at most; a turn ending with this many kept ends the
    /// least recently used one; 0 keeps none [default: 32].
    #[arg(long, env = "AGENTBOX_MAX_KEPT_CLI")]
    pub max_kept_cli: Option<usize>,
    /// Seconds an interrupted turn gets before its CLI is killed [default: 5].
    #[arg(long, env = "AGENTBOX_INTERRUPT_GRACE_SECS")]
    pub interrupt_grace_secs: Option<u64>,
    /// Seconds a shutdown (SIGTERM) lets running turns finish before it interrupts them
    /// [default: 30].
    #[arg(long, env = "AGENTBOX_SHUTDOWN_GRACE_SECS")]
    pub shutdown_grace_secs: Option<u64>,
    /// Bearer token that `/metrics` asks for; without one `/metrics` is open to anyone who
    /// reaches the port.
    #[arg(long, env = "AGENTBOX_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Comma-separated CIDR ranges (or addresses) of the proxies in front of this node,
    /// e.g. `10.0.0.0/8,192.0.2.7`. Only a connection from one of them has its
    /// `X-Forwarded-For` read (the rightmost address that is not a trusted proxy) for the
    /// sign-in rate limits [default: none, the header is ignored].
    #[arg(long, env = "AGENTBOX_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// The origin of port previews, with `{port}` and `{chat}` in it once each
    /// (`p-{port}-{chat}.agentbox.example`, https unless it starts with `http://`; a wildcard
    /// DNS name and certificate). Without it previews are served under `/preview/` on
    /// agentbox's own origin, where a previewed app can read the agentbox session.
    #[arg(long, env = "AGENTBOX_PREVIEW_DOMAIN")]
    pub preview_domain: Option<String>,
    /// The GitHub API that pull requests of chats started from repositories are opened
    /// through (GitHub Enterprise: `https://HOST/api/v3`) [default: https://api.github.com].
    #[arg(long, env = "AGENTBOX_GITHUB_API_URL")]
    pub github_api_url: Option<String>,
    /// How often the CLI retries a failed model call [default: 3].
    #[arg(long, env = "AGENTBOX_CLI_MAX_RETRIES")]
    pub cli_max_retries: Option<u32>,
    /// Largest prompt accepted, in bytes [default: 262144].
    #[arg(long, env = "AGENTBOX_MAX_PROMPT_BYTES")]
    pub max_prompt_bytes: Option<usize>,
    /// Lifetime of access tokens in seconds [default: 3600].
    #[arg(long, env = "AGENTBOX_ACCESS_TOKEN_SECS")]
    pub access_token_secs: Option<u64>,
    /// Who may create an account: `open`, `closed` (administrators create accounts) or
    /// `invite` (with an administrator's single-use invite). The first account of an empty
    /// server can always be created and is an administrator [default: open].
    #[arg(long, env = "AGENTBOX_REGISTRATION")]
    pub registration: Option<String>,
    /// Hours an invite stays usable [default: 168].
    #[arg(long, env = "AGENTBOX_INVITE_TTL_HOURS")]
    pub invite_ttl_hours: Option<u64>,
    /// Turns one user may have running at once, over all their chats; 0 is no limit
    /// [default: 0].
    #[arg(long, env = "AGENTBOX_MAX_RUNNING_TURNS_PER_USER")]
    pub max_running_turns_per_user: Option<u32>,
    /// Turns one user may start per UTC day; 0 is no limit [default: 0].
    #[arg(long, env = "AGENTBOX_MAX_TURNS_PER_DAY")]
    pub max_turns_per_day: Option<u32>,
    /// USD one user may spend per UTC day, from the cost the CLI reports; 0 is no limit
    /// [default: 0].
    #[arg(long, env = "AGENTBOX_MAX_SPEND_PER_DAY_USD")]
    pub max_spend_per_day_usd: Option<f64>,
    /// Bytes one chat's workspace may hold, checked before a turn starts and on upload
    /// through the files API; 0 is no limit [default: 0].
    #[arg(long, env = "AGENTBOX_MAX_WORKSPACE_BYTES_PER_CHAT")]
    pub max_workspace_bytes_per_chat: Option<u64>,
    /// Bytes all of one user's workspaces may hold together, checked like the per-chat
    /// limit; 0 is no limit [default: 0].
    #[arg(long, env = "AGENTBOX_MAX_WORKSPACE_BYTES_PER_USER")]
    pub max_workspace_bytes_per_user: Option<u64>,
    /// Sandboxes one user may keep running at once, over all their chats: starting another
    /// stops their least recently used idle one, or is refused when none is idle; 0 is no
    /// limit [default: 0].
    #[arg(long, env = "AGENTBOX_MAX_RUNNING_SANDBOXES_PER_USER")]
    pub max_running_sandboxes_per_user: Option<u32>,
    /// Days the audit log keeps an entry; 0 keeps them all [default: 90].
    #[arg(long, env = "AGENTBOX_AUDIT_RETENTION_DAYS")]
    pub audit_retention_days: Option<u64>,
    /// Log format: `text` or `json` [default: text].
    #[arg(long, env = "AGENTBOX_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Seconds a permission request waits for an answer before it is denied [default: 600].
    #[arg(long, env = "AGENTBOX_PERMISSION_TIMEOUT_SECS")]
    pub permission_timeout_secs: Option<u64>,
    /// Seconds a request for a person in a scheduled task's turn waits before it is denied,
    /// unless the task sets its own [default: 300].
    #[arg(long, env = "AGENTBOX_TASK_PERMISSION_TIMEOUT_SECS")]
    pub task_permission_timeout_secs: Option<u64>,
    /// Runs kept in each scheduled task's history; older ones are deleted [default: 50].
    #[arg(long, env = "AGENTBOX_TASK_HISTORY")]
    pub task_history: Option<usize>,
    /// Offer `bypassPermissions` although the sandbox provider does not isolate the agent.
    #[arg(long, env = "AGENTBOX_ALLOW_BYPASS_WITHOUT_ISOLATION")]
    pub allow_bypass_without_isolation: bool,
    /// Every user brings their own model credentials (`ANTHROPIC_API_KEY`,
    /// `ANTHROPIC_AUTH_TOKEN` or `CLAUDE_CODE_OAUTH_TOKEN` among their secrets): a turn of a
    /// user without them fails with `user_model_key_required`, and the server's are never
    /// used.
    #[arg(long, env = "AGENTBOX_REQUIRE_USER_MODEL_KEY")]
    pub require_user_model_key: bool,
    /// Hosts the `auto` mode lets the agent reach without asking, comma-separated (a host
    /// includes its subdomains) [default: none].
    #[arg(long, env = "AGENTBOX_AUTO_ALLOWED_HOSTS")]
    pub auto_allowed_hosts: Option<String>,
    /// Commands that always ask in `auto` mode, besides the built-in risky ones,
    /// comma-separated [default: none].
    #[arg(long, env = "AGENTBOX_AUTO_RISKY_COMMANDS")]
    pub auto_risky_commands: Option<String>,
    /// This node's id among the installation's nodes: letters, digits, `.`, `_`, `-`, at
    /// most 64 [default: generated at the first start and kept in the data directory's
    /// `node-id`].
    #[arg(long, env = "AGENTBOX_NODE_ID")]
    pub node_id: Option<String>,
    /// The URL other nodes reach this node at, as it registers it (API nodes pass a
    /// worker's file and terminal requests there), e.g. `http://worker-1:8080`
    /// [default: `http://` and the `--bind` address].
    #[arg(long, env = "AGENTBOX_NODE_ADDRESS")]
    pub node_address: Option<String>,
    /// Seconds without a heartbeat after which a node counts as gone: its running turns are
    /// interrupted by any live node [default: 30].
    #[arg(long, env = "AGENTBOX_NODE_EXPIRY_SECS")]
    pub node_expiry_secs: Option<u64>,
    /// An API node: it runs no turns and hands them to the durable queue, where
    /// `agentbox worker` nodes claim them. Needs a database the workers share.
    #[arg(long, env = "AGENTBOX_NO_WORKER")]
    pub no_worker: bool,
}

/// The same settings from a TOML file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    db_pool_size: Option<u32>,
    db_max_overflow: Option<u32>,
    db_pool_recycle_secs: Option<u64>,
    redis_url: Option<String>,
    redis_prefix: Option<String>,
    secret_key: Option<String>,
    anthropic_api_key: Option<String>,
    anthropic_auth_token: Option<String>,
    anthropic_base_url: Option<String>,
    demo: Option<bool>,
    claude_path: Option<PathBuf>,
    sandbox_provider: Option<String>,
    sandbox_allow_hosts: Option<Vec<String>>,
    sandbox_user_hosts_private: Option<bool>,
    sandbox_memory_mb: Option<u64>,
    sandbox_processes: Option<u64>,
    sandbox_cpu_percent: Option<u32>,
    sandbox_disk_mb: Option<u64>,
    sandbox_tmp_mb: Option<u64>,
    sandbox_idle_pause_secs: Option<u64>,
    sandbox_uid_base: Option<u32>,
    checkpoint_store: Option<PathBuf>,
    checkpoint_keep_last: Option<usize>,
    checkpoint_max_age_days: Option<u64>,
    checkpoint_excludes: Option<Vec<String>>,
    no_checkpoints: Option<bool>,
    default_model: Option<String>,
    max_concurrent_turns: Option<usize>,
    idle_session_secs: Option<u64>,
    max_kept_cli: Option<usize>,
    interrupt_grace_secs: Option<u64>,
    shutdown_grace_secs: Option<u64>,
    metrics_token: Option<String>,
    trusted_proxies: Option<String>,
    preview_domain: Option<String>,
    github_api_url: Option<String>,
    cli_max_retries: Option<u32>,
    max_prompt_bytes: Option<usize>,
    access_token_secs: Option<u64>,
    registration: Option<String>,
    invite_ttl_hours: Option<u64>,
    audit_retention_days: Option<u64>,
    max_running_turns_per_user: Option<u32>,
    max_turns_per_day: Option<u32>,
    max_spend_per_day_usd: Option<f64>,
    max_workspace_bytes_per_chat: Option<u64>,
    max_workspace_bytes_per_user: Option<u64>,
    max_running_sandboxes_per_user: Option<u32>,
    log_format: Option<String>,
    permission_timeout_secs: Option<u64>,
    task_permission_timeout_secs: Option<u64>,
    task_history: Option<usize>,
    allow_bypass_without_isolation: Option<bool>,
    require_user_model_key: Option<bool>,
    auto_allowed_hosts: Option<Vec<String>>,
    auto_risky_commands: Option<Vec<String>>,
    node_id: Option<String>,
    node_address: Option<String>,
    node_expiry_secs: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings of the `local` sandbox provider.
#[derive(Clone, Debug)]
pub struct SandboxSettings {
    pub allow_hosts: Vec<String>,
    /// Whether the hosts users add may be on loopback or private networks.
    pub user_hosts_private: bool,
    pub limits: Limits,
    pub idle_pause: Option<Duration>,
    pub uid_base: u32,
    /// The init program; this binary (`agentbox sandbox-init`) when `None`.
    pub init_program: Option<PathBuf>,
    /// How often workspace sizes are checked against the disk quota.
    pub disk_check_interval: Duration,
}

/// Package registries and code hosts a coding agent commonly needs.
pub const DEFAULT_ALLOWED_HOSTS: &[&str] = &[
    "registry.npmjs.org",
    "registry.yarnpkg.com",
    "pypi.org",
    "files.pythonhosted.org",
    "crates.io",
    "index.crates.io",
    "static.crates.io",
    "proxy.golang.org",
    "sum.golang.org",
    "rubygems.org",
    "github.com",
    "codeload.github.com",
    "objects.githubusercontent.com",
    "raw.githubusercontent.com",
];

/// Every setting resolved. `Debug` leaves secrets out.
#[derive(Clone)]
pub struct Config {
    pub bind: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    /// The database's connection pool.
    pub db_pool: PoolSettings,
    /// The Redis Streams bus; `None` is the in-process bus.
    pub redis: Option<RedisConfig>,
    pub secret_key: Option<String>,
    pub anthropic_api_key: Option<String>,
    pub anthropic_auth_token: Option<String>,
    pub anthropic_base_url: Option<String>,
    pub demo: bool,
    /// `--require-user-model-key`.
    pub require_user_model_key: bool,
    pub claude_path: Option<PathBuf>,
    pub sandbox_provider: String,
    pub sandbox: SandboxSettings,
    pub checkpoints: CheckpointSettings,
    pub default_model: String,
    pub max_concurrent_turns: usize,
    pub idle_session: Duration,
    /// `--max-kept-cli`.
    pub max_kept_cli: usize,
    pub interrupt_grace: Duration,
    /// How long a shutdown lets running turns finish.
    pub shutdown_grace: Duration,
    pub metrics_token: Option<String>,
    /// `--trusted-proxies`: whose `X-Forwarded-For` the sign-in limits believe.
    pub trusted_proxies: Vec<agentbox_server::IpNet>,
    /// Where previews are served; `None`: under `/preview/` on agentbox's origin.
    pub preview_domain: Option<agentbox_server::DomainPattern>,
    /// Where pull requests are opened (`--github-api-url`).
    pub github_api_url: String,
    pub cli_max_retries: u32,
    pub max_prompt_bytes: usize,
    pub access_token_ttl: Duration,
    pub registration: RegistrationMode,
    pub invite_ttl: Duration,
    /// `None` keeps the audit log forever.
    pub audit_retention: Option<Duration>,
    pub turn_limits: TurnLimits,
    pub log_format: LogFormat,
    /// Permission timeout, bypass without isolation, and the `auto` policy.
    pub permissions: PermissionSettings,
    /// `None`: the one kept in the data directory (made at the first start).
    pub node_id: Option<String>,
    /// `--node-address`: what this node registers as its address.
    pub node_address: Option<String>,
    pub node_expiry: Duration,
    /// `All` for `serve`, `Api` for `serve --no-worker`, `Worker` for `worker`.
    pub node_role: NodeRole,
    /// The task scheduler's settings, and its clock (tests set a manual one).
    pub tasks: TaskConfig,
}

/// The task scheduler's settings and the clock it reads.
#[derive(Clone, Debug, Default)]
pub struct TaskConfig {
    pub settings: agentbox_runs::schedule::TaskSettings,
    /// `None`: the system's clock. A manual clock stops the scheduler's own ticking: its
    /// owner calls `Scheduler::tick`.
    pub clock: Option<std::sync::Arc<dyn agentbox_runs::schedule::WallClock>>,
}

/// `--github-api-url`: an http(s) URL without credentials, its trailing `/` dropped.
fn github_api_url(given: Option<String>) -> anyhow::Result<String> {
    let Some(url) = non_empty(given) else {
        return Ok(agentbox_runs::git::DEFAULT_GITHUB_API.to_owned());
    };
    let url = url.trim().trim_end_matches('/').to_owned();
    let authority = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .map(|rest| rest.split('/').next().unwrap_or_default());
    match authority {
        Some(authority) if !authority.is_empty() && !authority.contains('@') => Ok(url),
        _ => anyhow::bail!("--github-api-url must be an http(s) URL without credentials: {url:?}"),
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |s: &Option<String>| if s.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("data_dir", &self.data_dir)
            .field("database_url", &redact_url(&self.database_url))
            .field("db_pool", &self.db_pool)
            .field("redis", &self.redis)
            .field("secret_key", &set(&self.secret_key))
            .field("anthropic_api_key", &set(&self.anthropic_api_key))
            .field("anthropic_auth_token", &set(&self.anthropic_auth_token))
            .field("anthropic_base_url", &self.anthropic_base_url)
            .field("demo", &self.demo)
            .field("require_user_model_key", &self.require_user_model_key)
            .field("claude_path", &self.claude_path)
            .field("sandbox_provider", &self.sandbox_provider)
            .field("sandbox", &self.sandbox)
            .field("checkpoints", &self.checkpoints)
            .field("default_model", &self.default_model)
            .field("max_concurrent_turns", &self.max_concurrent_turns)
            .field("idle_session", &self.idle_session)
            .field("max_kept_cli", &self.max_kept_cli)
            .field("interrupt_grace", &self.interrupt_grace)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("metrics_token", &set(&self.metrics_token))
            .field("trusted_proxies", &self.trusted_proxies)
            .field("github_api_url", &self.github_api_url)
            .field("cli_max_retries", &self.cli_max_retries)
            .field("max_prompt_bytes", &self.max_prompt_bytes)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("registration", &self.registration)
            .field("invite_ttl", &self.invite_ttl)
            .field("audit_retention", &self.audit_retention)
            .field("turn_limits", &self.turn_limits)
            .field("log_format", &self.log_format)
            .field("permissions", &self.permissions)
            .field("node_id", &self.node_id)
            .field("node_address", &self.node_address)
            .field("node_expiry", &self.node_expiry)
            .field("node_role", &self.node_role)
            .field("tasks", &self.tasks)
            .finish()
    }
}

impl ServeArgs {
    pub fn resolve(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = self.data_dir.or(file.data_dir).map_or_else(default_data_dir, Ok)?;
        let database_url = self
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("agentbox.sqlite").display()));
        Backend::of_url(&database_url).map_err(|err| anyhow::anyhow!("DATABASE_URL: {err}"))?;
        let db_pool = PoolSettings {
            size: self.db_pool_size.or(file.db_pool_size),
            max_overflow: self.db_max_overflow.or(file.db_max_overflow),
            recycle: self
                .db_pool_recycle_secs
                .or(file.db_pool_recycle_secs)
                .map(Duration::from_secs),
            idle_timeout: None,
        };
        let redis = match non_empty(self.redis_url.or(file.redis_url)) {
            None => None,
            Some(url) => {
                let prefix = self
                    .redis_prefix
                    .or(file.redis_prefix)
                    .unwrap_or_else(|| "agentbox:".to_owned());
                let config = RedisConfig { url, prefix };
                config.check().map_err(|err| anyhow::anyhow!("REDIS_URL: {err}"))?;
                Some(config)
            }
        };
        let sandbox_provider =
            self.sandbox_provider.or(file.sandbox_provider).unwrap_or_else(|| "local".into());
        if sandbox_provider != "host" && sandbox_provider != "local" {
            bail!(
                "unknown sandbox provider {sandbox_provider:?}: use `local` (an isolated sandbox per \
                 chat) or `host` (runs the agent unconfined on this machine)"
            );
        }
        let allow_hosts: Vec<String> = match self.sandbox_allow_hosts {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(str::to_owned)
                .collect(),
            None => file
                .sandbox_allow_hosts
                .unwrap_or_else(|| DEFAULT_ALLOWED_HOSTS.iter().map(|h| (*h).to_owned()).collect()),
        };
        AllowList::parse(&allow_hosts)
            .map_err(|err| anyhow::anyhow!("AGENTBOX_SANDBOX_ALLOW_HOSTS: {err}"))?;
        let mib = |value: Option<u64>, default: u64| value.unwrap_or(default).max(1) << 20;
        let defaults = Limits::default();
        let sandbox = SandboxSettings {
            allow_hosts,
            user_hosts_private: self.sandbox_user_hosts_private
                || file.sandbox_user_hosts_private.unwrap_or(false),
            limits: Limits {
                memory_bytes: mib(
                    self.sandbox_memory_mb.or(file.sandbox_memory_mb),
                    defaults.memory_bytes >> 20,
                ),
                processes: self
                    .sandbox_processes
                    .or(file.sandbox_processes)
                    .unwrap_or(defaults.processes)
                    .max(16),
                cpu_percent: self
                    .sandbox_cpu_percent
                    .or(file.sandbox_cpu_percent)
                    .unwrap_or(defaults.cpu_percent)
                    .max(1),
                disk_bytes: mib(
                    self.sandbox_disk_mb.or(file.sandbox_disk_mb),
                    defaults.disk_bytes >> 20,
                ),
                tmp_bytes: mib(
                    self.sandbox_tmp_mb.or(file.sandbox_tmp_mb),
                    defaults.tmp_bytes >> 20,
                ),
                open_files: defaults.open_files,
            },
            idle_pause: match self
                .sandbox_idle_pause_secs
                .or(file.sandbox_idle_pause_secs)
                .unwrap_or(900)
            {
                0 => None,
                secs => Some(Duration::from_secs(secs)),
            },
            uid_base: self.sandbox_uid_base.or(file.sandbox_uid_base).unwrap_or(200_000),
            init_program: self.sandbox_init_program,
            disk_check_interval: Duration::from_secs(15),
        };
        let checkpoints = if self.no_checkpoints || file.no_checkpoints.unwrap_or(false) {
            CheckpointSettings::default()
        } else {
            CheckpointSettings {
                root: Some(
                    self.checkpoint_store
                        .or(file.checkpoint_store)
                        .unwrap_or_else(|| data_dir.join("checkpoints")),
                ),
                excludes: match self.checkpoint_excludes {
                    Some(list) => list
                        .split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    None => file.checkpoint_excludes.unwrap_or_else(|| {
                        [".cache", "node_modules/.cache", "__pycache__", ".npm/_cacache"]
                            .map(str::to_owned)
                            .to_vec()
                    }),
                },
                keep_last: match self
                    .checkpoint_keep_last
                    .or(file.checkpoint_keep_last)
                    .unwrap_or(100)
                {
                    0 => None,
                    n => Some(n),
                },
                max_age: match self
                    .checkpoint_max_age_days
                    .or(file.checkpoint_max_age_days)
                    .unwrap_or(30)
                {
                    0 => None,
                    days => Some(Duration::from_secs(days * 24 * 3600)),
                },
            }
        };
        let log_format = match self.log_format.or(file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("unknown log format {other:?}: use `text` or `json`"),
        };
        let trusted_proxies = match self.trusted_proxies.clone().or(file.trusted_proxies.clone()) {
            None => Vec::new(),
            Some(text) => agentbox_server::parse_trusted_proxies(&text)
                .map_err(|reason| anyhow::anyhow!("--trusted-proxies: {reason}"))?,
        };
        let registration = match self.registration.or(file.registration).as_deref() {
            None => RegistrationMode::Open,
            Some(text) => RegistrationMode::parse(text).with_context(|| {
                format!("unknown registration mode {text:?}: use `open`, `closed` or `invite`")
            })?,
        };
        let spend = self.max_spend_per_day_usd.or(file.max_spend_per_day_usd);
        if let Some(usd) = spend
            && !(usd.is_finite() && usd >= 0.0)
        {
            bail!("--max-spend-per-day-usd must be a number of dollars, 0 or more");
        }
        let turn_limits = TurnLimits {
            running_turns: self
                .max_running_turns_per_user
                .or(file.max_running_turns_per_user)
                .filter(|n| *n > 0),
            turns_per_day: self.max_turns_per_day.or(file.max_turns_per_day).filter(|n| *n > 0),
            spend_per_day_usd: spend.filter(|usd| *usd > 0.0),
            workspace_bytes_per_chat: self
                .max_workspace_bytes_per_chat
                .or(file.max_workspace_bytes_per_chat)
                .filter(|n| *n > 0),
            workspace_bytes_total: self
                .max_workspace_bytes_per_user
                .or(file.max_workspace_bytes_per_user)
                .filter(|n| *n > 0),
            running_sandboxes: self
                .max_running_sandboxes_per_user
                .or(file.max_running_sandboxes_per_user)
                .filter(|n| *n > 0),
        };
        let preview_domain = non_empty(self.preview_domain.or(file.preview_domain))
            .map(|pattern| agentbox_server::DomainPattern::parse(&pattern))
            .transpose()
            .map_err(|reason| anyhow::anyhow!(reason))?;
        let secret_key = self.secret_key.or(file.secret_key);
        if let Some(key) = &secret_key
            && key.len() < 32
        {
            bail!("SECRET_KEY must be at least 32 characters long");
        }
        let node_id = self.node_id.or(file.node_id);
        if let Some(id) = &node_id {
            check_node_id(id)?;
        }
        let node_address = non_empty(self.node_address.clone().or(file.node_address.clone()));
        if let Some(address) = &node_address
            && !url::Url::parse(address)
                .is_ok_and(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
        {
            bail!("--node-address {address:?} must be an http:// or https:// URL");
        }
        let node_expiry = self.node_expiry_secs.or(file.node_expiry_secs).unwrap_or(30);
        if node_expiry < 2 {
            bail!(
                "--node-expiry-secs must be at least 2 (heartbeats come several times within it)"
            );
        }
        let tasks = TaskConfig {
            settings: agentbox_runs::schedule::TaskSettings {
                permission_timeout: Duration::from_secs(
                    self.task_permission_timeout_secs
                        .or(file.task_permission_timeout_secs)
                        .unwrap_or(300)
                        .max(1),
                ),
                keep_runs: self.task_history.or(file.task_history).unwrap_or(50).max(1),
                ..Default::default()
            },
            clock: None,
        };
        Ok(Config {
            tasks,
            node_role: if self.no_worker { NodeRole::Api } else { NodeRole::All },
            node_id,
            node_address,
            node_expiry: Duration::from_secs(node_expiry),
            bind: self
                .bind
                .or(file.bind)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir,
            database_url,
            db_pool,
            redis,
            secret_key,
            anthropic_api_key: non_empty(self.anthropic_api_key.or(file.anthropic_api_key)),
            anthropic_auth_token: non_empty(
                self.anthropic_auth_token.or(file.anthropic_auth_token),
            ),
            anthropic_base_url: non_empty(self.anthropic_base_url.or(file.anthropic_base_url)),
            demo: self.demo || file.demo.unwrap_or(false),
            require_user_model_key: self.require_user_model_key
                || file.require_user_model_key.unwrap_or(false),
            claude_path: self.claude_path.or(file.claude_path),
            sandbox_provider,
            sandbox,
            checkpoints,
            default_model: self
                .default_model
                .or(file.default_model)
                .unwrap_or_else(|| "claude-sonnet-4-5".into()),
            max_concurrent_turns: self
                .max_concurrent_turns
                .or(file.max_concurrent_turns)
                .unwrap_or(8)
                .max(1),
            idle_session: Duration::from_secs(
                self.idle_session_secs.or(file.idle_session_secs).unwrap_or(600),
            ),
            max_kept_cli: self.max_kept_cli.or(file.max_kept_cli).unwrap_or(32),
            interrupt_grace: Duration::from_secs(
                self.interrupt_grace_secs.or(file.interrupt_grace_secs).unwrap_or(5),
            ),
            shutdown_grace: Duration::from_secs(
                self.shutdown_grace_secs.or(file.shutdown_grace_secs).unwrap_or(30),
            ),
            metrics_token: non_empty(self.metrics_token.or(file.metrics_token)),
            trusted_proxies,
            preview_domain,
            github_api_url: github_api_url(self.github_api_url.or(file.github_api_url))?,
            cli_max_retries: self.cli_max_retries.or(file.cli_max_retries).unwrap_or(3),
            max_prompt_bytes: self.max_prompt_bytes.or(file.max_prompt_bytes).unwrap_or(256 * 1024),
            access_token_ttl: Duration::from_secs(
                self.access_token_secs.or(file.access_token_secs).unwrap_or(3600).max(60),
            ),
            registration,
            invite_ttl: Duration::from_secs(
                self.invite_ttl_hours.or(file.invite_ttl_hours).unwrap_or(168).max(1) * 3600,
            ),
            audit_retention: match self
                .audit_retention_days
                .or(file.audit_retention_days)
                .unwrap_or(90)
            {
                0 => None,
                days => Some(Duration::from_secs(days * 24 * 3600)),
            },
            turn_limits,
            log_format,
            permissions: PermissionSettings {
                timeout: Duration::from_secs(
                    self.permission_timeout_secs
                        .or(file.permission_timeout_secs)
                        .unwrap_or(600)
                        .max(1),
                ),
                allow_bypass_without_isolation: self.allow_bypass_without_isolation
                    || file.allow_bypass_without_isolation.unwrap_or(false),
                auto: AutoPolicy {
                    allowed_hosts: list(self.auto_allowed_hosts, file.auto_allowed_hosts),
                    risky_commands: list(self.auto_risky_commands, file.auto_risky_commands),
                },
            },
        })
    }
}

/// A node id is shown in logs and error events and compared as text: keep it plain.
pub fn check_node_id(id: &str) -> anyhow::Result<()> {
    let plain = id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if id.is_empty() || id.len() > 64 || !plain {
        bail!("the node id {id:?} must be 1 to 64 letters, digits, '.', '_' or '-'");
    }
    Ok(())
}

/// A comma-separated list from a flag or the environment, else a list from the file.
fn list(flag: Option<String>, file: Option<Vec<String>>) -> Vec<String> {
    let items = match flag {
        Some(text) => text.split(',').map(str::to_owned).collect(),
        None => file.unwrap_or_default(),
    };
    items.into_iter().map(|item| item.trim().to_owned()).filter(|item| !item.is_empty()).collect()
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text)
        .with_context(|| format!("the config file {} is not valid", path.display()))
}

fn default_data_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("agentbox"));
    }
    // As root, sandboxes run as users of their own who must be able to walk to their
    // workspace; root's home is closed to them, /var/lib is not.
    if nix::unistd::geteuid().is_root() {
        return Ok(PathBuf::from("/var/lib/agentbox"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).context(
        "neither --data-dir, XDG_DATA_HOME nor HOME is set: cannot choose a data directory",
    )?;
    Ok(PathBuf::from(home).join(".local/share/agentbox"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServeArgs {
        ServeArgs { data_dir: Some("/tmp/agentbox-test".into()), ..ServeArgs::default() }
    }

    #[test]
    fn defaults_are_local_and_safe() {
        let config = args().resolve().unwrap();
        assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(config.database_url, "sqlite:///tmp/agentbox-test/agentbox.sqlite");
        assert_eq!(config.sandbox_provider, "local");
        assert!(config.sandbox.allow_hosts.iter().any(|h| h == "registry.npmjs.org"));
        assert_eq!(config.sandbox.idle_pause, Some(Duration::from_secs(900)));
        assert!(!config.demo);
    }

    #[test]
    fn the_running_sandboxes_flag_is_the_default_limit_and_zero_is_none() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let parse = |value: &str| {
            let cli = <Cli as clap::Parser>::try_parse_from([
                "agentbox",
                "--data-dir",
                "/tmp/agentbox-test",
                "--max-running-sandboxes-per-user",
                value,
            ])
            .unwrap();
            cli.serve.resolve().unwrap().turn_limits
        };
        let limits = parse("2");
        assert_eq!(limits.running_sandboxes, Some(2));
        assert_eq!(limits.values().running_sandboxes, Some(2));
        assert_eq!(parse("0").running_sandboxes, None);
        assert_eq!(args().resolve().unwrap().turn_limits.running_sandboxes, None);
    }

    #[test]
    fn the_checkpoint_store_defaults_to_the_data_directory_and_can_be_shared() {
        let config = args().resolve().unwrap();
        assert_eq!(
            config.checkpoints.root.as_deref(),
            Some(std::path::Path::new("/tmp/agentbox-test/checkpoints"))
        );
        let shared = ServeArgs { checkpoint_store: Some("/mnt/shared/ck".into()), ..args() };
        let config = shared.resolve().unwrap();
        assert_eq!(
            config.checkpoints.root.as_deref(),
            Some(std::path::Path::new("/mnt/shared/ck"))
        );
        let off =
            ServeArgs { checkpoint_store: Some("/mnt/x".into()), no_checkpoints: true, ..args() };
        assert_eq!(off.resolve().unwrap().checkpoints.root, None);
    }

    #[test]
    fn node_settings_are_checked() {
        let config = args().resolve().unwrap();
        assert_eq!((config.node_id, config.node_role), (None, NodeRole::All));
        assert_eq!(config.node_expiry, Duration::from_secs(30));
        let api = ServeArgs { no_worker: true, node_id: Some("api-1.eu_west".into()), ..args() };
        let config = api.resolve().unwrap();
        assert_eq!(
            (config.node_id.as_deref(), config.node_role),
            (Some("api-1.eu_west"), NodeRole::Api)
        );
        for bad in ["", "a b", "é", &"n".repeat(65)] {
            let refused = ServeArgs { node_id: Some(bad.into()), ..args() }.resolve();
            assert!(refused.is_err(), "{bad:?}");
        }
        let refused = ServeArgs { node_expiry_secs: Some(1), ..args() }.resolve();
        assert!(refused.is_err());
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agentbox.toml");
        std::fs::write(
            &file,
            "bind = \"0.0.0.0:9000\"\ndefault_model = \"from-file\"\nidle_session_secs = 7\n\
             max_kept_cli = 3\n",
        )
        .unwrap();
        let config =
            ServeArgs { config: Some(file), default_model: Some("from-flag".into()), ..args() }
                .resolve()
                .unwrap();
        assert_eq!(config.bind.to_string(), "0.0.0.0:9000");
        assert_eq!(config.default_model, "from-flag");
        assert_eq!(config.idle_session, Duration::from_secs(7));
        assert_eq!(config.max_kept_cli, 3);
        assert_eq!(args().resolve().unwrap().max_kept_cli, 32);
        let none = ServeArgs { max_kept_cli: Some(0), ..args() }.resolve().unwrap();
        assert_eq!(none.max_kept_cli, 0);
    }

    #[test]
    fn trusted_proxies_come_from_the_flag_or_the_file_and_default_to_none() {
        assert!(args().resolve().unwrap().trusted_proxies.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agentbox.toml");
        std::fs::write(&file, "trusted_proxies = \"10.0.0.0/8, 192.0.2.7\"\n").unwrap();
        let shown = |config: Config| -> Vec<String> {
            config.trusted_proxies.iter().map(ToString::to_string).collect()
        };
        let from_file = ServeArgs { config: Some(file.clone()), ..args() }.resolve().unwrap();
        assert_eq!(shown(from_file), ["10.0.0.0/8", "192.0.2.7/32"]);
        let flag = ServeArgs { config: Some(file), trusted_proxies: Some("::1".into()), ..args() };
        assert_eq!(shown(flag.resolve().unwrap()), ["::1/128"]);
        let bad = ServeArgs { trusted_proxies: Some("10.0.0.0/99".into()), ..args() }.resolve();
        assert!(format!("{:#}", bad.unwrap_err()).contains("--trusted-proxies"));
    }

    #[test]
    fn the_node_address_is_a_url_or_the_bind_address() {
        assert_eq!(args().resolve().unwrap().node_address, None);
        let set =
            |address: &str| ServeArgs { node_address: Some(address.into()), ..args() }.resolve();
        assert_eq!(
            set("http://worker-1:8080").unwrap().node_address.as_deref(),
            Some("http://worker-1:8080")
        );
        for bad in ["worker-1:8080", "ftp://w", "http://"] {
            assert!(set(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_file_keys_and_unsupported_settings_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "bnid = \"x\"\n").unwrap();
        let err = ServeArgs { config: Some(file), ..args() }.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("bnid"), "{err:#}");
        let err =
            ServeArgs { redis_url: Some("http://u:pw@x".into()), ..args() }.resolve().unwrap_err();
        assert!(err.to_string().contains("REDIS_URL"), "{err}");
        assert!(!err.to_string().contains("pw"), "password leaked: {err}");
        let err =
            ServeArgs { sandbox_provider: Some("docker".into()), ..args() }.resolve().unwrap_err();
        assert!(err.to_string().contains("docker"));
        let err = ServeArgs { sandbox_allow_hosts: Some("good.org, bad host".into()), ..args() }
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("bad host"), "{err}");
        let err = ServeArgs { database_url: Some("mysql://u:pw@h/db".into()), ..args() }
            .resolve()
            .unwrap_err();
        assert!(err.to_string().contains("mysql"), "{err}");
        assert!(!err.to_string().contains("pw"), "password leaked: {err}");
    }

    #[test]
    fn a_redis_url_chooses_the_redis_bus() {
        assert!(args().resolve().unwrap().redis.is_none());
        let config = ServeArgs { redis_url: Some("redis://u:pw@h:6380/2".into()), ..args() }
            .resolve()
            .unwrap();
        let redis = config.redis.as_ref().unwrap();
        assert_eq!(
            (redis.url.as_str(), redis.prefix.as_str()),
            ("redis://u:pw@h:6380/2", "agentbox:")
        );
        assert!(!format!("{config:?}").contains("pw"), "password leaked: {config:?}");
        let config = ServeArgs {
            redis_url: Some("redis://h".into()),
            redis_prefix: Some("site-b:".into()),
            ..args()
        }
        .resolve()
        .unwrap();
        assert_eq!(config.redis.unwrap().prefix, "site-b:");
    }

    #[test]
    fn a_postgres_url_and_pool_flags_are_taken() {
        let config = ServeArgs {
            database_url: Some("postgres://u:pw@h/db".into()),
            db_pool_size: Some(5),
            db_pool_recycle_secs: Some(0),
            ..args()
        }
        .resolve()
        .unwrap();
        assert_eq!(config.database_url, "postgres://u:pw@h/db");
        assert_eq!(
            config.db_pool,
            PoolSettings {
                size: Some(5),
                max_overflow: None,
                recycle: Some(Duration::ZERO),
                idle_timeout: None
            }
        );
        assert!(!format!("{config:?}").contains("pw"), "password leaked");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("agentbox.toml");
        std::fs::write(&file, "db_max_overflow = 3\ndb_pool_recycle_secs = 60\n").unwrap();
        let config = ServeArgs { config: Some(file), ..args() }.resolve().unwrap();
        assert_eq!(config.db_pool.max_overflow, Some(3));
        assert_eq!(config.db_pool.recycle, Some(Duration::from_secs(60)));
    }

    #[test]
    fn debug_never_prints_secrets() {
        let config = ServeArgs {
            secret_key: Some("s".repeat(40)),
            anthropic_api_key: Some("sk-ant-very-secret".into()),
            ..args()
        }
        .resolve()
        .unwrap();
        let text = format!("{config:?}");
        assert!(!text.contains("very-secret") && !text.contains("ssss"), "{text}");
    }
}
