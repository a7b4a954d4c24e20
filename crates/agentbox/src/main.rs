//! The `agentbox` binary: `serve` (the platform), `mock-llm` (the scripted model server),
//! `migrate` (database schema, or a copy of a whole installation into another database),
//! `user` (accounts, on the store directly), `backup`/`restore`, `doctor` (check the
//! installation), `openapi` (print the API's OpenAPI document).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use agentbox::config::{LogFormat, ServeArgs};
use agentbox::{migrate, serve};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

#[derive(Parser, Debug)]
#[command(
    name = "agentbox",
    version,
    about = "Chat with a coding agent that works in a sandbox of its own."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: web UI, API and agent runs (`--no-worker`: the API only).
    Serve(Box<ServeArgs>),
    /// Run a worker node: it claims turns from the durable queue that `serve --no-worker`
    /// nodes fill, and serves only `/health` on `--bind`. It takes the same settings as
    /// `serve`; the database must be the API nodes'.
    Worker(Box<ServeArgs>),
    /// Run agentbox's scripted Anthropic Messages API server (a mock model, for tests, demos
    /// and benchmarks; it is not a real model).
    MockLlm {
        #[arg(long, default_value_t = 8089)]
        port: u16,
        #[arg(long, default_value = "127.0.0.1")]
        bind: IpAddr,
        /// JSON scenario file with a default script and named scripts.
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
    /// Create or upgrade the database schema, then exit; with `--from` and `--to`, copy a
    /// whole installation from one database into another, empty one.
    ///
    /// Stop every node first. The `nodes`, `turn_jobs` and `turn_controls` tables are not
    /// copied: they are per-run state (which processes run, turns waiting for a worker,
    /// controls on their way to a turn). A turn still queued or running at the copy ends
    /// `interrupted` soon after the first node starts on the target, as after a crash.
    Migrate(Box<MigrateArgs>),
    /// Re-seal every user's secret under a new key, in one transaction, while no server
    /// runs. With the key in `<data-dir>/secret.key` (the default), a new random key
    /// replaces it; with `--secret-key`/`SECRET_KEY`, give the new one with `--new-key` and
    /// start the server with it afterwards. The key also signs tokens: everyone is signed out.
    RotateSecretKey(Box<RotateArgs>),
    /// Manage accounts on the database directly (for an operator locked out of the web UI);
    /// works while the server runs, with its rules, and writes the audit log (actor `cli`).
    #[command(subcommand)]
    User(Box<UserCommand>),
    /// Back the installation up into one file, while the server runs: a consistent
    /// snapshot of the database, the secret key's id (never the key: keep SECRET_KEY or
    /// secret.key separately), and the sandboxes' workspaces and the checkpoints.
    Backup(Box<BackupArgs>),
    /// Restore a backup into an empty data directory (give the installation's secret key
    /// as SECRET_KEY, or put its secret.key there first); then `serve` on it.
    Restore(Box<RestoreArgs>),
    /// Check the installation (bubblewrap, user namespaces, cgroups, the data directory,
    /// the CLI, the model endpoint, the database, Redis) and say what to fix; the exit
    /// status is 1 if any check fails.
    Doctor(Box<UserTarget>),
    /// Print the API's OpenAPI document (JSON), the source of the web UI's generated types.
    Openapi,
    /// The first process inside a `local` sandbox; started by the server, not by people.
    #[command(hide = true)]
    SandboxInit,
}

#[derive(clap::Args, Debug)]
struct MigrateArgs {
    /// Copy everything from this database (`sqlite://PATH`) ...
    #[arg(long, requires = "to", value_name = "URL")]
    from: Option<String>,
    /// ... into this one (`postgres://...`), which must be empty; it is migrated first.
    #[arg(long, requires = "from", value_name = "URL")]
    to: Option<String>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args, Debug)]
struct BackupArgs {
    /// The backup file to write (it must not exist).
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
    /// Only the database (and the manifest): no workspaces, no checkpoints.
    #[arg(long)]
    db_only: bool,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args, Debug)]
struct RestoreArgs {
    /// The backup file to read.
    #[arg(long, value_name = "FILE")]
    from: PathBuf,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Every account, oldest first.
    List(UserTarget),
    /// Create an account (whatever the registration mode); a password is generated and
    /// printed once unless `--password-stdin` gives one.
    Create {
        email: String,
        #[arg(long)]
        username: Option<String>,
        /// Make it an administrator.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        target: UserTarget,
    },
    /// Disable an account: its tokens stop working and its sign-ins end.
    Disable(OneUser),
    /// Re-enable a disabled account.
    Enable(OneUser),
    /// Set a new password (every sign-in of the account ends): read from standard input
    /// with `--password-stdin`, else generated and printed once.
    ResetPassword {
        #[command(flatten)]
        user: OneUser,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Make an account an administrator.
    MakeAdmin(OneUser),
    /// Take administration away (refused for the last enabled administrator).
    RemoveAdmin(OneUser),
}

#[derive(clap::Args, Debug)]
struct OneUser {
    /// The account's email or id.
    user: String,
    #[command(flatten)]
    target: UserTarget,
}

#[derive(clap::Args, Debug)]
struct UserTarget {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Args, Debug)]
struct RotateArgs {
    /// The new key (at least 32 characters) [default: a random one, written to
    /// `<data-dir>/secret.key`; required when the current key is given by flag or env].
    #[arg(long, env = "AGENTBOX_NEW_SECRET_KEY", hide_env_values = true)]
    new_key: Option<String>,
    #[command(flatten)]
    serve: ServeArgs,
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> anyhow::Result<()> {
    // Inside a sandbox this binary is also the shell of the agent's commands, under the
    // name `agentbox-bash`, with bash's arguments rather than ours.
    if agentbox_sandbox::local::shell::invoked_as_shell() {
        std::process::exit(agentbox_sandbox::local::shell::main());
    }
    let cli = Cli::parse();
    // The sandbox init must start without a runtime: it first closes every descriptor it
    // inherited, then builds its own.
    if let Command::SandboxInit = cli.command {
        return Ok(agentbox_sandbox::local::init::main()?);
    }
    // Everything the server creates is private to it unless it says otherwise.
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    // An error ends the process with status 1 and one readable line (its causes joined),
    // not a debug dump: operators and scripts read it.
    if let Err(err) = tokio::runtime::Runtime::new()?.block_on(run(cli.command)) {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
    Ok(())
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let config = args.resolve()?;
            init_logging(config.log_format);
            serve::run(config).await
        }
        Command::Worker(args) => {
            anyhow::ensure!(!args.no_worker, "`agentbox worker` is the worker: drop --no-worker");
            let mut config = args.resolve()?;
            config.node_role = agentbox_runs::NodeRole::Worker;
            init_logging(config.log_format);
            serve::run(config).await
        }
        Command::Migrate(args) => {
            let MigrateArgs { from, to, serve: serve_args } = *args;
            let config = serve_args.resolve()?;
            init_logging(config.log_format);
            match (from, to) {
                (Some(from), Some(to)) => migrate::copy(&from, &to, &config.db_pool).await,
                _ => {
                    serve::prepare_data_dir(&config.data_dir)?;
                    serve::create_private_database(&config.database_url)?;
                    agentbox_store::Store::open_with(&config.database_url, &config.db_pool)
                        .await?
                        .close()
                        .await;
                    tracing::info!(
                        database = %agentbox_store::redact_url(&config.database_url),
                        "the database schema is up to date"
                    );
                    Ok(())
                }
            }
        }
        Command::RotateSecretKey(args) => {
            let RotateArgs { new_key, serve: serve_args } = *args;
            let config = serve_args.resolve()?;
            init_logging(config.log_format);
            let done = agentbox::rotate::rotate(&config, new_key).await?;
            tracing::info!(
                resealed = done.resealed,
                already_new = done.already_new,
                old_key = %done.old_key_id,
                new_key = %done.new_key_id,
                "re-sealed every secret under the new key; tokens signed with the old key no longer work"
            );
            Ok(())
        }
        Command::User(command) => {
            use agentbox::user::Action;
            let (action, target) = match *command {
                UserCommand::List(target) => (Action::List, target),
                UserCommand::Create { email, username, admin, password_stdin, target } => (
                    Action::Create { email, username, admin, password_from_stdin: password_stdin },
                    target,
                ),
                UserCommand::Disable(one) => (Action::Disable { user: one.user }, one.target),
                UserCommand::Enable(one) => (Action::Enable { user: one.user }, one.target),
                UserCommand::ResetPassword { user, password_stdin } => (
                    Action::ResetPassword { user: user.user, password_from_stdin: password_stdin },
                    user.target,
                ),
                UserCommand::MakeAdmin(one) => (Action::MakeAdmin { user: one.user }, one.target),
                UserCommand::RemoveAdmin(one) => {
                    (Action::RemoveAdmin { user: one.user }, one.target)
                }
            };
            let config = target.serve.resolve()?;
            init_logging(config.log_format);
            let outcome =
                agentbox::user::run(&config, action, &mut std::io::stdin().lock()).await?;
            let mut out = std::io::stdout().lock();
            if target.json {
                use std::io::Write;
                serde_json::to_writer_pretty(&mut out, &outcome)?;
                writeln!(out)?;
            } else {
                agentbox::user::print_table(&outcome, &mut out)?;
            }
            Ok(())
        }
        Command::Backup(args) => {
            let BackupArgs { to, db_only, serve: serve_args } = *args;
            let config = serve_args.resolve()?;
            init_logging(config.log_format);
            let report = agentbox::backup::backup(&config, &to, db_only).await?;
            agentbox::backup::print_backup(&report, &mut std::io::stdout().lock())?;
            Ok(())
        }
        Command::Restore(args) => {
            let RestoreArgs { from, serve: serve_args } = *args;
            let config = serve_args.resolve()?;
            init_logging(config.log_format);
            let report = agentbox::backup::restore(&config, &from).await?;
            agentbox::backup::print_restore(
                &report,
                &from,
                &config.data_dir,
                &mut std::io::stdout().lock(),
            )?;
            Ok(())
        }
        Command::Doctor(target) => {
            let UserTarget { json, serve: serve_args } = *target;
            let config = serve_args.resolve()?;
            init_logging(config.log_format);
            let checks = agentbox::doctor::run(&config).await;
            let mut out = std::io::stdout().lock();
            if json {
                use std::io::Write;
                serde_json::to_writer_pretty(&mut out, &checks)?;
                writeln!(out)?;
            } else {
                agentbox::doctor::print(&checks, &mut out)?;
            }
            if checks.iter().any(|c| c.status == agentbox::doctor::Status::Fail) {
                drop(out);
                std::process::exit(1);
            }
            Ok(())
        }
        Command::SandboxInit => anyhow::bail!("sandbox-init runs before any runtime starts"),
        Command::Openapi => {
            use std::io::Write;
            let json = agentbox_server::openapi::document_json()?;
            std::io::stdout().write_all(json.as_bytes())?;
            Ok(())
        }
        Command::MockLlm { port, bind, scenario } => {
            init_logging(LogFormat::Text);
            let options = mock_llm::MockOptions { scenario_file: scenario, default_script: None };
            tracing::warn!("mock-llm gives SCRIPTED replies; it is not a real model");
            mock_llm::serve(SocketAddr::new(bind, port), options, serve::shutdown_signal()).await?;
            Ok(())
        }
    }
}
