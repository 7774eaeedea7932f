//! The write path's primitives on PostgreSQL, inside one open transaction.
//!
//! The user's row lock (`SELECT … FOR UPDATE` on `users`) is the first lock every library write
//! takes, so one user's writers queue there and never reach rows in different orders (a detach
//! racing a material delete used to deadlock); other users' writers are not blocked. The runner
//! that groups one user's attempts into one transaction is `group.rs`.
//!
//! Change-feed entries are kept in memory and written with the version, in one statement, just
//! before the commit ([`PgWriteTx::flush`]): two round trips less for a create with progress,
//! and one per group for the version. Nothing inside the transaction reads the feed except the
//! tombstone check, which looks at the kept entries first.

use std::sync::LazyLock;

use shelf_core::{
    Attachment, ChangeKind, ChangeOp, Conflict, ConflictField, LibraryVersion, Material,
    MaterialBase, MaterialId, Progress, UserId,
};
use shelf_store::write::WriteTx;
use shelf_store::{Receipt, ReceiptKey, Rejection, StoreError, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Postgres, Row, Transaction};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db_err;
use crate::group_state::{self, PendingChange, Prefetched};

/// One open write transaction.
pub struct PgWriteTx {
    pub tx: Transaction<'static, Postgres>,
    /// The user whose row this transaction holds locked. Later attempts of a group read the
    /// version from here instead of locking again, and the version is written to the row once,
    /// before the commit ([`PgWriteTx::flush`]), instead of once per attempt.
    locked: Option<Locked>,
    /// Change-feed entries not written yet, in the order they were recorded.
    changes: Vec<PendingChange>,
    /// What [`PgWriteTx::prefetch`] read, and the materials written since (read again).
    prefetched: Prefetched,
}

/// What an attempt's rollback to its savepoint must forget: versions and change entries set
/// after this point.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    version: Option<LibraryVersion>,
    changes: usize,
}

#[derive(Debug, Clone, Copy)]
struct Locked {
    user: UserId,
    /// The version as the attempts so far have set it.
    version: LibraryVersion,
    /// The version in the row as this transaction last wrote (or read) it.
    stored: LibraryVersion,
}

impl PgWriteTx {
    pub fn new(tx: Transaction<'static, Postgres>) -> Self {
        Self { tx, locked: None, changes: Vec::new(), prefetched: Prefetched::default() }
    }

    /// What the attempts so far have set, to restore when the next one is rolled back.
    pub fn mark(&self) -> Mark {
        Mark { version: self.locked.map(|l| l.version), changes: self.changes.len() }
    }

    /// Forgets what was set after `mark` (its savepoint was rolled back).
    pub fn rollback_to(&mut self, mark: Mark) {
        if let (Some(locked), Some(version)) = (&mut self.locked, mark.version) {
            locked.version = version;
        }
        self.changes.truncate(mark.changes);
    }

    /// Writes the kept change entries and the version the attempts set, in one statement. Must
    /// run before the commit: the version and the rows it covers commit together.
    pub async fn flush(&mut self) -> StoreResult<()> {
        let version = self.locked.filter(|l| l.version != l.stored).map(|l| (l.user, l.version));
        group_state::write_changes(&mut self.tx, &self.changes, version).await?;
        self.changes.clear();
        if let Some(locked) = &mut self.locked {
            locked.stored = locked.version;
        }
        Ok(())
    }

    /// Reads the materials and progress of a group's attempts in one statement; each attempt's
    /// read is then served from memory until an attempt of the group writes that material.
    /// Call after the user's lock: nobody else changes them until the commit.
    pub async fn prefetch(&mut self, user: UserId, ids: &[MaterialId]) -> StoreResult<()> {
        self.prefetched = group_state::read_entities(&mut self.tx, user, ids).await?;
        Ok(())
    }
}


/// A material's upsert, `$1`–`$9` as [`bind_material`] binds them.
const MATERIAL_INSERT: &str = "INSERT INTO materials (user_id, id, title, body, tags, created_at, updated_at, version, conflicts)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (user_id, id) DO UPDATE SET title = excluded.title, body = excluded.body, tags = excluded.tags,
         updated_at = excluded.updated_at, version = excluded.version, conflicts = excluded.conflicts";

/// The same state kept as a revision (a future merge base), from the same parameters.
const REVISION_INSERT: &str = "INSERT INTO material_revisions (user_id, material_id, version, title, body, tags, created_at)
     VALUES ($1, $2, $8, $3, $4, $5, $7) ON CONFLICT DO NOTHING";

/// A progress upsert whose user is `$1` and whose other values start at `$first`, in
/// [`bind_progress`]'s order.
fn progress_insert(first: usize) -> String {
    let values: Vec<String> = (first..first + 7).map(|n| format!("${n}")).collect();
    format!(
        "INSERT INTO progress (user_id, material_id, percent_complete, position, study_seconds, completed, last_studied_at, version)
         VALUES ($1, {})
         ON CONFLICT (user_id, material_id) DO UPDATE SET percent_complete = excluded.percent_complete,
             position = excluded.position, study_seconds = excluded.study_seconds, completed = excluded.completed,
             last_studied_at = excluded.last_studied_at, version = excluded.version",
        values.join(", ")
    )
}

/// A material and its revision in one statement (one round trip): a data-modifying CTE always
/// runs to completion, whether or not the main statement reads it.
static MATERIAL_UPSERT: LazyLock<String> = LazyLock::new(|| format!("WITH upserted AS ({MATERIAL_INSERT}) {REVISION_INSERT}"));

static PROGRESS_UPSERT: LazyLock<String> = LazyLock::new(|| progress_insert(2));

/// A material, its revision and its progress in one statement. The progress row's foreign key
/// sees the material the CTE inserted: the check runs at the end of the statement.
static MATERIAL_AND_PROGRESS_UPSERT: LazyLock<String> = LazyLock::new(|| {
    format!("WITH upserted AS ({MATERIAL_INSERT}), revision AS ({REVISION_INSERT}) {}", progress_insert(10))
});

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

fn bind_material<'q>(query: PgQuery<'q>, user: UserId, m: &'q Material) -> PgQuery<'q> {
    query
        .bind(user.0)
        .bind(m.id.0)
        .bind(&m.title)
        .bind(&m.body)
        .bind(Json(&m.tags))
        .bind(m.created_at)
        .bind(m.updated_at)
        .bind(m.version.0)
        .bind(Json(&m.conflicts))
}

fn bind_progress<'q>(query: PgQuery<'q>, p: &'q Progress) -> PgQuery<'q> {
    query
        .bind(p.material_id.0)
        .bind(p.percent_complete)
        .bind(&p.position)
        .bind(p.study_seconds)
        .bind(p.completed)
        .bind(p.last_studied_at)
        .bind(p.version.0)
}

fn conflict(row: &PgRow) -> StoreResult<Conflict> {
    let field: String = row.try_get("field").map_err(db_err)?;
    Ok(Conflict {
        id: row.try_get("id").map_err(db_err)?,
        field: ConflictField::parse(&field).ok_or_else(|| StoreError::backend(std::io::Error::other(format!("corrupt conflict field {field:?}"))))?,
        server_value: row.try_get("server_value").map_err(db_err)?,
        device_value: row.try_get("device_value").map_err(db_err)?,
        base_version: row.try_get("base_version").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

pub(crate) const CONFLICT_COLUMNS: &str = "id, field, server_value, device_value, base_version, created_at";

impl WriteTx for PgWriteTx {
    async fn lock_user(&mut self, user: UserId) -> StoreResult<LibraryVersion> {
        if let Some(locked) = self.locked.filter(|l| l.user == user) {
            return Ok(locked.version);
        }
        let version: Option<i64> = sqlx::query_scalar("SELECT library_version FROM users WHERE id = $1 FOR UPDATE")
            .bind(user.0)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?;
        let version = version.map(LibraryVersion).ok_or(StoreError::UserNotFound)?;
        self.locked = Some(Locked { user, version, stored: version });
        Ok(version)
    }

    async fn material_and_progress(&mut self, user: UserId, id: MaterialId) -> StoreResult<(Option<Material>, Option<Progress>)> {
        if let Some(entity) = self.prefetched.get(user, id) {
            return Ok(entity);
        }
        let read = group_state::read_entities(&mut self.tx, user, &[id]).await?;
        Ok(read.get(user, id).unwrap_or_default())
    }

    async fn attachments(&mut self, user: UserId, material: MaterialId, only: Option<Uuid>) -> StoreResult<Vec<Attachment>> {
        let rows = match only {
            Some(id) => sqlx::query("SELECT * FROM attachments WHERE user_id = $1 AND id = $2").bind(user.0).bind(id),
            None => sqlx::query("SELECT * FROM attachments WHERE user_id = $1 AND material_id = $2 ORDER BY created_at, id")
                .bind(user.0)
                .bind(material.0),
        }
        .fetch_all(&mut *self.tx)
        .await
        .map_err(db_err)?;
        rows.iter().map(|row| crate::attachments::attachment(row, "")).collect()
    }

    async fn tombstone_exists(&mut self, user: UserId, material: MaterialId) -> StoreResult<bool> {
        let kept = self.changes.iter().rev().find(|c| c.user == user && c.kind == ChangeKind::Material && c.id == material.0);
        if let Some(change) = kept {
            return Ok(change.op == ChangeOp::Delete);
        }
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM library_changes WHERE user_id = $1 AND kind = 'material' AND entity_id = $2 AND op = 'delete'",
        )
        .bind(user.0)
        .bind(material.0)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(found.is_some())
    }

    async fn merge_base(&mut self, user: UserId, material: MaterialId, version: LibraryVersion) -> StoreResult<Option<MaterialBase>> {
        let row = sqlx::query(
            "SELECT title, body, tags FROM material_revisions
             WHERE user_id = $1 AND material_id = $2 AND version <= $3 ORDER BY version DESC LIMIT 1",
        )
        .bind(user.0)
        .bind(material.0)
        .bind(version.0)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db_err)?;
        row.map(|row| {
            Ok(MaterialBase {
                title: row.try_get("title").map_err(db_err)?,
                body: row.try_get("body").map_err(db_err)?,
                tags: row.try_get::<Json<Vec<String>>, _>("tags").map_err(db_err)?.0,
            })
        })
        .transpose()
    }

    async fn conflict(&mut self, user: UserId, material: MaterialId, id: Uuid) -> StoreResult<Option<Conflict>> {
        let row = sqlx::query(&format!("SELECT {CONFLICT_COLUMNS} FROM material_conflicts WHERE user_id = $1 AND material_id = $2 AND id = $3"))
            .bind(user.0)
            .bind(material.0)
            .bind(id)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)?;
        row.as_ref().map(conflict).transpose()
    }

    async fn stored_blob_size(&mut self, user: UserId, sha256: &str) -> StoreResult<Option<i64>> {
        sqlx::query_scalar("SELECT size FROM stored_blobs WHERE user_id = $1 AND sha256 = $2")
            .bind(user.0)
            .bind(sha256)
            .fetch_optional(&mut *self.tx)
            .await
            .map_err(db_err)
    }

    async fn receipt(&mut self, user: UserId, key: ReceiptKey) -> StoreResult<Option<Receipt>> {
        crate::sync::receipt(&mut *self.tx, user, key).await
    }

    async fn own_latest_write(&mut self, user: UserId, key: ReceiptKey, material: MaterialId) -> StoreResult<Option<LibraryVersion>> {
        let version: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(library_version) FROM mutation_receipts
             WHERE user_id = $1 AND device_id = $2 AND material_id = $3 AND status IN ('applied', 'merged')",
        )
        .bind(user.0)
        .bind(key.device.0)
        .bind(material.0)
        .fetch_one(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(version.map(LibraryVersion))
    }

    async fn set_version(&mut self, user: UserId, version: LibraryVersion) -> StoreResult<()> {
        if let Some(locked) = self.locked.as_mut().filter(|l| l.user == user) {
            locked.version = version;
            return Ok(());
        }
        sqlx::query("UPDATE users SET library_version = $1 WHERE id = $2")
            .bind(version.0)
            .bind(user.0)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn record_change(&mut self, user: UserId, (kind, id, op): (ChangeKind, Uuid, ChangeOp), version: LibraryVersion, now: OffsetDateTime) -> StoreResult<()> {
        // Written by `flush`, before the commit.
        self.changes.push(PendingChange { user, kind, id, op, version, at: now });
        Ok(())
    }

    async fn upsert_material(&mut self, user: UserId, m: &Material) -> StoreResult<()> {
        self.prefetched.written(user, m.id);
        let query = bind_material(sqlx::query(&MATERIAL_UPSERT), user, m);
        query.execute(&mut *self.tx).await.map_err(db_err)?;
        Ok(())
    }

    async fn upsert_material_and_progress(&mut self, user: UserId, m: &Material, p: &Progress) -> StoreResult<()> {
        self.prefetched.written(user, m.id);
        let query = bind_progress(bind_material(sqlx::query(&MATERIAL_AND_PROGRESS_UPSERT), user, m), p);
        query.execute(&mut *self.tx).await.map_err(db_err)?;
        Ok(())
    }

    async fn delete_material(&mut self, user: UserId, id: MaterialId) -> StoreResult<()> {
        self.prefetched.written(user, id);
        sqlx::query("DELETE FROM materials WHERE user_id = $1 AND id = $2")
            .bind(user.0)
            .bind(id.0)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn upsert_progress(&mut self, user: UserId, p: &Progress) -> StoreResult<()> {
        self.prefetched.written(user, p.material_id);
        let query = bind_progress(sqlx::query(&PROGRESS_UPSERT).bind(user.0), p);
        query.execute(&mut *self.tx).await.map_err(db_err)?;
        Ok(())
    }

    async fn delete_progress(&mut self, user: UserId, material: MaterialId) -> StoreResult<()> {
        self.prefetched.written(user, material);
        sqlx::query("DELETE FROM progress WHERE user_id = $1 AND material_id = $2")
            .bind(user.0)
            .bind(material.0)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn insert_attachment(&mut self, user: UserId, a: &Attachment) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO attachments (user_id, id, material_id, sha256, filename, content_type, size, created_at, version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(user.0)
        .bind(a.id)
        .bind(a.material_id.0)
        .bind(&a.sha256)
        .bind(&a.filename)
        .bind(&a.content_type)
        .bind(a.size)
        .bind(a.created_at)
        .bind(a.version.0)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn delete_attachment(&mut self, user: UserId, id: Uuid) -> StoreResult<()> {
        sqlx::query("DELETE FROM attachments WHERE user_id = $1 AND id = $2")
            .bind(user.0)
            .bind(id)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn insert_conflict(&mut self, user: UserId, material: MaterialId, c: &Conflict) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO material_conflicts (user_id, material_id, id, field, server_value, device_value, base_version, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(user.0)
        .bind(material.0)
        .bind(c.id)
        .bind(c.field.as_str())
        .bind(&c.server_value)
        .bind(&c.device_value)
        .bind(c.base_version)
        .bind(c.created_at)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn take_conflict(&mut self, user: UserId, material: MaterialId, id: Uuid) -> StoreResult<Option<Conflict>> {
        let row = sqlx::query(&format!(
            "DELETE FROM material_conflicts WHERE user_id = $1 AND material_id = $2 AND id = $3 RETURNING {CONFLICT_COLUMNS}"
        ))
        .bind(user.0)
        .bind(material.0)
        .bind(id)
        .fetch_optional(&mut *self.tx)
        .await
        .map_err(db_err)?;
        row.as_ref().map(conflict).transpose()
    }

    async fn insert_rejection(&mut self, user: UserId, key: Option<ReceiptKey>, r: &Rejection, now: OffsetDateTime) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO rejected_mutations (user_id, id, device_id, mutation_id, mutation_type, material_id, data, code, message, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(user.0)
        .bind(Uuid::now_v7())
        .bind(key.map(|k| k.device.0))
        .bind(key.map(|k| k.mutation_id))
        .bind(r.kind.as_str())
        .bind(r.material_id.0)
        .bind(&r.data)
        .bind(r.code.as_str())
        .bind(&r.message)
        .bind(now)
        .execute(&mut *self.tx)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn insert_receipt(&mut self, user: UserId, key: ReceiptKey, material: MaterialId, receipt: &Receipt, now: OffsetDateTime) -> StoreResult<()> {
        let detail = if receipt.conflicts.is_empty() { None } else { Some(serde_json::to_string(&receipt.conflicts).map_err(StoreError::backend)?) };
        let result = sqlx::query(
            "INSERT INTO mutation_receipts (user_id, device_id, mutation_id, material_id, status, library_version, code, message, detail, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(user.0)
        .bind(key.device.0)
        .bind(key.mutation_id)
        .bind(material.0)
        .bind(receipt.status.as_str())
        .bind(receipt.library_version.0)
        .bind(receipt.code.map(|c| c.as_str()))
        .bind(&receipt.message)
        .bind(detail)
        .bind(now)
        .execute(&mut *self.tx)
        .await;
        match result {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::DuplicateMutation),
            Err(e) => Err(db_err(e)),
        }
    }
}
