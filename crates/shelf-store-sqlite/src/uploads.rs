//! Uploads in flight, their writer lease, and the blobs each user holds (spec AT6–AT8).
//!
//! Every write runs on the single writer connection, and the quota check inside a
//! `BEGIN IMMEDIATE` transaction: SQLite's write lock is taken before usage is read, so two
//! creations can never both see the same usage and both pass.

use shelf_core::UserId;
use shelf_store::{db_size, size_from_db, NewUpload, StoreError, StoreResult, StoredBlob, UploadLease, UploadProgress, UploadRecord};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db_err;
use crate::rows::{from_micros, micros};

fn upload(row: &SqliteRow) -> StoreResult<UploadRecord> {
    let lease_until: Option<i64> = row.try_get("lease_until").map_err(db_err)?;
    Ok(UploadRecord {
        id: row.try_get("id").map_err(db_err)?,
        user: UserId(row.try_get("user_id").map_err(db_err)?),
        length: size_from_db(row.try_get("length").map_err(db_err)?)?,
        sha256: row.try_get("sha256").map_err(db_err)?,
        filename: row.try_get("filename").map_err(db_err)?,
        offset: size_from_db(row.try_get("upload_offset").map_err(db_err)?)?,
        hasher: row.try_get("hasher_state").map_err(db_err)?,
        staging: row.try_get("staging").map_err(db_err)?,
        created_at: from_micros(row.try_get("created_at").map_err(db_err)?)?,
        updated_at: from_micros(row.try_get("updated_at").map_err(db_err)?)?,
        lease_until: lease_until.map(from_micros).transpose()?,
    })
}

pub async fn create_upload(pool: &SqlitePool, new: &NewUpload, quota: u64) -> StoreResult<()> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let used: i64 = sqlx::query_scalar(
        "SELECT (SELECT COALESCE(SUM(size), 0) FROM stored_blobs WHERE user_id = ?1)
              + (SELECT COALESCE(SUM(length), 0) FROM uploads WHERE user_id = ?1)",
    )
    .bind(new.user.0)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    if size_from_db(used)?.saturating_add(new.length) > quota {
        return Err(StoreError::QuotaExceeded { quota });
    }
    sqlx::query(
        "INSERT INTO uploads (id, user_id, length, sha256, filename, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(new.id)
    .bind(new.user.0)
    .bind(db_size(new.length)?)
    .bind(&new.sha256)
    .bind(&new.filename)
    .bind(micros(new.created_at))
    .bind(micros(new.created_at))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)
}

pub async fn find_upload(pool: &SqlitePool, user: UserId, id: Uuid) -> StoreResult<Option<UploadRecord>> {
    let row = sqlx::query("SELECT * FROM uploads WHERE id = ? AND user_id = ?")
        .bind(id)
        .bind(user.0)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.as_ref().map(upload).transpose()
}

pub async fn claim_upload(pool: &SqlitePool, user: UserId, id: Uuid, lease: UploadLease, now: OffsetDateTime) -> StoreResult<UploadRecord> {
    // One statement: the check "nobody's lease is live" and taking the lease cannot be split.
    let claimed = sqlx::query(
        "UPDATE uploads SET lease_token = ?, lease_until = ?
         WHERE id = ? AND user_id = ? AND (lease_until IS NULL OR lease_until <= ?) RETURNING *",
    )
    .bind(lease.token)
    .bind(micros(lease.until))
    .bind(id)
    .bind(user.0)
    .bind(micros(now))
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    match claimed {
        Some(row) => upload(&row),
        None if find_upload(pool, user, id).await?.is_some() => Err(StoreError::UploadLocked),
        None => Err(StoreError::UploadNotFound),
    }
}

pub async fn renew_upload(pool: &SqlitePool, id: Uuid, token: Uuid, progress: &UploadProgress, until: OffsetDateTime) -> StoreResult<bool> {
    let sql = "UPDATE uploads SET upload_offset = ?, hasher_state = ?, staging = ?, lease_until = ? WHERE id = ? AND lease_token = ?";
    update_held(pool, sql, progress, until, id, token).await
}

pub async fn release_upload(pool: &SqlitePool, id: Uuid, token: Uuid, progress: &UploadProgress, now: OffsetDateTime) -> StoreResult<bool> {
    let sql = "UPDATE uploads SET upload_offset = ?, hasher_state = ?, staging = ?, updated_at = ?, lease_token = NULL, lease_until = NULL
               WHERE id = ? AND lease_token = ?";
    update_held(pool, sql, progress, now, id, token).await
}

/// Runs `sql` (binding the progress, a time, id, token) on the upload `token` holds; false when
/// `token` holds none. Offset, hash state and staging state change together or not at all.
async fn update_held(pool: &SqlitePool, sql: &str, progress: &UploadProgress, at: OffsetDateTime, id: Uuid, token: Uuid) -> StoreResult<bool> {
    let done = sqlx::query(sql)
        .bind(db_size(progress.offset)?)
        .bind(&progress.hasher)
        .bind(&progress.staging)
        .bind(micros(at))
        .bind(id)
        .bind(token)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

pub async fn finish_upload(pool: &SqlitePool, id: Uuid, token: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let finished = sqlx::query("DELETE FROM uploads WHERE id = ? AND lease_token = ? RETURNING user_id, sha256, length")
        .bind(id)
        .bind(token)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
    let Some(row) = finished else { return Ok(false) };
    sqlx::query(
        "INSERT INTO stored_blobs (user_id, sha256, size, stored_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (user_id, sha256) DO UPDATE SET stored_at = excluded.stored_at",
    )
    .bind(row.try_get::<Uuid, _>("user_id").map_err(db_err)?)
    .bind(row.try_get::<String, _>("sha256").map_err(db_err)?)
    .bind(row.try_get::<i64, _>("length").map_err(db_err)?)
    .bind(micros(now))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(true)
}

pub async fn discard_upload(pool: &SqlitePool, id: Uuid, token: Uuid) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM uploads WHERE id = ? AND lease_token = ?")
        .bind(id)
        .bind(token)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

pub async fn abandoned_uploads(pool: &SqlitePool, before: OffsetDateTime, now: OffsetDateTime) -> StoreResult<Vec<(UserId, Uuid)>> {
    let rows = sqlx::query(
        "SELECT user_id, id FROM uploads WHERE updated_at < ? AND (lease_until IS NULL OR lease_until <= ?) ORDER BY updated_at",
    )
    .bind(micros(before))
    .bind(micros(now))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| Ok((UserId(row.try_get("user_id").map_err(db_err)?), row.try_get("id").map_err(db_err)?)))
        .collect()
}

pub async fn stored_blob(pool: &SqlitePool, user: UserId, sha256: &str) -> StoreResult<Option<StoredBlob>> {
    let row = sqlx::query("SELECT sha256, size, stored_at FROM stored_blobs WHERE user_id = ? AND sha256 = ?")
        .bind(user.0)
        .bind(sha256)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.map(|row| {
        Ok(StoredBlob {
            sha256: row.try_get("sha256").map_err(db_err)?,
            size: size_from_db(row.try_get("size").map_err(db_err)?)?,
            stored_at: from_micros(row.try_get("stored_at").map_err(db_err)?)?,
        })
    })
    .transpose()
}

pub async fn collect_unreferenced_blobs(pool: &SqlitePool, before: OffsetDateTime) -> StoreResult<Vec<(UserId, String)>> {
    // One statement under SQLite's write lock: no attach or upload creation can slip between
    // the "unreferenced" check and the delete.
    let rows = sqlx::query(
        "DELETE FROM stored_blobs AS s WHERE s.stored_at < ?
           AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.user_id = s.user_id AND a.sha256 = s.sha256)
           AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.user_id = s.user_id AND u.sha256 = s.sha256)
         RETURNING user_id, sha256",
    )
    .bind(micros(before))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| Ok((UserId(row.try_get("user_id").map_err(db_err)?), row.try_get("sha256").map_err(db_err)?)))
        .collect()
}

const BACKFILLED: &str = "stored_blobs_backfilled";

pub async fn stored_blobs_backfilled(pool: &SqlitePool) -> StoreResult<bool> {
    let found: Option<String> = sqlx::query_scalar("SELECT value FROM shelf_meta WHERE key = ?")
        .bind(BACKFILLED)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    Ok(found.is_some())
}

pub async fn backfill_stored_blobs(pool: &SqlitePool, blobs: &[(UserId, StoredBlob)]) -> StoreResult<u64> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let mut added = 0;
    for (user, blob) in blobs {
        let done = sqlx::query(
            "INSERT INTO stored_blobs (user_id, sha256, size, stored_at)
             SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM users WHERE id = ?1)
             ON CONFLICT (user_id, sha256) DO NOTHING",
        )
        .bind(user.0)
        .bind(&blob.sha256)
        .bind(db_size(blob.size)?)
        .bind(micros(blob.stored_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        added += done.rows_affected();
    }
    sqlx::query("INSERT INTO shelf_meta (key, value) VALUES (?, '1') ON CONFLICT (key) DO NOTHING")
        .bind(BACKFILLED)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(added)
}
