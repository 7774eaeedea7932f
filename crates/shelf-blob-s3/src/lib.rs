//! Blobs in S3-compatible object storage, through the `object_store` crate (no hand-written
//! request signing). Path-style addressing, so any S3-compatible server works. Uploads are staged
//! in the bucket as multipart uploads (`staging.rs`), so any instance continues them.

mod staging;

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, WriteMultipart};
use tokio::io::AsyncReadExt;

use shelf_blob::{BlobError, BlobKey, BlobMeta, BlobStore, BlobStream, StagedUpload};
use staging::PART_SIZE;

/// Where the bucket is. Credentials come from the usual `AWS_*` environment variables.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// e.g. `http://127.0.0.1:9000`; `None` for AWS itself.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
}

pub struct S3BlobStore {
    /// The concrete client: staging needs its `MultipartStore` side (resumable part uploads).
    store: Arc<AmazonS3>,
    /// Extra parts in flight across all uploads of this instance ([`staging::EXTRA_PARTS`]).
    extra_parts: Arc<tokio::sync::Semaphore>,
}

impl S3BlobStore {
    pub fn new(settings: &S3Settings) -> Result<Self, BlobError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&settings.bucket)
            .with_region(&settings.region)
            .with_virtual_hosted_style_request(false);
        if let Some(endpoint) = &settings.endpoint {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        let extra_parts = Arc::new(tokio::sync::Semaphore::new(staging::EXTRA_PARTS));
        Ok(Self { store: Arc::new(builder.build().map_err(BlobError::backend)?), extra_parts })
    }
}

pub(crate) fn map_err(error: object_store::Error) -> BlobError {
    match error {
        object_store::Error::NotFound { .. } => BlobError::NotFound,
        other => BlobError::backend(other),
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    fn name(&self) -> &'static str {
        "s3"
    }

    async fn put_file(&self, key: &BlobKey, path: &Path, size: u64) -> Result<(), BlobError> {
        let location = ObjectPath::from(key.path());
        let mut file = tokio::fs::File::open(path).await.map_err(BlobError::backend)?;
        if size <= PART_SIZE as u64 {
            let mut content = Vec::with_capacity(size as usize);
            file.read_to_end(&mut content).await.map_err(BlobError::backend)?;
            self.store.put(&location, content.into()).await.map_err(map_err)?;
        } else {
            // Streamed in parts: at most a few parts in memory, whatever the file size.
            let upload = self.store.put_multipart(&location).await.map_err(map_err)?;
            let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
            let mut buffer = vec![0u8; 1024 * 1024];
            loop {
                let read = file.read(&mut buffer).await.map_err(BlobError::backend)?;
                if read == 0 {
                    break;
                }
                writer.wait_for_capacity(4).await.map_err(map_err)?;
                writer.write(&buffer[..read]);
            }
            writer.finish().await.map_err(map_err)?;
        }
        // The staged copy is no longer needed once the object is stored; if it cannot be removed
        // the upload still succeeded, so say so and go on (the collector sweeps stale files).
        if let Err(error) = tokio::fs::remove_file(path).await {
            tracing::warn!(%error, path = %path.display(), "could not remove a staged upload after storing it");
        }
        Ok(())
    }

    async fn head(&self, key: &BlobKey) -> Result<Option<BlobMeta>, BlobError> {
        match self.store.head(&ObjectPath::from(key.path())).await {
            Ok(meta) => Ok(Some(BlobMeta { size: meta.size, modified: meta.last_modified.into() })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(other) => Err(BlobError::backend(other)),
        }
    }

    async fn get(&self, key: &BlobKey, range: Option<(u64, u64)>) -> Result<BlobStream, BlobError> {
        let options = GetOptions { range: range.map(|(start, end)| GetRange::Bounded(start..end)), ..Default::default() };
        let result = self.store.get_opts(&ObjectPath::from(key.path()), options).await.map_err(map_err)?;
        Ok(result.into_stream().map_err(map_err).boxed())
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        match self.store.delete(&ObjectPath::from(key.path())).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(other) => Err(BlobError::backend(other)),
        }
    }

    async fn list(&self) -> Result<Vec<(BlobKey, BlobMeta)>, BlobError> {
        let objects: Vec<object_store::ObjectMeta> = self.store.list(None).try_collect().await.map_err(map_err)?;
        Ok(objects
            .into_iter()
            .filter_map(|meta| {
                let key = BlobKey::parse(meta.location.as_ref())?;
                Some((key, BlobMeta { size: meta.size, modified: meta.last_modified.into() }))
            })
            .collect())
    }

    async fn open_staged(&self, upload: uuid::Uuid, key: &BlobKey, offset: u64, state: Option<&str>) -> Result<Box<dyn StagedUpload>, BlobError> {
        staging::open(self.store.clone(), self.extra_parts.clone(), upload, key, offset, state).await
    }

    async fn abort_staged(&self, upload: uuid::Uuid, state: Option<&str>) -> Result<(), BlobError> {
        staging::abort(&self.store, upload, state).await
    }
}

#[cfg(test)]
mod tests {
    /// Settings for a new bucket on the S3-compatible server named by `SHELF_TEST_S3_ENDPOINT`
    /// (scripts/services starts one).
    async fn new_bucket() -> super::S3Settings {
        let endpoint = std::env::var("SHELF_TEST_S3_ENDPOINT").expect("SHELF_TEST_S3_ENDPOINT (run scripts/services)");
        let bucket = format!("shelf-blob-{}", uuid::Uuid::new_v4().simple());
        let created = reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await.unwrap();
        assert!(created.status().is_success(), "create bucket: {}", created.status());
        super::S3Settings { endpoint: Some(endpoint), bucket, region: "us-east-1".into() }
    }

    #[tokio::test]
    async fn s3_store_meets_the_contract() {
        let store = super::S3BlobStore::new(&new_bucket().await).unwrap();
        let dir = tempfile::tempdir().unwrap();
        shelf_blob::contract::put_get_range_list_delete(&store, dir.path()).await;
    }

    /// Two clients of one bucket stand for two instances.
    #[tokio::test]
    async fn s3_staging_meets_the_contract() {
        let settings = new_bucket().await;
        let (one, two) = (super::S3BlobStore::new(&settings).unwrap(), super::S3BlobStore::new(&settings).unwrap());
        shelf_blob::contract::staged_uploads_resume_complete_and_abort(&one, &two, super::staging::PART_SIZE + 1).await;
    }

    /// Writes of several parts at once: the parts go out concurrently, an unrecorded writer's
    /// parts are replaced by the next writer's, the blob comes out whole and in order, and every
    /// shared permit comes back.
    #[tokio::test]
    async fn s3_staging_sends_parts_concurrently() {
        use super::staging::{EXTRA_PARTS, PART_SIZE};
        let settings = new_bucket().await;
        let (one, two) = (super::S3BlobStore::new(&settings).unwrap(), super::S3BlobStore::new(&settings).unwrap());
        shelf_blob::contract::staged_uploads_resume_complete_and_abort(&one, &two, 3 * PART_SIZE + 1).await;
        for store in [&one, &two] {
            assert_eq!(store.extra_parts.available_permits(), EXTRA_PARTS);
        }
    }

    /// The bucket's incomplete multipart uploads (S3's ListMultipartUploads).
    async fn multipart_uploads(settings: &super::S3Settings) -> usize {
        let url = format!("{}/{}?uploads", settings.endpoint.as_deref().unwrap(), settings.bucket);
        let listing = reqwest::get(url).await.unwrap().text().await.unwrap();
        listing.matches("<UploadId>").count()
    }

    /// A writer that dies in its first PATCH, after S3 created its multipart upload but before
    /// any state naming it was recorded: abort, or the next writer's completion, still finds and
    /// aborts that multipart upload (through its marker), so no parts stay in the bucket.
    #[tokio::test]
    async fn s3_staging_leaves_no_multipart_upload_of_a_writer_that_crashed_unrecorded() {
        use super::staging::PART_SIZE;
        use shelf_blob::{BlobKey, BlobStore};
        let settings = new_bucket().await;
        let store = super::S3BlobStore::new(&settings).unwrap();
        let content: Vec<u8> = (0..PART_SIZE as u32 + 10).map(|i| (i % 241) as u8).collect();
        let crash = |upload, key| {
            let store = &store;
            let content = &content;
            async move {
                let mut staged = store.open_staged(upload, &key, 0, None).await.unwrap();
                staged.write(bytes::Bytes::copy_from_slice(content)).await.unwrap();
                drop(staged); // never flushed, never recorded
            }
        };
        let key = |n: u8| BlobKey { user: uuid::Uuid::new_v4(), sha256: format!("{n:02x}").repeat(32) };

        let (upload, abandoned) = (uuid::Uuid::new_v4(), key(1));
        crash(upload, abandoned.clone()).await;
        assert_eq!(multipart_uploads(&settings).await, 1);
        store.abort_staged(upload, None).await.unwrap();
        assert_eq!(multipart_uploads(&settings).await, 0, "abort without a recorded state finds it");

        let (upload, resumed) = (uuid::Uuid::new_v4(), key(2));
        crash(upload, resumed.clone()).await;
        let mut staged = store.open_staged(upload, &resumed, 0, None).await.unwrap();
        staged.write(bytes::Bytes::copy_from_slice(&content)).await.unwrap();
        staged.complete().await.unwrap();
        assert_eq!(store.head(&resumed).await.unwrap().map(|m| m.size), Some(content.len() as u64));
        assert_eq!(multipart_uploads(&settings).await, 0, "completion aborts the crashed writer's upload");
        use futures::StreamExt;
        use object_store::ObjectStore;
        let prefix = object_store::path::Path::from(format!(".staging/{upload}/"));
        let staged_objects = store.store.list(Some(&prefix)).count().await;
        assert_eq!(staged_objects, 0);
    }
}
