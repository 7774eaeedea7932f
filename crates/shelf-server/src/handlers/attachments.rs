//! `/api/materials/{id}/attachments`: attach, list, detach, download (with Range).

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use shelf_api::{AttachRequest, AttachResponse, AttachmentView, DeletedResponse, ErrorBody};
use shelf_blob::BlobKey;
use shelf_core::MaterialId;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{decimal, CurrentDevice, Json, Path};
use crate::service::attachments;
use crate::state::AppState;

/// Attaches an uploaded blob: one transaction that bumps the library version.
#[utoipa::path(post, operation_id = "attachFile", path = "/api/materials/{id}/attachments", tag = "attachments", security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)), request_body = AttachRequest,
    responses((status = 201, body = AttachResponse), (status = 404, description = "no such material, or blob not uploaded", body = ErrorBody)))]
pub async fn attach(
    State(state): State<AppState>,
    device: CurrentDevice,
    Path(id): Path<Uuid>,
    Json(request): Json<AttachRequest>,
) -> ApiResult<(StatusCode, Json<AttachResponse>)> {
    let applied = attachments::attach(&state, device.user_id, MaterialId(id), &request).await?;
    let attachment = applied.attachment.as_ref().ok_or_else(|| ApiError::Internal(anyhow::anyhow!("attach wrote no attachment")))?;
    Ok((StatusCode::CREATED, Json(AttachResponse { attachment: attachment.into(), library_version: applied.library_version.0 })))
}

/// The material's attachments.
#[utoipa::path(get, operation_id = "listAttachments", path = "/api/materials/{id}/attachments", tag = "attachments", security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = [AttachmentView]), (status = 404, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>, device: CurrentDevice, Path(id): Path<Uuid>) -> ApiResult<Json<Vec<AttachmentView>>> {
    crate::service::library::material(state.store.as_ref(), device.user_id, MaterialId(id)).await?;
    let items = state.store.attachments(device.user_id, MaterialId(id)).await?;
    Ok(Json(items.iter().map(AttachmentView::from).collect()))
}

/// Detaches (a tombstone in the feed). The blob is collected later if nothing else uses it.
#[utoipa::path(delete, operation_id = "detachAttachment", path = "/api/materials/{id}/attachments/{attachmentId}", tag = "attachments",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path), ("attachmentId" = Uuid, Path)),
    responses((status = 200, body = DeletedResponse), (status = 404, body = ErrorBody)))]
pub async fn detach(
    State(state): State<AppState>,
    device: CurrentDevice,
    Path((id, attachment)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<DeletedResponse>> {
    let applied = attachments::detach(&state, device.user_id, MaterialId(id), attachment).await?;
    Ok(Json(DeletedResponse { library_version: applied.library_version.0 }))
}

/// `bytes=a-b`, `bytes=a-` or `bytes=-n` → the half-open range, or 416.
fn parse_range(header: &str, size: u64) -> ApiResult<(u64, u64)> {
    let unsatisfiable = || ApiError::RangeNotSatisfiable(size);
    let number = |text: &str| decimal(text.trim()).ok_or_else(unsatisfiable);
    let spec = header.trim().strip_prefix("bytes=").ok_or_else(unsatisfiable)?;
    let (start, end) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let range = match (start.trim(), end.trim()) {
        ("", suffix) => (size.saturating_sub(number(suffix)?), size),
        (start, "") => (number(start)?, size),
        (start, end) => (number(start)?, number(end)?.saturating_add(1).min(size)),
    };
    if range.0 >= range.1 || range.0 >= size {
        return Err(unsatisfiable());
    }
    Ok(range)
}

/// Streams the file with its Content-Type and Content-Disposition; honours `Range` (206).
#[utoipa::path(get, operation_id = "downloadAttachment", path = "/api/materials/{id}/attachments/{attachmentId}/content", tag = "attachments",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = Uuid, Path), ("attachmentId" = Uuid, Path), ("Range" = Option<String>, Header)),
    responses((status = 200), (status = 206), (status = 404, body = ErrorBody), (status = 416, body = ErrorBody)))]
pub async fn content(
    State(state): State<AppState>,
    device: CurrentDevice,
    Path((id, attachment)): Path<(Uuid, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let found = state.store.attachments(device.user_id, MaterialId(id)).await?;
    let attachment = found.into_iter().find(|a| a.id == attachment).ok_or(ApiError::NotFound("attachment"))?;
    let size = u64::try_from(attachment.size).map_err(|e| ApiError::Internal(anyhow::anyhow!("stored attachment size {}: {e}", attachment.size)))?;
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(|r| parse_range(r, size)).transpose()?;
    let key = BlobKey { user: device.user_id.0, sha256: attachment.sha256.clone() };
    let stream = state.blobs.get(&key, range).await.map_err(ApiError::Blob)?;
    let ascii: String = attachment.filename.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let encoded: String = attachment
        .filename
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let disposition = format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}");
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: header::HeaderName, value: String| -> ApiResult<()> {
        headers.insert(name.clone(), super::header_value(name.as_str(), &value)?);
        Ok(())
    };
    set(headers, header::CONTENT_TYPE, attachment.content_type.clone())?;
    set(headers, header::CONTENT_DISPOSITION, disposition)?;
    set(headers, header::ACCEPT_RANGES, "bytes".into())?;
    // Stored files are user input: never let a browser sniff them into HTML or run their scripts.
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff".into())?;
    set(headers, header::CONTENT_SECURITY_POLICY, "sandbox".into())?;
    match range {
        Some((start, end)) => {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
            set(response.headers_mut(), header::CONTENT_RANGE, format!("bytes {start}-{}/{size}", end - 1))?;
            set(response.headers_mut(), header::CONTENT_LENGTH, (end - start).to_string())?;
        }
        None => set(response.headers_mut(), header::CONTENT_LENGTH, size.to_string())?,
    }
    Ok(response.into_response())
}
