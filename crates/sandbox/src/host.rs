//! The `host` provider: a directory per sandbox and nothing else.
//!
//! It exists so that agentbox runs where Linux namespaces are unavailable and as the baseline
//! the isolating providers are measured against. It isolates NOTHING: the agent runs as the
//! server's own user with the server's view of the file system and network. Only its
//! environment is cleaned, so the server's secrets (`SECRET_KEY`, `DATABASE_URL`, ...) are not
//! handed to the agent by accident.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use nix::sys::signal::Signal;

use crate::process::{ProcessKiller, SandboxProcess, StopTarget};
use crate::spawn::{SpawnSpec, kill_tree, signal_marked, spawn};
use crate::{
    ExecRequest, ProviderHealth, PtySize, Result, Sandbox, SandboxError, SandboxProvider, Tools,
    Workspace, check_id,
};

/// Every process started in a host sandbox, and everything it starts, carries this variable:
/// `<sandbox directory>#<exec number>`. The CLI puts the tools it runs into process groups of
/// their own, so signalling the CLI's group does not reach them; the marker does. It finds
/// what one exec started (to kill it) and what a crashed server left behind (to reap it).
const MARKER: &str = "AGENTBOX_SANDBOX";

/// Numbers execs, to tell their markers apart.
static EXECS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Used when the server's own `PATH` is unset.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug)]
pub struct HostProvider {
    root: PathBuf,
    tools: Tools,
}

impl HostProvider {
    /// Sandboxes live under `root`, one directory each.
    pub fn new(root: impl Into<PathBuf>, tools: Tools) -> Self {
        Self { root: root.into(), tools }
    }

    fn dir(&self, id: &str) -> Result<PathBuf> {
        check_id(id)?;
        Ok(self.root.join(id))
    }

    /// Kill the processes of this provider's sandboxes that a previous server left behind
    /// when it died (the CLI itself dies with the server; tools it started may not). Call
    /// once at start-up, before any sandbox process is started. Returns how many were killed.
    pub fn reap_orphans(&self) -> usize {
        let prefix = format!("{MARKER}={}/", self.root.display());
        signal_marked(|var| var.starts_with(prefix.as_bytes()), Signal::SIGKILL)
    }
}

#[async_trait]
impl SandboxProvider for HostProvider {
    fn name(&self) -> &'static str {
        "host"
    }

    fn isolates(&self) -> bool {
        false
    }

    async fn ensure(&self, id: &str) -> Result<Arc<dyn Sandbox>> {
        let dir = self.dir(id)?;
        let home = dir.join("home");
        create_private_dir(&home).await?;
        let home_str =
            home.to_str().ok_or_else(|| SandboxError::InvalidId(id.to_owned()))?.to_owned();
        Ok(Arc::new(HostSandbox {
            id: id.to_owned(),
            dir,
            workspace: Workspace::new(&home, home_str.clone(), None),
            home: home_str,
            tools: self.tools.clone(),
        }))
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let dir = self.dir(id)?;
        // Stop everything still running in the sandbox first, or it could write into the
        // directory while it is being removed.
        let prefix = format!("{MARKER}={}#", dir.display());
        signal_marked(|var| var.starts_with(prefix.as_bytes()), Signal::SIGKILL);
        // Not `remove_dir_all`: it recurses, and the agent may have nested its workspace
        // deeply enough to overflow the stack.
        crate::blocking(move || crate::fs::remove_tree(&dir)).await
    }

    /// Kills every process carrying one of the sandbox's markers (a restart, by the trait's
    /// default, is this followed by `ensure`: there is nothing else to start).
    async fn stop(&self, id: &str) -> Result<()> {
        let prefix = format!("{MARKER}={}#", self.dir(id)?.display());
        signal_marked(|var| var.starts_with(prefix.as_bytes()), Signal::SIGKILL);
        Ok(())
    }

    async fn health(&self) -> ProviderHealth {
        match create_private_dir(&self.root).await {
            Ok(()) => ProviderHealth {
                ok: true,
                detail: "host provider: the agent runs unconfined as the server's user".into(),
            },
            Err(err) => ProviderHealth {
                ok: false,
                detail: format!("cannot use {}: {err}", self.root.display()),
            },
        }
    }
}

async fn create_private_dir(path: &Path) -> io::Result<()> {
    let mut builder = tokio::fs::DirBuilder::new();
    builder.recursive(true).mode(0o700);
    builder.create(path).await
}

#[derive(Debug)]
struct HostSandbox {
    id: String,
    dir: PathBuf,
    home: String,
    workspace: Workspace,
    tools: Tools,
}

#[async_trait]
impl Sandbox for HostSandbox {
    fn id(&self) -> &str {
        &self.id
    }

    fn home(&self) -> &str {
        &self.home
    }

    fn tool_path(&self, name: &str) -> Option<String> {
        self.tools.get(name).and_then(|path| path.to_str()).map(str::to_owned)
    }

    fn files(&self) -> &Workspace {
        &self.workspace
    }

    async fn exec(&self, request: ExecRequest) -> Result<SandboxProcess> {
        let exec = EXECS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let marker = format!("{}#{exec}", self.dir.display());
        let mut env = vec![
            ("PATH".to_owned(), std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_owned())),
            ("HOME".to_owned(), self.home.clone()),
            ("LANG".to_owned(), "C.UTF-8".to_owned()),
        ];
        if request.pty.is_some() {
            env.push(("TERM".to_owned(), "xterm-256color".to_owned()));
        }
        env.extend(request.env.iter().cloned());
        let spawned = spawn(SpawnSpec {
            program: request.program.clone(),
            args: request.args.clone(),
            env,
            cwd: request.cwd.clone().unwrap_or_else(|| self.home.clone()),
            pty: request.pty,
            marker: (MARKER.to_owned(), marker.clone()),
            die_with_parent: true,
            keep_when_dropped: request.background,
            process_limit: None,
        })
        .map_err(|source| SandboxError::Spawn { program: request.program.clone(), source })?;
        let killer = ProcessKiller::new(ProcessTree {
            pid: spawned.pid,
            marker: format!("{MARKER}={marker}"),
            pty: spawned.pty.clone(),
        });
        if let Some(timeout) = request.timeout {
            let killer = killer.clone();
            tokio::spawn(async move {
                tokio::time::sleep(timeout).await;
                killer.kill();
            });
        }
        Ok(SandboxProcess {
            stdin: spawned.stdin,
            stdout: spawned.stdout,
            stderr: spawned.stderr,
            exit: spawned.exit,
            killer,
        })
    }
}

/// Everything one exec started: the process group of its first process, and every process
/// carrying its marker (which includes tools in process groups of their own).
struct ProcessTree {
    pid: u32,
    marker: String,
    pty: Option<Arc<std::os::fd::OwnedFd>>,
}

impl StopTarget for ProcessTree {
    fn terminate(&self) {
        // Politely, to the leader's group only: the CLI stops its own tools on SIGTERM.
        if let Ok(pid) = i32::try_from(self.pid) {
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
        }
    }

    fn kill(&self) {
        kill_tree(self.pid, &self.marker, Signal::SIGKILL);
    }

    fn resize(&self, size: PtySize) {
        if let Some(pty) = &self.pty
            && let Err(err) = crate::spawn::resize(pty, size)
        {
            tracing::debug!(%err, "resizing a terminal failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn runs_in_its_home_with_a_clean_environment() {
        let root = tempfile::tempdir().unwrap();
        // SAFETY-free way to prove the server environment is not inherited: a variable
        // that is surely set for this test process.
        assert!(std::env::var("PATH").is_ok());
        let provider = HostProvider::new(root.path(), Tools::new());
        let sandbox = provider.ensure("chat-1").await.unwrap();
        let mut process = sandbox
            .exec(ExecRequest {
                program: "/bin/sh".into(),
                args: vec![
                    "-c".into(),
                    "read line; echo \"$line|$(pwd)|$HOME|${CARGO:-unset}\"".into(),
                ],
                ..ExecRequest::default()
            })
            .await
            .unwrap();
        process.stdin.write_all(b"hello\n").await.unwrap();
        let mut out = String::new();
        process.stdout.read_to_string(&mut out).await.unwrap();
        let status = process.exit.await.unwrap();
        assert!(status.success(), "{status}");
        let home = root.path().join("chat-1/home");
        assert_eq!(out.trim(), format!("hello|{0}|{0}|unset", home.display()));
    }

    #[tokio::test]
    async fn kill_stops_the_process_group() {
        let root = tempfile::tempdir().unwrap();
        let provider = HostProvider::new(root.path(), Tools::new());
        let sandbox = provider.ensure("k").await.unwrap();
        let process = sandbox
            .exec(ExecRequest {
                program: "/bin/sh".into(),
                args: vec!["-c".into(), "sleep 1000 & sleep 1000".into()],
                ..ExecRequest::default()
            })
            .await
            .unwrap();
        process.killer.kill();
        let status = process.exit.await.unwrap();
        assert_eq!(status.signal, Some(9));
    }

    #[tokio::test]
    async fn orphans_of_a_previous_server_are_reaped() {
        let root = tempfile::tempdir().unwrap();
        let provider = HostProvider::new(root.path(), Tools::new());
        let sandbox = provider.ensure("orphan").await.unwrap();
        // A background process that outlives its parent shell, as a tool's child would.
        let mut process = sandbox
            .exec(ExecRequest {
                program: "/bin/sh".into(),
                args: vec![
                    "-c".into(),
                    "setsid sleep 1000 >/dev/null 2>&1 </dev/null & echo $!".into(),
                ],
                ..ExecRequest::default()
            })
            .await
            .unwrap();
        let mut out = String::new();
        process.stdout.read_to_string(&mut out).await.unwrap();
        process.exit.await.unwrap();
        let pid: i32 = out.trim().parse().unwrap();
        let alive = |pid: i32| std::path::Path::new(&format!("/proc/{pid}")).exists();
        assert!(alive(pid));
        let other_root = tempfile::tempdir().unwrap();
        assert_eq!(HostProvider::new(other_root.path(), Tools::new()).reap_orphans(), 0);
        assert_eq!(provider.reap_orphans(), 1);
        for _ in 0..100 {
            if !alive(pid)
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap_or_default()
                    .contains(") Z")
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("process {pid} survived the reaping");
    }

    /// Start `script` and read the pid it prints first.
    async fn exec_reporting_pid(sandbox: &dyn Sandbox, script: &str) -> (SandboxProcess, i32) {
        let mut process = sandbox
            .exec(ExecRequest {
                program: "/bin/sh".into(),
                args: vec!["-c".into(), script.into()],
                ..ExecRequest::default()
            })
            .await
            .unwrap();
        let mut line = String::new();
        let mut reader = tokio::io::BufReader::new(&mut process.stdout);
        tokio::io::AsyncBufReadExt::read_line(&mut reader, &mut line).await.unwrap();
        (process, line.trim().parse().unwrap())
    }

    #[tokio::test]
    async fn kill_reaches_processes_in_groups_of_their_own() {
        let root = tempfile::tempdir().unwrap();
        let provider = HostProvider::new(root.path(), Tools::new());
        let sandbox = provider.ensure("tree").await.unwrap();
        let (process, detached) = exec_reporting_pid(
            sandbox.as_ref(),
            "setsid sleep 1000 >/dev/null 2>&1 </dev/null & echo $!; exec sleep 1000",
        )
        .await;
        // Another exec in the same sandbox must survive the kill.
        let (bystander, bystander_pid) =
            exec_reporting_pid(sandbox.as_ref(), "echo $$; exec sleep 1000").await;
        process.killer.kill();
        assert_eq!(process.exit.await.unwrap().signal, Some(9));
        assert!(gone(detached).await, "the detached process survived");
        assert!(!gone_now(bystander_pid), "another exec was killed too");
        bystander.killer.kill();
        assert!(gone(bystander_pid).await);
    }

    fn gone_now(pid: i32) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.is_empty() || stat.contains(") Z")
    }

    async fn gone(pid: i32) -> bool {
        for _ in 0..100 {
            if gone_now(pid) {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        false
    }

    /// Read from a PTY until `needle` shows up.
    async fn read_until(
        reader: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
        needle: &str,
    ) -> String {
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while !seen.contains(needle) {
            let n = tokio::time::timeout(std::time::Duration::from_secs(20), reader.read(&mut buf))
                .await
                .expect("the terminal went quiet")
                .unwrap();
            assert!(n > 0, "the terminal closed before {needle:?}: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        seen
    }

    #[tokio::test]
    async fn a_shell_on_a_pty_runs_commands_and_follows_resizes() {
        let root = tempfile::tempdir().unwrap();
        let provider = HostProvider::new(root.path(), Tools::new());
        let sandbox = provider.ensure("pty").await.unwrap();
        let mut process = sandbox
            .exec(ExecRequest {
                program: "/bin/bash".into(),
                args: vec!["--norc".into(), "--noprofile".into(), "-i".into()],
                pty: Some(PtySize { cols: 80, rows: 24 }),
                ..ExecRequest::default()
            })
            .await
            .unwrap();
        process.stdin.write_all(b"echo $((6 * 7)); tty; stty size\n").await.unwrap();
        let out = read_until(process.stdout.as_mut(), "24 80").await;
        assert!(out.contains("42") && out.contains("/dev/pts/"), "{out}");
        process.killer.resize(PtySize { cols: 132, rows: 40 });
        process.stdin.write_all(b"stty size\n").await.unwrap();
        read_until(process.stdout.as_mut(), "40 132").await;
        process.stdin.write_all(b"exit 3\n").await.unwrap();
        assert_eq!(process.exit.await.unwrap().code, Some(3));
    }

    #[tokio::test]
    async fn a_timeout_kills_the_process() {
        let root = tempfile::tempdir().unwrap();
        let provider = HostProvider::new(root.path(), Tools::new());
        let sandbox = provider.ensure("timeout").await.unwrap();
        let process = sandbox
            .exec(ExecRequest {
                program: "/bin/sleep".into(),
                args: vec!["1000".into()],
                timeout: Some(std::time::Duration::from_millis(200)),
                ..ExecRequest::default()
            })
            .await
            .unwrap();
        assert_eq!(process.exit.await.unwrap().signal, Some(9));
    }

    #[tokio::test]
    async fn a_restart_kills_the_sandboxs_processes_and_keeps_its_files() {
        let root = tempfile::tempdir().unwrap();
        let provider = HostProvider::new(root.path(), Tools::new());
        let sandbox = provider.ensure("again").await.unwrap();
        let (process, pid) = exec_reporting_pid(
            sandbox.as_ref(),
            "echo kept > notes.txt; setsid sleep 1000 >/dev/null 2>&1 </dev/null & echo $!",
        )
        .await;
        process.exit.await.unwrap();
        // Another sandbox's process is not the restart's business.
        let other = provider.ensure("bystander").await.unwrap();
        let (bystander, bystander_pid) =
            exec_reporting_pid(other.as_ref(), "echo $$; exec sleep 1000").await;
        provider.restart("again").await.unwrap();
        assert!(gone(pid).await, "a process of the sandbox survived its restart");
        assert!(!gone_now(bystander_pid));
        let home = root.path().join("again/home");
        assert_eq!(std::fs::read_to_string(home.join("notes.txt")).unwrap(), "kept\n");
        bystander.killer.kill();
    }

    #[tokio::test]
    async fn delete_removes_the_directory_and_ids_are_checked() {
        let root = tempfile::tempdir().unwrap();
        let provider = HostProvider::new(root.path(), Tools::new());
        provider.ensure("gone").await.unwrap();
        assert!(root.path().join("gone/home").is_dir());
        provider.delete("gone").await.unwrap();
        assert!(!root.path().join("gone").exists());
        provider.delete("gone").await.unwrap();
        assert!(matches!(provider.ensure("../escape").await, Err(SandboxError::InvalidId(_))));
    }
}
