//! Where committed library changes are announced.
//!
//! The server calls [`ChangeBus::publish`] only after a transaction commits, and streams
//! subscribe per user. Each user has a `watch` channel holding the latest version: a slow
//! subscriber never queues events, it just sees the newest version when it next looks, so memory
//! per subscriber is constant (spec RT3). The real-time issue puts cross-instance fan-out behind
//! this same trait.

use std::collections::HashMap;
use std::sync::Mutex;

use shelf_core::{LibraryVersion, UserId};
use tokio::sync::watch;

/// Announces committed library versions to subscribers on this instance (and, for
/// cross-instance implementations, to the other instances).
pub trait ChangeBus: Send + Sync + 'static {
    /// Announces that `user`'s library committed `version`. Never blocks; versions lower than
    /// one already announced are ignored, so announcements may arrive out of order.
    fn publish(&self, user: UserId, version: LibraryVersion);

    /// A receiver of `user`'s latest announced version (`None` until something is announced).
    fn subscribe(&self, user: UserId) -> watch::Receiver<Option<LibraryVersion>>;
}

/// Fan-out within one process: the embedded default.
#[derive(Default)]
pub struct InProcessBus {
    users: Mutex<HashMap<UserId, watch::Sender<Option<LibraryVersion>>>>,
}

impl InProcessBus {
    pub fn new() -> Self {
        Self::default()
    }
}

impl ChangeBus for InProcessBus {
    fn publish(&self, user: UserId, version: LibraryVersion) {
        let mut users = self.users.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sender) = users.get(&user) {
            sender.send_if_modified(|current| match current {
                Some(seen) if *seen >= version => false,
                _ => {
                    *current = Some(version);
                    true
                }
            });
            if sender.receiver_count() == 0 {
                users.remove(&user);
            }
        }
    }

    fn subscribe(&self, user: UserId) -> watch::Receiver<Option<LibraryVersion>> {
        let mut users = self.users.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        users.entry(user).or_insert_with(|| watch::channel(None).0).subscribe()
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
}
