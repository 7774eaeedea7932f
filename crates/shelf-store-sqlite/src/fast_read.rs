//! The two reads on every request — session by token hash, and the library version — executed
//! inline on a small pool of plain SQLite connections.
//!
//! sqlx runs each SQLite connection on its own worker thread, so every statement costs two
//! thread hand-offs; on 2 cores perf showed ~65% of server time in context switches for version
//! checks. These reads are single indexed lookups of a few microseconds in WAL mode (readers never
//! wait for the writer), so running them directly on the async worker is cheaper than handing
//! them off. Everything else stays on sqlx.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use shelf_core::{DeviceId, LibraryVersion, UserId};
use shelf_store::{SessionAuth, StoreError, StoreResult};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rows::{from_micros, micros};

pub struct FastReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

fn err(error: rusqlite::Error) -> StoreError {
    StoreError::backend(error)
}

impl FastReads {
    pub fn new(path: PathBuf) -> Self {
        Self { path, idle: Mutex::new(Vec::new()) }
    }

    fn with<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> StoreResult<T> {
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => {
                let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let connection = Connection::open_with_flags(&self.path, flags).map_err(err)?;
                connection.busy_timeout(std::time::Duration::from_secs(10)).map_err(err)?;
                connection
            }
        };
        let result = read(&connection).map_err(err);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < 16 {
            idle.push(connection);
        }
        result
    }

    pub fn library_version(&self, user: UserId) -> StoreResult<Option<LibraryVersion>> {
        self.with(|c| {
            c.prepare_cached("SELECT library_version FROM users WHERE id = ?1")?
                .query_row([user.0.as_bytes().as_slice()], |row| row.get::<_, i64>(0))
                .optional()
        })
        .map(|v| v.map(LibraryVersion))
    }

    pub fn session_by_token_hash(&self, token_hash: &[u8], now: OffsetDateTime) -> StoreResult<Option<SessionAuth>> {
        let row = self.with(|c| {
            c.prepare_cached("SELECT id, user_id, last_seen_at, expires_at FROM sessions WHERE token_hash = ?1 AND expires_at > ?2")?
                .query_row(rusqlite::params![token_hash, micros(now)], |row| {
                    Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, Vec<u8>>(1)?, row.get::<_, i64>(2)?, row.get::<_, i64>(3)?))
                })
                .optional()
        })?;
        let Some((device, user, last_seen, expires)) = row else { return Ok(None) };
        let uuid = |bytes: Vec<u8>| Uuid::from_slice(&bytes).map_err(StoreError::backend);
        Ok(Some(SessionAuth {
            device_id: DeviceId(uuid(device)?),
            user_id: UserId(uuid(user)?),
            last_seen_at: from_micros(last_seen)?,
            expires_at: from_micros(expires)?,
        }))
    }
}
