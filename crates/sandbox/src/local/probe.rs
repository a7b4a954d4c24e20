//! Read-only checks of what the `local` provider needs, for `agentbox doctor`: bubblewrap
//! present and able to start a container with the namespaces sandboxes use, user
//! namespaces allowed, and which cgroup version would enforce the limits. Nothing here
//! changes the machine (unlike [`super::limits::Enforcement::detect`], which sets up the
//! server's cgroups).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// The outcome of one check: `Ok` with what was found, `Err` with what is wrong.
pub type Probe = Result<String, String>;

/// `bwrap` on `PATH`, its version, and a container with the sandboxes' namespaces (user,
/// pid, ipc, uts, net) that runs `true`.
pub async fn bubblewrap() -> Probe {
    let bwrap = super::find_on_path("bwrap").ok_or_else(|| {
        "bubblewrap (bwrap) is not on PATH: run scripts/setup, or `apt-get install bubblewrap`"
            .to_owned()
    })?;
    let version = run(&bwrap, &["--version"])
        .await
        .map_err(|err| format!("{} does not run ({err}): reinstall bubblewrap", bwrap.display()))?;
    let truth = super::find_on_path("true").unwrap_or_else(|| PathBuf::from("/usr/bin/true"));
    let truth = truth.display().to_string();
    let args = [
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-net",
        "--die-with-parent",
        "--",
        &truth,
    ];
    run(&bwrap, &args).await.map_err(|err| {
        format!(
            "{} ({version}) cannot start a container: {err}; allow user namespaces (see the \
             user namespaces check) or run the server as root",
            bwrap.display()
        )
    })?;
    Ok(format!("{} ({version}), a test container started", bwrap.display()))
}

async fn run(program: &Path, args: &[&str]) -> Result<String, String> {
    #[allow(clippy::disallowed_methods)] // This crate is where processes are started.
    let mut command = tokio::process::Command::new(program);
    command.args(args).stdin(Stdio::null()).kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(20), command.output())
        .await
        .map_err(|_| "it did not finish within 20 s".to_owned())?
        .map_err(|err| err.to_string())?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(format!("{} ({})", stderr.trim(), output.status))
    }
}

/// Whether this kernel lets processes make user namespaces.
pub fn user_namespaces() -> Probe {
    let read = |path: &str| std::fs::read_to_string(path).ok().map(|t| t.trim().to_owned());
    let max = read("/proc/sys/user/max_user_namespaces");
    if max.as_deref() == Some("0") {
        return Err("user namespaces are off (user.max_user_namespaces = 0): \
                    `sysctl -w user.max_user_namespaces=15000`"
            .into());
    }
    let root = nix::unistd::geteuid().is_root();
    if !root {
        if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
            return Err("unprivileged user namespaces are off \
                        (kernel.unprivileged_userns_clone = 0): set it to 1, or run as root"
                .into());
        }
        if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
            return Err("AppArmor restricts unprivileged user namespaces \
                        (kernel.apparmor_restrict_unprivileged_userns = 1): give bwrap an \
                        AppArmor profile that allows them, or run as root"
                .into());
        }
    }
    Ok(format!(
        "allowed (user.max_user_namespaces = {}){}",
        max.unwrap_or_else(|| "unknown".into()),
        if root { ", running as root" } else { "" }
    ))
}

/// How sandbox limits would be enforced.
pub enum Cgroups {
    /// cgroup v2 with the memory, pids and cpu controllers available to this process.
    V2(String),
    /// Limits per process only (rlimits); the text says why.
    Degraded(String),
}

/// Which cgroups sandboxes would get, read without changing anything.
pub fn cgroups() -> Cgroups {
    let mount = Path::new("/sys/fs/cgroup");
    if !mount.join("cgroup.controllers").exists() {
        let v1 = mount.join("memory").exists() || mount.join("pids").exists();
        return Cgroups::Degraded(if v1 {
            "cgroup v1 only: limits are per process (memory per process, processes per user), \
             CPU only by priority; boot with systemd.unified_cgroup_hierarchy=1 for cgroup v2"
                .into()
        } else {
            "no cgroup file system at /sys/fs/cgroup: limits are per process only".into()
        });
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let path = own.lines().find_map(|l| l.strip_prefix("0::")).unwrap_or("/").trim();
    let dir = mount.join(path.trim_start_matches('/'));
    let available = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let missing: Vec<&str> = ["memory", "pids", "cpu"]
        .into_iter()
        .filter(|c| !available.split_whitespace().any(|a| a == *c))
        .collect();
    if !missing.is_empty() {
        return Cgroups::Degraded(format!(
            "cgroup v2, but {} not delegated to {}: limits fall back to per process; run the \
             server as a systemd service with Delegate=yes",
            missing.join(", "),
            dir.display()
        ));
    }
    let writable =
        nix::unistd::access(&dir.join("cgroup.subtree_control"), nix::unistd::AccessFlags::W_OK)
            .is_ok();
    if !writable {
        return Cgroups::Degraded(format!(
            "cgroup v2, but {} is not writable by this user: limits fall back to per process; \
             run as root or with a delegated cgroup (Delegate=yes)",
            dir.display()
        ));
    }
    Cgroups::V2(format!("cgroup v2 with memory, pids and cpu at {}", dir.display()))
}
