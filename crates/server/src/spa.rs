//! The web UI: the single-page app that `scripts/setup` builds into `web/dist`, served at `/`.
//!
//! Release builds embed `web/dist` in the binary; debug builds read it from disk on each
//! request (rust-embed's default), so a rebuilt UI shows up without recompiling the server.
//! When `web/dist` does not exist (the UI was never built) the server still compiles and `/`
//! answers with a short page that says so.
//!
//! Paths under `/api/`, `/health` and `/metrics` never reach the UI: an unknown API path keeps
//! its JSON 404. Any other `GET` that names no file gets `index.html`, so that a reload of a
//! client-side route such as `/chats/<id>` works; a missing file with an extension (a stale
//! `/assets/index-abc123.js`) is a 404, never HTML in place of a script.

use std::borrow::Cow;

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::error;

/// Vite puts every hashed file under `assets/`: their names change with their content, so
/// browsers may keep them for a year without asking again.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `index.html` and unhashed files must be revalidated, or a browser would keep loading the
/// scripts of an old build after an upgrade.
const REVALIDATE: &str = "no-cache";

#[derive(rust_embed::Embed)]
// `web/dist`, made absolute by build.rs.
#[folder = "$AGENTBOX_WEB_DIST"]
#[allow_missing = true]
struct Dist;

/// One file of the UI.
pub struct Asset {
    pub bytes: Cow<'static, [u8]>,
    pub mime: String,
    /// A strong validator for `If-None-Match`: a hash of the content.
    pub etag: String,
}

/// Where the UI's files come from. The server uses the embedded build; tests use a map.
pub trait AssetSource: Send + Sync {
    /// The file at `path`, relative to the root of the build (`index.html`, `assets/x.js`).
    fn file(&self, path: &str) -> Option<Asset>;
}

struct Embedded;

impl AssetSource for Embedded {
    fn file(&self, path: &str) -> Option<Asset> {
        let file = <Dist as rust_embed::RustEmbed>::get(path)?;
        let etag = file.metadata.sha256_hash().iter().take(16).fold(
            String::with_capacity(34),
            |mut out, byte| {
                use std::fmt::Write;
                let _ = write!(out, "{byte:02x}");
                out
            },
        );
        Some(Asset {
            mime: file.metadata.mimetype().to_owned(),
            bytes: file.data,
            etag: format!("\"{etag}\""),
        })
    }
}

/// `GET /`.
pub async fn index(headers: HeaderMap) -> Response {
    respond(&Embedded, &Method::GET, "/", &headers)
}

/// Everything no route matched: the UI's files and routes, or the API's JSON 404.
pub async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    respond(&Embedded, &method, uri.path(), &headers)
}

fn is_api(path: &str) -> bool {
    path == "/api"
        || path.starts_with("/api/")
        || path == "/health"
        || path.starts_with("/health/")
        || path == "/metrics"
}

/// Answers one request from `source`; see the module documentation for the rules.
pub fn respond(
    source: &dyn AssetSource,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Response {
    if is_api(path) || (method != Method::GET && method != Method::HEAD) {
        return error::not_found().into_response();
    }
    let relative = path.trim_start_matches('/');
    // `..` never names a file of the build; refuse it before it reaches any lookup.
    if relative.split('/').any(|segment| segment == "..") {
        return error::not_found().into_response();
    }
    if !relative.is_empty()
        && let Some(asset) = source.file(relative)
    {
        let cache = if relative.starts_with("assets/") { IMMUTABLE } else { REVALIDATE };
        return asset_response(asset, cache, headers);
    }
    let last_segment = relative.rsplit('/').next().unwrap_or_default();
    if relative.starts_with("assets/") || last_segment.contains('.') {
        return error::not_found().into_response();
    }
    match source.file("index.html") {
        Some(index) => asset_response(index, REVALIDATE, headers),
        None => placeholder(),
    }
}

fn asset_response(asset: Asset, cache: &'static str, request: &HeaderMap) -> Response {
    let etag = HeaderValue::from_str(&asset.etag).ok();
    let fresh = match (&etag, request.get(IF_NONE_MATCH)) {
        (Some(etag), Some(sent)) => sent
            .to_str()
            .map(|sent| sent.split(',').any(|tag| tag.trim() == etag.to_str().unwrap_or_default()))
            .unwrap_or(false),
        _ => false,
    };
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(asset.bytes));
        if let Ok(mime) = HeaderValue::from_str(&asset.mime) {
            response.headers_mut().insert(CONTENT_TYPE, mime);
        }
        response
    };
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Some(etag) = etag {
        response.headers_mut().insert(ETAG, etag);
    }
    response
}

/// Served at `/` when this build has no web UI, so that the root says what is here instead
/// of a bare 404.
fn placeholder() -> Response {
    let mut response = axum::response::Html(
        "<!doctype html><meta charset=utf-8><title>agentbox</title>\
         <h1>agentbox is running</h1>\
         <p>The web UI is not part of this build: build it with <code>scripts/setup</code> \
         (it needs Node.js and npm). The API is here: see \
         <a href=/api/v1/openapi.json>/api/v1/openapi.json</a> and \
         <a href=/health>/health</a>, and the README for a walk-through with curl.</p>",
    )
    .into_response();
    response.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    response
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct Files(HashMap<&'static str, &'static str>);

    impl AssetSource for Files {
        fn file(&self, path: &str) -> Option<Asset> {
            self.0.get(path).map(|text| Asset {
                bytes: Cow::Borrowed(text.as_bytes()),
                mime: if path.ends_with(".js") { "text/javascript" } else { "text/html" }.into(),
                etag: format!("\"{}\"", text.len()),
            })
        }
    }

    fn built() -> Files {
        Files(HashMap::from([
            ("index.html", "<!doctype html><div id=root></div>"),
            ("assets/index-abc123.js", "console.log(1)"),
            ("favicon.svg", "<svg/>"),
        ]))
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn get(source: &dyn AssetSource, path: &str) -> Response {
        respond(source, &Method::GET, path, &HeaderMap::new())
    }

    #[tokio::test]
    async fn hashed_assets_are_cached_for_long_and_index_is_revalidated() {
        let files = built();
        let asset = get(&files, "/assets/index-abc123.js");
        assert_eq!(asset.status(), StatusCode::OK);
        assert_eq!(asset.headers()[CACHE_CONTROL], IMMUTABLE);
        assert_eq!(asset.headers()[CONTENT_TYPE], "text/javascript");
        assert_eq!(body(asset).await, "console.log(1)");

        let root = get(&files, "/");
        assert_eq!(root.status(), StatusCode::OK);
        assert_eq!(root.headers()[CACHE_CONTROL], "no-cache");
        assert!(body(root).await.contains("id=root"));

        let icon = get(&files, "/favicon.svg");
        assert_eq!(icon.headers()[CACHE_CONTROL], "no-cache");
    }

    #[tokio::test]
    async fn client_routes_fall_back_to_index_but_missing_files_do_not() {
        let files = built();
        let route = get(&files, "/chats/5f0c6a62-8d0e-4c6e-9a51-3f1b1d3f0e11");
        assert_eq!(route.status(), StatusCode::OK);
        assert!(body(route).await.contains("id=root"));

        for missing in ["/assets/index-old.js", "/assets/gone", "/logo.png", "/../etc/passwd"] {
            let response = get(&files, missing);
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{missing}");
            assert!(body(response).await.contains("\"not_found\""), "{missing}");
        }
    }

    #[tokio::test]
    async fn api_paths_and_other_methods_keep_the_json_404() {
        let files = built();
        for path in ["/api/v1/nope", "/api", "/health/x", "/metrics"] {
            let response = get(&files, path);
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
            assert!(body(response).await.contains("\"code\":\"not_found\""), "{path}");
        }
        let post = respond(&files, &Method::POST, "/chats/x", &HeaderMap::new());
        assert_eq!(post.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_known_etag_gets_304() {
        let files = built();
        let mut headers = HeaderMap::new();
        headers.insert(IF_NONE_MATCH, HeaderValue::from_static("\"x\", \"14\""));
        let response = respond(&files, &Method::GET, "/assets/index-abc123.js", &headers);
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(response.headers()[ETAG], "\"14\"");
        assert!(body(response).await.is_empty());
    }

    #[tokio::test]
    async fn without_a_build_the_root_explains_itself() {
        let empty = Files(HashMap::new());
        let response = get(&empty, "/");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(body(response).await.contains("agentbox is running"));
        let route = get(&empty, "/chats/x");
        assert_eq!(route.status(), StatusCode::OK);
    }
}
