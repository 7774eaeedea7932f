//! `POST /api/auth/register`, `/login`, `/logout`.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use shelf_api::{ErrorBody, LoginRequest, LoginResponse, RegisterRequest, RegisterResponse};

use crate::client::RequestContext;
use crate::error::ApiResult;
use crate::extract::{cookie, CurrentDevice, Json, SECURE_SESSION_COOKIE, SESSION_COOKIE};
use crate::service::auth::{self, Gate};
use crate::state::AppState;

/// Creates an account. The library starts at version 1.
#[utoipa::path(post, operation_id = "register", path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, body = RegisterResponse),
        (status = 400, description = "validation_failed or invalid_json", body = ErrorBody),
        (status = 409, description = "email_taken", body = ErrorBody),
        (status = 429, description = "rate_limited (Retry-After): too many registrations from this address", body = ErrorBody),
        (status = 503, description = "service_unavailable (Retry-After): password hashing is saturated", body = ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    context: RequestContext,
    Json(request): Json<RegisterRequest>,
) -> ApiResult<impl IntoResponse> {
    let user_id = auth::register(state.store.as_ref(), &gate(&state, &context), &request.email, &request.password).await?;
    Ok((StatusCode::CREATED, Json(RegisterResponse { user_id: user_id.0 })))
}

/// Starts a device session: returns a bearer token and sets the session cookie
/// (`__Host-shelf_session`, `Secure`, when the client uses HTTPS; `shelf_session` otherwise).
#[utoipa::path(post, operation_id = "login", path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "invalid_credentials", body = ErrorBody),
        (status = 429, description = "rate_limited (Retry-After): too many failures for this account or address", body = ErrorBody),
        (status = 503, description = "service_unavailable (Retry-After): password hashing is saturated", body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    context: RequestContext,
    Json(request): Json<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    let ttl = state.settings.session_ttl;
    let gate = gate(&state, &context);
    let issued =
        auth::login(state.store.as_ref(), &gate, &request.email, &request.password, request.device_name.as_deref(), ttl).await?;
    let cookie = session_cookie(secure_cookie(&state, &context), &issued.token, ttl.as_secs());
    let body = LoginResponse {
        token: issued.token,
        device_id: issued.device_id.0,
        user_id: issued.user_id.0,
        expires_at: issued.expires_at,
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)))
}

/// Ends the current device session and clears the cookie it came with.
#[utoipa::path(post, operation_id = "logout", path = "/api/auth/logout", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    context: RequestContext,
    headers: HeaderMap,
    device: CurrentDevice,
) -> ApiResult<impl IntoResponse> {
    auth::revoke(&state, device.user_id, device.device_id).await?;
    // Clear each session cookie the browser sent; with none (a Bearer logout), the one this
    // request would have been given.
    let mut secure_flags: Vec<bool> = [(true, SECURE_SESSION_COOKIE), (false, SESSION_COOKIE)]
        .into_iter()
        .filter(|(_, name)| cookie(&headers, name).is_some())
        .map(|(secure, _)| secure)
        .collect();
    if secure_flags.is_empty() {
        secure_flags.push(secure_cookie(&state, &context));
    }
    let cleared = secure_flags.into_iter().map(|secure| (header::SET_COOKIE, session_cookie(secure, "", 0)));
    Ok((StatusCode::NO_CONTENT, AppendHeaders(cleared)))
}

fn gate<'a>(state: &'a AppState, context: &RequestContext) -> Gate<'a> {
    Gate { client: context.client, limits: &state.settings.rate_limits, hashing: &state.hashing }
}

/// `--secure-cookies` when given; otherwise whether the client reached us over HTTPS.
fn secure_cookie(state: &AppState, context: &RequestContext) -> bool {
    state.settings.secure_cookies.unwrap_or(context.https)
}

/// The session cookie (spec AU9): HttpOnly, SameSite=Lax, and when `secure` also `Secure`
/// under the `__Host-` name.
pub(crate) fn session_cookie(secure: bool, value: &str, max_age_secs: u64) -> String {
    let (name, secure) = if secure { (SECURE_SESSION_COOKIE, "; Secure") } else { (SESSION_COOKIE, "") };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}
