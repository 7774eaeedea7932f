//! Requests of the same moment, served by one store call (`session_reads.rs`).
//!
//! Each request queues its key and waits; one task takes whatever has queued up (at most `max`),
//! makes one call for all of it, and answers each request from that call. A request therefore
//! waits for at most the call in flight plus its own, and is never answered before the call that
//! carries it has returned.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use crate::error::{ApiError, ApiResult};

type Reply<V> = oneshot::Sender<Result<V, String>>;

/// A queue of keys and the task that serves them in batches. The task ends when this is dropped.
pub struct Batches<K, V> {
    queue: mpsc::UnboundedSender<(K, Reply<V>)>,
    /// What the task does, for the error when it is gone.
    what: &'static str,
}

impl<K: Send + 'static, V: Send + 'static> Batches<K, V> {
    /// Starts the task. `call` gets a batch's keys in arrival order and returns one answer per
    /// key, in the same order, or one error for all of them.
    pub fn start<F, Fut>(what: &'static str, max: usize, mut call: F) -> Self
    where
        F: FnMut(Vec<K>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<V>, String>> + Send,
    {
        let (queue, mut pending) = mpsc::unbounded_channel::<(K, Reply<V>)>();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while pending.recv_many(&mut batch, max).await > 0 {
                let (keys, replies): (Vec<K>, Vec<Reply<V>>) = batch.drain(..).unzip();
                match call(keys).await {
                    Ok(answers) => replies.into_iter().zip(answers).for_each(|(reply, answer)| {
                        let _ = reply.send(Ok(answer)); // a request that gave up no longer listens
                    }),
                    Err(message) => replies.into_iter().for_each(|reply| {
                        let _ = reply.send(Err(message.clone())); // likewise
                    }),
                }
            }
        });
        Self { queue, what }
    }

    /// Queues `key` and waits for its answer. `Err(message)` is the call's error.
    pub async fn ask(&self, key: K) -> ApiResult<Result<V, String>> {
        let (reply, answer) = oneshot::channel();
        let stopped = || ApiError::Internal(anyhow::anyhow!("the {} task stopped", self.what));
        self.queue.send((key, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())
    }
}
