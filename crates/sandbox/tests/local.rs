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
