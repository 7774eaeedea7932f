//! Session renewals (spec AU11), written together, behind the requests that asked for them.
//!
//! A request whose session was last seen over a minute ago slides its expiry: one `UPDATE` and,
//! on its own, one commit flush. When many devices come back at once — every client reconnecting
//! after a restart opens its stream in the same second — those flushes queued one behind another
//! on the database's writer, and opening 10,000 streams took seconds of them (ADR 0013). So every
//! renewal queued at the same moment goes into one transaction.
//!
//! A request does not wait for its renewal (ADR 0018): nothing it answers depends on it, and
//! waiting made every returning device's first request, and every stream opening, as slow as
//! a commit. The price: a renewal still queued when the process stops or dies, or whose
//! transaction fails, is lost. The session then keeps the expiry its previous renewal gave it,
//! and the first request that reads it from the database again renews it again. A failed batch
//! is logged. The queue is bounded ([`QUEUE`]); a renewal that finds it full is dropped the same
//! way.

use std::sync::Arc;
use std::time::Duration;

use shelf_core::DeviceId;
use shelf_store::Store;
use tokio::sync::mpsc;

use crate::error::{ApiError, ApiResult};
use crate::service::auth::now;

/// Most renewals in one transaction.
const MAX_BATCH: usize = 1024;
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
        let (queue, mut queued) = mpsc::channel(QUEUE);
        tokio::spawn(async move {
            let mut devices = Vec::with_capacity(MAX_BATCH);
            while queued.recv_many(&mut devices, MAX_BATCH).await > 0 {
                devices.sort_unstable();
                devices.dedup();
                let at = now();
                if let Err(error) = store.renew_sessions(&devices, at, at + ttl).await {
                    tracing::warn!(%error, sessions = devices.len(), "could not renew sessions; their next reads from the database retry");
                }
                devices.clear();
            }
        });
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
