//! Runs the write path's attempts on PostgreSQL, committing one user's concurrent attempts in
//! groups (ADR 0012).
//!
//! One user's writers serialise on the user's row lock anyway; committed one by one, each also
//! waits for its own commit flush, so a user's burst of writes crawled at one flush per write.
//! Instead, an instance queues each user's attempts, and one task per user with waiting attempts
//! runs up to [`MAX_GROUP`] of them in one transaction: it takes the row lock once, reads the
//! materials and progress the attempts need in one statement, runs the attempts one after
//! another, writes the change-feed entries and the version once and commits once. An attempt
//! that fails after it may have written rows (the database refused one) sends the group back to
//! its start, and the group runs again with each attempt in its own savepoint, so that one fails
//! alone. Each attempt still gets its own version, change entries and receipt, and every caller
//! is answered only after the commit; if anything breaks the transaction or the commit fails,
//! every attempt of the group gets the error — none is acknowledged uncommitted.
//!
//! Users never wait on each other's queues: a user's queue exists only while it has attempts
//! waiting or running, and its task removes it when it runs dry. Across instances the row lock
//! still serialises everything: two instances grouping the same user take turns on it.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use shelf_core::{MaterialId, MergeBudget, UserId};
use shelf_store::write::{attempt, Attempt, Job, Prepared, WriteBackend, WriteTx};
use shelf_store::{StoreError, StoreResult};
use sqlx::PgPool;
use tokio::sync::oneshot;

use crate::db_err;
use crate::write_tx::PgWriteTx;

/// Most attempts in one transaction. Bounds how long the first of a burst waits for the rest,
/// and keeps a group's subtransactions (one per savepoint that writes) within the 64 that
/// PostgreSQL caches per backend; beyond that every snapshot in the cluster gets slower.
pub const MAX_GROUP: usize = 64;

struct Request {
    job: Arc<Job>,
    prepared: Option<Arc<Prepared>>,
    budget: MergeBudget,
    reply: oneshot::Sender<StoreResult<Attempt>>,
}

/// Each user with attempts waiting or running, and those waiting. An entry exists exactly while
/// that user's task runs.
type Queues = Arc<Mutex<HashMap<UserId, Vec<Request>>>>;

/// The library writer: per-user queues on one pool.
#[derive(Clone)]
pub struct Writer {
    pool: PgPool,
    queues: Queues,
    counts: Arc<Counts>,
}

#[derive(Default)]
struct Counts {
    commits: AtomicU64,
    committed_attempts: AtomicU64,
}

/// What the writer holds and has done, read without touching the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Users with a queue: attempts waiting or running.
    pub queued_users: usize,
    /// Attempts waiting for a group (not counting those running).
    pub waiting: usize,
    /// Group transactions committed, and the attempts they answered.
    pub commits: u64,
    pub committed_attempts: u64,
}

impl Writer {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            queues: Arc::default(),
            counts: Arc::default(),
        }
    }

    pub fn stats(&self) -> WriterStats {
        let queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
        WriterStats {
            queued_users: queues.len(),
            waiting: queues.values().map(Vec::len).sum(),
            commits: self.counts.commits.load(Ordering::Relaxed),
            committed_attempts: self.counts.committed_attempts.load(Ordering::Relaxed),
        }
    }
}

#[async_trait]
impl WriteBackend for Writer {
    async fn attempt(
        &self,
        job: Arc<Job>,
        prepared: Option<Arc<Prepared>>,
        budget: MergeBudget,
    ) -> StoreResult<Attempt> {
        let user = job.user;
        let (reply, answer) = oneshot::channel();
        let request = Request {
            job,
            prepared,
            budget,
            reply,
        };
        let start = match self
            .queues
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(user)
        {
            Entry::Occupied(mut waiting) => {
                waiting.get_mut().push(request);
                false
            }
            Entry::Vacant(slot) => {
                slot.insert(vec![request]);
                true
            }
        };
        if start {
            // A task of its own, not this caller's future: a caller that goes away (its request
            // was cancelled) must not strand the attempts queued behind it.
            tokio::spawn(run_user(
                self.pool.clone(),
                self.queues.clone(),
                self.counts.clone(),
                user,
            ));
        }
        answer.await.map_err(|_| {
            StoreError::backend(std::io::Error::other("the PostgreSQL writer task stopped"))
        })?
    }
}

/// Removes the user's queue if the task ends without emptying it (a panic, or the runtime
/// shutting down): the callers waiting in it get an error instead of waiting forever.
struct QueueGuard {
    queues: Queues,
    user: UserId,
    drained: bool,
}

impl Drop for QueueGuard {
    fn drop(&mut self) {
        if !self.drained {
            self.queues
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&self.user);
        }
    }
}

/// One user's task: commits what is waiting, group after group, until nothing is.
async fn run_user(pool: PgPool, queues: Queues, counts: Arc<Counts>, user: UserId) {
    let mut guard = QueueGuard {
        queues: queues.clone(),
        user,
        drained: false,
    };
    loop {
        let group: Vec<Request> = {
            let mut map = queues.lock().unwrap_or_else(PoisonError::into_inner);
            let waiting = map.get_mut(&user).map(std::mem::take).unwrap_or_default();
            if waiting.is_empty() {
                map.remove(&user);
                guard.drained = true;
                return;
            }
            let mut waiting = waiting;
            if waiting.len() > MAX_GROUP {
                // The rest stays queued, in order, for the next group.
                let rest = waiting.split_off(MAX_GROUP);
                map.insert(user, rest);
            }
            waiting
        };
        commit_group(pool.clone(), user, group, counts.clone()).await;
    }
}

/// Runs the group in one transaction, commits once, then answers each request.
///
/// Owns its arguments and is boxed, as `async_trait` would: with borrowed arguments the compiler
/// cannot prove the write path's nested futures `Send` for every lifetime, which `tokio::spawn`
/// asks of `run_user`.
fn commit_group(
    pool: PgPool,
    user: UserId,
    group: Vec<Request>,
    counts: Arc<Counts>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async move {
        let results = run_group(&pool, user, &group, &counts).await;
        for (request, result) in group.into_iter().zip(results) {
            // The caller may have gone away (its request was cancelled); the write stands.
            let _ = request.reply.send(result);
        }
    })
}

async fn run_group(
    pool: &PgPool,
    user: UserId,
    group: &[Request],
    counts: &Counts,
) -> Vec<StoreResult<Attempt>> {
    let mut tx = match pool.begin().await {
        Ok(tx) => PgWriteTx::new(tx),
        Err(error) => return fail_all(group.len(), db_err(error)),
    };
    if let [request] = group {
        // Alone: no savepoint needed, a failure rolls the whole transaction back.
        let result = attempt(
            &mut tx,
            &request.job,
            request.prepared.as_deref(),
            request.budget,
        )
        .await;
        if !matches!(result, Ok(Attempt::Done(_))) {
            return vec![result]; // Dropping the transaction rolls it back.
        }
        return match commit(tx, counts, 1).await {
            Ok(()) => vec![result],
            Err(error) => vec![Err(error)],
        };
    }
    // The lock first, outside any savepoint: no rollback can give it back.
    if let Err(error) = tx.lock_user(user).await {
        return fail_all(group.len(), error);
    }
    let ids: Vec<MaterialId> = group.iter().map(|request| request.job.mutation.material_id()).collect();
    if let Err(error) = tx.prefetch(user, &ids).await {
        return fail_all(group.len(), error);
    }
    if let Err(error) = run_simple(&mut tx, "SAVEPOINT group_start").await {
        return fail_all(group.len(), db_err(error));
    }
    let start = tx.mark();
    // Optimistic: the attempts run one after another with no savepoint of their own (a round
    // trip less each). Almost every attempt either finishes or stops before its first write.
    let mut results = Vec::with_capacity(group.len());
    for (index, request) in group.iter().enumerate() {
        let result = attempt(&mut tx, &request.job, request.prepared.as_deref(), request.budget).await;
        if left_nothing_behind(&result) {
            results.push(result);
            continue;
        }
        // This one may have written part of its rows or broken the transaction: back to the
        // group's start, and the group again with each attempt in its own savepoint, except this
        // one, which keeps its error.
        if let Err(error) = run_simple(&mut tx, "ROLLBACK TO SAVEPOINT group_start").await {
            return fail_all(group.len(), db_err(error));
        }
        tx.rollback_to(start);
        results = match in_savepoints(&mut tx, group, (index, result)).await {
            Ok(results) => results,
            Err(error) => return fail_all(group.len(), db_err(error)),
        };
        break;
    }
    match commit(tx, counts, group.len()).await {
        Ok(()) => results,
        Err(error) => fail_all(group.len(), error),
    }
}

/// Whether an attempt ended with the transaction as good as it found it or with all its rows
/// written: done, or stopped before its first write (planning outside the lock, or a plan that
/// fails — `WriteTx` primitives never return [`StoreError::Plan`]).
fn left_nothing_behind(result: &StoreResult<Attempt>) -> bool {
    matches!(result, Ok(_) | Err(StoreError::Plan(_)))
}

/// Runs the group's attempts each in its own savepoint, so one that fails rolls back alone;
/// `failed` (its index and result) is not run again.
async fn in_savepoints(
    tx: &mut PgWriteTx,
    group: &[Request],
    failed: (usize, StoreResult<Attempt>),
) -> Result<Vec<StoreResult<Attempt>>, sqlx::Error> {
    let (failed_index, failed_result) = failed;
    let mut results = Vec::with_capacity(group.len());
    let mut savepoint = Savepoint::None;
    for (index, request) in group.iter().enumerate() {
        if index == failed_index {
            continue;
        }
        match savepoint {
            Savepoint::None => run_simple(tx, "SAVEPOINT attempt").await?,
            Savepoint::Kept => run_simple(tx, "RELEASE SAVEPOINT attempt; SAVEPOINT attempt").await?,
            Savepoint::Clean => {}
        }
        let mark = tx.mark();
        let result = attempt(tx, &request.job, request.prepared.as_deref(), request.budget).await;
        if matches!(result, Ok(Attempt::Done(_))) {
            savepoint = Savepoint::Kept;
        } else {
            // Undo this attempt alone; the savepoint stays, clean, for the next one.
            run_simple(tx, "ROLLBACK TO SAVEPOINT attempt").await?;
            tx.rollback_to(mark);
            savepoint = Savepoint::Clean;
        }
        results.push(result);
    }
    results.insert(failed_index, failed_result);
    Ok(results)
}

/// Runs statements without parameters in one round trip (the simple query protocol).
async fn run_simple(tx: &mut PgWriteTx, sql: &'static str) -> Result<(), sqlx::Error> {
    use sqlx::Executor;
    tx.tx.execute(sql).await.map(|_| ())
}

/// The state of the one savepoint a group reuses.
#[derive(Clone, Copy)]
enum Savepoint {
    /// Not taken yet.
    None,
    /// Holds a finished attempt's writes: release it, then take a new one.
    Kept,
    /// Just rolled back to: holds nothing, usable as it is.
    Clean,
}

async fn commit(mut tx: PgWriteTx, counts: &Counts, attempts: usize) -> StoreResult<()> {
    tx.flush().await?;
    tx.tx.commit().await.map_err(db_err)?;
    counts.commits.fetch_add(1, Ordering::Relaxed);
    counts
        .committed_attempts
        .fetch_add(attempts as u64, Ordering::Relaxed);
    Ok(())
}

/// The same failure for every attempt of a group: nothing of it was committed.
fn fail_all(count: usize, error: StoreError) -> Vec<StoreResult<Attempt>> {
    match error {
        StoreError::UserNotFound => (0..count).map(|_| Err(StoreError::UserNotFound)).collect(),
        other => {
            let shared = Arc::new(other);
            (0..count)
                .map(|_| Err(StoreError::backend(GroupFailed(shared.clone()))))
                .collect()
        }
    }
}

/// A failure of the transaction a group shared, reported to each of its attempts.
#[derive(Debug)]
struct GroupFailed(Arc<StoreError>);

impl std::fmt::Display for GroupFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the group commit failed, nothing of it was written: {}",
            self.0
        )
    }
}

impl std::error::Error for GroupFailed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}
