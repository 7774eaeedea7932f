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
//!
//! The same transport carries **revocations** ([`ChangeBus::revoke`]): a device whose session
//! ended (logout, device revocation, password change, account deletion). Instances use them to
//! drop the session from their short-lived session caches and to end the device's streams at
//! once. They are at-most-once too; what bounds a lost one is the cache's own time to live
//! (ADR 0011), not recovery.

mod local;
mod recovery;

#[cfg(any(test, feature = "contract"))]
pub mod contract;

use std::sync::Arc;

use async_trait::async_trait;
use shelf_core::{DeviceId, LibraryVersion, UserId};
use tokio::sync::{broadcast, watch};

pub use local::{InProcessBus, LocalChannels};
pub use recovery::{Outbox, Recovery, RemoteBus};

/// How many revocations a slow receiver may fall behind before it is told it lagged.
pub const REVOCATION_BACKLOG: usize = 1024;

/// Announces committed library versions to subscribers on this instance and, for
/// cross-instance implementations, to every other instance.
pub trait ChangeBus: Send + Sync + 'static {
    /// Announces that `user`'s library committed `version`. Never blocks; versions lower than one
    /// already delivered are ignored, so announcements may arrive out of order or twice.
    fn publish(&self, user: UserId, version: LibraryVersion);

    /// A receiver of `user`'s latest announced version (`None` until something is announced).
    fn subscribe(&self, user: UserId) -> watch::Receiver<Option<LibraryVersion>>;

    /// Announces that `device`'s session ended, to this instance's and every other instance's
    /// [`revocations`](ChangeBus::revocations) receivers. Call it after the revocation committed.
    /// Never blocks; may be lost (at most once) — receivers must not rely on it alone.
    fn revoke(&self, device: DeviceId);

    /// Devices whose sessions ended, as announced on any instance (this one included), from the
    /// moment of the call. A receiver that lags behind gets `RecvError::Lagged` and must assume
    /// it missed some (drop everything it cached).
    fn revocations(&self) -> broadcast::Receiver<DeviceId>;

    /// Whether cross-instance delivery currently works (for `/readyz`).
    fn health(&self) -> BusHealth {
        BusHealth::Healthy
    }

    /// `Some(n)` while every announcement from any instance reaches this one; `n` changes each
    /// time delivery was interrupted (broker lost, reconnected), and it is `None` while it is.
    /// Whatever is derived from announcements (ADR 0013's version cache, the stream session
    /// check) holds only while this stays the same `Some(n)`. Required, not defaulted: a wrapper
    /// that forgot to forward it would claim that a broker never fails.
    fn continuity(&self) -> Option<u64>;

    /// "in-process", "postgres" or "redis".
    fn name(&self) -> &'static str;

    /// Whether other instances may serve streams of this database: `false` only for the
    /// in-process bus, whose announcements reach no other instance, so this instance's streams
    /// are the only ones (and which devices have one open need not be written down for others,
    /// ADR 0009). Required, not defaulted, like [`continuity`](ChangeBus::continuity).
    fn spans_instances(&self) -> bool;
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

/// What the cross-instance buses carry, one message per payload on their single channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announcement {
    /// `"<user uuid> <version>"`: the user's library committed this version.
    Version(UserId, LibraryVersion),
    /// `"revoked <device uuid>"`: the device's session ended. An instance that predates this
    /// message reads `revoked` as a malformed user id and ignores the payload, so instances of
    /// both kinds can share a channel during a rolling upgrade.
    Revoked(DeviceId),
}

const REVOKED: &str = "revoked";

/// How an announcement looks on the wire (see [`Announcement`] for the two forms).
pub fn encode(announcement: &Announcement) -> String {
    match announcement {
        Announcement::Version(user, version) => format!("{} {}", user.0, version.0),
        Announcement::Revoked(device) => format!("{REVOKED} {}", device.0),
    }
}

/// The announcement in `payload`, or `None` for anything malformed (which receivers skip).
pub fn decode(payload: &str) -> Option<Announcement> {
    let (first, second) = payload.split_once(' ')?;
    if first == REVOKED {
        return Some(Announcement::Revoked(DeviceId(uuid::Uuid::parse_str(second).ok()?)));
    }
    Some(Announcement::Version(UserId(uuid::Uuid::parse_str(first).ok()?), LibraryVersion(second.parse().ok()?)))
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
        let version = Announcement::Version(user, LibraryVersion(42));
        assert_eq!(encode(&version), format!("{} 42", user.0));
        assert_eq!(decode(&encode(&version)), Some(version));
        let device = DeviceId::new();
        let revoked = Announcement::Revoked(device);
        assert_eq!(encode(&revoked), format!("revoked {}", device.0));
        assert_eq!(decode(&encode(&revoked)), Some(revoked));
        for bad in ["", "x 1", "1", &format!("{} x", user.0), "revoked", "revoked x", "revoked 1"] {
            assert_eq!(decode(bad), None);
        }
    }
}
