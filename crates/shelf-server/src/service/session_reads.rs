//! Session reads of concurrent authentications, done together.
//!
//! A token the session cache does not hold is read from the database. When many devices open
//! their streams at once (every client reconnecting after a restart), those reads arrive by the
//! thousand in a second, each a round trip of its own on PostgreSQL. Here every read waiting at
//! the same moment goes into one `Store::sessions_by_token_hashes` call; each request still gets
//! its own answer, read after it asked.

use std::collections::HashMap;
use std::sync::Arc;

use shelf_store::{SessionAuth, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::error::{ApiError, ApiResult};
use crate::service::auth::now;
use crate::service::session_cache::TokenDigest;

/// Most reads in one call.
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<Result<Option<SessionAuth>, String>>;

/// Hands session reads to a task that reads whatever has queued up in one call.
pub struct SessionReads {
    queue: mpsc::UnboundedSender<(TokenDigest, Reply)>,
}

impl SessionReads {
    /// Starts the reader task; it ends when this is dropped.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (queue, pending) = mpsc::unbounded_channel();
        tokio::spawn(read_batches(store, pending));
        Self { queue }
    }

    /// The live session of the token with this digest, read now from the database.
    pub async fn read(&self, digest: TokenDigest) -> ApiResult<Option<SessionAuth>> {
        let (reply, done) = oneshot::channel();
        let stopped = || ApiError::Internal(anyhow::anyhow!("the session reader stopped"));
        self.queue.send((digest, reply)).map_err(|_| stopped())?;
        done.await.map_err(|_| stopped())?.map_err(|message| StoreError::Backend(message.into()).into())
    }
}

async fn read_batches(store: Arc<dyn Store>, mut pending: mpsc::UnboundedReceiver<(TokenDigest, Reply)>) {
    let mut batch = Vec::new();
    while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut hashes: Vec<Vec<u8>> = batch.iter().map(|(digest, _)| digest.to_vec()).collect();
        hashes.sort_unstable();
        hashes.dedup();
        // Read after every request of the batch asked: an expiry is judged no earlier than theirs.
        let read = store.sessions_by_token_hashes(&hashes, now()).await.map_err(|error| error.to_string());
        let live: Result<HashMap<Vec<u8>, SessionAuth>, String> = read.map(|found| found.into_iter().collect());
        for (digest, reply) in batch.drain(..) {
            let answer = live.as_ref().map(|live| live.get(digest.as_slice()).cloned()).map_err(Clone::clone);
            // A request that gave up waiting no longer listens; nothing to tell it.
            let _ = reply.send(answer);
        }
    }
}
