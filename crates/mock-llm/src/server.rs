//! The HTTP side: the axum router that serves the Messages API from scripts, records every
//! request, and exposes the record under `/_mock/requests`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::conversation::{locate_prompt, step_without_prompt};
use crate::markers::{CompileError, compile};
use crate::record::{RecordedRequest, RequestLog};
use crate::reply::{Frame, Reply, estimate_tokens};
use crate::script::{Script, Step, StepError};

/// The header every response carries, so nobody mistakes the mock for the real API.
pub const LABEL_HEADER: &str = "x-mock-llm";
const LABEL_VALUE: &str = "scripted";

/// The largest request body accepted. A long CLI session resends the whole conversation each
/// time, so this is far above the 2 MB axum allows by default.
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// How long a scripted disconnect waits after the partial reply before breaking the
/// connection, so that the partial reply reaches the client first.
const DISCONNECT_PAUSE: Duration = Duration::from_millis(50);

/// The text sent when a conversation asks for more steps than its script has.
pub const FALLBACK_TEXT: &str =
    "Done. (scripted reply) The script for this prompt has no more steps.";

/// The reply to prompts without markers when neither the options nor a scenario file give one.
pub fn built_in_default() -> Script {
    Script::text(
        "This is a scripted reply from agentbox's mock model, not a real Claude model. \
         Put markers in a prompt to script what it does, for example [[think]], \
         [[write:notes.txt:hello]], [[bash:ls -la]], [[steps:3]], [[ask]], [[slow:200]] \
         or [[error:500]].",
    )
}

/// What the handlers share.
struct Shared {
    default_script: Script,
    scripts: BTreeMap<String, Script>,
    log: RequestLog,
    next_message: AtomicU64,
    next_tool: AtomicU64,
}

type AppState = Arc<Shared>;

/// A request as recorded, plus its raw body size for the token estimates.
#[derive(Clone)]
struct Incoming {
    record: RecordedRequest,
    body_len: usize,
}

/// Builds the router serving the given scripts, and the log it records into.
pub fn build(default_script: Script, scripts: BTreeMap<String, Script>) -> (Router, RequestLog) {
    let log = RequestLog::default();
    let state: AppState = Arc::new(Shared {
        default_script,
        scripts,
        log: log.clone(),
        next_message: AtomicU64::new(1),
        next_tool: AtomicU64::new(1),
    });
    let router = Router::new()
        .route("/", get(index))
        // The CLI checks that it can reach the API with `HEAD /api/hello` unless
        // `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC` is set; a plain 200 tells it all is well.
        .route("/api/hello", get(hello))
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/_mock/requests", get(list_requests).delete(clear_requests))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), record_and_label))
        .with_state(state);
    (router, log)
}

/// Records the request (except the mock's own `/_mock` endpoints, which would otherwise
/// fill the log they report on) before any handler runs, and labels the response.
async fn record_and_label(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    let bytes = match to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(error) => {
            let response = error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                &format!("mock-llm could not read the request body: {error}"),
            );
            return label(response);
        }
    };
    if !parts.uri.path().starts_with("/_mock/") {
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| {
                (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
            })
            .collect();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let record = state.log.record(parts.method.to_string(), path, headers, body);
        parts.extensions.insert(Incoming { record, body_len: bytes.len() });
    }
    label(next.run(Request::from_parts(parts, Body::from(bytes))).await)
}

fn label(mut response: Response) -> Response {
    response.headers_mut().insert(LABEL_HEADER, HeaderValue::from_static(LABEL_VALUE));
    response
}

/// An error in the Anthropic API's shape: `{"type":"error","error":{"type":..,"message":..}}`.
fn error_response(status: StatusCode, error_type: &str, message: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": error_type, "message": message}});
    (status, Json(body)).into_response()
}

fn scripted_error(error: &StepError) -> Response {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_response(status, error.effective_type(), &error.effective_message())
}

async fn index() -> &'static str {
    "mock-llm: agentbox's scripted Anthropic Messages API server. It is not a real model.\n"
}

async fn hello() -> StatusCode {
    StatusCode::OK
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        "not_found_error",
        &format!("mock-llm has no route for {method} {}", uri.path()),
    )
}

async fn list_requests(State(state): State<AppState>) -> Json<Vec<RecordedRequest>> {
    Json(state.log.requests())
}

async fn clear_requests(State(state): State<AppState>) -> StatusCode {
    state.log.clear();
    StatusCode::NO_CONTENT
}

async fn count_tokens(incoming: Option<Extension<Incoming>>) -> Response {
    let body_len = incoming.map_or(0, |Extension(incoming)| incoming.body_len);
    Json(json!({"input_tokens": estimate_tokens(body_len)})).into_response()
}

/// Which script answers a request, and which of its steps.
fn choose_step(state: &Shared, messages: &[Value]) -> Result<(String, usize, Step), CompileError> {
    let (prompt, index) = match locate_prompt(messages) {
        Some(position) => (position.prompt, position.step),
        None => (String::new(), step_without_prompt(messages)),
    };
    let lookup = |name: &str| state.scripts.get(name).cloned();
    let script = compile(&prompt, lookup)?.unwrap_or_else(|| state.default_script.clone());
    let step = script.step(index).cloned().unwrap_or_else(|| Step::text(FALLBACK_TEXT));
    Ok((prompt, index, step))
}

async fn messages(
    State(state): State<AppState>,
    incoming: Option<Extension<Incoming>>,
) -> Response {
    let Some(Extension(incoming)) = incoming else {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "mock-llm: the request was not recorded",
        );
    };
    let body = &incoming.record.body;
    if !body.is_object() {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "mock-llm: the request body must be a JSON object",
        );
    }
    let messages = incoming.record.messages();
    if messages.is_empty() {
        return error_response(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "messages: at least one message is required",
        );
    }
    let (prompt, index, step) = match choose_step(&state, messages) {
        Ok(chosen) => chosen,
        Err(CompileError::UnknownScenario(name)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                &format!("mock-llm: the scenario file has no script named {name:?}"),
            );
        }
    };

    // Attempts are only counted for steps whose behaviour depends on them, so that ordinary
    // prompts leave no trace in the counters.
    let mut cut = false;
    if step.error.is_some() || step.disconnect {
        let attempt = state.log.next_attempt(&prompt, index);
        let failures = match &step.error {
            Some(error) => match error.times {
                None => return scripted_error(error),
                Some(times) if attempt < times => return scripted_error(error),
                Some(times) => times,
            },
            None => 0,
        };
        cut = step.disconnect && attempt == failures;
    }

    let model = body.get("model").and_then(Value::as_str).unwrap_or("mock-model").to_owned();
    let id = format!("msg_mock_{}", state.next_message.fetch_add(1, Ordering::Relaxed));
    let reply = Reply::from_step(&step, id, model, estimate_tokens(incoming.body_len), || {
        format!("toolu_mock_{}", state.next_tool.fetch_add(1, Ordering::Relaxed))
    });
    let delay = step.delay_ms.filter(|ms| *ms > 0).map(Duration::from_millis);
    let request_id = format!("req_mock_{}", incoming.record.seq);
    let streaming = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let mut response = if streaming {
        let frames = if cut { reply.truncated_frames() } else { reply.stream_frames() };
        stream_response(frames, delay, cut)
    } else {
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        json_response(&reply, cut)
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("request-id", value);
    }
    response
}

/// A streamed body that yields `chunks`, pausing `delay` between them, and breaks the
/// connection at the end instead of finishing when `cut` is set.
fn chunked_body(chunks: Vec<Bytes>, delay: Option<Duration>, cut: bool) -> Body {
    let mut items: Vec<Result<Bytes, std::io::Error>> = chunks.into_iter().map(Ok).collect();
    if cut {
        // An error from the body stream makes the server abort the connection without the
        // final chunk, which the client sees as a stream that broke off.
        items.push(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "scripted disconnect",
        )));
    }
    let stream = futures::stream::iter(items.into_iter().enumerate()).then(move |(i, item)| {
        async move {
            if item.is_err() {
                // The server writes nothing until the body stream waits, so without a pause
                // the error would discard the head and the partial reply, and the client would
                // see a refused request instead of a stream that broke off.
                tokio::time::sleep(DISCONNECT_PAUSE).await;
            } else if let (true, Some(delay)) = (i > 0, delay) {
                tokio::time::sleep(delay).await;
            }
            item
        }
    });
    Body::from_stream(stream)
}

fn stream_response(frames: Vec<Frame>, delay: Option<Duration>, cut: bool) -> Response {
    let chunks = frames.iter().map(Frame::encode).collect();
    let mut response = Response::new(chunked_body(chunks, delay, cut));
    let headers = response.headers_mut();
    headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn json_response(reply: &Reply, cut: bool) -> Response {
    let encoded = Bytes::from(reply.message_json().to_string());
    let body = if cut {
        let half = encoded.slice(..encoded.len() / 2);
        chunked_body(vec![half], None, true)
    } else {
        Body::from(encoded)
    };
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
