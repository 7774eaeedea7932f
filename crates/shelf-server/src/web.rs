//! Serving the browser app next to the API. The app's files come from a [`WebAssets`]
//! implementation that the binary passes in (`shelf-web` embeds a Vite build); this crate only
//! knows how to answer HTTP for them, so it never depends on how the app is built.
//!
//! Rules (ADR 0005): `/api/*` and non-GET requests never reach the app; hashed files under
//! `assets/` are immutable for a year; everything else (`index.html`, `sw.js`, the manifest)
//! is revalidated on every load through its ETag; unknown extension-less paths get `index.html`
//! so the app's own routes survive a reload.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use bytes::Bytes;

use crate::error::ApiError;
use crate::state::AppState;

/// How long a browser may keep a file without asking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CachePolicy {
    /// Content-hashed name: the bytes behind it never change.
    Immutable,
    /// Stable name whose bytes change with each build: always revalidate (ETag).
    Revalidate,
}

/// One file of the app.
#[derive(Debug, Clone)]
pub struct WebAsset {
    pub bytes: Bytes,
    pub content_type: &'static str,
    pub cache: CachePolicy,
    /// A strong validator for [`CachePolicy::Revalidate`] files, quoted as HTTP wants it.
    pub etag: String,
}

/// Where the app's files come from: a path relative to the app's root (`index.html`,
/// `assets/index-3f2a.js`) to its bytes. `None` means "no such file".
pub trait WebAssets: Send + Sync + 'static {
    fn get(&self, path: &str) -> Option<WebAsset>;
}

/// The router's fallback: the app for browser navigations and its files, JSON errors for the API.
pub async fn fallback(State(state): State<AppState>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    let api = path == "/api" || path.starts_with("/api/");
    if api || !(method == Method::GET || method == Method::HEAD) {
        return ApiError::NotFound("route").into_response();
    }
    let relative = path.trim_start_matches('/');
    let navigation = !relative.rsplit('/').next().unwrap_or_default().contains('.');
    let Some(web) = state.web.as_deref() else {
        return if navigation { app_not_built() } else { ApiError::NotFound("file").into_response() };
    };
    let asset = match (relative, navigation) {
        ("", _) => web.get("index.html"),
        (relative, true) => web.get(relative).or_else(|| web.get("index.html")),
        (relative, false) => web.get(relative),
    };
    match asset {
        Some(asset) => asset_response(asset, &headers, method == Method::HEAD),
        None => ApiError::NotFound("file").into_response(),
    }
}

fn asset_response(asset: WebAsset, request: &HeaderMap, head_only: bool) -> Response {
    let cache_control = match asset.cache {
        CachePolicy::Immutable => "public, max-age=31536000, immutable",
        CachePolicy::Revalidate => "no-cache",
    };
    let not_modified = request
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == asset.etag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else if head_only {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(asset.bytes))
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    match HeaderValue::from_str(&asset.etag) {
        Ok(etag) => {
            headers.insert(header::ETAG, etag);
        }
        // ETags are hex digests made at build time; a bad one is a build bug worth a log line.
        Err(error) => tracing::error!(%error, etag = asset.etag, "web asset ETag is not a header value"),
    }
    response
}

/// What `/` shows on a server built with `SHELF_WEB_SKIP=1`: how to get the app.
fn app_not_built() -> Response {
    let page = Html(concat!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Shelf</title>",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>",
        "<body style=\"font-family: system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem\">",
        "<h1>Shelf is running, but without its web app</h1>",
        "<p>This server was built with <code>SHELF_WEB_SKIP=1</code>, so the app was left out. ",
        "The API works as usual under <a href=\"/api/docs\">/api</a>.</p>",
        "<p>To get the app, install Node.js 20 or newer (with npm) and build again without ",
        "<code>SHELF_WEB_SKIP</code>:</p>",
        "<pre>cargo run --release -p shelf-cli --bin shelf -- serve</pre>",
        "</body></html>"
    ));
    let mut response = page.into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
