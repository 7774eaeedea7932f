//! `DELETE /api/account`, `POST /api/auth/password`.

use axum::extract::State;
use axum::http::StatusCode;
use shelf_api::{ChangePasswordRequest, DeleteAccountRequest, ErrorBody};

use crate::client::RequestContext;
use crate::error::ApiResult;
use crate::extract::{CurrentDevice, Json};
use crate::service::account;
use crate::service::auth::Gate;
use crate::state::AppState;

/// Deletes the account with all its data, sessions, files and uploads; its streams end. Needs the
/// password again.
#[utoipa::path(delete, operation_id = "deleteAccount", path = "/api/account", tag = "auth", request_body = DeleteAccountRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "the account and everything of it are gone"),
        (status = 403, description = "wrong_password (nothing was deleted), or csrf_rejected", body = ErrorBody),
        (status = 429, description = "rate_limited (Retry-After): too many wrong passwords for this account or address", body = ErrorBody),
        (status = 503, description = "service_unavailable (Retry-After): password hashing is saturated", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    context: RequestContext,
    device: CurrentDevice,
    Json(request): Json<DeleteAccountRequest>,
) -> ApiResult<StatusCode> {
    account::delete(&state, &gate(&state, &context), device.user_id, &request.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes the password and signs out every other device (their streams end); this session stays.
#[utoipa::path(post, operation_id = "changePassword", path = "/api/auth/password", tag = "auth", request_body = ChangePasswordRequest,
    security(("bearer" = []), ("cookie" = [])),
    responses(
        (status = 204, description = "changed; the other sessions are revoked"),
        (status = 400, description = "validation_failed: the new password breaks the rules", body = ErrorBody),
        (status = 403, description = "wrong_password (nothing was changed), or csrf_rejected", body = ErrorBody),
        (status = 429, description = "rate_limited (Retry-After): too many wrong passwords for this account or address", body = ErrorBody),
        (status = 503, description = "service_unavailable (Retry-After): password hashing is saturated", body = ErrorBody)))]
pub async fn change_password(
    State(state): State<AppState>,
    context: RequestContext,
    device: CurrentDevice,
    Json(request): Json<ChangePasswordRequest>,
) -> ApiResult<StatusCode> {
    let gate = gate(&state, &context);
    account::change_password(&state, &gate, device.user_id, device.device_id, &request.current_password, &request.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn gate<'a>(state: &'a AppState, context: &RequestContext) -> Gate<'a> {
    Gate { client: context.client, limits: &state.settings.rate_limits, hashing: &state.hashing }
}
