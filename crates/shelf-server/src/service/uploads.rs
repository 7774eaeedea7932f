//! Resumable uploads (tus 1.0 core + creation + termination), staged on local disk.
//!
//! An upload is two files in the upload folder: `<id>.json` (owner, declared length and
//! SHA-256) and `<id>.part` (the bytes so far). The part file's length *is* the offset, so a
//! dropped connection loses nothing that reached the disk and a restart keeps every upload.
//! When the last byte arrives the whole file is hashed; a match moves it into the blob store
//! (durably) before anything can point at it, a mismatch discards it.

use std::path::{Path, PathBuf};

use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use shelf_blob::{BlobKey, BlobStore};
use shelf_core::UserId;
use shelf_store::Store;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadMeta {
    pub user: Uuid,
    pub length: u64,
    pub sha256: String,
    pub filename: Option<String>,
    /// Unix seconds, for garbage collection of abandoned uploads.
    pub created: i64,
}

fn paths(dir: &Path, id: Uuid) -> (PathBuf, PathBuf) {
    (dir.join(format!("{id}.json")), dir.join(format!("{id}.part")))
}

fn io(error: std::io::Error) -> ApiError {
    ApiError::Internal(error.into())
}

/// Parses `Upload-Metadata` (`key base64,key base64`): `sha256` is required (64 hex digits).
pub fn parse_metadata(header: Option<&str>) -> ApiResult<(String, Option<String>)> {
    use base64::Engine;
    let mut sha256 = None;
    let mut filename = None;
    for pair in header.unwrap_or("").split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once(' ').unwrap_or((pair, ""));
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        match key {
            "sha256" => sha256 = decoded,
            "filename" => filename = decoded,
            _ => {}
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

async fn read_meta(dir: &Path, id: Uuid, user: UserId) -> ApiResult<UploadMeta> {
    let (meta_path, _) = paths(dir, id);
    let text = match tokio::fs::read_to_string(&meta_path).await {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ApiError::NotFound("upload")),
        Err(e) => return Err(io(e)),
    };
    let meta: UploadMeta = serde_json::from_str(&text).map_err(|e| ApiError::Internal(e.into()))?;
    if meta.user != user.0 {
        return Err(ApiError::NotFound("upload"));
    }
    Ok(meta)
}

/// Bytes reserved by the user's unfinished uploads.
async fn pending_bytes(dir: &Path, user: UserId) -> ApiResult<u64> {
    let mut total = 0;
    let mut entries = tokio::fs::read_dir(dir).await.map_err(io)?;
    while let Some(entry) = entries.next_entry().await.map_err(io)? {
        if entry.path().extension().is_some_and(|e| e == "json") {
            if let Ok(meta) = serde_json::from_str::<UploadMeta>(&tokio::fs::read_to_string(entry.path()).await.unwrap_or_default()) {
                if meta.user == user.0 {
                    total += meta.length;
                }
            }
        }
    }
    Ok(total)
}

/// What a tus creation request declares.
pub struct NewUpload {
    pub length: u64,
    pub sha256: String,
    pub filename: Option<String>,
}

/// tus creation: checks the size limit and the quota before a byte is stored.
pub async fn create(
    store: &dyn Store,
    dir: &Path,
    user: UserId,
    upload: NewUpload,
    (max_file_size, quota): (u64, u64),
) -> ApiResult<Uuid> {
    let NewUpload { length, sha256, filename } = upload;
    if length > max_file_size {
        return Err(ApiError::FileTooLarge(max_file_size));
    }
    let used = u64::try_from(store.attached_bytes(user).await?).unwrap_or(0) + pending_bytes(dir, user).await?;
    if used.saturating_add(length) > quota {
        return Err(ApiError::QuotaExceeded(quota));
    }
    let id = Uuid::now_v7();
    let (meta_path, part_path) = paths(dir, id);
    let created = time::OffsetDateTime::now_utc().unix_timestamp();
    let meta = UploadMeta { user: user.0, length, sha256, filename, created };
    tokio::fs::File::create(&part_path).await.map_err(io)?;
    tokio::fs::write(&meta_path, serde_json::to_vec(&meta).map_err(|e| ApiError::Internal(e.into()))?).await.map_err(io)?;
    Ok(id)
}

/// tus HEAD: (offset, length).
pub async fn status(dir: &Path, id: Uuid, user: UserId) -> ApiResult<(u64, u64)> {
    let meta = read_meta(dir, id, user).await?;
    let (_, part_path) = paths(dir, id);
    let offset = tokio::fs::metadata(&part_path).await.map_err(io)?.len();
    Ok((offset, meta.length))
}

/// tus PATCH: appends the body at `offset`; completes the upload on its last byte.
pub async fn append<S, E>(
    blobs: &dyn BlobStore,
    dir: &Path,
    id: Uuid,
    user: UserId,
    offset: u64,
    mut body: S,
) -> ApiResult<u64>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let meta = read_meta(dir, id, user).await?;
    let (_, part_path) = paths(dir, id);
    let stored = tokio::fs::metadata(&part_path).await.map_err(io)?.len();
    if stored != offset {
        return Err(ApiError::OffsetMismatch(offset, stored));
    }
    let mut file = tokio::fs::OpenOptions::new().append(true).open(&part_path).await.map_err(io)?;
    let mut written = stored;
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break }; // a dropped connection keeps what was written
        if written + chunk.len() as u64 > meta.length {
            return Err(shelf_core::ValidationError::new("body", "more bytes than Upload-Length").into());
        }
        file.write_all(&chunk).await.map_err(io)?;
        written += chunk.len() as u64;
    }
    file.flush().await.map_err(io)?;
    drop(file);
    if written == meta.length {
        finish(blobs, dir, id, &meta).await?;
    }
    Ok(written)
}

async fn finish(blobs: &dyn BlobStore, dir: &Path, id: Uuid, meta: &UploadMeta) -> ApiResult<()> {
    let (meta_path, part_path) = paths(dir, id);
    let hashed = part_path.clone();
    let digest = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut file = std::fs::File::open(hashed)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(io)?;
    if digest != meta.sha256 {
        let _ = tokio::fs::remove_file(&part_path).await;
        let _ = tokio::fs::remove_file(&meta_path).await;
        return Err(ApiError::HashMismatch);
    }
    let key = BlobKey { user: meta.user, sha256: meta.sha256.clone() };
    blobs.put_file(&key, &part_path, meta.length).await.map_err(ApiError::Blob)?;
    let _ = tokio::fs::remove_file(&part_path).await;
    tokio::fs::remove_file(&meta_path).await.map_err(io)?;
    Ok(())
}

/// tus termination.
pub async fn terminate(dir: &Path, id: Uuid, user: UserId) -> ApiResult<()> {
    read_meta(dir, id, user).await?;
    let (meta_path, part_path) = paths(dir, id);
    let _ = tokio::fs::remove_file(&part_path).await;
    tokio::fs::remove_file(&meta_path).await.map_err(io)?;
    Ok(())
}

/// Removes uploads abandoned for longer than `grace`.
pub async fn collect_abandoned(dir: &Path, grace: std::time::Duration) -> ApiResult<u64> {
    let cutoff = time::OffsetDateTime::now_utc().unix_timestamp() - grace.as_secs() as i64;
    let mut removed = 0;
    let mut entries = tokio::fs::read_dir(dir).await.map_err(io)?;
    while let Some(entry) = entries.next_entry().await.map_err(io)? {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let Ok(meta) = serde_json::from_str::<UploadMeta>(&tokio::fs::read_to_string(&path).await.unwrap_or_default()) else {
            continue;
        };
        if meta.created < cutoff {
            let _ = tokio::fs::remove_file(path.with_extension("part")).await;
            let _ = tokio::fs::remove_file(&path).await;
            removed += 1;
        }
    }
    Ok(removed)
}
