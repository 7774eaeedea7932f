//! Garbage collection (spec AT4, AT7) and the one-time back-fill of blob records.
//!
//! Order matters for never losing a referenced blob: a blob's record is deleted first, in one
//! transaction with the check that no attachment and no upload in flight of that user points at
//! it, and only then its bytes. Bytes whose deletion was interrupted (or stored by an upload
//! whose finish failed) are left without a record; the sweep of the blob store removes them.
//! An abandoned upload's staged bytes go with it (on S3: its multipart upload and tails).

use std::time::{Duration, SystemTime};

use shelf_blob::{BlobKey, BlobStore};
use shelf_core::UserId;
use shelf_store::{Store, StoredBlob};

use super::writer::Lease;
use crate::error::{ApiError, ApiResult};
use crate::service::auth::now;
use crate::state::AppState;

/// Records every blob already in the blob store, once per database: blobs stored before blob
/// records existed then count against the quota and are found by `HEAD /api/blobs/{sha256}`.
/// Existing records are kept; blobs of unknown users are left to the sweep.
pub async fn backfill_stored_blobs(store: &dyn Store, blobs: &dyn BlobStore) -> ApiResult<u64> {
    if store.stored_blobs_backfilled().await? {
        return Ok(0);
    }
    let records: Vec<(UserId, StoredBlob)> = blobs
        .list()
        .await
        .map_err(ApiError::Blob)?
        .into_iter()
        .map(|(key, meta)| {
            let stored_at = shelf_core::truncate_to_micros(meta.modified.into());
            (UserId(key.user), StoredBlob { sha256: key.sha256, size: meta.size, stored_at })
        })
        .collect();
    Ok(store.backfill_stored_blobs(&records).await?)
}

/// Removes uploads untouched for longer than `grace` and blobs nothing has pointed at for that
/// long, releasing their quota. The grace protects a blob between its upload and its attach.
pub async fn collect_garbage(state: &AppState, grace: Duration) -> ApiResult<u64> {
    let store = &state.store;
    let now = now();
    let cutoff = now - time::Duration::try_from(grace).map_err(|e| ApiError::Internal(e.into()))?;
    let mut removed = 0;
    for (user, id) in store.abandoned_uploads(cutoff, now).await? {
        // Claimed first: a writer that started since the listing keeps its upload.
        match Lease::claim(store.clone(), user, id, state.settings.upload_lease).await {
            Ok((lease, _)) => lease.discard(state.blobs.as_ref()).await?,
            Err(ApiError::UploadLocked | ApiError::NotFound(_)) => continue,
            Err(other) => return Err(other),
        }
        removed += 1;
    }
    for (user, sha256) in store.collect_unreferenced_blobs(cutoff).await? {
        state.blobs.delete(&BlobKey { user: user.0, sha256 }).await.map_err(ApiError::Blob)?;
        removed += 1;
    }
    let unrecorded_before = SystemTime::now().checked_sub(grace).unwrap_or(SystemTime::UNIX_EPOCH);
    for (key, meta) in state.blobs.list().await.map_err(ApiError::Blob)? {
        if meta.modified > unrecorded_before {
            continue;
        }
        let user = UserId(key.user);
        if store.stored_blob(user, &key.sha256).await?.is_none() && !store.blob_referenced(user, &key.sha256).await? {
            state.blobs.delete(&key).await.map_err(ApiError::Blob)?;
            removed += 1;
        }
    }
    Ok(removed)
}
