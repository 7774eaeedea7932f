//! Web Push: the VAPID key, subscriptions, push claims and stream presence (ADR 0006).

use shelf_core::{DeviceId, LibraryVersion, UserId};
use shelf_store::{NewPushSubscription, PushSubscription, PushTarget, StoreResult};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db_err;
use crate::rows::micros;

/// SQLite has no array parameters; chunks keep each statement under its variable limit.
const CHUNK: usize = 500;

pub async fn vapid_private_key(pool: &SqlitePool, candidate: &[u8], now: OffsetDateTime) -> StoreResult<Vec<u8>> {
    sqlx::query("INSERT INTO vapid_keys (id, private_key, created_at) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING")
        .bind(candidate)
        .bind(micros(now))
        .execute(pool)
        .await
        .map_err(db_err)?;
    sqlx::query_scalar("SELECT private_key FROM vapid_keys WHERE id = 1").fetch_one(pool).await.map_err(db_err)
}

pub async fn put_push_subscription(pool: &SqlitePool, subscription: &NewPushSubscription) -> StoreResult<bool> {
    // The session must exist and belong to the user: INSERT … SELECT writes nothing otherwise.
    let done = sqlx::query(
        "INSERT INTO push_subscriptions (device_id, user_id, endpoint, p256dh, auth, created_at)
         SELECT id, user_id, ?, ?, ?, ? FROM sessions WHERE id = ? AND user_id = ?
         ON CONFLICT (device_id) DO UPDATE SET endpoint = excluded.endpoint, p256dh = excluded.p256dh,
             auth = excluded.auth, created_at = excluded.created_at",
    )
    .bind(&subscription.endpoint)
    .bind(&subscription.p256dh)
    .bind(&subscription.auth)
    .bind(micros(subscription.created_at))
    .bind(subscription.device_id.0)
    .bind(subscription.user_id.0)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected() > 0)
}

pub async fn delete_push_subscription(pool: &SqlitePool, user: UserId, device: DeviceId) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM push_subscriptions WHERE device_id = ? AND user_id = ?")
        .bind(device.0)
        .bind(user.0)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() > 0)
}

pub async fn discard_push_subscription(pool: &SqlitePool, device: DeviceId, endpoint: &str) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM push_subscriptions WHERE device_id = ? AND endpoint = ?")
        .bind(device.0)
        .bind(endpoint)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() > 0)
}

pub async fn push_devices(pool: &SqlitePool, user: UserId) -> StoreResult<Vec<DeviceId>> {
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT device_id FROM push_subscriptions WHERE user_id = ?")
        .bind(user.0)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    Ok(ids.into_iter().map(DeviceId).collect())
}

pub async fn push_targets(pool: &SqlitePool, users: &[UserId], now: OffsetDateTime, seen_since: OffsetDateTime) -> StoreResult<Vec<PushTarget>> {
    let mut targets = Vec::new();
    for chunk in users.chunks(CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT p.user_id, p.device_id, p.pushed_version FROM push_subscriptions p
             JOIN sessions s ON s.id = p.device_id
             WHERE s.expires_at > ",
        );
        query.push_bind(micros(now));
        query.push(" AND NOT EXISTS (SELECT 1 FROM stream_presence sp WHERE sp.device_id = p.device_id AND sp.seen_at >= ");
        query.push_bind(micros(seen_since)).push(") AND p.user_id IN (");
        let mut list = query.separated(", ");
        for user in chunk {
            list.push_bind(user.0);
        }
        query.push(")");
        for row in query.build().fetch_all(pool).await.map_err(db_err)? {
            targets.push(PushTarget {
                user_id: UserId(row.try_get("user_id").map_err(db_err)?),
                device_id: DeviceId(row.try_get("device_id").map_err(db_err)?),
                pushed_version: LibraryVersion(row.try_get("pushed_version").map_err(db_err)?),
            });
        }
    }
    Ok(targets)
}

pub async fn claim_push(
    pool: &SqlitePool,
    device: DeviceId,
    version: LibraryVersion,
    now: OffsetDateTime,
    seen_since: OffsetDateTime,
) -> StoreResult<Option<PushSubscription>> {
    // One statement: the condition and the raise happen under SQLite's write lock, so two
    // instances claiming the same version cannot both see the old value.
    let row = sqlx::query(
        "UPDATE push_subscriptions SET pushed_version = ?
         WHERE device_id = ? AND pushed_version < ?
           AND EXISTS (SELECT 1 FROM sessions s WHERE s.id = push_subscriptions.device_id AND s.expires_at > ?)
           AND NOT EXISTS (SELECT 1 FROM stream_presence sp WHERE sp.device_id = push_subscriptions.device_id AND sp.seen_at >= ?)
         RETURNING device_id, endpoint, p256dh, auth",
    )
    .bind(version.0)
    .bind(device.0)
    .bind(version.0)
    .bind(micros(now))
    .bind(micros(seen_since))
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

pub async fn record_stream_presence(pool: &SqlitePool, instance: Uuid, devices: &[DeviceId], now: OffsetDateTime) -> StoreResult<()> {
    for chunk in devices.chunks(CHUNK) {
        // Only devices whose session still exists (a revoked one would violate the foreign key).
        let mut query = QueryBuilder::<Sqlite>::new("INSERT INTO stream_presence (device_id, instance_id, seen_at) SELECT id, ");
        query.push_bind(instance).push(", ").push_bind(micros(now)).push(" FROM sessions WHERE id IN (");
        let mut list = query.separated(", ");
        for device in chunk {
            list.push_bind(device.0);
        }
        query.push(") ON CONFLICT (device_id, instance_id) DO UPDATE SET seen_at = excluded.seen_at");
        query.build().execute(pool).await.map_err(db_err)?;
    }
    Ok(())
}

pub async fn clear_stream_presence(pool: &SqlitePool, instance: Uuid, devices: Option<&[DeviceId]>) -> StoreResult<()> {
    let Some(devices) = devices else {
        sqlx::query("DELETE FROM stream_presence WHERE instance_id = ?").bind(instance).execute(pool).await.map_err(db_err)?;
        return Ok(());
    };
    for chunk in devices.chunks(CHUNK) {
        let mut query = QueryBuilder::<Sqlite>::new("DELETE FROM stream_presence WHERE instance_id = ");
        query.push_bind(instance).push(" AND device_id IN (");
        let mut list = query.separated(", ");
        for device in chunk {
            list.push_bind(device.0);
        }
        query.push(")");
        query.build().execute(pool).await.map_err(db_err)?;
    }
    Ok(())
}
