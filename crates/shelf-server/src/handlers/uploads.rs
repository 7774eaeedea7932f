//! tus 1.0 at `/api/uploads` (core, creation, termination) and `HEAD /api/blobs/{sha256}`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use shelf_api::ErrorBody;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{decimal, CurrentDevice, Path};
use crate::service::uploads;
use crate::state::AppState;

const TUS_VERSION: &str = "1.0.0";

fn tus_headers(extra: &[(&'static str, String)]) -> ApiResult<HeaderMap> {
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("tus-resumable"), HeaderValue::from_static(TUS_VERSION));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for (name, value) in extra {
        headers.insert(HeaderName::from_static(name), super::header_value(name, value)?);
    }
    Ok(headers)
}

/// A tus number header: ASCII digits only (`+5`, `-0`, ` 5` and `5.0` are refused).
fn number(headers: &HeaderMap, name: &'static str) -> ApiResult<u64> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .and_then(decimal)
        .ok_or_else(|| shelf_core::ValidationError::new(name, "must be a non-negative integer (digits only)").into())
}

/// What this server supports (tus discovery).
#[utoipa::path(options, operation_id = "uploadOptions", path = "/api/uploads", tag = "uploads", responses((status = 204)))]
pub async fn options(State(state): State<AppState>) -> ApiResult<Response> {
    let headers = tus_headers(&[
        ("tus-version", TUS_VERSION.into()),
        ("tus-extension", "creation,termination".into()),
        ("tus-max-size", state.settings.max_file_size.to_string()),
    ])?;
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// Creates an upload: `Upload-Length` and `Upload-Metadata` with `sha256` (and optionally
/// `filename`). The size limit is checked and the length reserved against the quota here,
/// atomically, before any byte is stored.
#[utoipa::path(post, operation_id = "createUpload", path = "/api/uploads", tag = "uploads", security(("bearer" = []), ("cookie" = [])),
    params(("Upload-Length" = u64, Header, minimum = 0, description = "the file's size in bytes (digits only)"),
        ("Upload-Metadata" = String, Header, description = "tus metadata: `sha256 <base64 of the 64 hex digits>` and optionally `filename <base64>`")),
    responses((status = 201, description = "Location: the upload's URL"),
        (status = 413, description = "file_too_large or quota_exceeded", body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn create(State(state): State<AppState>, device: CurrentDevice, headers: HeaderMap) -> ApiResult<Response> {
    let length = number(&headers, "upload-length")?;
    let (sha256, filename) = uploads::parse_metadata(headers.get("upload-metadata").and_then(|v| v.to_str().ok()))?;
    let settings = &state.settings;
    let upload = uploads::NewUpload { length, sha256, filename };
    let limits = (settings.max_file_size, settings.user_quota);
    let id = uploads::create(state.store.as_ref(), device.user_id, upload, limits).await?;
    let headers = tus_headers(&[("location", format!("/api/uploads/{id}")), ("upload-offset", "0".into())])?;
    Ok((StatusCode::CREATED, headers).into_response())
}

/// How much of the upload is stored: continue from `Upload-Offset`.
#[utoipa::path(head, operation_id = "getUploadOffset", path = "/api/uploads/{uploadId}", tag = "uploads", security(("bearer" = []), ("cookie" = [])),
    params(("uploadId" = Uuid, Path)), responses((status = 200), (status = 404)))]
pub async fn head(State(state): State<AppState>, device: CurrentDevice, Path(id): Path<Uuid>) -> ApiResult<Response> {
    let (offset, length) = uploads::status(state.store.as_ref(), device.user_id, id).await?;
    let headers = tus_headers(&[("upload-offset", offset.to_string()), ("upload-length", length.to_string())])?;
    Ok((StatusCode::OK, headers).into_response())
}

/// Appends bytes at `Upload-Offset` (`Content-Type: application/offset+octet-stream`), streamed
/// to disk by the upload's only writer: 423 `upload_locked` while another PATCH writes it. On
/// the last byte the SHA-256 is verified: 422 `hash_mismatch` discards the upload.
#[utoipa::path(patch, operation_id = "appendUpload", path = "/api/uploads/{uploadId}", tag = "uploads", security(("bearer" = []), ("cookie" = [])),
    params(("uploadId" = Uuid, Path), ("Upload-Offset" = u64, Header, minimum = 0, description = "where these bytes start (digits only)")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses((status = 204), (status = 409, description = "offset_mismatch", body = ErrorBody),
        (status = 422, description = "hash_mismatch", body = ErrorBody),
        (status = 423, description = "upload_locked", body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    device: CurrentDevice,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type != "application/offset+octet-stream" {
        return Err(ApiError::BadRequest(
            shelf_api::ErrorCode::UnsupportedMediaType,
            "send Content-Type: application/offset+octet-stream".into(),
        ));
    }
    let offset = number(&headers, "upload-offset")?;
    let stream = body.into_data_stream();
    let written = uploads::append(&state, device.user_id, id, offset, stream).await?;
    Ok((StatusCode::NO_CONTENT, tus_headers(&[("upload-offset", written.to_string())])?).into_response())
}

/// Abandons an upload (tus termination), releasing its quota; 423 while a PATCH writes it.
#[utoipa::path(delete, operation_id = "terminateUpload", path = "/api/uploads/{uploadId}", tag = "uploads", security(("bearer" = []), ("cookie" = [])),
    params(("uploadId" = Uuid, Path)),
    responses((status = 204), (status = 404), (status = 423, description = "upload_locked", body = ErrorBody)))]
pub async fn terminate(State(state): State<AppState>, device: CurrentDevice, Path(id): Path<Uuid>) -> ApiResult<Response> {
    uploads::terminate(&state, device.user_id, id).await?;
    Ok((StatusCode::NO_CONTENT, tus_headers(&[])?).into_response())
}

/// 200 (with the size) if the user already holds this blob, attached or not: no upload needed.
#[utoipa::path(head, operation_id = "headBlob", path = "/api/blobs/{sha256}", tag = "uploads", security(("bearer" = []), ("cookie" = [])),
    params(("sha256" = String, Path)), responses((status = 200), (status = 404)))]
pub async fn blob(State(state): State<AppState>, device: CurrentDevice, Path(sha256): Path<String>) -> ApiResult<Response> {
    if !uploads::is_sha256(&sha256) {
        return Err(ApiError::NotFound("blob"));
    }
    let stored = state.store.stored_blob(device.user_id, &sha256).await?.ok_or(ApiError::NotFound("blob"))?;
    Ok((StatusCode::OK, [(header::CONTENT_LENGTH, stored.size.to_string())]).into_response())
}
