//! The `local` provider for real: bubblewrap containers on this machine, driven through the
//! `Sandbox` trait. Needs `bwrap` (installed by scripts/setup) and runs as root in CI, so
//! that every sandbox gets a user id of its own.
// Test helpers may unwrap: a panic is a failed test with a clear location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentbox_sandbox::egress::{AllowList, Egress, EgressPolicy};
use agentbox_sandbox::local::limits::Limits;
use agentbox_sandbox::local::{LocalConfig, LocalProvider};
use agentbox_sandbox::{ExecRequest, PtySize, Sandbox, SandboxProvider, SandboxStatus};
use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Allow(AllowList);

#[async_trait]
impl EgressPolicy for Allow {
    async fn decide(&self, _sandbox: &str, host: &str, port: u16) -> Egress {
        if self.0.allows(host, port) { Egress::Allowed } else { Egress::Denied }
    }
}

fn config(root: PathBuf) -> LocalConfig {
    LocalConfig {
        root,
        init_program: PathBuf::from(env!("CARGO_BIN_EXE_agentbox-sandbox-init")),
        init_args: vec![],
        tools: Default::default(),
        limits: Limits {
            processes: 200,
            memory_bytes: 1 << 30,
            disk_bytes: 200 << 20,
            ..Limits::default()
        },
        uid_base: 300_000,
        idle_pause: None,
        disk_check_interval: Duration::from_millis(500),
        egress: Arc::new(Allow(AllowList::default())),
    }
}

/// Run a shell command in the sandbox; returns (exit code, stdout, stderr).
async fn sh(sandbox: &dyn Sandbox, script: &str) -> (Option<i32>, String, String) {
    let mut process = sandbox
        .exec(ExecRequest {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            ..ExecRequest::default()
        })
        .await
        .unwrap();
    drop(process.stdin);
    let mut out = String::new();
    let mut err = String::new();
    let (a, b) = tokio::join!(
        process.stdout.read_to_string(&mut out),
        process.stderr.read_to_string(&mut err)
    );
    a.unwrap();
    b.unwrap();
    let status =
        tokio::time::timeout(Duration::from_secs(120), process.exit).await.unwrap().unwrap();
    (status.code, out, err)
}

#[tokio::test]
async fn a_sandbox_runs_commands_as_an_unprivileged_user_in_its_own_world() {
    let dir = tempfile::tempdir().unwrap();
    let provider = LocalProvider::new(config(dir.path().join("sandboxes"))).await.unwrap();
    let sandbox = provider.ensure("chat-a").await.unwrap();
    let (code, out, err) = sh(
        sandbox.as_ref(),
        "id -u; id -un; hostname; pwd; echo $HOME; ls /; echo hi > made-inside.txt",
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(&lines[..5], ["1000", "user", "chat-a", "/home/user", "/home/user"], "{out}");
    let written = dir.path().join("sandboxes/chat-a/home/made-inside.txt");
    assert_eq!(std::fs::read_to_string(&written).unwrap(), "hi\n");
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(&written).unwrap().uid();
    if nix::unistd::geteuid().is_root() {
        assert_eq!(owner, 300_000, "the sandbox's files belong to its own user id on the host");
    }
    assert_eq!(provider.status("chat-a").await, SandboxStatus::Running);
}

async fn read_until(
    reader: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
    needle: &str,
) -> String {
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while !seen.contains(needle) {
        let n = tokio::time::timeout(Duration::from_secs(30), reader.read(&mut buf))
            .await
            .expect("quiet terminal")
            .unwrap();
        assert!(n > 0, "the terminal closed before {needle:?}: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    seen
}

#[tokio::test]
async fn a_terminal_runs_a_shell_and_follows_resizes() {
    let dir = tempfile::tempdir().unwrap();
    let provider = LocalProvider::new(config(dir.path().join("sandboxes"))).await.unwrap();
    let sandbox = provider.ensure("term").await.unwrap();
    let mut shell = sandbox
        .exec(ExecRequest {
            program: "/bin/bash".into(),
            args: vec!["--norc".into(), "-i".into()],
            pty: Some(PtySize { cols: 80, rows: 24 }),
            ..ExecRequest::default()
        })
        .await
        .unwrap();
    shell.stdin.write_all(b"echo $((6*7)) $(id -un); stty size\n").await.unwrap();
    let out = read_until(shell.stdout.as_mut(), "24 80").await;
    assert!(out.contains("42 user"), "{out}");
    shell.killer.resize(PtySize { cols: 120, rows: 33 });
    shell.stdin.write_all(b"stty size\n").await.unwrap();
    read_until(shell.stdout.as_mut(), "33 120").await;
    shell.stdin.write_all(b"exit 7\n").await.unwrap();
    assert_eq!(shell.exit.await.unwrap().code, Some(7));
}

#[tokio::test]
async fn background_processes_survive_between_calls_and_kill_reaches_a_whole_tree() {
    let dir = tempfile::tempdir().unwrap();
    let provider = LocalProvider::new(config(dir.path().join("sandboxes"))).await.unwrap();
    let sandbox = provider.ensure("bg").await.unwrap();
    // A "dev server" started in the background by one call...
    let (code, _, err) = sh(
        sandbox.as_ref(),
        "nohup python3 -m http.server 8000 --bind 127.0.0.1 >/tmp/server.log 2>&1 &",
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    // ...answers later calls.
    let probe = "for i in $(seq 50); do python3 -c 'import urllib.request,os; os.environ.pop(\"http_proxy\"); os.environ.pop(\"HTTP_PROXY\"); print(urllib.request.urlopen(\"http://127.0.0.1:8000/\").status)' 2>/dev/null && exit 0; sleep 0.1; done; exit 1";
    let (code, out, _) = sh(sandbox.as_ref(), probe).await;
    assert_eq!((code, out.trim()), (Some(0), "200"));

    // A process tree that escapes its group is still killed as a whole.
    let mut tree = sandbox
        .exec(ExecRequest {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), "setsid sleep 1000 & echo started; exec sleep 1000".into()],
            ..ExecRequest::default()
        })
        .await
        .unwrap();
    read_until(tree.stdout.as_mut(), "started").await;
    tree.killer.kill();
    assert_eq!(tree.exit.await.unwrap().signal, Some(9));
    let (_, out, _) = sh(sandbox.as_ref(), "sleep 0.3; pgrep -c -x sleep || true").await;
    assert_eq!(out.trim(), "0", "sleep processes survived the kill");
    // The background server was not part of that tree.
    let (code, _, _) = sh(sandbox.as_ref(), "pgrep -f http.server").await;
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn timeouts_pause_resume_restart_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sandboxes");
    let provider = LocalProvider::new(config(root.clone())).await.unwrap();
    let sandbox = provider.ensure("life").await.unwrap();
    let slow = sandbox
        .exec(ExecRequest {
            program: "/bin/sleep".into(),
            args: vec!["1000".into()],
            timeout: Some(Duration::from_millis(300)),
            ..ExecRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(slow.exit.await.unwrap().signal, Some(9));

    // Pause freezes the sandbox's processes; resume thaws them.
    let (code, _, _) = sh(sandbox.as_ref(), "nohup sh -c 'while true; do date +%s%N > /home/user/tick; sleep 0.05; done' >/dev/null 2>&1 &").await;
    assert_eq!(code, Some(0));
    tokio::time::sleep(Duration::from_millis(200)).await;
    provider.pause("life").await.unwrap();
    assert_eq!(provider.status("life").await, SandboxStatus::Paused);
    let tick = root.join("life/home/tick");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let frozen = std::fs::read_to_string(&tick).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(std::fs::read_to_string(&tick).unwrap(), frozen, "a paused sandbox kept running");
    // Using it resumes it.
    let sandbox = provider.ensure("life").await.unwrap();
    assert_eq!(provider.status("life").await, SandboxStatus::Running);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_ne!(std::fs::read_to_string(&tick).unwrap(), frozen, "the sandbox did not resume");

    // A fresh provider (a server restart) starts the sandbox again on the same workspace.
    drop(sandbox);
    drop(provider);
    let provider = LocalProvider::new(config(root.clone())).await.unwrap();
    let sandbox = provider.ensure("life").await.unwrap();
    let (code, out, _) = sh(sandbox.as_ref(), "test -f tick && echo kept").await;
    assert_eq!((code, out.trim()), (Some(0), "kept"));

    provider.delete("life").await.unwrap();
    assert!(!root.join("life").exists());
    assert_eq!(provider.status("life").await, SandboxStatus::Stopped);
}

#[tokio::test]
async fn an_idle_sandbox_pauses_itself_and_resumes_on_use() {
    let dir = tempfile::tempdir().unwrap();
    let provider = LocalProvider::new(LocalConfig {
        idle_pause: Some(Duration::from_millis(300)),
        ..config(dir.path().join("sandboxes"))
    })
    .await
    .unwrap();
    let sandbox = provider.ensure("idle").await.unwrap();
    // While the server holds a process of the sandbox, it is not idle.
    let busy = sandbox
        .exec(ExecRequest {
            program: "/bin/sleep".into(),
            args: vec!["2".into()],
            ..ExecRequest::default()
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(provider.status("idle").await, SandboxStatus::Running);
    assert!(busy.exit.await.unwrap().success());
    // Then it is, and pauses itself.
    let mut status = SandboxStatus::Running;
    for _ in 0..100 {
        status = provider.status("idle").await;
        if status == SandboxStatus::Paused {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status, SandboxStatus::Paused);
    // The next use resumes it transparently.
    let sandbox = provider.ensure("idle").await.unwrap();
    let (code, out, _) = sh(sandbox.as_ref(), "echo awake").await;
    assert_eq!((code, out.trim()), (Some(0), "awake"));
}

#[tokio::test]
async fn a_background_exec_outlives_its_connection_and_a_foreground_one_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let provider = LocalProvider::new(config(dir.path().join("sandboxes"))).await.unwrap();
    let sandbox = provider.ensure("bgexec").await.unwrap();
    for (name, background) in [("fg", false), ("bg", true)] {
        let script = format!("while true; do date +%s%N > /home/user/{name}; sleep 0.05; done");
        let process = sandbox
            .exec(ExecRequest {
                program: "/bin/sh".into(),
                args: vec!["-c".into(), script],
                background,
                ..ExecRequest::default()
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(process);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let home = dir.path().join("sandboxes/bgexec/home");
    let read = |name: &str| std::fs::read_to_string(home.join(name)).unwrap();
    let (fg, bg) = (read("fg"), read("bg"));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(read("fg"), fg, "a dropped foreground process kept running");
    assert_ne!(read("bg"), bg, "a background process stopped with its connection");
}

/// A provider whose sandboxes get user ids no other test of this file uses, so that their
/// process counts (`RLIMIT_NPROC` counts per user) are their own.
async fn provider_with_own_uids(root: PathBuf, uid_base: u32) -> Arc<LocalProvider> {
    LocalProvider::new(LocalConfig { uid_base, ..config(root) }).await.unwrap()
}

const SHELL: &str = "/opt/agentbox/bin/agentbox-bash";

/// Run `script` through the commands' shell, as the CLI does for a Bash call.
async fn command(sandbox: &dyn Sandbox, script: &str) -> (Option<i32>, String, String) {
    sh(sandbox, &format!("exec {SHELL} -c '{}'", script.replace('\'', r"'\''"))).await
}

/// Wait until `want` processes of the sandbox have exactly `pattern` (a regex) as their
/// command line.
async fn wait_for_count(sandbox: &dyn Sandbox, pattern: &str, want: usize) {
    let mut seen = String::new();
    for _ in 0..400 {
        let (_, out, _) = sh(sandbox, &format!("pgrep -c -x -f '{pattern}' || true")).await;
        seen = out.trim().to_owned();
        if seen == want.to_string() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{pattern}: {seen} processes, not {want}");
}

#[tokio::test]
async fn commands_run_under_a_lower_process_limit_than_the_agent_and_a_full_one_says_so() {
    if !nix::unistd::geteuid().is_root() {
        return; // Without user ids of its own, a sandbox has no process limit of its own.
    }
    let dir = tempfile::tempdir().unwrap();
    let provider = provider_with_own_uids(dir.path().join("sandboxes"), 310_000).await;
    let sandbox = provider.ensure("nproc").await.unwrap();
    let (_, out, _) = sh(sandbox.as_ref(), "bash -c 'ulimit -u'").await;
    assert_eq!(out.trim(), "200", "the agent runs under the sandbox's own limit");
    let (code, out, err) = command(sandbox.as_ref(), "ulimit -u").await;
    assert_eq!((code, out.trim()), (Some(0), "150"), "{err}");
    // Terminals are people's commands: the same limit.
    let mut terminal = sandbox
        .exec(ExecRequest {
            program: "/bin/bash".into(),
            args: vec!["-c".into(), "ulimit -u".into()],
            as_command: true,
            ..ExecRequest::default()
        })
        .await
        .unwrap();
    let mut out = String::new();
    terminal.stdout.read_to_string(&mut out).await.unwrap();
    assert_eq!(out.trim(), "150");

    // A command that takes every process it may hold...
    let filler = "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(1000)\n            os._exit(0)\n        n += 1\nexcept OSError as e:\n    print('full after', n, e, flush=True)\n    time.sleep(1000)\n";
    std::fs::write(dir.path().join("sandboxes/nproc/home/fill.py"), filler).unwrap();
    let mut fill = sandbox
        .exec(ExecRequest {
            program: SHELL.into(),
            args: vec!["-c".into(), "python3 fill.py".into()],
            ..ExecRequest::default()
        })
        .await
        .unwrap();
    let full = read_until(fill.stdout.as_mut(), "\n").await;
    assert!(full.contains("Resource temporarily unavailable"), "{full}");
    // ...leaves the next command unstarted, with a line that says why...
    let (code, out, err) = command(sandbox.as_ref(), "echo should-not-run").await;
    assert_eq!(code, Some(126), "{out} {err}");
    assert!(err.contains(agentbox_sandbox::local::shell::PROCESS_LIMIT_NOTICE), "{err}");
    assert!(err.contains("of 150"), "{err}");
    // ...while the agent itself can still start processes.
    let (code, out, _) = sh(sandbox.as_ref(), "echo the agent goes on").await;
    assert_eq!((code, out.trim()), (Some(0), "the agent goes on"));

    // Past the sandbox's own limit nothing starts, and the error says it was the limit.
    let mut rest = sandbox
        .exec(ExecRequest {
            program: "/usr/bin/python3".into(),
            args: vec!["fill.py".into()],
            ..ExecRequest::default()
        })
        .await
        .unwrap();
    let full = read_until(rest.stdout.as_mut(), "\n").await;
    assert!(full.contains("Resource temporarily unavailable"), "{full}");
    let refused = sandbox
        .exec(ExecRequest { program: "/bin/true".into(), ..ExecRequest::default() })
        .await
        .unwrap_err();
    assert_eq!(refused.limit(), Some(agentbox_sandbox::SandboxLimit::Processes), "{refused}");
    rest.killer.kill();
    fill.killer.kill();
    // Other failures are not put down to a limit (tried until the killed processes are gone).
    let mut last = None;
    for _ in 0..100 {
        match sandbox
            .exec(ExecRequest { program: "/no/such/program".into(), ..ExecRequest::default() })
            .await
        {
            Err(err) if err.limit().is_some() => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => {
                last = Some(other.map(drop));
                break;
            }
        }
    }
    let err = last.expect("the sandbox never freed its processes").unwrap_err();
    assert_eq!(err.limit(), None, "{err}");
    assert!(err.to_string().contains("No such file or directory"), "{err}");
}

#[tokio::test]
async fn the_foreground_of_a_call_dies_with_its_caller_and_the_background_stays() {
    let dir = tempfile::tempdir().unwrap();
    let provider = provider_with_own_uids(dir.path().join("sandboxes"), 310_100).await;
    let sandbox = provider.ensure("orphans").await.unwrap();
    // An earlier call, finished, left a server running in the background.
    let (code, _, err) =
        command(sandbox.as_ref(), "nohup sleep 1001 >/dev/null 2>&1 & echo started").await;
    assert_eq!(code, Some(0), "{err}");
    // A call in the foreground, with a child in its group, one in a session of its own and
    // an orphan, under a caller that stands for the CLI.
    let inner = "sleep 1002 & setsid sleep 1003 & (sleep 1004 &); exec sleep 1005";
    let caller = format!("{SHELL} -c '{inner}' & echo $$; wait");
    let mut cli = sandbox
        .exec(ExecRequest {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), caller],
            ..ExecRequest::default()
        })
        .await
        .unwrap();
    let pid = read_until(cli.stdout.as_mut(), "\n").await.trim().to_owned();
    wait_for_count(sandbox.as_ref(), "sleep 100[2-5]", 4).await;
    // The caller dies (as the CLI does when it aborts, or is killed from outside).
    let (code, _, err) = sh(sandbox.as_ref(), &format!("kill -9 {pid}")).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(cli.exit.await.unwrap().signal, Some(9));
    wait_for_count(sandbox.as_ref(), "sleep 100[2-5]", 0).await;
    wait_for_count(sandbox.as_ref(), "sleep 1001", 1).await;
}

#[tokio::test]
async fn the_commands_shell_is_bash_to_its_caller() {
    let dir = tempfile::tempdir().unwrap();
    let provider = provider_with_own_uids(dir.path().join("sandboxes"), 310_200).await;
    let sandbox = provider.ensure("plain").await.unwrap();
    let (code, out, _) = command(sandbox.as_ref(), "echo $BASH_VERSION | cut -c1; exit 3").await;
    assert_eq!((code, out.trim()), (Some(3), "5"));
    let (code, _, _) = command(sandbox.as_ref(), "kill -TERM $$").await;
    assert_eq!(code, None, "a shell killed by a signal is reported as such");
    let (code, out, _) = sh(sandbox.as_ref(), &format!("{SHELL} -c -l 'echo login'")).await;
    assert_eq!((code, out.trim()), (Some(0), "login"));
}

#[tokio::test]
async fn a_restart_ends_every_process_and_keeps_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let provider = provider_with_own_uids(dir.path().join("sandboxes"), 310_300).await;
    let sandbox = provider.ensure("again").await.unwrap();
    let (code, _, _) =
        sh(sandbox.as_ref(), "echo kept > notes.txt; nohup sleep 1000 >/dev/null 2>&1 &").await;
    assert_eq!(code, Some(0));
    wait_for_count(sandbox.as_ref(), "sleep 1000", 1).await;
    provider.restart("again").await.unwrap();
    assert_eq!(provider.status("again").await, SandboxStatus::Running);
    let sandbox = provider.ensure("again").await.unwrap();
    let (code, out, _) =
        sh(sandbox.as_ref(), "cat notes.txt; pgrep -c -x -f 'sleep 1000' || true").await;
    assert_eq!((code, out.as_str()), (Some(0), "kept\n0\n"));
    if nix::unistd::geteuid().is_root() {
        // Nothing of the old container is left to count against the new one's limit.
        let theirs = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.parse::<u32>().is_ok()))
            .filter(|e| {
                use std::os::unix::fs::MetadataExt;
                std::fs::metadata(e.path()).is_ok_and(|m| m.uid() == 310_300)
            })
            .filter_map(|e| std::fs::read_to_string(e.path().join("cmdline")).ok())
            .filter(|cmdline| cmdline.contains("sleep"))
            .count();
        assert_eq!(theirs, 0);
    }
}

#[tokio::test]
async fn a_call_told_to_stop_leaves_no_orphan_behind() {
    let dir = tempfile::tempdir().unwrap();
    let provider = provider_with_own_uids(dir.path().join("sandboxes"), 310_400).await;
    let sandbox = provider.ensure("stop").await.unwrap();
    let caller = format!("{SHELL} -c '(sleep 1006 &); exec sleep 1007' & echo $!; wait $!");
    let mut cli = sandbox
        .exec(ExecRequest {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), caller],
            ..ExecRequest::default()
        })
        .await
        .unwrap();
    let shell = read_until(cli.stdout.as_mut(), "\n").await.trim().to_owned();
    wait_for_count(sandbox.as_ref(), "sleep 100[67]", 2).await;
    // Someone other than the CLI stops the call by the shell's pid, as they would stop bash.
    let (code, _, err) = sh(sandbox.as_ref(), &format!("kill -TERM {shell}")).await;
    assert_eq!(code, Some(0), "{err}");
    wait_for_count(sandbox.as_ref(), "sleep 100[67]", 0).await;
    // The caller saw its shell end as bash would have: by SIGTERM.
    assert_eq!(cli.exit.await.unwrap().code, Some(128 + 15));
}

/// Poll the sandbox's ports until `done` holds for them (at most a minute).
async fn wait_for_ports(
    sandbox: &dyn Sandbox,
    done: impl Fn(&[agentbox_sandbox::ListeningPort]) -> bool,
) -> Vec<agentbox_sandbox::ListeningPort> {
    let mut ports = Vec::new();
    for _ in 0..1200 {
        ports = sandbox.ports().await.unwrap();
        if done(&ports) {
            return ports;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the ports never became what was wanted: {ports:?}");
}

#[tokio::test]
async fn the_init_lists_listening_ports_with_their_processes() {
    let dir = tempfile::tempdir().unwrap();
    let provider = LocalProvider::new(config(dir.path().join("sandboxes"))).await.unwrap();
    let sandbox = provider.ensure("ports").await.unwrap();
    // The init's own proxy port is not the agent's and is not listed.
    assert_eq!(sandbox.ports().await.unwrap(), []);
    let (code, _, err) = sh(
        sandbox.as_ref(),
        "nohup python3 -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1 &
         nohup python3 -c 'import socket,time
s=socket.socket(socket.AF_INET6); s.bind((\"::1\", 8001)); s.listen(); time.sleep(1000)' >/dev/null 2>&1 &",
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    let ports = wait_for_ports(sandbox.as_ref(), |p| p.len() == 2).await;
    assert_eq!(ports.iter().map(|p| p.port).collect::<Vec<_>>(), [8000, 8001]);
    for port in &ports {
        assert_eq!(port.process.as_deref(), Some("python3"), "{ports:?}");
    }
    // A server that stops is no longer listed.
    sh(sandbox.as_ref(), "pkill -f http.server").await;
    wait_for_ports(sandbox.as_ref(), |p| p.iter().all(|p| p.port != 8000)).await;
}

#[tokio::test]
async fn connections_reach_a_server_inside_many_at_once_and_a_closed_port_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let provider = LocalProvider::new(config(dir.path().join("sandboxes"))).await.unwrap();
    let sandbox = provider.ensure("connect").await.unwrap();
    match sandbox.connect(9000).await {
        Err(agentbox_sandbox::SandboxError::NothingListens(9000)) => {}
        Err(other) => panic!("not NothingListens: {other}"),
        Ok(_) => panic!("a connection to a port nothing listens on"),
    }
    // A threaded echo server on IPv4 loopback.
    let (code, _, err) = sh(
        sandbox.as_ref(),
        "cat > /tmp/echo.py <<'PY'
import socketserver
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(('127.0.0.1', 9000), Echo).serve_forever()
PY
nohup python3 /tmp/echo.py >/tmp/echo.log 2>&1 &",
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    wait_for_ports(sandbox.as_ref(), |p| p.iter().any(|p| p.port == 9000)).await;

    // Many connections at once, each with a megabyte of its own bytes, written while the
    // echo is read back (a writer that waited for the whole echo would deadlock on the
    // bounded buffers, which is the point of them).
    let mut tasks = Vec::new();
    for n in 0..32u8 {
        let conn = sandbox.connect(9000).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let (mut read, mut write) = tokio::io::split(conn);
            let sent: Vec<u8> = (0..1 << 20).map(|i: u32| (i as u8) ^ n).collect();
            let expected = sent.clone();
            let writer = tokio::spawn(async move {
                write.write_all(&sent).await.unwrap();
                write.shutdown().await.unwrap();
            });
            let mut got = Vec::new();
            tokio::time::timeout(Duration::from_secs(120), read.read_to_end(&mut got))
                .await
                .expect("the echo stalled")
                .unwrap();
            writer.await.unwrap();
            assert!(got == expected, "connection {n}: {} bytes back, not the ones sent", got.len());
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn a_connection_nobody_reads_holds_the_server_back_instead_of_filling_memory() {
    let dir = tempfile::tempdir().unwrap();
    let provider = LocalProvider::new(config(dir.path().join("sandboxes"))).await.unwrap();
    let sandbox = provider.ensure("slow-reader").await.unwrap();
    const TOTAL: u64 = 256 << 20;
    // A server that writes 256 MiB to its first client and records how much the kernel took.
    let (code, _, err) = sh(
        sandbox.as_ref(),
        &format!(
            "cat > /tmp/flood.py <<'PY'
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', 9100)); s.listen()
c, _ = s.accept()
chunk, sent = b'y' * 65536, 0
while sent < {TOTAL}:
    c.sendall(chunk); sent += len(chunk)
    with open('/tmp/sent.tmp', 'w') as f: f.write(str(sent))
    __import__('os').replace('/tmp/sent.tmp', '/tmp/sent')
c.close()
PY
nohup python3 /tmp/flood.py >/tmp/flood.log 2>&1 &"
        ),
    )
    .await;
    assert_eq!(code, Some(0), "{err}");
    wait_for_ports(sandbox.as_ref(), |p| p.iter().any(|p| p.port == 9100)).await;
    let mut conn = sandbox.connect(9100).await.unwrap();

    // Nobody reads: the server gets as far as the buffers on the way take (the kernel's
    // socket buffers and the relays' fixed ones), then its writes block. Wait until what it
    // sent stops growing; a relay that queued without limit would let it send everything.
    let sent = || async {
        let (_, out, _) = sh(sandbox.as_ref(), "cat /tmp/sent 2>/dev/null || echo 0").await;
        out.trim().parse::<u64>().unwrap()
    };
    let mut before = sent().await;
    let stalled = loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = sent().await;
        if now == before && now > 0 {
            break now;
        }
        before = now;
    };
    assert!(stalled < 64 << 20, "the server could send {stalled} bytes that nobody read");

    // Reading lets it go on, and every byte arrives.
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(120), conn.read(&mut buf))
            .await
            .expect("the flood stalled while being read")
            .unwrap();
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    assert_eq!(total, TOTAL);
}
