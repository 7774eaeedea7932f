//! Session reads of concurrent authentications, done together.
//!
//! A token the session cache does not hold is read from the database. When many devices open
//! their streams at once (every client reconnecting after a restart), those reads arrive by the
//! thousand in a second, each a round trip of its own on PostgreSQL. Here every read waiting at
//! the same moment goes into one `Store::sessions_by_token_hashes` call ([`Batches`]); each
//! request still gets its own answer, read after it asked.
//!
//! A store whose reads are not round trips (SQLite reads in-process, in microseconds) gains
//! nothing from a batch but two task hand-offs per read: there each read goes straight to the
//! store (`Store::reads_sessions_in_batches`).

use std::collections::HashMap;
use std::sync::Arc;

use shelf_store::{SessionAuth, Store, StoreError};

use crate::error::ApiResult;
use crate::service::auth::now;
use crate::service::batches::Batches;
use crate::service::session_cache::TokenDigest;

/// Most reads in one call.
const MAX_BATCH: usize = 512;

/// Hands session reads to a task that reads whatever has queued up in one call, or, for a
/// store that reads in-process, to the store directly.
pub enum SessionReads {
    Batched(Batches<TokenDigest, Option<SessionAuth>>),
    Direct(Arc<dyn Store>),
}

impl SessionReads {
    /// Starts the reader task (if the store batches reads); it ends when this is dropped.
    pub fn start(store: Arc<dyn Store>) -> Self {
        if !store.reads_sessions_in_batches() {
            return Self::Direct(store);
        }
        Self::Batched(Batches::start("session reader", MAX_BATCH, move |digests: Vec<TokenDigest>| {
            let store = store.clone();
            async move {
                let mut hashes: Vec<Vec<u8>> = digests.iter().map(|digest| digest.to_vec()).collect();
                hashes.sort_unstable();
                hashes.dedup();
                // Read after every request of the batch asked: an expiry is judged no earlier
                // than theirs.
                let found = store.sessions_by_token_hashes(&hashes, now()).await.map_err(|error| error.to_string())?;
                let live: HashMap<Vec<u8>, SessionAuth> = found.into_iter().collect();
                Ok(digests.iter().map(|digest| live.get(digest.as_slice()).cloned()).collect())
            }
        }))
    }

    /// The live session of the token with this digest, read now from the database.
    pub async fn read(&self, digest: TokenDigest) -> ApiResult<Option<SessionAuth>> {
        match self {
            Self::Batched(batches) => batches.ask(digest).await?.map_err(|message| StoreError::Backend(message.into()).into()),
            Self::Direct(store) => Ok(store.session_by_token_hash(digest.as_slice(), now()).await?),
        }
    }
}
