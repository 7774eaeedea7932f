//! Session renewals (spec AU11), written together, behind the requests that asked for them.
//!
//! A request whose session was last seen over a minute ago slides its expiry: one `UPDATE` and,
//! on its own, one commit flush. When many devices come back at once — every client reconnecting
//! after a restart opens its stream in the same second — those flushes queued one behind another
//! on the database's writer, and opening 10,000 streams took seconds of them (ADR 0013). So the
//! renewals queued within [`GATHER`] of a batch's first one go into one transaction.
//!
//! A request does not wait for its renewal (ADR 0018): nothing it answers depends on it, and
//! waiting made every returning device's first request, and every stream opening, as slow as
//! a commit. The price: a renewal still queued when the process stops or dies, or whose
//! transaction fails, is lost. The session then keeps the expiry its previous renewal gave it,
//! and the first request that reads it from the database again renews it again. A failed batch
//! is logged. The queue is bounded ([`QUEUE`]); a renewal that finds it full is dropped the same
//! way.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use shelf_core::DeviceId;
use shelf_store::Store;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::service::auth::now;

/// Most renewals in one transaction.
const MAX_BATCH: usize = 1024;
/// How long a batch gathers after its first renewal, unless it fills first. Nothing waits for a
/// renewal, so this delays only when it lands; it turns a reconnecting fleet's renewals into one
/// transaction per [`GATHER`] instead of one per commit, which rewrote the same session pages
/// (and synced them) many times over.
const GATHER: Duration = Duration::from_millis(100);
/// Most renewals waiting for their transaction: a database that stops taking writes costs at
/// most this many queued device ids (16 bytes each), not memory without bound.
pub const QUEUE: usize = 65_536;

/// Hands renewals to a task that writes whatever has queued up in one transaction.
pub struct Renewals(mpsc::Sender<DeviceId>);

impl Renewals {
    /// Starts the writer task; it ends when this is dropped, after writing what was queued.
    /// `ttl` is the session lifetime.
    pub fn start(store: Arc<dyn Store>, ttl: Duration) -> ApiResult<Self> {
        let ttl = time::Duration::try_from(ttl).map_err(|e| ApiError::Internal(e.into()))?;
        let (queue, queued) = mpsc::channel(QUEUE);
        tokio::spawn(batches(queued, move |devices| {
            let store = store.clone();
            async move {
                let at = now();
                if let Err(error) = store.renew_sessions(&devices, at, at + ttl).await {
                    tracing::warn!(%error, sessions = devices.len(), "could not renew sessions; their next reads from the database retry");
                }
            }
        }));
        Ok(Self(queue))
    }

    /// Queues a renewal of `device`'s session: last seen now, expiring `ttl` from now (never
    /// earlier than it did). Returns at once; see the module doc for what a lost one costs.
    pub fn renew(&self, device: DeviceId) {
        if let Err(error) = self.0.try_send(device) {
            tracing::debug!(%error, "a session renewal was not queued; a later request renews");
        }
    }
}

/// Hands `write` one batch at a time until every sender is gone: what arrives within [`GATHER`]
/// of the batch's first renewal (at most [`MAX_BATCH`]), sorted, without duplicates. The next
/// batch starts gathering only once `write` has finished.
async fn batches<W, F>(mut queued: mpsc::Receiver<DeviceId>, mut write: W)
where
    W: FnMut(Vec<DeviceId>) -> F,
    F: Future<Output = ()>,
{
    let mut devices = Vec::with_capacity(MAX_BATCH);
    while queued.recv_many(&mut devices, MAX_BATCH).await > 0 {
        let deadline = tokio::time::Instant::now() + GATHER;
        while devices.len() < MAX_BATCH {
            let limit = MAX_BATCH - devices.len();
            match tokio::time::timeout_at(deadline, queued.recv_many(&mut devices, limit)).await {
                Ok(0) | Err(_) => break, // every sender is gone, or the window closed
                Ok(_) => {}
            }
        }
        devices.sort_unstable();
        devices.dedup();
        write(std::mem::replace(&mut devices, Vec::with_capacity(MAX_BATCH))).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // A test: a failed unwrap is a failed test.

    use std::sync::{Arc, Mutex};

    use super::*;

    /// Renewals queued within the window of a batch's first one share its transaction; a full
    /// batch goes at once; one queued after the window starts the next batch.
    #[tokio::test(start_paused = true)]
    async fn renewals_within_the_gathering_window_share_one_batch() {
        let (queue, queued) = mpsc::channel(QUEUE);
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink = written.clone();
        let task = tokio::spawn(batches(queued, move |devices| {
            sink.lock().unwrap().push((tokio::time::Instant::now(), devices));
            std::future::ready(())
        }));
        let device = |n: u128| DeviceId(uuid::Uuid::from_u128(n));
        let start = tokio::time::Instant::now();
        for n in [3, 1, 2, 1] {
            queue.send(device(n)).await.unwrap();
        }
        tokio::time::sleep(GATHER / 2).await;
        queue.send(device(4)).await.unwrap();
        tokio::time::sleep(GATHER).await;
        queue.send(device(5)).await.unwrap();
        tokio::time::sleep(GATHER * 2).await;
        for n in 0..(MAX_BATCH as u128 + 10) {
            queue.send(device(1_000 + n)).await.unwrap();
        }
        drop(queue);
        task.await.unwrap();

        let written = written.lock().unwrap();
        let sizes: Vec<usize> = written.iter().map(|(_, devices)| devices.len()).collect();
        assert_eq!(sizes, [4, 1, MAX_BATCH, 10], "the first batch without its duplicate; a full batch at once");
        assert_eq!(written[0].1, [device(1), device(2), device(3), device(4)], "sorted");
        assert_eq!(written[0].0 - start, GATHER, "the first batch waited for its window");
        assert_eq!(written[1].1, [device(5)]);
        let full = written[2].0;
        assert!(full - start < GATHER * 4, "a full batch did not wait for its window");
    }
}
