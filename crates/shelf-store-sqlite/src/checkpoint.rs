//! WAL checkpoints on a thread of their own, off the write path.
//!
//! By default SQLite checkpoints inside the COMMIT that pushes the WAL past 1,000 pages: that
//! commit copies every page back into the database file and syncs both files before it returns,
//! so about one write in a hundred waits several milliseconds longer, and so does every write
//! queued behind it on the single writer (the write → event p99 of issue 15). Here the library
//! writer counts its attempts and, every [`NUDGE_EVERY`] of them (about as many pages as SQLite's
//! own threshold) or once a second after any write, wakes this thread, which runs a PASSIVE
//! checkpoint on its own connection: it never blocks the writer or readers, and a write that
//! arrives meanwhile commits at once. The writer keeps a high automatic threshold
//! ([`BACKSTOP_PAGES`]) only as a backstop, should this thread ever fall behind.

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use shelf_store::{StoreError, StoreResult};

use crate::write_tx::err;
use crate::writer::Durability;

/// Attempts between two nudges: one attempt writes about ten pages (material, progress, change
/// entry, version and their indexes), so this is about SQLite's default of 1,000 pages.
pub const NUDGE_EVERY: usize = 100;
/// The writer's own automatic checkpoint threshold, in pages (40 MiB of WAL): reached only if
/// the background checkpoints stop keeping up.
pub const BACKSTOP_PAGES: u32 = 10_000;
/// A write that reached no nudge is checkpointed at most this long after.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The writer's side: counts attempts and wakes the checkpoint thread.
pub struct Checkpointer {
    wake: SyncSender<()>,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// Attempts committed since the last checkpoint started.
    pending: AtomicUsize,
    /// Checkpoints run so far (for tests and logs).
    completed: AtomicU64,
}

impl Checkpointer {
    /// Opens the checkpoint connection and starts its thread; the thread ends when this is dropped.
    pub fn start(path: &Path, durability: Durability) -> StoreResult<Self> {
        let connection = Connection::open(path).map_err(err)?;
        connection.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        // The checkpoint's own syncs follow the configured durability.
        connection.execute_batch(&format!("PRAGMA synchronous = {};", durability.pragma())).map_err(err)?;
        let (wake, woken) = sync_channel(1);
        let shared = Arc::new(Shared::default());
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("shelf-sqlite-checkpoint".into())
            .spawn(move || run(connection, woken, thread_shared))
            .map_err(StoreError::backend)?;
        Ok(Self { wake, shared })
    }

    /// `attempts` were just committed: wake the thread once enough have gathered.
    pub fn committed(&self, attempts: usize) {
        let pending = self.shared.pending.fetch_add(attempts, Ordering::Relaxed) + attempts;
        if pending >= NUDGE_EVERY {
            match self.wake.try_send(()) {
                // Full: a wake-up is already waiting, which covers this one too.
                Ok(()) | Err(TrySendError::Full(())) => {}
                Err(TrySendError::Disconnected(())) => {
                    tracing::error!("the SQLite checkpoint thread stopped; the WAL grows to the backstop")
                }
            }
        }
    }

    /// Background checkpoints run so far.
    #[cfg(test)]
    pub fn completed(&self) -> u64 {
        self.shared.completed.load(Ordering::Relaxed)
    }
}

fn run(connection: Connection, woken: Receiver<()>, shared: Arc<Shared>) {
    loop {
        match woken.recv_timeout(IDLE_CHECK) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if shared.pending.swap(0, Ordering::Relaxed) == 0 {
            continue;
        }
        // (busy, pages in the WAL, pages copied back). PASSIVE copies what no reader still
        // needs and returns; what it leaves is copied by a later one.
        match connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))) {
            Ok((pages, copied)) => tracing::trace!(pages, copied, "checkpointed the WAL"),
            Err(error) => tracing::warn!(%error, "a background WAL checkpoint failed; the next one retries"),
        }
        shared.completed.fetch_add(1, Ordering::Relaxed);
    }
}
