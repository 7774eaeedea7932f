//! Blobs as files in a folder: the embedded default. Uploads are staged in `<root>/.staging/`
//! (`<upload id>.part`): on the same filesystem as the blobs, so completing one is an atomic
//! rename, and shared by every instance that shares the folder.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::local_staged::{durable_rename, LocalStaged};
use crate::{BlobError, BlobKey, BlobMeta, BlobStore, BlobStream, StagedUpload};

/// The staging folder inside the root; not a user id, so [`BlobStore::list`] never parses it.
const STAGING: &str = ".staging";

/// Read size for downloads: the default 4 KiB made a 100 MiB download 4× slower.
const CHUNK: usize = 256 * 1024;

pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(BlobError::backend)?;
        Ok(Self { root })
    }

    fn file(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.user.to_string()).join(&key.sha256)
    }

    fn part(&self, upload: uuid::Uuid) -> PathBuf {
        self.root.join(STAGING).join(format!("{upload}.part"))
    }
}

pub(crate) fn not_found_as_none<T>(result: std::io::Result<T>) -> Result<Option<T>, BlobError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BlobError::backend(e)),
    }
}

#[async_trait]
impl BlobStore for LocalBlobStore {
    fn name(&self) -> &'static str {
        "local"
    }

    async fn put_file(&self, key: &BlobKey, path: &Path, _size: u64) -> Result<(), BlobError> {
        let target = self.file(key);
        let source = path.to_path_buf();
        // Durable before visible.
        tokio::task::spawn_blocking(move || durable_rename(&source, &target))
            .await
        .map_err(BlobError::backend)?
        .map_err(BlobError::backend)
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>, BlobError> {
        let Some(meta) = not_found_as_none(tokio::fs::metadata(self.file(key)).await)? else { return Ok(None) };
        Ok(Some(BlobMeta { size: meta.len(), modified: meta.modified().map_err(BlobError::backend)? }))
    }

    async fn get(&self, key: &BlobKey, range: Option<(u64, u64)>) -> Result<BlobStream, BlobError> {
        let mut file = not_found_as_none(tokio::fs::File::open(self.file(key)).await)?.ok_or(BlobError::NotFound)?;
        let stream = match range {
            Some((start, end)) => {
                file.seek(SeekFrom::Start(start)).await.map_err(BlobError::backend)?;
                tokio_util::io::ReaderStream::with_capacity(file.take(end.saturating_sub(start)), CHUNK).boxed()
            }
            None => tokio_util::io::ReaderStream::with_capacity(file, CHUNK).boxed(),
        };
        Ok(stream.map(|chunk| chunk.map_err(BlobError::backend)).boxed())
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        not_found_as_none(tokio::fs::remove_file(self.file(key)).await)?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<(BlobKey, BlobMeta)>, BlobError> {
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<Vec<(BlobKey, BlobMeta)>> {
            let mut found = Vec::new();
            for user in std::fs::read_dir(&root)? {
                let user = user?;
                if !user.file_type()?.is_dir() {
                    continue;
                }
                for blob in std::fs::read_dir(user.path())? {
                    let blob = blob?;
                    let path = format!("{}/{}", user.file_name().to_string_lossy(), blob.file_name().to_string_lossy());
                    if let Some(key) = BlobKey::parse(&path) {
                        let meta = blob.metadata()?;
                        found.push((key, BlobMeta { size: meta.len(), modified: meta.modified()? }));
                    }
                }
            }
            Ok(found)
        })
        .await
        .map_err(BlobError::backend)?
        .map_err(BlobError::backend)
    }

    async fn open_staged(&self, upload: uuid::Uuid, key: &BlobKey, offset: u64, _state: Option<&str>) -> Result<Box<dyn StagedUpload>, BlobError> {
        let (part, target) = (self.part(upload), self.file(key));
        let existing = not_found_as_none(tokio::fs::metadata(&part).await)?;
        if existing.is_none() && offset > 0 {
            // Completed already (the part was renamed into place), or lost.
            return match not_found_as_none(tokio::fs::metadata(&target).await)? {
                Some(stored) if stored.len() == offset => Ok(Box::new(LocalStaged::stored(part, target, offset))),
                _ => Err(BlobError::StagingLost(format!("{} is missing", part.display()))),
            };
        }
        if let Some(dir) = part.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(BlobError::backend)?;
        }
        let mut file = tokio::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&part).await.map_err(BlobError::backend)?;
        let on_disk = file.metadata().await.map_err(BlobError::backend)?.len();
        if on_disk < offset {
            return Err(BlobError::StagingLost(format!("{} holds {on_disk} bytes, {offset} were recorded", part.display())));
        }
        if on_disk > offset {
            file.set_len(offset).await.map_err(BlobError::backend)?; // never recorded: dropped
        }
        file.seek(SeekFrom::Start(offset)).await.map_err(BlobError::backend)?;
        Ok(Box::new(LocalStaged::open(file.into_std().await, part, target, offset)))
    }

    async fn abort_staged(&self, upload: uuid::Uuid, _state: Option<&str>) -> Result<(), BlobError> {
        not_found_as_none(tokio::fs::remove_file(self.part(upload)).await)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn local_store_meets_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::LocalBlobStore::new(dir.path().join("blobs")).unwrap();
        crate::contract::put_get_range_list_delete(&store, dir.path()).await;
    }

    /// Two stores over one folder stand for two instances sharing a disk.
    #[tokio::test]
    async fn local_staging_meets_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let one = super::LocalBlobStore::new(dir.path()).unwrap();
        let two = super::LocalBlobStore::new(dir.path()).unwrap();
        crate::contract::staged_uploads_resume_complete_and_abort(&one, &two, 300_000).await;
    }

    /// The same with writes of several 1 MiB batches, so batches are in flight while the writer
    /// takes more bytes, and a crashed writer's flushed batches lie past the recorded offset.
    #[tokio::test]
    async fn local_staging_meets_the_contract_across_batches() {
        let dir = tempfile::tempdir().unwrap();
        let one = super::LocalBlobStore::new(dir.path()).unwrap();
        let two = super::LocalBlobStore::new(dir.path()).unwrap();
        crate::contract::staged_uploads_resume_complete_and_abort(&one, &two, 3 * 1024 * 1024 + 7).await;
    }
}
