//! The local replica: one SQLite file per device holding the server's state of the library (from
//! the change feed), the cursor, the outbox of local edits and their folded view. Reads never need
//! the network. Every write is one transaction, so a crash or `kill -9` leaves either all of an
//! operation or none of it.

mod feed;
pub(crate) mod read;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use time::OffsetDateTime;

use crate::error::{ClientError, ClientResult};

pub use feed::{plan_page, PageOutcome, RowOp};
pub use read::LocalMaterial;

const SCHEMA_VERSION: i64 = 3;

/// Where the replica is in the server's history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cursor {
    /// The library version the server state is complete up to (`nextSince`).
    pub library_version: i64,
    /// The server database's epoch; `None` before the first pull.
    pub epoch: Option<String>,
}

/// The local SQLite replica. Not `Sync`: the client wraps it in a mutex.
pub struct Replica {
    conn: Connection,
}

impl Replica {
    /// Opens (creating if needed) the replica at `path`.
    pub fn open(path: &Path) -> ClientResult<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        Self::init(Connection::open(path)?)
    }

    /// A replica that lives in memory (tests, benchmarks).
    pub fn open_in_memory() -> ClientResult<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> ClientResult<Self> {
        // WAL lets readers (`shelf ls`) run while `shelf follow` writes; synchronous=FULL makes a
        // committed edit survive power loss, not only a killed process. Another process may hold
        // the write lock briefly (a page of the feed), so wait for it instead of failing.
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let mut replica = Self { conn };
        replica.migrate()?;
        Ok(replica)
    }

    fn migrate(&mut self) -> ClientResult<()> {
        let tx = self.write()?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
        if version < 1 {
            tx.execute_batch(include_str!("schema.sql"))?;
        }
        if version < 2 {
            tx.execute_batch(include_str!("schema_v2.sql"))?;
        }
        if version < 3 {
            tx.execute_batch(include_str!("schema_v3.sql"))?;
        }
        if version < SCHEMA_VERSION {
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A write transaction that takes the lock at once, so two processes never deadlock
    /// upgrading read locks.
    pub(crate) fn write(&mut self) -> rusqlite::Result<Transaction<'_>> {
        self.conn.transaction_with_behavior(TransactionBehavior::Immediate)
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub fn cursor(&self) -> ClientResult<Cursor> {
        read_cursor(&self.conn)
    }

    /// A value of the replica's small key-value table.
    pub fn meta(&self, key: &str) -> ClientResult<Option<String>> {
        Ok(get_meta(&self.conn, key)?)
    }

    pub fn set_meta(&mut self, key: &str, value: Option<&str>) -> ClientResult<()> {
        let tx = self.write()?;
        put_meta(&tx, key, value)?;
        tx.commit()?;
        Ok(())
    }

    /// Several meta values in one transaction.
    pub fn set_metas(&mut self, values: &[(&str, Option<&str>)]) -> ClientResult<()> {
        let tx = self.write()?;
        for (key, value) in values {
            put_meta(&tx, key, *value)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets the server state (keeping the outbox) so the next pull starts from `since=0`.
    /// When the server's epoch changed (a restored or replaced database), acknowledged edits, and
    /// those in the journal, may be missing from it, so they become pending again; receipts make
    /// a resend of what it has harmless.
    pub fn reset_for_resync(&mut self, epoch_changed: bool) -> ClientResult<()> {
        let tx = self.write()?;
        if epoch_changed {
            pend_acknowledged(&tx)?;
            put_meta(&tx, "epoch", None)?;
        }
        drop_server_state(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// The server is behind the cursor in the same epoch: it lost the end of its history (a
    /// restored backup, a lost tail). Which versions it lost is unknown (other devices may have
    /// written since, reusing version numbers), so every acknowledged edit, in the outbox or the
    /// journal, becomes pending again, exactly as for a new epoch: the server's receipts turn what
    /// it kept into duplicates and apply the rest anew. Returns how many edits will be sent again.
    pub fn rewind(&mut self) -> ClientResult<usize> {
        let tx = self.write()?;
        let again = pend_acknowledged(&tx)?;
        drop_server_state(&tx)?;
        tx.commit()?;
        Ok(again)
    }

    /// Removes everything: server state, cursor, outbox and session facts (a different account).
    pub fn clear(&mut self) -> ClientResult<()> {
        let tx = self.write()?;
        let staged = Replica::clear_queued_files(&tx)?;
        tx.execute_batch(
            "DELETE FROM materials; DELETE FROM progress; DELETE FROM attachments; DELETE FROM outbox; DELETE FROM journal;
             DELETE FROM overlay; DELETE FROM uploads; DELETE FROM meta;",
        )?;
        tx.commit()?;
        crate::attach::remove_staged(staged);
        Ok(())
    }
}

/// Turns every acknowledged edit (in the outbox or the journal) back into a pending outbox entry
/// with its own mutation id, in their original order; returns how many.
fn pend_acknowledged(tx: &Transaction<'_>) -> ClientResult<usize> {
    let mut again = tx.execute("UPDATE outbox SET state = 'pending', acknowledged_version = NULL WHERE state = 'acknowledged'", [])?;
    again += tx.execute(
        "INSERT INTO outbox (mutation_id, material_id, type, base_version, data, created_at, state)
         SELECT mutation_id, material_id, type, base_version, data, created_at, 'pending' FROM journal",
        [],
    )?;
    tx.execute("DELETE FROM journal", [])?;
    Ok(again)
}

/// Forgets the server state and the cursor, and refolds the outbox over nothing.
fn drop_server_state(tx: &Transaction<'_>) -> ClientResult<()> {
    tx.execute_batch("DELETE FROM materials; DELETE FROM progress; DELETE FROM attachments;")?;
    put_meta(tx, "cursor", Some("0"))?;
    crate::outbox::refold_all(tx)
}

pub(crate) fn read_cursor(conn: &Connection) -> ClientResult<Cursor> {
    let library_version = match get_meta(conn, "cursor")? {
        Some(raw) => raw.parse().map_err(|_| ClientError::Damaged(format!("cursor {raw:?}")))?,
        None => 0,
    };
    Ok(Cursor { library_version, epoch: get_meta(conn, "epoch")? })
}

pub(crate) fn get_meta(conn: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |row| row.get(0)).optional()
}

pub(crate) fn put_meta(conn: &Connection, key: &str, value: Option<&str>) -> rusqlite::Result<()> {
    match value {
        Some(value) => conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", [key, value])?,
        None => conn.execute("DELETE FROM meta WHERE key = ?1", [key])?,
    };
    Ok(())
}

pub(crate) fn format_time(at: OffsetDateTime) -> String {
    // RFC 3339 cannot express years past 9999; no clock this code reads gets there.
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A time this replica wrote (with `format_time`).
pub(crate) fn parse_time(raw: &str) -> ClientResult<OffsetDateTime> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).map_err(|_| ClientError::Damaged(format!("time {raw:?}")))
}
