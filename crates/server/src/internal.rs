//! The worker-internal HTTP API: what an API node asks the worker that holds a chat's
//! sandbox (its files, zip, uploads, terminals, the sandbox's status, pause and resume).
//!
//! It is served under `/internal/v1/...` on the worker's `--bind` listener, and it is the
//! same handlers as the public routes: [`dispatch`] checks the credential, rewrites the path
//! to the public one and hands the request to a router of those routes that only it
//! reaches, with the user the credential names as an [`InternalCaller`] extension that
//! [`crate::auth::CurrentUser`] accepts instead of an access token. A client cannot set an
//! extension, and the public router of a node never holds those routes' internal copy, so
//! no access token is accepted here and no credential anywhere else.
//!
//! The credential is an HMAC-SHA256 over the target node's id, the user, the chat and an
//! expiry, under a key every node derives from the shared `SECRET_KEY` with HKDF (its own
//! `info` label: neither the access tokens' key nor the secrets' sealing key). It lives a
//! minute, so a leaked one is useless soon, and it names the node, so one minted for a
//! worker does not open another.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tower::ServiceExt as _;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// The header that carries the credential.
pub const CREDENTIAL_HEADER: &str = "x-agentbox-internal";
/// The prefix of the internal routes; the rest of the path is the public route's after
/// `/api/v1/`.
pub const PREFIX: &str = "/internal/v1/";
/// Fixed: every node of an installation must derive the same key.
const KEY_INFO: &[u8] = b"agentbox internal node api v1: credential key";
/// How long a credential is good for. Each forwarded request gets a fresh one; a terminal's
/// WebSocket is checked once, at its upgrade.
const LIFETIME: Duration = Duration::from_secs(60);
/// Nodes' clocks agree to well within this (they must for the heartbeat expiry anyway).
const SKEW_SECS: i64 = 30;

/// The key of the internal credential, derived from `SECRET_KEY`.
#[derive(Clone)]
pub struct InternalKey([u8; 32]);

impl std::fmt::Debug for InternalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InternalKey(..)")
    }
}

/// The user a verified credential names: set only by [`dispatch`].
#[derive(Clone, Copy, Debug)]
pub struct InternalCaller {
    pub user_id: Uuid,
    pub chat_id: Uuid,
}

impl InternalKey {
    pub fn derive(secret_key: &[u8]) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, secret_key);
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit (255 * 32): never an error.
        let derived = hkdf.expand(KEY_INFO, &mut key);
        debug_assert!(derived.is_ok());
        Self(key)
    }

    fn mac(&self, node: &str, user: Uuid, chat: Uuid, expires: i64) -> Hmac<Sha256> {
        // A key of any length is accepted by HMAC: this never fails.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        // Lengths first, so that no two different tuples give the same bytes.
        for part in [node.as_bytes(), user.as_bytes(), chat.as_bytes(), &expires.to_be_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    /// A credential for `node` acting as `user` on `chat`:
    /// `<user>.<chat>.<expires>.<hex of the MAC>`.
    pub fn mint(&self, node: &str, user: Uuid, chat: Uuid) -> String {
        let expires = Utc::now().timestamp().saturating_add(LIFETIME.as_secs() as i64);
        let tag = self.mac(node, user, chat, expires).finalize().into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        format!("{user}.{chat}.{expires}.{hex}")
    }

    /// The caller a credential names if it was minted for `node` with this key and has not
    /// expired. The MAC is compared in constant time (`verify_slice`).
    pub fn verify(&self, node: &str, credential: &str) -> Option<InternalCaller> {
        let mut parts = credential.split('.');
        let user = Uuid::parse_str(parts.next()?).ok()?;
        let chat = Uuid::parse_str(parts.next()?).ok()?;
        let expires: i64 = parts.next()?.parse().ok()?;
        let tag = parts.next()?;
        if parts.next().is_some() || tag.len() != 64 {
            return None;
        }
        let tag: Vec<u8> = (0..64)
            .step_by(2)
            .map(|i| u8::from_str_radix(tag.get(i..i + 2)?, 16).ok())
            .collect::<Option<_>>()?;
        self.mac(node, user, chat, expires).verify_slice(&tag).ok()?;
        let now = Utc::now().timestamp();
        let lifetime = LIFETIME.as_secs() as i64;
        if expires < now.saturating_sub(SKEW_SECS)
            || expires > now.saturating_add(lifetime + SKEW_SECS)
        {
            return None;
        }
        Some(InternalCaller { user_id: user, chat_id: chat })
    }
}

/// The chat a public or internal path names (`.../chats/{chat_id}/...`), if it is a UUID.
pub fn chat_of_path(path: &str, prefix: &str) -> Option<Uuid> {
    let rest = path.strip_prefix(prefix)?.strip_prefix("chats/")?;
    let id = rest.split('/').next()?;
    Uuid::parse_str(id).ok()
}

fn refused() -> Response {
    ApiError::unauthorized("This internal route needs a valid node credential.").into_response()
}

/// `/internal/v1/...` on a worker: check the credential, then serve the request with the
/// public route's handler as the user the credential names.
pub async fn dispatch(state: AppState, routes: axum::Router, mut request: Request) -> Response {
    if !request.uri().path().starts_with(PREFIX) {
        return crate::error::not_found().into_response();
    }
    let node = state.runner.config().node.id.clone();
    let Some(chat_id) = chat_of_path(request.uri().path(), PREFIX) else {
        return crate::error::not_found().into_response();
    };
    let caller = request
        .headers()
        .get(CREDENTIAL_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(|credential| state.auth.internal.verify(&node, credential))
        .filter(|caller| caller.chat_id == chat_id);
    let Some(caller) = caller else {
        return refused();
    };
    let Some(uri) = public_uri(request.uri()) else {
        return crate::error::not_found().into_response();
    };
    *request.uri_mut() = uri;
    request.headers_mut().remove(CREDENTIAL_HEADER);
    request.headers_mut().remove(axum::http::header::AUTHORIZATION);
    request.extensions_mut().insert(caller);
    match routes.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// `/internal/v1/x?q` → `/api/v1/x?q`.
fn public_uri(uri: &Uri) -> Option<Uri> {
    let rest = uri.path().strip_prefix(PREFIX)?;
    let path_and_query = match uri.query() {
        Some(query) => format!("/api/v1/{rest}?{query}"),
        None => format!("/api/v1/{rest}"),
    };
    Uri::builder().path_and_query(path_and_query).build().ok()
}

/// The value of [`CREDENTIAL_HEADER`] for a request to `node` on behalf of `user`.
pub fn credential_header(state: &AppState, node: &str, user: Uuid, chat: Uuid) -> HeaderValue {
    let credential = state.auth.internal.mint(node, user, chat);
    // Hex, digits, dots and dashes only: always a valid header value.
    HeaderValue::from_str(&credential).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_opens_its_node_for_its_user_and_chat_only() {
        let key = InternalKey::derive(b"a shared secret key of the installation");
        let (user, chat) = (Uuid::new_v4(), Uuid::new_v4());
        let credential = key.mint("w1", user, chat);
        let caller = key.verify("w1", &credential).unwrap();
        assert_eq!((caller.user_id, caller.chat_id), (user, chat));
        // Another node, another key, a changed field or MAC: refused.
        assert!(key.verify("w2", &credential).is_none());
        assert!(InternalKey::derive(b"another secret").verify("w1", &credential).is_none());
        let other_user = credential.replacen(&user.to_string(), &Uuid::new_v4().to_string(), 1);
        assert!(key.verify("w1", &other_user).is_none());
        let mut flipped = credential.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == '0' { '1' } else { '0' });
        assert!(key.verify("w1", &flipped).is_none());
        assert!(key.verify("w1", "").is_none());
        assert!(key.verify("w1", &format!("{credential}.x")).is_none());
    }

    #[test]
    fn an_expired_credential_is_refused() {
        let key = InternalKey::derive(b"k");
        let (user, chat) = (Uuid::new_v4(), Uuid::new_v4());
        let expires = Utc::now().timestamp() - 3600;
        let tag = key.mac("w1", user, chat, expires).finalize().into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert!(key.verify("w1", &format!("{user}.{chat}.{expires}.{hex}")).is_none());
    }

    #[test]
    fn paths_name_their_chat() {
        let chat = Uuid::new_v4();
        assert_eq!(chat_of_path(&format!("/api/v1/chats/{chat}/files"), "/api/v1/"), Some(chat));
        assert_eq!(
            chat_of_path(&format!("/internal/v1/chats/{chat}/terminal"), PREFIX),
            Some(chat)
        );
        assert_eq!(chat_of_path("/internal/v1/chats/nope/files", PREFIX), None);
        assert_eq!(chat_of_path(&format!("/api/v1/chats/{chat}"), PREFIX), None);
        let uri: Uri = format!("/internal/v1/chats/{chat}/files?path=a%20b").parse().unwrap();
        assert_eq!(
            public_uri(&uri).unwrap().to_string(),
            format!("/api/v1/chats/{chat}/files?path=a%20b")
        );
    }
}
