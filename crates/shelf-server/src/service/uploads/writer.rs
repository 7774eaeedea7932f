//! One tus PATCH: the upload's only writer (spec AT6).
//!
//! A PATCH first claims the upload's lease in the database: a second PATCH, on this instance or
//! another, gets 423 `upload_locked` until the first releases it or, if it crashed, until the
//! lease lapses. The writer renews the lease while it writes and writes a chunk only after
//! confirming at least half a term is left, so a writer whose lease lapsed and was taken over
//! never writes again. Bytes go at explicit positions, never past `Upload-Length`; a new writer
//! first cuts the part file back to the recorded offset (dropping what a crashed writer left
//! unrecorded). When the last byte is durable the full length is recorded *before* hashing:
//! from then on nobody appends, so the file that is hashed is the file that is stored, and a
//! stored blob is never written again.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use shelf_blob::{BlobKey, BlobStore};
use shelf_core::UserId;
use shelf_store::{Store, UploadLease, UploadRecord};
use time::OffsetDateTime;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};
use uuid::Uuid;

use super::{io, part_path, remove_part};
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
    /// The offset last recorded in the database: bytes before it are durable.
    durable: u64,
}

impl Lease {
    /// Claims the upload for one writer: `UploadLocked` while another writer's lease is live.
    pub(super) async fn claim(store: Arc<dyn Store>, user: UserId, id: Uuid, term: std::time::Duration) -> ApiResult<(Self, UploadRecord)> {
        let term = time::Duration::try_from(term).map_err(|e| ApiError::Internal(e.into()))?;
        let now = now();
        let lease = UploadLease { token: Uuid::new_v4(), until: now + term };
        let upload = store.claim_upload(user, id, lease, now).await?;
        let durable = upload.offset;
        Ok((Self { store, id, token: lease.token, term, until: lease.until, durable }, upload))
    }

    /// Returns once the claim holds for at least half its term, renewing it when less is left;
    /// `UploadLocked` when it was lost. The writer writes only right after this.
    async fn ensure(&mut self) -> ApiResult<()> {
        let now = now();
        if self.until - now > self.term / 2 {
            return Ok(());
        }
        self.renew(self.durable, now).await
    }

    /// Records `offset` (already durable on disk) and renews the claim.
    async fn record(&mut self, offset: u64) -> ApiResult<()> {
        self.renew(offset, now()).await?;
        self.durable = offset;
        Ok(())
    }

    async fn renew(&mut self, offset: u64, now: OffsetDateTime) -> ApiResult<()> {
        let until = now + self.term;
        if !self.store.renew_upload(self.id, self.token, offset, until).await? {
            return Err(ApiError::UploadLocked);
        }
        self.until = until;
        Ok(())
    }

    /// Records `offset` and lets the next writer in.
    async fn release(self, offset: u64) -> ApiResult<()> {
        match self.store.release_upload(self.id, self.token, offset, now()).await? {
            true => Ok(()),
            false => Err(ApiError::UploadLocked),
        }
    }

    /// Deletes the staged bytes, then the upload (its quota reservation). In that order, so an
    /// interrupted discard leaves a record that garbage collection finds again, not stray bytes.
    pub(super) async fn discard(self, part: &Path) -> ApiResult<()> {
        remove_part(part).await?;
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
/// request is dropped, but the task still records what reached the disk and releases the lease
/// (spec AT5), instead of leaving the upload locked until the lease lapses.
pub async fn append<S, E>(state: &AppState, user: UserId, id: Uuid, offset: u64, body: S) -> ApiResult<u64>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Send + Unpin + 'static,
    E: Send + 'static,
{
    let writer = Writer {
        store: state.store.clone(),
        blobs: state.blobs.clone(),
        part: part_path(&state.settings.upload_dir, id),
        term: state.settings.upload_lease,
    };
    tokio::spawn(writer.run(user, id, offset, body)).await.map_err(|e| ApiError::Internal(e.into()))?
}

struct Writer {
    store: Arc<dyn Store>,
    blobs: Arc<dyn BlobStore>,
    part: PathBuf,
    term: std::time::Duration,
}

impl Writer {
    async fn run<S, E>(self, user: UserId, id: Uuid, offset: u64, body: S) -> ApiResult<u64>
    where
        S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
    {
        let (mut lease, upload) = Lease::claim(self.store.clone(), user, id, self.term).await?;
        if offset != upload.offset {
            lease.release(upload.offset).await?;
            return Err(ApiError::OffsetMismatch(offset, upload.offset));
        }
        let (durable, stopped) = receive(&mut lease, &self.part, &upload, body).await?;
        crate::metrics::upload_bytes(durable.saturating_sub(upload.offset));
        if stopped.is_none() && durable == upload.length {
            self.finish(lease, &upload).await?;
            crate::metrics::upload_completed();
            return Ok(durable);
        }
        lease.release(durable).await?;
        stopped.map_or(Ok(durable), Err)
    }

    async fn finish(&self, mut lease: Lease, upload: &UploadRecord) -> ApiResult<()> {
        lease.record(upload.length).await?;
        match self.verify_and_store(&mut lease, upload).await {
            Ok(()) => lease.finish().await,
            Err(ApiError::HashMismatch) => {
                lease.discard(&self.part).await?;
                Err(ApiError::HashMismatch)
            }
            Err(lost @ ApiError::UploadLocked) => Err(lost),
            Err(other) => {
                // E.g. the blob store is down: the bytes stay staged, and an empty PATCH at the
                // full offset verifies and stores them again.
                if let Err(error) = lease.release(upload.length).await {
                    tracing::warn!(%error, "could not release an upload after a failed finish; its lease will lapse");
                }
                Err(other)
            }
        }
    }

    async fn verify_and_store(&self, lease: &mut Lease, upload: &UploadRecord) -> ApiResult<()> {
        if sha256_of_file(self.part.clone()).await? != upload.sha256 {
            return Err(ApiError::HashMismatch);
        }
        lease.ensure().await?;
        if self.store.stored_blob(upload.user, &upload.sha256).await?.is_some() {
            // Already held: that copy has the same bytes and is never written again.
            return remove_part(&self.part).await;
        }
        let key = BlobKey { user: upload.user.0, sha256: upload.sha256.clone() };
        self.blobs.put_file(&key, &self.part, upload.length).await.map_err(ApiError::Blob)
    }
}

/// Writes the body into the part file from the upload's offset. Returns the offset now durable
/// on disk and, if the body could not be taken whole, why. `Err` only when the lease was lost:
/// then this writer records nothing more.
async fn receive<S, E>(lease: &mut Lease, part: &Path, upload: &UploadRecord, mut body: S) -> ApiResult<(u64, Option<ApiError>)>
where
    S: Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    let start = upload.offset;
    let mut file = match open_at(part, start).await {
        Ok(file) => file,
        Err(Staged::Short(on_disk)) => return Ok((on_disk, Some(ApiError::OffsetMismatch(start, on_disk)))),
        Err(Staged::Io(error)) => return Ok((start, Some(io(error)))),
    };
    let mut written = start;
    let mut stopped = None;
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break }; // a dropped connection keeps what was written
        if written + chunk.len() as u64 > upload.length {
            stopped = Some(shelf_core::ValidationError::new("body", "more bytes than Upload-Length").into());
            break;
        }
        match lease.ensure().await {
            Err(ApiError::UploadLocked) => return Err(ApiError::UploadLocked),
            Err(other) => {
                stopped = Some(other);
                break;
            }
            Ok(()) => {}
        }
        if let Err(error) = file.write_all(&chunk).await {
            stopped = Some(io(error));
            break;
        }
        written += chunk.len() as u64;
    }
    // Durable before recorded: a recorded offset never points past what a crash would keep.
    if let Err(error) = file.sync_data().await {
        return Ok((start, Some(io(error))));
    }
    Ok((written, stopped))
}

enum Staged {
    /// Fewer bytes are staged than recorded (lost in a crash): continue from there.
    Short(u64),
    Io(std::io::Error),
}

/// Opens the part file positioned at `offset`, cutting off bytes past it that no writer recorded.
async fn open_at(part: &Path, offset: u64) -> Result<tokio::fs::File, Staged> {
    let mut file = tokio::fs::OpenOptions::new().write(true).create(true).truncate(false).open(part).await.map_err(Staged::Io)?;
    let on_disk = file.metadata().await.map_err(Staged::Io)?.len();
    if on_disk < offset {
        return Err(Staged::Short(on_disk));
    }
    if on_disk > offset {
        file.set_len(offset).await.map_err(Staged::Io)?;
    }
    file.seek(SeekFrom::Start(offset)).await.map_err(Staged::Io)?;
    Ok(file)
}

async fn sha256_of_file(path: PathBuf) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut file = std::fs::File::open(path)?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(io)
}
