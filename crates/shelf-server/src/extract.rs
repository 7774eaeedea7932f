//! Extractors whose rejections use the standard error body, and the authenticated device.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use std::sync::{Arc, Mutex};

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use shelf_api::ErrorCode;

use crate::client::{Origin, RequestContext};
use crate::error::ApiError;
use crate::service::auth::{authenticate, Credential};
use crate::state::{AppState, ServerSettings};

/// `axum::Json` whose failures answer `invalid_json`, `payload_too_large` or
/// `unsupported_media_type` in the standard shape.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::BadRequest(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with Content-Type: application/json".into(),
            ),
            _ => ApiError::BadRequest(ErrorCode::InvalidJson, rejection.body_text()),
        }
    }
}

/// `axum::extract::Path` answering 404 for ids that cannot exist (e.g. not a UUID).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        ApiError::NotFound("resource")
    }
}

/// `axum::extract::Query` answering `validation_failed` for malformed parameters.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::Validation(shelf_core::ValidationError::new("query", rejection.body_text()))
    }
}

/// The session making the request. Extracting it authenticates: Bearer token first, then the
/// session cookie; a cookie-authenticated request must also pass the origin rules (spec AU5).
#[derive(Debug, Clone, Copy)]
pub struct CurrentDevice {
    pub user_id: shelf_core::UserId,
    pub device_id: shelf_core::DeviceId,
}

/// The session cookie's name over plain HTTP.
pub const SESSION_COOKIE: &str = "shelf_session";
/// Its name when `Secure`: browsers keep a `__Host-` cookie only if it is Secure, has `Path=/`
/// and no `Domain`, so neither a subdomain nor a plain-HTTP page can plant or overwrite it.
pub const SECURE_SESSION_COOKIE: &str = "__Host-shelf_session";
pub const CSRF_HEADER: &str = "x-shelf-csrf";

impl FromRequestParts<AppState> for CurrentDevice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Self::authenticate(parts, state, false).await
    }
}

impl CurrentDevice {
    /// Authenticates the request; `stream` applies the event-stream and WebSocket origin rules
    /// (spec AU10) to a cookie session instead of the plain-request ones.
    pub async fn authenticate(parts: &Parts, state: &AppState, stream: bool) -> Result<Self, ApiError> {
        Ok(Self::authenticate_session(parts, state, stream).await?.0)
    }

    /// [`authenticate`](Self::authenticate), also saying when the session expires (unless it is
    /// renewed): a stream is re-checked at that moment (`realtime/hub.rs`).
    pub async fn authenticate_session(parts: &Parts, state: &AppState, stream: bool) -> Result<(Self, time::OffsetDateTime), ApiError> {
        let credential = credential(&parts.headers).ok_or(ApiError::Unauthenticated)?;
        if matches!(credential, Credential::Cookie(_)) {
            let cookie_use = CookieUse::of(parts, stream);
            if !cookie_use.allowed(parts, &state.settings) {
                return Err(if cookie_use == CookieUse::Change { ApiError::CsrfRejected } else { ApiError::ForeignOrigin });
            }
        }
        let (auth, renewed) = authenticate(&state.sessions, &state.session_reads, &state.renewals, credential.token()).await?;
        if let (true, Credential::Cookie(token)) = (renewed, &credential) {
            // The cookie's Max-Age slides with the session, under the name the browser sent.
            let secure = cookie(&parts.headers, SECURE_SESSION_COOKIE) == Some(*token);
            let value = crate::handlers::auth::session_cookie(secure, token, state.settings.session_ttl.as_secs());
            if let (Some(slot), Ok(value)) = (parts.extensions.get::<CookieRenewal>(), HeaderValue::from_str(&value)) {
                slot.set(value);
            }
        }
        Ok((CurrentDevice { user_id: auth.user_id, device_id: auth.device_id }, auth.expires_at))
    }
}

/// Where [`CurrentDevice`] leaves a renewed session cookie for the response (spec AU11).
#[derive(Clone, Default)]
pub struct CookieRenewal(Arc<Mutex<Option<HeaderValue>>>);

impl CookieRenewal {
    fn set(&self, value: HeaderValue) {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(value);
    }

    fn take(&self) -> Option<HeaderValue> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take()
    }
}

/// Middleware: refreshes the session cookie of a renewed cookie session, unless the handler set
/// the cookie itself (logout clears it; that must win).
pub async fn refresh_renewed_cookie(mut request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let renewal = CookieRenewal::default();
    request.extensions_mut().insert(renewal.clone());
    let mut response = next.run(request).await;
    if let Some(value) = renewal.take() {
        if !response.headers().contains_key(header::SET_COOKIE) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}

fn credential(headers: &HeaderMap) -> Option<Credential<'_>> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
        return Some(Credential::Bearer(token.trim()));
    }
    // Both names are accepted so a server moving behind HTTPS keeps its sessions; the
    // `__Host-` one wins because no plain-HTTP page can have set it.
    cookie(headers, SECURE_SESSION_COOKIE).or_else(|| cookie(headers, SESSION_COOKIE)).map(Credential::Cookie)
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(found, _)| *found == name)
        .map(|(_, token)| token)
}

/// What a cookie-authenticated request must show about the page that sent it. Cookies ride
/// along on requests other sites make; these rules keep those requests from acting or reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CookieUse {
    /// A plain GET/HEAD/OPTIONS: other sites cannot read the answer without CORS, which Shelf
    /// never grants.
    Read,
    /// A change: the `X-Shelf-Csrf` header (other sites cannot add it without a CORS preflight)
    /// or a trusted `Origin`.
    Change,
    /// A WebSocket handshake is not bound by CORS, so it needs a trusted `Origin`; browsers
    /// always send one on handshakes.
    WebSocket,
    /// An event stream: a present `Origin` must be trusted and `Sec-Fetch-Site` must not say
    /// another site; no `Origin` at all is fine, since browsers send none on a same-origin
    /// `EventSource` (the web app's own stream).
    EventStream,
}

impl CookieUse {
    fn of(parts: &Parts, stream: bool) -> Self {
        let upgrade = parts.headers.get(header::UPGRADE).and_then(|v| v.to_str().ok());
        if upgrade.is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
            CookieUse::WebSocket
        } else if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            CookieUse::Change
        } else if stream {
            CookieUse::EventStream
        } else {
            CookieUse::Read
        }
    }

    fn allowed(self, parts: &Parts, settings: &ServerSettings) -> bool {
        let origin = parts.headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or(""));
        let trusted = |raw: &str| origin_trusted(raw, parts, settings);
        match self {
            CookieUse::Read => true,
            CookieUse::Change => parts.headers.contains_key(CSRF_HEADER) || origin.is_some_and(trusted),
            CookieUse::WebSocket => origin.is_some_and(trusted),
            CookieUse::EventStream => match origin {
                Some(origin) => trusted(origin),
                None => {
                    let site = parts.headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()).unwrap_or("");
                    !(site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site"))
                }
            },
        }
    }
}

/// Whether `raw` (an `Origin` header) is this request's own origin — scheme, host and port —
/// or one of `--allowed-origins`.
fn origin_trusted(raw: &str, parts: &Parts, settings: &ServerSettings) -> bool {
    let Some(origin) = Origin::parse(raw) else { return false };
    settings.allowed_origins.contains(&origin) || RequestContext::of(parts, &settings.trusted_proxies).origin == Some(origin)
}

/// The library version in an `If-Match` header (`5`, `"5"` or `W/"5"`), if any.
pub fn if_match_version(headers: &axum::http::HeaderMap) -> Result<Option<shelf_core::LibraryVersion>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else { return Ok(None) };
    let raw = value.to_str().unwrap_or("").trim();
    let raw = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
    raw.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .map(|v| Some(shelf_core::LibraryVersion(v)))
        .ok_or_else(|| ApiError::Validation(shelf_core::ValidationError::new("If-Match", "must be a library version number")))
}

/// A non-negative decimal number made of ASCII digits only. `str::parse` would also accept a
/// leading `+`, which tus headers (`Upload-Length`, `Upload-Offset`) and byte ranges do not allow.
pub fn decimal(text: &str) -> Option<u64> {
    (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())).then(|| text.parse().ok()).flatten()
}
