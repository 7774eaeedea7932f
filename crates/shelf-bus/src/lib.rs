//! Where committed library changes are announced.
//!
//! The server calls [`ChangeBus::publish`] only after a transaction commits; streams subscribe
//! per user. Every implementation delivers into [`LocalChannels`]: one `watch` channel per user
//! holding the latest version, so a slow subscriber never queues events — it sees the newest
//! version when it next looks, and memory per subscriber is constant (spec RT3).
//!
//! Cross-instance buses (`shelf-bus-postgres`, `shelf-bus-redis`, built on [`RemoteBus`]) are
//! at-most-once transports; they live in their own crates so that nothing depending on this seam
//! pulls in a database driver or a Redis client. What makes
//! them safe is recovery: after any reconnect they re-read, from the database, the versions of
//! every user subscribed on this instance, and while disconnected they poll those versions, so
//! a stream always ends at the right version even if messages were lost.

mod local;
mod recovery;

#[cfg(any(test, feature = "contract"))]
pub mod contract;

use std::sync::Arc;

use async_trait::async_trait;
use shelf_core::{LibraryVersion, UserId};
use tokio::sync::watch;

pub use local::{InProcessBus, LocalChannels};
pub use recovery::{Outbox, Recovery, RemoteBus};

/// Announces committed library versions to subscribers on this instance and, for
/// cross-instance implementations, to every other instance.
pub trait ChangeBus: Send + Sync + 'static {
    /// Announces that `user`'s library committed `version`. Never blocks; versions lower than one
    /// already delivered are ignored, so announcements may arrive out of order or twice.
    fn publish(&self, user: UserId, version: LibraryVersion);

    /// A receiver of `user`'s latest announced version (`None` until something is announced).
    fn subscribe(&self, user: UserId) -> watch::Receiver<Option<LibraryVersion>>;

    /// Whether cross-instance delivery currently works (for `/readyz`).
    fn health(&self) -> BusHealth {
        BusHealth::Healthy
    }

    /// "in-process", "postgres" or "redis".
    fn name(&self) -> &'static str;
}

/// The state of a bus's connection to its broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusHealth {
    Healthy,
    /// Delivery falls back to polling the database; the reason says why.
    Degraded(String),
}

/// Reads current versions from the database, for recovery after lost messages.
#[async_trait]
pub trait VersionSource: Send + Sync + 'static {
    async fn library_versions(&self, users: &[UserId]) -> Result<Vec<(UserId, LibraryVersion)>, BusError>;
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("bus connection failed: {0}")]
    Connection(String),
    #[error("reading versions failed: {0}")]
    Source(String),
}

/// Shared by the cross-instance buses: how announcements look on the wire ("<uuid> <version>").
pub fn encode(user: UserId, version: LibraryVersion) -> String {
    format!("{} {}", user.0, version.0)
}

pub fn decode(payload: &str) -> Option<(UserId, LibraryVersion)> {
    let (user, version) = payload.split_once(' ')?;
    Some((UserId(uuid::Uuid::parse_str(user).ok()?), LibraryVersion(version.parse().ok()?)))
}

pub type SharedVersionSource = Arc<dyn VersionSource>;

#[cfg(test)]
mod tests {
    use super::*;

    async fn same_bus_twice() -> (Arc<dyn ChangeBus>, Arc<dyn ChangeBus>, ()) {
        let bus: Arc<dyn ChangeBus> = Arc::new(InProcessBus::new());
        (bus.clone(), bus, ())
    }

    crate::bus_contract_tests!(same_bus_twice);

    #[test]
    fn wire_format_round_trips_and_rejects_garbage() {
        let user = UserId::new();
        assert_eq!(decode(&encode(user, LibraryVersion(42))), Some((user, LibraryVersion(42))));
        for bad in ["", "x 1", "1", &format!("{} x", user.0)] {
            assert_eq!(decode(bad), None);
        }
    }
}
