//! Rendered event bytes shared by the streams of one user.
//!
//! One commit wakes every stream of the user at once, and a bare announcement
//! (`{"epoch", "libraryVersion"}`) is the same bytes for all of them: the first stream renders
//! it, the others clone a reference. Memory is fixed: one slot per user hash, and a user whose
//! slot was taken by another simply renders again.

use std::hash::BuildHasher;
use std::sync::Mutex;

use bytes::Bytes;
use shelf_core::{LibraryVersion, UserId};

const SLOTS: usize = 1024;

type Slot = Mutex<Option<(UserId, LibraryVersion, Bytes)>>;

pub struct RenderedEvents {
    slots: Box<[Slot]>,
    hasher: std::collections::hash_map::RandomState,
}

impl Default for RenderedEvents {
    fn default() -> Self {
        Self { slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(), hasher: Default::default() }
    }
}

impl RenderedEvents {
    /// The bytes of `user`'s event for `version`, rendered by `render` only if no other stream
    /// of the user rendered them already.
    pub fn get_or_render(&self, user: UserId, version: LibraryVersion, render: impl FnOnce() -> Bytes) -> Bytes {
        let slot = &self.slots[self.hasher.hash_one(user) as usize % SLOTS];
        let mut slot = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match &*slot {
            Some((u, v, bytes)) if *u == user && *v == version => bytes.clone(),
            _ => {
                let bytes = render();
                *slot = Some((user, version, bytes.clone()));
                bytes
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_once_per_user_and_version() {
        let cache = RenderedEvents::default();
        let (a, b) = (UserId(uuid::Uuid::new_v4()), UserId(uuid::Uuid::new_v4()));
        let mut renders = 0;
        for user in [a, a, b, a] {
            cache.get_or_render(user, LibraryVersion(1), || {
                renders += 1;
                Bytes::from(format!("{}", user.0))
            });
        }
        assert!(renders <= 3, "a and b may share a slot, but a's repeats hit while it holds it");
        let again = cache.get_or_render(a, LibraryVersion(2), || Bytes::from_static(b"v2"));
        assert_eq!(again, Bytes::from_static(b"v2"), "a new version renders anew");
    }
}
