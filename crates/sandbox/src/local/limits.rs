//! Resource limits of `local` sandboxes, enforced by cgroup v2 where it is available and
//! delegated to us, and by a clearly reported degraded mode where it is not.
//!
//! - cgroup v2: one cgroup per sandbox with `memory.max` (the whole sandbox), `pids.max`,
//!   `cpu.max`; pause freezes it (`cgroup.freeze`) and asks the kernel to reclaim its memory.
//! - degraded (cgroup v1 or no delegation, as on many CI machines): per-process rlimits —
//!   `RLIMIT_DATA` for memory, `RLIMIT_NPROC` for processes (per sandbox, since every
//!   sandbox runs as a user id of its own), a lower CPU priority instead of a CPU quota — and
//!   pause stops the processes with `SIGSTOP` (their memory stays in use).
//!
//! In both modes, when sandboxes have user ids of their own, the agent's commands and
//! terminals run under a lower `RLIMIT_NPROC` ([`Limits::command_processes`]) than the CLI.
//! In both modes: `RLIMIT_FSIZE` caps any one file a little below the disk quota
//! ([`Limits::max_file_bytes`]), the provider checks the workspace's total size
//! periodically ([`DiskCheck`]), sandbox processes are the OOM killer's first choice
//! (`oom_score_adj` 1000), and core dumps are off.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::SandboxError;

/// The limits of one sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Memory of the whole sandbox (cgroup v2) or of each process (degraded), in bytes.
    pub memory_bytes: u64,
    /// Processes and threads of the sandbox.
    pub processes: u64,
    /// CPU time as a share of one core: 100 = one core (cgroup v2 only).
    pub cpu_percent: u32,
    /// Disk space of the workspace (`/home/user`), in bytes.
    pub disk_bytes: u64,
    /// Size of the private `/tmp` (a tmpfs), in bytes.
    pub tmp_bytes: u64,
    /// Open files per process.
    pub open_files: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 4 << 30,
            processes: 512,
            cpu_percent: 200,
            disk_bytes: 10 << 30,
            tmp_bytes: 512 << 20,
            open_files: 4096,
        }
    }
}

impl Limits {
    /// The process limit of the agent's commands and of terminals (`RLIMIT_NPROC`, which
    /// counts every process and thread of the sandbox's user): below the sandbox's own, so
    /// that a command starting processes without end fails inside its tool call and leaves
    /// the CLI room for its threads and its next calls. A quarter of the limit is kept back,
    /// at least 16 and at most 256 processes (never more than half).
    pub fn command_processes(&self) -> u64 {
        let headroom = (self.processes / 4).clamp(16, 256).min(self.processes / 2);
        self.processes - headroom
    }

    /// The size one file may reach (`RLIMIT_FSIZE`): the disk quota less a reserve of a
    /// sixteenth of it, at most 64 MiB. So one file written up to its limit, with the CLI's
    /// own small files beside it, never puts the workspace over the quota: a file exactly
    /// at its limit is not over anything, and only several large files together are.
    pub fn max_file_bytes(&self) -> u64 {
        self.disk_bytes - (self.disk_bytes / 16).min(64 << 20)
    }
}

/// How limits are enforced on this machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// Sandboxes get cgroups under this directory.
    CgroupV2 { parent: PathBuf },
    /// Rlimits only; `reason` says why cgroup v2 is not used.
    Degraded { reason: String },
}

impl Enforcement {
    /// Find out what this machine allows. Setting up cgroup v2 may move the server into a
    /// leaf cgroup of its own (a cgroup with controllers for its children cannot hold
    /// processes itself).
    pub fn detect() -> Self {
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        match prepare_v2(Path::new("/sys/fs/cgroup"), &own, std::process::id()) {
            Ok(parent) => Self::CgroupV2 { parent },
            Err(reason) => Self::Degraded { reason },
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::CgroupV2 { parent } => format!("cgroup v2 ({})", parent.display()),
            Self::Degraded { reason } => format!(
                "degraded: {reason}; memory is limited per process (RLIMIT_DATA), processes per \
                 sandbox (RLIMIT_NPROC), CPU only by a lower priority, and pausing keeps memory"
            ),
        }
    }
}

const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];

/// Make `<own cgroup>/agentbox-sandboxes` with the memory, pids and cpu controllers enabled
/// for its children. `mount` is the cgroup2 mount point, `self_cgroup` the content of
/// `/proc/self/cgroup`.
pub fn prepare_v2(mount: &Path, self_cgroup: &str, pid: u32) -> Result<PathBuf, String> {
    if !mount.join("cgroup.controllers").exists() {
        return Err(format!("{} is not a cgroup v2 mount (cgroup v1 or hybrid)", mount.display()));
    }
    let own = self_cgroup
        .lines()
        .find_map(|line| line.strip_prefix("0::"))
        .ok_or("this process is in no cgroup v2 group")?;
    let dir = mount.join(own.trim_start_matches('/'));
    let available = fs::read_to_string(dir.join("cgroup.controllers"))
        .map_err(|e| format!("cannot read controllers: {e}"))?;
    let missing: Vec<&str> = CONTROLLERS
        .iter()
        .copied()
        .filter(|c| !available.split_whitespace().any(|a| a == *c))
        .collect();
    if !missing.is_empty() {
        return Err(format!("the controllers {missing:?} are not delegated to {}", dir.display()));
    }
    let sandboxes = dir.join("agentbox-sandboxes");
    if !sandboxes.exists() {
        // Processes may not live in a cgroup that distributes controllers to children.
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        if !procs.trim().is_empty() {
            let leaf = dir.join("agentbox-server");
            fs::create_dir_all(&leaf)
                .map_err(|e| format!("cannot create {}: {e}", leaf.display()))?;
            for other in procs.split_whitespace() {
                // Other processes of ours (and we ourselves) move to the leaf.
                let _ = fs::write(leaf.join("cgroup.procs"), other);
            }
            fs::write(leaf.join("cgroup.procs"), pid.to_string())
                .map_err(|e| format!("cannot move the server into {}: {e}", leaf.display()))?;
        }
        enable_controllers(&dir)?;
        fs::create_dir_all(&sandboxes)
            .map_err(|e| format!("cannot create {}: {e}", sandboxes.display()))?;
    }
    enable_controllers(&sandboxes)?;
    Ok(sandboxes)
}

fn enable_controllers(dir: &Path) -> Result<(), String> {
    let wanted: Vec<String> = CONTROLLERS.iter().map(|c| format!("+{c}")).collect();
    fs::write(dir.join("cgroup.subtree_control"), wanted.join(" "))
        .map_err(|e| format!("cannot enable controllers in {}: {e}", dir.display()))
}

/// A sandbox's cgroup (cgroup v2 mode).
#[derive(Clone, Debug)]
pub struct SandboxCgroup {
    pub dir: PathBuf,
}

impl SandboxCgroup {
    /// Create (or reuse) the sandbox's cgroup and write its limits.
    pub fn create(parent: &Path, id: &str, limits: &Limits) -> std::io::Result<Self> {
        let dir = parent.join(id);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("memory.max"), limits.memory_bytes.to_string())?;
        // Swap would let a sandbox exceed its memory limit at the whole machine's expense.
        let _ = fs::write(dir.join("memory.swap.max"), "0");
        fs::write(dir.join("pids.max"), limits.processes.to_string())?;
        let period = 100_000u64;
        let quota = period * u64::from(limits.cpu_percent) / 100;
        fs::write(dir.join("cpu.max"), format!("{quota} {period}"))?;
        Ok(Self { dir })
    }

    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    pub fn freeze(&self, frozen: bool) -> std::io::Result<()> {
        fs::write(self.dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
        if frozen {
            // Best effort: push the frozen sandbox's memory out (to swap or by dropping
            // caches); a machine without swap keeps its anonymous memory.
            if let Ok(current) = fs::read_to_string(self.dir.join("memory.current")) {
                let _ = fs::write(self.dir.join("memory.reclaim"), current.trim());
            }
        }
        Ok(())
    }

    /// How many processes the OOM killer has killed in the cgroup (`memory.events`).
    pub fn oom_kills(&self) -> Option<u64> {
        event_count(&self.dir.join("memory.events"), "oom_kill")
    }

    /// How many forks `pids.max` has refused in the cgroup (`pids.events`).
    pub fn forks_refused(&self) -> Option<u64> {
        event_count(&self.dir.join("pids.events"), "max")
    }

    /// Kill every process in the cgroup (`cgroup.kill`, Linux 5.14 and later).
    pub fn kill(&self) {
        let _ = fs::write(self.dir.join("cgroup.kill"), "1");
    }

    pub fn remove(&self) {
        let _ = fs::remove_dir(&self.dir);
    }
}

/// The counter `key` of a cgroup's `*.events` file (`key value` lines).
fn event_count(file: &Path, key: &str) -> Option<u64> {
    fs::read_to_string(file).ok()?.lines().find_map(|line| {
        let (name, value) = line.split_once(' ')?;
        if name == key { value.trim().parse().ok() } else { None }
    })
}

/// Disk space used under `dir` in bytes: allocated blocks, a file with several hard links
/// counted once, symlinks not followed. The walk goes through directory descriptors opened
/// `O_NOFOLLOW` (a directory swapped for a symlink mid-walk is not followed, and nothing is
/// out of reach for being deeper than a path can be long), at any depth, and stops with an
/// error past [`MAX_ENTRIES`](crate::fs::MAX_ENTRIES) entries: a workspace that cannot be
/// measured is to be treated as one over its quota (see [`DiskCheck`]). A walk that keeps meeting
/// directories moved under it gives up after three tries.
pub fn disk_usage(dir: &Path) -> Result<u64, SandboxError> {
    let mut tries = 0;
    loop {
        match measure(dir) {
            Err(SandboxError::Changed(_)) if tries < 2 => tries += 1,
            other => return other,
        }
    }
}

fn measure(dir: &Path) -> Result<u64, SandboxError> {
    let start = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut total = 0u64;
    let mut linked: HashSet<(u64, u64)> = HashSet::new();
    // No depth limit: the walk holds one descriptor at any depth, so a deep tree can be
    // measured like any other, and nesting data deeply neither hides it from the quota nor
    // stops a sandbox that holds nothing else wrong.
    crate::fs::walk_tree(start, Path::new(""), false, usize::MAX, |parent, name, _, _| {
        let stat = match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            // Removed since it was listed.
            Err(rustix::io::Errno::NOENT) => return Ok(false),
            Err(err) => return Err(err.into()),
        };
        let is_dir = FileType::from_raw_mode(stat.st_mode) == FileType::Directory;
        if is_dir || stat.st_nlink <= 1 || linked.insert((stat.st_dev, stat.st_ino)) {
            total = total.saturating_add(u64::try_from(stat.st_blocks).unwrap_or(0) * 512);
        }
        Ok(is_dir)
    })?;
    Ok(total)
}

/// What the disk quota says about a workspace.
#[derive(Debug)]
pub enum DiskCheck {
    Within,
    Over {
        used: u64,
        quota: u64,
    },
    /// Too large to measure (or the walk failed): treated like `Over`, or hiding data from
    /// the quota would be as easy as making the walk fail.
    Unmeasurable(SandboxError),
}

impl DiskCheck {
    /// Measure the workspace at `home` against `quota` bytes.
    pub fn of(home: &Path, quota: u64) -> Self {
        match disk_usage(home) {
            Ok(used) if used > quota => Self::Over { used, quota },
            Ok(_) => Self::Within,
            Err(err) => Self::Unmeasurable(err),
        }
    }

    /// Why the sandbox must not run, in words for the chat's user; `None` when it may.
    pub fn problem(&self) -> Option<String> {
        const AGAIN: &str = "through the files panel to start the sandbox again";
        match self {
            Self::Within => None,
            Self::Over { used, quota } => Some(format!(
                "the workspace uses {} MiB, over its {} MiB disk quota; delete files {AGAIN}",
                used >> 20,
                quota >> 20
            )),
            Self::Unmeasurable(SandboxError::TooManyEntries { limit, .. }) => Some(format!(
                "the workspace holds more than {limit} files and directories, so its size cannot \
                 be checked against the disk quota; delete some {AGAIN}"
            )),
            Self::Unmeasurable(err) => Some(format!(
                "the workspace's size could not be checked against the disk quota ({err}); \
                 delete what is in the way {AGAIN}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hybrid_or_v1_machines_are_degraded_with_a_reason() {
        let fake = tempfile::tempdir().unwrap();
        let err = prepare_v2(fake.path(), "4:memory:/x\n0::/\n", 1).unwrap_err();
        assert!(err.contains("not a cgroup v2 mount"), "{err}");
    }

    #[test]
    fn v2_without_delegated_controllers_is_degraded() {
        let fake = tempfile::tempdir().unwrap();
        fs::write(fake.path().join("cgroup.controllers"), "cpuset io").unwrap();
        fs::create_dir_all(fake.path().join("svc")).unwrap();
        fs::write(fake.path().join("svc/cgroup.controllers"), "cpu io").unwrap();
        let err = prepare_v2(fake.path(), "0::/svc\n", 1).unwrap_err();
        assert!(err.contains("memory") && err.contains("pids"), "{err}");
    }

    #[test]
    fn v2_with_delegation_gets_a_leaf_for_the_server_and_a_parent_for_sandboxes() {
        // A plain directory stands in for cgroupfs: the logic is a sequence of file writes.
        let fake = tempfile::tempdir().unwrap();
        let svc = fake.path().join("svc");
        fs::create_dir_all(&svc).unwrap();
        fs::write(fake.path().join("cgroup.controllers"), "cpu memory pids").unwrap();
        fs::write(svc.join("cgroup.controllers"), "cpu io memory pids").unwrap();
        fs::write(svc.join("cgroup.procs"), "42\n43\n").unwrap();
        let parent = prepare_v2(fake.path(), "0::/svc\n", 42).unwrap();
        assert_eq!(parent, svc.join("agentbox-sandboxes"));
        assert_eq!(fs::read_to_string(svc.join("agentbox-server/cgroup.procs")).unwrap(), "42");
        assert_eq!(
            fs::read_to_string(svc.join("cgroup.subtree_control")).unwrap(),
            "+memory +pids +cpu"
        );
        assert_eq!(
            fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap(),
            "+memory +pids +cpu"
        );
        let cgroup = SandboxCgroup::create(
            &parent,
            "chat-1",
            &Limits { cpu_percent: 150, ..Limits::default() },
        )
        .unwrap();
        assert_eq!(
            fs::read_to_string(cgroup.dir.join("memory.max")).unwrap(),
            (4u64 << 30).to_string()
        );
        assert_eq!(fs::read_to_string(cgroup.dir.join("pids.max")).unwrap(), "512");
        assert_eq!(fs::read_to_string(cgroup.dir.join("cpu.max")).unwrap(), "150000 100000");
        cgroup.freeze(true).unwrap();
        assert_eq!(fs::read_to_string(cgroup.dir.join("cgroup.freeze")).unwrap(), "1");
        cgroup.kill();
        assert_eq!(fs::read_to_string(cgroup.dir.join("cgroup.kill")).unwrap(), "1");
        assert_eq!(cgroup.oom_kills(), None);
        fs::write(cgroup.dir.join("memory.events"), "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n")
            .unwrap();
        fs::write(cgroup.dir.join("pids.events"), "max 17\n").unwrap();
        assert_eq!((cgroup.oom_kills(), cgroup.forks_refused()), (Some(1), Some(17)));
    }

    #[test]
    fn commands_keep_headroom_below_the_sandboxs_process_limit() {
        let with = |processes| Limits { processes, ..Limits::default() }.command_processes();
        assert_eq!(with(512), 384);
        assert_eq!(with(200), 150);
        assert_eq!(with(4096), 3840);
        assert_eq!(with(40), 24);
        assert_eq!(with(10), 5);
    }

    #[test]
    fn disk_usage_counts_allocated_blocks() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/big"), vec![1u8; 1 << 20]).unwrap();
        let used = disk_usage(dir.path()).unwrap();
        assert!(used >= 1 << 20, "{used}");
    }

    /// `depth` nested directories named `name` in `dir`, made through descriptors (the chain
    /// can be longer than a path), with `bytes` bytes in a file at the bottom.
    fn chain(dir: &Path, name: &str, depth: usize, bytes: usize) {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW;
        let mut current = rustix::fs::open(dir, flags, Mode::empty()).unwrap();
        for _ in 0..depth {
            rustix::fs::mkdirat(&current, name, Mode::from_raw_mode(0o755)).unwrap();
            current = rustix::fs::openat(&current, name, flags, Mode::empty()).unwrap();
        }
        let file = rustix::fs::openat(
            &current,
            "data",
            OFlags::WRONLY | OFlags::CREATE,
            Mode::from_raw_mode(0o644),
        )
        .unwrap();
        std::io::Write::write_all(&mut std::fs::File::from(file), &vec![7u8; bytes]).unwrap();
    }

    #[test]
    fn disk_usage_counts_what_is_deeper_than_a_path_can_name() {
        let dir = tempfile::tempdir().unwrap();
        // 40 levels of 200-byte names: 8 KB of path, twice PATH_MAX.
        chain(dir.path(), &"d".repeat(200), 40, 4 << 20);
        let used = disk_usage(dir.path()).unwrap();
        assert!(used >= 4 << 20, "{used}");
    }

    #[test]
    fn disk_usage_follows_no_link_and_counts_hard_links_once() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("big"), vec![1u8; 8 << 20]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("big"), dir.path().join("big")).unwrap();
        fs::write(dir.path().join("one"), vec![1u8; 1 << 20]).unwrap();
        for i in 0..4 {
            fs::hard_link(dir.path().join("one"), dir.path().join(format!("link{i}"))).unwrap();
        }
        let used = disk_usage(dir.path()).unwrap();
        assert!((1 << 20..2 << 20).contains(&used), "{used}");
    }

    #[test]
    fn a_workspace_is_measured_at_any_depth() {
        // Far deeper than any other walk goes: what lies at the bottom still counts.
        let dir = tempfile::tempdir().unwrap();
        chain(dir.path(), "a", 10 * crate::fs::MAX_DEPTH, 4 << 20);
        let used = disk_usage(dir.path()).unwrap();
        assert!(used >= 4 << 20, "{used}");
        let problem = DiskCheck::of(dir.path(), 1 << 20).problem().unwrap();
        assert!(problem.contains("over its 1 MiB disk quota"), "{problem}");
        assert!(DiskCheck::of(dir.path(), 64 << 20).problem().is_none());
    }

    #[test]
    fn one_file_at_its_limit_leaves_room_below_the_quota() {
        let small = Limits { disk_bytes: 100 << 20, ..Limits::default() };
        assert_eq!(small.max_file_bytes(), (100 << 20) - (100 << 20) / 16);
        let large = Limits::default();
        assert_eq!(large.max_file_bytes(), (10 << 30) - (64 << 20));
    }
}
