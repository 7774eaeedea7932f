//! Uploads staged in the bucket (ADR 0010): full parts go into an S3 multipart upload aimed at
//! the blob's final key, and whatever is left at a flush (less than S3's 5 MiB minimum part) is
//! stored as a small tail object of its own, `.staging/<upload>/tail-<offset>`. The state a
//! flush returns — the multipart upload id, each part's ETag and the tail's key — is recorded by
//! the server with the offset, so the next writer, on any instance, reads the tail back and
//! continues. A tail key names its offset, so a writer that crashes after writing a tail but
//! before recording it can never overwrite the tail the recorded state points at.
//!
//! A multipart upload is unknown to S3's listing of objects, and a writer that crashes before
//! recording its state would leave its multipart upload (and parts) behind for good. So right
//! after creating one, the writer stores a small marker object beside the tails,
//! `.staging/<upload>/multipart-<uuid>`, naming the upload's path and id; abort and completion
//! read every marker but the recorded one and abort those multipart uploads. What is left is the
//! instant between S3 creating the upload and the marker being stored (README: a lifecycle rule).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::stream::FuturesOrdered;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use shelf_blob::{BlobError, BlobKey, StagedUpload};

use crate::map_err;

/// S3's minimum size of every part but the last.
pub(crate) const MIN_PART: usize = 5 * 1024 * 1024;
/// Parts are cut at this size while bytes stream in.
pub(crate) const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts one upload may have on their way while its next bytes are read, so the client's bytes
/// keep arriving while S3 takes the previous parts.
pub(crate) const PARTS_IN_FLIGHT: usize = 4;
/// Parts in flight beyond each upload's first, across all uploads of the instance: memory for
/// part buffers stays under (uploads + this) × [`PART_SIZE`], however many uploads run at once;
/// an upload that finds none free sends its parts one after another, as with a single part.
pub(crate) const EXTRA_PARTS: usize = 16;

/// A part on its way, sent by a task of its own so it progresses while the writer reads the
/// next bytes; resolves to its ETag. Dropping it (the writer gave up) stops the task.
struct PartUpload(JoinHandle<Result<String, BlobError>>);

impl Future for PartUpload {
    type Output = Result<String, BlobError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let stopped = |error: tokio::task::JoinError| Err(BlobError::Backend(format!("a part upload stopped: {error}")));
        Pin::new(&mut self.0).poll(cx).map(|joined| joined.unwrap_or_else(stopped))
    }
}

impl Drop for PartUpload {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the server records with the offset. Parts hold the first bytes in order, the tail the
/// rest (or nothing when the bytes end on a part boundary).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct State {
    /// The blob's final key: the multipart upload's location.
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    multipart: Option<String>,
    /// ETags of parts 1, 2, ….
    #[serde(default)]
    parts: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tail: Option<String>,
    /// The marker object of `multipart`: kept at completion, while every other marker's upload
    /// is aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    marker: Option<String>,
}

/// A marker's content: enough to abort the multipart upload without the recorded state.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    path: String,
    multipart: String,
}

const MARKER: &str = "multipart-";

fn staging_prefix(upload: uuid::Uuid) -> String {
    format!(".staging/{upload}/")
}

fn parse(state: Option<&str>) -> Result<Option<State>, BlobError> {
    state.map(|s| serde_json::from_str(s).map_err(|e| BlobError::Backend(format!("unreadable staging state: {e}")))).transpose()
}

pub(crate) async fn open(
    store: Arc<AmazonS3>,
    extra_parts: Arc<Semaphore>,
    upload: uuid::Uuid,
    key: &BlobKey,
    offset: u64,
    state: Option<&str>,
) -> Result<Box<dyn StagedUpload>, BlobError> {
    let state = parse(state)?.unwrap_or_else(|| State { path: key.path(), ..State::default() });
    let mut buffer = BytesMut::new();
    let mut stored = false;
    if let Some(tail) = &state.tail {
        match store.get(&ObjectPath::from(tail.as_str())).await {
            Ok(found) => buffer.extend_from_slice(&found.bytes().await.map_err(map_err)?),
            Err(object_store::Error::NotFound { .. }) => {
                // Completion deletes the tails after storing the blob; otherwise they are lost.
                match store.head(&ObjectPath::from(state.path.as_str())).await {
                    Ok(meta) if meta.size == offset => stored = true,
                    _ => return Err(BlobError::StagingLost(format!("tail object {tail} is gone"))),
                }
            }
            Err(other) => return Err(map_err(other)),
        }
    }
    let recorded_tail = state.tail.clone();
    let sending = FuturesOrdered::new();
    Ok(Box::new(S3Staged {
        store,
        upload,
        recorded_tail,
        state,
        buffer,
        offset,
        dirty: false,
        superseded: Vec::new(),
        stored,
        sending,
        extra_parts,
    }))
}

/// Removes the multipart upload (parts and all), every multipart upload a marker names, and
/// every staged tail, recorded or stray.
pub(crate) async fn abort(store: &AmazonS3, upload: uuid::Uuid, state: Option<&str>) -> Result<(), BlobError> {
    let state = parse(state)?.unwrap_or_default();
    if let Some(id) = &state.multipart {
        abort_multipart(store, &state.path, id).await?;
    }
    delete_staged_objects(store, upload, state.marker.as_deref()).await
}

async fn abort_multipart(store: &AmazonS3, path: &str, id: &str) -> Result<(), BlobError> {
    match store.abort_multipart(&ObjectPath::from(path), &id.to_owned()).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(other) => Err(map_err(other)),
    }
}

/// Deletes the upload's staged objects; a marker other than `keep` first has its multipart
/// upload aborted (a writer that crashed before recording it).
async fn delete_staged_objects(store: &AmazonS3, upload: uuid::Uuid, keep: Option<&str>) -> Result<(), BlobError> {
    let prefix = ObjectPath::from(staging_prefix(upload));
    let objects: Vec<object_store::ObjectMeta> = store.list(Some(&prefix)).try_collect().await.map_err(map_err)?;
    for object in objects {
        let is_marker = object.location.filename().is_some_and(|name| name.starts_with(MARKER));
        if is_marker && keep != Some(object.location.as_ref()) {
            match store.get(&object.location).await {
                Ok(found) => {
                    let bytes = found.bytes().await.map_err(map_err)?;
                    let marker: Marker = serde_json::from_slice(&bytes).map_err(|e| BlobError::Backend(format!("unreadable marker: {e}")))?;
                    abort_multipart(store, &marker.path, &marker.multipart).await?;
                }
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(other) => return Err(map_err(other)),
            }
        }
        match store.delete(&object.location).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(other) => return Err(map_err(other)),
        }
    }
    Ok(())
}

struct S3Staged {
    store: Arc<AmazonS3>,
    upload: uuid::Uuid,
    state: State,
    /// Bytes after the last part: the tail read back, then what was written since.
    buffer: BytesMut,
    offset: u64,
    /// Bytes were written since the last flush.
    dirty: bool,
    /// The tail the caller's record points at: kept until a newer state is recorded.
    recorded_tail: Option<String>,
    /// Tails no state flushed since needs; deleted once that state is recorded.
    superseded: Vec<String>,
    /// Opened after a completion: the blob is stored and nothing more may be written.
    stored: bool,
    /// Parts sent but not yet acknowledged, in part order; their ETags join `state.parts` as
    /// they arrive, and every flush and completion waits for all of them first.
    sending: FuturesOrdered<PartUpload>,
    /// Permits for parts beyond the first in flight, shared by the instance's uploads.
    extra_parts: Arc<Semaphore>,
}

impl S3Staged {
    fn path(&self) -> ObjectPath {
        ObjectPath::from(self.state.path.as_str())
    }

    /// Starts sending `bytes` as the next part (creating the multipart upload on the first one),
    /// waiting first for the oldest part if [`PARTS_IN_FLIGHT`] are on their way.
    async fn send_part(&mut self, bytes: Bytes) -> Result<(), BlobError> {
        let path = self.path();
        let id = match &self.state.multipart {
            Some(id) => id.clone(),
            None => {
                let id = self.store.create_multipart(&path).await.map_err(map_err)?;
                let marker = format!("{}{MARKER}{}", staging_prefix(self.upload), uuid::Uuid::new_v4().simple());
                let marked = Marker { path: self.state.path.clone(), multipart: id.clone() };
                let content = serde_json::to_vec(&marked).map_err(BlobError::backend)?;
                if let Err(error) = self.store.put(&ObjectPath::from(marker.as_str()), Bytes::from(content).into()).await {
                    // Unmarked, the upload could never be found again: abort it now.
                    if let Err(abort) = abort_multipart(&self.store, &self.state.path, &id).await {
                        tracing::warn!(%abort, upload = %self.upload, "could not abort an unmarked multipart upload");
                    }
                    return Err(map_err(error));
                }
                self.state.multipart = Some(id.clone());
                self.state.marker = Some(marker);
                id
            }
        };
        // The first part in flight is the upload's own; each further one needs a shared permit.
        let permit = loop {
            if self.sending.is_empty() {
                break None;
            }
            if self.sending.len() < PARTS_IN_FLIGHT {
                if let Ok(permit) = self.extra_parts.clone().try_acquire_owned() {
                    break Some(permit);
                }
            }
            self.next_sent().await?;
        };
        let (store, index) = (self.store.clone(), self.state.parts.len() + self.sending.len());
        self.sending.push_back(PartUpload(tokio::spawn(async move {
            let sent = store.put_part(&path, &id, index, bytes.into()).await.map(|part| part.content_id).map_err(map_err);
            drop(permit);
            sent
        })));
        Ok(())
    }

    /// Waits for the oldest part on its way and records its ETag.
    async fn next_sent(&mut self) -> Result<(), BlobError> {
        if let Some(etag) = self.sending.next().await {
            self.state.parts.push(etag?);
        }
        Ok(())
    }

    /// Waits until every part sent is acknowledged: only then may the state name them.
    async fn all_sent(&mut self) -> Result<(), BlobError> {
        while !self.sending.is_empty() {
            self.next_sent().await?;
        }
        Ok(())
    }

    /// Sends `bytes` as the next part and waits for every part, this one included.
    async fn put_part(&mut self, bytes: Bytes) -> Result<(), BlobError> {
        self.send_part(bytes).await?;
        self.all_sent().await
    }

    /// The tail is now part of a part or a newer tail: it may go once that is recorded.
    fn drop_tail(&mut self) {
        if let Some(tail) = self.state.tail.take() {
            self.superseded.push(tail);
        }
    }

    fn state_text(&self) -> Result<Option<String>, BlobError> {
        serde_json::to_string(&self.state).map(Some).map_err(BlobError::backend)
    }
}

#[async_trait]
impl StagedUpload for S3Staged {
    fn offset(&self) -> u64 {
        self.offset
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        if self.stored {
            return Err(BlobError::already_stored());
        }
        self.offset += chunk.len() as u64;
        self.dirty = true;
        self.buffer.extend_from_slice(&chunk);
        while self.buffer.len() >= PART_SIZE {
            let part = self.buffer.split_to(PART_SIZE).freeze();
            self.drop_tail();
            self.send_part(part).await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<Option<String>, BlobError> {
        if !self.dirty {
            return self.state_text();
        }
        self.all_sent().await?;
        self.drop_tail();
        if self.buffer.len() >= MIN_PART {
            let part = self.buffer.split().freeze();
            self.put_part(part).await?;
        } else if !self.buffer.is_empty() {
            let tail = format!("{}tail-{}", staging_prefix(self.upload), self.offset);
            self.store.put(&ObjectPath::from(tail.as_str()), self.buffer.clone().freeze().into()).await.map_err(map_err)?;
            self.superseded.retain(|t| *t != tail); // rewritten in place by a repeated flush
            self.state.tail = Some(tail);
        }
        self.dirty = false;
        self.state_text()
    }

    async fn recorded(&mut self) -> Result<(), BlobError> {
        if let Some(old) = self.recorded_tail.take() {
            if self.state.tail.as_ref() != Some(&old) {
                self.superseded.push(old);
            }
        }
        self.recorded_tail = self.state.tail.clone();
        for tail in std::mem::take(&mut self.superseded) {
            match self.store.delete(&ObjectPath::from(tail.as_str())).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                // Only space is lost: abort and completion sweep the upload's staging prefix.
                Err(error) => tracing::warn!(%error, tail, "could not delete a superseded upload tail"),
            }
        }
        Ok(())
    }

    async fn abort(self: Box<Self>) -> Result<(), BlobError> {
        let state = self.state_text()?;
        abort(&self.store, self.upload, state.as_deref()).await
    }

    async fn complete(mut self: Box<Self>) -> Result<(), BlobError> {
        if self.stored {
            return Ok(());
        }
        self.all_sent().await?;
        let path = self.path();
        let stored = match self.state.multipart.clone() {
            None => {
                let whole = self.buffer.split().freeze();
                self.store.put(&path, whole.into()).await.map(|_| ()).map_err(map_err)
            }
            Some(id) => {
                if !self.buffer.is_empty() {
                    let last = self.buffer.split().freeze();
                    self.put_part(last).await?;
                }
                let parts = self.state.parts.iter().map(|etag| PartId { content_id: etag.clone() }).collect();
                self.store.complete_multipart(&path, &id, parts).await.map(|_| ()).map_err(map_err)
            }
        };
        if let Err(error) = stored {
            // A repeated completion: the first one consumed the multipart upload.
            match self.store.head(&path).await {
                Ok(meta) if meta.size == self.offset => {}
                _ => return Err(error),
            }
        }
        if let Err(error) = delete_staged_objects(&self.store, self.upload, self.state.marker.as_deref()).await {
            tracing::warn!(%error, upload = %self.upload, "could not delete a stored upload's staged tails");
        }
        Ok(())
    }
}
