//! The durable outbox: every local edit is written with its folded view in one transaction, sent
//! in order with per-device increasing `mutationId`s, and settled by the server's receipts.
//!
//! Life of an entry: `pending` → (receipt `applied`/`merged`/`duplicate`) `acknowledged` at a
//! library version → deleted once the pulled state reaches that version. A `rejected` receipt
//! keeps the entry for the user to see; it is never sent again and never dropped silently.

use std::collections::HashSet;

use rusqlite::{params, Connection, Transaction};
use serde::Serialize;
use serde_json::Value;
use shelf_api::{ErrorCode, MutationInput, MutationResultView, MutationStatus};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{ClientError, ClientResult};
use crate::mutation::LocalEdit;
use crate::overlay::{self, TimedEdit};
use crate::replica::{format_time, parse_time, read_cursor, Replica};

/// A local edit the server refused, kept to show (and to redo by hand).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectedEdit {
    pub mutation_id: i64,
    pub material_id: String,
    #[serde(rename = "type")]
    pub type_name: String,
    pub data: Value,
    pub code: String,
    pub message: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What a receipt means for its outbox entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// Applied (as sent, merged, or before): its effect is in the library at this version.
    Acknowledged { library_version: i64 },
    Rejected { code: String, message: String },
}

/// Reads one receipt. A `duplicate` of a rejected mutation carries the stored `code`.
pub fn plan_receipt(result: &MutationResultView) -> ReceiptOutcome {
    match (result.status, result.code) {
        (MutationStatus::Applied | MutationStatus::Merged, _) | (MutationStatus::Duplicate, None) => {
            ReceiptOutcome::Acknowledged { library_version: result.library_version }
        }
        (_, code) => ReceiptOutcome::Rejected {
            code: code.map_or("rejected", ErrorCode::as_str).to_owned(),
            message: result.message.clone().unwrap_or_default(),
        },
    }
}

/// Counts of one batch's receipts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptSummary {
    pub acknowledged: usize,
    /// Merged edits that left a conflict on the material (see `shelf conflicts`).
    pub conflicts: usize,
    pub rejected: Vec<RejectedEdit>,
}

impl Replica {
    /// Records a local edit: the outbox entry and the material's new view commit together, so
    /// once this returns the edit survives a crash. Returns the entry's mutation id.
    pub fn record_edit(&mut self, id: Uuid, edit: LocalEdit, at: OffsetDateTime) -> ClientResult<i64> {
        let tx = self.write()?;
        let mutation_id = record(&tx, id, edit, at)?;
        tx.commit()?;
        Ok(mutation_id)
    }

    /// Records many edits (an import) in one transaction: all of them or none.
    pub fn record_edits(&mut self, edits: Vec<(Uuid, LocalEdit)>, at: OffsetDateTime) -> ClientResult<Vec<i64>> {
        let tx = self.write()?;
        let ids = edits.into_iter().map(|(id, edit)| record(&tx, id, edit, at)).collect::<ClientResult<_>>()?;
        tx.commit()?;
        Ok(ids)
    }

    /// The oldest pending entries, in order: at most `max_count`, and no more than `max_bytes` of
    /// JSON (always at least one, so an oversized edit is sent alone and judged).
    pub fn pending_batch(&self, max_count: usize, max_bytes: usize) -> ClientResult<Vec<MutationInput>> {
        // An attach whose file is not on the server yet ends the batch: the outbox stays in order.
        let mut statement = self.conn().prepare_cached(
            "SELECT o.mutation_id, o.material_id, o.base_version, o.type, o.data, f.mutation_id IS NOT NULL FROM outbox o
               LEFT JOIN outbox_files f ON f.mutation_id = o.mutation_id
              WHERE o.state = 'pending' ORDER BY o.mutation_id LIMIT ?1",
        )?;
        let mut rows = statement.query([max_count as i64])?;
        let (mut batch, mut bytes) = (Vec::new(), 0usize);
        while let Some(row) = rows.next()? {
            if row.get::<_, bool>(5)? {
                break;
            }
            let data: String = row.get(4)?;
            bytes += data.len() + 160;
            if !batch.is_empty() && bytes > max_bytes {
                break;
            }
            let material_id: String = row.get(1)?;
            let material_id = Uuid::parse_str(&material_id).map_err(|e| ClientError::Protocol(e.to_string()))?;
            let type_name: String = row.get(3)?;
            let edit = LocalEdit::from_stored(&type_name, &serde_json::from_str(&data)?)?;
            batch.push(edit.into_input(row.get(0)?, material_id, row.get(2)?));
        }
        Ok(batch)
    }

    /// Settles entries by the server's receipts, in one transaction.
    pub fn apply_receipts(&mut self, results: &[MutationResultView]) -> ClientResult<ReceiptSummary> {
        let tx = self.write()?;
        let mut summary = ReceiptSummary::default();
        let mut refolds = HashSet::new();
        for result in results {
            match plan_receipt(result) {
                ReceiptOutcome::Acknowledged { library_version } => {
                    let changed = tx.execute(
                        "UPDATE outbox SET state = 'acknowledged', acknowledged_version = ?2 WHERE mutation_id = ?1 AND state = 'pending'",
                        params![result.mutation_id, library_version],
                    )?;
                    summary.acknowledged += changed;
                    summary.conflicts += usize::from(changed > 0 && !result.conflict.is_empty());
                }
                ReceiptOutcome::Rejected { code, message } => {
                    if let Some(rejected) = reject(&tx, result.mutation_id, &code, &message)? {
                        refolds.insert(rejected.material_id.clone());
                        summary.rejected.push(rejected);
                    }
                }
            }
        }
        // Another process may have pulled past these versions already.
        let cursor = read_cursor(&tx)?.library_version;
        refolds.extend(drop_confirmed(&tx, cursor)?);
        for id in &refolds {
            refold(&tx, id)?;
        }
        tx.commit()?;
        Ok(summary)
    }

    /// Marks a pending entry rejected without the server (it can never be sent, e.g. larger than
    /// the server's body limit).
    pub fn reject_locally(&mut self, mutation_id: i64, code: &str, message: &str) -> ClientResult<Option<RejectedEdit>> {
        let tx = self.write()?;
        let rejected = reject(&tx, mutation_id, code, message)?;
        if let Some(rejected) = &rejected {
            refold(&tx, &rejected.material_id)?;
        }
        tx.commit()?;
        Ok(rejected)
    }

    /// Every rejected edit, oldest first.
    pub fn rejected_edits(&self) -> ClientResult<Vec<RejectedEdit>> {
        let mut statement = self.conn().prepare(
            "SELECT mutation_id, material_id, type, data, code, message, created_at FROM outbox
              WHERE state = 'rejected' ORDER BY mutation_id",
        )?;
        let rows = statement.query_map([], rejected_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row??);
        }
        Ok(out)
    }
}

pub(crate) fn record(tx: &Transaction<'_>, id: Uuid, edit: LocalEdit, at: OffsetDateTime) -> ClientResult<i64> {
    let key = id.to_string();
    let visible = crate::replica::read::visible_state(tx, &key)?.is_some();
    match (&edit, visible) {
        (LocalEdit::Create(_), true) => return Err(shelf_core::ValidationError::new("id", "a material with this id already exists").into()),
        (LocalEdit::Create(_), false) | (_, true) => {}
        (_, false) => return Err(ClientError::NotFound { what: "material", id: key }),
    }
    let base_version = read_cursor(tx)?.library_version;
    tx.execute(
        "INSERT INTO outbox (material_id, type, base_version, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key, edit.type_name(), base_version, edit.data().to_string(), format_time(at)],
    )?;
    let mutation_id = tx.last_insert_rowid();
    refold(tx, &key)?;
    Ok(mutation_id)
}

fn rejected_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ClientResult<RejectedEdit>> {
    let data: String = row.get(3)?;
    let created_at: String = row.get(6)?;
    let data = match serde_json::from_str(&data) {
        Ok(data) => data,
        Err(error) => return Ok(Err(error.into())),
    };
    let created_at = match parse_time(&created_at) {
        Ok(at) => at,
        Err(error) => return Ok(Err(error)),
    };
    Ok(Ok(RejectedEdit {
        mutation_id: row.get(0)?,
        material_id: row.get(1)?,
        type_name: row.get(2)?,
        data,
        code: row.get::<_, Option<String>>(4)?.unwrap_or_default(),
        message: row.get::<_, Option<String>>(5)?.unwrap_or_default(),
        created_at,
    }))
}

pub(crate) fn reject(tx: &Transaction<'_>, mutation_id: i64, code: &str, message: &str) -> ClientResult<Option<RejectedEdit>> {
    let changed = tx.execute(
        "UPDATE outbox SET state = 'rejected', code = ?2, message = ?3 WHERE mutation_id = ?1 AND state = 'pending'",
        params![mutation_id, code, message],
    )?;
    if changed == 0 {
        return Ok(None);
    }
    let mut statement = tx.prepare_cached(
        "SELECT mutation_id, material_id, type, data, code, message, created_at FROM outbox WHERE mutation_id = ?1",
    )?;
    Ok(Some(statement.query_row([mutation_id], rejected_row)??))
}

/// Ids of materials with pending or acknowledged (not yet pulled) edits.
pub(crate) fn materials_with_live_edits(conn: &Connection) -> ClientResult<HashSet<String>> {
    let mut statement = conn.prepare_cached("SELECT DISTINCT material_id FROM outbox WHERE state != 'rejected'")?;
    let ids = statement.query_map([], |row| row.get(0))?;
    Ok(ids.collect::<rusqlite::Result<_>>()?)
}

/// How many confirmed edits the journal keeps to send again if the server loses them.
pub const JOURNAL_KEEP: i64 = 10_000;

/// Moves acknowledged entries whose effect the pulled state includes (`cursor` reached their
/// version) from the outbox to the journal, which keeps those among the device's last
/// [`JOURNAL_KEEP`] edits; returns the
/// materials whose view must be refolded.
pub(crate) fn drop_confirmed(conn: &Connection, cursor: i64) -> ClientResult<Vec<String>> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO journal (mutation_id, material_id, type, base_version, data, created_at, acknowledged_version)
         SELECT mutation_id, material_id, type, base_version, data, created_at, acknowledged_version
           FROM outbox WHERE state = 'acknowledged' AND acknowledged_version <= ?1",
    )?
    .execute([cursor])?;
    let mut statement = conn.prepare_cached(
        "DELETE FROM outbox WHERE state = 'acknowledged' AND acknowledged_version <= ?1 RETURNING material_id",
    )?;
    let ids = statement.query_map([cursor], |row| row.get(0))?.collect::<rusqlite::Result<_>>()?;
    conn.prepare_cached(
        "DELETE FROM journal WHERE mutation_id <= (SELECT max(mutation_id) FROM journal) - ?1",
    )?
    .execute([JOURNAL_KEEP])?;
    Ok(ids)
}

/// Recomputes one material's view from its server state and live edits (or drops the overlay
/// when no edit is left, so reads fall through to the server state).
pub(crate) fn refold(conn: &Connection, id: &str) -> ClientResult<()> {
    let mut statement = conn.prepare_cached(
        "SELECT type, data, created_at FROM outbox WHERE material_id = ?1 AND state != 'rejected' ORDER BY mutation_id",
    )?;
    let mut rows = statement.query([id])?;
    let mut edits = Vec::new();
    while let Some(row) = rows.next()? {
        let (type_name, data, at): (String, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let edit = LocalEdit::from_stored(&type_name, &serde_json::from_str(&data)?)?;
        edits.push(TimedEdit { edit, at: parse_time(&at)? });
    }
    if edits.is_empty() {
        conn.execute("DELETE FROM overlay WHERE id = ?1", [id])?;
        return Ok(());
    }
    let uuid = Uuid::parse_str(id).map_err(|e| ClientError::Protocol(e.to_string()))?;
    let server = crate::replica::read::server_state(conn, id)?;
    let state = overlay::fold(uuid, server, &edits).map(|s| serde_json::to_string(&s)).transpose()?;
    conn.execute("INSERT OR REPLACE INTO overlay (id, state) VALUES (?1, ?2)", params![id, state])?;
    Ok(())
}

/// Refolds every material with live edits and drops stale overlays (after a resync).
pub(crate) fn refold_all(conn: &Connection) -> ClientResult<()> {
    let live = materials_with_live_edits(conn)?;
    conn.execute("DELETE FROM overlay", [])?;
    for id in &live {
        refold(conn, id)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn result(status: MutationStatus, code: Option<ErrorCode>) -> MutationResultView {
        MutationResultView { mutation_id: 1, status, library_version: 9, code, message: None, conflict: vec![] }
    }

    #[test]
    fn sy10_receipts_acknowledge_applied_merged_and_duplicates_and_keep_rejections() {
        let acknowledged = ReceiptOutcome::Acknowledged { library_version: 9 };
        assert_eq!(plan_receipt(&result(MutationStatus::Applied, None)), acknowledged);
        assert_eq!(plan_receipt(&result(MutationStatus::Merged, None)), acknowledged);
        assert_eq!(plan_receipt(&result(MutationStatus::Duplicate, None)), acknowledged);
        let deleted = plan_receipt(&result(MutationStatus::Rejected, Some(ErrorCode::Deleted)));
        assert!(matches!(deleted, ReceiptOutcome::Rejected { code, .. } if code == "deleted"));
        let replayed = plan_receipt(&result(MutationStatus::Duplicate, Some(ErrorCode::NotFound)));
        assert!(matches!(replayed, ReceiptOutcome::Rejected { code, .. } if code == "not_found"));
    }

    #[test]
    fn cl10_the_journal_keeps_the_last_edits_and_a_rewind_sends_them_again() {
        let mut replica = Replica::open_in_memory().unwrap();
        let extra = 5;
        {
            let tx = replica.write().unwrap();
            for n in 1..=JOURNAL_KEEP + extra {
                tx.execute(
                    "INSERT INTO outbox (material_id, type, base_version, data, created_at, state, acknowledged_version)
                     VALUES (?1, 'progress.delete', 0, 'null', '2026-01-01T00:00:00Z', 'acknowledged', ?2)",
                    params![Uuid::nil().to_string(), n],
                )
                .unwrap();
            }
            drop_confirmed(&tx, JOURNAL_KEEP + extra).unwrap();
            tx.commit().unwrap();
        }
        fn count(replica: &Replica, table: &str) -> i64 {
            replica.conn().query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)).unwrap()
        }
        assert_eq!((count(&replica, "outbox"), count(&replica, "journal")), (0, JOURNAL_KEEP), "bounded: the oldest left");
        assert_eq!(replica.rewind().unwrap(), JOURNAL_KEEP as usize);
        assert_eq!(replica.pending_count().unwrap(), JOURNAL_KEEP as u64);
        let first: i64 = replica.conn().query_row("SELECT min(mutation_id) FROM outbox", [], |r| r.get(0)).unwrap();
        assert_eq!(first, extra + 1, "sent again under their own ids, oldest first");
        assert_eq!(count(&replica, "journal"), 0);
    }
}
