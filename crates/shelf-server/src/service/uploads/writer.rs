//! One tus PATCH: the upload's only writer (spec AT6, AT10).
//!
//! A PATCH first claims the upload's lease in the database: a second PATCH, on this instance or
//! another, gets 423 `upload_locked` until the first releases it or, if it crashed, until the
//! lease lapses. The writer renews the lease while it writes and writes a chunk only after
//! confirming at least half a term is left, so a writer whose lease lapsed and was taken over
//! never writes again. Bytes go to the blob store's staging (`BlobStore::open_staged`), never
//! past `Upload-Length`, and are hashed as they arrive. At the end of a PATCH the staged bytes
//! are made durable and then the offset, the hash state and the staging state are recorded in
//! one statement: the next writer, on any instance, continues from exactly that triple (bytes a
//! crashed writer staged past it are dropped). On the last byte the digest is compared without
//! re-reading anything; only a match is moved into the blob store, and a stored blob is never
//! written again.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use shelf_blob::{BlobError, BlobKey, BlobStore, StagedUpload};
use shelf_core::UserId;
use shelf_store::{Store, UploadLease, UploadProgress, UploadRecord};
use time::OffsetDateTime;
use uuid::Uuid;

use super::hasher::UploadHasher;
use crate::error::{ApiError, ApiResult};
use crate::service::auth::now;
use crate::state::AppState;

/// This writer's claim on one upload, as held in the database.
pub(super) struct Lease {
    store: Arc<dyn Store>,
    id: Uuid,
    token: Uuid,
    term: time::Duration,
    until: OffsetDateTime,
    /// The progress last recorded in the database: the staged bytes before its offset are durable.
    durable: UploadProgress,
}

impl Lease {
    /// Claims the upload for one writer: `UploadLocked` while another writer's lease is live.
    pub(super) async fn claim(store: Arc<dyn Store>, user: UserId, id: Uuid, term: std::time::Duration) -> ApiResult<(Self, UploadRecord)> {
        let term = time::Duration::try_from(term).map_err(|e| ApiError::Internal(e.into()))?;
        let now = now();
        let lease = UploadLease { token: Uuid::new_v4(), until: now + term };
        let upload = store.claim_upload(user, id, lease, now).await?;
        let durable = upload.progress();
        Ok((Self { store, id, token: lease.token, term, until: lease.until, durable }, upload))
    }

    /// Returns once the claim holds for at least half its term, renewing it when less is left;
    /// `UploadLocked` when it was lost. The writer writes only right after this.
    async fn ensure(&mut self) -> ApiResult<()> {
        let now = now();
        if self.until - now > self.term / 2 {
            return Ok(());
        }
        let until = now + self.term;
        if !self.store.renew_upload(self.id, self.token, &self.durable, until).await? {
            return Err(ApiError::UploadLocked);
        }
        self.until = until;
        Ok(())
    }

    /// Records `progress` (already durable in the staging) and lets the next writer in.
    async fn release(self, progress: &UploadProgress) -> ApiResult<()> {
        match self.store.release_upload(self.id, self.token, progress, now()).await? {
            true => Ok(()),
            false => Err(ApiError::UploadLocked),
        }
    }

    /// Lets the next writer in with nothing new recorded.
    async fn release_unchanged(self) -> ApiResult<()> {
        let durable = self.durable.clone();
        self.release(&durable).await
    }

    /// Deletes the staged bytes, then the upload (its quota reservation). In that order, so an
    /// interrupted discard leaves a record that garbage collection finds again, not stray bytes.
    pub(super) async fn discard(self, blobs: &dyn BlobStore) -> ApiResult<()> {
        blobs.abort_staged(self.id, self.durable.staging.as_deref()).await.map_err(ApiError::Blob)?;
        self.forget().await
    }

    /// Deletes the upload, whose staged bytes are already gone.
    async fn forget(self) -> ApiResult<()> {
        match self.store.discard_upload(self.id, self.token).await? {
            true => Ok(()),
            false => Err(ApiError::UploadLocked),
        }
    }

    /// The blob is durable: the upload becomes a stored blob in one transaction.
    async fn finish(self) -> ApiResult<()> {
        match self.store.finish_upload(self.id, self.token, now()).await? {
            true => Ok(()),
            false => Err(ApiError::UploadLocked),
        }
    }
}

/// tus PATCH: appends the body at `offset` as the upload's only writer, completing the upload on
/// its last byte; returns the new offset. Runs as its own task: if the client goes away the
/// request is dropped, but the task still records what was staged and releases the lease
/// (spec AT5), instead of leaving the upload locked until the lease lapses.
pub async fn append<S, E>(state: &AppState, user: UserId, id: Uuid, offset: u64, body: S) -> ApiResult<u64>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin + 'static,
    E: Send + 'static,
{
    let writer = Writer { store: state.store.clone(), blobs: state.blobs.clone(), term: state.settings.upload_lease };
    tokio::spawn(writer.run(user, id, offset, body)).await.map_err(|e| ApiError::Internal(e.into()))?
}

struct Writer {
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    term: std::time::Duration,
}

/// Why a PATCH stopped before the end of its body.
enum Stop {
    /// The client's fault (too many bytes): what was staged so far is kept.
    Client(ApiError),
    /// Staging failed: nothing past the recorded offset is trusted.
    Storage(ApiError),
}

impl Writer {
    async fn run<S, E>(self, user: UserId, id: Uuid, offset: u64, body: S) -> ApiResult<u64>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    {
        let (mut lease, upload) = Lease::claim(self.store.clone(), user, id, self.term).await?;
        if offset != upload.offset {
            lease.release_unchanged().await?;
            return Err(ApiError::OffsetMismatch(offset, upload.offset));
        }
        let Some((mut staged, mut hasher)) = self.open(&upload).await? else {
            return self.start_over(lease, &upload, offset).await;
        };
        let stopped = receive(&mut lease, staged.as_mut(), &mut hasher, &upload, body).await?;
        let written = staged.offset();
        crate::metrics::upload_bytes(written.saturating_sub(upload.offset));
        let stopped = match stopped {
            None if written == upload.length => {
                self.finish(lease, staged, &hasher, &upload).await?;
                crate::metrics::upload_completed();
                return Ok(written);
            }
            None => None,
            Some(Stop::Client(error)) => Some(error),
            Some(Stop::Storage(error)) => {
                lease.release_unchanged().await?;
                return Err(error);
            }
        };
        // Durable before recorded: a recorded offset never points past what a crash would keep.
        let staging = match staged.flush().await {
            Ok(staging) => staging,
            Err(error) => {
                lease.release_unchanged().await?;
                return Err(ApiError::Blob(error));
            }
        };
        lease.release(&UploadProgress { offset: written, hasher: Some(hasher.state()), staging }).await?;
        if let Err(error) = staged.recorded().await {
            tracing::warn!(%error, upload = %id, "could not remove superseded staged bytes");
        }
        stopped.map_or(Ok(written), Err)
    }

    /// Opens the staging and the hasher at the recorded offset; `None` when the recorded state
    /// cannot be continued (staged bytes lost, a hash state that does not parse).
    async fn open(&self, upload: &UploadRecord) -> ApiResult<Option<(Box<dyn StagedUpload>, UploadHasher)>> {
        let hasher = match UploadHasher::resume(upload.hasher.as_deref(), upload.offset) {
            Ok(hasher) => hasher,
            Err(error) => {
                tracing::warn!(%error, upload = %upload.id, "the upload's hash state is unusable; it starts over");
                return Ok(None);
            }
        };
        let key = BlobKey { user: upload.user.0, sha256: upload.sha256.clone() };
        match self.blobs.open_staged(upload.id, &key, upload.offset, upload.staging.as_deref()).await {
            Ok(staged) => Ok(Some((staged, hasher))),
            Err(BlobError::StagingLost(why)) => {
                tracing::warn!(why, upload = %upload.id, "the upload's staged bytes are lost; it starts over");
                Ok(None)
            }
            Err(other) => Err(ApiError::Blob(other)),
        }
    }

    /// Resets an upload whose staged bytes cannot be continued to offset 0 (the client resumes
    /// from HEAD's offset, as tus clients do after a 409).
    async fn start_over(&self, lease: Lease, upload: &UploadRecord, offset: u64) -> ApiResult<u64> {
        if let Err(error) = self.blobs.abort_staged(upload.id, upload.staging.as_deref()).await {
            tracing::warn!(%error, upload = %upload.id, "could not remove what is left of a lost staging");
        }
        lease.release(&UploadProgress::default()).await?;
        Err(ApiError::OffsetMismatch(offset, 0))
    }

    async fn finish(&self, mut lease: Lease, staged: Box<dyn StagedUpload>, hasher: &UploadHasher, upload: &UploadRecord) -> ApiResult<()> {
        if hasher.hex() != upload.sha256 {
            staged.abort().await.map_err(ApiError::Blob)?;
            lease.forget().await?;
            return Err(ApiError::HashMismatch);
        }
        lease.ensure().await?;
        let stored = if self.store.stored_blob(upload.user, &upload.sha256).await?.is_some() {
            // Already held: that copy has the same bytes and is never written again.
            staged.abort().await
        } else {
            staged.complete().await
        };
        if let Err(error) = stored {
            // E.g. the blob store is down: the upload stays at its recorded offset, and the
            // client resends from there (HEAD).
            if let Err(release) = lease.release_unchanged().await {
                tracing::warn!(%release, "could not release an upload after a failed finish; its lease will lapse");
            }
            return Err(ApiError::Blob(error));
        }
        lease.finish().await
    }
}

/// Stages the body after the upload's offset, hashing it as it goes. `Err` only when the lease
/// was lost: then this writer records nothing more.
async fn receive<S, E>(lease: &mut Lease, staged: &mut dyn StagedUpload, hasher: &mut UploadHasher, upload: &UploadRecord, mut body: S) -> ApiResult<Option<Stop>>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break }; // a dropped connection keeps what was staged
        if staged.offset() + chunk.len() as u64 > upload.length {
            return Ok(Some(Stop::Client(shelf_core::ValidationError::new("body", "more bytes than Upload-Length").into())));
        }
        match lease.ensure().await {
            Err(ApiError::UploadLocked) => return Err(ApiError::UploadLocked),
            Err(other) => return Ok(Some(Stop::Storage(other))),
            Ok(()) => {}
        }
        hasher.update(&chunk);
        if let Err(error) = staged.write(chunk).await {
            return Ok(Some(Stop::Storage(ApiError::Blob(error))));
        }
    }
    Ok(None)
}
