//! The `local` provider: one long-lived, isolated sandbox per chat on this machine.
//!
//! Each sandbox is a bubblewrap container (Debian's `bubblewrap`, chosen over our own
//! namespace code because it is small, audited, packaged, and gets the mount ordering,
//! `no_new_privs`, capability dropping and death-with-parent right) running our
//! [`init`] as its first process:
//!
//! - user namespace: the agent is `user` (uid 1000) inside; outside it is a user id of its
//!   own per sandbox (`uid_base + n`) when the server runs as root, so sandboxes cannot touch
//!   each other's files or processes and the process limit counts per sandbox;
//! - mount namespace: `/usr` and a short list of `/etc` entries read-only, `/home/user`
//!   (the workspace, kept on the host) writable, a private size-limited `/tmp`, its own
//!   `/proc` and a minimal `/dev`; nothing of the data directory, other sandboxes or the
//!   host's home directories;
//! - pid, ipc, uts (hostname = sandbox id), cgroup and network namespaces: no interface but
//!   loopback; the only way out is the [`crate::egress`] proxy;
//! - no capabilities, `no_new_privs`, a seccomp filter ([`seccomp`]), no nested user
//!   namespaces, and [`limits`] on memory, processes, CPU and disk;
//! - the agent's commands run in [`shell`] (`agentbox-bash`), under a lower process limit
//!   than the CLI and ended with it.
//!
//! The server talks to the init over a Unix socket whose listening end it creates and hands
//! down, in a directory the sandbox never sees. Sandboxes die with the server
//! (`--die-with-parent`); after a restart the next use starts a fresh container on the
//! same workspace, so files and the CLI's session transcripts survive.

mod client;
pub mod init;
pub mod limits;
pub mod ports;
pub mod probe;
mod seccomp;
pub mod shell;

use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, BufReader};

use self::limits::{DiskCheck, Enforcement, Limits, SandboxCgroup};
use crate::egress::{EgressPolicy, EgressProxy};
use crate::process::SandboxProcess;
use crate::wire::ExecSpec;
use crate::{
    ExecRequest, ExitStatus, ProviderHealth, Result, Sandbox, SandboxError, SandboxLimit,
    SandboxProvider, SandboxStatus, Tools, Workspace, check_id,
};

/// The agent's home inside every sandbox.
pub const HOME: &str = "/home/user";
/// Where host programs (the init, the CLI) are mounted inside.
const TOOLS_DIR: &str = "/opt/agentbox/bin";
const INIT_NAME: &str = "agentbox-init";
/// The inside user.
const INSIDE_UID: u32 = 1000;
/// How long a new sandbox has to answer its first ping.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long stopping a sandbox waits for its processes to be gone.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Entries of the host's `/etc` that programs need and that hold no secrets.
const ETC_ALLOWED: &[&str] = &[
    "alternatives",
    "bash.bashrc",
    "ca-certificates",
    "ca-certificates.conf",
    "debian_version",
    "gai.conf",
    "host.conf",
    "inputrc",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "locale.alias",
    "localtime",
    "magic",
    "mime.types",
    "os-release",
    "perl",
    "profile",
    "profile.d",
    "protocols",
    "python3",
    "python3.11",
    "services",
    "ssl",
    "terminfo",
    "timezone",
    "vim",
    "xdg",
];

/// How the provider runs.
#[derive(Clone)]
pub struct LocalConfig {
    /// Sandboxes live under this directory, one subdirectory each.
    pub root: PathBuf,
    /// The program that runs as the sandbox's init (the `agentbox` binary) and its
    /// arguments (`sandbox-init`).
    pub init_program: PathBuf,
    pub init_args: Vec<String>,
    /// Host programs made runnable inside (`claude`).
    pub tools: Tools,
    pub limits: Limits,
    /// First outside user id of sandboxes when the server runs as root.
    pub uid_base: u32,
    /// Pause a sandbox after this long with nothing of the server attached to it.
    pub idle_pause: Option<Duration>,
    /// How often the workspace sizes are checked against the disk quota.
    pub disk_check_interval: Duration,
    pub egress: Arc<dyn EgressPolicy>,
}

impl std::fmt::Debug for LocalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalConfig")
            .field("root", &self.root)
            .field("init_program", &self.init_program)
            .field("limits", &self.limits)
            .field("uid_base", &self.uid_base)
            .field("idle_pause", &self.idle_pause)
            .finish_non_exhaustive()
    }
}

pub struct LocalProvider {
    config: LocalConfig,
    bwrap: PathBuf,
    bwrap_version: String,
    enforcement: Enforcement,
    seccomp: Vec<u8>,
    /// Whether each sandbox gets an outside user id of its own (the server is root).
    own_uids: bool,
    proxy: Arc<EgressProxy>,
    /// Host paths to bind inside, by name under [`TOOLS_DIR`].
    binaries: Vec<(String, PathBuf)>,
    sandboxes: Mutex<HashMap<String, Arc<Entry>>>,
}

impl std::fmt::Debug for LocalProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalProvider").field("config", &self.config).finish_non_exhaustive()
    }
}

/// One sandbox's bookkeeping.
struct Entry {
    id: String,
    dir: PathBuf,
    /// `dir` opened `O_PATH`, so that its sockets are bound and reached through
    /// [`Entry::short_path`], whatever the length of the data directory's path.
    dir_fd: OwnedFd,
    uid: u32,
    /// Serialises starting, pausing, resuming and deleting.
    lifecycle: tokio::sync::Mutex<()>,
    state: Mutex<State>,
}

struct State {
    status: SandboxStatus,
    container: Option<tokio::process::Child>,
    cgroup: Option<SandboxCgroup>,
    proxy_task: Option<tokio::task::JoinHandle<()>>,
    /// Pidfds of the container's bubblewrap process and of the first process of its pid
    /// namespace, taken at start (when the container holds few processes to look through):
    /// stopping waits for them.
    ends: Vec<OwnedFd>,
    /// Open exec connections: while any is open, the sandbox is not idle.
    busy: usize,
    idle_since: Instant,
    /// Why the sandbox was stopped by the provider, if it was (over its disk quota).
    stopped_because: Option<String>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Entry {
    /// `relative` in the sandbox's directory as a path of at most about 40 bytes. A Unix
    /// socket's address holds fewer than 108 bytes, less than the path of a data directory
    /// may take; `/proc/self/fd/<dir_fd>/` names the same directory in few.
    fn short_path(&self, relative: &str) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}/{relative}", self.dir_fd.as_raw_fd()))
    }

    fn ctl_socket(&self) -> PathBuf {
        self.short_path("ctl/init.sock")
    }

    fn home(&self) -> PathBuf {
        self.dir.join("home")
    }
}

impl LocalProvider {
    /// Check that bubblewrap is installed and this machine can run sandboxes, and start the
    /// provider's housekeeping (idle pause, disk quota checks).
    pub async fn new(config: LocalConfig) -> Result<Arc<Self>> {
        let bwrap = find_on_path("bwrap").ok_or_else(|| {
            SandboxError::Unavailable(
                "bubblewrap (bwrap) is not installed: run scripts/setup, or `apt-get install bubblewrap`".into(),
            )
        })?;
        #[allow(clippy::disallowed_methods)] // This crate is where processes are started.
        let version = tokio::process::Command::new(&bwrap).arg("--version").output().await?;
        let bwrap_version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
        let seccomp = seccomp::program().map_err(SandboxError::Unavailable)?;
        let own_uids = nix::unistd::geteuid().is_root();
        std::fs::create_dir_all(&config.root)?;
        // Bubblewrap runs as the sandbox's user and must be able to walk to the workspace;
        // traversal without listing reveals nothing (every file in the data directory is
        // private to the server).
        std::fs::set_permissions(&config.root, std::fs::Permissions::from_mode(0o711))?;
        check_short_socket_paths(&config.root)?;
        if own_uids && let Some(closed) = closed_ancestor(&config.root) {
            return Err(SandboxError::Unavailable(format!(
                "sandbox users cannot reach {}: {} is not traversable by others (o+x); put the data \
                 directory under a path they can walk through, such as /var/lib/agentbox",
                config.root.display(),
                closed.display()
            )));
        }
        let mut binaries =
            vec![(INIT_NAME.to_owned(), shareable(&config.root, INIT_NAME, &config.init_program)?)];
        for (name, path) in &config.tools {
            binaries.push((name.clone(), shareable(&config.root, name, path)?));
        }
        let enforcement = Enforcement::detect();
        tracing::info!(limits = %enforcement.describe(), bwrap = %bwrap_version, own_uids, "local sandbox provider ready");
        let provider = Arc::new(Self {
            proxy: EgressProxy::new(config.egress.clone()),
            config,
            bwrap,
            bwrap_version,
            enforcement,
            seccomp,
            own_uids,
            binaries,
            sandboxes: Mutex::default(),
        });
        tokio::spawn(housekeeping(Arc::downgrade(&provider)));
        Ok(provider)
    }

    pub fn enforcement(&self) -> &Enforcement {
        &self.enforcement
    }

    fn entry(&self, id: &str) -> Result<Arc<Entry>> {
        check_id(id)?;
        let mut sandboxes = lock(&self.sandboxes);
        if let Some(entry) = sandboxes.get(id) {
            return Ok(entry.clone());
        }
        let dir = self.config.root.join(id);
        let uid = if self.own_uids {
            self.uid_for(&dir, &sandboxes)?
        } else {
            nix::unistd::geteuid().as_raw()
        };
        std::fs::create_dir_all(&dir)?;
        let dir_fd = open_path(&dir)?;
        let entry = Arc::new(Entry {
            id: id.to_owned(),
            dir,
            dir_fd,
            uid,
            lifecycle: tokio::sync::Mutex::new(()),
            state: Mutex::new(State {
                status: SandboxStatus::Stopped,
                container: None,
                cgroup: None,
                proxy_task: None,
                ends: Vec::new(),
                busy: 0,
                idle_since: Instant::now(),
                stopped_because: None,
            }),
        });
        sandboxes.insert(id.to_owned(), entry.clone());
        Ok(entry)
    }

    /// The sandbox's outside user id: the one it was given before (kept in the sandbox's
    /// directory), or the lowest free one.
    fn uid_for(&self, dir: &Path, known: &HashMap<String, Arc<Entry>>) -> Result<u32> {
        let file = dir.join("uid");
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Ok(uid) = text.trim().parse()
        {
            return Ok(uid);
        }
        let mut taken: BTreeSet<u32> = known.values().map(|e| e.uid).collect();
        if let Ok(entries) = std::fs::read_dir(&self.config.root) {
            for entry in entries.flatten() {
                if let Ok(text) = std::fs::read_to_string(entry.path().join("uid"))
                    && let Ok(uid) = text.trim().parse()
                {
                    taken.insert(uid);
                }
            }
        }
        let uid = (self.config.uid_base..u32::MAX - 1)
            .find(|uid| !taken.contains(uid))
            .ok_or_else(|| SandboxError::Unavailable("no free sandbox user id".into()))?;
        std::fs::create_dir_all(dir)?;
        std::fs::write(&file, uid.to_string())?;
        Ok(uid)
    }

    /// Whether the container of `entry` is up (its bubblewrap process has not exited).
    fn alive(entry: &Entry) -> bool {
        let mut state = lock(&entry.state);
        let alive =
            state.container.as_mut().is_some_and(|child| matches!(child.try_wait(), Ok(None)));
        if !alive && state.status != SandboxStatus::Stopped {
            state.status = SandboxStatus::Stopped;
        }
        alive
    }

    async fn start(&self, entry: &Entry) -> Result<()> {
        let limits = self.config.limits;
        let home = entry.home();
        prepare_dirs(&entry.dir, &home, entry.uid)?;
        // Off the async workers: a large workspace takes a while to measure.
        let check = {
            let home = home.clone();
            crate::blocking(move || Ok(DiskCheck::of(&home, limits.disk_bytes))).await?
        };
        if let Some(problem) = check.problem() {
            return Err(SandboxError::Unavailable(problem));
        }

        // The egress proxy's socket, mounted read-only inside.
        // Bound through the short path; bubblewrap mounts it by its full one, which has no
        // such limit.
        let proxy_socket = entry.dir.join("proxy/proxy.sock");
        remove_if_exists(&proxy_socket)?;
        let proxy_listener = tokio::net::UnixListener::bind(entry.short_path("proxy/proxy.sock"))?;
        nix::unistd::chown(
            &proxy_socket,
            Some(nix::unistd::Uid::from_raw(entry.uid)),
            Some(nix::unistd::Gid::from_raw(entry.uid)),
        )
        .map_err(std::io::Error::from)?;
        std::fs::set_permissions(&proxy_socket, std::fs::Permissions::from_mode(0o600))?;

        // The init's control socket: created here, listened on by the init.
        let ctl = entry.ctl_socket();
        remove_if_exists(&ctl)?;
        let control_listener = std::os::unix::net::UnixListener::bind(&ctl)?;

        let cgroup = match &self.enforcement {
            Enforcement::CgroupV2 { parent } => {
                Some(SandboxCgroup::create(parent, &entry.id, &limits)?)
            }
            Enforcement::Degraded { .. } => None,
        };
        let cgroup_procs = match &cgroup {
            Some(cgroup) => Some(OwnedFd::from(
                std::fs::OpenOptions::new().write(true).open(cgroup.procs_file())?,
            )),
            None => None,
        };

        let hostname: String = entry.id.chars().take(12).collect();
        let etc = [
            (
                "/etc/passwd",
                format!(
                    "root:x:0:0:root:/root:/usr/sbin/nologin\nuser:x:{INSIDE_UID}:{INSIDE_UID}:agentbox:{HOME}:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
                ),
            ),
            ("/etc/group", format!("root:x:0:\nuser:x:{INSIDE_UID}:\nnogroup:x:65534:\n")),
            ("/etc/hosts", format!("127.0.0.1 localhost {hostname}\n::1 localhost\n")),
            ("/etc/hostname", format!("{hostname}\n")),
            ("/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files\n".to_owned()),
            (
                "/etc/resolv.conf",
                "# No DNS in an agentbox sandbox: reach the network through HTTP(S)_PROXY.\n"
                    .to_owned(),
            ),
        ];
        let mut passed: Vec<OwnedFd> = Vec::new();
        let mut args: Vec<String> = [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-net",
            "--unshare-cgroup-try",
            "--disable-userns",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
        ]
        .map(str::to_owned)
        .into();
        args.extend([
            "--uid".into(),
            INSIDE_UID.to_string(),
            "--gid".into(),
            INSIDE_UID.to_string(),
        ]);
        args.extend(["--hostname".into(), hostname.clone()]);
        args.extend(["--ro-bind".into(), "/usr".into(), "/usr".into()]);
        for top in ["bin", "sbin", "lib", "lib32", "lib64", "libx32"] {
            let host = Path::new("/").join(top);
            match std::fs::read_link(&host) {
                Ok(target) => args.extend([
                    "--symlink".into(),
                    target.display().to_string(),
                    host.display().to_string(),
                ]),
                Err(_) if host.is_dir() => args.extend([
                    "--ro-bind".into(),
                    host.display().to_string(),
                    host.display().to_string(),
                ]),
                Err(_) => {}
            }
        }
        args.extend(["--proc".into(), "/proc".into(), "--dev".into(), "/dev".into()]);
        args.extend([
            "--size".into(),
            limits.tmp_bytes.to_string(),
            "--tmpfs".into(),
            "/tmp".into(),
        ]);
        for name in ETC_ALLOWED {
            let path = format!("/etc/{name}");
            args.extend(["--ro-bind-try".into(), path.clone(), path]);
        }
        for (path, content) in &etc {
            let fd = data_pipe(content.as_bytes())?;
            args.extend(["--ro-bind-data".into(), fd.as_raw_fd().to_string(), (*path).to_owned()]);
            passed.push(fd);
        }
        args.extend(["--bind".into(), home.display().to_string(), HOME.into()]);
        args.extend([
            "--ro-bind".into(),
            proxy_socket.display().to_string(),
            init::PROXY_SOCKET.into(),
        ]);
        for (name, path) in &self.binaries {
            args.extend([
                "--ro-bind".into(),
                path.display().to_string(),
                format!("{TOOLS_DIR}/{name}"),
            ]);
        }
        // The shell of the agent's commands is the init binary under another name.
        args.extend([
            "--symlink".into(),
            INIT_NAME.into(),
            format!("{TOOLS_DIR}/{}", shell::SHELL_NAME),
        ]);
        args.extend(["--chdir".into(), HOME.into()]);
        let proxy_url = format!("http://127.0.0.1:{}", init::PROXY_PORT);
        let mut env = vec![
            ("HOME", HOME.to_owned()),
            ("USER", "user".to_owned()),
            ("LOGNAME", "user".to_owned()),
            ("SHELL", "/bin/bash".to_owned()),
            (
                "PATH",
                format!(
                    "{HOME}/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                ),
            ),
            ("LANG", "C.UTF-8".to_owned()),
            ("HTTP_PROXY", proxy_url.clone()),
            ("HTTPS_PROXY", proxy_url.clone()),
            ("http_proxy", proxy_url.clone()),
            ("https_proxy", proxy_url),
            // Empty on purpose: loopback model endpoints must go through the proxy as well.
            ("NO_PROXY", String::new()),
            ("no_proxy", String::new()),
            ("AGENTBOX_SANDBOX_ID", entry.id.clone()),
            (init::LISTEN_FD_ENV, control_listener.as_raw_fd().to_string()),
        ];
        // `RLIMIT_NPROC` counts per user: it is the sandbox's own only when the sandbox has a
        // user id of its own, so only then do commands get a limit below the CLI's.
        if self.own_uids {
            env.push((shell::COMMAND_PROCESSES_ENV, limits.command_processes().to_string()));
        }
        for (name, value) in &env {
            args.extend(["--setenv".into(), (*name).to_owned(), value.clone()]);
        }
        let seccomp = data_pipe(&self.seccomp)?;
        args.extend(["--seccomp".into(), seccomp.as_raw_fd().to_string()]);
        passed.push(seccomp);
        args.push("--".into());
        args.push(format!("{TOOLS_DIR}/{INIT_NAME}"));
        args.extend(self.config.init_args.iter().cloned());

        let mut inherit: Vec<RawFd> = passed.iter().map(AsRawFd::as_raw_fd).collect();
        inherit.push(control_listener.as_raw_fd());
        #[allow(clippy::disallowed_methods)] // This crate is where processes are started.
        let mut command = tokio::process::Command::new(&self.bwrap);
        command
            .args(&args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        prepare_container(
            &mut command,
            ChildSetup {
                inherit,
                cgroup_procs: cgroup_procs.as_ref().map(AsRawFd::as_raw_fd),
                degraded: cgroup.is_none(),
                limits,
                user: self.own_uids.then_some(entry.uid),
            },
        )?;
        let mut child = command
            .spawn()
            .map_err(|source| SandboxError::Spawn { program: "bwrap".into(), source })?;
        drop(passed);
        drop(control_listener);
        drop(cgroup_procs);
        let log_id = entry.id.clone();
        let stderr_tail = Arc::new(Mutex::new(String::new()));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let id = log_id.clone();
            let tail = stderr_tail.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::debug!(sandbox = %id, "{line}");
                    let mut tail = lock(&tail);
                    if tail.len() < 4096 {
                        tail.push_str(&line);
                        tail.push('\n');
                    }
                }
            });
        }
        let proxy_task = self.proxy.serve(entry.id.clone(), proxy_listener);

        let started = Instant::now();
        let ready = loop {
            if client::ping(&ctl).await.is_ok() {
                break Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let output = std::mem::take(&mut *lock(&stderr_tail));
                break Err(SandboxError::Unavailable(format!(
                    "the sandbox exited at start ({status}): {}",
                    output.trim()
                )));
            }
            if started.elapsed() > START_TIMEOUT {
                break Err(SandboxError::Unavailable("the sandbox did not start in time".into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        if let Err(err) = ready {
            proxy_task.abort();
            if let Some(cgroup) = &cgroup {
                cgroup.remove();
            }
            return Err(err);
        }
        let ends = child.id().map(container_ends).unwrap_or_default();
        let mut state = lock(&entry.state);
        state.status = SandboxStatus::Running;
        state.ends = ends;
        state.container = Some(child);
        state.cgroup = cgroup;
        if let Some(old) = state.proxy_task.replace(proxy_task) {
            old.abort();
        }
        state.idle_since = Instant::now();
        state.stopped_because = None;
        tracing::info!(sandbox = %entry.id, uid = entry.uid, ms = started.elapsed().as_millis() as u64, "sandbox started");
        Ok(())
    }

    /// Kill the container (all its processes die with its pid namespace). Returns what to
    /// wait for to know they are gone (see [`Self::wait_gone`]).
    fn kill_container(entry: &Entry, reason: Option<String>) -> Vec<OwnedFd> {
        let mut state = lock(&entry.state);
        let ends = std::mem::take(&mut state.ends);
        if let Some(mut child) = state.container.take() {
            let _ = child.start_kill();
        }
        if let Some(task) = state.proxy_task.take() {
            task.abort();
        }
        if let Some(cgroup) = state.cgroup.take() {
            cgroup.kill();
            cgroup.remove();
        }
        state.status = SandboxStatus::Stopped;
        state.stopped_because = reason;
        ends
    }

    /// Wait (at most [`STOP_TIMEOUT`]) until the processes behind `ends` have exited. The
    /// first process of a pid namespace exits only once every other one in it is gone, so
    /// nothing of a stopped sandbox writes to its workspace afterwards or counts against the
    /// process limit of the sandbox that replaces it.
    async fn wait_gone(id: &str, ends: Vec<OwnedFd>) {
        let gone = tokio::task::spawn_blocking(move || {
            use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
            let deadline = Instant::now() + STOP_TIMEOUT;
            // A pidfd is readable once its process has exited.
            for end in &ends {
                let left = deadline.saturating_duration_since(Instant::now());
                let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::ZERO);
                let mut fds = [PollFd::new(std::os::fd::AsFd::as_fd(end), PollFlags::POLLIN)];
                if !matches!(poll(&mut fds, timeout), Ok(1..)) {
                    return false;
                }
            }
            true
        })
        .await;
        if !matches!(gone, Ok(true)) {
            tracing::warn!(sandbox = %id, "the processes of a stopped sandbox are slow to go");
        }
    }

    async fn set_frozen(&self, entry: &Entry, frozen: bool) -> Result<()> {
        let cgroup = lock(&entry.state).cgroup.clone();
        match cgroup {
            Some(cgroup) => cgroup.freeze(frozen)?,
            None => {
                let signal = if frozen { Signal::SIGSTOP } else { Signal::SIGCONT };
                client::signal_all(&entry.ctl_socket(), signal as i32).await?;
            }
        }
        lock(&entry.state).status =
            if frozen { SandboxStatus::Paused } else { SandboxStatus::Running };
        Ok(())
    }

    /// Pause idle sandboxes and stop those over their disk quota.
    async fn tidy(&self, check_disk: bool) {
        let entries: Vec<Arc<Entry>> = lock(&self.sandboxes).values().cloned().collect();
        for entry in entries {
            if !Self::alive(&entry) {
                continue;
            }
            if check_disk {
                let home = entry.home();
                let quota = self.config.limits.disk_bytes;
                let check = crate::blocking(move || Ok(DiskCheck::of(&home, quota))).await;
                if let Ok(Some(reason)) = check.as_ref().map(DiskCheck::problem) {
                    let _guard = entry.lifecycle.lock().await;
                    tracing::warn!(sandbox = %entry.id, "{reason}; stopping the sandbox");
                    Self::kill_container(&entry, Some(reason));
                    continue;
                }
            }
            let idle_too_long = {
                let state = lock(&entry.state);
                state.status == SandboxStatus::Running
                    && state.busy == 0
                    && self
                        .config
                        .idle_pause
                        .is_some_and(|limit| state.idle_since.elapsed() >= limit)
            };
            if idle_too_long {
                let _guard = entry.lifecycle.lock().await;
                match self.set_frozen(&entry, true).await {
                    Ok(()) => tracing::info!(sandbox = %entry.id, "paused an idle sandbox"),
                    Err(err) => {
                        tracing::warn!(sandbox = %entry.id, %err, "could not pause an idle sandbox")
                    }
                }
            }
        }
    }
}

async fn housekeeping(provider: Weak<LocalProvider>) {
    let mut last_disk_check = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(provider) = provider.upgrade() else { return };
        let check_disk = last_disk_check.elapsed() >= provider.config.disk_check_interval;
        if check_disk {
            last_disk_check = Instant::now();
        }
        provider.tidy(check_disk).await;
    }
}

#[async_trait]
impl SandboxProvider for LocalProvider {
    fn name(&self) -> &'static str {
        "local"
    }

    fn isolates(&self) -> bool {
        true
    }

    async fn ensure(&self, id: &str) -> Result<Arc<dyn Sandbox>> {
        let entry = self.entry(id)?;
        let _guard = entry.lifecycle.lock().await;
        if Self::alive(&entry) {
            if lock(&entry.state).status == SandboxStatus::Paused {
                self.set_frozen(&entry, false).await?;
            }
        } else {
            self.start(&entry).await?;
        }
        lock(&entry.state).idle_since = Instant::now();
        Ok(Arc::new(LocalSandbox {
            workspace: Workspace::new(entry.home(), HOME, Some((entry.uid, entry.uid))),
            tools: self.config.tools.keys().cloned().collect(),
            entry: entry.clone(),
        }))
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let entry = self.entry(id)?;
        let _guard = entry.lifecycle.lock().await;
        let ends = Self::kill_container(&entry, None);
        // Processes still writing into the workspace would race the removal (ENOTEMPTY).
        Self::wait_gone(id, ends).await;
        lock(&self.sandboxes).remove(id);
        // Bounded at any depth: `remove_dir_all` recurses, and a workspace may be nested
        // deeper than any stack allows.
        let dir = entry.dir.clone();
        crate::blocking(move || crate::fs::remove_tree(&dir)).await
    }

    async fn workspace(&self, id: &str) -> Result<Workspace> {
        let entry = self.entry(id)?;
        prepare_dirs(&entry.dir, &entry.home(), entry.uid)?;
        Ok(Workspace::new(entry.home(), HOME, Some((entry.uid, entry.uid))))
    }

    async fn stop(&self, id: &str) -> Result<()> {
        let entry = self.entry(id)?;
        let _guard = entry.lifecycle.lock().await;
        let ends = Self::kill_container(&entry, None);
        Self::wait_gone(id, ends).await;
        Ok(())
    }

    /// Kill the container, wait until all of its processes are gone, and start a new one on
    /// the same workspace (its init answering).
    async fn restart(&self, id: &str) -> Result<()> {
        let entry = self.entry(id)?;
        let _guard = entry.lifecycle.lock().await;
        let ends = Self::kill_container(&entry, None);
        Self::wait_gone(id, ends).await;
        self.start(&entry).await?;
        lock(&entry.state).idle_since = Instant::now();
        tracing::info!(sandbox = %id, "sandbox restarted");
        Ok(())
    }

    async fn stopped_because(&self, id: &str) -> Option<String> {
        lock(&self.sandboxes).get(id).and_then(|entry| lock(&entry.state).stopped_because.clone())
    }

    fn statuses(&self) -> Vec<SandboxStatus> {
        let entries: Vec<Arc<Entry>> = lock(&self.sandboxes).values().cloned().collect();
        entries
            .iter()
            .map(|entry| {
                Self::alive(entry);
                lock(&entry.state).status
            })
            .collect()
    }

    async fn status(&self, id: &str) -> SandboxStatus {
        let Some(entry) = lock(&self.sandboxes).get(id).cloned() else {
            return SandboxStatus::Stopped;
        };
        Self::alive(&entry);
        lock(&entry.state).status
    }

    async fn last_used(&self, id: &str) -> Option<Instant> {
        let entry = lock(&self.sandboxes).get(id).cloned()?;
        Self::alive(&entry);
        let state = lock(&entry.state);
        (state.status == SandboxStatus::Running).then_some(state.idle_since)
    }

    async fn pause(&self, id: &str) -> Result<()> {
        let entry = self.entry(id)?;
        let _guard = entry.lifecycle.lock().await;
        if !Self::alive(&entry) {
            return Ok(());
        }
        self.set_frozen(&entry, true).await
    }

    async fn resume(&self, id: &str) -> Result<()> {
        let entry = self.entry(id)?;
        let _guard = entry.lifecycle.lock().await;
        if Self::alive(&entry) && lock(&entry.state).status == SandboxStatus::Paused {
            self.set_frozen(&entry, false).await?;
        }
        Ok(())
    }

    async fn health(&self) -> ProviderHealth {
        ProviderHealth {
            ok: true,
            detail: format!(
                "{}; {}; sandbox user ids: {}",
                self.bwrap_version,
                self.enforcement.describe(),
                if self.own_uids {
                    "one per sandbox".to_owned()
                } else {
                    "the server's own (the server is not root: sandboxes share one user id and process limit)".to_owned()
                }
            ),
        }
    }
}

struct LocalSandbox {
    entry: Arc<Entry>,
    workspace: Workspace,
    tools: Vec<String>,
}

#[async_trait]
impl Sandbox for LocalSandbox {
    fn id(&self) -> &str {
        &self.entry.id
    }

    fn home(&self) -> &str {
        HOME
    }

    fn tool_path(&self, name: &str) -> Option<String> {
        self.tools.iter().any(|t| t == name).then(|| format!("{TOOLS_DIR}/{name}"))
    }

    fn files(&self) -> &Workspace {
        &self.workspace
    }

    fn command_shell(&self) -> Option<String> {
        Some(format!("{TOOLS_DIR}/{}", shell::SHELL_NAME))
    }

    async fn ports(&self) -> Result<Vec<crate::ListeningPort>> {
        client::ports(&self.entry.ctl_socket()).await
    }

    async fn connect(&self, port: u16) -> Result<Box<dyn crate::PortConnection>> {
        let stream = client::connect(&self.entry.ctl_socket(), port).await?;
        // An open preview connection is a use: the sandbox must not pause under it.
        lock(&self.entry.state).busy += 1;
        Ok(Box::new(Busy { stream, entry: self.entry.clone() }))
    }

    async fn exec(&self, request: ExecRequest) -> Result<SandboxProcess> {
        let spec = ExecSpec {
            program: request.program,
            args: request.args,
            env: request.env,
            cwd: request.cwd,
            pty: request.pty,
            timeout_ms: request.timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            background: request.background,
            as_command: request.as_command,
        };
        let mut process = client::exec(&self.entry.ctl_socket(), spec).await?;
        // Busy until the process has exited: the sandbox is not idle meanwhile.
        let before = {
            let mut state = lock(&self.entry.state);
            state.busy += 1;
            Counters::read(state.cgroup.as_ref())
        };
        let entry = self.entry.clone();
        let exit = process.exit;
        process.exit = Box::pin(async move {
            let status = exit.await;
            let mut state = lock(&entry.state);
            state.busy = state.busy.saturating_sub(1);
            state.idle_since = Instant::now();
            let limit = ended_by_limit(&state, &before, status.as_ref().ok());
            match status {
                Ok(status) => Ok(ExitStatus { limit: limit.or(status.limit), ..status }),
                // The container was stopped under the process: its connection broke.
                Err(_) if limit.is_some() => {
                    Ok(ExitStatus { signal: Some(9), limit, ..ExitStatus::default() })
                }
                Err(err) => Err(err),
            }
        });
        Ok(process)
    }
}

/// A connection into the sandbox that keeps it busy (not idle) while it is open.
struct Busy {
    stream: client::PortStream,
    entry: Arc<Entry>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut state = lock(&self.entry.state);
        state.busy = state.busy.saturating_sub(1);
        state.idle_since = Instant::now();
    }
}

impl tokio::io::AsyncRead for Busy {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Busy {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// The kernel's counts of limit events in a sandbox's cgroup (cgroup v2 only).
#[derive(Default)]
struct Counters {
    oom_kills: Option<u64>,
    forks_refused: Option<u64>,
}

impl Counters {
    fn read(cgroup: Option<&SandboxCgroup>) -> Self {
        cgroup.map_or_else(Self::default, |cgroup| Self {
            oom_kills: cgroup.oom_kills(),
            forks_refused: cgroup.forks_refused(),
        })
    }
}

/// The limit that ended an exec, where that is certain: the provider stopped the sandbox
/// over its disk quota under it, or it died by a signal while the sandbox's cgroup counted
/// an OOM kill or a refused fork.
fn ended_by_limit(
    state: &State,
    before: &Counters,
    status: Option<&ExitStatus>,
) -> Option<SandboxLimit> {
    if state.stopped_because.is_some() && status.is_none_or(|s| s.signal.is_some()) {
        return Some(SandboxLimit::Disk);
    }
    status?.signal?;
    let after = Counters::read(state.cgroup.as_ref());
    let grew = |before: Option<u64>, after: Option<u64>| matches!((before, after), (Some(b), Some(a)) if a > b);
    if grew(before.oom_kills, after.oom_kills) {
        Some(SandboxLimit::Memory)
    } else if grew(before.forks_refused, after.forks_refused) {
        Some(SandboxLimit::Processes)
    } else {
        None
    }
}

fn prepare_dirs(dir: &Path, home: &Path, uid: u32) -> Result<()> {
    std::fs::create_dir_all(home)?;
    for (path, mode) in
        [(dir.to_path_buf(), 0o711), (dir.join("proxy"), 0o711), (dir.join("ctl"), 0o700)]
    {
        std::fs::create_dir_all(&path)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
    }
    let meta = std::fs::metadata(home)?;
    if meta.uid() != uid {
        nix::unistd::chown(
            home,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(uid)),
        )
        .map_err(std::io::Error::from)?;
    }
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// `dir` opened `O_PATH`: a handle to name it by, that reads nothing.
fn open_path(dir: &Path) -> Result<OwnedFd> {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    Ok(nix::fcntl::open(dir, flags, nix::sys::stat::Mode::empty()).map_err(std::io::Error::from)?)
}

/// Sandboxes' sockets are bound and reached through `/proc/self/fd/<dir>/` (see
/// [`Entry::short_path`]); say so at start-up if that does not work here (no `/proc`).
fn check_short_socket_paths(root: &Path) -> Result<()> {
    let name = ".socket-check.sock";
    // A check cut short by a crash may have left its socket behind; there is none otherwise.
    let _ = std::fs::remove_file(root.join(name));
    let checked = open_path(root).and_then(|dir| {
        let path = PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()));
        let listener = std::os::unix::net::UnixListener::bind(&path)?;
        std::os::unix::net::UnixStream::connect(&path)?;
        drop(listener);
        Ok(std::fs::remove_file(root.join(name))?)
    });
    checked.map_err(|err| {
        SandboxError::Unavailable(format!(
            "sandbox sockets are bound through /proc/self/fd/ (Unix socket paths are limited to \
             108 bytes, less than a data directory's may be), which does not work here: {err}; \
             is /proc mounted?"
        ))
    })
}

/// Pidfds of a container's bubblewrap process (`bwrap`, the server's child) and of its
/// children, the first processes of the container's pid namespace.
fn container_ends(bwrap: u32) -> Vec<OwnedFd> {
    let Ok(bwrap) = i32::try_from(bwrap) else { return Vec::new() };
    let root = nix::unistd::Pid::from_raw(bwrap);
    std::iter::once(root)
        .chain(shell::descendants(root).into_iter().take(4))
        .filter_map(|pid| rustix::process::Pid::from_raw(pid.as_raw()))
        .filter_map(|pid| {
            rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
        })
        .collect()
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err.into()),
        _ => Ok(()),
    }
}

/// A pipe whose read end yields `data` and then end of file (for `--ro-bind-data` and
/// `--seccomp`). The data must fit the pipe's buffer.
fn data_pipe(data: &[u8]) -> Result<OwnedFd> {
    let (read, write) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
    let mut file = std::fs::File::from(write);
    std::io::Write::write_all(&mut file, data)?;
    Ok(read)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// The first directory above `path` that other users cannot traverse, if any.
fn closed_ancestor(path: &Path) -> Option<PathBuf> {
    let path = path.canonicalize().ok()?;
    path.ancestors()
        .skip(1)
        .find(|dir| std::fs::metadata(dir).is_ok_and(|m| m.mode() & 0o001 == 0))
        .map(Path::to_path_buf)
}

/// A path to `source` that the sandboxes' users can open (bubblewrap binds it as them):
/// `source` itself if every directory above it can be traversed by others, else a copy in
/// `<root>/.tools`, refreshed when the source changes.
fn shareable(root: &Path, name: &str, source: &Path) -> Result<PathBuf> {
    let source = source.canonicalize()?;
    let reachable = source
        .ancestors()
        .skip(1)
        .all(|dir| std::fs::metadata(dir).is_ok_and(|m| m.mode() & 0o001 != 0))
        && std::fs::metadata(&source).is_ok_and(|m| m.mode() & 0o005 == 0o005);
    if reachable {
        return Ok(source);
    }
    let tools = root.join(".tools");
    std::fs::create_dir_all(&tools)?;
    std::fs::set_permissions(&tools, std::fs::Permissions::from_mode(0o711))?;
    let copy = tools.join(name);
    let source_meta = std::fs::metadata(&source)?;
    let fresh = std::fs::metadata(&copy)
        .is_ok_and(|m| m.len() == source_meta.len() && m.mtime() >= source_meta.mtime());
    if !fresh {
        let temp = tools.join(format!(".{name}.tmp"));
        std::fs::copy(&source, &temp)?;
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(0o755))?;
        std::fs::rename(&temp, &copy)?;
    }
    Ok(copy)
}

/// What the container's first process sets up between fork and exec.
struct ChildSetup {
    inherit: Vec<RawFd>,
    cgroup_procs: Option<RawFd>,
    degraded: bool,
    limits: Limits,
    /// Switch to this user (and group) id; `None` keeps the server's.
    user: Option<u32>,
}

#[allow(unsafe_code)]
fn prepare_container(command: &mut tokio::process::Command, setup: ChildSetup) -> Result<()> {
    let oom_path = CString::new("/proc/self/oom_score_adj").map_err(std::io::Error::other)?;
    // SAFETY: the closure runs in the forked child before exec. It only makes
    // async-signal-safe system calls (open, write, close, fcntl, setrlimit, setpriority,
    // setgroups, setresgid, setresuid) on data prepared before the fork; it does not
    // allocate.
    unsafe {
        command.pre_exec(move || {
            // Join the sandbox's cgroup before anything else is started.
            if let Some(fd) = setup.cgroup_procs
                && libc::write(fd, b"0".as_ptr().cast(), 1) != 1
            {
                return Err(std::io::Error::last_os_error());
            }
            // The OOM killer should pick sandbox processes before the server.
            let oom = libc::open(oom_path.as_ptr(), libc::O_WRONLY);
            if oom >= 0 {
                libc::write(oom, b"1000".as_ptr().cast(), 4);
                libc::close(oom);
            }
            let limits = setup.limits;
            setrlimit(Resource::RLIMIT_FSIZE, limits.max_file_bytes(), limits.max_file_bytes())?;
            setrlimit(Resource::RLIMIT_NOFILE, limits.open_files, limits.open_files)?;
            setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
            if setup.degraded {
                setrlimit(Resource::RLIMIT_DATA, limits.memory_bytes, limits.memory_bytes)?;
                if setup.user.is_some() {
                    setrlimit(Resource::RLIMIT_NPROC, limits.processes, limits.processes)?;
                }
                libc::setpriority(libc::PRIO_PROCESS, 0, 10);
            }
            for &fd in &setup.inherit {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if let Some(id) = setup.user
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setresgid(id, id, id) != 0
                    || libc::setresuid(id, id, id) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}
