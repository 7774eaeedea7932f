//! Applying one page of the change feed: planned as row operations first (pure), then written
//! with the new cursor, the confirmed outbox entries dropped and the affected views refolded, all
//! in one transaction.

use std::collections::HashSet;

use rusqlite::params;
use shelf_api::{ChangeView, ChangesResponse};

use super::{put_meta, read_cursor, Replica};
use crate::error::ClientResult;
use crate::outbox;

/// One write to the server-state tables.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOp {
    UpsertMaterial { id: String, version: i64, data: String },
    DeleteMaterial { id: String },
    UpsertProgress { material_id: String, version: i64, data: String },
    DeleteProgress { material_id: String },
    UpsertAttachment { id: String, material_id: String, version: i64, data: String },
    DeleteAttachment { id: String },
}

impl RowOp {
    /// The material whose folded view this row feeds (attachments are not folded).
    fn folded_material(&self) -> Option<&str> {
        match self {
            RowOp::UpsertMaterial { id, .. } | RowOp::DeleteMaterial { id } => Some(id),
            RowOp::UpsertProgress { material_id, .. } | RowOp::DeleteProgress { material_id } => Some(material_id),
            RowOp::UpsertAttachment { .. } | RowOp::DeleteAttachment { .. } => None,
        }
    }
}

/// Turns feed entries into row operations. Unknown kinds (a newer server) are skipped; the cursor
/// still moves past them.
pub fn plan_page(changes: &[ChangeView]) -> Vec<RowOp> {
    changes
        .iter()
        .filter_map(|change| {
            let id = change.id.to_string();
            let data = change.data.as_ref().filter(|_| change.op == "upsert");
            Some(match (change.kind.as_str(), data) {
                ("material", Some(data)) => RowOp::UpsertMaterial { id, version: change.version, data: data.to_string() },
                ("material", None) => RowOp::DeleteMaterial { id },
                ("progress", Some(data)) => RowOp::UpsertProgress { material_id: id, version: change.version, data: data.to_string() },
                ("progress", None) => RowOp::DeleteProgress { material_id: id },
                ("attachment", Some(data)) => RowOp::UpsertAttachment {
                    id,
                    material_id: data.get("materialId")?.as_str()?.to_owned(),
                    version: change.version,
                    data: data.to_string(),
                },
                ("attachment", None) => RowOp::DeleteAttachment { id },
                _ => return None,
            })
        })
        .collect()
}

/// What became of a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageOutcome {
    /// Written; the cursor is now `next_since`.
    Applied,
    /// Another process moved the cursor meanwhile: nothing written; read the cursor and go on.
    Stale,
    /// The server's epoch differs from the replica's: nothing written; resync.
    EpochChanged,
}

impl Replica {
    /// Applies one page fetched with `since`.
    pub fn apply_page(&mut self, since: i64, page: &ChangesResponse) -> ClientResult<PageOutcome> {
        let ops = plan_page(&page.changes);
        let tx = self.write()?;
        let cursor = read_cursor(&tx)?;
        if cursor.library_version != since {
            return Ok(PageOutcome::Stale);
        }
        if cursor.epoch.as_deref().is_some_and(|epoch| epoch != page.epoch) {
            return Ok(PageOutcome::EpochChanged);
        }
        {
            let mut upsert_material =
                tx.prepare_cached("INSERT OR REPLACE INTO materials (id, version, data) VALUES (?1, ?2, ?3)")?;
            let mut upsert_progress =
                tx.prepare_cached("INSERT OR REPLACE INTO progress (material_id, version, data) VALUES (?1, ?2, ?3)")?;
            let mut upsert_attachment = tx.prepare_cached(
                "INSERT OR REPLACE INTO attachments (id, material_id, version, data) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for op in &ops {
                match op {
                    RowOp::UpsertMaterial { id, version, data } => upsert_material.execute(params![id, version, data])?,
                    RowOp::DeleteMaterial { id } => tx.execute("DELETE FROM materials WHERE id = ?1", [id])?,
                    RowOp::UpsertProgress { material_id, version, data } => {
                        upsert_progress.execute(params![material_id, version, data])?
                    }
                    RowOp::DeleteProgress { material_id } => tx.execute("DELETE FROM progress WHERE material_id = ?1", [material_id])?,
                    RowOp::UpsertAttachment { id, material_id, version, data } => {
                        upsert_attachment.execute(params![id, material_id, version, data])?
                    }
                    RowOp::DeleteAttachment { id } => tx.execute("DELETE FROM attachments WHERE id = ?1", [id])?,
                };
            }
        }
        put_meta(&tx, "cursor", Some(&page.next_since.to_string()))?;
        put_meta(&tx, "epoch", Some(&page.epoch))?;
        let edited = outbox::materials_with_live_edits(&tx)?;
        let mut refold: HashSet<String> = ops.iter().filter_map(RowOp::folded_material).filter(|id| edited.contains(*id)).map(str::to_owned).collect();
        refold.extend(outbox::drop_confirmed(&tx, page.next_since)?);
        for id in &refold {
            outbox::refold(&tx, id)?;
        }
        tx.commit()?;
        Ok(PageOutcome::Applied)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;
    use uuid::Uuid;

    fn change(kind: &str, op: &str, data: Option<serde_json::Value>) -> ChangeView {
        ChangeView { kind: kind.into(), id: Uuid::nil(), op: op.into(), version: 7, data }
    }

    #[test]
    fn cf1_feed_entries_become_row_operations_and_unknown_kinds_are_skipped() {
        let attachment = json!({"materialId": "m1", "sha256": "x"});
        let ops = plan_page(&[
            change("material", "upsert", Some(json!({"title": "t"}))),
            change("progress", "delete", None),
            change("attachment", "upsert", Some(attachment)),
            change("reading-list", "upsert", Some(json!({}))),
        ]);
        assert_eq!(ops.len(), 3);
        assert!(matches!(&ops[0], RowOp::UpsertMaterial { version: 7, .. }));
        assert!(matches!(&ops[1], RowOp::DeleteProgress { .. }));
        assert!(matches!(&ops[2], RowOp::UpsertAttachment { material_id, .. } if material_id == "m1"));
    }
}
