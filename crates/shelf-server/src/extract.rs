//! Extractors whose rejections use the standard error body, and the authenticated device.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use shelf_api::ErrorCode;

use crate::error::ApiError;
use crate::service::auth::{authenticate, Credential};
use crate::state::AppState;

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
/// `shelf_session` cookie; a cookie-authenticated unsafe request must also pass the CSRF check.
#[derive(Debug, Clone, Copy)]
pub struct CurrentDevice {
    pub user_id: shelf_core::UserId,
    pub device_id: shelf_core::DeviceId,
}

pub const SESSION_COOKIE: &str = "shelf_session";
pub const CSRF_HEADER: &str = "x-shelf-csrf";

impl FromRequestParts<AppState> for CurrentDevice {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let credential = credential(parts).ok_or(ApiError::Unauthenticated)?;
        if matches!(credential, Credential::Cookie(_)) && !csrf_safe(parts) {
            return Err(ApiError::CsrfRejected);
        }
        let auth = authenticate(state.store.as_ref(), credential.token()).await?;
        Ok(CurrentDevice { user_id: auth.user_id, device_id: auth.device_id })
    }
}

fn credential(parts: &Parts) -> Option<Credential<'_>> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let token = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer "))?;
        return Some(Credential::Bearer(token.trim()));
    }
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, token)| Credential::Cookie(token))
}

/// Cookies ride along on cross-site requests; a custom header or a same-origin `Origin` cannot
/// be forged by another site without a CORS preflight, which Shelf never grants.
fn csrf_safe(parts: &Parts) -> bool {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return true;
    }
    if parts.headers.contains_key(CSRF_HEADER) {
        return true;
    }
    let origin = parts.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = parts.headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
            origin_host.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
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
