//! What cross-instance buses share: health state, catch-up after reconnects, polling while down.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{Announcement, BusHealth, LocalChannels, SharedVersionSource};

/// Health plus the recovery actions, shared by a bus and its background tasks.
pub struct Recovery {
    pub local: Arc<LocalChannels>,
    pub source: SharedVersionSource,
    /// The health, and how many times it changed (see [`crate::ChangeBus::continuity`]).
    health: Mutex<(BusHealth, u64)>,
    /// Whether the broker was reached once: later transitions to healthy are reconnects.
    connected_once: std::sync::atomic::AtomicBool,
    /// How often versions are polled from the database while the broker is unreachable.
    pub poll_interval: Duration,
}

impl Recovery {
    pub fn new(local: Arc<LocalChannels>, source: SharedVersionSource, poll_interval: Duration) -> Arc<Self> {
        Arc::new(Self {
            local,
            source,
            health: Mutex::new((BusHealth::Degraded("not connected yet".into()), 0)),
            connected_once: std::sync::atomic::AtomicBool::new(false),
            poll_interval,
        })
    }

    pub fn health(&self) -> BusHealth {
        self.health.lock().unwrap_or_else(|p| p.into_inner()).0.clone()
    }

    /// `Some(changes of health)` while healthy, `None` while not.
    pub fn continuity(&self) -> Option<u64> {
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        (health.0 == BusHealth::Healthy).then_some(health.1)
    }

    pub fn set_health(&self, health: BusHealth) {
        let mut guard = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let (current, changes) = &mut *guard;
        // A new reason for being degraded is no new interruption; only Healthy <-> Degraded is.
        if std::mem::discriminant(current) != std::mem::discriminant(&health) {
            *changes += 1;
        }
        if *current != health {
            match &health {
                BusHealth::Healthy => {
                    tracing::info!("bus connected");
                    if self.connected_once.swap(true, std::sync::atomic::Ordering::AcqRel) {
                        metrics::counter!("shelf_bus_reconnects_total").increment(1);
                    }
                }
                BusHealth::Degraded(reason) => tracing::warn!(reason, "bus degraded: polling the database"),
            }
            *current = health;
        }
    }

    /// An announcement from another instance (or this one's echo) arrived through the broker.
    pub fn receive(&self, announcement: Announcement) {
        metrics::counter!("shelf_bus_messages_total", "direction" => "received").increment(1);
        match announcement {
            Announcement::Version(user, version) => {
                self.local.deliver(user, version);
            }
            // This instance's own revocations come back too; evicting twice is harmless.
            Announcement::Revoked(device) => self.local.deliver_revocation(device),
        }
    }

    /// Re-reads the versions of every user subscribed here and delivers what was missed.
    pub async fn catch_up(&self) {
        let users = self.local.subscribed_users();
        if users.is_empty() {
            return;
        }
        match self.source.library_versions(&users).await {
            Ok(versions) => {
                for (user, version) in versions {
                    self.local.deliver(user, version);
                }
            }
            Err(error) => tracing::warn!(%error, "bus catch-up could not read versions"),
        }
    }

    /// Polls versions until `connected` resolves; used while the broker is unreachable.
    pub async fn poll_until<F: std::future::Future>(&self, connected: F) -> F::Output {
        tokio::pin!(connected);
        let mut tick = tokio::time::interval(self.poll_interval);
        loop {
            tokio::select! {
                output = &mut connected => return output,
                _ = tick.tick() => self.catch_up().await,
            }
        }
    }
}

/// A bus that reaches other instances through a broker: delivers locally at once, hands
/// announcements to a publisher task through an outbox, and runs a subscriber task; both tasks
/// end when the bus is dropped. PostgreSQL and Redis differ only in those two tasks.
pub struct RemoteBus {
    name: &'static str,
    recovery: Arc<Recovery>,
    outbox: tokio::sync::mpsc::UnboundedSender<Announcement>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// What a publisher task sends to the broker, in order of publishing.
pub type Outbox = tokio::sync::mpsc::UnboundedReceiver<Announcement>;

impl RemoteBus {
    pub fn start<P, S>(name: &'static str, recovery: Arc<Recovery>, publisher: impl FnOnce(Outbox) -> P, subscriber: S) -> Self
    where
        P: std::future::Future<Output = ()> + Send + 'static,
        S: std::future::Future<Output = ()> + Send + 'static,
    {
        recovery.set_health(BusHealth::Healthy);
        let (outbox, pending) = tokio::sync::mpsc::unbounded_channel();
        let tasks = vec![tokio::spawn(publisher(pending)), tokio::spawn(subscriber)];
        Self { name, recovery, outbox, tasks }
    }
}

impl Drop for RemoteBus {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl crate::ChangeBus for RemoteBus {
    fn publish(&self, user: shelf_core::UserId, version: shelf_core::LibraryVersion) {
        // Local subscribers hear it at once; the broker's echo is ignored as not newer.
        self.recovery.local.deliver(user, version);
        metrics::counter!("shelf_bus_messages_total", "direction" => "published").increment(1);
        // Fails only once the publisher task ended (shutdown); other instances then recover the
        // version from the database, so nothing is lost by going on.
        let _ = self.outbox.send(Announcement::Version(user, version));
    }

    fn revoke(&self, device: shelf_core::DeviceId) {
        // This instance evicts at once, before the request that revoked answers.
        self.recovery.local.deliver_revocation(device);
        metrics::counter!("shelf_bus_messages_total", "direction" => "published").increment(1);
        // As for versions: fails only at shutdown; other instances' cache TTL bounds the loss.
        let _ = self.outbox.send(Announcement::Revoked(device));
    }

    fn revocations(&self) -> tokio::sync::broadcast::Receiver<shelf_core::DeviceId> {
        self.recovery.local.revocations()
    }

    fn subscribe(&self, user: shelf_core::UserId) -> tokio::sync::watch::Receiver<Option<shelf_core::LibraryVersion>> {
        self.recovery.local.subscribe(user)
    }

    fn health(&self) -> BusHealth {
        self.recovery.health()
    }

    fn continuity(&self) -> Option<u64> {
        self.recovery.continuity()
    }

    fn name(&self) -> &'static str {
        self.name
    }

    fn spans_instances(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BusError, VersionSource};
    use shelf_core::{LibraryVersion, UserId};

    struct NoVersions;

    #[async_trait::async_trait]
    impl VersionSource for NoVersions {
        async fn library_versions(&self, _: &[UserId]) -> Result<Vec<(UserId, LibraryVersion)>, BusError> {
            Ok(Vec::new())
        }
    }

    #[test]
    fn continuity_changes_with_every_interruption_and_is_none_during_one() {
        let recovery = Recovery::new(Arc::default(), Arc::new(NoVersions), Duration::from_secs(1));
        assert_eq!(recovery.continuity(), None, "not connected yet");
        recovery.set_health(BusHealth::Healthy);
        let first = recovery.continuity().expect("connected");
        recovery.set_health(BusHealth::Healthy);
        assert_eq!(recovery.continuity(), Some(first), "still the same connection");
        recovery.set_health(BusHealth::Degraded("lost".into()));
        assert_eq!(recovery.continuity(), None);
        recovery.set_health(BusHealth::Degraded("still lost, another reason".into()));
        recovery.set_health(BusHealth::Healthy);
        let second = recovery.continuity().expect("reconnected");
        assert_ne!(second, first, "what was cached before the interruption is not trusted");
    }
}
