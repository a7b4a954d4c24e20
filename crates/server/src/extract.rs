//! Extractors whose rejections speak the API's error format.

use std::str::FromStr;

use axum::extract::path::ErrorKind;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;

/// A JSON object as a body. Malformed JSON is 400, a body of the wrong shape (missing or
/// unknown fields, wrong types, any JSON value but an object) 422, a missing JSON content
/// type 415, a too large body 413.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Expected a request with `Content-Type: application/json`.",
            ));
        }
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            let code = match rejection.status() {
                StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
                _ => "invalid_json",
            };
            ApiError::new(rejection.status(), code, rejection.body_text())
        })?;
        // serde reads a struct from an array of its fields too (`["x"]` would fill the first
        // one), and every request body of the API is an object.
        let first = body.iter().find(|byte| !matches!(byte, b' ' | b'\t' | b'\n' | b'\r'));
        if first != Some(&b'{') {
            return Err(match serde_json::from_slice::<serde::de::IgnoredAny>(&body) {
                Ok(_) => {
                    ApiError::unprocessable("invalid_request", "The body must be a JSON object.")
                }
                Err(err) => {
                    ApiError::bad_request("invalid_json", format!("The body is not JSON: {err}"))
                }
            });
        }
        match axum::Json::<T>::from_bytes(&body) {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_error(&rejection)),
        }
    }
}

/// [`ApiJson`] for a body that may be left out: no body and no content type is `None`.
pub struct OptionalJson<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if req.headers().contains_key(header::CONTENT_TYPE) {
            return ApiJson::from_request(req, state).await.map(|ApiJson(value)| Self(Some(value)));
        }
        // No content type: fine if there is no body either, else the usual 415.
        match Bytes::from_request(req, state).await {
            Ok(body) if body.is_empty() => Ok(Self(None)),
            _ => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Expected a request with `Content-Type: application/json`, or no body.",
            )),
        }
    }
}

/// `application/json`, or another JSON type such as `application/merge-patch+json`, with
/// any parameters (what axum's `Json` accepts).
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence
        .strip_prefix("application/")
        .is_some_and(|subtype| subtype == "json" || subtype.ends_with("+json"))
}

fn json_error(rejection: &JsonRejection) -> ApiError {
    let status = rejection.status();
    let code = match status {
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_request",
        _ => "invalid_json",
    };
    ApiError::new(status, code, rejection.body_text())
}

/// A query string. One that does not fit (a wrong type, a value out of range) is 400
/// `invalid_query`, in the API's error format.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::bad_request("invalid_query", rejection.body_text())),
        }
    }
}

/// The `{chat_id}` of a path. An id that is not a UUID names no chat: 404, like any other
/// unknown chat.
pub struct ChatId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for ChatId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<Uuid>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(Self(id)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::chat_not_found()),
            Err(other) => Err(ApiError::internal(other.body_text())),
        }
    }
}

/// Something of a chat that a path names by an id after the chat's
/// (`/api/v1/chats/{chat_id}/queue/{queued_id}`), and the 404 for an id that names nothing.
pub trait ChatItem {
    type Id: FromStr;
    fn not_found() -> ApiError;
}

/// The `{chat_id}` of a path and the id of a [`ChatItem`] after it. Ids that do not parse
/// (not a UUID, or percent-encoded bytes that are not UTF-8) name nothing: 404
/// `chat_not_found` for the chat's, 404 with the item's code for the other.
pub struct InChat<I: ChatItem>(pub Uuid, pub I::Id);

impl<S: Send + Sync, I: ChatItem> FromRequestParts<S> for InChat<I> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let (chat_id, item_id) =
            match Path::<(String, String)>::from_request_parts(parts, state).await {
                Ok(Path(ids)) => ids,
                // axum names the first segment that is not UTF-8.
                Err(PathRejection::FailedToDeserializePathParams(err)) => {
                    return Err(match err.kind() {
                        ErrorKind::InvalidUtf8InPathParam { key } if key == "chat_id" => {
                            ApiError::chat_not_found()
                        }
                        ErrorKind::InvalidUtf8InPathParam { .. } => I::not_found(),
                        _ => ApiError::internal(err.body_text()),
                    });
                }
                Err(other) => return Err(ApiError::internal(other.body_text())),
            };
        let chat_id = Uuid::parse_str(&chat_id).map_err(|_| ApiError::chat_not_found())?;
        let item_id = item_id.parse().map_err(|_| I::not_found())?;
        Ok(Self(chat_id, item_id))
    }
}

/// The one path parameter of a route that names an item without a chat
/// (`/api/v1/secrets/{name}`). A segment that is not UTF-8 names nothing: 404 with the
/// item's code.
pub struct Named<I: ChatItem>(pub I::Id);

impl<S: Send + Sync, I: ChatItem> FromRequestParts<S> for Named<I> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let id = match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => id,
            Err(PathRejection::FailedToDeserializePathParams(err)) => {
                return Err(match err.kind() {
                    ErrorKind::InvalidUtf8InPathParam { .. } => I::not_found(),
                    _ => ApiError::internal(err.body_text()),
                });
            }
            Err(other) => return Err(ApiError::internal(other.body_text())),
        };
        Ok(Self(id.parse().map_err(|_| I::not_found())?))
    }
}

/// The `{task_id}` of a path. An id that is not a UUID names no task: 404, like any other
/// unknown task.
pub struct TaskId(pub Uuid);

impl<S: Send + Sync> FromRequestParts<S> for TaskId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<Uuid>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(Self(id)),
            Err(PathRejection::FailedToDeserializePathParams(_)) => Err(ApiError::task_not_found()),
            Err(other) => Err(ApiError::internal(other.body_text())),
        }
    }
}
