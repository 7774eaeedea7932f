//! What operators need: device sync health, the counts of `shelf admin stats`, and the account
//! lifecycle (sliding expiry, password change, deletion).

use shelf_core::{DeviceId, LibraryVersion, UserId};
use shelf_store::{Account, AdminStats, DeletedAccount, StoreError, StoreResult};
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db_err;
use crate::rows::micros;

pub async fn record_device_sync(pool: &SqlitePool, device: DeviceId, version: LibraryVersion, at: OffsetDateTime) -> StoreResult<()> {
    sqlx::query(
        "UPDATE sessions SET synced_version = max(coalesce(synced_version, 0), ?1),
             synced_at = ?2, last_seen_at = max(last_seen_at, ?2)
         WHERE id = ?3",
    )
    .bind(version.0)
    .bind(micros(at))
    .bind(device.0)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub async fn admin_stats(pool: &SqlitePool, now: OffsetDateTime) -> StoreResult<AdminStats> {
    let count = |sql: &'static str| async move {
        let row = sqlx::query(sql).bind(micros(now)).fetch_one(pool).await.map_err(db_err)?;
        row.try_get::<i64, _>(0).map(|n| n.max(0) as u64).map_err(db_err)
    };
    let users = count("SELECT count(*) FROM users WHERE ?1 IS NOT NULL").await?;
    let live_sessions = count("SELECT count(*) FROM sessions WHERE expires_at > ?1").await?;
    let never_synced = count("SELECT count(*) FROM sessions WHERE expires_at > ?1 AND synced_version IS NULL").await?;
    let materials = count("SELECT count(*) FROM materials WHERE ?1 IS NOT NULL").await?;
    let blobs = count("SELECT count(*) FROM stored_blobs WHERE ?1 IS NOT NULL").await?;
    let blob_bytes = count("SELECT coalesce(sum(size), 0) FROM stored_blobs WHERE ?1 IS NOT NULL").await?;
    let lags = sqlx::query(
        "SELECT u.library_version - s.synced_version FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.expires_at > ?1 AND s.synced_version IS NOT NULL",
    )
    .bind(micros(now))
    .fetch_all(pool)
    .await
    .map_err(db_err)?
    .iter()
    .map(|row| row.try_get::<i64, _>(0).map_err(db_err))
    .collect::<StoreResult<Vec<i64>>>()?;
    Ok(AdminStats { users, live_sessions, never_synced, lags, materials, blobs, blob_bytes })
}

pub async fn renew_sessions(pool: &SqlitePool, devices: &[DeviceId], now: OffsetDateTime, expires_at: OffsetDateTime) -> StoreResult<()> {
    // One statement per 500 sessions, not one per session: each statement is a round trip to
    // sqlx's worker thread, and a restart's reconnecting streams renew thousands at once.
    let mut tx = pool.begin().await.map_err(db_err)?;
    for chunk in devices.chunks(500) {
        let mut query = sqlx::QueryBuilder::new("UPDATE sessions SET last_seen_at = ");
        query.push_bind(micros(now)).push(", expires_at = max(expires_at, ").push_bind(micros(expires_at));
        query.push(") WHERE expires_at > ").push_bind(micros(now)).push(" AND id IN (");
        let mut list = query.separated(", ");
        for device in chunk {
            list.push_bind(device.0);
        }
        query.push(")");
        query.build().execute(&mut *tx).await.map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)
}

pub async fn account(pool: &SqlitePool, user: UserId) -> StoreResult<Option<Account>> {
    let row = sqlx::query("SELECT email, password_hash FROM users WHERE id = ?")
        .bind(user.0)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.map(|row| Ok(Account { email: row.try_get("email").map_err(db_err)?, password_hash: row.try_get("password_hash").map_err(db_err)? }))
        .transpose()
}

pub async fn change_password(pool: &SqlitePool, user: UserId, password_hash: &str, keep: DeviceId) -> StoreResult<Vec<DeviceId>> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let updated = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
        .bind(password_hash)
        .bind(user.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    if updated.rows_affected() == 0 {
        return Err(StoreError::UserNotFound);
    }
    let revoked = sqlx::query("DELETE FROM sessions WHERE user_id = ? AND id <> ? RETURNING id")
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

/// `BEGIN IMMEDIATE` takes SQLite's single write lock first, so no library write of this user
/// is half-way while the rows go.
pub async fn delete_user(pool: &SqlitePool, user: UserId) -> StoreResult<DeletedAccount> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let ids = |rows: Vec<sqlx::sqlite::SqliteRow>| {
        rows.iter().map(|row| row.try_get::<Uuid, _>(0).map_err(db_err)).collect::<StoreResult<Vec<Uuid>>>()
    };
    let devices = ids(sqlx::query("SELECT id FROM sessions WHERE user_id = ?").bind(user.0).fetch_all(&mut *tx).await.map_err(db_err)?)?;
    let uploads: Vec<(Uuid, Option<String>)> =
        sqlx::query_as("SELECT id, staging FROM uploads WHERE user_id = ?").bind(user.0).fetch_all(&mut *tx).await.map_err(db_err)?;
    let blobs = sqlx::query("SELECT sha256 FROM stored_blobs WHERE user_id = ?")
        .bind(user.0)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?
        .iter()
        .map(|row| row.try_get::<String, _>(0).map_err(db_err))
        .collect::<StoreResult<Vec<String>>>()?;
    // Explicitly, not by the cascade: the `sessions_ended` trigger logs each (migration 0011).
    sqlx::query("DELETE FROM sessions WHERE user_id = ?").bind(user.0).execute(&mut *tx).await.map_err(db_err)?;
    let deleted = sqlx::query("DELETE FROM users WHERE id = ?").bind(user.0).execute(&mut *tx).await.map_err(db_err)?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::UserNotFound);
    }
    tx.commit().await.map_err(db_err)?;
    Ok(DeletedAccount { devices: devices.into_iter().map(DeviceId).collect(), blobs, uploads })
}

/// One `BEGIN IMMEDIATE` transaction: no write commits between raising the horizons and deleting
/// below them.
pub async fn compact_tombstones(pool: &SqlitePool, active_since: OffsetDateTime, now: OffsetDateTime) -> StoreResult<u64> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    // Only users whose horizon rises are written.
    sqlx::query(
        "WITH cut AS (
             SELECT user_id, min(coalesce(synced_version, 0)) AS upto FROM sessions
             WHERE expires_at > ?1 AND last_seen_at >= ?2 GROUP BY user_id),
         target AS (
             SELECT c.user_id, max(c.version) AS horizon FROM library_changes c JOIN cut ON cut.user_id = c.user_id
             WHERE c.op = 'delete' AND c.version <= cut.upto GROUP BY c.user_id)
         UPDATE users SET feed_horizon = target.horizon FROM target
         WHERE users.id = target.user_id AND users.feed_horizon < target.horizon",
    )
    .bind(micros(now))
    .bind(micros(active_since))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let done = sqlx::query(
        "DELETE FROM library_changes WHERE op = 'delete'
             AND version <= (SELECT feed_horizon FROM users WHERE users.id = library_changes.user_id)",
    )
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(done.rows_affected())
}
