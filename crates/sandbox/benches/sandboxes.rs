//! Local sandboxes at 1, 10 and 100: how long from creating a sandbox to the end of its
//! first command, how long pause and resume take, and how much memory an idle sandbox holds
//! (proportional set size of all its processes, so shared pages are split fairly).
//!
//! Run: `cargo bench -p agentbox-sandbox --bench sandboxes` (as root, after scripts/setup).
//! Prints a Markdown table for docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentbox_sandbox::egress::{Egress, EgressPolicy};
use agentbox_sandbox::local::limits::Limits;
use agentbox_sandbox::local::{LocalConfig, LocalProvider};
use agentbox_sandbox::{ExecRequest, Sandbox, SandboxProvider};
use async_trait::async_trait;

struct Nothing;

#[async_trait]
impl EgressPolicy for Nothing {
    async fn decide(&self, _sandbox: &str, _host: &str, _port: u16) -> Egress {
        Egress::Denied
    }
}

const UID_BASE: u32 = 600_000;

async fn first_command(sandbox: &dyn Sandbox) {
    let process = sandbox
        .exec(ExecRequest { program: "/bin/true".into(), ..ExecRequest::default() })
        .await
        .unwrap();
    let status = process.exit.await.unwrap();
    assert!(status.success());
}

fn percentile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Proportional set size of every process owned by the sandboxes' user ids, in KiB.
fn sandbox_pss_kib(uids: std::ops::Range<u32>) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if !entry.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) {
            continue;
        }
        let Ok(meta) = std::fs::metadata(entry.path()) else { continue };
        if !uids.contains(&meta.uid()) {
            continue;
        }
        let Ok(rollup) = std::fs::read_to_string(entry.path().join("smaps_rollup")) else {
            continue;
        };
        total += rollup
            .lines()
            .find_map(|l| l.strip_prefix("Pss:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    assert!(
        nix::unistd::geteuid().is_root(),
        "run as root: each sandbox gets a user id of its own"
    );
    let dir = tempfile::tempdir().unwrap();
    let init = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/release/agentbox-sandbox-init");
    let init = if init.exists() {
        init
    } else {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/agentbox-sandbox-init")
    };
    assert!(
        init.exists(),
        "build the init first: cargo build --release -p agentbox-sandbox --bins"
    );
    let provider = LocalProvider::new(LocalConfig {
        root: dir.path().join("sandboxes"),
        init_program: init,
        init_args: vec![],
        tools: Default::default(),
        limits: Limits::default(),
        uid_base: UID_BASE,
        idle_pause: None,
        disk_check_interval: Duration::from_secs(3600),
        egress: Arc::new(Nothing),
    })
    .await
    .unwrap();
    println!("Enforcement: {}\n", provider.enforcement().describe());
    println!(
        "| sandboxes running | create → first command p50 | p95 | pause p50 | p95 | resume p50 | p95 | memory per idle sandbox (PSS) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut created = 0usize;
    for target in [1usize, 10, 100] {
        let mut create = Vec::new();
        while created < target {
            let id = format!("bench-{created}");
            let started = Instant::now();
            let sandbox = provider.ensure(&id).await.unwrap();
            first_command(sandbox.as_ref()).await;
            create.push(started.elapsed());
            created += 1;
        }
        // Let the sandboxes settle before measuring their memory.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let pss = sandbox_pss_kib(UID_BASE..UID_BASE + created as u32);
        let (mut pause, mut resume) = (Vec::new(), Vec::new());
        for n in 0..created {
            let id = format!("bench-{n}");
            let started = Instant::now();
            provider.pause(&id).await.unwrap();
            pause.push(started.elapsed());
            let started = Instant::now();
            provider.resume(&id).await.unwrap();
            resume.push(started.elapsed());
        }
        println!(
            "| {created} | {} | {} | {} | {} | {} | {} | {:.1} MiB |",
            ms(percentile(&mut create, 0.5)),
            ms(percentile(&mut create, 0.95)),
            ms(percentile(&mut pause, 0.5)),
            ms(percentile(&mut pause, 0.95)),
            ms(percentile(&mut resume, 0.5)),
            ms(percentile(&mut resume, 0.95)),
            pss as f64 / 1024.0 / created as f64,
        );
    }
    for n in 0..created {
        provider.delete(&format!("bench-{n}")).await.unwrap();
    }
}
