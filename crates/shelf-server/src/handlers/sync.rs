//! `POST /api/library/mutations`, `GET /api/library/rejected`, and material conflicts.

use axum::extract::State;
use shelf_api::{
    ConflictView, ErrorBody, MaterialMutationResponse, MaterialView, MutationBatchRequest, MutationBatchResponse, RejectedPage,
    RejectedQueryParams, RejectedView, ResolveConflictRequest,
};
use shelf_core::{LibraryMutation, MaterialId};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{CurrentDevice, Json, Path, Query};
use crate::service::{library, mutations};
use crate::state::AppState;

/// Applies a device's queued edits in order, each exactly once (see docs/sync-protocol.md).
#[utoipa::path(post, operation_id = "applyMutations", path = "/api/library/mutations", tag = "sync", security(("bearer" = []), ("cookie" = [])),
    request_body = MutationBatchRequest,
    responses((status = 200, body = MutationBatchResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn apply(
    State(state): State<AppState>,
    device: CurrentDevice,
    Json(request): Json<MutationBatchRequest>,
) -> ApiResult<Json<MutationBatchResponse>> {
    let (version, results) = mutations::apply_batch(&state, device.user_id, device.device_id, &request).await?;
    Ok(Json(MutationBatchResponse { library_version: version.0, results }))
}

/// The dead-letter list: mutations that could not apply, newest first, kept so they can be
/// restored. Paged with `before`; an entry's `data` is inline up to 16 KiB.
#[utoipa::path(get, operation_id = "listRejectedMutations", path = "/api/library/rejected", tag = "sync", security(("bearer" = []), ("cookie" = [])),
    params(RejectedQueryParams),
    responses((status = 200, body = RejectedPage), (status = 401, body = ErrorBody)))]
pub async fn rejected(
    State(state): State<AppState>,
    device: CurrentDevice,
    Query(query): Query<RejectedQueryParams>,
) -> ApiResult<Json<RejectedPage>> {
    let (items, next_before) = library::rejected(state.store.as_ref(), device.user_id, query.before, query.limit).await?;
    let items = items.iter().map(rejected_view).collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(RejectedPage { items, next_before }))
}

/// One dead-letter entry with all its data.
#[utoipa::path(get, operation_id = "getRejectedMutation", path = "/api/library/rejected/{rejectedId}", tag = "sync",
    security(("bearer" = []), ("cookie" = [])),
    params(("rejectedId" = Uuid, Path)),
    responses((status = 200, body = RejectedView), (status = 404, body = ErrorBody)))]
pub async fn rejected_one(State(state): State<AppState>, device: CurrentDevice, Path(id): Path<Uuid>) -> ApiResult<Json<RejectedView>> {
    let entry = state.store.rejected_mutation(device.user_id, id).await?.ok_or(ApiError::NotFound("rejected mutation"))?;
    Ok(Json(rejected_view(&entry)?))
}

fn rejected_view(r: &shelf_store::RejectedMutation) -> ApiResult<RejectedView> {
    let data = r.data.as_deref().map(serde_json::from_str).transpose().map_err(|e| ApiError::Internal(e.into()))?;
    Ok(RejectedView {
        id: r.id,
        device_id: r.device_id.map(|d| d.0),
        mutation_id: r.mutation_id,
        mutation_type: r.kind.into(),
        material_id: r.material_id.0,
        data,
        data_bytes: r.data_bytes,
        code: r.code.into(),
        message: r.message.clone(),
        created_at: r.created_at,
    })
}

/// The material's unresolved conflicts.
#[utoipa::path(get, operation_id = "listConflicts", path = "/api/materials/{id}/conflicts", tag = "sync", security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = [ConflictView]), (status = 404, body = ErrorBody)))]
pub async fn conflicts(State(state): State<AppState>, device: CurrentDevice, Path(id): Path<Uuid>) -> ApiResult<Json<Vec<ConflictView>>> {
    library::material(state.store.as_ref(), device.user_id, MaterialId(id)).await?;
    let conflicts = state.store.conflicts(device.user_id, MaterialId(id)).await?;
    Ok(Json(conflicts.iter().map(ConflictView::from).collect()))
}

/// Settles a conflict: `server` keeps the current value, `device` takes the device's, `custom`
/// writes `value`. Bumps the library version like any edit.
#[utoipa::path(post, operation_id = "resolveConflict", path = "/api/materials/{id}/conflicts/{conflictId}/resolve", tag = "sync",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path), ("conflictId" = Uuid, Path)), request_body = ResolveConflictRequest,
    responses((status = 200, body = MaterialMutationResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn resolve(
    State(state): State<AppState>,
    device: CurrentDevice,
    Path((id, conflict_id)): Path<(Uuid, Uuid)>,
    Json(request): Json<ResolveConflictRequest>,
) -> ApiResult<Json<MaterialMutationResponse>> {
    let resolution = mutations::parse_resolution(&request)?;
    let mutation = LibraryMutation::ResolveConflict { id: MaterialId(id), conflict_id, resolution };
    let applied = library::apply(state.store.as_ref(), state.bus.as_ref(), device.user_id, mutation).await?;
    let material = applied.material.as_ref().ok_or(ApiError::NotFound("material"))?;
    Ok(Json(MaterialMutationResponse {
        material: MaterialView::new(material, applied.progress.as_ref()),
        library_version: applied.library_version.0,
    }))
}
