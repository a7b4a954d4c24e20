//! `agentbox-bash`: the shell the Claude Code CLI runs each of its Bash tool calls in
//! (`CLAUDE_CODE_SHELL`), a thin guard around `/bin/bash` inside a `local` sandbox.
//!
//! The CLI starts it exactly as it would start bash (`-c [-l] COMMAND`, in a session of its
//! own) and this process stays between the CLI and bash for the whole call:
//!
//! - **Headroom.** It lowers `RLIMIT_NPROC` (soft and hard) to the commands' limit named by
//!   [`COMMAND_PROCESSES_ENV`] before it forks bash, so a command that starts processes
//!   without end fails inside its tool call while the CLI, which runs under the sandbox's
//!   full limit, keeps room for its own threads and its next tool calls. When even bash
//!   cannot be forked, it says so on stderr in a line holding [`PROCESS_LIMIT_NOTICE`], which
//!   becomes the tool's result, and exits 126 at once.
//! - **Nothing outlives a dead CLI in the foreground.** It is a child subreaper, so the
//!   command's orphans are re-parented to it instead of escaping to the sandbox's reaper, and
//!   it watches the CLI through a pidfd (`PR_SET_PDEATHSIG` would fire when the CLI's
//!   *thread* that forked it exits, and the CLI has many threads). If the CLI dies while
//!   the command runs, it kills every process below itself and exits. Bash gets
//!   `PR_SET_PDEATHSIG` from this single-threaded process, where it is reliable.
//! - **Background processes stay.** When bash exits, it exits at once with bash's status,
//!   so what the command left running in the background (`nohup server &`) is re-parented
//!   upwards and survives the call, and later the CLI, as it did without this wrapper.
//! - **Transparent otherwise.** Bash stays in this process's group and session, so the CLI's
//!   own stop of a call (SIGTERM to every process of the call's tree, then SIGKILL) reaches
//!   it as before; a stop signal sent to this process alone by anyone else is passed on to
//!   the group. A call that got a stop signal (SIGTERM, SIGINT, SIGHUP, SIGQUIT) leaves
//!   nothing behind: when bash exits, what is still below this process is killed too. Bash's descendants carry a marker value of their own, so that the init's
//!   "kill everything this exec started", aimed at the CLI, no longer reaches background
//!   processes of finished calls: the foreground ones are this process's to stop.

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, killpg, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpgrp, getpid, getppid};

use super::init::EXEC_MARKER;

/// The shell's file name under the sandbox's tool directory. The CLI accepts a
/// `CLAUDE_CODE_SHELL` only if its path names bash or zsh.
pub const SHELL_NAME: &str = "agentbox-bash";
/// The process limit of the agent's commands (and of terminals): set in the sandbox's
/// environment by the provider, below the sandbox's own limit.
pub const COMMAND_PROCESSES_ENV: &str = "AGENTBOX_COMMAND_PROCESSES";
/// In the line this shell prints when it could not start a command for want of processes.
/// The agent crate recognises tool results holding it.
pub const PROCESS_LIMIT_NOTICE: &str = "the sandbox's commands are at their process limit";
const BASH: &str = "/bin/bash";
/// The exit status of a command that could not start, as bash uses it.
const NOT_STARTED: i32 = 126;
/// Signals a caller uses to stop a command; passed on to bash's group.
const STOP_SIGNALS: [Signal; 4] =
    [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT];

/// Whether this process was started under the shell's name (the init binary is linked into
/// each sandbox a second time as [`SHELL_NAME`]).
pub fn invoked_as_shell() -> bool {
    std::env::args_os().next().is_some_and(|arg0| {
        std::path::Path::new(&arg0).file_name().is_some_and(|name| name == SHELL_NAME)
    })
}

/// Run the shell with the arguments bash would get. Returns the exit status for the
/// process, unless it ends by re-raising the signal that ended bash.
pub fn main() -> i32 {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let parent = getppid();
    // Watch the parent from now on; if it is already gone (we were re-parented before the
    // pidfd was opened), nothing is left to serve.
    let watch = rustix::process::Pid::from_raw(parent.as_raw()).and_then(|pid| {
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
    });
    if getppid() != parent {
        return NOT_STARTED;
    }
    let limit = lower_process_limit();
    // Orphans of the command stay below this process while it runs.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let mut watched = SigSet::empty();
    watched.add(Signal::SIGCHLD);
    for signal in STOP_SIGNALS {
        watched.add(signal);
    }
    // Blocked before bash exists, so no exit or stop signal is missed; the child's mask is
    // reset before it executes bash.
    if sigprocmask(SigmaskHow::SIG_BLOCK, Some(&watched), None).is_err() {
        return exec_bash(args);
    }
    let signals = match SignalFd::with_flags(&watched, SfdFlags::SFD_NONBLOCK) {
        Ok(signals) => signals,
        Err(_) => return exec_bash(args),
    };
    let bash = match start_bash(&args) {
        Ok(pid) => pid,
        Err(err) => return not_started(&err, limit),
    };
    serve(bash, parent, &signals, watch)
}

/// Lower `RLIMIT_NPROC` to the commands' limit (never raising it); returns the limit.
fn lower_process_limit() -> Option<u64> {
    let wanted: u64 = std::env::var(COMMAND_PROCESSES_ENV).ok()?.trim().parse().ok()?;
    let (_, hard) = getrlimit(Resource::RLIMIT_NPROC).ok()?;
    let limit = wanted.min(hard);
    setrlimit(Resource::RLIMIT_NPROC, limit, limit).ok()?;
    Some(limit)
}

fn start_bash(args: &[OsString]) -> std::io::Result<Pid> {
    let marker = std::env::var(EXEC_MARKER).unwrap_or_default();
    let own = getpid();
    #[allow(clippy::disallowed_methods)] // This crate is where processes are started.
    let mut command = std::process::Command::new(BASH);
    command.args(args).env(EXEC_MARKER, format!("{marker}/command-{own}"));
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child of this single-threaded process before
    // exec and only calls sigprocmask, prctl and getppid, which are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            // Bash must not inherit the signals this process blocked to read them.
            sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
                .map_err(std::io::Error::from)?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
            if getppid() != own {
                return Err(std::io::Error::other("the shell went away"));
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    let pid = i32::try_from(child.id()).map_err(std::io::Error::other)?;
    // Reaped below with waitpid, together with the orphans this subreaper inherits.
    drop(child);
    Ok(Pid::from_raw(pid))
}

fn not_started(err: &std::io::Error, limit: Option<u64>) -> i32 {
    if err.raw_os_error() == Some(libc::EAGAIN) {
        let limit = limit.map_or_else(String::new, |n| format!(" of {n}"));
        eprintln!(
            "agentbox: this command did not start: {PROCESS_LIMIT_NOTICE}{limit} (fork: {err}). \
             Stop processes that earlier commands left running, or ask the user to restart the \
             sandbox from the workspace panel."
        );
    } else {
        eprintln!("agentbox: this command did not start: {BASH}: {err}");
    }
    NOT_STARTED
}

/// Wait for bash, reaping the orphans that come to us meanwhile; pass stop signals on; and
/// if the parent dies first, take everything below us with it.
fn serve(bash: Pid, parent: Pid, signals: &SignalFd, watch: Option<OwnedFd>) -> i32 {
    let own = getpid();
    // A call that was told to stop leaves nothing behind, orphans included.
    let mut stopped = false;
    loop {
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(watch) = &watch {
            fds.push(PollFd::new(watch.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            // Nothing to wait with: fall back to waiting for bash alone.
            Err(_) => return finish(wait_for(bash)),
        }
        let parent_gone = fds.get(1).and_then(PollFd::revents).is_some_and(|r| !r.is_empty());
        if parent_gone {
            kill_descendants(own);
            return 128 + Signal::SIGKILL as i32;
        }
        while let Ok(Some(info)) = signals.read_signal() {
            let Ok(signal) = Signal::try_from(info.ssi_signo as i32) else { continue };
            if signal == Signal::SIGCHLD {
                if let Some(status) = reap(bash) {
                    if stopped {
                        kill_descendants(own);
                    }
                    return finish(status);
                }
            } else {
                stopped = true;
                // The CLI signals every process of the call itself; others may aim at this
                // process alone, as they would at bash.
                let sender = Pid::from_raw(info.ssi_pid as i32);
                if sender != own && sender != parent {
                    // The group is the call's own only when this process leads it, as when
                    // the CLI starts it; otherwise it is the caller's too.
                    if getpgrp() == own {
                        let _ = killpg(own, signal);
                    } else {
                        let _ = kill(bash, signal);
                    }
                }
            }
        }
    }
}

/// Reap every child that has ended; bash's status if bash was one of them.
fn reap(bash: Pid) -> Option<WaitStatus> {
    let mut ended = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return ended,
            Ok(status) if status.pid() == Some(bash) => ended = Some(status),
            Ok(_) => {}
        }
    }
}

fn wait_for(bash: Pid) -> WaitStatus {
    loop {
        match waitpid(bash, None) {
            Ok(status @ (WaitStatus::Exited(..) | WaitStatus::Signaled(..))) => return status,
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return WaitStatus::Exited(bash, 1),
        }
    }
}

/// Exit as bash did: with its code, or by the same signal.
fn finish(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, signal, _) => {
            #[allow(unsafe_code)]
            // SAFETY: restoring the default action of a signal has no memory effects.
            unsafe {
                let _ = nix::sys::signal::signal(signal, nix::sys::signal::SigHandler::SigDfl);
            }
            let mut only = SigSet::empty();
            only.add(signal);
            let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&only), None);
            let _ = nix::sys::signal::raise(signal);
            128 + signal as i32
        }
        _ => 1,
    }
}

/// Without a way to watch, the shell is plain bash.
fn exec_bash(args: Vec<OsString>) -> i32 {
    #[allow(clippy::disallowed_methods)] // This crate is where processes are started.
    let err = std::process::Command::new(BASH).args(args).exec();
    eprintln!("agentbox: {BASH}: {err}");
    NOT_STARTED
}

/// SIGKILL every process below `root`, round after round, until none is left. Orphans come
/// back to `root` (a subreaper), so a process forking while it is killed cannot escape; each
/// round reaps what died.
pub fn kill_descendants(root: Pid) {
    for _ in 0..10_000 {
        let below = descendants(root);
        let _ = reap(Pid::from_raw(0));
        if below.is_empty() {
            return;
        }
        for pid in below {
            let _ = kill(pid, Signal::SIGKILL);
        }
        let _ = reap(Pid::from_raw(0));
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Every process whose chain of parents leads to `root`, read from `/proc`.
pub fn descendants(root: Pid) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut parents: Vec<(i32, i32)> = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<i32>().ok());
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    let mut found = vec![root.as_raw()];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        index += 1;
    }
    found.into_iter().skip(1).map(Pid::from_raw).collect()
}
