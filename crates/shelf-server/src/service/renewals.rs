//! Session renewals (spec AU11), written together for concurrent requests.
//!
//! A request whose session was last seen over a minute ago slides its expiry: one `UPDATE` and,
//! on its own, one commit flush. When many devices come back at once — every client reconnecting
//! after a restart opens its stream in the same second — those flushes queued one behind another
//! on the database's writer, and opening 10,000 streams took seconds of them (ADR 0013). Here
//! every renewal waiting at the same moment goes into one transaction; each request still waits
//! for that commit, so a renewal is never acknowledged before it is durable.

use std::sync::Arc;
use std::time::Duration;

use shelf_core::DeviceId;
use shelf_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::error::{ApiError, ApiResult};
use crate::service::auth::now;

/// Most renewals in one transaction.
const MAX_BATCH: usize = 1024;

type Reply = oneshot::Sender<Result<(), String>>;

/// Hands renewals to a task that writes whatever has queued up in one transaction.
pub struct Renewals {
    queue: mpsc::UnboundedSender<(DeviceId, Reply)>,
}

impl Renewals {
    /// Starts the writer task; it ends when this is dropped. `ttl` is the session lifetime.
    pub fn start(store: Arc<dyn Store>, ttl: Duration) -> ApiResult<Self> {
        let ttl = time::Duration::try_from(ttl).map_err(|e| ApiError::Internal(e.into()))?;
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(store, ttl, pending));
        Ok(Self { queue })
    }

    /// Renews `device`'s session: last seen now, expiring `ttl` from now (never earlier than it
    /// did). Returns once that is committed.
    pub async fn renew(&self, device: DeviceId) -> ApiResult<()> {
        let (reply, done) = oneshot::channel();
        let stopped = || ApiError::Internal(anyhow::anyhow!("the session renewal writer stopped"));
        self.queue.send((device, reply)).map_err(|_| stopped())?;
        match done.await.map_err(|_| stopped())? {
            Ok(()) => Ok(()),
            Err(message) => Err(StoreError::Backend(message.into()).into()),
        }
    }
}

async fn write_batches(store: Arc<dyn Store>, ttl: time::Duration, mut pending: mpsc::UnboundedReceiver<(DeviceId, Reply)>) {
    let mut batch = Vec::new();
    while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut devices: Vec<DeviceId> = batch.iter().map(|(device, _)| *device).collect();
        devices.sort_unstable();
        devices.dedup();
        let at = now();
        let written = store.renew_sessions(&devices, at, at + ttl).await.map_err(|error| error.to_string());
        for (_, reply) in batch.drain(..) {
            // A request that gave up waiting no longer listens; nothing to tell it.
            let _ = reply.send(written.clone());
        }
    }
}
