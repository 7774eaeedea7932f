//! `GET /api/devices`, `DELETE /api/devices/{deviceId}`.

use axum::extract::State;
use axum::http::StatusCode;
use shelf_api::{DeviceView, ErrorBody};
use shelf_core::DeviceId;
use uuid::Uuid;

use crate::error::ApiResult;
use crate::extract::{CurrentDevice, Json, Path};
use crate::service::auth;
use crate::service::sync_health::{self, DeviceHealth};
use crate::state::AppState;

/// The current user's live sessions, oldest first, each with its sync health and whether it
/// has Web Push.
#[utoipa::path(get, operation_id = "listDevices", path = "/api/devices", tag = "devices", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = [DeviceView]), (status = 401, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, device: CurrentDevice) -> ApiResult<Json<Vec<DeviceView>>> {
    let devices = sync_health::devices(state.store.as_ref(), device.user_id).await?;
    let pushed = crate::service::push::subscriptions::devices_with_push(state.store.as_ref(), device.user_id).await?;
    Ok(Json(
        devices
            .into_iter()
            .map(|DeviceHealth { session: s, lag }| DeviceView {
                device_id: s.device_id.0,
                device_name: s.device_name,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                current: s.device_id == device.device_id,
                push: pushed.contains(&s.device_id),
                last_synced_version: s.synced.map(|(version, _)| version.0),
                last_synced_at: s.synced.map(|(_, at)| at),
                lag,
            })
            .collect(),
    ))
}

/// Revokes one session; its token is refused from the next request on.
#[utoipa::path(delete, operation_id = "revokeDevice", path = "/api/devices/{deviceId}", tag = "devices", security(("bearer" = []), ("cookie" = [])),
    params(("deviceId" = Uuid, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn revoke(State(state): State<AppState>, device: CurrentDevice, Path(target): Path<Uuid>) -> ApiResult<StatusCode> {
    // Its streams end and its token is refused now on this instance, on others once the bus
    // carries the revocation (within a second either way, ADR 0011).
    auth::revoke(&state, device.user_id, DeviceId(target)).await?;
    Ok(StatusCode::NO_CONTENT)
}
