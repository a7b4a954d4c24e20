//! The git routes of a chat started from a repository: its status, a diff, commit,
//! branch, push and pull. Git runs in the chat's sandbox (`agentbox_runs::git`), never on
//! the host; a chat without a repository answers 404 `no_repository`.

use std::sync::Arc;

use agentbox_protocol::api::{
    GitBranchRequest, GitCommitRequest, GitDiff, GitPullRequest, GitPullRequestRequest, GitResult,
    GitStatus,
};
use agentbox_runs::git::{self, GitCommand, GitError, GitOutput};
use agentbox_sandbox::Sandbox;
use agentbox_store::ChatRepositoryRecord;
use axum::Json;
use axum::extract::State;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::chats::owned_chat;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, ChatId};
use crate::state::AppState;

/// A diff longer than this is cut (`truncated`).
const MAX_DIFF_BYTES: usize = 2 * 1024 * 1024;
/// The longest commit message, in bytes.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// The most paths one commit names.
const MAX_PATHS: usize = 1000;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(git_status))
        .routes(routes!(diff))
        .routes(routes!(commit))
        .routes(routes!(branch))
        .routes(routes!(push))
        .routes(routes!(pull))
        .routes(routes!(pull_request))
}

/// The chat's clone in its sandbox, ready for a git command.
struct Clone {
    sandbox: Arc<dyn Sandbox>,
    repository: ChatRepositoryRecord,
    directory: String,
    /// For the commands that talk to the remote.
    token: Option<String>,
}

fn no_repository() -> ApiError {
    ApiError::not_found(
        "no_repository",
        "This chat was not started from a repository (POST /api/v1/chats with `repository`).",
    )
}

/// The owner's chat, its repository and its running sandbox; with `remote`, the token too.
async fn open(
    state: &AppState,
    user: &CurrentUser,
    chat_id: Uuid,
    remote: bool,
) -> Result<Clone, ApiError> {
    owned_chat(state, user, chat_id).await?;
    let repository = state.store.chat_repository(chat_id).await?.ok_or_else(no_repository)?;
    // The sandbox may have to start: it counts towards the user's running sandboxes.
    let limits = crate::limits::of_user(state, user.0.id).await?;
    crate::sandbox_limit::make_room(
        &state.store,
        &state.runner,
        &state.terminals,
        &limits,
        user.0.id,
        chat_id,
    )
    .await?;
    let sandbox = state.runner.sandbox_provider().ensure(&chat_id.to_string()).await?;
    if !git::is_cloned(sandbox.as_ref(), &repository).await? {
        return Err(ApiError::conflict(
            "not_cloned",
            "The repository is not cloned yet: it is cloned before the chat's first turn, so \
             send a prompt first (a failed clone says why in the chat).",
        ));
    }
    let token = if remote {
        let secrets = agentbox_runs::ChatSecrets::load(
            &state.store,
            &state.runner.config().sealing_key,
            user.0.id,
            chat_id,
        )
        .await?;
        git::token(&repository, &secrets)?
    } else {
        None
    };
    let directory = git::directory(sandbox.as_ref(), &repository);
    Ok(Clone { sandbox, repository, directory, token })
}

impl Clone {
    async fn git(
        &self,
        state: &AppState,
        args: &[&str],
        max: usize,
    ) -> Result<GitOutput, GitError> {
        let timeout = state.runner.config().git.command_timeout;
        let command = GitCommand {
            cwd: self.directory.clone(),
            args: args.iter().map(|arg| (*arg).to_owned()).collect(),
            token: self.token.as_deref(),
            timeout,
            max_stdout: max,
            progress: None,
        };
        git::run(self.sandbox.as_ref(), command).await
    }

    /// Run git; a failure is a refusal whose code comes from what git said, else `code`.
    async fn checked(
        &self,
        state: &AppState,
        args: &[&str],
        code: &'static str,
    ) -> Result<GitOutput, ApiError> {
        let output = self.git(state, args, git::MAX_OUTPUT_BYTES).await?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(git::refusal(&format!("{}\n{}", output.stdout_text(), output.stderr), code).into())
        }
    }

    async fn status(&self, state: &AppState) -> Result<git::Status, ApiError> {
        let args = ["status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all"];
        let output = self.checked(state, &args, "git_failed").await?;
        Ok(git::parse_status(&output.stdout))
    }

    /// Where the repository stands after a change, with git's words.
    async fn result(&self, state: &AppState, said: &GitOutput) -> Result<GitResult, ApiError> {
        let status = self.status(state).await?;
        let output = git::summary(&format!("{}\n{}", said.stdout_text(), said.stderr));
        Ok(GitResult { branch: status.branch, commit: status.commit, output })
    }
}

/// The branch, how far it is ahead of and behind its upstream, and every changed path.
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/git/status", tag = "git",
    params(("chat_id" = Uuid, Path)),
    responses((status = 200, body = GitStatus),
              (status = 404, description = "chat_not_found, no_repository"),
              (status = 409, description = "not_cloned, git_failed"),
              (status = 504, description = "git_timeout")),
    security(("bearer" = [])))]
async fn git_status(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<GitStatus>, ApiError> {
    let clone = open(&state, &user, chat_id, false).await?;
    let status = clone.status(&state).await?;
    Ok(Json(GitStatus {
        url: clone.repository.url.clone(),
        path: clone.directory.clone(),
        branch: status.branch,
        commit: status.commit,
        upstream: status.upstream,
        ahead: status.ahead,
        behind: status.behind,
        changes: status.changes,
    }))
}

/// Which diff `GET .../git/diff` shows.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DiffQuery {
    /// One path (relative to the repository); every tracked path without it.
    path: Option<String>,
    /// `true`: what is staged (the index against HEAD); else the working tree against the
    /// index.
    staged: Option<bool>,
}

/// A unified diff of the working tree (or, with `staged`, of the index), at most 2 MiB.
/// Untracked files are not in it (status lists them).
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/git/diff", tag = "git",
    params(("chat_id" = Uuid, Path), DiffQuery),
    responses((status = 200, body = GitDiff),
              (status = 404, description = "chat_not_found, no_repository"),
              (status = 409, description = "not_cloned, git_failed"),
              (status = 422, description = "invalid_path"),
              (status = 504, description = "git_timeout")),
    security(("bearer" = [])))]
async fn diff(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiQuery(query): ApiQuery<DiffQuery>,
) -> Result<Json<GitDiff>, ApiError> {
    if let Some(path) = &query.path {
        git::check_path(path)?;
    }
    let clone = open(&state, &user, chat_id, false).await?;
    let mut args = vec!["diff", "--no-color", "--no-ext-diff", "--no-textconv"];
    if query.staged == Some(true) {
        args.push("--cached");
    }
    if let Some(path) = &query.path {
        args.extend(["--", path.as_str()]);
    }
    let output = clone.git(&state, &args, MAX_DIFF_BYTES).await?;
    // A diff cut short stops git on purpose: its exit says nothing then.
    if !output.truncated && !output.status.success() {
        return Err(git::refusal(&output.stderr, "git_failed").into());
    }
    Ok(Json(GitDiff { diff: output.stdout_text(), truncated: output.truncated }))
}

/// Commit every change (or only `paths`, new files included) with `message`, as the
/// chat's owner.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/git/commit", tag = "git",
    params(("chat_id" = Uuid, Path)), request_body = GitCommitRequest,
    responses((status = 200, body = GitResult),
              (status = 404, description = "chat_not_found, no_repository"),
              (status = 409, description = "not_cloned, nothing_to_commit, merge_conflict, git_failed"),
              (status = 422, description = "invalid_message, invalid_path"),
              (status = 504, description = "git_timeout")),
    security(("bearer" = [])))]
async fn commit(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiJson(request): ApiJson<GitCommitRequest>,
) -> Result<Json<GitResult>, ApiError> {
    let message = request.message.trim();
    if message.is_empty() || message.len() > MAX_MESSAGE_BYTES || message.contains('\0') {
        return Err(ApiError::unprocessable(
            "invalid_message",
            format!("A commit message has 1 to {MAX_MESSAGE_BYTES} bytes."),
        ));
    }
    let paths = request.paths.unwrap_or_default();
    if paths.len() > MAX_PATHS {
        return Err(ApiError::unprocessable(
            "invalid_path",
            format!("A commit names at most {MAX_PATHS} paths."),
        ));
    }
    for path in &paths {
        git::check_path(path)?;
    }
    let clone = open(&state, &user, chat_id, false).await?;
    let mut add = vec!["add", "-A", "--"];
    add.extend(paths.iter().map(String::as_str));
    clone.checked(&state, &add, "git_failed").await?;
    let mut commit = vec!["commit", "--no-verify", "-m", message];
    if !paths.is_empty() {
        commit.push("--");
        commit.extend(paths.iter().map(String::as_str));
    }
    let output = clone.git(&state, &commit, git::MAX_OUTPUT_BYTES).await?;
    if !output.status.success() {
        let said = format!("{}\n{}", output.stdout_text(), output.stderr);
        if said.contains("nothing to commit") || said.contains("no changes added") {
            return Err(ApiError::conflict("nothing_to_commit", "There are no changes to commit."));
        }
        return Err(git::refusal(&said, "git_failed").into());
    }
    Ok(Json(clone.result(&state, &output).await?))
}

/// Create a branch at HEAD and switch to it.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/git/branch", tag = "git",
    params(("chat_id" = Uuid, Path)), request_body = GitBranchRequest,
    responses((status = 200, body = GitResult),
              (status = 404, description = "chat_not_found, no_repository"),
              (status = 409, description = "not_cloned, branch_exists, git_failed"),
              (status = 422, description = "invalid_branch"),
              (status = 504, description = "git_timeout")),
    security(("bearer" = [])))]
async fn branch(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiJson(request): ApiJson<GitBranchRequest>,
) -> Result<Json<GitResult>, ApiError> {
    git::check_branch(&request.name)?;
    let clone = open(&state, &user, chat_id, false).await?;
    let output = clone.git(&state, &["switch", "-c", &request.name], git::MAX_OUTPUT_BYTES).await?;
    if !output.status.success() {
        if output.stderr.contains("already exists") {
            return Err(ApiError::conflict(
                "branch_exists",
                format!("A branch named {:?} exists already.", request.name),
            ));
        }
        return Err(git::refusal(&output.stderr, "git_failed").into());
    }
    Ok(Json(clone.result(&state, &output).await?))
}

/// Push the current branch to `origin` (setting its upstream), with the repository's
/// token.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/git/push", tag = "git",
    params(("chat_id" = Uuid, Path)),
    responses((status = 200, body = GitResult),
              (status = 404, description = "chat_not_found, no_repository"),
              (status = 409, description = "not_cloned, detached_head, push_rejected (pull first), host_not_allowed, push_failed"),
              (status = 422, description = "git_auth_failed, secret_not_found"),
              (status = 504, description = "git_timeout")),
    security(("bearer" = [])))]
async fn push(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<GitResult>, ApiError> {
    let clone = open(&state, &user, chat_id, true).await?;
    let Some(branch) = clone.status(&state).await?.branch else {
        return Err(ApiError::conflict(
            "detached_head",
            "HEAD is detached: create a branch (POST .../git/branch) before pushing.",
        ));
    };
    let refspec = format!("HEAD:refs/heads/{branch}");
    let args = ["push", "--porcelain", "--set-upstream", "origin", refspec.as_str()];
    let output = clone.checked(&state, &args, "push_failed").await?;
    Ok(Json(clone.result(&state, &output).await?))
}

/// Pull the current branch's upstream into it (a merge; conflicts are left to resolve),
/// with the repository's token.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/git/pull", tag = "git",
    params(("chat_id" = Uuid, Path)),
    responses((status = 200, body = GitResult),
              (status = 404, description = "chat_not_found, no_repository"),
              (status = 409, description = "not_cloned, merge_conflict, no_upstream, host_not_allowed, pull_failed"),
              (status = 422, description = "git_auth_failed, secret_not_found"),
              (status = 504, description = "git_timeout")),
    security(("bearer" = [])))]
async fn pull(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<GitResult>, ApiError> {
    let clone = open(&state, &user, chat_id, true).await?;
    let args = ["pull", "--no-rebase", "--no-edit"];
    let output = clone.checked(&state, &args, "pull_failed").await?;
    Ok(Json(clone.result(&state, &output).await?))
}

/// The longest pull request title, in characters.
const MAX_TITLE_CHARS: usize = 256;

/// Open a pull request of the current branch (pushed first) into `base` through the GitHub
/// API (`--github-api-url`), as the repository's token; owner and repository are the
/// remote URL's last two path segments. The call runs in the sandbox (`curl`, through its
/// egress proxy), like git.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/git/pull-request", tag = "git",
    params(("chat_id" = Uuid, Path)), request_body = GitPullRequestRequest,
    responses((status = 201, body = GitPullRequest),
              (status = 404, description = "chat_not_found, no_repository"),
              (status = 409, description = "not_cloned, detached_head, pull_request_refused (GitHub's reason: no commits, one exists), github_unreachable"),
              (status = 422, description = "invalid_title, invalid_branch, no_base, token_required, git_auth_failed, secret_not_found, not_a_github_repository"),
              (status = 504, description = "git_timeout")),
    security(("bearer" = [])))]
async fn pull_request(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiJson(request): ApiJson<GitPullRequestRequest>,
) -> Result<(axum::http::StatusCode, Json<GitPullRequest>), ApiError> {
    let title = request.title.trim();
    if title.is_empty() || title.chars().count() > MAX_TITLE_CHARS {
        return Err(ApiError::unprocessable(
            "invalid_title",
            format!("A pull request's title has 1 to {MAX_TITLE_CHARS} characters."),
        ));
    }
    if request.body.as_ref().is_some_and(|body| body.len() > MAX_MESSAGE_BYTES) {
        return Err(ApiError::unprocessable(
            "invalid_message",
            format!("A pull request's body has at most {MAX_MESSAGE_BYTES} bytes."),
        ));
    }
    if let Some(base) = &request.base {
        git::check_branch(base)?;
    }
    let clone = open(&state, &user, chat_id, true).await?;
    let Some((owner, name)) = git::owner_and_name(&clone.repository.url) else {
        return Err(ApiError::unprocessable(
            "not_a_github_repository",
            "The repository's URL has no owner/name path to open a pull request for.",
        ));
    };
    let Some(token) = clone.token.clone() else {
        return Err(ApiError::unprocessable(
            "token_required",
            "Opening a pull request needs a token: add GITHUB_TOKEN (or the repository's \
             secret) in Settings, Secrets.",
        ));
    };
    let Some(head) = clone.status(&state).await?.branch else {
        return Err(ApiError::conflict(
            "detached_head",
            "HEAD is detached: create a branch (POST .../git/branch) and push it first.",
        ));
    };
    let base = match request.base {
        Some(base) => base,
        None => {
            let args = ["symbolic-ref", "--short", "refs/remotes/origin/HEAD"];
            let output = clone.git(&state, &args, git::MAX_OUTPUT_BYTES).await?;
            let remote_head = output.stdout_text();
            match remote_head.trim().strip_prefix("origin/") {
                Some(base) if output.status.success() => base.to_owned(),
                _ => {
                    return Err(ApiError::unprocessable(
                        "no_base",
                        "The remote's default branch is not known: name the `base`.",
                    ));
                }
            }
        }
    };
    let body = serde_json::json!({
        "title": title,
        "body": request.body.unwrap_or_default(),
        "head": head,
        "base": base,
    });
    let answer = git::post_pull_request(
        clone.sandbox.as_ref(),
        &state.runner.config().git.github_api_url,
        &owner,
        &name,
        &token,
        body.to_string().into_bytes(),
        state.runner.config().git.command_timeout,
    )
    .await?;
    let parsed: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
    match answer.status {
        200 | 201 => {
            let url = parsed["html_url"].as_str().unwrap_or_default().to_owned();
            let number = parsed["number"].as_u64().unwrap_or_default();
            Ok((axum::http::StatusCode::CREATED, Json(GitPullRequest { url, number, head, base })))
        }
        401 | 403 => Err(ApiError::unprocessable(
            "git_auth_failed",
            "GitHub refused the token: check it in your secrets (it needs access to pull \
             requests of this repository).",
        )),
        status => {
            let mut reason = parsed["message"].as_str().unwrap_or("no reason given").to_owned();
            for error in parsed["errors"].as_array().into_iter().flatten() {
                if let Some(message) = error["message"].as_str() {
                    reason.push_str(&format!("; {message}"));
                }
            }
            Err(ApiError::conflict(
                "pull_request_refused",
                format!("GitHub did not open the pull request ({status}): {reason}"),
            ))
        }
    }
}
