//! What operators need: device sync health and the counts of `shelf admin stats`.

use shelf_core::{DeviceId, LibraryVersion};
use shelf_store::{AdminStats, StoreResult};
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;

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
