//! `POST /api/auth/register`, `/login`, `/logout`.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use shelf_api::{ErrorBody, LoginRequest, LoginResponse, RegisterRequest, RegisterResponse};

use crate::error::ApiResult;
use crate::extract::{CurrentDevice, Json, SESSION_COOKIE};
use crate::service::auth;
use crate::state::AppState;

/// Creates an account. The library starts at version 1.
#[utoipa::path(post, operation_id = "register", path = "/api/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, body = RegisterResponse),
        (status = 400, description = "validation_failed or invalid_json", body = ErrorBody),
        (status = 409, description = "email_taken", body = ErrorBody)))]
pub async fn register(State(state): State<AppState>, Json(request): Json<RegisterRequest>) -> ApiResult<impl IntoResponse> {
    let user_id = auth::register(state.store.as_ref(), &request.email, &request.password).await?;
    Ok((StatusCode::CREATED, Json(RegisterResponse { user_id: user_id.0 })))
}

/// Starts a device session: returns a bearer token and sets the `shelf_session` cookie.
#[utoipa::path(post, operation_id = "login", path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = LoginResponse),
        (status = 401, description = "invalid_credentials", body = ErrorBody)))]
pub async fn login(State(state): State<AppState>, Json(request): Json<LoginRequest>) -> ApiResult<impl IntoResponse> {
    let ttl = state.settings.session_ttl;
    let issued =
        auth::login(state.store.as_ref(), &request.email, &request.password, request.device_name.as_deref(), ttl).await?;
    let secure = if state.settings.secure_cookies { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        issued.token,
        ttl.as_secs()
    );
    let body = LoginResponse {
        token: issued.token,
        device_id: issued.device_id.0,
        user_id: issued.user_id.0,
        expires_at: issued.expires_at,
    };
    Ok(([(header::SET_COOKIE, cookie)], Json(body)))
}

/// Ends the current device session and clears the cookie.
#[utoipa::path(post, operation_id = "logout", path = "/api/auth/logout", tag = "auth", security(("bearer" = []), ("cookie" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
pub async fn logout(State(state): State<AppState>, device: CurrentDevice) -> ApiResult<impl IntoResponse> {
    auth::revoke(state.store.as_ref(), device.user_id, device.device_id).await?;
    state.hub.close_device(device.device_id, shelf_api::ErrorCode::Unauthenticated);
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]))
}
