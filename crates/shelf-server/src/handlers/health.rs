//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{json, Value};
use shelf_api::ErrorBody;

use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::AppState;

/// The process is up.
#[utoipa::path(get, operation_id = "healthz", path = "/healthz", tag = "health", responses((status = 200)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The database answers. A bus that lost its broker (and polls the database instead) is
/// reported as `"bus": "degraded"` with its reason; the instance still serves correctly.
#[utoipa::path(get, operation_id = "readyz", path = "/readyz", tag = "health",
    responses((status = 200), (status = 503, description = "service_unavailable", body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<(StatusCode, Json<Value>)> {
    state.store.ping().await.map_err(ApiError::Unavailable)?;
    let (bus, reason) = match state.bus.health() {
        shelf_bus::BusHealth::Healthy => ("healthy", None),
        shelf_bus::BusHealth::Degraded(reason) => ("degraded", Some(reason)),
    };
    let status = if reason.is_some() { "degraded" } else { "ready" };
    Ok((
        StatusCode::OK,
        Json(json!({"status": status, "database": state.store.backend_name(), "bus": bus, "busKind": state.bus.name(), "busReason": reason})),
    ))
}
