//! `agentbox doctor`: check the installation the configuration describes and say what to
//! fix: bubblewrap, user namespaces and cgroups (for the `local` provider), the data
//! directory (owner, permissions, free space), the secret key's file, the pinned CLI and its version, the model
//! endpoint, the database and Redis. Every check answers `ok`, `warn` or `fail`; any `fail`
//! makes the exit status non-zero. Nothing is changed, but for an existing database that
//! an older version left, which opening migrates, as `serve` would.

use std::os::unix::fs::MetadataExt;
use std::time::Duration;

use agentbox_sandbox::local::probe;
use agentbox_store::{Backend, Store};
use serde::Serialize;

use crate::config::Config;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

/// One check's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do, for a warn or a fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn ok(name: &'static str, detail: impl Into<String>) -> Check {
    Check { name, status: Status::Ok, detail: detail.into(), fix: None }
}

fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name, status: Status::Warn, detail: detail.into(), fix: Some(fix.into()) }
}

fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check { name, status: Status::Fail, detail: detail.into(), fix: Some(fix.into()) }
}

/// How long a network check waits for an answer.
const NETWORK_PATIENCE: Duration = Duration::from_secs(5);
/// Below this much free space the data directory is a warning, below a tenth of it a fail.
const LOW_SPACE: u64 = 2 << 30;

/// Run every check.
pub async fn run(config: &Config) -> Vec<Check> {
    let mut checks = Vec::new();
    if config.sandbox_provider == "local" {
        checks.push(match probe::bubblewrap().await {
            Ok(found) => ok("bubblewrap", found),
            Err(problem) => fail("bubblewrap", problem, "install bubblewrap (scripts/setup does)"),
        });
        checks.push(match probe::user_namespaces() {
            Ok(found) => ok("user namespaces", found),
            Err(problem) => fail("user namespaces", problem.clone(), problem),
        });
        checks.push(match probe::cgroups() {
            probe::Cgroups::V2(found) => ok("cgroups", found),
            probe::Cgroups::Degraded(why) => warn(
                "cgroups",
                format!("limits DEGRADED: {why}"),
                "sandboxes still run, but memory and CPU limits are weaker; see the detail",
            ),
        });
    } else {
        checks.push(warn(
            "sandboxes",
            "the `host` provider isolates nothing: the agent runs as this server's user",
            "use --sandbox-provider local (the default) with bubblewrap",
        ));
    }
    checks.push(data_dir(config));
    checks.push(secret_key(config));
    checks.push(cli(config).await);
    checks.push(model(config).await);
    checks.push(database(config).await);
    if let Some(redis) = &config.redis {
        checks.push(redis_check(redis).await);
    }
    checks
}

fn data_dir(config: &Config) -> Check {
    const NAME: &str = "data directory";
    let dir = &config.data_dir;
    let meta = match std::fs::metadata(dir) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let parent = dir.parent().unwrap_or(dir);
            return match std::fs::metadata(parent) {
                Ok(_) => warn(
                    NAME,
                    format!("{} does not exist yet", dir.display()),
                    "the first `agentbox serve` creates it (private to its user)",
                ),
                Err(_) => fail(
                    NAME,
                    format!("neither {} nor its parent exists", dir.display()),
                    "create the parent directory, or choose another with --data-dir",
                ),
            };
        }
        Err(err) => {
            return fail(
                NAME,
                format!("cannot read {}: {err}", dir.display()),
                "check its permissions",
            );
        }
    };
    if !meta.is_dir() {
        return fail(
            NAME,
            format!("{} is not a directory", dir.display()),
            "choose another --data-dir",
        );
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return fail(
            NAME,
            format!("{} belongs to uid {}, not to this user ({me})", dir.display(), meta.uid()),
            format!("chown it to the server's user, or run as its owner (uid {})", meta.uid()),
        );
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o066 != 0 {
        return fail(
            NAME,
            format!("{} has mode {mode:03o}: others can read or write it", dir.display()),
            format!("chmod 700 {} (the server makes it 711 for sandboxes itself)", dir.display()),
        );
    }
    if nix::unistd::access(dir, nix::unistd::AccessFlags::W_OK).is_err() {
        return fail(NAME, format!("{} is not writable", dir.display()), "fix its permissions");
    }
    let space = match nix::sys::statvfs::statvfs(dir) {
        Ok(stat) => stat.blocks_available() * stat.fragment_size(),
        Err(err) => {
            return warn(NAME, format!("cannot tell the free space: {err}"), "check the mount");
        }
    };
    let detail = format!("{} (mode {mode:03o}), {} MiB free", dir.display(), space >> 20);
    if space < LOW_SPACE / 10 {
        fail(NAME, detail, "free some space: turns, checkpoints and the database need it")
    } else if space < LOW_SPACE {
        warn(NAME, detail, "less than 2 GiB free: free some space before workspaces grow")
    } else {
        ok(NAME, detail)
    }
}

fn secret_key(config: &Config) -> Check {
    const NAME: &str = "secret key";
    if config.secret_key.is_some() {
        return ok(NAME, "given by SECRET_KEY (or --secret-key); keep it with the backups' keys");
    }
    let path = config.data_dir.join("secret.key");
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return warn(
                NAME,
                format!("{} does not exist yet", path.display()),
                "the first `agentbox serve` generates it; keep a copy apart from the backups",
            );
        }
        Err(err) => {
            return fail(
                NAME,
                format!("cannot read {}: {err}", path.display()),
                "check its permissions",
            );
        }
    };
    if !meta.is_file() {
        return fail(
            NAME,
            format!("{} is not a regular file", path.display()),
            "replace it with the key file",
        );
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return fail(
            NAME,
            format!("{} has mode {mode:03o}: others can read the key", path.display()),
            format!(
                "chmod 600 {} (and consider the key exposed: rotate-secret-key)",
                path.display()
            ),
        );
    }
    match std::fs::read_to_string(&path) {
        Ok(key) if key.trim().len() >= 32 => {
            ok(NAME, format!("{} (mode {mode:03o})", path.display()))
        }
        Ok(_) => fail(
            NAME,
            format!("{} holds a key shorter than 32 characters", path.display()),
            "restore the right key file",
        ),
        Err(err) => {
            fail(NAME, format!("cannot read {}: {err}", path.display()), "check its permissions")
        }
    }
}

async fn cli(config: &Config) -> Check {
    const NAME: &str = "claude CLI";
    match agentbox_agent::CliInstall::locate(config.claude_path.as_deref()) {
        Err(reason) => fail(
            NAME,
            reason,
            "run scripts/setup (it installs the pinned CLI), or give its path with \
             --claude-path / AGENTBOX_CLAUDE_PATH",
        ),
        Ok(cli) => match cli.version().await {
            Some(version) => {
                ok(NAME, format!("{} (from {}), version {version}", cli.path.display(), cli.source))
            }
            None => fail(
                NAME,
                format!("{} does not answer `--version`", cli.path.display()),
                "reinstall it with scripts/setup",
            ),
        },
    }
}

async fn model(config: &Config) -> Check {
    const NAME: &str = "model endpoint";
    if config.demo {
        return ok(NAME, "demo mode: agentbox's scripted mock model, in-process");
    }
    let url =
        config.anthropic_base_url.clone().unwrap_or_else(|| "https://api.anthropic.com".into());
    let credentials = config.anthropic_api_key.is_some() || config.anthropic_auth_token.is_some();
    let host = match crate::serve::model_host(Some(&url)) {
        Ok(host) => host,
        Err(err) => return fail(NAME, format!("{url}: {err}"), "fix ANTHROPIC_BASE_URL"),
    };
    match tokio::time::timeout(NETWORK_PATIENCE, tokio::net::TcpStream::connect(&host)).await {
        Ok(Ok(_)) if credentials => ok(NAME, format!("{url} answers (TCP {host})")),
        Ok(Ok(_)) => warn(
            NAME,
            format!("{url} answers, but no credentials are set"),
            "set ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN (or let users bring their own keys)",
        ),
        Ok(Err(err)) => fail(
            NAME,
            format!("{url}: cannot connect to {host}: {err}"),
            "check ANTHROPIC_BASE_URL and that this machine may reach it",
        ),
        Err(_) => fail(
            NAME,
            format!("{url}: no answer from {host} within {} s", NETWORK_PATIENCE.as_secs()),
            "check ANTHROPIC_BASE_URL, the network and any firewall",
        ),
    }
}

async fn database(config: &Config) -> Check {
    const NAME: &str = "database";
    let url = &config.database_url;
    let shown = agentbox_store::redact_url(url);
    if Backend::of_url(url).ok() == Some(Backend::Sqlite) {
        let path =
            url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or(url);
        let path = std::path::Path::new(path.split('?').next().unwrap_or(path));
        if !path.exists() {
            return warn(
                NAME,
                format!("{shown}: no database yet"),
                "the first `agentbox serve` (or `agentbox migrate`) creates it",
            );
        }
    }
    let opened =
        tokio::time::timeout(NETWORK_PATIENCE * 2, Store::open_with(url, &config.db_pool)).await;
    let store = match opened {
        Ok(Ok(store)) => store,
        Ok(Err(err)) => {
            return fail(
                NAME,
                format!("{shown}: {err}"),
                "check DATABASE_URL and that the database runs",
            );
        }
        Err(_) => {
            return fail(NAME, format!("{shown}: no answer"), "check DATABASE_URL and the network");
        }
    };
    let check = match (store.info().await, store.count_users().await) {
        (Ok(info), Ok(users)) => ok(NAME, format!("{shown}: {}, {users} accounts", info.version)),
        (Err(err), _) | (_, Err(err)) => {
            fail(NAME, format!("{shown}: {err}"), "check the database")
        }
    };
    store.close().await;
    check
}

async fn redis_check(redis: &agentbox_bus::RedisConfig) -> Check {
    const NAME: &str = "redis";
    let bus = match agentbox_bus::EventBus::redis(redis.clone()) {
        Ok(bus) => bus,
        Err(err) => return fail(NAME, err.to_string(), "fix REDIS_URL"),
    };
    let health = tokio::time::timeout(NETWORK_PATIENCE, bus.health()).await;
    match health {
        Ok(health) if health.reachable == Some(true) => ok(NAME, health.detail),
        Ok(health) => fail(NAME, health.detail, "check REDIS_URL and that Redis runs"),
        Err(_) => fail(NAME, "no answer", "check REDIS_URL and that Redis runs"),
    }
}

/// The checks for people: one line each, with what to fix under a warn or a fail.
pub fn print(checks: &[Check], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for check in checks {
        writeln!(out, "{:<4}  {:<width$}  {}", check.status.as_str(), check.name, check.detail)?;
        if let Some(fix) = &check.fix {
            writeln!(out, "      {:<width$}  fix: {fix}", "")?;
        }
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    let warned = checks.iter().filter(|c| c.status == Status::Warn).count();
    writeln!(out, "\n{failed} failed, {warned} warnings, {} ok", checks.len() - failed - warned)
}
