//! A bounded, in-process cache of resolved sessions (ADR 0011, ADR 0015).
//!
//! Every authenticated request used to read its session from the database; on PostgreSQL that
//! round trip was half the cost of a version check, and on SQLite, where every commit empties
//! the readers' page caches, it was a seventh of the server's CPU per write. This cache keeps
//! what `Store::session_by_token_hash` returned for at most [`SESSION_CACHE_TTL`], keyed by the
//! token's SHA-256 (never the token itself).
//!
//! What keeps it from serving a session that ended:
//! - **It never extends a session.** A hit is served only while the cached `expires_at` is in the
//!   future; past it the database is asked again (which also sees a renewal made elsewhere).
//! - **Revocations evict at once** on every instance: the bus carries them
//!   ([`shelf_bus::ChangeBus::revoke`]) and [`evict_revocations`] removes the device's entries.
//! - **A revocation the bus lost is evicted by the next session check** (ADR 0015): once a
//!   second every instance reads the database's log of ended sessions (written by a trigger in
//!   the transaction that ended them) and evicts those devices ([`SessionCache::log_read`]).
//! - **Nothing is served while that check is late.** An entry is served only while the last
//!   successful read of the log started less than one check interval ago, so a database that
//!   cannot be read, or a check that stalls, turns the cache off rather than stretching the
//!   bound; between the end of one interval and the end of the next read (a few milliseconds a
//!   second) requests read the database. A session ended anywhere is thus refused everywhere
//!   within the check interval (one second), as with the one-second time to live this cache had
//!   before.
//! - **A revocation racing a database read cannot be undone by it.** Every eviction bumps a
//!   generation; a read inserts its result only if no eviction happened since it started.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use shelf_core::DeviceId;
use shelf_store::SessionAuth;
use time::OffsetDateTime;
use tokio::sync::broadcast::error::RecvError;

/// The longest a resolved session is served from memory. Revocations are bounded by the session
/// check, not by this (ADR 0015); it only caps how long an entry lives, as the full stream
/// check does (`stream_sessions::FULL_CHECK_EVERY`).
pub const SESSION_CACHE_TTL: Duration = Duration::from_secs(60);

/// Independent locks, so requests of different tokens rarely wait on each other.
const SHARDS: usize = 16;
/// Entries per shard: 65,536 sessions in all, a few MiB. More distinct tokens than that within a
/// TTL are served from the database, as before the cache.
const SHARD_CAPACITY: usize = 4096;

/// SHA-256 of a bearer token or cookie value.
pub type TokenDigest = [u8; 32];

struct Entry {
    session: SessionAuth,
    cached_at: Instant,
}

/// Resolved sessions by token digest. Cheap to share (`Arc`).
pub struct SessionCache {
    shards: Vec<Mutex<HashMap<TokenDigest, Entry>>>,
    /// Bumped by every eviction; see [`SessionCache::generation`].
    generation: AtomicU64,
    ttl: Duration,
    /// When the last successful read of the ended-session log started (see [`Self::log_read`]),
    /// in nanoseconds after `base`, plus one; 0 until the first. An atomic, not a lock: every
    /// request reads it.
    checked: AtomicU64,
    base: Instant,
    /// How long after that start entries are still served.
    serve_for: Duration,
}

impl Default for SessionCache {
    /// With the default one-second session check.
    fn default() -> Self {
        Self::new(Duration::from_secs(1))
    }
}

impl SessionCache {
    /// A cache kept current by a session check every `check_interval`.
    pub fn new(check_interval: Duration) -> Self {
        Self::with_limits(SESSION_CACHE_TTL, check_interval)
    }

    /// Entries live at most `ttl`, and are served only within `serve_for` of the start of the
    /// last read of the ended-session log.
    pub fn with_limits(ttl: Duration, serve_for: Duration) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            generation: AtomicU64::new(0),
            ttl,
            checked: AtomicU64::new(0),
            base: Instant::now(),
            serve_for,
        }
    }

    /// A read of the ended-session log that started at `started` succeeded and `ended` are the
    /// devices it found that were not evicted before: evict them, and serve entries for another
    /// check interval. Everything ended before `started` has now been evicted (by this read or
    /// an earlier one), which is what makes serving until the next check safe.
    pub fn log_read(&self, started: Instant, ended: &[DeviceId]) {
        if !ended.is_empty() {
            self.evict_devices(ended);
        }
        let since_base = u64::try_from(started.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX - 1);
        self.checked.fetch_max(since_base + 1, Ordering::SeqCst);
    }

    /// Whether the ended-session log was read recently enough for entries to be served.
    fn current(&self) -> bool {
        match self.checked.load(Ordering::SeqCst) {
            0 => false,
            checked => self.base.elapsed().saturating_sub(Duration::from_nanos(checked - 1)) < self.serve_for,
        }
    }

    fn shard(&self, digest: &TokenDigest) -> MutexGuard<'_, HashMap<TokenDigest, Entry>> {
        // The digest is uniformly random, so its first byte spreads tokens evenly.
        self.shards[usize::from(digest[0]) % SHARDS].lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The cached session of `digest`, if cached within the TTL, not expired at `now`, and the
    /// ended-session log was read recently (see the module doc).
    pub fn get(&self, digest: &TokenDigest, now: OffsetDateTime) -> Option<SessionAuth> {
        if !self.current() {
            return None;
        }
        let mut shard = self.shard(digest);
        let entry = shard.get(digest)?;
        if entry.cached_at.elapsed() < self.ttl && now < entry.session.expires_at {
            return Some(entry.session.clone());
        }
        shard.remove(digest);
        None
    }

    /// Take this before reading a session from the database, and hand it to [`insert`]: an
    /// eviction in between (a revocation the read may not have seen) then keeps the result out.
    ///
    /// [`insert`]: SessionCache::insert
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Caches `session`, unless something was evicted since `generation` was taken or the shard
    /// is full of live entries.
    pub fn insert(&self, digest: TokenDigest, session: SessionAuth, generation: u64) {
        let mut shard = self.shard(&digest);
        // Checked under the shard's lock: an eviction bumps the generation before it takes the
        // locks, so it either sees this entry or this check sees its bump.
        if self.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        if shard.len() >= SHARD_CAPACITY {
            shard.retain(|_, entry| entry.cached_at.elapsed() < self.ttl);
            if shard.len() >= SHARD_CAPACITY {
                return;
            }
        }
        shard.insert(digest, Entry { session, cached_at: Instant::now() });
    }

    /// Records that `digest`'s session was renewed at `at`, so the next requests do not renew it
    /// again. Only the last-seen time changes: the expiry stays what the database said, as the
    /// renewal may not have committed (and may never). Nothing is added: an entry evicted
    /// meanwhile stays out.
    pub fn seen(&self, digest: &TokenDigest, at: OffsetDateTime) {
        if let Some(entry) = self.shard(digest).get_mut(digest) {
            entry.session.last_seen_at = entry.session.last_seen_at.max(at);
        }
    }

    /// Forgets every token of these devices.
    pub fn evict_devices(&self, devices: &[DeviceId]) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            shard.retain(|_, entry| !devices.contains(&entry.session.device_id));
        }
    }

    /// Forgets everything (revocations may have been missed).
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        for shard in &self.shards {
            shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
        }
    }

    /// Number of cached sessions (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Follows the bus's revocations until it closes: evicts each revoked device from `cache` and
/// ends its streams on this instance (`close`) at once, instead of at the next session check.
/// Revocations arriving together are evicted in one pass; a lag clears the whole cache.
pub async fn evict_revocations(
    cache: Arc<SessionCache>,
    mut revocations: tokio::sync::broadcast::Receiver<DeviceId>,
    close: impl Fn(DeviceId) + Send + 'static,
) {
    loop {
        let mut devices = match revocations.recv().await {
            Ok(device) => vec![device],
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "fell behind on revocations; dropping every cached session");
                cache.clear();
                continue;
            }
            Err(RecvError::Closed) => return,
        };
        while let Ok(device) = revocations.try_recv() {
            devices.push(device);
        }
        cache.evict_devices(&devices);
        for device in devices {
            close(device);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
mod tests {
    use super::*;
    use shelf_core::UserId;

    /// `cache`, as if the ended-session log had just been read.
    fn checked(cache: SessionCache) -> SessionCache {
        cache.log_read(Instant::now(), &[]);
        cache
    }

    fn session(expires_in: time::Duration) -> SessionAuth {
        let now = OffsetDateTime::now_utc();
        SessionAuth { user_id: UserId::new(), device_id: DeviceId::new(), last_seen_at: now, expires_at: now + expires_in }
    }

    #[test]
    fn a_cached_session_is_served_until_its_own_expiry_and_never_after() {
        let cache = checked(SessionCache::with_limits(Duration::from_secs(3600), Duration::from_secs(3600)));
        let cached = session(time::Duration::seconds(30));
        cache.insert([1; 32], cached.clone(), cache.generation());
        let now = OffsetDateTime::now_utc();
        assert_eq!(cache.get(&[1; 32], now).map(|s| s.device_id), Some(cached.device_id));
        assert!(cache.get(&[1; 32], cached.expires_at).is_none(), "not at its expiry");
        assert!(cache.get(&[1; 32], now).is_none(), "and the expired entry is gone");
    }

    #[test]
    fn a_renewal_moves_the_cached_last_seen_time_only_and_adds_nothing() {
        let cache = checked(SessionCache::with_limits(Duration::from_secs(3600), Duration::from_secs(3600)));
        let cached = session(time::Duration::seconds(30));
        cache.insert([5; 32], cached.clone(), cache.generation());
        let later = cached.last_seen_at + time::Duration::minutes(2);
        cache.seen(&[5; 32], later);
        let served = cache.get(&[5; 32], OffsetDateTime::now_utc()).expect("still cached");
        assert_eq!(served.last_seen_at, later);
        assert_eq!(served.expires_at, cached.expires_at, "the renewal may not have committed: the expiry is the database's");
        cache.seen(&[6; 32], later);
        assert!(cache.get(&[6; 32], OffsetDateTime::now_utc()).is_none(), "an uncached token stays uncached");
    }

    #[test]
    fn entries_older_than_the_ttl_are_not_served() {
        let cache = checked(SessionCache::with_limits(Duration::ZERO, Duration::from_secs(3600)));
        cache.insert([2; 32], session(time::Duration::hours(1)), cache.generation());
        assert!(cache.get(&[2; 32], OffsetDateTime::now_utc()).is_none());
    }

    #[test]
    fn evicting_a_device_removes_it_and_keeps_out_reads_that_raced_the_eviction() {
        let cache = checked(SessionCache::default());
        let (revoked, kept) = (session(time::Duration::hours(1)), session(time::Duration::hours(1)));
        cache.insert([3; 32], revoked.clone(), cache.generation());
        cache.insert([4; 32], kept.clone(), cache.generation());
        let before_the_read = cache.generation();
        cache.evict_devices(&[revoked.device_id]);
        let now = OffsetDateTime::now_utc();
        assert!(cache.get(&[3; 32], now).is_none());
        assert!(cache.get(&[4; 32], now).is_some());
        // A database read that started before the eviction may have seen the session alive.
        cache.insert([3; 32], revoked, before_the_read);
        assert!(cache.get(&[3; 32], now).is_none(), "a stale read does not resurrect it");
    }

    #[test]
    fn nothing_is_served_unless_the_ended_session_log_was_read_recently() {
        let cache = SessionCache::with_limits(Duration::from_secs(3600), Duration::from_millis(50));
        let cached = session(time::Duration::hours(1));
        cache.insert([6; 32], cached.clone(), cache.generation());
        let now = OffsetDateTime::now_utc();
        assert!(cache.get(&[6; 32], now).is_none(), "not before the first read of the log");
        cache.log_read(Instant::now(), &[]);
        assert!(cache.get(&[6; 32], now).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(&[6; 32], now).is_none(), "not once the check is late");
        // A read that started earlier than the last one does not move the mark back.
        cache.log_read(Instant::now(), &[]);
        cache.log_read(Instant::now() - Duration::from_secs(1), &[]);
        assert!(cache.get(&[6; 32], now).is_some(), "served again after a timely read");
        // A device the log names is evicted, and a read that raced it cannot put it back.
        let before_the_read = cache.generation();
        cache.log_read(Instant::now(), &[cached.device_id]);
        assert!(cache.get(&[6; 32], now).is_none());
        cache.insert([6; 32], cached, before_the_read);
        assert!(cache.get(&[6; 32], now).is_none());
    }

    #[test]
    fn a_full_shard_serves_from_the_database_instead_of_growing() {
        let cache = SessionCache::default();
        for i in 0..=SHARD_CAPACITY {
            let mut digest = [0u8; 32];
            digest[1..9].copy_from_slice(&(i as u64).to_le_bytes());
            cache.insert(digest, session(time::Duration::hours(1)), cache.generation());
        }
        assert_eq!(cache.len(), SHARD_CAPACITY);
    }

    #[tokio::test]
    async fn revocations_from_the_bus_evict_and_close_streams() {
        let cache = Arc::new(checked(SessionCache::default()));
        let bus = shelf_bus::InProcessBus::new();
        let cached = session(time::Duration::hours(1));
        cache.insert([5; 32], cached.clone(), cache.generation());
        let (closed_tx, mut closed_rx) = tokio::sync::mpsc::unbounded_channel();
        let follower = tokio::spawn(evict_revocations(cache.clone(), shelf_bus::ChangeBus::revocations(&bus), move |device| {
            closed_tx.send(device).unwrap();
        }));
        shelf_bus::ChangeBus::revoke(&bus, cached.device_id);
        assert_eq!(closed_rx.recv().await, Some(cached.device_id));
        assert!(cache.is_empty());
        follower.abort();
    }
}
