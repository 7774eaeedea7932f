//! Runs the write path's attempts on SQLite's single writer connection.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use rusqlite::Connection;
use shelf_core::MergeBudget;
use shelf_store::write::{attempt, Attempt, Job, Prepared, WriteBackend};
use shelf_store::{StoreError, StoreResult};

use crate::write_tx::{err, SqliteWriteTx};

/// The single library-writer connection. Writers queue on an async lock, so a burst of
/// mutations waits as cheap tasks rather than as blocked threads.
#[derive(Clone)]
pub struct Writer {
    connection: Arc<tokio::sync::Mutex<Connection>>,
}

impl Writer {
    pub fn open(path: &Path) -> StoreResult<Self> {
        let connection = Connection::open(path).map_err(err)?;
        connection.busy_timeout(std::time::Duration::from_secs(10)).map_err(err)?;
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(err)?;
        Ok(Self { connection: Arc::new(tokio::sync::Mutex::new(connection)) })
    }
}

#[async_trait]
impl WriteBackend for Writer {
    async fn attempt(&self, job: Arc<Job>, prepared: Option<Arc<Prepared>>, budget: MergeBudget) -> StoreResult<Attempt> {
        let mut connection = self.connection.clone().lock_owned().await;
        tokio::task::spawn_blocking(move || {
            let conn: &mut Connection = &mut connection;
            conn.execute_batch("BEGIN IMMEDIATE").map_err(err)?;
            let mut tx = SqliteWriteTx { conn };
            // The primitives never wait on anything but SQLite itself, so this completes
            // without ever parking the thread.
            let result = futures::executor::block_on(attempt(&mut tx, &job, prepared.as_deref(), budget));
            let end = if matches!(result, Ok(Attempt::Done(_))) { "COMMIT" } else { "ROLLBACK" };
            if let Err(error) = tx.conn.execute_batch(end) {
                if end == "COMMIT" {
                    // A failed COMMIT leaves the transaction open; end it before the next writer.
                    tx.conn.execute_batch("ROLLBACK").map_err(err)?;
                }
                return Err(err(error));
            }
            result
        })
        .await
        .map_err(StoreError::backend)?
    }
}
