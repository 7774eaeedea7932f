//! `/api/materials` and `/api/materials/{id}`.

use axum::extract::State;
use axum::http::StatusCode;
use shelf_api::{
    CreateMaterialRequest, DeletedResponse, ErrorBody, ListMaterialsQuery, MaterialMutationResponse, MaterialView,
    MaterialsPage, UpdateMaterialRequest,
};
use shelf_core::{LibraryMutation, MaterialId};
use shelf_store::Applied;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{CurrentDevice, Json, Path, Query};
use crate::service::library;
use crate::state::AppState;

fn mutation_response(applied: Applied) -> ApiResult<Json<MaterialMutationResponse>> {
    let material = applied.material.as_ref().ok_or(ApiError::NotFound("material"))?;
    Ok(Json(MaterialMutationResponse {
        material: MaterialView::new(material, applied.progress.as_ref()),
        library_version: applied.library_version.0,
    }))
}

/// Creates a material (optionally with initial progress) in one transaction.
#[utoipa::path(post, operation_id = "createMaterial", path = "/api/materials", tag = "materials", security(("bearer" = []), ("cookie" = [])),
    request_body = CreateMaterialRequest,
    responses((status = 201, body = MaterialMutationResponse),
        (status = 400, body = ErrorBody), (status = 409, description = "material_exists", body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 401, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    device: CurrentDevice,
    Json(request): Json<CreateMaterialRequest>,
) -> ApiResult<(StatusCode, Json<MaterialMutationResponse>)> {
    let mutation = library::parse_create(&request)?;
    let applied = library::apply(state.store.as_ref(), state.bus.as_ref(), device.user_id, mutation).await?;
    Ok((StatusCode::CREATED, mutation_response(applied)?))
}

/// The user's materials with their progress, ordered by id, paginated by `cursor`.
#[utoipa::path(get, operation_id = "listMaterials", path = "/api/materials", tag = "materials", security(("bearer" = []), ("cookie" = [])),
    params(ListMaterialsQuery),
    responses((status = 200, body = MaterialsPage), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    device: CurrentDevice,
    Query(query): Query<ListMaterialsQuery>,
) -> ApiResult<Json<MaterialsPage>> {
    let (items, next) = library::list(state.store.as_ref(), device.user_id, query.cursor.map(MaterialId), query.limit).await?;
    Ok(Json(MaterialsPage {
        items: items.iter().map(|(m, p)| MaterialView::new(m, p.as_ref())).collect(),
        next_cursor: next.map(|id| id.0),
    }))
}

/// One material with its progress.
#[utoipa::path(get, operation_id = "getMaterial", path = "/api/materials/{id}", tag = "materials", security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = MaterialView), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, device: CurrentDevice, Path(id): Path<Uuid>) -> ApiResult<Json<MaterialView>> {
    let (material, progress) = library::material(state.store.as_ref(), device.user_id, MaterialId(id)).await?;
    Ok(Json(MaterialView::new(&material, progress.as_ref())))
}

/// Partially updates a material, and optionally its progress, in one transaction. With
/// `If-Match: <libraryVersion>` (the version the client edited from) a stale edit is merged:
/// other fields' concurrent changes survive; if a changed text field overlaps a concurrent edit
/// nothing is written and the answer is 409 `edit_conflict` listing the conflicts.
#[utoipa::path(patch, operation_id = "updateMaterial", path = "/api/materials/{id}", tag = "materials", security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path), ("If-Match" = Option<i64>, Header, nullable = false, minimum = 0, maximum = 9223372036854775807i64, description = "library version the edit was made against")),
    request_body = UpdateMaterialRequest,
    responses((status = 200, body = MaterialMutationResponse), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "edit_conflict, with `conflicts`", body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    device: CurrentDevice,
    Path(id): Path<Uuid>,
    headers: axum::http::HeaderMap,
    Json(request): Json<UpdateMaterialRequest>,
) -> ApiResult<Json<MaterialMutationResponse>> {
    let mut mutation = library::parse_update(MaterialId(id), &request)?;
    if let LibraryMutation::UpdateMaterial { base_version, on_conflict, .. } = &mut mutation {
        *base_version = crate::extract::if_match_version(&headers)?;
        *on_conflict = shelf_core::OnConflict::Refuse;
    }
    let applied = library::apply(state.store.as_ref(), state.bus.as_ref(), device.user_id, mutation).await?;
    mutation_response(applied)
}

/// Deletes a material and its progress, leaving tombstones in the change feed.
#[utoipa::path(delete, operation_id = "deleteMaterial", path = "/api/materials/{id}", tag = "materials", security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = DeletedResponse), (status = 404, body = ErrorBody)))]
pub async fn delete(State(state): State<AppState>, device: CurrentDevice, Path(id): Path<Uuid>) -> ApiResult<Json<DeletedResponse>> {
    let mutation = LibraryMutation::DeleteMaterial { id: MaterialId(id), base_version: None };
    let applied = library::apply(state.store.as_ref(), state.bus.as_ref(), device.user_id, mutation).await?;
    Ok(Json(DeletedResponse { library_version: applied.library_version.0 }))
}
