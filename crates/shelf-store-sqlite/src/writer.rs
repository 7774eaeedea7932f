//! Runs the write path's attempts on SQLite's single writer connection, committing them in
//! groups.
//!
//! An acknowledged write must be on disk (`synchronous = FULL` by default): with one fsync per
//! commit, writers would queue on the disk. So one thread owns the writer connection and takes
//! every attempt that is waiting (up to [`MAX_GROUP`]) into one transaction: each attempt runs
//! inside its own savepoint, so one that fails rolls back alone, and all of them are answered
//! only after the single COMMIT — one fsync for the whole group. Each attempt still gets its own
//! version, change entries and receipt, exactly as if it had committed alone.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::Connection;
use shelf_core::MergeBudget;
use shelf_store::write::{attempt, Attempt, Job, Prepared, WriteBackend};
use shelf_store::{StoreError, StoreResult};
use tokio::sync::{mpsc, oneshot};

use crate::checkpoint::{self, Checkpointer, BACKSTOP_PAGES};
use crate::write_tx::{err, SqliteWriteTx};

/// Most attempts committed together: bounds how long the first of a burst waits for the rest.
pub const MAX_GROUP: usize = 64;

/// How durable an acknowledged write is (`--sqlite-synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = FULL`: a write is acknowledged only once it is on disk; survives power
    /// loss and OS crashes.
    #[default]
    Full,
    /// `synchronous = NORMAL`: survives a crash of Shelf itself, but a power loss or OS crash can
    /// lose the last acknowledged writes. Faster on slow disks.
    Normal,
}

impl Durability {
    pub fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

struct Request {
    job: Arc<Job>,
    prepared: Option<Arc<Prepared>>,
    budget: MergeBudget,
    reply: oneshot::Sender<StoreResult<Attempt>>,
}

/// The single library writer: a thread owning the connection, fed by a queue.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::UnboundedSender<Request>,
    /// The writer thread owns the checkpointer; tests read its count through this handle.
    #[cfg(test)]
    checkpoints: Arc<Checkpointer>,
}

impl Writer {
    pub fn open(path: &Path, durability: Durability) -> StoreResult<Self> {
        let connection = Connection::open(path).map_err(err)?;
        connection.busy_timeout(std::time::Duration::from_secs(10)).map_err(err)?;
        // Checkpoints run on their own thread (checkpoint.rs); the writer's automatic one is a backstop.
        // `temp_store = MEMORY`: an attempt's savepoint journal stays in memory; by default one
        // past 64 KiB spilled to a temporary file, created and deleted within the transaction.
        let pragmas = format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = {}; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = {}; PRAGMA temp_store = MEMORY;",
            durability.pragma(),
            BACKSTOP_PAGES
        );
        connection.execute_batch(&pragmas).map_err(err)?;
        let checkpoints = Arc::new(Checkpointer::start(path, durability)?);
        let (queue, requests) = mpsc::unbounded_channel();
        #[cfg(test)]
        let thread_checkpoints = checkpoints.clone();
        #[cfg(not(test))]
        let thread_checkpoints = checkpoints;
        std::thread::Builder::new()
            .name("shelf-sqlite-writer".into())
            .spawn(move || run(connection, requests, &thread_checkpoints))
            .map_err(StoreError::backend)?;
        Ok(Self {
            queue,
            #[cfg(test)]
            checkpoints,
        })
    }

    /// Background WAL checkpoints run so far.
    #[cfg(test)]
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints.completed()
    }
}

#[async_trait]
impl WriteBackend for Writer {
    async fn attempt(&self, job: Arc<Job>, prepared: Option<Arc<Prepared>>, budget: MergeBudget) -> StoreResult<Attempt> {
        let (reply, answer) = oneshot::channel();
        let stopped = || StoreError::backend(std::io::Error::other("the SQLite writer thread stopped"));
        self.queue.send(Request { job, prepared, budget, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The writer thread: waits for work, then commits everything waiting as one group. Ends when
/// every [`Writer`] is gone.
fn run(mut connection: Connection, mut requests: mpsc::UnboundedReceiver<Request>, checkpoints: &Checkpointer) {
    while let Some(first) = requests.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match requests.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        let results = commit_group(&mut connection, &group);
        checkpoints.committed(group.len());
        for (request, result) in group.into_iter().zip(results) {
            // The caller may have gone away (its request was cancelled); the write stands.
            let _ = request.reply.send(result);
        }
        // After the answers, so that no caller of this group waits for it.
        if checkpoints.finish_requested() {
            checkpoint::finish(&connection);
        }
    }
}

/// Runs each request in its own savepoint inside one transaction and commits once. If the
/// commit fails, every request of the group fails (nothing of it was written).
fn commit_group(conn: &mut Connection, group: &[Request]) -> Vec<StoreResult<Attempt>> {
    if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
        return group.iter().map(|_| Err(err(clone_error(&error)))).collect();
    }
    if let [alone] = group {
        return vec![commit_alone(conn, alone)];
    }
    let mut results = Vec::with_capacity(group.len());
    for request in group {
        match run_in_savepoint(conn, request) {
            Ok(result) => results.push(result),
            Err(broken) => {
                // A savepoint that cannot be released or rolled back leaves the transaction in an
                // unknown state: give up the whole group rather than commit half of an attempt.
                if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                    tracing::error!(%rollback, "could not roll back a broken group");
                }
                return group.iter().map(|_| Err(err(clone_error(&broken)))).collect();
            }
        }
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => results,
        Err(error) => {
            // A failed COMMIT leaves the transaction open: end it before the next group.
            if let Err(rollback) = conn.execute_batch("ROLLBACK") {
                tracing::error!(%rollback, "could not roll back after a failed commit");
            }
            group.iter().map(|_| Err(err(clone_error(&error)))).collect()
        }
    }
}

/// A group of one needs no savepoint: the transaction is the attempt's own, so an attempt that
/// does not keep its writes rolls the whole transaction back. This spares the savepoint's
/// journal, a copy of every page the attempt changes, on the usual path of a lone write.
fn commit_alone(conn: &mut Connection, request: &Request) -> StoreResult<Attempt> {
    let mut tx = SqliteWriteTx { conn };
    // As in `run_in_savepoint`: the primitives wait on nothing but SQLite.
    let result = futures::executor::block_on(attempt(&mut tx, &request.job, request.prepared.as_deref(), request.budget));
    let end = if matches!(result, Ok(Attempt::Done(_))) { "COMMIT" } else { "ROLLBACK" };
    match tx.conn.execute_batch(end) {
        Ok(()) => result,
        Err(error) => {
            // A failed COMMIT leaves the transaction open: end it before the next group.
            if let Err(rollback) = tx.conn.execute_batch("ROLLBACK") {
                tracing::error!(%rollback, "could not roll back after a failed commit");
            }
            Err(err(error))
        }
    }
}

/// One attempt in its own savepoint: its answer, or the error that broke the savepoint itself.
fn run_in_savepoint(conn: &mut Connection, request: &Request) -> Result<StoreResult<Attempt>, rusqlite::Error> {
    conn.execute_batch("SAVEPOINT attempt")?;
    let mut tx = SqliteWriteTx { conn };
    // The primitives never wait on anything but SQLite itself, so this completes without ever
    // parking the thread.
    let result = futures::executor::block_on(attempt(&mut tx, &request.job, request.prepared.as_deref(), request.budget));
    let keep = matches!(result, Ok(Attempt::Done(_)));
    let end = if keep { "RELEASE attempt" } else { "ROLLBACK TO attempt; RELEASE attempt" };
    tx.conn.execute_batch(end)?;
    Ok(result)
}

/// rusqlite errors are not `Clone`; a group's shared failure is reported to each member.
fn clone_error(error: &rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(code, message) => rusqlite::Error::SqliteFailure(*code, message.clone()),
        other => rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_ERROR), Some(other.to_string())),
    }
}
