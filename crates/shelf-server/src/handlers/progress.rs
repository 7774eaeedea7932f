//! `PUT` and `DELETE /api/materials/{id}/progress`.

use axum::extract::State;
use shelf_api::{DeletedResponse, ErrorBody, ProgressInput, ProgressMutationResponse, ProgressView};
use shelf_core::{LibraryMutation, MaterialId};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{CurrentDevice, Json, Path};
use crate::service::library;
use crate::state::AppState;

/// Sets progress fields; `studySecondsDelta` adds to the study-time counter. With
/// `If-Match: <libraryVersion>` older than the progress, the sync merge rules apply (percent never
/// goes backwards, completion sticks, position follows the most recent session) unless `reset`.
#[utoipa::path(put, operation_id = "putProgress", path = "/api/materials/{id}/progress", tag = "progress", security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, maximum = 9223372036854775807i64, description = "library version the edit was made against")),
    request_body = ProgressInput,
    responses((status = 200, body = ProgressMutationResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    device: CurrentDevice,
    Path(id): Path<Uuid>,
    headers: axum::http::HeaderMap,
    Json(input): Json<ProgressInput>,
) -> ApiResult<Json<ProgressMutationResponse>> {
    let base_version = crate::extract::if_match_version(&headers)?;
    let update = library::parse_progress(&input)?;
    let mutation = LibraryMutation::SetProgress { material_id: MaterialId(id), update, base_version };
    let applied = library::apply(state.store.as_ref(), state.bus.as_ref(), device.user_id, mutation).await?;
    let progress = applied.progress.as_ref().ok_or(ApiError::NotFound("progress"))?;
    Ok(Json(ProgressMutationResponse { progress: ProgressView::from(progress), library_version: applied.library_version.0 }))
}

/// Removes a material's progress.
#[utoipa::path(delete, operation_id = "deleteProgress", path = "/api/materials/{id}/progress", tag = "progress", security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = DeletedResponse), (status = 404, body = ErrorBody)))]
pub async fn delete(State(state): State<AppState>, device: CurrentDevice, Path(id): Path<Uuid>) -> ApiResult<Json<DeletedResponse>> {
    let mutation = LibraryMutation::DeleteProgress { material_id: MaterialId(id) };
    let applied = library::apply(state.store.as_ref(), state.bus.as_ref(), device.user_id, mutation).await?;
    Ok(Json(DeletedResponse { library_version: applied.library_version.0 }))
}
