//! One writer's part file in the local folder, written off the runtime.
//!
//! Through `tokio::fs::File`, every body chunk (~70 KiB off the socket) was copied into tokio's
//! buffer and written by a blocking-pool task of its own: ~7,000 hand-offs and an extra copy of
//! every byte for a 512 MiB upload. Here a chunk is handed to a blocking task as it is
//! (reference-counted, not copied) when no write is in flight; while one is, chunks gather into
//! the next batch, up to [`BATCH`] bytes, which is written as soon as the previous write is done.
//! So a slow client's chunks reach the file one by one, and a fast client's in large batches
//! while the caller receives and hashes the next; a writer holds at most two batches of memory.
//! A batch that fails to write is reported by the next call that needs the file (a write that
//! dispatches the next batch, or flush, or complete).

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::task::JoinHandle;

use crate::local::not_found_as_none;
use crate::{BlobError, StagedUpload};

/// Most bytes gathered while a write is in flight: large enough that hand-offs cost nothing
/// beside the copy into the page cache, small enough that the two batches a writer holds stay
/// small.
const BATCH: usize = 1 << 20;

/// Fewest bytes handed over when no write is in flight: a slow client's chunks wait for this
/// much (the upload tests' paused writer sends 256 KiB and waits to see it in the file).
const IDLE_BATCH: usize = 256 * 1024;

type Written = std::io::Result<std::fs::File>;

pub(crate) struct LocalStaged {
    /// The part file when no batch is in flight; `None` while one is, after a failed write, or
    /// once the blob is already stored (a repeated completion: `stored`).
    file: Option<std::fs::File>,
    in_flight: Option<JoinHandle<Written>>,
    batch: Vec<Bytes>,
    batched: usize,
    stored: bool,
    part: PathBuf,
    target: PathBuf,
    offset: u64,
}

impl LocalStaged {
    /// A writer appending to `file`, positioned at `offset`.
    pub(crate) fn open(file: std::fs::File, part: PathBuf, target: PathBuf, offset: u64) -> Self {
        Self { file: Some(file), in_flight: None, batch: Vec::new(), batched: 0, stored: false, part, target, offset }
    }

    /// The upload whose blob is already stored at `target`: completing it again succeeds.
    pub(crate) fn stored(part: PathBuf, target: PathBuf, offset: u64) -> Self {
        Self { file: None, in_flight: None, batch: Vec::new(), batched: 0, stored: true, part, target, offset }
    }

    /// Waits for the batch in flight and takes the file back.
    async fn settle(&mut self) -> Result<std::fs::File, BlobError> {
        if let Some(task) = self.in_flight.take() {
            self.file = Some(task.await.map_err(BlobError::backend)?.map_err(BlobError::backend)?);
        }
        match (self.stored, self.file.take()) {
            (_, Some(file)) => Ok(file),
            (true, None) => Err(BlobError::already_stored()),
            (false, None) => Err(BlobError::Backend("an earlier write to the staged upload failed".into())),
        }
    }

    /// The gathered chunks, leaving none.
    fn take_batch(&mut self) -> Vec<Bytes> {
        self.batched = 0;
        std::mem::take(&mut self.batch)
    }

    /// Writes the gathered batch, then runs `then` on the file, on one blocking task.
    async fn write_batch<T: Send + 'static>(
        &mut self,
        then: impl FnOnce(&mut std::fs::File) -> std::io::Result<T> + Send + 'static,
    ) -> Result<(std::fs::File, T), BlobError> {
        let mut file = self.settle().await?;
        let batch = self.take_batch();
        tokio::task::spawn_blocking(move || {
            write_all(&mut file, &batch)?;
            let value = then(&mut file)?;
            Ok::<_, std::io::Error>((file, value))
        })
        .await
        .map_err(BlobError::backend)?
        .map_err(BlobError::backend)
    }
}

fn write_all(file: &mut std::fs::File, batch: &[Bytes]) -> std::io::Result<()> {
    batch.iter().try_for_each(|chunk| file.write_all(chunk))
}

#[async_trait]
impl StagedUpload for LocalStaged {
    fn offset(&self) -> u64 {
        self.offset
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), BlobError> {
        if self.stored {
            return Err(BlobError::already_stored());
        }
        self.offset += chunk.len() as u64;
        self.batched += chunk.len();
        self.batch.push(chunk);
        let idle = self.in_flight.as_ref().is_none_or(|task| task.is_finished());
        if (idle && self.batched >= IDLE_BATCH) || self.batched >= BATCH {
            let mut file = self.settle().await?;
            let batch = self.take_batch();
            self.in_flight = Some(tokio::task::spawn_blocking(move || write_all(&mut file, &batch).map(|()| file)));
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<Option<String>, BlobError> {
        if !self.stored {
            let (file, ()) = self.write_batch(|file| file.sync_data()).await?;
            self.file = Some(file);
        }
        Ok(None) // the file itself is the state: its first `offset` bytes
    }

    async fn recorded(&mut self) -> Result<(), BlobError> {
        Ok(())
    }

    async fn abort(mut self: Box<Self>) -> Result<(), BlobError> {
        if let Some(task) = self.in_flight.take() {
            // Its outcome does not matter, the file goes; waiting makes the removal the last
            // thing that happens to it.
            let _ = task.await;
        }
        drop(self.file.take());
        not_found_as_none(tokio::fs::remove_file(&self.part).await)?;
        Ok(())
    }

    async fn complete(mut self: Box<Self>) -> Result<(), BlobError> {
        if self.stored {
            return Ok(());
        }
        let (part, target) = (self.part.clone(), self.target.clone());
        // The last batch and the move into place on one blocking task; the rename syncs the data.
        self.write_batch(move |_| durable_rename(&part, &target)).await?;
        Ok(())
    }
}

/// Moves `source` to `target` durably: flush the data, rename atomically, then flush the folder.
pub(crate) fn durable_rename(source: &Path, target: &Path) -> std::io::Result<()> {
    let dir = target.parent().ok_or_else(|| std::io::Error::other("a blob path has a parent"))?;
    std::fs::create_dir_all(dir)?;
    std::fs::File::open(source)?.sync_all()?;
    std::fs::rename(source, target)?;
    std::fs::File::open(dir)?.sync_all()
}
