//! A chat's files: list, download, upload, delete, make directories, move, and the whole
//! workspace as a zip. Every path is confined to the sandbox's home by the sandbox crate's
//! [`Workspace`]: `..`, absolute paths elsewhere and symlinks leading out are refused with
//! 400 `path_outside_workspace`, whoever planted them.

use std::io::Write;
use std::path::Path;

use agentbox_sandbox::{FileInfo, FileKind, SandboxError, Workspace};
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::chats::owned_chat;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiQuery, ChatId};
use crate::state::AppState;

/// The largest file read or written through the API.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// The response header of a listing that says how many entries the directory has.
pub const TOTAL_ENTRIES: &str = "x-agentbox-total-entries";

/// The longest entry name a zip archive can hold (its name field has 16 bits).
const MAX_ZIP_NAME: usize = u16::MAX as usize;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_files, delete_file))
        .routes(routes!(download_file, upload_file))
        .routes(routes!(stat_file))
        .routes(routes!(make_directory))
        .routes(routes!(move_file))
        .routes(routes!(download_zip))
        // Uploads may be larger than other request bodies.
        .layer(DefaultBodyLimit::max(MAX_FILE_BYTES))
}

/// One entry of a directory listing or the result of a file operation.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FileEntry {
    pub name: String,
    /// Relative to the home directory (`/home/user`).
    pub path: String,
    /// `file`, `dir`, `symlink` or `other`.
    pub kind: String,
    pub size: u64,
    /// Permission bits, e.g. 420 (`0o644`).
    pub mode: u32,
    /// Seconds since the Unix epoch.
    pub modified: i64,
    /// Where a symlink points; links are shown, never followed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_target: Option<String>,
}

impl From<FileInfo> for FileEntry {
    fn from(info: FileInfo) -> Self {
        let kind = serde_json::to_value(info.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        Self {
            name: info.name,
            path: info.path,
            kind,
            size: info.size,
            mode: info.mode,
            modified: info.modified,
            link_target: info.link_target,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PathQuery {
    /// A path relative to the home directory, or absolute under `/home/user`; empty for the
    /// home itself.
    #[serde(default)]
    path: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    pub from: String,
    pub to: String,
}

/// The chat's workspace, after checking the chat is the user's.
async fn workspace(
    state: &AppState,
    user: &CurrentUser,
    chat_id: Uuid,
) -> Result<Workspace, ApiError> {
    owned_chat(state, user, chat_id).await?;
    state.runner.sandbox_provider().workspace(&chat_id.to_string()).await.map_err(ApiError::from)
}

/// Run a blocking file operation on the workspace.
async fn on_files<T: Send + 'static>(
    workspace: Workspace,
    work: impl FnOnce(&Workspace) -> agentbox_sandbox::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    agentbox_sandbox::blocking(move || work(&workspace)).await.map_err(ApiError::from)
}

/// A directory's entries, directories first, then by name: at most the first 10,000 in that
/// order. The `x-agentbox-total-entries` header says how many entries the directory has
/// (counted up to 1,000,000); when it is more than the array holds, the listing was cut.
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/files", tag = "files",
    params(("chat_id" = Uuid, Path), PathQuery),
    responses((status = 200, body = Vec<FileEntry>,
                  headers(("x-agentbox-total-entries" = u64, description = "How many entries the directory has; more than returned when the listing was cut"))),
              (status = 400, description = "path_outside_workspace, invalid_path, name_too_long, not_a_directory"),
              (status = 403, description = "permission_denied"),
              (status = 404, description = "chat_not_found, file_not_found"),
              (status = 503, description = "sandbox_node_unavailable: the worker that holds the chat's sandbox is gone or not answering")),
    security(("bearer" = [])))]
async fn list_files(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiQuery(query): ApiQuery<PathQuery>,
) -> Result<Response, ApiError> {
    let workspace = workspace(&state, &user, chat_id).await?;
    let listing = on_files(workspace, move |ws| ws.list(&query.path)).await?;
    let entries: Vec<FileEntry> = listing.entries.into_iter().map(FileEntry::from).collect();
    Ok(([(TOTAL_ENTRIES, listing.total.to_string())], Json(entries)).into_response())
}

/// One file's metadata (a symlink is described, not followed).
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/files/stat", tag = "files",
    params(("chat_id" = Uuid, Path), PathQuery),
    responses((status = 200, body = FileEntry),
              (status = 400, description = "path_outside_workspace, invalid_path, name_too_long, not_a_directory"),
              (status = 403, description = "permission_denied"),
              (status = 404, description = "chat_not_found, file_not_found"),
              (status = 503, description = "sandbox_node_unavailable: the worker that holds the chat's sandbox is gone or not answering")),
    security(("bearer" = [])))]
async fn stat_file(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiQuery(query): ApiQuery<PathQuery>,
) -> Result<Json<FileEntry>, ApiError> {
    let workspace = workspace(&state, &user, chat_id).await?;
    Ok(Json(on_files(workspace, move |ws| ws.stat(&query.path)).await?.into()))
}

/// A regular file's contents (`application/octet-stream`). A FIFO, a socket or a device is
/// refused at once with 400 `not_a_regular_file`.
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/files/content", tag = "files",
    params(("chat_id" = Uuid, Path), PathQuery),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
              (status = 400, description = "path_outside_workspace, invalid_path, name_too_long, is_a_directory, not_a_directory, not_a_regular_file"),
              (status = 403, description = "permission_denied"),
              (status = 404, description = "chat_not_found, file_not_found"),
              (status = 413, description = "file_too_large"),
              (status = 503, description = "sandbox_node_unavailable: the worker that holds the chat's sandbox is gone or not answering")),
    security(("bearer" = [])))]
async fn download_file(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiQuery(query): ApiQuery<PathQuery>,
) -> Result<Response, ApiError> {
    let workspace = workspace(&state, &user, chat_id).await?;
    let name = Path::new(&query.path)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let data = on_files(workspace, move |ws| ws.read(&query.path, MAX_FILE_BYTES as u64)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", name.replace('"', "_")),
            ),
        ],
        data,
    )
        .into_response())
}

/// Create or replace a file with the request body; missing directories are created. A link
/// is written through when it leads to a regular file inside the workspace; a FIFO, a
/// socket or a device (or a link to one) is refused with 400 `not_a_regular_file`.
#[utoipa::path(put, path = "/api/v1/chats/{chat_id}/files/content", tag = "files",
    params(("chat_id" = Uuid, Path), PathQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, body = FileEntry),
              (status = 400, description = "path_outside_workspace, invalid_path, name_too_long, is_a_directory, not_a_directory, not_a_regular_file"),
              (status = 403, description = "permission_denied"),
              (status = 404, description = "chat_not_found, file_not_found (a link to nothing)"),
              (status = 409, description = "file_busy"),
              (status = 413, description = "body_too_large"),
              (status = 429, description = "limit_reached: a workspace disk limit of the user"),
              (status = 507, description = "disk_full"),
              (status = 503, description = "sandbox_node_unavailable: the worker that holds the chat's sandbox is gone or not answering")),
    security(("bearer" = [])))]
async fn upload_file(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiQuery(query): ApiQuery<PathQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<FileEntry>, ApiError> {
    let body = body.map_err(|rejection| {
        ApiError::new(rejection.status(), "body_too_large", rejection.body_text())
    })?;
    let workspace = workspace(&state, &user, chat_id).await?;
    // The file it replaces, if any, gives its bytes back.
    let path = query.path.clone();
    let replacing = on_files(workspace.clone(), move |ws| Ok(ws.stat(&path).ok()))
        .await?
        .filter(|info| info.kind == FileKind::File)
        .map_or(0, |info| info.size);
    let limits = crate::limits::of_user(&state, user.0.id).await?;
    let adding = u64::try_from(body.len()).unwrap_or(u64::MAX);
    let sandboxes = state.runner.sandbox_provider();
    crate::disk::check(&state.store, sandboxes, &limits, user.0.id, chat_id, adding, replacing)
        .await?;
    Ok(Json(on_files(workspace, move |ws| ws.write(&query.path, &body)).await?.into()))
}

/// Delete a file, a symlink (not its target) or a directory with everything in it, however
/// deep it is nested.
#[utoipa::path(delete, path = "/api/v1/chats/{chat_id}/files", tag = "files",
    params(("chat_id" = Uuid, Path), PathQuery),
    responses((status = 204),
              (status = 400, description = "path_outside_workspace, invalid_path, name_too_long, not_a_directory"),
              (status = 403, description = "permission_denied"),
              (status = 404, description = "chat_not_found, file_not_found"),
              (status = 409, description = "file_busy"),
              (status = 503, description = "sandbox_node_unavailable: the worker that holds the chat's sandbox is gone or not answering")),
    security(("bearer" = [])))]
async fn delete_file(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiQuery(query): ApiQuery<PathQuery>,
) -> Result<StatusCode, ApiError> {
    let workspace = workspace(&state, &user, chat_id).await?;
    on_files(workspace, move |ws| ws.remove(&query.path)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Create a directory and any missing parents.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/files/directory", tag = "files",
    params(("chat_id" = Uuid, Path), PathQuery),
    responses((status = 201, body = FileEntry),
              (status = 400, description = "path_outside_workspace, invalid_path, name_too_long, not_a_directory"),
              (status = 403, description = "permission_denied"),
              (status = 404, description = "chat_not_found"),
              (status = 422, description = "too_many_links"),
              (status = 507, description = "disk_full"),
              (status = 503, description = "sandbox_node_unavailable: the worker that holds the chat's sandbox is gone or not answering")),
    security(("bearer" = [])))]
async fn make_directory(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiQuery(query): ApiQuery<PathQuery>,
) -> Result<(StatusCode, Json<FileEntry>), ApiError> {
    let workspace = workspace(&state, &user, chat_id).await?;
    let info = on_files(workspace, move |ws| ws.mkdir(&query.path)).await?;
    Ok((StatusCode::CREATED, Json(info.into())))
}

/// Move or rename a file or directory.
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/files/move", tag = "files",
    params(("chat_id" = Uuid, Path)), request_body = MoveRequest,
    responses((status = 200, body = FileEntry),
              (status = 400, description = "path_outside_workspace, invalid_path, name_too_long, invalid_move (a directory into itself), is_a_directory, not_a_directory"),
              (status = 403, description = "permission_denied"),
              (status = 404, description = "chat_not_found, file_not_found"),
              (status = 409, description = "already_exists (a non-empty directory at `to`), file_busy"),
              (status = 422, description = "too_many_links"),
              (status = 507, description = "disk_full"),
              (status = 503, description = "sandbox_node_unavailable: the worker that holds the chat's sandbox is gone or not answering")),
    security(("bearer" = [])))]
async fn move_file(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiJson(request): ApiJson<MoveRequest>,
) -> Result<Json<FileEntry>, ApiError> {
    let workspace = workspace(&state, &user, chat_id).await?;
    Ok(Json(on_files(workspace, move |ws| ws.rename(&request.from, &request.to)).await?.into()))
}

/// The workspace (or a directory of it) as a zip archive, streamed. Symlinks are stored as
/// links; FIFOs, sockets and devices are left out. A tree nested more than 1,024 directory
/// levels deep, with more than 1,000,000 entries or with a path too long for a zip is
/// refused before anything is sent (a survey of the names comes first).
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/files/zip", tag = "files",
    params(("chat_id" = Uuid, Path), PathQuery),
    responses((status = 200, content_type = "application/zip", body = Vec<u8>),
              (status = 400, description = "path_outside_workspace, invalid_path, name_too_long, not_a_directory"),
              (status = 403, description = "permission_denied"),
              (status = 404, description = "chat_not_found, file_not_found"),
              (status = 409, description = "workspace_changed"),
              (status = 422, description = "workspace_too_deep, too_many_entries, path_too_long"),
              (status = 503, description = "sandbox_node_unavailable: the worker that holds the chat's sandbox is gone or not answering")),
    security(("bearer" = [])))]
async fn download_zip(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
    ApiQuery(query): ApiQuery<PathQuery>,
) -> Result<Response, ApiError> {
    let workspace = workspace(&state, &user, chat_id).await?;
    // Resolve the directory first so that a bad path is a clean 4xx, not a broken download.
    let relative = workspace.relative(&query.path)?;
    let info = on_files(workspace.clone(), {
        let path = query.path.clone();
        move |ws| ws.stat(&path)
    })
    .await?;
    if info.kind != FileKind::Dir {
        return Err(ApiError::bad_request(
            "not_a_directory",
            format!("{} is not a directory", query.path),
        ));
    }
    // What would fail half-way through the download fails here, as a clean 4xx.
    let survey = on_files(workspace.clone(), {
        let path = query.path.clone();
        move |ws| ws.survey(&path)
    })
    .await?;
    if survey.longest_path > MAX_ZIP_NAME {
        return Err(ApiError::unprocessable(
            "path_too_long",
            format!(
                "a path below {} has {} bytes; a zip archive holds at most {MAX_ZIP_NAME}",
                query.path, survey.longest_path
            ),
        ));
    }
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let path = query.path.clone();
    tokio::task::spawn_blocking(move || {
        let writer = ChannelWriter { sender: sender.clone() };
        if let Err(err) = write_zip(&workspace, &path, writer) {
            tracing::warn!(%err, "the zip download failed");
            let _ = sender.blocking_send(Err(std::io::Error::other(err.to_string())));
        }
    });
    let stream = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let name = if query.path.is_empty() {
        "workspace".to_owned()
    } else {
        relative.to_string_lossy().replace('/', "_")
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.zip\"")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// A `Write` that hands its bytes to the response body.
struct ChannelWriter {
    sender: tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.sender.blocking_send(Ok(Bytes::copy_from_slice(data))).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Write everything below `path` into a streaming zip, walking the workspace through
/// descriptors so that nothing outside it can be reached.
fn write_zip(
    workspace: &Workspace,
    path: &str,
    writer: ChannelWriter,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use zip::write::SimpleFileOptions;
    let mut zip = zip::ZipWriter::new_stream(writer);
    let mut buffer = vec![0u8; 256 * 1024];
    let mut failure: Option<Box<dyn std::error::Error + Send + Sync>> = None;
    workspace
        .walk(path, |entry| {
            let name = entry.path.to_string_lossy().into_owned();
            let options = SimpleFileOptions::default().unix_permissions(entry.mode);
            let written: Result<(), Box<dyn std::error::Error + Send + Sync>> = (|| {
                match entry.kind {
                    FileKind::Dir => zip.add_directory(format!("{name}/"), options)?,
                    FileKind::Symlink => {
                        zip.add_symlink(name, entry.link_target.unwrap_or_default(), options)?
                    }
                    FileKind::File => {
                        zip.start_file(name, options.large_file(entry.size > u64::from(u32::MAX)))?;
                        if let Some(file) = entry.file {
                            // No more than its size when opened: a file the agent keeps
                            // growing must not keep the download going.
                            let mut file = std::io::Read::take(file, entry.size);
                            loop {
                                let n = std::io::Read::read(&mut file, &mut buffer)?;
                                if n == 0 {
                                    break;
                                }
                                zip.write_all(&buffer[..n])?;
                            }
                        }
                    }
                    FileKind::Other => {}
                }
                Ok(())
            })();
            written.map_err(|err| {
                failure = Some(err);
                SandboxError::Io(std::io::Error::other("zip writing failed"))
            })
        })
        .map_err(|err| failure.take().unwrap_or_else(|| Box::new(err)))?;
    zip.finish()?;
    Ok(())
}
