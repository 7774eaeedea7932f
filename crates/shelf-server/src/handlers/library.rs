//! `GET /api/library/version` and `GET /api/library/changes`.

use axum::extract::State;
use shelf_api::{ChangeView, ChangesQuery, ChangesResponse, ErrorBody, LibraryVersionResponse, MaterialFields, ProgressView};
use shelf_store::{Change, ChangeData};

use crate::error::ApiResult;
use crate::extract::{CurrentDevice, Json, Query};
use crate::service::library;
use crate::state::AppState;

/// The library version, for cheap "anything new?" checks: from memory while the bus keeps it
/// current, else one indexed read (ADR 0013).
#[utoipa::path(get, operation_id = "getLibraryVersion", path = "/api/library/version", tag = "library", security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, body = LibraryVersionResponse), (status = 401, body = ErrorBody)))]
pub async fn version(State(state): State<AppState>, device: CurrentDevice) -> ApiResult<Json<LibraryVersionResponse>> {
    let version = state.versions.version(state.store.as_ref(), state.bus.as_ref(), device.user_id).await?;
    Ok(Json(LibraryVersionResponse { library_version: version.0, epoch: state.epoch.0.clone() }))
}

/// Everything that changed after `since`, oldest first; `since=0` is a full snapshot.
#[utoipa::path(get, operation_id = "getLibraryChanges", path = "/api/library/changes", tag = "library", security(("bearer" = []), ("cookie" = [])),
    params(ChangesQuery),
    responses((status = 200, body = ChangesResponse),
        (status = 410, description = "resync_required: start again from since=0", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn changes(
    State(state): State<AppState>,
    device: CurrentDevice,
    Query(query): Query<ChangesQuery>,
) -> ApiResult<Json<ChangesResponse>> {
    let page = library::changes(state.store.as_ref(), device.user_id, query.since, query.limit).await?;
    state.sync_health.pulled(state.store.as_ref(), device.device_id, page.next_since).await;
    Ok(Json(ChangesResponse {
        library_version: page.library_version.0,
        epoch: state.epoch.0.clone(),
        changes: page.changes.iter().map(change_view).collect(),
        has_more: page.has_more,
        next_since: page.next_since.0,
    }))
}

pub fn change_view(change: &Change) -> ChangeView {
    let data = change.data.as_ref().map(|data| match data {
        ChangeData::Material(m) => serde_json::to_value(MaterialFields::from(m)),
        ChangeData::Progress(p) => serde_json::to_value(ProgressView::from(p)),
        ChangeData::Attachment(a) => serde_json::to_value(shelf_api::AttachmentView::from(a)),
    });
    ChangeView {
        kind: change.kind.as_str().to_owned(),
        id: change.id.0,
        op: change.op.as_str().to_owned(),
        version: change.version.0,
        // Serialising these plain structs cannot fail; fall back to null rather than panic.
        data: data.and_then(Result::ok),
    }
}
