//! Attachment reads: rows pointing at the user's blobs (written by the write path).

use shelf_core::{Attachment, LibraryVersion, MaterialId, UserId};
use shelf_store::StoreResult;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::db_err;

/// Reads an attachment from columns `id, material_id, sha256, filename, content_type, size,
/// created_at, version` (with an optional prefix).
pub fn attachment(row: &PgRow, prefix: &str) -> StoreResult<Attachment> {
    let col = |name: &str| format!("{prefix}{name}");
    Ok(Attachment {
        id: row.try_get(col("id").as_str()).map_err(db_err)?,
        material_id: MaterialId(row.try_get(col("material_id").as_str()).map_err(db_err)?),
        sha256: row.try_get(col("sha256").as_str()).map_err(db_err)?,
        filename: row.try_get(col("filename").as_str()).map_err(db_err)?,
        content_type: row.try_get(col("content_type").as_str()).map_err(db_err)?,
        size: row.try_get(col("size").as_str()).map_err(db_err)?,
        created_at: row.try_get(col("created_at").as_str()).map_err(db_err)?,
        version: LibraryVersion(row.try_get(col("version").as_str()).map_err(db_err)?),
    })
}

pub async fn attachments(pool: &PgPool, user: UserId, material: MaterialId) -> StoreResult<Vec<Attachment>> {
    let rows = sqlx::query("SELECT * FROM attachments WHERE user_id = $1 AND material_id = $2 ORDER BY created_at, id")
        .bind(user.0)
        .bind(material.0)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    rows.iter().map(|row| attachment(row, "")).collect()
}

pub async fn blob_referenced(pool: &PgPool, user: UserId, sha256: &str) -> StoreResult<bool> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM attachments WHERE user_id = $1 AND sha256 = $2 LIMIT 1")
        .bind(user.0)
        .bind(sha256)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    Ok(found.is_some())
}
