//! What operators need: device sync health, the counts of `shelf admin stats`, and the account
//! lifecycle (sliding expiry, password change, deletion).

use shelf_core::{DeviceId, LibraryVersion, UserId};
use shelf_store::{Account, AdminStats, DeletedAccount, StoreError, StoreResult};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db_err;

pub async fn record_device_sync(pool: &PgPool, device: DeviceId, version: LibraryVersion, at: OffsetDateTime) -> StoreResult<()> {
    sqlx::query(
        "UPDATE sessions SET synced_version = greatest(coalesce(synced_version, 0), $1),
             synced_at = $2, last_seen_at = greatest(last_seen_at, $2)
         WHERE id = $3",
    )
    .bind(version.0)
    .bind(at)
    .bind(device.0)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub async fn admin_stats(pool: &PgPool, now: OffsetDateTime) -> StoreResult<AdminStats> {
    let row = sqlx::query(
        "SELECT (SELECT count(*) FROM users) AS users,
                (SELECT count(*) FROM sessions WHERE expires_at > $1) AS live_sessions,
                (SELECT count(*) FROM sessions WHERE expires_at > $1 AND synced_version IS NULL) AS never_synced,
                (SELECT count(*) FROM materials) AS materials,
                (SELECT count(*) FROM stored_blobs) AS blobs,
                (SELECT coalesce(sum(size), 0)::BIGINT FROM stored_blobs) AS blob_bytes",
    )
    .bind(now)
    .fetch_one(pool)
    .await
    .map_err(db_err)?;
    let count = |name: &str| row.try_get::<i64, _>(name).map(|n| n.max(0) as u64).map_err(db_err);
    let lags = sqlx::query(
        "SELECT u.library_version - s.synced_version FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.expires_at > $1 AND s.synced_version IS NOT NULL",
    )
    .bind(now)
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(|row| row.try_get::<i64, _>(0).map_err(db_err))
    .collect::<StoreResult<Vec<i64>>>()?;
    Ok(AdminStats {
        users: count("users")?,
        live_sessions: count("live_sessions")?,
        never_synced: count("never_synced")?,
        lags,
        materials: count("materials")?,
        blobs: count("blobs")?,
        blob_bytes: count("blob_bytes")?,
    })
}

pub async fn renew_sessions(pool: &PgPool, devices: &[DeviceId], now: OffsetDateTime, expires_at: OffsetDateTime) -> StoreResult<()> {
    let ids: Vec<Uuid> = devices.iter().map(|device| device.0).collect();
    sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = greatest(expires_at, $2) WHERE id = ANY($3) AND expires_at > $1")
        .bind(now)
        .bind(expires_at)
        .bind(&ids)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub async fn account(pool: &PgPool, user: UserId) -> StoreResult<Option<Account>> {
    let row = sqlx::query("SELECT email, password_hash FROM users WHERE id = $1")
        .bind(user.0)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.map(|row| Ok(Account { email: row.try_get("email").map_err(db_err)?, password_hash: row.try_get("password_hash").map_err(db_err)? }))
        .transpose()
}

pub async fn change_password(pool: &PgPool, user: UserId, password_hash: &str, keep: DeviceId) -> StoreResult<Vec<DeviceId>> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let updated = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(user.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::UserNotFound);
    }
    let revoked = sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2 RETURNING id")
        .bind(user.0)
        .bind(keep.0)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?
        .iter()
        .map(|row| row.try_get::<Uuid, _>("id").map(DeviceId).map_err(db_err))
        .collect::<StoreResult<Vec<_>>>()?;
    tx.commit().await.map_err(db_err)?;
    Ok(revoked)
}

/// Takes the user's row lock first (the lock every library writer of the user takes), so no
/// write of this user is half-way while the rows go.
pub async fn delete_user(pool: &PgPool, user: UserId) -> StoreResult<DeletedAccount> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(user.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
    if found.is_none() {
        return Err(StoreError::UserNotFound);
    }
    let devices: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM sessions WHERE user_id = $1").bind(user.0).fetch_all(&mut *tx).await.map_err(db_err)?;
    let uploads: Vec<(Uuid, Option<String>)> =
        sqlx::query_as("SELECT id, staging FROM uploads WHERE user_id = $1").bind(user.0).fetch_all(&mut *tx).await.map_err(db_err)?;
    let blobs: Vec<String> =
        sqlx::query_scalar("SELECT sha256 FROM stored_blobs WHERE user_id = $1").bind(user.0).fetch_all(&mut *tx).await.map_err(db_err)?;
    sqlx::query("DELETE FROM users WHERE id = $1").bind(user.0).execute(&mut *tx).await.map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(DeletedAccount { devices: devices.into_iter().map(DeviceId).collect(), blobs, uploads })
}

/// Raises horizons first, then deletes only tombstones at or below the raised horizon (as the
/// retention purge does): a tombstone committed in between has a version above every cursor the
/// first statement read, so it stays.
pub async fn compact_tombstones(pool: &PgPool, active_since: OffsetDateTime, now: OffsetDateTime) -> StoreResult<u64> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    // Only users whose horizon rises are written (and so row-locked: the lock their writers take).
    sqlx::query(
        "WITH cut AS (
             SELECT user_id, min(coalesce(synced_version, 0)) AS upto FROM sessions
             WHERE expires_at > $1 AND last_seen_at >= $2 GROUP BY user_id),
         target AS (
             SELECT c.user_id, max(c.version) AS horizon FROM library_changes c JOIN cut ON cut.user_id = c.user_id
             WHERE c.op = 'delete' AND c.version <= cut.upto GROUP BY c.user_id)
         UPDATE users SET feed_horizon = target.horizon FROM target
         WHERE users.id = target.user_id AND users.feed_horizon < target.horizon",
    )
    .bind(now)
    .bind(active_since)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let done = sqlx::query(
        "DELETE FROM library_changes c USING users u
         WHERE u.id = c.user_id AND c.op = 'delete' AND c.version <= u.feed_horizon",
    )
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(done.rows_affected())
}
