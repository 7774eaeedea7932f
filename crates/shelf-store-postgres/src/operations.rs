//! What operators need: device sync health and the counts of `shelf admin stats`.

use shelf_core::{DeviceId, LibraryVersion};
use shelf_store::{AdminStats, StoreResult};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;

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
