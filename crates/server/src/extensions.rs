//! Agent extensions over HTTP: the signed-in user's slash commands, skills, custom agents
//! and MCP servers (`/api/v1/commands`, `/api/v1/skills`, `/api/v1/agents`,
//! `/api/v1/mcp-servers`), and a chat's own overrides or additions under
//! `/api/v1/chats/{chat_id}/...`. A chat's list is the effective set (the chat's definition
//! wins over the user's of the same name), each marked with its `source`. Definitions are
//! installed into the chat's sandbox when its next turn starts a CLI (crates/runs,
//! `extensions`). An MCP server's secrets are only `{"secret": NAME}` references here.

use agentbox_protocol::event::EventPayload;
use agentbox_protocol::extension::{
    AgentRequest, CommandRequest, DefinitionStatus, ExtensionDefinition, ExtensionError,
    ExtensionInfo, ExtensionKind, ExtensionSource, ExtensionsStatus, MAX_PER_KIND,
    McpServerRequest, McpServerStatus, SkillRequest, request_name,
};
use agentbox_store::ExtensionRecord;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{ApiJson, ChatId, ChatItem, InChat, Named};
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(commands::routes())
        .merge(skills::routes())
        .merge(agents::routes())
        .merge(mcp_servers::routes())
        .routes(routes!(extensions_status))
}

/// What the chat's CLI reported it loaded when it last started (its `system/init`): slash
/// commands, skills, agents and MCP servers with their status, and for each of the chat's
/// definitions whether it is among them.
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/extensions/status", tag = "extensions",
    params(("chat_id" = Uuid, Path)),
    responses((status = 200, body = ExtensionsStatus), (status = 404, description = "chat_not_found")),
    security(("bearer" = [])))]
async fn extensions_status(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<ExtensionsStatus>, ApiError> {
    let user_id = user.0.id;
    owned_chat(&state, user_id, chat_id).await?;
    let init = state.store.last_system_event(chat_id, "init").await?;
    let (reported_at, details) = match &init {
        Some(event) => match &event.payload {
            EventPayload::System(system) => (Some(event.created_at), system.details.clone()),
            _ => (None, serde_json::Map::new()),
        },
        None => (None, serde_json::Map::new()),
    };
    let strings = |key: &str| -> Vec<String> {
        details
            .get(key)
            .and_then(Value::as_array)
            .map(|list| list.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let mcp_servers: Vec<McpServerStatus> = details
        .get("mcp_servers")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|server| {
                    Some(McpServerStatus {
                        name: server.get("name")?.as_str()?.to_owned(),
                        status: server.get("status")?.as_str().unwrap_or("unknown").to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let (slash_commands, skills, agents) =
        (strings("slash_commands"), strings("skills"), strings("agents"));
    let mut definitions = Vec::new();
    for kind in ExtensionKind::ALL {
        for row in effective(&state, user_id, Some(chat_id), kind).await? {
            let loaded = match kind {
                ExtensionKind::Command => slash_commands.contains(&row.name),
                ExtensionKind::Skill => skills.contains(&row.name),
                ExtensionKind::Agent => agents.contains(&row.name),
                ExtensionKind::McpServer => mcp_servers
                    .iter()
                    .any(|server| server.name == row.name && server.status == "connected"),
            };
            definitions.push(DefinitionStatus {
                kind,
                source: if row.chat_id.is_some() {
                    ExtensionSource::Chat
                } else {
                    ExtensionSource::User
                },
                loaded,
                changed_since_report: reported_at.is_none_or(|at| row.updated_at > at),
                name: row.name,
            });
        }
    }
    Ok(Json(ExtensionsStatus {
        reported_at,
        slash_commands,
        skills,
        agents,
        mcp_servers,
        definitions,
    }))
}

/// A definition named in a path.
pub struct ExtensionName;

impl ChatItem for ExtensionName {
    type Id = String;

    fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "extension_not_found", "No definition of that name.")
    }
}

/// A request body of one kind of definition.
trait DefinitionRequest {
    const KIND: ExtensionKind;
    fn name(&self) -> Option<&str>;
    fn into_definition(self) -> Result<ExtensionDefinition, ExtensionError>;
}

macro_rules! definition_request {
    ($request:ty, $kind:expr) => {
        impl DefinitionRequest for $request {
            const KIND: ExtensionKind = $kind;
            fn name(&self) -> Option<&str> {
                self.name.as_deref()
            }
            fn into_definition(self) -> Result<ExtensionDefinition, ExtensionError> {
                <$request>::into_definition(self)
            }
        }
    };
}

definition_request!(CommandRequest, ExtensionKind::Command);
definition_request!(SkillRequest, ExtensionKind::Skill);
definition_request!(AgentRequest, ExtensionKind::Agent);
definition_request!(McpServerRequest, ExtensionKind::McpServer);

/// The ten routes of one kind: the user's own list, create, read, replace and delete, and
/// the same for a chat. `$module` holds them so that each kind's handlers can share names;
/// their operation ids say the kind.
macro_rules! kind_routes {
    ($module:ident, $request:ty, $tag:tt, $list:tt, $item:tt, $chat_list:tt, $chat_item:tt,
     $ops:tt) => {
        mod $module {
            use super::*;

            const KIND: ExtensionKind = <$request as DefinitionRequest>::KIND;

            pub fn routes() -> OpenApiRouter<AppState> {
                OpenApiRouter::new()
                    .routes(routes!(list_own, create_own))
                    .routes(routes!(get_own, put_own, delete_own))
                    .routes(routes!(list_chat, create_chat))
                    .routes(routes!(get_chat, put_chat, delete_chat))
            }

            /// The user's own definitions of this kind, by name.
            #[utoipa::path(get, path = $list, tag = $tag, operation_id = concat!("list_", $ops),
                responses((status = 200, body = Vec<ExtensionInfo>)), security(("bearer" = [])))]
            async fn list_own(
                State(state): State<AppState>,
                user: CurrentUser,
            ) -> Result<Json<Vec<ExtensionInfo>>, ApiError> {
                super::list(&state, user.0.id, None, KIND).await
            }

            /// Create one of the user's definitions; 409 if one of that name exists.
            #[utoipa::path(post, path = $list, tag = $tag, operation_id = concat!("create_", $ops),
                request_body = $request,
                responses((status = 201, body = ExtensionInfo),
                          (status = 409, description = "extension_exists"),
                          (status = 422, description = "invalid_extension_name, invalid_extension, \
                            extension_too_large, too_many_extensions, unknown_secret")),
                security(("bearer" = [])))]
            async fn create_own(
                State(state): State<AppState>,
                user: CurrentUser,
                ApiJson(request): ApiJson<$request>,
            ) -> Result<(StatusCode, Json<ExtensionInfo>), ApiError> {
                super::put(&state, user.0.id, None, None, request, true).await
            }

            /// One of the user's definitions.
            #[utoipa::path(get, path = $item, tag = $tag, operation_id = concat!("get_", $ops),
                params(("name" = String, Path)),
                responses((status = 200, body = ExtensionInfo),
                          (status = 404, description = "extension_not_found")),
                security(("bearer" = [])))]
            async fn get_own(
                State(state): State<AppState>,
                user: CurrentUser,
                Named(name): Named<ExtensionName>,
            ) -> Result<Json<ExtensionInfo>, ApiError> {
                super::get(&state, user.0.id, None, KIND, &name).await
            }

            /// Create or replace one of the user's definitions (200 replaced, 201 created).
            #[utoipa::path(put, path = $item, tag = $tag, operation_id = concat!("put_", $ops),
                params(("name" = String, Path)), request_body = $request,
                responses((status = 200, body = ExtensionInfo), (status = 201, body = ExtensionInfo),
                          (status = 422, description = "invalid_extension_name, invalid_extension, \
                            extension_too_large, too_many_extensions, unknown_secret")),
                security(("bearer" = [])))]
            async fn put_own(
                State(state): State<AppState>,
                user: CurrentUser,
                Named(name): Named<ExtensionName>,
                ApiJson(request): ApiJson<$request>,
            ) -> Result<(StatusCode, Json<ExtensionInfo>), ApiError> {
                super::put(&state, user.0.id, None, Some(&name), request, false).await
            }

            /// Delete one of the user's definitions (it leaves the sandboxes at their next
            /// turn).
            #[utoipa::path(delete, path = $item, tag = $tag, operation_id = concat!("delete_", $ops),
                params(("name" = String, Path)),
                responses((status = 204), (status = 404, description = "extension_not_found")),
                security(("bearer" = [])))]
            async fn delete_own(
                State(state): State<AppState>,
                user: CurrentUser,
                Named(name): Named<ExtensionName>,
            ) -> Result<StatusCode, ApiError> {
                super::delete(&state, user.0.id, None, KIND, &name).await
            }

            /// The chat's effective definitions of this kind: the user's with the chat's
            /// own over them, each with its `source`.
            #[utoipa::path(get, path = $chat_list, tag = $tag,
                operation_id = concat!("list_chat_", $ops),
                params(("chat_id" = Uuid, Path)),
                responses((status = 200, body = Vec<ExtensionInfo>),
                          (status = 404, description = "chat_not_found")),
                security(("bearer" = [])))]
            async fn list_chat(
                State(state): State<AppState>,
                user: CurrentUser,
                ChatId(chat_id): ChatId,
            ) -> Result<Json<Vec<ExtensionInfo>>, ApiError> {
                super::owned_chat(&state, user.0.id, chat_id).await?;
                super::list(&state, user.0.id, Some(chat_id), KIND).await
            }

            /// Create a definition of the chat's own; 409 if the chat has one of that name.
            #[utoipa::path(post, path = $chat_list, tag = $tag,
                operation_id = concat!("create_chat_", $ops),
                params(("chat_id" = Uuid, Path)), request_body = $request,
                responses((status = 201, body = ExtensionInfo),
                          (status = 404, description = "chat_not_found"),
                          (status = 409, description = "extension_exists"),
                          (status = 422, description = "invalid_extension_name, invalid_extension, \
                            extension_too_large, too_many_extensions, unknown_secret")),
                security(("bearer" = [])))]
            async fn create_chat(
                State(state): State<AppState>,
                user: CurrentUser,
                ChatId(chat_id): ChatId,
                ApiJson(request): ApiJson<$request>,
            ) -> Result<(StatusCode, Json<ExtensionInfo>), ApiError> {
                super::owned_chat(&state, user.0.id, chat_id).await?;
                super::put(&state, user.0.id, Some(chat_id), None, request, true).await
            }

            /// The chat's effective definition of that name (its own, else the user's).
            #[utoipa::path(get, path = $chat_item, tag = $tag,
                operation_id = concat!("get_chat_", $ops),
                params(("chat_id" = Uuid, Path), ("name" = String, Path)),
                responses((status = 200, body = ExtensionInfo),
                          (status = 404, description = "chat_not_found, extension_not_found")),
                security(("bearer" = [])))]
            async fn get_chat(
                State(state): State<AppState>,
                user: CurrentUser,
                InChat(chat_id, name): InChat<ExtensionName>,
            ) -> Result<Json<ExtensionInfo>, ApiError> {
                super::owned_chat(&state, user.0.id, chat_id).await?;
                super::get(&state, user.0.id, Some(chat_id), KIND, &name).await
            }

            /// Create or replace the chat's own definition of that name.
            #[utoipa::path(put, path = $chat_item, tag = $tag,
                operation_id = concat!("put_chat_", $ops),
                params(("chat_id" = Uuid, Path), ("name" = String, Path)), request_body = $request,
                responses((status = 200, body = ExtensionInfo), (status = 201, body = ExtensionInfo),
                          (status = 404, description = "chat_not_found"),
                          (status = 422, description = "invalid_extension_name, invalid_extension, \
                            extension_too_large, too_many_extensions, unknown_secret")),
                security(("bearer" = [])))]
            async fn put_chat(
                State(state): State<AppState>,
                user: CurrentUser,
                InChat(chat_id, name): InChat<ExtensionName>,
                ApiJson(request): ApiJson<$request>,
            ) -> Result<(StatusCode, Json<ExtensionInfo>), ApiError> {
                super::owned_chat(&state, user.0.id, chat_id).await?;
                super::put(&state, user.0.id, Some(chat_id), Some(&name), request, false).await
            }

            /// Delete the chat's own definition (the user's of that name applies again).
            #[utoipa::path(delete, path = $chat_item, tag = $tag,
                operation_id = concat!("delete_chat_", $ops),
                params(("chat_id" = Uuid, Path), ("name" = String, Path)),
                responses((status = 204),
                          (status = 404, description = "chat_not_found, extension_not_found")),
                security(("bearer" = [])))]
            async fn delete_chat(
                State(state): State<AppState>,
                user: CurrentUser,
                InChat(chat_id, name): InChat<ExtensionName>,
            ) -> Result<StatusCode, ApiError> {
                super::owned_chat(&state, user.0.id, chat_id).await?;
                super::delete(&state, user.0.id, Some(chat_id), KIND, &name).await
            }
        }
    };
}

kind_routes!(
    commands,
    CommandRequest,
    "extensions",
    "/api/v1/commands",
    "/api/v1/commands/{name}",
    "/api/v1/chats/{chat_id}/commands",
    "/api/v1/chats/{chat_id}/commands/{name}",
    "command"
);
kind_routes!(
    skills,
    SkillRequest,
    "extensions",
    "/api/v1/skills",
    "/api/v1/skills/{name}",
    "/api/v1/chats/{chat_id}/skills",
    "/api/v1/chats/{chat_id}/skills/{name}",
    "skill"
);
kind_routes!(
    agents,
    AgentRequest,
    "extensions",
    "/api/v1/agents",
    "/api/v1/agents/{name}",
    "/api/v1/chats/{chat_id}/agents",
    "/api/v1/chats/{chat_id}/agents/{name}",
    "agent"
);
kind_routes!(
    mcp_servers,
    McpServerRequest,
    "extensions",
    "/api/v1/mcp-servers",
    "/api/v1/mcp-servers/{name}",
    "/api/v1/chats/{chat_id}/mcp-servers",
    "/api/v1/chats/{chat_id}/mcp-servers/{name}",
    "mcp_server"
);

async fn owned_chat(state: &AppState, user_id: Uuid, chat_id: Uuid) -> Result<(), ApiError> {
    state.store.chat(user_id, chat_id).await?.ok_or_else(ApiError::chat_not_found)?;
    Ok(())
}

fn info(row: &ExtensionRecord, kind: ExtensionKind) -> Result<ExtensionInfo, ApiError> {
    let definition: ExtensionDefinition = serde_json::from_str(&row.body)
        .map_err(|err| ApiError::internal(format!("a stored definition does not parse: {err}")))?;
    Ok(ExtensionInfo {
        kind,
        name: row.name.clone(),
        source: if row.chat_id.is_some() { ExtensionSource::Chat } else { ExtensionSource::User },
        definition,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// The effective rows of one kind: the user's own, and with a chat, the chat's over them.
async fn effective(
    state: &AppState,
    user_id: Uuid,
    chat_id: Option<Uuid>,
    kind: ExtensionKind,
) -> Result<Vec<ExtensionRecord>, ApiError> {
    let mut rows = state.store.extensions(user_id, None, Some(kind.as_str())).await?;
    if let Some(chat_id) = chat_id {
        let own = state.store.extensions(user_id, Some(chat_id), Some(kind.as_str())).await?;
        rows.retain(|row| !own.iter().any(|chat_row| chat_row.name == row.name));
        rows.extend(own);
        rows.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(rows)
}

async fn list(
    state: &AppState,
    user_id: Uuid,
    chat_id: Option<Uuid>,
    kind: ExtensionKind,
) -> Result<Json<Vec<ExtensionInfo>>, ApiError> {
    let rows = effective(state, user_id, chat_id, kind).await?;
    Ok(Json(rows.iter().map(|row| info(row, kind)).collect::<Result<_, _>>()?))
}

async fn get(
    state: &AppState,
    user_id: Uuid,
    chat_id: Option<Uuid>,
    kind: ExtensionKind,
    name: &str,
) -> Result<Json<ExtensionInfo>, ApiError> {
    let rows = effective(state, user_id, chat_id, kind).await?;
    let row = rows.iter().find(|row| row.name == name).ok_or_else(ExtensionName::not_found)?;
    Ok(Json(info(row, kind)?))
}

async fn put<R: DefinitionRequest>(
    state: &AppState,
    user_id: Uuid,
    chat_id: Option<Uuid>,
    path_name: Option<&str>,
    request: R,
    create_only: bool,
) -> Result<(StatusCode, Json<ExtensionInfo>), ApiError> {
    let kind = R::KIND;
    // Check everything before changing anything.
    let name = request_name(path_name, request.name())?;
    let definition = request.into_definition()?;
    check_secrets(state, user_id, chat_id, &definition).await?;
    let scope = state.store.extensions(user_id, chat_id, Some(kind.as_str())).await?;
    let exists = scope.iter().any(|row| row.name == name);
    if exists && create_only {
        return Err(ApiError::conflict(
            "extension_exists",
            format!("A {} named {name:?} exists; PUT it to replace it.", kind.label()),
        ));
    }
    if !exists && scope.len() >= MAX_PER_KIND {
        return Err(ApiError::unprocessable(
            "too_many_extensions",
            format!("At most {MAX_PER_KIND} of each kind can be kept here; delete one first."),
        ));
    }
    let body = serde_json::to_string(&definition).map_err(ApiError::internal)?;
    let created = state.store.put_extension(user_id, chat_id, kind.as_str(), &name, &body).await?;
    let row = state
        .store
        .extensions(user_id, chat_id, Some(kind.as_str()))
        .await?
        .into_iter()
        .find(|row| row.name == name)
        .ok_or_else(ExtensionName::not_found)?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(info(&row, kind)?)))
}

/// Every `{"secret": NAME}` must name one of the user's secrets (or, for a chat's
/// definition, one of the chat's overrides).
async fn check_secrets(
    state: &AppState,
    user_id: Uuid,
    chat_id: Option<Uuid>,
    definition: &ExtensionDefinition,
) -> Result<(), ApiError> {
    let wanted = definition.secret_names();
    if wanted.is_empty() {
        return Ok(());
    }
    let mut known = state.store.secrets(user_id, None).await?;
    if let Some(chat_id) = chat_id {
        known.extend(state.store.secrets(user_id, Some(chat_id)).await?);
    }
    for name in wanted {
        if !known.iter().any(|secret| secret.name == name) {
            return Err(ApiError::unprocessable(
                "unknown_secret",
                format!("There is no secret named {name:?}: add it in Settings, Secrets first."),
            ));
        }
    }
    Ok(())
}

async fn delete(
    state: &AppState,
    user_id: Uuid,
    chat_id: Option<Uuid>,
    kind: ExtensionKind,
    name: &str,
) -> Result<StatusCode, ApiError> {
    if !state.store.delete_extension(user_id, chat_id, kind.as_str(), name).await? {
        return Err(ExtensionName::not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}
