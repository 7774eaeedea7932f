//! `GET /api/push/vapid-public-key`, `POST/DELETE /api/push/subscriptions` (spec PU1–PU2).

use axum::extract::State;
use axum::http::StatusCode;
use shelf_api::{ErrorBody, PushSubscriptionRequest, VapidPublicKeyResponse};

use crate::error::ApiResult;
use crate::extract::{CurrentDevice, Json};
use crate::service::push::subscriptions;
use crate::state::AppState;

/// The server's VAPID public key, for `pushManager.subscribe({applicationServerKey})`. Public:
/// it only identifies this server to push services.
#[utoipa::path(get, operation_id = "getVapidPublicKey", path = "/api/push/vapid-public-key", tag = "push",
    responses((status = 200, body = VapidPublicKeyResponse)))]
pub async fn vapid_public_key(State(state): State<AppState>) -> Json<VapidPublicKeyResponse> {
    Json(VapidPublicKeyResponse { public_key: state.push.public_key().to_owned() })
}

/// Ties the browser's push subscription to this device session (replacing its earlier one).
/// While the device has no event stream open, each change of the library is pushed to it.
#[utoipa::path(post, operation_id = "createPushSubscription", path = "/api/push/subscriptions", tag = "push",
    security(("bearer" = []), ("cookie" = [])), request_body = PushSubscriptionRequest,
    responses((status = 201, description = "subscribed"), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn subscribe(State(state): State<AppState>, device: CurrentDevice, Json(request): Json<PushSubscriptionRequest>) -> ApiResult<StatusCode> {
    subscriptions::subscribe(&state, device, &request).await?;
    Ok(StatusCode::CREATED)
}

/// Removes this device's push subscription, if it has one.
#[utoipa::path(delete, operation_id = "deletePushSubscription", path = "/api/push/subscriptions", tag = "push",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 204, description = "no subscription is left"), (status = 401, body = ErrorBody)))]
pub async fn unsubscribe(State(state): State<AppState>, device: CurrentDevice) -> ApiResult<StatusCode> {
    subscriptions::unsubscribe(state.store.as_ref(), device).await?;
    Ok(StatusCode::NO_CONTENT)
}
