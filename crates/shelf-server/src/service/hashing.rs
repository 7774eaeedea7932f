//! Password hashing on a bounded pool: one argon2id run per core, a bounded line behind them.
//!
//! Each run holds 19 MiB and a core for tens of milliseconds. Unbounded, a burst of logins
//! spawned hundreds of blocking threads (seen: 24 GB, OOM-killed at 256 concurrent logins);
//! queued without end, 200 wrong-password logins made a real login wait behind all of them. So
//! at most `queue` requests wait for a core and the rest are shed at once with 503 and
//! `Retry-After` (spec AU8): a client retries later instead of holding a connection open.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::error::{ApiError, ApiResult};

/// What a shed request is told to wait: a full line drains in well under a second per core.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

pub struct HashingPool {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
    cores: usize,
}

/// Leaves the line when dropped, also when the request is cancelled while waiting.
struct InLine<'a>(&'a AtomicUsize);

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl HashingPool {
    /// One run per available core; `queue` more may wait.
    pub fn new(queue: usize) -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        Self::with_cores(cores, queue)
    }

    pub fn with_cores(cores: usize, queue: usize) -> Self {
        let cores = cores.max(1);
        Self { permits: Arc::new(Semaphore::new(cores)), waiting: AtomicUsize::new(0), queue, cores }
    }

    /// Requests waiting for a core (metrics).
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire).min(self.queue)
    }

    /// Hashings running now (metrics).
    pub fn running(&self) -> usize {
        self.cores - self.permits.available_permits()
    }

    /// Cores not hashing right now (for tests that need every core busy).
    pub fn idle_cores(&self) -> usize {
        self.permits.available_permits()
    }

    /// Runs `work` on a blocking thread once a core is free, or answers
    /// [`ApiError::Overloaded`] if the line is full. The permit moves into the blocking task,
    /// so a cancelled request never lets more runs than cores proceed.
    pub async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                let place = self.waiting.fetch_add(1, Ordering::AcqRel);
                let _in_line = InLine(&self.waiting);
                if place >= self.queue {
                    return Err(ApiError::Overloaded(RETRY_AFTER));
                }
                self.permits.clone().acquire_owned().await.map_err(|e| ApiError::Internal(e.into()))?
            }
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// AU8: with every core busy and the line full, the next request is shed at once.
    #[tokio::test]
    async fn au8_a_full_line_sheds_load_with_retry_after() {
        let pool = Arc::new(HashingPool::with_cores(1, 2));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || hold.recv().is_ok()).await })
        };
        while pool.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.run(|| true).await })
            })
            .collect();
        while pool.waiting.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        let shed = pool.run(|| true).await;
        assert!(matches!(shed, Err(ApiError::Overloaded(after)) if after == RETRY_AFTER));
        release.send(()).unwrap();
        assert!(busy.await.unwrap().unwrap());
        for waiter in waiters {
            assert!(waiter.await.unwrap().unwrap(), "queued runs still complete");
        }
        assert_eq!(pool.waiting.load(Ordering::Acquire), 0);
        assert!(pool.run(|| true).await.unwrap());
    }
}
