//! Web Push: the VAPID key, subscriptions, push claims and stream presence (ADR 0006).

use shelf_core::{DeviceId, LibraryVersion, UserId};
use shelf_store::{NewPushSubscription, PushSubscription, PushTarget, StoreResult};
use sqlx::{PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db_err;

pub async fn vapid_private_key(pool: &PgPool, candidate: &[u8], now: OffsetDateTime) -> StoreResult<Vec<u8>> {
    sqlx::query("INSERT INTO vapid_keys (id, private_key, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING")
        .bind(candidate)
        .bind(now)
        .execute(pool)
        .await
        .map_err(db_err)?;
    sqlx::query_scalar("SELECT private_key FROM vapid_keys WHERE id = 1").fetch_one(pool).await.map_err(db_err)
}

pub async fn put_push_subscription(pool: &PgPool, subscription: &NewPushSubscription) -> StoreResult<bool> {
    // The session must exist and belong to the user: INSERT … SELECT writes nothing otherwise.
    let done = sqlx::query(
        "INSERT INTO push_subscriptions (device_id, user_id, endpoint, p256dh, auth, created_at)
         SELECT id, user_id, $1, $2, $3, $4 FROM sessions WHERE id = $5 AND user_id = $6
         ON CONFLICT (device_id) DO UPDATE SET endpoint = excluded.endpoint, p256dh = excluded.p256dh,
             auth = excluded.auth, created_at = excluded.created_at",
    )
    .bind(&subscription.endpoint)
    .bind(&subscription.p256dh)
    .bind(&subscription.auth)
    .bind(subscription.created_at)
    .bind(subscription.device_id.0)
    .bind(subscription.user_id.0)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected() > 0)
}

pub async fn delete_push_subscription(pool: &PgPool, user: UserId, device: DeviceId) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM push_subscriptions WHERE device_id = $1 AND user_id = $2")
        .bind(device.0)
        .bind(user.0)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() > 0)
}

pub async fn discard_push_subscription(pool: &PgPool, device: DeviceId, endpoint: &str) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM push_subscriptions WHERE device_id = $1 AND endpoint = $2")
        .bind(device.0)
        .bind(endpoint)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() > 0)
}

pub async fn push_devices(pool: &PgPool, user: UserId) -> StoreResult<Vec<DeviceId>> {
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT device_id FROM push_subscriptions WHERE user_id = $1")
        .bind(user.0)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    Ok(ids.into_iter().map(DeviceId).collect())
}

pub async fn push_targets(pool: &PgPool, users: &[UserId], now: OffsetDateTime, seen_since: OffsetDateTime) -> StoreResult<Vec<PushTarget>> {
    let ids: Vec<Uuid> = users.iter().map(|u| u.0).collect();
    let rows = sqlx::query(
        "SELECT p.user_id, p.device_id, p.pushed_version FROM push_subscriptions p
         JOIN sessions s ON s.id = p.device_id
         WHERE p.user_id = ANY($1) AND s.expires_at > $2
           AND NOT EXISTS (SELECT 1 FROM stream_presence sp WHERE sp.device_id = p.device_id AND sp.seen_at >= $3)",
    )
    .bind(&ids)
    .bind(now)
    .bind(seen_since)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            Ok(PushTarget {
                user_id: UserId(row.try_get("user_id").map_err(db_err)?),
                device_id: DeviceId(row.try_get("device_id").map_err(db_err)?),
                pushed_version: LibraryVersion(row.try_get("pushed_version").map_err(db_err)?),
            })
        })
        .collect()
}

pub async fn claim_push(
    pool: &PgPool,
    device: DeviceId,
    version: LibraryVersion,
    now: OffsetDateTime,
    seen_since: OffsetDateTime,
) -> StoreResult<Option<PushSubscription>> {
    // One UPDATE: PostgreSQL re-checks `pushed_version < $2` on the row it locked, so of two
    // instances claiming the same version the second finds it raised and updates nothing.
    let row = sqlx::query(
        "UPDATE push_subscriptions p SET pushed_version = $2
         WHERE p.device_id = $1 AND p.pushed_version < $2
           AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = p.device_id AND s.expires_at > $3)
           AND NOT EXISTS (SELECT 1 FROM stream_presence sp WHERE sp.device_id = p.device_id AND sp.seen_at >= $4)
         RETURNING p.device_id, p.endpoint, p.p256dh, p.auth",
    )
    .bind(device.0)
    .bind(version.0)
    .bind(now)
    .bind(seen_since)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.map(|row| {
        Ok(PushSubscription {
            device_id: DeviceId(row.try_get("device_id").map_err(db_err)?),
            endpoint: row.try_get("endpoint").map_err(db_err)?,
            p256dh: row.try_get("p256dh").map_err(db_err)?,
            auth: row.try_get("auth").map_err(db_err)?,
        })
    })
    .transpose()
}

pub async fn record_stream_presence(pool: &PgPool, instance: Uuid, devices: &[DeviceId], now: OffsetDateTime) -> StoreResult<()> {
    let ids: Vec<Uuid> = devices.iter().map(|d| d.0).collect();
    // Only devices whose session still exists (a revoked one would violate the foreign key).
    sqlx::query(
        "INSERT INTO stream_presence (device_id, instance_id, seen_at)
         SELECT id, $2, $3 FROM sessions WHERE id = ANY($1)
         ON CONFLICT (device_id, instance_id) DO UPDATE SET seen_at = excluded.seen_at",
    )
    .bind(&ids)
    .bind(instance)
    .bind(now)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub async fn clear_stream_presence(pool: &PgPool, instance: Uuid, devices: Option<&[DeviceId]>) -> StoreResult<()> {
    match devices {
        None => sqlx::query("DELETE FROM stream_presence WHERE instance_id = $1").bind(instance).execute(pool).await,
        Some(devices) => {
            let ids: Vec<Uuid> = devices.iter().map(|d| d.0).collect();
            sqlx::query("DELETE FROM stream_presence WHERE instance_id = $1 AND device_id = ANY($2)")
                .bind(instance)
                .bind(&ids)
                .execute(pool)
                .await
        }
    }
    .map_err(db_err)?;
    Ok(())
}
