//! The `host` provider: a directory per sandbox and nothing else.
//!
//! It exists so that agentbox runs where Linux namespaces are unavailable and as the baseline
//! the isolating providers are measured against. It isolates NOTHING: the agent runs as the
//! server's own user with the server's view of the file system and network. Only its
//! environment is cleaned, so the server's secrets (`SECRET_KEY`, `DATABASE_URL`, ...) are not
//! handed to the agent by accident.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::process::{ExitStatus, ProcessKiller, SandboxProcess, StopTarget};
use crate::{
    ExecRequest, ProviderHealth, Result, Sandbox, SandboxError, SandboxProvider, Tools, check_id,
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
        kill_marked(|var| var.starts_with(prefix.as_bytes()))
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
        let home = self.dir(id)?.join("home");
        create_private_dir(&home).await?;
        let home = home.to_str().ok_or_else(|| SandboxError::InvalidId(id.to_owned()))?.to_owned();
        Ok(Arc::new(HostSandbox {
            id: id.to_owned(),
            dir: self.dir(id)?,
            home,
            tools: self.tools.clone(),
        }))
    }

    async fn delete(&self, id: &str) -> Result<()> {
        let dir = self.dir(id)?;
        // Stop everything still running in the sandbox first, or it could write into the
        // directory while it is being removed.
        let prefix = format!("{MARKER}={}#", dir.display());
        kill_marked(|var| var.starts_with(prefix.as_bytes()));
        match tokio::fs::remove_dir_all(dir).await {
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            other => Ok(other?),
        }
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

    async fn exec(&self, request: ExecRequest) -> Result<SandboxProcess> {
        let exec = EXECS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let marker = format!("{}#{exec}", self.dir.display());
        #[allow(clippy::disallowed_methods)] // This crate is where processes are started.
        let mut command = tokio::process::Command::new(&request.program);
        command
            .args(&request.args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_else(|_| DEFAULT_PATH.to_owned()))
            .env("HOME", &self.home)
            .env("LANG", "C.UTF-8")
            .env(MARKER, &marker)
            .envs(request.env.iter().map(|(k, v)| (k, v)))
            .current_dir(request.cwd.as_deref().unwrap_or(&self.home))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // A group of its own, so that stopping the process also stops what it started.
            .process_group(0);
        die_with_parent(&mut command);
        let mut child = command
            .spawn()
            .map_err(|source| SandboxError::Spawn { program: request.program.clone(), source })?;
        let pid =
            child.id().ok_or_else(|| io::Error::other("process exited before its pid was read"))?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(io::Error::other("child stdio was not piped").into());
        };
        let exit = Box::pin(async move {
            let status = child.wait().await?;
            Ok(ExitStatus { code: status.code(), signal: status.signal() })
        });
        Ok(SandboxProcess {
            stdin: Box::new(stdin),
            stdout: Box::new(stdout),
            stderr: Box::new(stderr),
            exit,
            killer: ProcessKiller::new(ProcessTree { pid, marker: format!("{MARKER}={marker}") }),
        })
    }
}

/// Everything one exec started: the process group of its first process, and every process
/// carrying its marker (which includes tools in process groups of their own).
struct ProcessTree {
    pid: u32,
    marker: String,
}

impl ProcessTree {
    fn signal_group(&self, signal: Signal) {
        let Ok(pid) = i32::try_from(self.pid) else { return };
        // ESRCH (the group is already gone) is the expected outcome after a normal exit.
        let _ = killpg(Pid::from_raw(pid), signal);
    }
}

impl StopTarget for ProcessTree {
    fn terminate(&self) {
        // Politely, to the leader's group only: the CLI stops its own tools on SIGTERM.
        self.signal_group(Signal::SIGTERM);
    }

    fn kill(&self) {
        self.signal_group(Signal::SIGKILL);
        kill_marked(|var| var == self.marker.as_bytes());
    }
}

/// SIGKILL every process of this user whose environment has a variable matching `is_ours`.
/// Returns how many were signalled.
fn kill_marked(is_ours: impl Fn(&[u8]) -> bool) -> usize {
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    let mut killed = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        if u32::try_from(pid).is_ok_and(|pid| pid == own) {
            continue;
        }
        // Unreadable (another user's process) or gone: not ours either way.
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if environ.split(|&b| b == 0).any(&is_ours)
            && nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok()
        {
            killed += 1;
        }
    }
    killed
}

/// Ask the kernel to kill the child when the server dies, even by SIGKILL, so that no agent
/// keeps running unsupervised after a crash.
#[allow(unsafe_code)]
fn die_with_parent(command: &mut tokio::process::Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl(2), which
    // is async-signal-safe and touches no memory of the parent.
    unsafe {
        command
            .pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from));
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
