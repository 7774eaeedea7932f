//! Per-user latest-version channels on this instance, the revocation channel, and the in-process
//! bus built on them.

use std::collections::HashMap;
use std::sync::Mutex;

use shelf_core::{DeviceId, LibraryVersion, UserId};
use tokio::sync::{broadcast, watch};

use crate::{ChangeBus, REVOCATION_BACKLOG};

/// One `watch` channel per user with subscribers here, and one broadcast channel of revoked
/// devices for the whole instance.
pub struct LocalChannels {
    users: Mutex<HashMap<UserId, watch::Sender<Option<LibraryVersion>>>>,
    revoked: broadcast::Sender<DeviceId>,
}

impl Default for LocalChannels {
    fn default() -> Self {
        Self { users: Mutex::default(), revoked: broadcast::channel(REVOCATION_BACKLOG).0 }
    }
}

impl LocalChannels {
    /// Tells this instance's revocation receivers that `device`'s session ended.
    pub fn deliver_revocation(&self, device: DeviceId) {
        // An error only says nobody listens here yet, so there is nothing to evict.
        let _ = self.revoked.send(device);
    }

    pub fn revocations(&self) -> broadcast::Receiver<DeviceId> {
        self.revoked.subscribe()
    }

    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, watch::Sender<Option<LibraryVersion>>>> {
        self.users.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Raises `user`'s channel to `version` (never lowers it). Returns whether it changed.
    pub fn deliver(&self, user: UserId, version: LibraryVersion) -> bool {
        let mut users = self.users();
        let Some(sender) = users.get(&user) else { return false };
        if sender.receiver_count() == 0 {
            users.remove(&user);
            return false;
        }
        sender.send_if_modified(|current| match current {
            Some(seen) if *seen >= version => false,
            _ => {
                *current = Some(version);
                true
            }
        })
    }

    pub fn subscribe(&self, user: UserId) -> watch::Receiver<Option<LibraryVersion>> {
        self.users().entry(user).or_insert_with(|| watch::channel(None).0).subscribe()
    }

    /// Users with at least one live subscriber here (channels without any are dropped).
    pub fn subscribed_users(&self) -> Vec<UserId> {
        let mut users = self.users();
        users.retain(|_, sender| sender.receiver_count() > 0);
        users.keys().copied().collect()
    }
}

/// Fan-out within one process: the embedded default.
#[derive(Default)]
pub struct InProcessBus {
    local: LocalChannels,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }
}

impl ChangeBus for InProcessBus {
    fn publish(&self, user: UserId, version: LibraryVersion) {
        self.local.deliver(user, version);
    }

    fn subscribe(&self, user: UserId) -> watch::Receiver<Option<LibraryVersion>> {
        self.local.subscribe(user)
    }

    fn revoke(&self, device: DeviceId) {
        self.local.deliver_revocation(device);
    }

    fn revocations(&self) -> broadcast::Receiver<DeviceId> {
        self.local.revocations()
    }

    /// Nothing between a publish and its delivery can fail.
    fn continuity(&self) -> Option<u64> {
        Some(0)
    }

    fn name(&self) -> &'static str {
        "in-process"
    }

    fn spans_instances(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_see_the_latest_version_of_their_user_only() {
        let bus = InProcessBus::new();
        let (alice, bob) = (UserId::new(), UserId::new());
        let mut a = bus.subscribe(alice);
        let b = bus.subscribe(bob);
        bus.publish(alice, LibraryVersion(3));
        bus.publish(alice, LibraryVersion(2));
        a.changed().await.unwrap();
        assert_eq!(*a.borrow_and_update(), Some(LibraryVersion(3)));
        assert_eq!(*b.borrow(), None);
    }

    #[test]
    fn channels_without_subscribers_are_dropped() {
        let local = LocalChannels::default();
        let user = UserId::new();
        let receiver = local.subscribe(user);
        assert_eq!(local.subscribed_users(), vec![user]);
        drop(receiver);
        assert!(local.subscribed_users().is_empty());
        assert!(!local.deliver(user, LibraryVersion(2)));
    }
}
