//! Uploads in flight, their writer lease, and the blobs each user holds (spec AT6–AT8).
//!
//! The quota check and the garbage collector's "unreferenced" check run under the user's row
//! lock (`SELECT … FOR UPDATE`), the lock every library writer of that user takes too: two
//! creations of one user cannot both read the same usage, and no attach commits between the
//! collector's check and its delete. Other users are not blocked.

use shelf_core::UserId;
use shelf_store::{db_size, size_from_db, NewUpload, StoreError, StoreResult, StoredBlob, UploadLease, UploadProgress, UploadRecord};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db_err;
use crate::write::Tx;

fn upload(row: &PgRow) -> StoreResult<UploadRecord> {
    Ok(UploadRecord {
        id: row.try_get("id").map_err(db_err)?,
        user: UserId(row.try_get("user_id").map_err(db_err)?),
        length: size_from_db(row.try_get("length").map_err(db_err)?)?,
        sha256: row.try_get("sha256").map_err(db_err)?,
        filename: row.try_get("filename").map_err(db_err)?,
        offset: size_from_db(row.try_get("upload_offset").map_err(db_err)?)?,
        hasher: row.try_get("hasher_state").map_err(db_err)?,
        staging: row.try_get("staging").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
        lease_until: row.try_get("lease_until").map_err(db_err)?,
    })
}

/// Takes the user's row lock until `tx` ends.
async fn lock_user(tx: &mut Tx<'_>, user: UserId) -> StoreResult<()> {
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(user.0)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?;
    found.map(|_| ()).ok_or(StoreError::UserNotFound)
}

pub async fn create_upload(pool: &PgPool, new: &NewUpload, quota: u64) -> StoreResult<()> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    lock_user(&mut tx, new.user).await?;
    // Read committed: this statement runs after the lock is ours, so it sees every upload and
    // blob that the previous holder of the lock committed.
    let used: i64 = sqlx::query_scalar(
        "SELECT ((SELECT COALESCE(SUM(size), 0) FROM stored_blobs WHERE user_id = $1)
               + (SELECT COALESCE(SUM(length), 0) FROM uploads WHERE user_id = $1))::BIGINT",
    )
    .bind(new.user.0)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    if size_from_db(used)?.saturating_add(new.length) > quota {
        return Err(StoreError::QuotaExceeded { quota });
    }
    sqlx::query(
        "INSERT INTO uploads (id, user_id, length, sha256, filename, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
    )
    .bind(new.id)
    .bind(new.user.0)
    .bind(db_size(new.length)?)
    .bind(&new.sha256)
    .bind(&new.filename)
    .bind(new.created_at)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)
}

pub async fn find_upload(pool: &PgPool, user: UserId, id: Uuid) -> StoreResult<Option<UploadRecord>> {
    let row = sqlx::query("SELECT * FROM uploads WHERE id = $1 AND user_id = $2")
        .bind(id)
        .bind(user.0)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.as_ref().map(upload).transpose()
}

pub async fn claim_upload(pool: &PgPool, user: UserId, id: Uuid, lease: UploadLease, now: OffsetDateTime) -> StoreResult<UploadRecord> {
    // One statement: a concurrent claimer waits on the row and re-checks the lease after us.
    let claimed = sqlx::query(
        "UPDATE uploads SET lease_token = $1, lease_until = $2
         WHERE id = $3 AND user_id = $4 AND (lease_until IS NULL OR lease_until <= $5) RETURNING *",
    )
    .bind(lease.token)
    .bind(lease.until)
    .bind(id)
    .bind(user.0)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    match claimed {
        Some(row) => upload(&row),
        None if find_upload(pool, user, id).await?.is_some() => Err(StoreError::UploadLocked),
        None => Err(StoreError::UploadNotFound),
    }
}

pub async fn renew_upload(pool: &PgPool, id: Uuid, token: Uuid, progress: &UploadProgress, until: OffsetDateTime) -> StoreResult<bool> {
    let sql = "UPDATE uploads SET upload_offset = $1, hasher_state = $2, staging = $3, lease_until = $4 WHERE id = $5 AND lease_token = $6";
    update_held(pool, sql, progress, until, id, token).await
}

pub async fn release_upload(pool: &PgPool, id: Uuid, token: Uuid, progress: &UploadProgress, now: OffsetDateTime) -> StoreResult<bool> {
    let sql = "UPDATE uploads SET upload_offset = $1, hasher_state = $2, staging = $3, updated_at = $4, lease_token = NULL, lease_until = NULL
               WHERE id = $5 AND lease_token = $6";
    update_held(pool, sql, progress, now, id, token).await
}

/// Runs `sql` (binding the progress, a time, id, token) on the upload `token` holds; false when
/// `token` holds none. Offset, hash state and staging state change together or not at all.
async fn update_held(pool: &PgPool, sql: &str, progress: &UploadProgress, at: OffsetDateTime, id: Uuid, token: Uuid) -> StoreResult<bool> {
    let done = sqlx::query(sql)
        .bind(db_size(progress.offset)?)
        .bind(&progress.hasher)
        .bind(&progress.staging)
        .bind(at)
        .bind(id)
        .bind(token)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

pub async fn finish_upload(pool: &PgPool, id: Uuid, token: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let finished = sqlx::query("DELETE FROM uploads WHERE id = $1 AND lease_token = $2 RETURNING user_id, sha256, length")
        .bind(id)
        .bind(token)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
    let Some(row) = finished else { return Ok(false) };
    sqlx::query(
        "INSERT INTO stored_blobs (user_id, sha256, size, stored_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_id, sha256) DO UPDATE SET stored_at = excluded.stored_at",
    )
    .bind(row.try_get::<Uuid, _>("user_id").map_err(db_err)?)
    .bind(row.try_get::<String, _>("sha256").map_err(db_err)?)
    .bind(row.try_get::<i64, _>("length").map_err(db_err)?)
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(true)
}

pub async fn discard_upload(pool: &PgPool, id: Uuid, token: Uuid) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM uploads WHERE id = $1 AND lease_token = $2")
        .bind(id)
        .bind(token)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() == 1)
}

pub async fn abandoned_uploads(pool: &PgPool, before: OffsetDateTime, now: OffsetDateTime) -> StoreResult<Vec<(UserId, Uuid)>> {
    let rows: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT user_id, id FROM uploads WHERE updated_at < $1 AND (lease_until IS NULL OR lease_until <= $2) ORDER BY updated_at",
    )
    .bind(before)
    .bind(now)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    Ok(rows.into_iter().map(|(user, id)| (UserId(user), id)).collect())
}

pub async fn stored_blob(pool: &PgPool, user: UserId, sha256: &str) -> StoreResult<Option<StoredBlob>> {
    let row: Option<(String, i64, OffsetDateTime)> =
        sqlx::query_as("SELECT sha256, size, stored_at FROM stored_blobs WHERE user_id = $1 AND sha256 = $2")
            .bind(user.0)
            .bind(sha256)
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
    row.map(|(sha256, size, stored_at)| Ok(StoredBlob { sha256, size: size_from_db(size)?, stored_at })).transpose()
}

const UNREFERENCED: &str = "s.stored_at < $1
    AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.user_id = s.user_id AND a.sha256 = s.sha256)
    AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.user_id = s.user_id AND u.sha256 = s.sha256)";

pub async fn collect_unreferenced_blobs(pool: &PgPool, before: OffsetDateTime) -> StoreResult<Vec<(UserId, String)>> {
    // First find whose blobs look collectable, then re-check and delete under each user's lock:
    // an attach that committed meanwhile is seen by the second statement.
    let users: Vec<Uuid> = sqlx::query_scalar(&format!("SELECT DISTINCT s.user_id FROM stored_blobs s WHERE {UNREFERENCED}"))
        .bind(before)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    let mut collected = Vec::new();
    for user in users {
        let mut tx = pool.begin().await.map_err(db_err)?;
        match lock_user(&mut tx, UserId(user)).await {
            Err(StoreError::UserNotFound) => continue, // deleted meanwhile: its rows went with it
            other => other?,
        }
        let deleted: Vec<String> =
            sqlx::query_scalar(&format!("DELETE FROM stored_blobs s WHERE s.user_id = $2 AND {UNREFERENCED} RETURNING sha256"))
                .bind(before)
                .bind(user)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        collected.extend(deleted.into_iter().map(|sha256| (UserId(user), sha256)));
    }
    Ok(collected)
}

const BACKFILLED: &str = "stored_blobs_backfilled";

pub async fn stored_blobs_backfilled(pool: &PgPool) -> StoreResult<bool> {
    let found: Option<String> = sqlx::query_scalar("SELECT value FROM shelf_meta WHERE key = $1")
        .bind(BACKFILLED)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    Ok(found.is_some())
}

pub async fn backfill_stored_blobs(pool: &PgPool, blobs: &[(UserId, StoredBlob)]) -> StoreResult<u64> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let mut added = 0;
    for (user, blob) in blobs {
        let done = sqlx::query(
            "INSERT INTO stored_blobs (user_id, sha256, size, stored_at)
             SELECT $1, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1)
             ON CONFLICT (user_id, sha256) DO NOTHING",
        )
        .bind(user.0)
        .bind(&blob.sha256)
        .bind(db_size(blob.size)?)
        .bind(blob.stored_at)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        added += done.rows_affected();
    }
    sqlx::query("INSERT INTO shelf_meta (key, value) VALUES ($1, '1') ON CONFLICT (key) DO NOTHING")
        .bind(BACKFILLED)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(added)
}
