//! The write path's primitives on SQLite: plain statements on the single writer connection.
//!
//! Through sqlx every statement is a round trip to a worker thread (two context switches); a
//! mutation runs about ten statements. Here a whole attempt runs in one `spawn_blocking` call
//! with cached prepared statements, so it costs one hand-off (ADR 0003). `BEGIN IMMEDIATE` takes
//! SQLite's write lock up front — that is the "user's lock" of the write path (SQLite has one
//! writer for all users) — so the sqlx connection that performs the other writes waits instead
//! of failing.

use rusqlite::{params, Connection, OptionalExtension, Row};
use shelf_core::{
    Attachment, ChangeKind, ChangeOp, Conflict, ConflictField, LibraryVersion, Material, MaterialBase, MaterialId, Progress,
    UserId,
};
use shelf_store::write::WriteTx;
use shelf_store::{Receipt, ReceiptKey, Rejection, StoreError, StoreResult};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rows::{from_micros, micros, parse_tags, tags_json};

pub(crate) fn err(error: rusqlite::Error) -> StoreError {
    StoreError::backend(error)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::backend(std::io::Error::other(format!("corrupt row: {what}")))
}

fn uuid(bytes: &[u8]) -> StoreResult<Uuid> {
    Uuid::from_slice(bytes).map_err(StoreError::backend)
}

fn is_constraint_violation(error: &rusqlite::Error) -> bool {
    matches!(error, rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// One open write transaction on the writer connection.
pub struct SqliteWriteTx<'c> {
    pub conn: &'c mut Connection,
}

type Raw<T> = rusqlite::Result<T>;
/// Columns as SQLite returns them, converted to domain values outside rusqlite's closures
/// (whose error type cannot carry ours).
type MaterialColumns = (Vec<u8>, String, String, String, i64, i64, i64, String);
type ProgressColumns = (Vec<u8>, f64, String, i64, bool, Option<i64>, i64);
type AttachmentColumns = (Vec<u8>, Vec<u8>, String, String, String, i64, i64, i64);

fn material_row(row: &Row<'_>, at: usize) -> Raw<Option<MaterialColumns>> {
    let id: Option<Vec<u8>> = row.get(at)?;
    id.map(|id| {
        Ok((id, row.get(at + 1)?, row.get(at + 2)?, row.get(at + 3)?, row.get(at + 4)?, row.get(at + 5)?, row.get(at + 6)?, row.get(at + 7)?))
    })
    .transpose()
}

fn progress_row(row: &Row<'_>, at: usize) -> Raw<Option<ProgressColumns>> {
    let id: Option<Vec<u8>> = row.get(at)?;
    id.map(|id| Ok((id, row.get(at + 1)?, row.get(at + 2)?, row.get(at + 3)?, row.get(at + 4)?, row.get(at + 5)?, row.get(at + 6)?)))
        .transpose()
}

fn attachment_from(row: &Row<'_>) -> Raw<AttachmentColumns> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?, row.get(7)?))
}

fn conflict_from(row: &Row<'_>) -> Raw<(Vec<u8>, String, String, String, i64, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?))
}

fn conflict(raw: (Vec<u8>, String, String, String, i64, i64)) -> StoreResult<Conflict> {
    let (id, field, server_value, device_value, base_version, created_at) = raw;
    Ok(Conflict {
        id: uuid(&id)?,
        field: ConflictField::parse(&field).ok_or_else(|| corrupt("conflict field"))?,
        server_value,
        device_value,
        base_version,
        created_at: from_micros(created_at)?,
    })
}

impl SqliteWriteTx<'_> {
    fn execute(&self, sql: &str, params: impl rusqlite::Params) -> StoreResult<usize> {
        self.conn.prepare_cached(sql).map_err(err)?.execute(params).map_err(err)
    }
}

impl WriteTx for SqliteWriteTx<'_> {
    async fn lock_user(&mut self, user: UserId) -> StoreResult<LibraryVersion> {
        // The write lock itself was taken by BEGIN IMMEDIATE; this reads the version under it.
        let version: Option<i64> = self
            .conn
            .prepare_cached("SELECT library_version FROM users WHERE id = ?1")
            .map_err(err)?
            .query_row(params![user.0.as_bytes().as_slice()], |row| row.get(0))
            .optional()
            .map_err(err)?;
        version.map(LibraryVersion).ok_or(StoreError::UserNotFound)
    }

    async fn material_and_progress(&mut self, user: UserId, id: MaterialId) -> StoreResult<(Option<Material>, Option<Progress>)> {
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT m.id, m.title, m.body, m.tags, m.created_at, m.updated_at, m.version, m.conflicts,
                     p.material_id, p.percent_complete, p.position, p.study_seconds, p.completed, p.last_studied_at, p.version
                 FROM (SELECT ?1 AS user_id, ?2 AS id) k
                 LEFT JOIN materials m ON m.user_id = k.user_id AND m.id = k.id
                 LEFT JOIN progress p ON p.user_id = k.user_id AND p.material_id = k.id",
            )
            .map_err(err)?;
        let (material, progress) = statement
            .query_row(params![user.0.as_bytes().as_slice(), id.0.as_bytes().as_slice()], |row| Ok((material_row(row, 0)?, progress_row(row, 8)?)))
            .map_err(err)?;
        let material = material
            .map(|(mid, title, body, tags, created, updated, version, conflicts)| -> StoreResult<Material> {
                Ok(Material {
                    id: MaterialId(uuid(&mid)?),
                    title,
                    body,
                    tags: parse_tags(&tags)?,
                    created_at: from_micros(created)?,
                    updated_at: from_micros(updated)?,
                    version: LibraryVersion(version),
                    conflicts: serde_json::from_str(&conflicts).map_err(StoreError::backend)?,
                })
            })
            .transpose()?;
        let progress = progress
            .map(|(pid, percent, position, seconds, completed, last, version)| -> StoreResult<Progress> {
                Ok(Progress {
                    material_id: MaterialId(uuid(&pid)?),
                    percent_complete: percent,
                    position,
                    study_seconds: seconds,
                    completed,
                    last_studied_at: last.map(from_micros).transpose()?,
                    version: LibraryVersion(version),
                })
            })
            .transpose()?;
        Ok((material, progress))
    }

    async fn attachments(&mut self, user: UserId, material: MaterialId, only: Option<Uuid>) -> StoreResult<Vec<Attachment>> {
        let columns = "SELECT id, material_id, sha256, filename, content_type, size, created_at, version FROM attachments";
        let user_key = user.0.as_bytes().to_vec();
        let raw = match only {
            Some(id) => self
                .conn
                .prepare_cached(&format!("{columns} WHERE user_id = ?1 AND id = ?2"))
                .map_err(err)?
                .query_map(params![user_key, id.as_bytes().as_slice()], attachment_from)
                .map_err(err)?
                .collect::<Raw<Vec<_>>>(),
            None => self
                .conn
                .prepare_cached(&format!("{columns} WHERE user_id = ?1 AND material_id = ?2 ORDER BY created_at, id"))
                .map_err(err)?
                .query_map(params![user_key, material.0.as_bytes().as_slice()], attachment_from)
                .map_err(err)?
                .collect::<Raw<Vec<_>>>(),
        }
        .map_err(err)?;
        raw.into_iter()
            .map(|(id, material_id, sha256, filename, content_type, size, created_at, version)| {
                Ok(Attachment {
                    id: uuid(&id)?,
                    material_id: MaterialId(uuid(&material_id)?),
                    sha256,
                    filename,
                    content_type,
                    size,
                    created_at: from_micros(created_at)?,
                    version: LibraryVersion(version),
                })
            })
            .collect()
    }

    async fn tombstone_exists(&mut self, user: UserId, material: MaterialId) -> StoreResult<bool> {
        self.conn
            .prepare_cached("SELECT 1 FROM library_changes WHERE user_id = ?1 AND kind = 'material' AND entity_id = ?2 AND op = 'delete'")
            .map_err(err)?
            .exists(params![user.0.as_bytes().as_slice(), material.0.as_bytes().as_slice()])
            .map_err(err)
    }

    async fn merge_base(&mut self, user: UserId, material: MaterialId, version: LibraryVersion) -> StoreResult<Option<MaterialBase>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT title, body, tags FROM material_revisions
                 WHERE user_id = ?1 AND material_id = ?2 AND version <= ?3 ORDER BY version DESC LIMIT 1",
            )
            .map_err(err)?
            .query_row(params![user.0.as_bytes().as_slice(), material.0.as_bytes().as_slice(), version.0], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?))
            })
            .optional()
            .map_err(err)?;
        row.map(|(title, body, tags)| Ok(MaterialBase { title, body, tags: parse_tags(&tags)? })).transpose()
    }

    async fn conflict(&mut self, user: UserId, material: MaterialId, id: Uuid) -> StoreResult<Option<Conflict>> {
        let raw = self
            .conn
            .prepare_cached(
                "SELECT id, field, server_value, device_value, base_version, created_at FROM material_conflicts
                 WHERE user_id = ?1 AND material_id = ?2 AND id = ?3",
            )
            .map_err(err)?
            .query_row(params![user.0.as_bytes().as_slice(), material.0.as_bytes().as_slice(), id.as_bytes().as_slice()], conflict_from)
            .optional()
            .map_err(err)?;
        raw.map(conflict).transpose()
    }

    async fn stored_blob_size(&mut self, user: UserId, sha256: &str) -> StoreResult<Option<i64>> {
        self.conn
            .prepare_cached("SELECT size FROM stored_blobs WHERE user_id = ?1 AND sha256 = ?2")
            .map_err(err)?
            .query_row(params![user.0.as_bytes().as_slice(), sha256], |row| row.get(0))
            .optional()
            .map_err(err)
    }

    async fn receipt(&mut self, user: UserId, key: ReceiptKey) -> StoreResult<Option<Receipt>> {
        let raw = self
            .conn
            .prepare_cached(
                "SELECT mutation_id, status, library_version, code, message, detail FROM mutation_receipts
                 WHERE user_id = ?1 AND device_id = ?2 AND mutation_id = ?3",
            )
            .map_err(err)?
            .query_row(params![user.0.as_bytes().as_slice(), key.device.0.as_bytes().as_slice(), key.mutation_id], |row| {
                Ok((row.get(0)?, row.get::<_, String>(1)?, row.get(2)?, row.get::<_, Option<String>>(3)?, row.get(4)?, row.get::<_, Option<String>>(5)?))
            })
            .optional()
            .map_err(err)?;
        raw.map(|(id, status, version, code, message, detail)| Receipt::from_stored(id, &status, version, code.as_deref(), message, detail.as_deref()))
            .transpose()
    }

    async fn own_latest_write(&mut self, user: UserId, key: ReceiptKey, material: MaterialId) -> StoreResult<Option<LibraryVersion>> {
        let version: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT MAX(library_version) FROM mutation_receipts
                 WHERE user_id = ?1 AND device_id = ?2 AND material_id = ?3 AND status IN ('applied', 'merged')",
            )
            .map_err(err)?
            .query_row(params![user.0.as_bytes().as_slice(), key.device.0.as_bytes().as_slice(), material.0.as_bytes().as_slice()], |row| row.get(0))
            .map_err(err)?;
        Ok(version.map(LibraryVersion))
    }

    async fn set_version(&mut self, user: UserId, version: LibraryVersion) -> StoreResult<()> {
        self.execute("UPDATE users SET library_version = ?1 WHERE id = ?2", params![version.0, user.0.as_bytes().as_slice()])?;
        Ok(())
    }

    async fn record_change(&mut self, user: UserId, (kind, id, op): (ChangeKind, Uuid, ChangeOp), version: LibraryVersion, now: OffsetDateTime) -> StoreResult<()> {
        self.execute(
            "INSERT INTO library_changes (user_id, kind, entity_id, version, op, changed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (user_id, kind, entity_id) DO UPDATE SET version = excluded.version, op = excluded.op,
                 changed_at = excluded.changed_at",
            params![user.0.as_bytes().as_slice(), kind.as_str(), id.as_bytes().as_slice(), version.0, op.as_str(), micros(now)],
        )?;
        Ok(())
    }

    async fn upsert_material(&mut self, user: UserId, m: &Material) -> StoreResult<()> {
        let conflicts = serde_json::to_string(&m.conflicts).map_err(StoreError::backend)?;
        let tags = tags_json(&m.tags)?;
        self.execute(
            "INSERT INTO materials (user_id, id, title, body, tags, created_at, updated_at, version, conflicts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (user_id, id) DO UPDATE SET title = excluded.title, body = excluded.body, tags = excluded.tags,
                 updated_at = excluded.updated_at, version = excluded.version, conflicts = excluded.conflicts",
            params![user.0.as_bytes().as_slice(), m.id.0.as_bytes().as_slice(), m.title, m.body, tags, micros(m.created_at), micros(m.updated_at), m.version.0, conflicts],
        )?;
        self.execute(
            "INSERT INTO material_revisions (user_id, material_id, version, title, body, tags, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            params![user.0.as_bytes().as_slice(), m.id.0.as_bytes().as_slice(), m.version.0, m.title, m.body, tags, micros(m.updated_at)],
        )?;
        Ok(())
    }

    async fn delete_material(&mut self, user: UserId, id: MaterialId) -> StoreResult<()> {
        self.execute("DELETE FROM materials WHERE user_id = ?1 AND id = ?2", params![user.0.as_bytes().as_slice(), id.0.as_bytes().as_slice()])?;
        Ok(())
    }

    async fn upsert_progress(&mut self, user: UserId, p: &Progress) -> StoreResult<()> {
        self.execute(
            "INSERT INTO progress (user_id, material_id, percent_complete, position, study_seconds, completed, last_studied_at, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (user_id, material_id) DO UPDATE SET percent_complete = excluded.percent_complete,
                 position = excluded.position, study_seconds = excluded.study_seconds, completed = excluded.completed,
                 last_studied_at = excluded.last_studied_at, version = excluded.version",
            params![
                user.0.as_bytes().as_slice(),
                p.material_id.0.as_bytes().as_slice(),
                p.percent_complete,
                p.position,
                p.study_seconds,
                p.completed,
                p.last_studied_at.map(micros),
                p.version.0
            ],
        )?;
        Ok(())
    }

    async fn delete_progress(&mut self, user: UserId, material: MaterialId) -> StoreResult<()> {
        self.execute(
            "DELETE FROM progress WHERE user_id = ?1 AND material_id = ?2",
            params![user.0.as_bytes().as_slice(), material.0.as_bytes().as_slice()],
        )?;
        Ok(())
    }

    async fn insert_attachment(&mut self, user: UserId, a: &Attachment) -> StoreResult<()> {
        self.execute(
            "INSERT INTO attachments (user_id, id, material_id, sha256, filename, content_type, size, created_at, version)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                user.0.as_bytes().as_slice(),
                a.id.as_bytes().as_slice(),
                a.material_id.0.as_bytes().as_slice(),
                a.sha256,
                a.filename,
                a.content_type,
                a.size,
                micros(a.created_at),
                a.version.0
            ],
        )?;
        Ok(())
    }

    async fn delete_attachment(&mut self, user: UserId, id: Uuid) -> StoreResult<()> {
        self.execute("DELETE FROM attachments WHERE user_id = ?1 AND id = ?2", params![user.0.as_bytes().as_slice(), id.as_bytes().as_slice()])?;
        Ok(())
    }

    async fn insert_conflict(&mut self, user: UserId, material: MaterialId, c: &Conflict) -> StoreResult<()> {
        self.execute(
            "INSERT INTO material_conflicts (user_id, material_id, id, field, server_value, device_value, base_version, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                user.0.as_bytes().as_slice(),
                material.0.as_bytes().as_slice(),
                c.id.as_bytes().as_slice(),
                c.field.as_str(),
                c.server_value,
                c.device_value,
                c.base_version,
                micros(c.created_at)
            ],
        )?;
        Ok(())
    }

    async fn take_conflict(&mut self, user: UserId, material: MaterialId, id: Uuid) -> StoreResult<Option<Conflict>> {
        let raw = self
            .conn
            .prepare_cached(
                "DELETE FROM material_conflicts WHERE user_id = ?1 AND material_id = ?2 AND id = ?3
                 RETURNING id, field, server_value, device_value, base_version, created_at",
            )
            .map_err(err)?
            .query_row(params![user.0.as_bytes().as_slice(), material.0.as_bytes().as_slice(), id.as_bytes().as_slice()], conflict_from)
            .optional()
            .map_err(err)?;
        raw.map(conflict).transpose()
    }

    async fn insert_rejection(&mut self, user: UserId, key: Option<ReceiptKey>, r: &Rejection, now: OffsetDateTime) -> StoreResult<()> {
        self.execute(
            "INSERT INTO rejected_mutations (user_id, id, device_id, mutation_id, mutation_type, material_id, data, code, message, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                user.0.as_bytes().as_slice(),
                Uuid::now_v7().as_bytes().as_slice(),
                key.map(|k| k.device.0.as_bytes().to_vec()),
                key.map(|k| k.mutation_id),
                r.kind.as_str(),
                r.material_id.0.as_bytes().as_slice(),
                r.data,
                r.code.as_str(),
                r.message,
                micros(now)
            ],
        )?;
        Ok(())
    }

    async fn insert_receipt(&mut self, user: UserId, key: ReceiptKey, material: MaterialId, receipt: &Receipt, now: OffsetDateTime) -> StoreResult<()> {
        let detail = if receipt.conflicts.is_empty() { None } else { Some(serde_json::to_string(&receipt.conflicts).map_err(StoreError::backend)?) };
        let inserted = self.conn.prepare_cached(
            "INSERT INTO mutation_receipts (user_id, device_id, mutation_id, material_id, status, library_version, code, message, detail, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(err)?
        .execute(params![
            user.0.as_bytes().as_slice(),
            key.device.0.as_bytes().as_slice(),
            key.mutation_id,
            material.0.as_bytes().as_slice(),
            receipt.status.as_str(),
            receipt.library_version.0,
            receipt.code.map(|c| c.as_str()),
            receipt.message,
            detail,
            micros(now)
        ]);
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_constraint_violation(&e) => Err(StoreError::DuplicateMutation),
            Err(e) => Err(err(e)),
        }
    }
}
