//! Library versions served from memory while the bus guarantees they are current (ADR 0013).
//!
//! A version check ("anything new?") is the most frequent request a client makes, and on
//! PostgreSQL its one database round trip was nearly all its cost. This instance already hears
//! every committed version of every user — its own commits when they commit, other instances'
//! through the bus — so a version read once from the database can be kept current from then on.
//!
//! An entry is a bus subscription (taken *before* the database read, as a stream does, so no
//! commit falls in between) plus the version that read returned; the answer is the larger of
//! the two. What keeps it honest:
//! - **Only while the bus is continuous.** An entry remembers [`ChangeBus::continuity`] at its
//!   read and is served only while the bus still reports the same value: while the broker is
//!   unreachable (`None`), and after any interruption, reads go to the database again.
//! - **Own commits are visible before their receipt is sent.** The write path publishes on the
//!   bus, which delivers locally at once, before the response: a client never reads an older
//!   version than one it was just told.
//! - **Another instance's commit is visible once the bus delivers it** (milliseconds): the same
//!   moment this instance's streams announce it.
//! - **Nothing lives longer than [`VERSION_CACHE_TTL`]**, so even an announcement the broker
//!   drops without reporting an interruption costs at most one second of staleness.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use shelf_bus::ChangeBus;
use shelf_core::{LibraryVersion, UserId};
use shelf_store::{Store, StoreResult};
use tokio::sync::watch;

/// How long a version read from the database is kept current from the bus before it is read
/// again. Bounds the staleness a silently lost announcement could cause.
pub const VERSION_CACHE_TTL: Duration = Duration::from_secs(1);

/// Independent locks, so checks of different users rarely wait on each other.
const SHARDS: usize = 16;
/// Entries per shard: 65,536 users in all. Beyond that, checks read the database, as before.
const SHARD_CAPACITY: usize = 4096;

struct Entry {
    /// The bus's announcements for the user since just before `read`.
    announced: watch::Receiver<Option<LibraryVersion>>,
    read: LibraryVersion,
    continuity: u64,
    read_at: Instant,
}

impl Entry {
    fn current(&self) -> LibraryVersion {
        self.read.max(self.announced.borrow().unwrap_or(self.read))
    }
}

/// Users' library versions, current as long as the bus is. Cheap to share (`Arc`).
pub struct VersionCache {
    shards: Vec<Mutex<HashMap<UserId, Entry>>>,
    ttl: Duration,
}

impl Default for VersionCache {
    fn default() -> Self {
        Self::with_ttl(VERSION_CACHE_TTL)
    }
}

impl VersionCache {
    pub fn with_ttl(ttl: Duration) -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::default()).collect(), ttl }
    }

    fn shard(&self, user: UserId) -> MutexGuard<'_, HashMap<UserId, Entry>> {
        // User ids are random (v4 UUIDs), so their last byte spreads them evenly.
        let index = usize::from(user.0.as_bytes()[15]) % SHARDS;
        self.shards[index].lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `user`'s current library version: from memory when this instance has kept it current
    /// from the bus since reading it, else from `store` (and kept from then on).
    pub async fn version(&self, store: &dyn Store, bus: &dyn ChangeBus, user: UserId) -> StoreResult<LibraryVersion> {
        let Some(continuity) = bus.continuity() else {
            return store.library_version(user).await;
        };
        if let Some(version) = self.get(user, continuity) {
            return Ok(version);
        }
        // Subscribe before reading, so a commit between the two is announced to the entry.
        let announced = bus.subscribe(user);
        let read = store.library_version(user).await?;
        let entry = Entry { announced, read, continuity, read_at: Instant::now() };
        let version = entry.current();
        // An interruption during the read may have lost an announcement the read did not see.
        if bus.continuity() == Some(continuity) {
            self.insert(user, entry);
        }
        Ok(version)
    }

    fn get(&self, user: UserId, continuity: u64) -> Option<LibraryVersion> {
        let mut shard = self.shard(user);
        let entry = shard.get(&user)?;
        if entry.continuity == continuity && entry.read_at.elapsed() < self.ttl {
            return Some(entry.current());
        }
        shard.remove(&user);
        None
    }

    fn insert(&self, user: UserId, entry: Entry) {
        let mut shard = self.shard(user);
        if shard.len() >= SHARD_CAPACITY {
            shard.retain(|_, entry| entry.read_at.elapsed() < self.ttl);
            if shard.len() >= SHARD_CAPACITY {
                return;
            }
        }
        shard.insert(user, entry);
    }

    /// Drops entries past their TTL, and with them their bus subscriptions (which the bus
    /// would otherwise keep re-reading after every reconnect). Called once a second.
    pub fn sweep(&self) {
        for shard in &self.shards {
            shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).retain(|_, entry| entry.read_at.elapsed() < self.ttl);
        }
    }

    /// Number of cached users (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
