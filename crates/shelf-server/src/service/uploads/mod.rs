//! Resumable uploads (tus 1.0 core + creation + termination): spec AT1, AT2 and AT5–AT8.
//!
//! An upload's state lives in the database: owner, declared length and SHA-256, the offset
//! durably staged so far, and the lease of its one writer. Creation reserves the whole length
//! against the quota there, atomically, so the quota holds under concurrency and across
//! instances, and costs the same however many uploads other users have. The bytes are staged
//! through the blob store (`BlobStore::open_staged`: the local folder's `.staging/`, or S3
//! multipart uploads), where every instance reaches them, and hashed as they arrive; the hash
//! state and the blob store's staging state are recorded with the offset (ADR 0010), so a
//! resumed upload may land on any instance.
//!
//! - `writer`: one PATCH — claim the lease, stage and hash, record, verify, complete.
//! - `hasher`: the resumable SHA-256.
//! - `collect`: garbage collection, and the one-time back-fill of blob records.

mod collect;
mod hasher;
mod writer;

use shelf_blob::BlobStore;
use shelf_core::UserId;
use shelf_store::Store;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::service::auth::now;
use crate::state::AppState;

pub use collect::{backfill_stored_blobs, collect_garbage};
pub use writer::append;

/// Parses `Upload-Metadata` (`key base64,key base64`): `sha256` is required (64 hex digits).
pub fn parse_metadata(header: Option<&str>) -> ApiResult<(String, Option<String>)> {
    use base64::Engine;
    let mut sha256 = None;
    let mut filename = None;
    for pair in header.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        if !matches!(key, "sha256" | "filename") {
            continue; // tus lets clients send metadata the server does not use
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| shelf_core::ValidationError::new("Upload-Metadata", format!("{key} must be base64-encoded UTF-8")))?;
        match key {
            "sha256" => sha256 = Some(decoded),
            _ => filename = Some(decoded),
        }
    }
    let sha256 = sha256.map(|s| s.to_ascii_lowercase()).filter(|s| is_sha256(s)).ok_or_else(|| {
        shelf_core::ValidationError::new("Upload-Metadata", "must carry sha256 (64 hex digits, base64-encoded as tus requires)")
    })?;
    Ok((sha256, filename))
}

pub fn is_sha256(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Removes an upload's staged bytes, if any (the upload's record is already gone); `staging`
/// is the blob store's state as last recorded.
pub async fn remove_staged(blobs: &dyn BlobStore, id: Uuid, staging: Option<&str>) -> ApiResult<()> {
    blobs.abort_staged(id, staging).await.map_err(ApiError::Blob)
}

/// What a tus creation request declares.
pub struct NewUpload {
    pub length: u64,
    pub sha256: String,
    pub filename: Option<String>,
}

/// tus creation: checks the size limit, then records the upload and reserves its length against
/// the quota in one database transaction (413 `quota_exceeded` otherwise). No byte is stored yet.
pub async fn create(store: &dyn Store, user: UserId, upload: NewUpload, (max_file_size, quota): (u64, u64)) -> ApiResult<Uuid> {
    let NewUpload { length, sha256, filename } = upload;
    if length > max_file_size {
        return Err(ApiError::FileTooLarge(max_file_size));
    }
    let id = Uuid::now_v7();
    let record = shelf_store::NewUpload { id, user, length, sha256, filename, created_at: now() };
    store.create_upload(&record, quota).await?;
    Ok(id)
}

/// tus HEAD: (offset, length). The offset is what the last writer durably staged; a PATCH still
/// running is not counted until it ends.
pub async fn status(store: &dyn Store, user: UserId, id: Uuid) -> ApiResult<(u64, u64)> {
    let upload = store.upload(user, id).await?.ok_or(ApiError::NotFound("upload"))?;
    Ok((upload.offset, upload.length))
}

/// tus termination: deletes the staged bytes and the upload, releasing its reservation. Refused
/// with 423 `upload_locked` while a PATCH is writing it.
pub async fn terminate(state: &AppState, user: UserId, id: Uuid) -> ApiResult<()> {
    let (lease, _) = writer::Lease::claim(state.store.clone(), user, id, state.settings.upload_lease).await?;
    lease.discard(state.blobs.as_ref()).await
}
