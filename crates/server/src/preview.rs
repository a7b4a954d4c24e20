//! Port previews: the TCP ports listening in a chat's sandbox, and a proxy that carries HTTP
//! and WebSocket traffic to one of them through the sandbox's init (the sandbox has no
//! network of its own, so nothing else reaches it).
//!
//! A preview is served at an origin of its own when the operator configured
//! `--preview-domain` (`p-{port}-{chat}.agentbox.example`): a previewed app then cannot read
//! agentbox's own storage or tokens. Without it, previews are served under
//! `/preview/{chat_id}/{port}/` on agentbox's origin, which isolates nothing; the start-up
//! log and every answer of the API (`origin_isolated: false`) say so.
//!
//! Access: `POST .../ports/{port}/open` (the owner's bearer token) hands out a URL with a
//! token signed for one minute; the proxy exchanges it (a redirect) for a cookie scoped to
//! the preview's origin or path, also signed and short-lived. Every proxied request checks
//! the cookie and that its user still owns the chat and is not disabled; everything else
//! gets the same 404 as a path that does not exist.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use agentbox_sandbox::{SandboxError, SandboxStatus};
use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use hkdf::Hkdf;
use hkdf::hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::auth::CurrentUser;
use crate::chats::owned_chat;
use crate::error::{ApiError, not_found};
use crate::extract::{ChatId, ChatItem, InChat};
use crate::state::AppState;

/// The HKDF label of the preview tokens' key: a key of its own, never the access tokens'.
const TOKEN_KEY_INFO: &[u8] = b"agentbox previews v1: token key";
/// How long the URL that `open` returns can be exchanged for a cookie.
const URL_TOKEN_TTL: Duration = Duration::from_secs(60);
/// How long the cookie lets the owner in before they open the preview again.
const COOKIE_TTL: Duration = Duration::from_secs(2 * 60 * 60);
const COOKIE_NAME: &str = "agentbox_preview";
/// The path under a preview where the proxy (not the app) exchanges a token.
const AUTH_PATH: &str = "/__agentbox_preview/auth";
const PATH_PREFIX: &str = "/preview/";

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_ports)).routes(routes!(open_port))
}

/// Where previews are served and the key their tokens are signed with.
pub struct Previews {
    key: [u8; 32],
    domain: Option<DomainPattern>,
    /// When each port of each chat was first seen listening, while it keeps listening. In
    /// memory: a restart (which restarts sandboxes too) forgets it.
    seen: Mutex<HashMap<Uuid, HashMap<u16, DateTime<Utc>>>>,
}

impl std::fmt::Debug for Previews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Previews").field("domain", &self.domain).finish_non_exhaustive()
    }
}

/// A `--preview-domain` pattern: an optional scheme (`https` when none is given), then a host
/// (and port) with `{port}` and `{chat}` in it once each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainPattern {
    scheme: String,
    host: String,
}

impl DomainPattern {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let (scheme, host) = match pattern.split_once("://") {
            Some((scheme, host)) => (scheme.to_ascii_lowercase(), host),
            None => ("https".to_owned(), pattern),
        };
        let host = host.trim_end_matches('/').to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "--preview-domain: the scheme must be http or https, not {scheme}"
            ));
        }
        if host.matches("{port}").count() != 1 || host.matches("{chat}").count() != 1 {
            return Err("--preview-domain must hold {port} and {chat} once each, like \
                        'p-{port}-{chat}.agentbox.example'"
                .to_owned());
        }
        let bare = host.replace("{port}", "1").replace("{chat}", "c");
        if bare.is_empty()
            || !bare.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
            || bare.contains('/')
        {
            return Err(format!("--preview-domain: {host:?} is not a host name pattern"));
        }
        Ok(Self { scheme, host })
    }

    fn origin(&self, chat: Uuid, port: u16) -> String {
        let host =
            self.host.replace("{port}", &port.to_string()).replace("{chat}", &chat.to_string());
        format!("{}://{host}", self.scheme)
    }

    /// The chat and port a `Host` header names, if it matches.
    fn matches(&self, host: &str) -> Option<(Uuid, u16)> {
        let mut host = host.to_ascii_lowercase();
        // A pattern without a port matches on any: the port is the listener's business (a
        // reverse proxy's 443, or the server's own port in front of nothing).
        if !self.host.contains(':')
            && let Some((name, port)) = host.rsplit_once(':')
            && port.bytes().all(|b| b.is_ascii_digit())
        {
            host = name.to_owned();
        }
        let mut rest = host.as_str();
        let mut pattern = self.host.as_str();
        let (mut chat, mut port) = (None, None);
        loop {
            let next = [pattern.find("{port}"), pattern.find("{chat}")].into_iter().flatten().min();
            let Some(at) = next else {
                return if rest == pattern { Some((chat?, port?)) } else { None };
            };
            let literal = &pattern[..at];
            rest = rest.strip_prefix(literal)?;
            if pattern[at..].starts_with("{port}") {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                if digits == 0 || digits > 5 || rest.starts_with('0') {
                    return None;
                }
                port = Some(rest[..digits].parse::<u16>().ok()?);
                rest = &rest[digits..];
            } else {
                let id = rest.get(..36)?;
                chat = Some(Uuid::parse_str(id).ok()?);
                rest = &rest[36..];
            }
            pattern = &pattern[at + 6..];
        }
    }
}

/// What a signed token lets in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// In the URL `open` returns, exchanged once for a cookie.
    Url,
    Cookie,
}

impl Kind {
    const fn tag(self) -> &'static str {
        match self {
            Self::Url => "u",
            Self::Cookie => "c",
        }
    }
}

/// A preview a request is for.
#[derive(Clone, Debug)]
struct Target {
    chat: Uuid,
    port: u16,
    /// Where the preview's root is on its origin: `/` or `/preview/{chat}/{port}/`.
    base: String,
    /// The request's path below `base` and its query, as the app sees it.
    path_and_query: String,
    /// The request named the root without its final `/` (`/preview/{chat}/{port}`): it is
    /// sent there, or the app's relative links would resolve one level too high.
    needs_slash: bool,
}

impl Previews {
    pub fn new(secret_key: &[u8], domain: Option<DomainPattern>) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, secret_key);
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit: never an error.
        let derived = hkdf.expand(TOKEN_KEY_INFO, &mut key);
        debug_assert!(derived.is_ok());
        Self { key, domain, seen: Mutex::default() }
    }

    /// Whether previews have origins of their own.
    pub fn origin_isolated(&self) -> bool {
        self.domain.is_some()
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length: never an error.
        match Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable_mac(),
        }
    }

    fn sign(&self, kind: Kind, chat: Uuid, port: u16, user: Uuid, expires: i64) -> String {
        let payload = format!("{}.{chat}.{port}.{user}.{expires}", kind.tag());
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        format!("{payload}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    /// The user a token of `kind` for this chat and port was signed for, if it is genuine and
    /// has not expired.
    fn verify(&self, token: &str, kind: Kind, chat: Uuid, port: u16) -> Option<Uuid> {
        let (payload, signature) = token.rsplit_once('.')?;
        let signature = B64.decode(signature).ok()?;
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature).ok()?;
        let parts: Vec<&str> = payload.split('.').collect();
        let [tag, token_chat, token_port, user, expires] = parts.as_slice() else { return None };
        let fresh = expires.parse::<i64>().ok()? > Utc::now().timestamp();
        let same = *tag == kind.tag()
            && Uuid::parse_str(token_chat).ok()? == chat
            && token_port.parse::<u16>().ok()? == port;
        (fresh && same).then(|| Uuid::parse_str(user).ok()).flatten()
    }

    /// The preview a request is for, if any: by its `Host` when previews have a domain, else
    /// by the `/preview/` prefix of its path.
    fn target(&self, request: &Request) -> Option<Target> {
        let path_and_query =
            request.uri().path_and_query().map_or("/", axum::http::uri::PathAndQuery::as_str);
        match &self.domain {
            Some(domain) => {
                let host =
                    request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).or_else(
                        || request.uri().authority().map(axum::http::uri::Authority::as_str),
                    )?;
                let (chat, port) = domain.matches(host)?;
                Some(Target {
                    chat,
                    port,
                    base: "/".into(),
                    path_and_query: path_and_query.into(),
                    needs_slash: false,
                })
            }
            None => {
                let rest = path_and_query.strip_prefix(PATH_PREFIX)?;
                let (chat, rest) = rest.split_once('/').unwrap_or((rest, ""));
                let end = rest.find(['/', '?']).unwrap_or(rest.len());
                let (port, rest) = rest.split_at(end);
                let chat = Uuid::parse_str(chat).ok()?;
                let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
                let path_and_query =
                    if rest.starts_with('/') { rest.to_owned() } else { format!("/{rest}") };
                Some(Target {
                    chat,
                    port,
                    base: format!("{PATH_PREFIX}{chat}/{port}/"),
                    needs_slash: !rest.starts_with('/'),
                    path_and_query,
                })
            }
        }
    }

    /// The ports of a chat as listed now, each with when it was first seen; forgets those
    /// that no longer listen.
    fn seen(&self, chat: Uuid, ports: &[agentbox_sandbox::ListeningPort]) -> Vec<PortInfo> {
        let now = Utc::now();
        let mut seen = self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if ports.is_empty() {
            seen.remove(&chat);
            return Vec::new();
        }
        let known = seen.entry(chat).or_default();
        known.retain(|port, _| ports.iter().any(|p| p.port == *port));
        ports
            .iter()
            .map(|p| PortInfo {
                port: p.port,
                process: p.process.clone(),
                first_seen: *known.entry(p.port).or_insert(now),
            })
            .collect()
    }

    fn forget(&self, chat: Uuid) {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&chat);
    }
}

#[cold]
fn unreachable_mac() -> ! {
    // `Hmac::new_from_slice` refuses no key length; this is never reached.
    std::process::abort()
}

/// Said once at start-up when previews share agentbox's origin.
pub fn warn_if_not_isolated(previews: &Previews) {
    if !previews.origin_isolated() {
        tracing::warn!(
            "no --preview-domain: port previews are served under /preview/ on agentbox's own \
             origin, where a previewed app can read the signed-in user's agentbox session; \
             set --preview-domain 'p-{{port}}-{{chat}}.agentbox.example' (a wildcard DNS \
             name and certificate) to give each preview an origin of its own"
        );
    }
}

/// A port listening in the chat's sandbox.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PortInfo {
    pub port: u16,
    /// The name of a process holding the listening socket, when the sandbox could tell.
    pub process: Option<String>,
    /// When agentbox first saw the port listening (this server's memory: forgotten when the
    /// port stops listening or the server restarts).
    pub first_seen: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PortList {
    /// Whether the sandbox runs; a sandbox that does not is not started to list its ports.
    pub running: bool,
    pub ports: Vec<PortInfo>,
    /// Whether previews have an origin of their own (`--preview-domain`); when `false` a
    /// previewed app shares agentbox's origin and can read the session.
    pub origin_isolated: bool,
}

/// The TCP ports listening in the chat's sandbox (its dev servers). Does not start or resume
/// the sandbox: one that is not running lists nothing and says `running: false`.
#[utoipa::path(get, path = "/api/v1/chats/{chat_id}/ports", tag = "previews",
    params(("chat_id" = Uuid, Path)),
    responses((status = 200, body = PortList), (status = 404, description = "chat_not_found"),
              (status = 501, description = "unsupported: the sandbox provider cannot list ports"),
              (status = 503, description = "sandbox_unavailable")),
    security(("bearer" = [])))]
async fn list_ports(
    State(state): State<AppState>,
    user: CurrentUser,
    ChatId(chat_id): ChatId,
) -> Result<Json<PortList>, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    let origin_isolated = state.previews.origin_isolated();
    let provider = state.runner.sandbox_provider();
    let id = chat_id.to_string();
    if provider.status(&id).await != SandboxStatus::Running {
        state.previews.forget(chat_id);
        return Ok(Json(PortList { running: false, ports: Vec::new(), origin_isolated }));
    }
    let ports = provider.ensure(&id).await?.ports().await?;
    Ok(Json(PortList {
        running: true,
        ports: state.previews.seen(chat_id, &ports),
        origin_isolated,
    }))
}

/// A port in a path.
pub struct Port;

impl ChatItem for Port {
    type Id = u16;

    fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "invalid_port", "A port is a number from 1 to 65535.")
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PreviewLink {
    /// Open this (a new tab or an iframe): it sets the preview's cookie and redirects to the
    /// preview. Relative to agentbox's origin when `origin_isolated` is `false`.
    pub url: String,
    /// Until when `url` can be used (a minute); the cookie it sets lasts two hours.
    pub expires_at: DateTime<Utc>,
    pub origin_isolated: bool,
}

/// A link to a preview of the port for the chat's owner. Nothing needs to listen yet (the
/// preview answers 502 until something does).
#[utoipa::path(post, path = "/api/v1/chats/{chat_id}/ports/{port}/open", tag = "previews",
    params(("chat_id" = Uuid, Path), ("port" = u16, Path)),
    responses((status = 200, body = PreviewLink), (status = 404, description = "chat_not_found, invalid_port")),
    security(("bearer" = [])))]
async fn open_port(
    State(state): State<AppState>,
    user: CurrentUser,
    InChat(chat_id, port): InChat<Port>,
) -> Result<Json<PreviewLink>, ApiError> {
    owned_chat(&state, &user, chat_id).await?;
    if port == 0 {
        return Err(Port::not_found());
    }
    let previews = &state.previews;
    let expires_at = Utc::now() + URL_TOKEN_TTL;
    let token = previews.sign(Kind::Url, chat_id, port, user.0.id, expires_at.timestamp());
    let root = match &previews.domain {
        Some(domain) => format!("{}/", domain.origin(chat_id, port)),
        None => format!("{PATH_PREFIX}{chat_id}/{port}/"),
    };
    let url = format!("{root}{}?token={token}", &AUTH_PATH[1..]);
    Ok(Json(PreviewLink { url, expires_at, origin_isolated: previews.origin_isolated() }))
}

/// In front of the whole router: requests for a preview go to the proxy, the rest on.
pub async fn intercept(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.previews.target(&request) {
        Some(target) => serve(&state, target, request).await,
        None => next.run(request).await,
    }
}

async fn serve(state: &AppState, target: Target, request: Request) -> Response {
    let (path, query) =
        target.path_and_query.split_once('?').unwrap_or((target.path_and_query.as_str(), ""));
    if path == AUTH_PATH {
        return exchange(state, &target, query).await;
    }
    if target.needs_slash {
        let location =
            if query.is_empty() { target.base.clone() } else { format!("{}?{query}", target.base) };
        let mut response = StatusCode::PERMANENT_REDIRECT.into_response();
        if let Ok(location) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, location);
        }
        return response;
    }
    let cookies = cookie_values(request.headers());
    let user = cookies
        .iter()
        .find_map(|value| state.previews.verify(value, Kind::Cookie, target.chat, target.port));
    let Some(user) = user else { return not_found().into_response() };
    if !may_preview(state, user, target.chat).await {
        return not_found().into_response();
    }
    match proxy(state, &target, user, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

/// Whether the user exists, is not disabled, and owns the chat (checked at every request,
/// so a disabled account or a deleted chat ends a preview at once).
async fn may_preview(state: &AppState, user: Uuid, chat: Uuid) -> bool {
    match state.store.user(user).await {
        Ok(Some(record)) if record.disabled_at.is_none() => {}
        _ => return false,
    }
    matches!(state.store.chat(user, chat).await, Ok(Some(_)))
}

/// The token of `open`'s URL for a cookie, and a redirect to the preview's root.
async fn exchange(state: &AppState, target: &Target, query: &str) -> Response {
    let token = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value.into_owned());
    let user = token
        .as_deref()
        .and_then(|token| state.previews.verify(token, Kind::Url, target.chat, target.port));
    let Some(user) = user else { return not_found().into_response() };
    if !may_preview(state, user, target.chat).await {
        return not_found().into_response();
    }
    let expires = Utc::now() + COOKIE_TTL;
    let value =
        state.previews.sign(Kind::Cookie, target.chat, target.port, user, expires.timestamp());
    // On an origin of its own, in an iframe of agentbox's page, the cookie is a third
    // party's: only `SameSite=None` (which browsers accept with `Secure` only) is sent there.
    let same_site = match &state.previews.domain {
        Some(domain) if domain.scheme == "https" => "SameSite=None; Secure",
        _ => "SameSite=Lax",
    };
    let cookie = format!(
        "{COOKIE_NAME}={value}; Path={}; Max-Age={}; HttpOnly; {same_site}",
        target.base,
        COOKIE_TTL.as_secs()
    );
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    if let Ok(location) = HeaderValue::from_str(&target.base) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The values of every `agentbox_preview` cookie of a request.
fn cookie_values(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
        .collect()
}

/// The `Cookie` header less agentbox's own cookie, which is none of the app's business.
fn app_cookies(headers: &HeaderMap) -> Option<HeaderValue> {
    let kept: Vec<&str> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty() && pair.split('=').next() != Some(COOKIE_NAME))
        .collect();
    if kept.is_empty() { None } else { HeaderValue::from_str(&kept.join("; ")).ok() }
}

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn proxy(
    state: &AppState,
    target: &Target,
    user: Uuid,
    mut request: Request,
) -> Result<Response, ApiError> {
    let provider = state.runner.sandbox_provider();
    let id = target.chat.to_string();
    match provider.status(&id).await {
        // Starting a sandbox to find nothing listening in it helps nobody.
        SandboxStatus::Stopped => {
            return Ok(bad_gateway(target.port, "the chat's sandbox is not running"));
        }
        // A paused sandbox's server would not answer: resume it, within the user's limit.
        SandboxStatus::Paused => {
            let limits = crate::limits::of_user(state, user).await?;
            crate::sandbox_limit::make_room(
                &state.store,
                &state.runner,
                &state.terminals,
                &limits,
                user,
                target.chat,
            )
            .await?;
        }
        SandboxStatus::Running => {}
    }
    let sandbox = provider.ensure(&id).await?;
    let connection = match sandbox.connect(target.port).await {
        Ok(connection) => connection,
        Err(SandboxError::NothingListens(_)) => {
            return Ok(bad_gateway(target.port, "nothing listens on this port"));
        }
        Err(err) => return Err(err.into()),
    };
    let (mut sender, conn) =
        match hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(connection)).await
        {
            Ok(pair) => pair,
            Err(_) => return Ok(bad_gateway(target.port, "the server did not take the request")),
        };
    tokio::spawn(async move {
        // Ends when the request and its response (or the upgraded connection) are done.
        let _ = conn.with_upgrades().await;
    });

    let upgrade = request.headers().get(header::UPGRADE).cloned();
    let downstream = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut request));
    let (parts, body) = request.into_parts();
    let mut outgoing = axum::http::Request::builder()
        .method(parts.method)
        .uri(target.path_and_query.as_str())
        .version(axum::http::Version::HTTP_11);
    if let Some(headers) = outgoing.headers_mut() {
        for (name, value) in &parts.headers {
            if !HOP_BY_HOP.contains(&name.as_str())
                && name != header::HOST
                && name != header::COOKIE
            {
                headers.append(name, value.clone());
            }
        }
        if let Some(cookies) = app_cookies(&parts.headers) {
            headers.insert(header::COOKIE, cookies);
        }
        // Dev servers check `Host` against the names they serve; `localhost` is one of them.
        if let Ok(host) = HeaderValue::from_str(&format!("localhost:{}", target.port)) {
            headers.insert(header::HOST, host);
        }
        if target.base != "/"
            && let Ok(prefix) = HeaderValue::from_str(target.base.trim_end_matches('/'))
        {
            headers.insert(HeaderName::from_static("x-forwarded-prefix"), prefix);
        }
        if let Some(upgrade) = &upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, upgrade.clone());
        }
    }
    let outgoing = outgoing.body(body).map_err(ApiError::internal)?;
    let mut response = match sender.send_request(outgoing).await {
        Ok(response) => response,
        Err(_) => {
            return Ok(bad_gateway(
                target.port,
                "the server closed the connection without an answer",
            ));
        }
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(downstream) = downstream
    {
        let upstream = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            if let (Ok(down), Ok(up)) = (downstream.await, upstream.await) {
                let mut down = hyper_util::rt::TokioIo::new(down);
                let mut up = hyper_util::rt::TokioIo::new(up);
                let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
            }
        });
        let (mut parts, _) = response.into_parts();
        // The client spoke HTTP/1.1 to us, whatever the app answered (Python's http.server
        // says 1.0), and a WebSocket client refuses anything else.
        parts.version = axum::http::Version::HTTP_11;
        return Ok(Response::from_parts(parts, Body::empty()));
    }
    let (mut parts, body) = response.into_parts();
    parts.version = axum::http::Version::HTTP_11;
    for name in HOP_BY_HOP {
        parts.headers.remove(name);
    }
    Ok(Response::from_parts(parts, Body::new(body)))
}

/// 502 with a page a person reads in the preview's frame.
fn bad_gateway(port: u16, why: &str) -> Response {
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Nothing on port {port}</title>\
         </head><body style=\"font-family:sans-serif;margin:2rem\"><h1>Nothing on port {port}</h1>\
         <p>The preview cannot reach port {port} in the chat's sandbox: {why}.</p>\
         <p>Start the server (or ask the agent to), then reload.</p></body></html>"
    );
    (
        StatusCode::BAD_GATEWAY,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")],
        page,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_domain_pattern_names_its_chat_and_port_and_nothing_else() {
        let pattern = DomainPattern::parse("p-{port}-{chat}.Agentbox.example").unwrap();
        let chat = Uuid::new_v4();
        assert_eq!(pattern.origin(chat, 8000), format!("https://p-8000-{chat}.agentbox.example"));
        assert_eq!(pattern.matches(&format!("p-8000-{chat}.agentbox.example")), Some((chat, 8000)));
        assert_eq!(pattern.matches(&format!("P-8000-{chat}.AGENTBOX.example")), Some((chat, 8000)));
        assert_eq!(
            pattern.matches(&format!("p-8000-{chat}.agentbox.example:8443")),
            Some((chat, 8000))
        );
        for other in [
            "agentbox.example".to_owned(),
            format!("p-8000-{chat}.agentbox.example.evil"),
            format!("p-99999-{chat}.agentbox.example"),
            format!("p-08000-{chat}.agentbox.example"),
            format!("p--{chat}.agentbox.example"),
            "p-8000-not-a-uuid.agentbox.example".to_owned(),
        ] {
            assert_eq!(pattern.matches(&other), None, "{other}");
        }
        let local = DomainPattern::parse("http://{chat}--{port}.localhost:8080").unwrap();
        assert_eq!(local.matches(&format!("{chat}--3000.localhost:8080")), Some((chat, 3000)));
        assert_eq!(local.matches(&format!("{chat}--3000.localhost:8081")), None);
        for bad in
            ["p-{port}.example", "{chat}.example", "ftp://p-{port}-{chat}.x", "p-{port}-{chat}/x"]
        {
            assert!(DomainPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tokens_open_one_preview_of_one_kind_until_they_expire() {
        let previews = Previews::new(&[7; 40], None);
        let (chat, user) = (Uuid::new_v4(), Uuid::new_v4());
        let later = Utc::now().timestamp() + 60;
        let token = previews.sign(Kind::Url, chat, 8000, user, later);
        assert_eq!(previews.verify(&token, Kind::Url, chat, 8000), Some(user));
        assert_eq!(previews.verify(&token, Kind::Cookie, chat, 8000), None);
        assert_eq!(previews.verify(&token, Kind::Url, chat, 8001), None);
        assert_eq!(previews.verify(&token, Kind::Url, Uuid::new_v4(), 8000), None);
        let expired = previews.sign(Kind::Url, chat, 8000, user, Utc::now().timestamp() - 1);
        assert_eq!(previews.verify(&expired, Kind::Url, chat, 8000), None);
        let other_key = Previews::new(&[8; 40], None).sign(Kind::Url, chat, 8000, user, later);
        assert_eq!(previews.verify(&other_key, Kind::Url, chat, 8000), None);
        let forged = token.replacen(&user.to_string(), &Uuid::new_v4().to_string(), 1);
        assert_eq!(previews.verify(&forged, Kind::Url, chat, 8000), None);
    }
}
