//! Where attachment bytes live: the [`BlobStore`] seam.
//!
//! Blobs are addressed by the SHA-256 of their content and stored per user (`<user>/<sha256>`),
//! so identical files of one user are stored once, and no user can learn whether another holds a
//! file. Uploads are staged and verified by the server first; [`BlobStore::put_file`] only moves a
//! verified file in and returns once it is durable, so a database row never points at a blob
//! that is not stored.
//!
//! Resumable uploads are staged through the seam too ([`BlobStore::open_staged`]), where every
//! instance can reach them: the local folder's staging directory (shared disk) or S3 multipart
//! uploads. What an instance needs to continue someone else's staging is the offset plus a small
//! backend-defined [`StagedUpload::flush`] state, which the caller records in its database in the
//! same statement as the offset (ADR 0010).

mod local;
mod local_staged;

use std::path::Path;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

pub use local::LocalBlobStore;

/// A user's blob.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey {
    pub user: uuid::Uuid,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
}

impl BlobKey {
    pub fn path(&self) -> String {
        format!("{}/{}", self.user, self.sha256)
    }

    pub fn parse(path: &str) -> Option<Self> {
        let (user, sha256) = path.split_once('/')?;
        let valid = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        Some(Self { user: uuid::Uuid::parse_str(user).ok()?, sha256: sha256.to_owned() }).filter(|_| valid)
    }
}

/// Size and age of a stored blob.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobMeta {
    pub size: u64,
    pub modified: SystemTime,
}

pub type BlobStream = BoxStream<'static, Result<Bytes, BlobError>>;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob not found")]
    NotFound,
    #[error("blob storage failed: {0}")]
    Backend(String),
    /// Staged bytes that were recorded as durable are gone (a lost disk, an expired multipart
    /// upload): the upload can only start over.
    #[error("staged upload lost: {0}")]
    StagingLost(String),
}

impl BlobError {
    pub fn backend(error: impl std::fmt::Display) -> Self {
        BlobError::Backend(error.to_string())
    }

    /// A write to a staged upload whose blob is already stored (a repeated completion's handle).
    pub fn already_stored() -> Self {
        BlobError::Backend("the upload is already stored".into())
    }
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// "local" or "s3".
    fn name(&self) -> &'static str;

    /// Stores the verified file at `path` (`size` bytes) under `key`; durable when it returns.
    /// The file may be moved away.
    async fn put_file(&self, key: &BlobKey, path: &Path, size: u64) -> Result<(), BlobError>;

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>, BlobError>;

    /// The blob's bytes, or bytes `start..end` of it.
    async fn get(&self, key: &BlobKey, range: Option<(u64, u64)>) -> Result<BlobStream, BlobError>;

    /// Removes a blob; removing a missing blob is not an error.
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;

    /// Every stored blob (for garbage collection). Staged uploads are not blobs and not listed.
    async fn list(&self) -> Result<Vec<(BlobKey, BlobMeta)>, BlobError>;

    /// Continues the staged bytes of upload `upload` (to become `key`) at `offset`, from the
    /// `state` the last [`StagedUpload::flush`] returned with that offset (`None` for a new
    /// upload). Bytes staged past `offset` by a writer that never recorded them are dropped.
    async fn open_staged(&self, upload: uuid::Uuid, key: &BlobKey, offset: u64, state: Option<&str>) -> Result<Box<dyn StagedUpload>, BlobError>;

    /// Removes everything staged for `upload` (`state` as last recorded, if any); removing
    /// nothing is not an error.
    async fn abort_staged(&self, upload: uuid::Uuid, state: Option<&str>) -> Result<(), BlobError>;
}

/// One writer's handle on an upload's staged bytes. Written bytes become durable only at
/// [`flush`](StagedUpload::flush); the caller records the offset and the returned state after
/// that, never before.
#[async_trait]
pub trait StagedUpload: Send {
    /// Where the next byte goes: the opening offset plus every byte written.
    fn offset(&self) -> u64;

    /// Appends bytes after what is staged (buffered or written; durable only after `flush`).
    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError>;

    /// Makes every byte written so far durable and returns the state to record with
    /// [`offset`](StagedUpload::offset). Pieces the previous state needed and this one does not
    /// are removed by [`recorded`](StagedUpload::recorded), once the caller committed this one.
    async fn flush(&mut self) -> Result<Option<String>, BlobError>;

    /// The caller recorded the last flushed state: pieces only older states needed may go.
    async fn recorded(&mut self) -> Result<(), BlobError>;

    /// Stores everything written (flushed or not) as the blob; durable when it returns. Called
    /// again after a failure (with a handle opened from the recorded state), it succeeds once
    /// the blob is stored.
    async fn complete(self: Box<Self>) -> Result<(), BlobError>;

    /// Removes everything staged for the upload, including what this writer has not flushed
    /// (a hash mismatch, a blob already held).
    async fn abort(self: Box<Self>) -> Result<(), BlobError>;
}

/// The contract every BlobStore meets; run by each backend's tests.
#[doc(hidden)]
pub mod contract {
    #![allow(clippy::unwrap_used)] // A test suite: a failed unwrap is a failed test.
    use super::*;
    use futures::TryStreamExt;

    async fn read(store: &dyn BlobStore, key: &BlobKey, range: Option<(u64, u64)>) -> Vec<u8> {
        let chunks: Vec<Bytes> = store.get(key, range).await.unwrap().try_collect().await.unwrap();
        chunks.concat()
    }

    pub async fn put_get_range_list_delete(store: &dyn BlobStore, scratch: &Path) {
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let file = scratch.join("staged");
        std::fs::write(&file, &content).unwrap();
        let key = BlobKey { user: uuid::Uuid::new_v4(), sha256: "ab".repeat(32) };
        assert!(store.head(&key).await.unwrap().is_none());
        store.put_file(&key, &file, content.len() as u64).await.unwrap();
        assert_eq!(store.head(&key).await.unwrap().unwrap().size, content.len() as u64);
        assert_eq!(read(store, &key, None).await, content);
        assert_eq!(read(store, &key, Some((1000, 1010))).await, content[1000..1010]);
        assert!(store.list().await.unwrap().iter().any(|(k, m)| *k == key && m.size == content.len() as u64));
        let other = BlobKey { user: uuid::Uuid::new_v4(), sha256: key.sha256.clone() };
        assert!(store.head(&other).await.unwrap().is_none(), "blobs are per user");
        assert!(matches!(store.get(&other, None).await, Err(BlobError::NotFound)));
        store.delete(&key).await.unwrap();
        store.delete(&key).await.unwrap();
        assert!(store.head(&key).await.unwrap().is_none());
    }

    async fn write_all(staged: &mut dyn StagedUpload, bytes: &[u8], chunk: usize) {
        for piece in bytes.chunks(chunk.max(1)) {
            staged.write(Bytes::copy_from_slice(piece)).await.unwrap();
        }
    }

    /// Staging: writers on any instance continue from the recorded (offset, state), bytes
    /// written but never recorded are dropped, completion stores exactly the recorded bytes plus
    /// the last writer's, and a repeated completion succeeds. `big` exceeds any minimum part size.
    pub async fn staged_uploads_resume_complete_and_abort(store: &dyn BlobStore, other: &dyn BlobStore, big: usize) {
        let content: Vec<u8> = (0..big as u32 * 2 + 12_345).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let key = BlobKey { user: uuid::Uuid::new_v4(), sha256: "cd".repeat(32) };
        let upload = uuid::Uuid::new_v4();

        // A small first PATCH, durable on its own.
        let mut staged = store.open_staged(upload, &key, 0, None).await.unwrap();
        write_all(staged.as_mut(), &content[..1000], 300).await;
        assert_eq!(staged.offset(), 1000);
        let state = staged.flush().await.unwrap();
        staged.recorded().await.unwrap();
        drop(staged);

        // A writer that crashes: writes and flushes, but its state is never recorded.
        let mut lost = other.open_staged(upload, &key, 1000, state.as_deref()).await.unwrap();
        write_all(lost.as_mut(), &vec![0xEE; big + 10], big / 3).await;
        let _never_recorded = lost.flush().await.unwrap();
        drop(lost);

        // The next writer, on the other instance, continues from the recorded state.
        let mut staged = other.open_staged(upload, &key, 1000, state.as_deref()).await.unwrap();
        write_all(staged.as_mut(), &content[1000..big + 5000], 64 * 1024).await;
        let state = staged.flush().await.unwrap();
        staged.recorded().await.unwrap();
        drop(staged);
        assert!(store.head(&key).await.unwrap().is_none(), "nothing is visible before completion");

        let mut staged = store.open_staged(upload, &key, big as u64 + 5000, state.as_deref()).await.unwrap();
        write_all(staged.as_mut(), &content[big + 5000..], 1 << 20).await;
        assert_eq!(staged.offset(), content.len() as u64);
        let state = staged.flush().await.unwrap();
        staged.recorded().await.unwrap();
        staged.complete().await.unwrap();
        assert_eq!(read(store, &key, None).await, content);
        let again = other.open_staged(upload, &key, content.len() as u64, state.as_deref()).await.unwrap();
        again.complete().await.unwrap();
        assert_eq!(read(other, &key, None).await, content, "a repeated completion keeps the blob");
        store.abort_staged(upload, state.as_deref()).await.unwrap();
        assert_eq!(store.list().await.unwrap().iter().filter(|(k, _)| k.user == key.user).count(), 1, "staging is not listed");
        store.delete(&key).await.unwrap();

        // Abort removes what is staged; a new upload with the same id starts empty.
        let aborted = uuid::Uuid::new_v4();
        let mut staged = store.open_staged(aborted, &key, 0, None).await.unwrap();
        write_all(staged.as_mut(), &content[..big + 1], 1 << 20).await;
        let state = staged.flush().await.unwrap();
        write_all(staged.as_mut(), &content[..big + 1], 1 << 20).await;
        staged.abort().await.unwrap();
        other.abort_staged(aborted, state.as_deref()).await.unwrap();
        other.abort_staged(aborted, state.as_deref()).await.unwrap();
        assert!(store.head(&key).await.unwrap().is_none());
        let mut fresh = store.open_staged(aborted, &key, 0, None).await.unwrap();
        write_all(fresh.as_mut(), b"tiny", 4).await;
        fresh.flush().await.unwrap();
        fresh.complete().await.unwrap();
        assert_eq!(read(store, &key, None).await, b"tiny");
        store.delete(&key).await.unwrap();

        // An empty blob.
        let empty = store.open_staged(uuid::Uuid::new_v4(), &key, 0, None).await.unwrap();
        empty.complete().await.unwrap();
        assert_eq!(store.head(&key).await.unwrap().unwrap().size, 0);
        store.delete(&key).await.unwrap();
    }
}
