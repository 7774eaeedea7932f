//! The library writer (`Store::apply`) on a plain SQLite connection, one transaction per call on
//! a blocking thread.
//!
//! Through sqlx every statement is a round trip to a worker thread (two context switches); a
//! mutation runs about ten statements. Here the whole transaction runs in one `spawn_blocking`
//! call with cached prepared statements, so it costs one hand-off. `BEGIN IMMEDIATE` takes the
//! write lock up front, so the sqlx connection that performs the other writes waits instead of
//! failing.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};
use shelf_core::{
    plan_mutation, ChangeKind, ChangeOp, LibraryMutation, LibraryVersion, Material, MaterialBase, MaterialId, Progress,
    UserId, Write,
};
use shelf_store::{Applied, ReceiptKey, StoreError, StoreResult};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rows::{from_micros, micros, parse_tags, tags_json};

/// The single library-writer connection. Writers queue on an async lock, so a burst of
/// mutations waits as cheap tasks rather than as blocked threads.
#[derive(Clone)]
pub struct Writer {
    connection: Arc<tokio::sync::Mutex<Connection>>,
}

fn err(error: rusqlite::Error) -> StoreError {
    StoreError::backend(error)
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

    pub async fn apply(
        &self,
        user: UserId,
        mutation: &LibraryMutation,
        now: OffsetDateTime,
        receipt: Option<ReceiptKey>,
    ) -> StoreResult<Applied> {
        let mut connection = self.connection.clone().lock_owned().await;
        let mutation = mutation.clone();
        tokio::task::spawn_blocking(move || apply(&mut connection, user, mutation, now, receipt))
        .await
        .map_err(StoreError::backend)?
    }
}

fn uuid_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Uuid>> {
    let bytes: Option<Vec<u8>> = row.get(index)?;
    Ok(bytes.and_then(|b| Uuid::from_slice(&b).ok()))
}

type State = (LibraryVersion, Option<Material>, Option<Progress>);

fn load_state(tx: &rusqlite::Transaction<'_>, user: UserId, id: MaterialId) -> StoreResult<State> {
    let mut statement = tx
        .prepare_cached(
            "SELECT u.library_version,
                 m.id, m.title, m.body, m.tags, m.created_at, m.updated_at, m.version, m.conflicts,
                 p.material_id, p.percent_complete, p.position, p.study_seconds, p.completed, p.last_studied_at, p.version
             FROM users u
             LEFT JOIN materials m ON m.user_id = u.id AND m.id = ?1
             LEFT JOIN progress p ON p.user_id = u.id AND p.material_id = ?1
             WHERE u.id = ?2",
        )
        .map_err(err)?;
    let raw = statement
        .query_row(params![id.0.as_bytes().as_slice(), user.0.as_bytes().as_slice()], |row| {
            let material = match uuid_at(row, 1)? {
                Some(mid) => Some((
                    mid,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, i64>(6)?,
                    row.get::<_, i64>(7)?,
                    row.get::<_, String>(8)?,
                )),
                None => None,
            };
            let progress = match uuid_at(row, 9)? {
                Some(pid) => Some((
                    pid,
                    row.get::<_, f64>(10)?,
                    row.get::<_, String>(11)?,
                    row.get::<_, i64>(12)?,
                    row.get::<_, bool>(13)?,
                    row.get::<_, Option<i64>>(14)?,
                    row.get::<_, i64>(15)?,
                )),
                None => None,
            };
            Ok((row.get::<_, i64>(0)?, material, progress))
        })
        .optional()
        .map_err(err)?
        .ok_or(StoreError::UserNotFound)?;
    let (version, material, progress) = raw;
    let material = material
        .map(|(mid, title, body, tags, created, updated, v, conflicts)| -> StoreResult<Material> {
            Ok(Material {
                id: MaterialId(mid),
                title,
                body,
                tags: parse_tags(&tags)?,
                created_at: from_micros(created)?,
                updated_at: from_micros(updated)?,
                version: LibraryVersion(v),
                conflicts: serde_json::from_str(&conflicts).map_err(StoreError::backend)?,
            })
        })
        .transpose()?;
    let progress = progress
        .map(|(pid, percent, position, seconds, completed, last, v)| -> StoreResult<Progress> {
            Ok(Progress {
                material_id: MaterialId(pid),
                percent_complete: percent,
                position,
                study_seconds: seconds,
                completed,
                last_studied_at: last.map(from_micros).transpose()?,
                version: LibraryVersion(v),
            })
        })
        .transpose()?;
    Ok((LibraryVersion(version), material, progress))
}

fn receipt_exists(tx: &rusqlite::Transaction<'_>, key: ReceiptKey) -> StoreResult<bool> {
    tx.prepare_cached("SELECT 1 FROM mutation_receipts WHERE device_id = ?1 AND mutation_id = ?2")
        .map_err(err)?
        .exists(params![key.device.0.as_bytes().as_slice(), key.mutation_id])
        .map_err(err)
}

/// The library version of this device's latest applied mutation of this material.
fn own_latest_write(tx: &rusqlite::Transaction<'_>, key: ReceiptKey, id: MaterialId) -> StoreResult<Option<LibraryVersion>> {
    let version: Option<i64> = tx
        .prepare_cached(
            "SELECT MAX(library_version) FROM mutation_receipts
             WHERE device_id = ?1 AND material_id = ?2 AND status IN ('applied', 'merged')",
        )
        .map_err(err)?
        .query_row(params![key.device.0.as_bytes().as_slice(), id.0.as_bytes().as_slice()], |row| row.get(0))
        .map_err(err)?;
    Ok(version.map(LibraryVersion))
}

fn load_base(tx: &rusqlite::Transaction<'_>, user: UserId, id: MaterialId, version: LibraryVersion) -> StoreResult<Option<MaterialBase>> {
    let row = tx
        .prepare_cached(
            "SELECT title, body, tags FROM material_revisions
             WHERE user_id = ?1 AND material_id = ?2 AND version <= ?3 ORDER BY version DESC LIMIT 1",
        )
        .map_err(err)?
        .query_row(params![user.0.as_bytes().as_slice(), id.0.as_bytes().as_slice(), version.0], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?))
        })
        .optional()
        .map_err(err)?;
    row.map(|(title, body, tags)| Ok(MaterialBase { title, body, tags: parse_tags(&tags)? })).transpose()
}

fn record_change(
    tx: &rusqlite::Transaction<'_>,
    user: UserId,
    kind: ChangeKind,
    id: Uuid,
    op: ChangeOp,
    version: LibraryVersion,
    now: OffsetDateTime,
) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO library_changes (user_id, kind, entity_id, version, op, changed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (user_id, kind, entity_id) DO UPDATE SET version = excluded.version, op = excluded.op,
             changed_at = excluded.changed_at",
    )
    .map_err(err)?
    .execute(params![user.0.as_bytes().as_slice(), kind.as_str(), id.as_bytes().as_slice(), version.0, op.as_str(), micros(now)])
    .map_err(err)?;
    Ok(())
}

fn upsert_material(tx: &rusqlite::Transaction<'_>, user: UserId, m: &Material) -> StoreResult<()> {
    let conflicts = serde_json::to_string(&m.conflicts).map_err(StoreError::backend)?;
    let tags = tags_json(&m.tags);
    tx.prepare_cached(
        "INSERT INTO materials (user_id, id, title, body, tags, created_at, updated_at, version, conflicts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (user_id, id) DO UPDATE SET title = excluded.title, body = excluded.body, tags = excluded.tags,
             updated_at = excluded.updated_at, version = excluded.version, conflicts = excluded.conflicts",
    )
    .map_err(err)?
    .execute(params![
        user.0.as_bytes().as_slice(),
        m.id.0.as_bytes().as_slice(),
        m.title,
        m.body,
        tags,
        micros(m.created_at),
        micros(m.updated_at),
        m.version.0,
        conflicts
    ])
    .map_err(err)?;
    // Each material state is kept as a possible merge base for older edits.
    tx.prepare_cached(
        "INSERT INTO material_revisions (user_id, material_id, version, title, body, tags, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
    )
    .map_err(err)?
    .execute(params![user.0.as_bytes().as_slice(), m.id.0.as_bytes().as_slice(), m.version.0, m.title, m.body, tags, micros(m.updated_at)])
    .map_err(err)?;
    Ok(())
}

fn upsert_progress(tx: &rusqlite::Transaction<'_>, user: UserId, p: &Progress) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO progress (user_id, material_id, percent_complete, position, study_seconds, completed, last_studied_at, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (user_id, material_id) DO UPDATE SET percent_complete = excluded.percent_complete,
             position = excluded.position, study_seconds = excluded.study_seconds, completed = excluded.completed,
             last_studied_at = excluded.last_studied_at, version = excluded.version",
    )
    .map_err(err)?
    .execute(params![
        user.0.as_bytes().as_slice(),
        p.material_id.0.as_bytes().as_slice(),
        p.percent_complete,
        p.position,
        p.study_seconds,
        p.completed,
        p.last_studied_at.map(micros),
        p.version.0
    ])
    .map_err(err)?;
    Ok(())
}

fn record_receipt(
    tx: &rusqlite::Transaction<'_>,
    user: UserId,
    key: ReceiptKey,
    id: MaterialId,
    applied: &Applied,
    now: OffsetDateTime,
) -> StoreResult<()> {
    let receipt = shelf_store::receipt_for(key.mutation_id, applied)?;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO mutation_receipts (device_id, mutation_id, user_id, status, library_version, code, message, detail, created_at, material_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )
        .map_err(err)?
        .execute(params![
            key.device.0.as_bytes().as_slice(),
            key.mutation_id,
            user.0.as_bytes().as_slice(),
            receipt.status,
            receipt.library_version.0,
            receipt.code,
            receipt.message,
            receipt.detail,
            micros(now),
            id.0.as_bytes().as_slice()
        ]);
    match inserted {
        Ok(_) => Ok(()),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
            Err(StoreError::DuplicateMutation)
        }
        Err(e) => Err(err(e)),
    }
}

fn progress_base(mutation: &LibraryMutation) -> Option<LibraryVersion> {
    match mutation {
        LibraryMutation::SetProgress { base_version, .. } => *base_version,
        _ => None,
    }
}

fn apply(
    connection: &mut Connection,
    user: UserId,
    mut mutation: LibraryMutation,
    now: OffsetDateTime,
    receipt: Option<ReceiptKey>,
) -> StoreResult<Applied> {
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(err)?;
    let id = mutation.material_id();
    let (current, material, progress) = load_state(&tx, user, id)?;
    if let Some(key) = receipt {
        // Checked before planning: a replay must be reported as a duplicate, not re-judged.
        if receipt_exists(&tx, key)? {
            return Err(StoreError::DuplicateMutation);
        }
        if mutation.base_version().or(progress_base(&mutation)).is_some() {
            if let Some(own) = own_latest_write(&tx, key, id)? {
                mutation.raise_base_version(own);
            }
        }
    }
    let base = match (mutation.base_version(), &material) {
        (Some(base), Some(m)) if base < m.version => load_base(&tx, user, id, base)?,
        _ => None,
    };
    let next = current.next();
    let plan = plan_mutation(material.as_ref(), progress.as_ref(), base.as_ref(), &mutation, now, next)?;
    let (merged, conflicts) = (plan.merged, plan.conflicts.clone());
    if plan.is_noop() {
        let applied = Applied { library_version: current, changed: false, material, progress, merged, conflicts };
        if let Some(key) = receipt {
            record_receipt(&tx, user, key, id, &applied, now)?;
            tx.commit().map_err(err)?;
        }
        return Ok(applied);
    }
    tx.prepare_cached("UPDATE users SET library_version = ?1 WHERE id = ?2")
        .map_err(err)?
        .execute(params![next.0, user.0.as_bytes().as_slice()])
        .map_err(err)?;
    let deletes_material = matches!(plan.material, Write::Delete);
    let material = match plan.material {
        Write::Unchanged => material,
        Write::Upsert(m) => {
            upsert_material(&tx, user, &m)?;
            record_change(&tx, user, ChangeKind::Material, id.0, ChangeOp::Upsert, next, now)?;
            Some(m)
        }
        Write::Delete => {
            record_change(&tx, user, ChangeKind::Material, id.0, ChangeOp::Delete, next, now)?;
            None
        }
    };
    let progress = match plan.progress {
        Write::Unchanged => progress,
        Write::Upsert(p) => {
            upsert_progress(&tx, user, &p)?;
            record_change(&tx, user, ChangeKind::Progress, id.0, ChangeOp::Upsert, next, now)?;
            Some(p)
        }
        Write::Delete => {
            tx.prepare_cached("DELETE FROM progress WHERE user_id = ?1 AND material_id = ?2")
                .map_err(err)?
                .execute(params![user.0.as_bytes().as_slice(), id.0.as_bytes().as_slice()])
                .map_err(err)?;
            record_change(&tx, user, ChangeKind::Progress, id.0, ChangeOp::Delete, next, now)?;
            None
        }
    };
    if deletes_material {
        // Its attachments go with it, as tombstones of the same version.
        let attachments: Vec<Vec<u8>> = tx
            .prepare_cached("DELETE FROM attachments WHERE user_id = ?1 AND material_id = ?2 RETURNING id")
            .map_err(err)?
            .query_map(params![user.0.as_bytes().as_slice(), id.0.as_bytes().as_slice()], |row| row.get(0))
            .map_err(err)?
            .collect::<Result<_, _>>()
            .map_err(err)?;
        for attachment in attachments {
            let attachment = Uuid::from_slice(&attachment).map_err(StoreError::backend)?;
            record_change(&tx, user, ChangeKind::Attachment, attachment, ChangeOp::Delete, next, now)?;
        }
        tx.prepare_cached("DELETE FROM materials WHERE user_id = ?1 AND id = ?2")
            .map_err(err)?
            .execute(params![user.0.as_bytes().as_slice(), id.0.as_bytes().as_slice()])
            .map_err(err)?;
    }
    let applied = Applied { library_version: next, changed: true, material, progress, merged, conflicts };
    if let Some(key) = receipt {
        record_receipt(&tx, user, key, id, &applied, now)?;
    }
    tx.commit().map_err(err)?;
    Ok(applied)
}
