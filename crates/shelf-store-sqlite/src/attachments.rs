//! Attachments: rows pointing at the user's blobs, versioned like every library change.

use shelf_core::{Attachment, ChangeKind, ChangeOp, LibraryVersion, MaterialId, PlanError, UserId};
use shelf_store::{StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db_err;
use crate::rows::{from_micros, micros};
use crate::write::{record_change, Tx};

/// Reads an attachment from columns `id, material_id, sha256, filename, content_type, size,
/// created_at, version` (with an optional prefix).
pub fn attachment(row: &SqliteRow, prefix: &str) -> StoreResult<Attachment> {
    let col = |name: &str| format!("{prefix}{name}");
    Ok(Attachment {
        id: row.try_get(col("id").as_str()).map_err(db_err)?,
        material_id: MaterialId(row.try_get(col("material_id").as_str()).map_err(db_err)?),
        sha256: row.try_get(col("sha256").as_str()).map_err(db_err)?,
        filename: row.try_get(col("filename").as_str()).map_err(db_err)?,
        content_type: row.try_get(col("content_type").as_str()).map_err(db_err)?,
        size: row.try_get(col("size").as_str()).map_err(db_err)?,
        created_at: from_micros(row.try_get(col("created_at").as_str()).map_err(db_err)?)?,
        version: LibraryVersion(row.try_get(col("version").as_str()).map_err(db_err)?),
    })
}

/// Bumps the user's version inside `tx` and returns the new one.
async fn bump(tx: &mut Tx<'_>, user: UserId) -> StoreResult<LibraryVersion> {
    let next: i64 = sqlx::query_scalar("UPDATE users SET library_version = library_version + 1 WHERE id = ? RETURNING library_version")
        .bind(user.0)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?
        .ok_or(StoreError::UserNotFound)?;
    Ok(LibraryVersion(next))
}

pub async fn attach(pool: &SqlitePool, user: UserId, a: &Attachment, now: OffsetDateTime) -> StoreResult<LibraryVersion> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    // Bump first: it takes the user's lock, so the material check below sees every committed
    // change of this user (a concurrent delete cannot slip in between).
    let next = bump(&mut tx, user).await?;
    let material: Option<i64> = sqlx::query_scalar("SELECT 1 FROM materials WHERE user_id = ? AND id = ?")
        .bind(user.0)
        .bind(a.material_id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
    material.ok_or(StoreError::Plan(PlanError::MaterialNotFound))?;
    sqlx::query(
        "INSERT INTO attachments (user_id, id, material_id, sha256, filename, content_type, size, created_at, version)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(user.0)
    .bind(a.id)
    .bind(a.material_id.0)
    .bind(&a.sha256)
    .bind(&a.filename)
    .bind(&a.content_type)
    .bind(a.size)
    .bind(micros(a.created_at))
    .bind(next.0)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    record_change(&mut tx, user, ChangeKind::Attachment, MaterialId(a.id), ChangeOp::Upsert, next, now).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(next)
}

pub async fn detach(pool: &SqlitePool, user: UserId, material: MaterialId, id: Uuid, now: OffsetDateTime) -> StoreResult<LibraryVersion> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let done = sqlx::query("DELETE FROM attachments WHERE user_id = ? AND material_id = ? AND id = ?")
        .bind(user.0)
        .bind(material.0)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    if done.rows_affected() == 0 {
        return Err(StoreError::Plan(PlanError::MaterialNotFound));
    }
    let next = bump(&mut tx, user).await?;
    record_change(&mut tx, user, ChangeKind::Attachment, MaterialId(id), ChangeOp::Delete, next, now).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(next)
}

pub async fn attachments(pool: &SqlitePool, user: UserId, material: MaterialId) -> StoreResult<Vec<Attachment>> {
    let rows = sqlx::query("SELECT * FROM attachments WHERE user_id = ? AND material_id = ? ORDER BY created_at, id")
        .bind(user.0)
        .bind(material.0)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    rows.iter().map(|row| attachment(row, "")).collect()
}

pub async fn blob_referenced(pool: &SqlitePool, user: UserId, sha256: &str) -> StoreResult<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM attachments WHERE user_id = ? AND sha256 = ? LIMIT 1")
        .bind(user.0)
        .bind(sha256)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    Ok(found.is_some())
}
