//! The change bus as the server uses it: the configured bus, plus the two things every
//! announcement of a version committed on this instance also feeds — the commit clock (the
//! commit-to-send histogram) and the push service, which pushes the versions this instance
//! committed (ADR 0006). One wrapper, so each `ChangeBus` method is forwarded in one place.

use std::sync::Arc;

use shelf_bus::{BusHealth, ChangeBus};
use shelf_core::{DeviceId, LibraryVersion, UserId};
use tokio::sync::{broadcast, watch};

use crate::metrics::CommitClock;
use crate::service::push::PushService;

pub struct ServerBus {
    inner: Arc<dyn ChangeBus>,
    pub clock: Arc<CommitClock>,
    push: Arc<PushService>,
}

impl ServerBus {
    pub fn new(inner: Arc<dyn ChangeBus>, push: Arc<PushService>) -> Self {
        Self { inner, clock: Arc::default(), push }
    }
}

impl ChangeBus for ServerBus {
    /// Every publish is a commit of this instance: timed first, announced, then pushed.
    fn publish(&self, user: UserId, version: LibraryVersion) {
        self.clock.committed(user, version);
        self.inner.publish(user, version);
        self.push.version_committed(user, version);
    }

    fn subscribe(&self, user: UserId) -> watch::Receiver<Option<LibraryVersion>> {
        self.inner.subscribe(user)
    }

    fn revoke(&self, device: DeviceId) {
        self.inner.revoke(device);
    }

    fn revocations(&self) -> broadcast::Receiver<DeviceId> {
        self.inner.revocations()
    }

    fn health(&self) -> BusHealth {
        self.inner.health()
    }

    fn continuity(&self) -> Option<u64> {
        self.inner.continuity()
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn spans_instances(&self) -> bool {
        self.inner.spans_instances()
    }
}
