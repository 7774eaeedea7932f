//! Where attachment bytes live: the [`BlobStore`] seam.
//!
//! Blobs are addressed by the SHA-256 of their content and stored per user (`<user>/<sha256>`),
//! so identical files of one user are stored once, and no user can learn whether another holds a
//! file. Uploads are staged and verified by the server first; [`BlobStore::put_file`] only moves a
//! verified file in and returns once it is durable, so a database row never points at a blob
//! that is not stored.

mod local;

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
}

impl BlobError {
    pub fn backend(error: impl std::fmt::Display) -> Self {
        BlobError::Backend(error.to_string())
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

    /// Every stored blob (for garbage collection).
    async fn list(&self) -> Result<Vec<(BlobKey, BlobMeta)>, BlobError>;
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
}
