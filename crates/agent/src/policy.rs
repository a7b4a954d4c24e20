//! The `auto` mode's policy: which tool calls run without asking and which need a person.
//!
//! The CLI itself lets read-only calls inside its working directory run (it never asks about
//! them); every other call reaches agentbox as a `can_use_tool` request, and in `auto` mode
//! this policy assesses it. The stance is that the workspace (the chat's sandbox home) is the
//! agent's to change, and that what leaves it or cannot be undone needs a person:
//!
//! - **runs without asking**: read-only tools inside the workspace; file edits inside the
//!   workspace (except git's own `.git` directory); shell commands that stay in the
//!   workspace;
//! - **asks, with the reason shown in the request**: anything that reaches the network
//!   (`curl`, `wget`, `ssh`, `git push/pull/fetch/clone`, package installs, any URL in a
//!   command, `WebFetch`, `WebSearch`) unless its host is on the allowed list; anything that
//!   touches git history (`git reset`, `rebase`, `commit --amend`, branch and tag deletion,
//!   `reflog`, `filter-branch`, ...); deleting, moving or writing files outside the
//!   workspace (including redirections); reading files outside the workspace with the file
//!   tools; running as another user (`sudo`, `su`); system administration (`mount`,
//!   `systemctl`, `shutdown`, ...); `eval`; commands the policy cannot parse; tools it does
//!   not know (MCP tools among them); and the commands the operator lists as always risky.
//!
//! The server configures the allowed hosts and the extra risky commands
//! (`--auto-allowed-hosts`, `--auto-risky-commands`). The assessment is heuristic by nature:
//! it reads the command's words, it does not run them. It errs towards asking.

use std::path::{Component, Path, PathBuf};

use agentbox_protocol::permission::PermissionRule;
use serde_json::Value;

/// What the policy makes of one tool call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assessment {
    /// Changes nothing (plan mode allows these too).
    ReadOnly,
    /// Changes only the workspace; runs without asking in `auto` mode.
    Safe(String),
    /// Needs a person; the reason is shown in the request.
    Risky(String),
}

impl Assessment {
    pub fn is_risky(&self) -> bool {
        matches!(self, Self::Risky(_))
    }
}

/// The operator's settings of the `auto` policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AutoPolicy {
    /// Hosts the agent may reach without asking (a host also allows its subdomains).
    pub allowed_hosts: Vec<String>,
    /// Extra programs that always need a person, by name.
    pub risky_commands: Vec<String>,
}

/// Tools that only read or only touch the agent's own bookkeeping.
const READ_ONLY_TOOLS: &[&str] = &[
    "Read",
    "Glob",
    "Grep",
    "LS",
    "NotebookRead",
    "TodoWrite",
    "TaskCreate",
    "TaskGet",
    "TaskList",
    "TaskUpdate",
    "ToolSearch",
    "ListAgents",
    "Task",
    "EnterPlanMode",
    "BashOutput",
];
/// Read-only tools that take a path, and the input field holding it.
const PATH_FIELDS: &[&str] = &["file_path", "path", "notebook_path"];
const EDIT_TOOLS: &[&str] = &["Write", "Edit", "MultiEdit", "NotebookEdit"];

const NETWORK_PROGRAMS: &[&str] = &[
    "curl", "wget", "ssh", "scp", "sftp", "rsync", "nc", "ncat", "netcat", "telnet", "ftp",
    "socat", "ping", "dig", "nslookup", "http", "https", "aria2c", "lynx", "w3m", "gh",
];
/// Package managers, and their subcommands that download.
const PACKAGE_MANAGERS: &[(&str, &[&str])] = &[
    ("npm", &["install", "i", "add", "ci", "publish", "update", "upgrade", "exec", "x"]),
    ("pnpm", &["install", "i", "add", "publish", "update", "up", "dlx", "exec"]),
    ("yarn", &["install", "add", "publish", "upgrade", "dlx"]),
    ("bun", &["install", "i", "add", "publish", "update", "x"]),
    ("pip", &["install", "download"]),
    ("pip3", &["install", "download"]),
    ("uv", &["add", "sync", "pip"]),
    ("poetry", &["add", "install", "update", "publish"]),
    ("pipx", &["install", "run"]),
    ("cargo", &["install", "publish", "add", "update", "fetch"]),
    ("go", &["get", "install", "mod"]),
    ("gem", &["install", "push"]),
    ("apt", &["install", "update", "upgrade"]),
    ("apt-get", &["install", "update", "upgrade", "dist-upgrade"]),
    ("dnf", &["install", "update", "upgrade"]),
    ("yum", &["install", "update", "upgrade"]),
    ("apk", &["add", "update", "upgrade"]),
    ("brew", &["install", "update", "upgrade"]),
    ("docker", &["pull", "push", "login"]),
    ("podman", &["pull", "push", "login"]),
];
/// Programs that always reach the network when they run at all.
const ALWAYS_DOWNLOADS: &[&str] = &["npx", "bunx", "pnpx"];
const SYSTEM_PROGRAMS: &[&str] = &[
    "shutdown",
    "reboot",
    "halt",
    "poweroff",
    "mkfs",
    "fdisk",
    "parted",
    "mount",
    "umount",
    "systemctl",
    "service",
    "iptables",
    "nft",
    "crontab",
    "useradd",
    "userdel",
    "usermod",
    "passwd",
    "chroot",
    "insmod",
    "modprobe",
    "sysctl",
];
const OTHER_USER_PROGRAMS: &[&str] = &["sudo", "su", "doas", "runuser", "pkexec"];
const DELETING_PROGRAMS: &[&str] = &["rm", "rmdir", "unlink", "shred", "srm"];
/// Programs whose path arguments are all written (or moved away).
const WRITING_PROGRAMS: &[&str] =
    &["mv", "chmod", "chown", "chgrp", "touch", "mkdir", "tee", "truncate", "setfacl"];
/// Programs whose last path argument is written.
const COPYING_PROGRAMS: &[&str] = &["cp", "ln", "install"];
/// Words that start a command without being the program.
const WRAPPERS: &[&str] = &["env", "command", "nohup", "nice", "time", "exec", "xargs", "builtin"];
const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "while", "until", "do", "done", "for", "case", "esac",
    "in", "!", "{", "}", "function", "select",
];
/// Interpreters whose `-c` argument is itself a shell script.
const SHELLS: &[&str] = &["sh", "bash", "zsh", "dash", "ksh"];
/// Git subcommands that reach another repository.
const GIT_NETWORK: &[&str] =
    &["push", "pull", "fetch", "clone", "ls-remote", "submodule", "remote"];
/// Git subcommands that rewrite or drop history.
const GIT_HISTORY: &[&str] = &[
    "reset",
    "rebase",
    "filter-branch",
    "filter-repo",
    "reflog",
    "update-ref",
    "replace",
    "gc",
    "prune",
];
/// Paths any command may write to.
const HARMLESS_TARGETS: &[&str] = &["/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty"];
/// Commands that only look, for plan mode.
const READ_ONLY_PROGRAMS: &[&str] = &[
    "ls", "cat", "head", "tail", "wc", "grep", "rg", "pwd", "which", "file", "stat", "du", "df",
    "tree", "echo", "printf", "true", "false", "date", "whoami", "id", "uname", "env", "sort",
    "uniq", "cut", "diff", "cmp", "less", "more", "basename", "dirname", "realpath", "readlink",
];
const GIT_READ_ONLY: &[&str] =
    &["status", "log", "diff", "show", "blame", "ls-files", "rev-parse", "describe", "shortlog"];

impl AutoPolicy {
    /// Assess a call of `tool` with `input` for an agent whose workspace is `workspace`.
    pub fn assess(&self, tool: &str, input: &Value, workspace: &Path) -> Assessment {
        let field = |name: &str| input.get(name).and_then(Value::as_str);
        if READ_ONLY_TOOLS.contains(&tool) {
            let outside = PATH_FIELDS
                .iter()
                .filter_map(|name| field(name))
                .find(|path| !inside(workspace, path));
            return match outside {
                Some(path) => Assessment::Risky(format!(
                    "{tool} reads outside the workspace ({path}), which may hold other people's \
                     data or the server's secrets"
                )),
                None => Assessment::ReadOnly,
            };
        }
        if EDIT_TOOLS.contains(&tool) {
            let Some(path) = PATH_FIELDS.iter().find_map(|name| field(name)) else {
                return Assessment::Risky(format!("{tool} names no file the policy can check"));
            };
            if !inside(workspace, path) {
                return Assessment::Risky(format!("{tool} writes outside the workspace ({path})"));
            }
            if in_git_dir(workspace, path) {
                return Assessment::Risky(format!(
                    "{tool} changes git's own files ({path}), which holds the history"
                ));
            }
            return Assessment::Safe(format!("{tool} edits a file in the workspace"));
        }
        match tool {
            "Bash" => match field("command") {
                Some(command) => self.assess_command(command, workspace, 0),
                None => Assessment::Risky("the Bash call has no command".into()),
            },
            "WebFetch" => {
                let url = field("url").unwrap_or_default();
                match host_of(url) {
                    Some(host) if self.host_allowed(&host) => {
                        Assessment::Safe(format!("WebFetch reaches {host}, an allowed host"))
                    }
                    Some(host) => {
                        Assessment::Risky(format!("WebFetch reaches the network ({host})"))
                    }
                    None => Assessment::Risky("WebFetch reaches the network".into()),
                }
            }
            "WebSearch" => Assessment::Risky("WebSearch searches the web".into()),
            _ => Assessment::Risky(format!(
                "{tool} is not a tool the auto policy knows, so a person decides"
            )),
        }
    }

    /// Whether a call only reads (what plan mode lets run).
    pub fn is_read_only(&self, tool: &str, input: &Value, workspace: &Path) -> bool {
        if tool == "Bash" {
            return input.get("command").and_then(Value::as_str).is_some_and(command_is_read_only);
        }
        self.assess(tool, input, workspace) == Assessment::ReadOnly
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed_hosts.iter().any(|allowed| {
            let allowed = allowed.trim().trim_start_matches("*.").to_ascii_lowercase();
            !allowed.is_empty() && (host == allowed || host.ends_with(&format!(".{allowed}")))
        })
    }

    fn assess_command(&self, command: &str, workspace: &Path, depth: usize) -> Assessment {
        let Some(script) = parse_script(command) else {
            return Assessment::Risky(
                "the command could not be analysed (unbalanced quotes), so a person decides".into(),
            );
        };
        for url_host in urls_in(command) {
            if !self.host_allowed(&url_host) {
                return Assessment::Risky(format!("the command reaches the network ({url_host})"));
            }
        }
        for target in &script.redirects {
            if !HARMLESS_TARGETS.contains(&target.as_str()) && !inside(workspace, target) {
                return Assessment::Risky(format!(
                    "the command writes outside the workspace ({target})"
                ));
            }
        }
        for words in &script.commands {
            if let Some(risk) = self.assess_simple(words, workspace, depth) {
                return Assessment::Risky(risk);
            }
        }
        Assessment::Safe("the command stays in the workspace".into())
    }

    /// The risk of one simple command (its words after assignments and keywords), if any.
    fn assess_simple(&self, words: &[String], workspace: &Path, depth: usize) -> Option<String> {
        let words = program_words(words);
        let (program, args) = words.split_first()?;
        let name = program.rsplit('/').next().unwrap_or(program).to_owned();
        let name = name.as_str();
        if self.risky_commands.iter().any(|risky| risky.trim() == name) {
            return Some(format!("`{name}` is on this server's list of commands that always ask"));
        }
        if OTHER_USER_PROGRAMS.contains(&name) {
            return Some(format!("`{name}` runs a command as another user"));
        }
        if SYSTEM_PROGRAMS.contains(&name) || name.starts_with("mkfs.") {
            return Some(format!("`{name}` changes the system outside the workspace"));
        }
        if name == "eval" {
            return Some("`eval` runs a command built at run time, which cannot be checked".into());
        }
        if NETWORK_PROGRAMS.contains(&name) {
            return Some(format!("`{name}` reaches the network"));
        }
        if ALWAYS_DOWNLOADS.contains(&name) {
            return Some(format!("`{name}` downloads and runs packages from the network"));
        }
        if let Some((_, subcommands)) = PACKAGE_MANAGERS.iter().find(|(pm, _)| *pm == name) {
            let sub = first_operand(args);
            if let Some(sub) = sub.filter(|sub| subcommands.contains(&sub.as_str())) {
                return Some(format!("`{name} {sub}` downloads packages from the network"));
            }
        }
        if name == "git" {
            return git_risk(args);
        }
        if SHELLS.contains(&name)
            && let Some(position) = args.iter().position(|arg| arg == "-c")
            && let Some(script) = args.get(position + 1)
        {
            if depth > 3 {
                return Some("the command nests shells too deeply to be checked".into());
            }
            return match self.assess_command(script, workspace, depth + 1) {
                Assessment::Risky(reason) => Some(reason),
                _ => None,
            };
        }
        let paths: Vec<&String> = args.iter().filter(|arg| !arg.starts_with('-')).collect();
        let outside = |candidates: &[&String]| {
            candidates.iter().find(|path| !inside(workspace, path)).map(|path| (*path).clone())
        };
        if DELETING_PROGRAMS.contains(&name) {
            return outside(&paths)
                .map(|path| format!("`{name}` deletes outside the workspace ({path})"));
        }
        if name == "find" && args.iter().any(|arg| arg == "-delete") {
            let roots: Vec<&String> = args.iter().take_while(|arg| !arg.starts_with('-')).collect();
            return outside(&roots)
                .map(|path| format!("`find -delete` deletes outside the workspace ({path})"));
        }
        if WRITING_PROGRAMS.contains(&name) {
            return outside(&paths)
                .map(|path| format!("`{name}` changes files outside the workspace ({path})"));
        }
        if COPYING_PROGRAMS.contains(&name) {
            return paths
                .last()
                .filter(|path| !inside(workspace, path))
                .map(|path| format!("`{name}` writes outside the workspace ({path})"));
        }
        if name == "dd" {
            return args
                .iter()
                .filter_map(|arg| arg.strip_prefix("of="))
                .find(|path| !inside(workspace, path))
                .map(|path| format!("`dd` writes outside the workspace ({path})"));
        }
        None
    }
}

/// Whether an "always allow" rule covers a call of `tool` with `input`. A prefix rule for
/// `Bash` (`npm test *`, `npm test:*`) covers only a single command: a call that chains,
/// pipes, substitutes or redirects could hide anything behind the allowed prefix.
pub fn rule_matches(rule: &PermissionRule, tool: &str, input: &Value) -> bool {
    if rule.tool_name != tool {
        return false;
    }
    let Some(content) = rule.rule_content.as_deref() else { return true };
    match tool {
        "Bash" => {
            let Some(command) = input.get("command").and_then(Value::as_str) else {
                return false;
            };
            let command = command.trim();
            let prefix = content.strip_suffix(" *").or_else(|| content.strip_suffix(":*"));
            match prefix {
                Some(prefix) => {
                    let single =
                        !command.contains(|c| ";&|<>`\n".contains(c)) && !command.contains("$(");
                    single
                        && (command == prefix
                            || command
                                .strip_prefix(prefix)
                                .is_some_and(|rest| rest.starts_with(' ')))
                }
                None => command == content.trim(),
            }
        }
        "WebFetch" => {
            let host = input.get("url").and_then(Value::as_str).and_then(host_of);
            match (content.strip_prefix("domain:"), host) {
                (Some(domain), Some(host)) => {
                    let (domain, host) = (domain.to_ascii_lowercase(), host.to_ascii_lowercase());
                    host == domain || host.ends_with(&format!(".{domain}"))
                }
                _ => false,
            }
        }
        _ => input
            .as_object()
            .is_some_and(|fields| fields.values().any(|value| value.as_str() == Some(content))),
    }
}

/// The rule "always allow this" stores for a call: the rule the CLI suggested for the tool
/// when it suggested one; otherwise the exact command for `Bash`, the domain for `WebFetch`,
/// and every call of the tool for the others.
pub fn rule_for(tool: &str, input: &Value, suggestions: &[Value]) -> PermissionRule {
    let suggested = suggestions
        .iter()
        .filter(|s| s.get("type").and_then(Value::as_str) == Some("addRules"))
        .filter(|s| s.get("behavior").and_then(Value::as_str).is_none_or(|b| b == "allow"))
        .filter_map(|s| s.get("rules").and_then(Value::as_array))
        .flatten()
        .find(|rule| rule.get("toolName").and_then(Value::as_str) == Some(tool))
        .map(|rule| rule.get("ruleContent").and_then(Value::as_str).map(str::to_owned));
    let content = match suggested {
        Some(content) => content,
        None => match tool {
            "Bash" => input.get("command").and_then(Value::as_str).map(|c| c.trim().to_owned()),
            "WebFetch" => input
                .get("url")
                .and_then(Value::as_str)
                .and_then(host_of)
                .map(|host| format!("domain:{host}")),
            _ => None,
        },
    };
    PermissionRule { tool_name: tool.to_owned(), rule_content: content }
}

/// The risk of a `git` command, if any.
fn git_risk(args: &[String]) -> Option<String> {
    let mut rest = args.iter().peekable();
    // Global options come before the subcommand; `-C DIR` and `-c KEY=VALUE` take a value.
    let mut sub = None;
    while let Some(arg) = rest.next() {
        if arg == "-C" || arg == "-c" || arg == "--git-dir" || arg == "--work-tree" {
            rest.next();
        } else if !arg.starts_with('-') {
            sub = Some(arg.as_str());
            break;
        }
    }
    let sub = sub?;
    let options: Vec<&str> = rest.map(String::as_str).collect();
    let has = |flags: &[&str]| options.iter().any(|option| flags.contains(option));
    if GIT_NETWORK.contains(&sub) {
        if sub == "remote" && !has(&["update", "prune", "show"]) {
            return None;
        }
        if sub == "push" {
            return Some("`git push` changes a remote repository".into());
        }
        return Some(format!("`git {sub}` reaches another repository over the network"));
    }
    if GIT_HISTORY.contains(&sub) {
        return Some(format!("`git {sub}` rewrites or discards git history"));
    }
    let history = match sub {
        "commit" => has(&["--amend"]),
        "branch" => has(&["-d", "-D", "--delete", "-m", "-M", "--move", "-f", "--force"]),
        "tag" => has(&["-d", "--delete", "-f", "--force"]),
        "stash" => has(&["drop", "clear"]),
        "checkout" | "switch" => has(&["--orphan", "-B", "-C"]),
        _ => false,
    };
    history.then(|| format!("`git {sub}` rewrites or discards git history"))
}

/// The words of a simple command from the program on: assignments, keywords and wrappers
/// (with their options) are skipped.
fn program_words(words: &[String]) -> &[String] {
    let mut start = 0;
    while let Some(word) = words.get(start) {
        let is_assignment = word
            .split_once('=')
            .is_some_and(|(name, _)| !name.is_empty() && name.chars().all(is_name_char));
        if KEYWORDS.contains(&word.as_str()) || is_assignment {
            start += 1;
        } else if WRAPPERS.contains(&word.as_str()) || word == "timeout" {
            start += 1;
            // Options of the wrapper, and `timeout`'s duration.
            while let Some(next) = words.get(start) {
                let duration =
                    word == "timeout" && next.chars().next().is_some_and(|c| c.is_ascii_digit());
                if next.starts_with('-') || duration {
                    start += 1;
                } else {
                    break;
                }
            }
        } else {
            break;
        }
    }
    &words[start.min(words.len())..]
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn first_operand(args: &[String]) -> Option<&String> {
    args.iter().find(|arg| !arg.starts_with('-'))
}

/// Whether a command only reads: every simple command is a known reader, nothing is
/// redirected to a file, and nothing risky is in it.
fn command_is_read_only(command: &str) -> bool {
    let Some(script) = parse_script(command) else { return false };
    if script.redirects.iter().any(|target| !HARMLESS_TARGETS.contains(&target.as_str())) {
        return false;
    }
    if !urls_in(command).is_empty() {
        return false;
    }
    script.commands.iter().all(|words| {
        let words = program_words(words);
        let Some((program, args)) = words.split_first() else { return true };
        let name = program.rsplit('/').next().unwrap_or(program);
        if name == "git" {
            return first_operand(args).is_some_and(|sub| GIT_READ_ONLY.contains(&sub.as_str()));
        }
        if name == "find" {
            return !args.iter().any(|arg| {
                matches!(arg.as_str(), "-delete" | "-exec" | "-execdir" | "-ok" | "-fprint")
            });
        }
        READ_ONLY_PROGRAMS.contains(&name)
    })
}

/// Whether `path` (absolute, or relative to the workspace) stays inside the workspace.
/// `~` is the workspace too: the sandbox's home is the workspace.
fn inside(workspace: &Path, path: &str) -> bool {
    let path = path.trim();
    let resolved = if path == "~" {
        workspace.to_path_buf()
    } else if let Some(rest) = path.strip_prefix("~/") {
        workspace.join(rest)
    } else if path.starts_with('~') {
        // Another user's home.
        return false;
    } else {
        workspace.join(path)
    };
    match normalize(&resolved) {
        Some(resolved) => resolved.starts_with(normalize(workspace).unwrap_or_default()),
        None => false,
    }
}

fn in_git_dir(workspace: &Path, path: &str) -> bool {
    let resolved = normalize(&workspace.join(path)).unwrap_or_default();
    let relative = resolved.strip_prefix(workspace).unwrap_or(&resolved);
    relative.components().any(|part| part.as_os_str() == ".git")
}

/// `path` with `.` and `..` resolved lexically; `None` if it climbs above the root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

/// The hosts of every `scheme://host` URL in `text`.
fn urls_in(text: &str) -> Vec<String> {
    text.match_indices("://")
        .filter(|(index, _)| {
            // A scheme is letters right before `://`.
            text[..*index].chars().last().is_some_and(|c| c.is_ascii_alphabetic())
        })
        .filter_map(|(index, _)| host_of(&text[index..]))
        .collect()
}

/// The host of a URL (`scheme://user@host:port/...`), or of the text after `://`.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority: String = rest
        .chars()
        .take_while(|c| !matches!(c, '/' | '?' | '#' | '\'' | '"' | ' ' | ')' | '`'))
        .collect();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = if host.starts_with('[') {
        host.split(']').next().map(|h| format!("{h}]")).unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default().to_owned()
    };
    (!host.is_empty()).then_some(host)
}

/// A shell command split into simple commands (their words, quotes removed) and the
/// targets of output redirections.
#[derive(Debug, Default, PartialEq)]
struct Script {
    commands: Vec<Vec<String>>,
    redirects: Vec<String>,
}

/// Split a command line into simple commands. `None` when quotes are unbalanced.
/// Command substitutions (`$(...)`, backticks) and subshells are split like separators, so
/// the commands inside them are checked as well.
fn parse_script(command: &str) -> Option<Script> {
    let mut script = Script::default();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut redirect_next = false;
    let mut chars = command.chars().peekable();
    let finish_word = |words: &mut Vec<String>,
                       word: &mut String,
                       in_word: &mut bool,
                       redirect_next: &mut bool,
                       redirects: &mut Vec<String>| {
        if *in_word {
            let text = std::mem::take(word);
            if *redirect_next {
                redirects.push(text);
                *redirect_next = false;
            } else {
                words.push(text);
            }
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        other => word.push(other),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => word.push(chars.next()?),
                        other => word.push(other),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(next) = chars.next()
                    && next != '\n'
                {
                    word.push(next);
                }
            }
            ' ' | '\t' => finish_word(
                &mut words,
                &mut word,
                &mut in_word,
                &mut redirect_next,
                &mut script.redirects,
            ),
            ';' | '&' | '|' | '\n' | '(' | ')' | '`' => {
                // `&>` and `>&` are redirections, `2>&1` a duplication.
                if c == '&' && chars.peek() == Some(&'>') {
                    finish_word(
                        &mut words,
                        &mut word,
                        &mut in_word,
                        &mut redirect_next,
                        &mut script.redirects,
                    );
                    continue;
                }
                finish_word(
                    &mut words,
                    &mut word,
                    &mut in_word,
                    &mut redirect_next,
                    &mut script.redirects,
                );
                if !words.is_empty() {
                    script.commands.push(std::mem::take(&mut words));
                }
                // `$(` leaves a `$` behind in the word before it.
            }
            '$' if chars.peek() == Some(&'(') => {
                finish_word(
                    &mut words,
                    &mut word,
                    &mut in_word,
                    &mut redirect_next,
                    &mut script.redirects,
                );
            }
            '>' | '<' => {
                let output = c == '>';
                // A file descriptor number written right before belongs to the operator.
                if in_word && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                finish_word(
                    &mut words,
                    &mut word,
                    &mut in_word,
                    &mut redirect_next,
                    &mut script.redirects,
                );
                if chars.peek() == Some(&'>') || chars.peek() == Some(&'<') {
                    chars.next();
                }
                if chars.peek() == Some(&'&') {
                    // `>&2`: duplicating a descriptor writes no file.
                    chars.next();
                    while chars.peek().is_some_and(|d| d.is_ascii_digit() || *d == '-') {
                        chars.next();
                    }
                    continue;
                }
                if chars.peek() == Some(&'(') {
                    // Process substitution `>(...)` / `<(...)`: its commands are split out.
                    continue;
                }
                redirect_next = output;
                if !output {
                    // Input redirections read a file; the next word is not an argument.
                    redirect_next = false;
                    skip_spaces(&mut chars);
                    let mut skipped = String::new();
                    while chars.peek().is_some_and(|d| !d.is_whitespace() && !";&|()".contains(*d))
                    {
                        if let Some(d) = chars.next() {
                            skipped.push(d);
                        }
                    }
                }
            }
            '#' if !in_word => {
                // A comment runs to the end of the line.
                while chars.peek().is_some_and(|d| *d != '\n') {
                    chars.next();
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if redirect_next && !in_word {
        // `echo x >` with no target: the shell would refuse it.
        return None;
    }
    finish_word(&mut words, &mut word, &mut in_word, &mut redirect_next, &mut script.redirects);
    if !words.is_empty() {
        script.commands.push(words);
    }
    Some(script)
}

fn skip_spaces(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
        chars.next();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const WS: &str = "/srv/agentbox/sandboxes/c1/home";

    fn policy() -> AutoPolicy {
        AutoPolicy {
            allowed_hosts: vec!["github.com".into()],
            risky_commands: vec!["terraform".into()],
        }
    }

    fn bash(command: &str) -> Assessment {
        policy().assess("Bash", &json!({"command": command}), Path::new(WS))
    }

    #[track_caller]
    fn risky(command: &str, because: &str) {
        match bash(command) {
            Assessment::Risky(reason) => {
                assert!(reason.contains(because), "{command:?}: {reason:?} lacks {because:?}");
            }
            other => panic!("{command:?} should be risky, got {other:?}"),
        }
    }

    #[track_caller]
    fn safe(command: &str) {
        let assessment = bash(command);
        assert!(!assessment.is_risky(), "{command:?} should be safe, got {assessment:?}");
    }

    #[test]
    fn workspace_commands_run_without_asking() {
        safe("printf '%s' 'hi there' > hello.txt && echo written");
        safe("echo hi > y.txt");
        safe("python3 -c 'import time; time.sleep(120)' && echo slept");
        safe("mkdir -p src/app && touch src/app/main.rs");
        safe("rm -rf build ./target ~/cache");
        safe("cargo build 2>&1 | tail -5 > /dev/null");
        safe("git add -A && git commit -m 'work' && git status");
        safe("cat /etc/os-release");
        safe("ls -la # curl is only mentioned in a comment");
        safe("sh -c 'echo inner > out.txt'");
        safe("p=$$; while [ \"$p\" -gt 1 ]; do kill -9 $p; p=$(cut -d' ' -f4 /proc/$p/stat); done");
        safe("curl_like_tool --offline");
        safe("git clone_helper");
    }

    #[test]
    fn network_history_and_outside_writes_ask() {
        risky("curl http://127.0.0.1:1/", "network");
        risky("wget -q example.org", "`wget` reaches the network");
        risky("cd sub && git push origin main", "`git push`");
        risky("git -C repo fetch", "`git fetch`");
        risky("git reset --hard HEAD~3", "history");
        risky("git commit --amend -m x", "history");
        risky("git branch -D old", "history");
        risky("npm install left-pad", "`npm install`");
        risky("npx create-thing", "network");
        risky("pip install requests", "`pip install`");
        risky(
            "python3 -c \"import urllib.request; urllib.request.urlopen('https://example.org')\"",
            "example.org",
        );
        risky("rm -rf /etc/important", "deletes outside the workspace (/etc/important)");
        risky("rm -rf ../other-chat", "deletes outside");
        risky("rm -rf ~root", "deletes outside");
        risky("find / -name '*.log' -delete", "outside");
        risky("echo x > /etc/hosts", "writes outside the workspace (/etc/hosts)");
        risky("cp secret.txt /tmp/", "writes outside");
        risky("mv notes.txt ../", "outside");
        risky("sudo ls", "another user");
        risky("FOO=1 env -i systemctl restart x", "system");
        risky("eval \"$CMD\"", "eval");
        risky("bash -c 'git push'", "`git push`");
        risky("terraform apply", "always ask");
        risky("echo 'unbalanced", "could not be analysed");
        risky("timeout 5 ssh host", "`ssh`");
        risky("ls | xargs -n1 rm -f /var/tmp/x", "outside");
    }

    #[test]
    fn allowed_hosts_pass() {
        safe("curl_free_text https://github.com/org/repo");
        risky("curl https://github.com/org/repo", "`curl`");
        risky("echo https://gitlab.com/x", "gitlab.com");
        let fetch = |url: &str| policy().assess("WebFetch", &json!({"url": url}), Path::new(WS));
        assert!(!fetch("https://api.github.com/repos").is_risky());
        assert!(fetch("https://evil.example/x").is_risky());
        assert!(fetch("https://github.com.evil.example/x").is_risky());
    }

    #[test]
    fn file_tools_are_checked_by_path() {
        let ws = Path::new(WS);
        let p = policy();
        let assess = |tool: &str, path: &str| p.assess(tool, &json!({"file_path": path}), ws);
        assert_eq!(assess("Read", "notes.md"), Assessment::ReadOnly);
        assert_eq!(assess("Read", &format!("{WS}/src/lib.rs")), Assessment::ReadOnly);
        assert!(assess("Read", "/srv/agentbox/secret.key").is_risky());
        assert!(matches!(assess("Write", &format!("{WS}/a.txt")), Assessment::Safe(_)));
        assert!(assess("Write", "/etc/passwd").is_risky());
        assert!(assess("Edit", &format!("{WS}/../other/home/a.txt")).is_risky());
        assert!(assess("Edit", &format!("{WS}/.git/config")).is_risky());
        assert_eq!(p.assess("Grep", &json!({"pattern": "x"}), ws), Assessment::ReadOnly);
        assert!(p.assess("WebSearch", &json!({"query": "x"}), ws).is_risky());
        assert!(p.assess("mcp__db__drop", &json!({}), ws).is_risky());
    }

    #[test]
    fn plan_mode_lets_only_readers_run() {
        let ws = Path::new(WS);
        let p = policy();
        let read_only = |command: &str| p.is_read_only("Bash", &json!({"command": command}), ws);
        assert!(read_only("ls -la && cat README.md | head -5"));
        assert!(read_only("git status && git log --oneline | wc -l"));
        assert!(!read_only("echo hi > file.txt"));
        assert!(!read_only("printf '%s' x > plan.txt && echo written"));
        assert!(!read_only("git commit -m x"));
        assert!(!read_only("find . -name x -delete"));
        assert!(!read_only("python3 script.py"));
        assert!(p.is_read_only("Read", &json!({"file_path": "a"}), ws));
        assert!(!p.is_read_only("Write", &json!({"file_path": "a"}), ws));
    }

    #[test]
    fn rules_match_what_they_say_and_no_more() {
        let rule = |tool: &str, content: Option<&str>| PermissionRule {
            tool_name: tool.into(),
            rule_content: content.map(str::to_owned),
        };
        let bash = |command: &str| json!({"command": command});
        let exact = rule("Bash", Some("printf x > a.txt && echo written"));
        assert!(rule_matches(&exact, "Bash", &bash("printf x > a.txt && echo written")));
        assert!(!rule_matches(&exact, "Bash", &bash("printf y > a.txt && echo written")));
        let prefix = rule("Bash", Some("npm test *"));
        assert!(rule_matches(&prefix, "Bash", &bash("npm test")));
        assert!(rule_matches(&prefix, "Bash", &bash("npm test --watch")));
        assert!(!rule_matches(&prefix, "Bash", &bash("npm testing")));
        assert!(!rule_matches(&prefix, "Bash", &bash("npm test; curl evil.example")));
        assert!(!rule_matches(&prefix, "Bash", &bash("npm test $(rm -rf /)")));
        assert!(!rule_matches(&prefix, "Write", &bash("npm test")));
        let whole = rule("Write", None);
        assert!(rule_matches(&whole, "Write", &json!({"file_path": "/x"})));
        let domain = rule("WebFetch", Some("domain:docs.rs"));
        assert!(rule_matches(&domain, "WebFetch", &json!({"url": "https://docs.rs/x"})));
        assert!(!rule_matches(&domain, "WebFetch", &json!({"url": "https://docs.rs.evil/x"})));
    }

    #[test]
    fn remembered_rules_follow_the_clis_suggestion() {
        let suggestions = vec![
            json!({"type": "addRules", "rules": [{"toolName": "Bash", "ruleContent": "echo hi *"}],
                   "behavior": "allow", "destination": "localSettings"}),
            json!({"type": "addDirectories", "directories": ["/w"], "destination": "session"}),
        ];
        let input = json!({"command": "echo hi > y.txt"});
        assert_eq!(
            rule_for("Bash", &input, &suggestions).rule_content.as_deref(),
            Some("echo hi *")
        );
        assert_eq!(rule_for("Bash", &input, &[]).rule_content.as_deref(), Some("echo hi > y.txt"));
        let write = rule_for("Write", &json!({"file_path": "/w/a"}), &[]);
        assert_eq!(write, PermissionRule { tool_name: "Write".into(), rule_content: None });
        let fetch = rule_for("WebFetch", &json!({"url": "https://docs.rs/x"}), &[]);
        assert_eq!(fetch.rule_content.as_deref(), Some("domain:docs.rs"));
    }

    #[test]
    fn the_parser_splits_commands_and_finds_redirections() {
        let script =
            parse_script("a 'b c' \"d\\\"e\" | f>out.txt 2>&1; g $(h i) `j` >> log").unwrap();
        assert_eq!(
            script.commands,
            vec![
                vec!["a".to_owned(), "b c".into(), "d\"e".into()],
                vec!["f".to_owned()],
                vec!["g".to_owned()],
                vec!["h".to_owned(), "i".into()],
                vec!["j".to_owned()],
            ]
        );
        assert_eq!(script.redirects, vec!["out.txt".to_owned(), "log".into()]);
        assert!(parse_script("echo \"open").is_none());
        assert_eq!(host_of("https://user@Example.org:8443/x"), Some("Example.org".into()));
        assert_eq!(urls_in("see http://a.b/c and ftp://c.d"), vec!["a.b".to_owned(), "c.d".into()]);
    }
}
