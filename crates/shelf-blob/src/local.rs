//! Blobs as files in a folder: the embedded default.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::{BlobError, BlobKey, BlobMeta, BlobStore, BlobStream};

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
}

fn not_found_as_none<T>(result: std::io::Result<T>) -> Result<Option<T>, BlobError> {
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
        let dir = target.parent().map(Path::to_path_buf).unwrap_or_else(|| self.root.clone());
        let source = path.to_path_buf();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            // Durable before visible: flush the data, rename atomically, then flush the folder.
            std::fs::File::open(&source)?.sync_all()?;
            std::fs::rename(&source, &target)?;
            std::fs::File::open(&dir)?.sync_all()
        })
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
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn local_store_meets_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::LocalBlobStore::new(dir.path().join("blobs")).unwrap();
        crate::contract::put_get_range_list_delete(&store, dir.path()).await;
    }
}
