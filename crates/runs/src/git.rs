//! Git in a chat's sandbox: the repository a chat starts from (its URL checked), the clone
//! before its first turn, and the commands behind the git routes.
//!
//! Git always runs inside the chat's sandbox, as the sandbox's user, through its egress
//! proxy; never on the host. A token reaches git only through a credential helper given in
//! the git process's environment (`GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`/`GIT_CONFIG_VALUE_n`)
//! that prints the variable [`TOKEN_ENV`], so it is never written to `.git/config`, the
//! workspace, a checkpoint or a log. Every command has a timeout and bounded output.

use std::time::Duration;

use agentbox_protocol::api::{GitChange, GitChangeKind};
use agentbox_sandbox::egress::AllowList;
use agentbox_sandbox::{ExecRequest, ExitStatus, Sandbox, SandboxError};
use agentbox_store::ChatRepositoryRecord;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use crate::secrets::ChatSecrets;

/// The longest repository URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// The longest branch name accepted, in bytes.
pub const MAX_BRANCH_BYTES: usize = 255;
/// The longest directory name a clone gets.
const MAX_DIRECTORY_CHARS: usize = 100;
/// The variable the credential helper reads the token from (in git's environment only).
pub const TOKEN_ENV: &str = "AGENTBOX_GIT_TOKEN";
/// The secret that authenticates git when the repository names none.
pub const DEFAULT_SECRET: &str = "GITHUB_TOKEN";
/// GitHub's own API.
pub const DEFAULT_GITHUB_API: &str = "https://api.github.com";
/// A command's stdout beyond this is cut (the diff has its own bound).
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// How much of stderr is kept (its end: where git says what went wrong).
const MAX_STDERR_BYTES: usize = 64 * 1024;
/// Progress notices of one clone, at most: a phase's start and its end.
const MAX_PROGRESS_NOTICES: usize = 24;

/// How git runs for the chats of this node.
#[derive(Clone, Debug)]
pub struct GitSettings {
    /// The operator's allow-list (`--sandbox-allow-hosts`): the only hosts a repository may
    /// be reached at over plain `http://`; every other repository is `https://`.
    pub http_hosts: AllowList,
    /// How long a clone may take.
    pub clone_timeout: Duration,
    /// How long any other git command may take (push and pull included).
    pub command_timeout: Duration,
    /// The GitHub API pull requests are opened through (`--github-api-url`).
    pub github_api_url: String,
}

impl Default for GitSettings {
    fn default() -> Self {
        Self {
            http_hosts: AllowList::default(),
            clone_timeout: Duration::from_secs(600),
            command_timeout: Duration::from_secs(120),
            github_api_url: DEFAULT_GITHUB_API.to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// What the request asked for is not acceptable (a URL, a branch name, a path): `code`
    /// says which rule it breaks.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    /// Git ran and refused: `code` says why (`git_auth_failed`, `push_rejected`, ...).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error("git did not finish within {} seconds and was stopped", .0.as_secs())]
    Timeout(Duration),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
}

fn invalid(code: &'static str, message: impl Into<String>) -> GitError {
    GitError::Invalid { code, message: message.into() }
}

/// A repository URL as checked: what is cloned, the host the chat's egress allows, and the
/// directory under the sandbox's home the clone gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryUrl {
    pub url: String,
    pub host: String,
    pub port: u16,
    pub directory: String,
}

/// Check a repository URL: `https://host[:port]/path` (or `http://` for hosts on the
/// operator's allow-list), no credentials, no query or fragment, a path whose last segment
/// names the clone's directory.
pub fn check_url(url: &str, http_hosts: &AllowList) -> Result<RepositoryUrl, GitError> {
    const BAD: &str = "invalid_repository_url";
    let url = url.trim();
    if url.is_empty() || url.len() > MAX_URL_BYTES {
        return Err(invalid(BAD, format!("A repository URL has 1 to {MAX_URL_BYTES} bytes.")));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid(BAD, "A repository URL has no spaces or control characters."));
    }
    let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
        ("https", rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        ("http", rest)
    } else {
        return Err(invalid(
            BAD,
            "A repository URL starts with https:// (SSH and other schemes are not supported).",
        ));
    };
    let (authority, path) = rest.find('/').map_or((rest, ""), |at| rest.split_at(at));
    if authority.contains('@') {
        return Err(invalid(
            "credentials_in_url",
            "A repository URL must not hold a user name or token: store the token as a secret \
             (GITHUB_TOKEN, or the one the repository's `secret` names).",
        ));
    }
    if path.contains(['?', '#']) {
        return Err(invalid(BAD, "A repository URL has no query or fragment."));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => {
            let port = port.parse::<u16>().ok().filter(|&port| port != 0);
            (host, port.ok_or_else(|| invalid(BAD, "The repository URL's port is not valid."))?)
        }
        None => (authority, if scheme == "https" { 443 } else { 80 }),
    };
    let host = host.to_ascii_lowercase();
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !host.starts_with(['-', '.'])
        && !host.ends_with('-');
    if !host_ok {
        return Err(invalid(BAD, "The repository URL's host is not a valid host name."));
    }
    let segments: Vec<&str> = path.split('/').filter(|segment| !segment.is_empty()).collect();
    let path_ok = segments.iter().all(|segment| {
        *segment != "."
            && *segment != ".."
            && segment.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%+".contains(&b))
    });
    let Some(last) = segments.last().filter(|_| path_ok) else {
        return Err(invalid(
            BAD,
            "The repository URL needs a path naming the repository (letters, digits and -._~%+).",
        ));
    };
    let name = last.strip_suffix(".git").unwrap_or(last);
    let name_ok = !name.is_empty()
        && name.chars().count() <= MAX_DIRECTORY_CHARS
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !name_ok {
        return Err(invalid(
            BAD,
            "The repository URL's last segment must name a directory: letters, digits and -._, \
             not starting with a dot.",
        ));
    }
    if scheme == "http" && !http_hosts.allows(&host, port) {
        return Err(invalid(
            "insecure_repository_url",
            "Plain http:// repositories are allowed only on hosts the operator allow-listed \
             (--sandbox-allow-hosts); use https://.",
        ));
    }
    Ok(RepositoryUrl { url: url.to_owned(), host, port, directory: name.to_owned() })
}

/// Check a branch name by the rules of `git check-ref-format --branch`.
pub fn check_branch(name: &str) -> Result<(), GitError> {
    let refuse = |why: &str| {
        Err(invalid("invalid_branch", format!("{name:?} is not a valid branch name: {why}.")))
    };
    if name.is_empty() || name.len() > MAX_BRANCH_BYTES {
        return refuse(&format!("a branch name has 1 to {MAX_BRANCH_BYTES} bytes"));
    }
    if name == "@" || name.starts_with('-') {
        return refuse("it cannot be `@` or start with `-`");
    }
    if name.bytes().any(|b| b < 0x20 || b == 0x7f || b" ~^:?*[\\".contains(&b)) {
        return refuse("it has a space, a control character or one of ~^:?*[\\");
    }
    if name.contains("..") || name.contains("@{") || name.contains("//") {
        return refuse("it has `..`, `@{` or `//`");
    }
    if name.starts_with('/') || name.ends_with('/') || name.ends_with('.') {
        return refuse("it starts or ends with `/`, or ends with `.`");
    }
    if name.split('/').any(|part| part.starts_with('.') || part.ends_with(".lock")) {
        return refuse("a part starts with `.` or ends with `.lock`");
    }
    Ok(())
}

/// A path a git route names: relative to the repository, inside it.
pub fn check_path(path: &str) -> Result<(), GitError> {
    let ok = !path.is_empty()
        && path.len() <= 4096
        && !path.starts_with('/')
        && !path.contains('\0')
        && path.split('/').all(|part| part != "..");
    if ok {
        Ok(())
    } else {
        Err(invalid("invalid_path", format!("{path:?} is not a path inside the repository.")))
    }
}

/// Who commits: the account's name and email.
#[derive(Clone, Debug)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

/// The environment of one git process: a credential helper that prints the token from
/// [`TOKEN_ENV`] when there is one (and no other helper: an empty value resets the list),
/// no terminal prompts, and nothing of the system's configuration.
fn git_env(token: Option<&str>) -> Vec<(String, String)> {
    let mut config = vec![("credential.helper", String::new())];
    if token.is_some() {
        // Only `get` answers; `store` and `erase` are told nothing back and keep nothing.
        config.push((
            "credential.helper",
            format!(
                "!f() {{ test \"$1\" = get || exit 0; echo username=x-access-token; \
                 echo \"password=${TOKEN_ENV}\"; }}; f"
            ),
        ));
    }
    let mut env = vec![
        ("GIT_TERMINAL_PROMPT".to_owned(), "0".to_owned()),
        ("GIT_CONFIG_NOSYSTEM".to_owned(), "1".to_owned()),
        ("GIT_LITERAL_PATHSPECS".to_owned(), "1".to_owned()),
        ("GIT_ALLOW_PROTOCOL".to_owned(), "http:https".to_owned()),
        ("GIT_CONFIG_COUNT".to_owned(), config.len().to_string()),
    ];
    for (n, (key, value)) in config.into_iter().enumerate() {
        env.push((format!("GIT_CONFIG_KEY_{n}"), key.to_owned()));
        env.push((format!("GIT_CONFIG_VALUE_{n}"), value));
    }
    if let Some(token) = token {
        env.push((TOKEN_ENV.to_owned(), token.to_owned()));
    }
    env
}

/// What a git command left behind.
#[derive(Debug)]
pub struct GitOutput {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    /// stdout was longer than the bound and was cut (the process was stopped).
    pub truncated: bool,
    /// The end of stderr, as text.
    pub stderr: String,
}

impl GitOutput {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// One git command in the sandbox, in `cwd`.
pub struct GitCommand<'a> {
    pub cwd: String,
    pub args: Vec<String>,
    pub token: Option<&'a str>,
    pub timeout: Duration,
    pub max_stdout: usize,
    /// Where stderr's lines go as they come (a clone's progress), besides the kept end.
    pub progress: Option<mpsc::UnboundedSender<String>>,
}

/// Run git in the sandbox: found on the system's own directories (never one the agent can
/// write to), stopped at the timeout, stdout bounded.
pub async fn run(sandbox: &dyn Sandbox, command: GitCommand<'_>) -> Result<GitOutput, GitError> {
    let mut args = vec!["PATH=/usr/local/bin:/usr/bin:/bin".to_owned(), "git".to_owned()];
    args.extend(command.args);
    let request = ExecRequest {
        program: "/usr/bin/env".into(),
        args,
        env: git_env(command.token),
        cwd: Some(command.cwd),
        ..ExecRequest::default()
    };
    exec_bounded(sandbox, request, None, command.timeout, command.max_stdout, command.progress)
        .await
}

/// Run a process in the sandbox with `stdin` (or none), stopped at `timeout`, stdout cut
/// at `max`, stderr's end kept (and its lines handed to `progress`).
async fn exec_bounded(
    sandbox: &dyn Sandbox,
    request: ExecRequest,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    max: usize,
    progress: Option<mpsc::UnboundedSender<String>>,
) -> Result<GitOutput, GitError> {
    let process = sandbox.exec(request).await?;
    let mut input = process.stdin;
    let killer = process.killer.clone();
    let work = async move {
        let writing = async move {
            if let Some(data) = stdin {
                use tokio::io::AsyncWriteExt;
                // A process that does not read its input fails on its own terms.
                let _ = input.write_all(&data).await;
            }
            drop(input);
        };
        let (stdout, stderr, ()) = tokio::join!(
            read_bounded(process.stdout, max),
            read_stderr(process.stderr, progress),
            writing
        );
        let (stdout, truncated) = stdout?;
        if truncated {
            // Enough was read: the rest would only be thrown away.
            process.killer.kill();
        }
        let status = process.exit.await?;
        Ok::<_, std::io::Error>(GitOutput { status, stdout, truncated, stderr: stderr? })
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(output) => output.map_err(|err| GitError::Sandbox(SandboxError::Io(err))),
        Err(_) => {
            killer.kill();
            Err(GitError::Timeout(timeout))
        }
    }
}

/// The owner and name of a repository from its URL's last two path segments (GitHub's
/// `owner/name`, without `.git`).
pub fn owner_and_name(url: &str) -> Option<(String, String)> {
    let path = url.split_once("://")?.1.split_once('/')?.1;
    let mut segments = path.split('/').filter(|segment| !segment.is_empty()).rev();
    let name = segments.next()?;
    let owner = segments.next()?;
    Some((owner.to_owned(), name.strip_suffix(".git").unwrap_or(name).to_owned()))
}

/// What the GitHub API answered: its status and body.
#[derive(Debug)]
pub struct ApiAnswer {
    pub status: u16,
    pub body: String,
}

/// `POST {api}/repos/{owner}/{name}/pulls` with `body` (JSON), from inside the sandbox
/// (with `curl`, through its egress proxy, so TLS and the network are the sandbox's), the
/// token in curl's environment only.
pub async fn post_pull_request(
    sandbox: &dyn Sandbox,
    api: &str,
    owner: &str,
    name: &str,
    token: &str,
    body: Vec<u8>,
    timeout: Duration,
) -> Result<ApiAnswer, GitError> {
    let url = format!("{}/repos/{owner}/{name}/pulls", api.trim_end_matches('/'));
    // The shell puts the token into the header, so it is in no argument list.
    let script = "exec curl -sS --max-time 60 -o - -w '\\n%{http_code}' -X POST \
                  -H 'Accept: application/vnd.github+json' \
                  -H 'Content-Type: application/json' \
                  -H \"Authorization: Bearer $AGENTBOX_GIT_TOKEN\" \
                  --data-binary @- \"$1\"";
    let request = ExecRequest {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into(), "sh".into(), url],
        env: vec![(TOKEN_ENV.to_owned(), token.to_owned())],
        ..ExecRequest::default()
    };
    let output =
        exec_bounded(sandbox, request, Some(body), timeout, MAX_OUTPUT_BYTES, None).await?;
    let text = output.stdout_text();
    let (answer, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    match code.trim().parse::<u16>() {
        Ok(status) if output.status.success() && status != 0 => {
            Ok(ApiAnswer { status, body: answer.to_owned() })
        }
        _ => Err(GitError::Refused {
            code: "github_unreachable",
            message: format!(
                "The GitHub API at {api} could not be reached: {}",
                summary(&output.stderr)
            ),
        }),
    }
}

async fn read_bounded(
    mut from: impl AsyncRead + Unpin,
    max: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut out = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    loop {
        let read = from.read(&mut chunk).await?;
        if read == 0 {
            return Ok((out, false));
        }
        let room = max.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..read.min(room)]);
        if read > room {
            return Ok((out, true));
        }
    }
}

/// stderr's end (at most [`MAX_STDERR_BYTES`]), and each of its lines, split at `\r` too
/// (git redraws a progress line with it), handed to `progress`.
async fn read_stderr(
    mut from: impl AsyncRead + Unpin,
    progress: Option<mpsc::UnboundedSender<String>>,
) -> std::io::Result<String> {
    let mut kept: Vec<u8> = Vec::new();
    let mut line: Vec<u8> = Vec::new();
    let mut chunk = vec![0; 8 * 1024];
    loop {
        let read = from.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        for &byte in &chunk[..read] {
            if byte == b'\r' || byte == b'\n' {
                if let (Some(progress), false) = (&progress, line.is_empty()) {
                    // A receiver that went away only misses progress.
                    let _ = progress.send(String::from_utf8_lossy(&line).into_owned());
                }
                line.clear();
            } else if line.len() < 4096 {
                line.push(byte);
            }
        }
        kept.extend_from_slice(&chunk[..read]);
        if kept.len() > MAX_STDERR_BYTES {
            kept.drain(..kept.len() - MAX_STDERR_BYTES);
        }
    }
    if let (Some(progress), false) = (&progress, line.is_empty()) {
        let _ = progress.send(String::from_utf8_lossy(&line).into_owned());
    }
    Ok(String::from_utf8_lossy(&kept).into_owned())
}

/// The lines of git's stderr worth showing: its own messages without the `remote:` and
/// `hint:` noise and the redraws of a progress meter.
pub fn summary(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("hint:"))
        .collect();
    let start = lines.len().saturating_sub(6);
    lines[start..].join("\n")
}

/// Why git refused, from what it printed: one of the codes the routes document.
pub fn refusal(stderr: &str, fallback: &'static str) -> GitError {
    let lower = stderr.to_ascii_lowercase();
    let code = if lower.contains("authentication failed")
        || lower.contains("could not read username")
        || lower.contains("could not read password")
        || lower.contains("http basic: access denied")
        || lower.contains("returned error: 401")
        || lower.contains("returned error: 403")
    {
        "git_auth_failed"
    } else if lower.contains("[rejected]") || lower.contains("non-fast-forward") {
        "push_rejected"
    } else if lower.contains("conflict") || lower.contains("unmerged") {
        "merge_conflict"
    } else if lower.contains("connect tunnel failed") {
        // The sandbox's egress proxy refused the host (or could not reach it).
        "host_not_allowed"
    } else if lower.contains("not possible to fast-forward") || lower.contains("divergent branches")
    {
        "pull_diverged"
    } else {
        fallback
    };
    let advice = match code {
        "git_auth_failed" => {
            " The repository refused the credentials: check the token in your secrets \
             (GITHUB_TOKEN, or the secret the repository names)."
        }
        "push_rejected" => " The remote has commits this branch lacks: pull first, then push.",
        "merge_conflict" => " Resolve the conflicts in the files, then commit.",
        "pull_diverged" => " The branch and its upstream have diverged.",
        _ => "",
    };
    let said = summary(stderr);
    let message = if said.is_empty() {
        format!("git failed.{advice}")
    } else {
        format!("git failed: {said}{advice}")
    };
    GitError::Refused { code, message }
}

/// The clone's directory as the sandbox sees it: `<home>/<directory>`.
pub fn directory(sandbox: &dyn Sandbox, repository: &ChatRepositoryRecord) -> String {
    format!("{}/{}", sandbox.home().trim_end_matches('/'), repository.directory)
}

/// The token for the chat's repository: the secret it names (which must exist), else the
/// owner's `GITHUB_TOKEN` if they have one, else none.
pub fn token(
    repository: &ChatRepositoryRecord,
    secrets: &ChatSecrets,
) -> Result<Option<String>, GitError> {
    match &repository.secret {
        Some(name) => {
            secrets.get(name).map(|value| Some(value.to_owned())).ok_or_else(|| GitError::Refused {
                code: "secret_not_found",
                message: format!(
                    "The repository's secret {name} is not set: add it in Settings, Secrets."
                ),
            })
        }
        None => Ok(secrets.get(DEFAULT_SECRET).map(str::to_owned)),
    }
}

/// Whether the clone is there: its `.git` is a directory in the workspace.
pub async fn is_cloned(
    sandbox: &dyn Sandbox,
    repository: &ChatRepositoryRecord,
) -> Result<bool, GitError> {
    let files = sandbox.files().clone();
    let path = format!("{}/.git", repository.directory);
    match agentbox_sandbox::blocking(move || files.stat(&path)).await {
        Ok(info) => Ok(info.kind == agentbox_sandbox::FileKind::Dir),
        Err(SandboxError::NotFound(_)) => Ok(false),
        Err(err) => Err(err.into()),
    }
}

/// Clone the chat's repository into its directory, each line of git's progress handed to
/// `progress`, then configure the clone for its owner (name, email; no credentials).
pub async fn clone(
    sandbox: &dyn Sandbox,
    repository: &ChatRepositoryRecord,
    token: Option<&str>,
    identity: &Identity,
    timeout: Duration,
    progress: mpsc::UnboundedSender<String>,
) -> Result<(), GitError> {
    let mut args = vec!["clone".to_owned(), "--progress".to_owned()];
    if let Some(branch) = &repository.branch {
        args.extend(["--branch".to_owned(), branch.clone()]);
    }
    args.extend(["--".to_owned(), repository.url.clone(), repository.directory.clone()]);
    let home = sandbox.home().to_owned();
    let command = GitCommand {
        cwd: home,
        args,
        token,
        timeout,
        max_stdout: MAX_OUTPUT_BYTES,
        progress: Some(progress),
    };
    let output = run(sandbox, command).await?;
    if !output.status.success() {
        return Err(refusal(&output.stderr, "clone_failed"));
    }
    let cwd = directory(sandbox, repository);
    for (key, value) in [("user.name", &identity.name), ("user.email", &identity.email)] {
        let command = GitCommand {
            cwd: cwd.clone(),
            args: vec!["config".into(), key.into(), value.clone()],
            token: None,
            timeout,
            max_stdout: MAX_OUTPUT_BYTES,
            progress: None,
        };
        let output = run(sandbox, command).await?;
        if !output.status.success() {
            return Err(refusal(&output.stderr, "git_failed"));
        }
    }
    Ok(())
}

/// A parsed `git status --porcelain=v2 --branch -z`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub upstream: Option<String>,
    pub ahead: u32,
    pub behind: u32,
    pub changes: Vec<GitChange>,
}

fn kind_of(code: u8) -> Option<GitChangeKind> {
    Some(match code {
        b'M' => GitChangeKind::Modified,
        b'A' => GitChangeKind::Added,
        b'D' => GitChangeKind::Deleted,
        b'R' => GitChangeKind::Renamed,
        b'C' => GitChangeKind::Copied,
        b'T' => GitChangeKind::TypeChanged,
        _ => return None,
    })
}

/// Parse porcelain v2 with `-z`: headers `# branch.*`, then `1`, `2` (whose original path
/// is the next NUL-separated field), `u`, `?` entries.
pub fn parse_status(output: &[u8]) -> Status {
    let text = String::from_utf8_lossy(output);
    let mut fields = text.split('\0');
    let mut status = Status::default();
    while let Some(entry) = fields.next() {
        if let Some(header) = entry.strip_prefix("# ") {
            let (key, value) = header.split_once(' ').unwrap_or((header, ""));
            match key {
                "branch.oid" if value != "(initial)" => status.commit = Some(value.to_owned()),
                "branch.head" if value != "(detached)" => status.branch = Some(value.to_owned()),
                "branch.upstream" => status.upstream = Some(value.to_owned()),
                "branch.ab" => {
                    for part in value.split(' ') {
                        if let Some(ahead) = part.strip_prefix('+') {
                            status.ahead = ahead.parse().unwrap_or(0);
                        } else if let Some(behind) = part.strip_prefix('-') {
                            status.behind = behind.parse().unwrap_or(0);
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        let (tag, rest) = entry.split_at(entry.len().min(1));
        let change = match tag {
            "1" | "2" => {
                // XY sub mH mI mW hH hI [score] path
                let parts = if tag == "1" { 8 } else { 9 };
                let columns: Vec<&str> = rest.trim_start().splitn(parts, ' ').collect();
                let (Some(xy), Some(path)) = (columns.first(), columns.get(parts - 1)) else {
                    continue;
                };
                let xy = xy.as_bytes();
                let (x, y) =
                    (xy.first().copied().unwrap_or(b'.'), xy.get(1).copied().unwrap_or(b'.'));
                let original_path =
                    if tag == "2" { fields.next().map(str::to_owned) } else { None };
                let kind = kind_of(x).or_else(|| kind_of(y)).unwrap_or(GitChangeKind::Modified);
                GitChange {
                    path: (*path).to_owned(),
                    original_path,
                    kind,
                    staged: x != b'.',
                    unstaged: y != b'.',
                }
            }
            "u" => {
                let columns: Vec<&str> = rest.trim_start().splitn(10, ' ').collect();
                let Some(path) = columns.get(9) else { continue };
                GitChange {
                    path: (*path).to_owned(),
                    original_path: None,
                    kind: GitChangeKind::Conflicted,
                    staged: false,
                    unstaged: true,
                }
            }
            "?" => GitChange {
                path: rest.trim_start().to_owned(),
                original_path: None,
                kind: GitChangeKind::Untracked,
                staged: false,
                unstaged: true,
            },
            _ => continue,
        };
        status.changes.push(change);
    }
    status
}

/// Where a clone's progress goes: a notice per phase's start and end, as git names them.
#[derive(Default)]
pub struct Progress {
    last_phase: Option<String>,
    shown: usize,
}

impl Progress {
    /// The notice to show for this line of git's stderr, if any: the first line of each
    /// phase (`Receiving objects: 3% (1/30)`) and the line that ends it (`..., done.`).
    pub fn line(&mut self, line: &str) -> Option<String> {
        let line = line.trim();
        let line = line.strip_prefix("remote: ").unwrap_or(line).trim();
        if line.is_empty() || self.shown >= MAX_PROGRESS_NOTICES {
            return None;
        }
        let phase = line.split(':').next().unwrap_or(line).to_owned();
        let new_phase = self.last_phase.as_deref() != Some(phase.as_str());
        let done = line.ends_with("done.") || line.ends_with("done");
        if new_phase || done {
            self.last_phase = Some(phase);
            self.shown += 1;
            return Some(line.to_owned());
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_without_credentials_and_name_a_directory() {
        let none = AllowList::default();
        let ok = check_url("https://github.com/acme/widgets.git", &none).unwrap();
        assert_eq!(
            (ok.host.as_str(), ok.port, ok.directory.as_str()),
            ("github.com", 443, "widgets")
        );
        let ok = check_url("https://Git.Example.com:8443/a/b/tool/", &none).unwrap();
        assert_eq!(
            (ok.host.as_str(), ok.port, ok.directory.as_str()),
            ("git.example.com", 8443, "tool")
        );
        for (url, code) in [
            ("ssh://github.com/a/b", "invalid_repository_url"),
            ("git@github.com:a/b.git", "invalid_repository_url"),
            ("https://user:tok@github.com/a/b", "credentials_in_url"),
            ("https://tok@github.com/a/b", "credentials_in_url"),
            ("https://github.com/", "invalid_repository_url"),
            ("https://github.com/a/..", "invalid_repository_url"),
            ("https://github.com/a/.git", "invalid_repository_url"),
            ("https://github.com/a/b?x=1", "invalid_repository_url"),
            ("https://gith ub.com/a/b", "invalid_repository_url"),
            ("https://github.com:0/a/b", "invalid_repository_url"),
            ("https:///a/b", "invalid_repository_url"),
            ("http://github.com/a/b", "insecure_repository_url"),
        ] {
            match check_url(url, &none) {
                Err(GitError::Invalid { code: got, .. }) => assert_eq!(got, code, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        let operator = AllowList::parse(&["127.0.0.1:*"]).unwrap();
        assert_eq!(check_url("http://127.0.0.1:9418/r.git", &operator).unwrap().port, 9418);
    }

    #[test]
    fn owner_and_name_are_the_last_two_segments() {
        let of = |url| owner_and_name(url).map(|(o, n)| format!("{o}/{n}"));
        assert_eq!(of("https://github.com/acme/widgets.git").as_deref(), Some("acme/widgets"));
        assert_eq!(of("https://ghe.example.com/x/acme/widgets/").as_deref(), Some("acme/widgets"));
        assert_eq!(of("https://example.com/widgets"), None);
    }

    #[test]
    fn branch_names_follow_check_ref_format() {
        for good in ["main", "feature/x", "fix-1.2", "a/b/c", "UPPER_case"] {
            assert!(check_branch(good).is_ok(), "{good}");
        }
        for bad in [
            "", "-x", "@", "a..b", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", "/a", "a/",
            "a//b", "a.", ".a", "a/.b", "a.lock", "a/b.lock", "a@{1}", "a\u{7f}",
        ] {
            assert!(check_branch(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn porcelain_v2_is_read_with_renames_and_untracked_files() {
        let output = b"# branch.oid 1234abcd\0# branch.head main\0# branch.upstream origin/main\0\
# branch.ab +2 -1\0\
1 .M N... 100644 100644 100644 aaaa bbbb README.md\0\
1 A. N... 000000 100644 100644 0000 cccc new file.txt\0\
2 R. N... 100644 100644 100644 dddd dddd R100 renamed.txt\0old.txt\0\
u UU N... 100644 100644 100644 100644 e f g both.txt\0\
? untracked/x.rs\0";
        let status = parse_status(output);
        assert_eq!(status.branch.as_deref(), Some("main"));
        assert_eq!(status.commit.as_deref(), Some("1234abcd"));
        assert_eq!(status.upstream.as_deref(), Some("origin/main"));
        assert_eq!((status.ahead, status.behind), (2, 1));
        let seen: Vec<_> = status
            .changes
            .iter()
            .map(|c| (c.path.as_str(), c.kind, c.staged, c.unstaged, c.original_path.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                ("README.md", GitChangeKind::Modified, false, true, None),
                ("new file.txt", GitChangeKind::Added, true, false, None),
                ("renamed.txt", GitChangeKind::Renamed, true, false, Some("old.txt")),
                ("both.txt", GitChangeKind::Conflicted, false, true, None),
                ("untracked/x.rs", GitChangeKind::Untracked, false, true, None),
            ]
        );
        let fresh = parse_status(b"# branch.oid (initial)\0# branch.head (detached)\0");
        assert_eq!((fresh.commit, fresh.branch), (None, None));
    }

    #[test]
    fn progress_shows_each_phase_once_and_its_end() {
        let mut progress = Progress::default();
        let lines = [
            "Cloning into 'r'...",
            "remote: Counting objects:  50% (1/2)",
            "remote: Counting objects: 100% (2/2), done.",
            "Receiving objects:  10% (1/10)",
            "Receiving objects:  20% (2/10)",
            "Receiving objects: 100% (10/10), done.",
        ];
        let shown: Vec<_> = lines.iter().filter_map(|line| progress.line(line)).collect();
        assert_eq!(
            shown,
            [
                "Cloning into 'r'...",
                "Counting objects:  50% (1/2)",
                "Counting objects: 100% (2/2), done.",
                "Receiving objects:  10% (1/10)",
                "Receiving objects: 100% (10/10), done.",
            ]
        );
    }

    #[test]
    fn the_token_is_only_in_the_environment_variable_the_helper_reads() {
        let env = git_env(Some("tok-123"));
        let holding: Vec<_> =
            env.iter().filter(|(_, value)| value.contains("tok-123")).map(|(k, _)| k).collect();
        assert_eq!(holding, [TOKEN_ENV]);
        assert!(env.iter().any(|(_, value)| value.contains(&format!("${TOKEN_ENV}"))));
        assert!(!git_env(None).iter().any(|(name, _)| name == TOKEN_ENV));
    }
}
