//! Ends streams whose session ended (spec RT5) within the one-second session check, without
//! asking the database about every open stream every second.
//!
//! A session ends in two ways, and each is found by a read that does not grow with the number of
//! open streams:
//! - **Deleted** (logout, revocation, password change, account deletion): a trigger logs the
//!   device in `ended_sessions` (migration 0011). Each check reads the log's last seconds — by
//!   the database's clock, overlapping the previous read by [`OVERLAP`] so a transaction that
//!   committed late is still seen — and ends those devices' streams. The bus's revocations end
//!   them sooner (ADR 0011); this read is what holds when a revocation is lost.
//! - **Expired**: the hub knows each stream's session expiry from its authentication; only
//!   streams past it are checked, and a renewed session's new expiry is remembered.
//!
//! Every [`FULL_CHECK_EVERY`] all open streams are checked as before, for whatever the two reads
//! cannot see (a row removed by hand, a transaction open longer than the overlap).
//!
//! The same read of the log keeps the session cache honest (ADR 0015): the devices it names are
//! evicted, and the cache serves only while these reads keep succeeding.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use shelf_api::ErrorCode;
use shelf_store::Store;

use crate::error::ApiResult;
use crate::realtime::StreamHub;
use crate::service::auth::now;
use crate::service::session_cache::SessionCache;
use shelf_core::DeviceId;

/// How far each read of the ended-session log reaches back before the previous read.
pub const OVERLAP: Duration = Duration::from_secs(10);
/// How often every open stream's session is checked regardless.
pub const FULL_CHECK_EVERY: Duration = Duration::from_secs(60);
/// How long the ended-session log keeps a row (purged hourly).
pub const ENDED_SESSIONS_KEPT: Duration = Duration::from_secs(3600);

/// State of the periodic check, one per instance.
pub struct StreamSessionCheck {
    /// When the last successful read of the log started.
    log_read: Option<Instant>,
    full_check: Option<Instant>,
    /// The devices the last read of the log named: already evicted from the session cache, so
    /// the reads that name them again (for [`OVERLAP`]) evict nothing.
    logged: HashSet<DeviceId>,
}

impl Default for StreamSessionCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamSessionCheck {
    pub fn new() -> Self {
        Self { log_read: None, full_check: None, logged: HashSet::new() }
    }

    /// One check: ends the streams of sessions that ended or expired, and evicts the ended ones
    /// from `sessions`. Returns how many devices' sessions the database was asked about, besides
    /// the log (for tests and diagnostics).
    pub async fn run(&mut self, store: &dyn Store, hub: &StreamHub, sessions: &SessionCache) -> ApiResult<usize> {
        let started = Instant::now();
        let window = self.log_read.map_or(Duration::ZERO, |read| read.elapsed()) + OVERLAP;
        let logged: HashSet<DeviceId> = store.ended_sessions(window).await?.into_iter().collect();
        let new: Vec<DeviceId> = logged.difference(&self.logged).copied().collect();
        sessions.log_read(started, &new);
        for device in &logged {
            hub.close_device(*device, ErrorCode::Unauthenticated);
        }
        self.logged = logged;
        self.log_read = Some(started);

        let at = now();
        let full = self.full_check.is_none_or(|checked| checked.elapsed() >= FULL_CHECK_EVERY);
        let due = if full { hub.connected_devices() } else { hub.expired_devices(at) };
        if due.is_empty() {
            if full {
                self.full_check = Some(started);
            }
            return Ok(0);
        }
        let live: std::collections::HashMap<_, _> = store.session_expiries(&due, at).await?.into_iter().collect();
        for device in &due {
            match live.get(device) {
                Some(expires_at) => hub.extend(*device, *expires_at),
                None => hub.close_device(*device, ErrorCode::Unauthenticated),
            }
        }
        if full {
            self.full_check = Some(started);
        }
        Ok(due.len())
    }
}
