//! Session renewals (spec AU11), written together for concurrent requests.
//!
//! A request whose session was last seen over a minute ago slides its expiry: one `UPDATE` and,
//! on its own, one commit flush. When many devices come back at once — every client reconnecting
//! after a restart opens its stream in the same second — those flushes queued one behind another
//! on the database's writer, and opening 10,000 streams took seconds of them (ADR 0013). Here
//! every renewal waiting at the same moment goes into one transaction ([`Batches`]); each request
//! still waits for that commit, so a renewal is never acknowledged before it is durable.

use std::sync::Arc;
use std::time::Duration;

use shelf_core::DeviceId;
use shelf_store::{Store, StoreError};

use crate::error::{ApiError, ApiResult};
use crate::service::auth::now;
use crate::service::batches::Batches;

/// Most renewals in one transaction.
const MAX_BATCH: usize = 1024;

/// Hands renewals to a task that writes whatever has queued up in one transaction.
pub struct Renewals(Batches<DeviceId, ()>);

impl Renewals {
    /// Starts the writer task; it ends when this is dropped. `ttl` is the session lifetime.
    pub fn start(store: Arc<dyn Store>, ttl: Duration) -> ApiResult<Self> {
        let ttl = time::Duration::try_from(ttl).map_err(|e| ApiError::Internal(e.into()))?;
        Ok(Self(Batches::start("session renewal writer", MAX_BATCH, move |devices: Vec<DeviceId>| {
            let store = store.clone();
            async move {
                let answers = vec![(); devices.len()];
                let mut devices = devices;
                devices.sort_unstable();
                devices.dedup();
                let at = now();
                store.renew_sessions(&devices, at, at + ttl).await.map_err(|error| error.to_string())?;
                Ok(answers)
            }
        })))
    }

    /// Renews `device`'s session: last seen now, expiring `ttl` from now (never earlier than it
    /// did). Returns once that is committed.
    pub async fn renew(&self, device: DeviceId) -> ApiResult<()> {
        self.0.ask(device).await?.map_err(|message| StoreError::Backend(message.into()).into())
    }
}
