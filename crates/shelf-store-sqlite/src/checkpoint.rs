//! WAL checkpoints on a thread of their own, off the write path.
//!
//! By default SQLite checkpoints inside the COMMIT that pushes the WAL past 1,000 pages: that
//! commit copies every page back into the database file and syncs both files before it returns,
//! so about one write in a hundred waits several milliseconds longer, and so does every write
//! queued behind it on the single writer (the write → event p99 of issue 15). Here the library
//! writer counts its attempts and, every [`NUDGE_EVERY`] of them or once a second after any
//! write, wakes this thread, which runs a PASSIVE checkpoint on its own connection: it never
//! blocks the writer or readers, and a write that arrives meanwhile commits at once. The writer
//! keeps a high automatic threshold ([`BACKSTOP_PAGES`]) only as a backstop, should this thread
//! ever fall behind.
//!
//! The WAL starts over from its beginning only when a write begins with every frame already
//! copied back. Under a steady stream of writes that almost never happens: writes keep
//! committing while this thread copies, so it always ends a few frames short. The WAL then grew
//! to the backstop, and the writer's own checkpoint there (copying about a thousand pages and
//! syncing the database file) stalled every write for 20–100 ms every few seconds: the clustered
//! tail of issue 15 (ADR 0016). So once the WAL is [`RESTART_FRAMES`] long, this thread asks the
//! writer to finish the job between two groups ([`finish`]): only the frames written during the
//! last background checkpoint are left to copy, and the next write starts the WAL over.
//!
//! SQLite syncs the database file only at the end of a checkpoint that copied everything, so the
//! pages of every partial one stayed dirty in the OS cache until then and that one sync — the
//! writer's — flushed megabytes. This thread therefore syncs the database file itself after
//! each of its checkpoints, leaving the writer's sync only its own few pages.
//!
//! That sync is on the same disk as the commits' WAL syncs, and the commits that arrive while it
//! runs wait behind it in the disk's queue. A checkpoint every 100 attempts (about SQLite's own
//! 1,000 pages) synced ~1–2 MB at once, and the writes during it made clusters of 8–11 ms every
//! half second at 200 writes/s: the p99. A checkpoint every 10 attempts syncs a tenth of that
//! and the commits behind it wait a millisecond or two (p99 15.3 → 4.4 ms; ADR 0016, tenth
//! session). [`MIN_INTERVAL`] keeps faster writes from turning that into a sync every
//! millisecond.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use shelf_store::{StoreError, StoreResult};

use crate::write_tx::err;
use crate::writer::Durability;

/// Attempts between two nudges: a create with progress writes seven pages to the WAL (seen with
/// strace), so a checkpoint copies and syncs ~70 pages, not SQLite's default of 1,000.
pub const NUDGE_EVERY: usize = 10;
/// The writer's own automatic checkpoint threshold, in pages (40 MiB of WAL): reached only if
/// the background checkpoints stop keeping up.
pub const BACKSTOP_PAGES: u32 = 10_000;
/// WAL length, in frames (16 MiB), past which the writer is asked to finish a checkpoint
/// itself so that the WAL can start over.
pub const RESTART_FRAMES: i64 = 4_000;
/// A write that reached no nudge is checkpointed at most this long after.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// Least time from the start of one checkpoint to the start of the next. Under a high write rate
/// the nudges come every millisecond or so, and each checkpoint ends with a sync of the database
/// file: this bounds those syncs to 40 a second, each then covering more writes.
pub const MIN_INTERVAL: Duration = Duration::from_millis(25);

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
    /// Set by the thread when the WAL has grown past [`RESTART_FRAMES`]; taken by the writer.
    finish: AtomicBool,
}

impl Checkpointer {
    /// Opens the checkpoint connection and starts its thread; the thread ends when this is dropped.
    pub fn start(path: &Path, durability: Durability) -> StoreResult<Self> {
        let connection = Connection::open(path).map_err(err)?;
        connection.busy_timeout(Duration::from_secs(10)).map_err(err)?;
        // The checkpoint's own syncs follow the configured durability.
        connection.execute_batch(&format!("PRAGMA synchronous = {};", durability.pragma())).map_err(err)?;
        // Only for `sync_data` after a checkpoint; SQLite does all the writing.
        let database = std::fs::File::open(path).map_err(StoreError::backend)?;
        let (wake, woken) = sync_channel(1);
        let shared = Arc::new(Shared::default());
        let thread_shared = shared.clone();
        std::thread::Builder::new()
            .name("shelf-sqlite-checkpoint".into())
            .spawn(move || run(connection, database, woken, thread_shared))
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

    /// Called by the writer between groups: true (once) when the WAL has grown past
    /// [`RESTART_FRAMES`] and the writer should [`finish`] the checkpoint.
    pub fn finish_requested(&self) -> bool {
        self.shared.finish.load(Ordering::Relaxed) && self.shared.finish.swap(false, Ordering::Relaxed)
    }

    /// Background checkpoints run so far.
    #[cfg(test)]
    pub fn completed(&self) -> u64 {
        self.shared.completed.load(Ordering::Relaxed)
    }
}

fn run(connection: Connection, database: std::fs::File, woken: Receiver<()>, shared: Arc<Shared>) {
    loop {
        match woken.recv_timeout(IDLE_CHECK) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if shared.pending.swap(0, Ordering::Relaxed) == 0 {
            continue;
        }
        let started = Instant::now();
        match passive(&connection) {
            Ok((pages, copied)) => {
                tracing::trace!(pages, copied, "checkpointed the WAL");
                if let Err(error) = database.sync_data() {
                    tracing::warn!(%error, "could not sync the database file after a checkpoint; the next one retries");
                }
                if pages >= RESTART_FRAMES {
                    shared.finish.store(true, Ordering::Relaxed);
                }
            }
            Err(error) => tracing::warn!(%error, "a background WAL checkpoint failed; the next one retries"),
        }
        shared.completed.fetch_add(1, Ordering::Relaxed);
        if let Some(rest) = MIN_INTERVAL.checked_sub(started.elapsed()) {
            std::thread::sleep(rest);
        }
    }
}

/// Runs on the writer's connection, between two groups, when [`Checkpointer::finish_requested`]:
/// no write can commit meanwhile, so this copies the few frames the last background checkpoint
/// left and the WAL ends fully copied back; the next write then starts it over. Still PASSIVE:
/// a reader holding an older snapshot makes it end short, and a later request retries.
pub fn finish(connection: &Connection) {
    match passive(connection) {
        Ok((pages, copied)) => tracing::trace!(pages, copied, "the writer finished a WAL checkpoint"),
        Err(error) => tracing::warn!(%error, "the writer could not finish a WAL checkpoint; a later one retries"),
    }
}

/// One PASSIVE checkpoint: it copies what no reader still needs and returns at once; what it
/// leaves is copied by a later one. Answers (frames in the WAL, frames copied back).
fn passive(connection: &Connection) -> rusqlite::Result<(i64, i64)> {
    // The row is (busy, frames in the WAL, frames copied back).
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| Ok((row.get(1)?, row.get(2)?)))
}
