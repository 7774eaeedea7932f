//! Records of Web Push: subscriptions tied to device sessions, and where streams are open.

use shelf_core::{DeviceId, LibraryVersion, UserId};
use time::OffsetDateTime;

/// A browser's push subscription, tied to one device session (at most one per device; it is
/// deleted with the session).
#[derive(Debug, Clone, PartialEq)]
pub struct NewPushSubscription {
    pub device_id: DeviceId,
    pub user_id: UserId,
    /// The push service URL, already validated against the allowed hosts.
    pub endpoint: String,
    /// The browser's P-256 public key, an uncompressed point (65 bytes).
    pub p256dh: Vec<u8>,
    /// The 16-byte authentication secret.
    pub auth: Vec<u8>,
    pub created_at: OffsetDateTime,
}

/// What a sender needs to encrypt and address one push, returned to the instance that won the
/// claim for a version ([`crate::Store::claim_push`]).
#[derive(Debug, Clone, PartialEq)]
pub struct PushSubscription {
    pub device_id: DeviceId,
    pub endpoint: String,
    pub p256dh: Vec<u8>,
    pub auth: Vec<u8>,
}

/// A device that may need a push: subscribed, with a live session and no stream seen recently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushTarget {
    pub user_id: UserId,
    pub device_id: DeviceId,
    /// The highest version already pushed (claimed) for this device.
    pub pushed_version: LibraryVersion,
}
