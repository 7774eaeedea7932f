//! Users and device sessions.

use shelf_core::{DeviceId, Email, UserId};
use shelf_store::{NewSession, SessionAuth, SessionInfo, StoreError, StoreResult, UserCredentials};
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db_err;
use crate::rows::{from_micros, micros};

pub async fn create_user(pool: &SqlitePool, email: &Email, password_hash: &str, now: OffsetDateTime) -> StoreResult<UserId> {
    let id = UserId::new();
    let result = sqlx::query("INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)")
        .bind(id.0)
        .bind(email.as_str())
        .bind(password_hash)
        .bind(micros(now))
        .execute(pool)
        .await;
    match result {
        Ok(_) => Ok(id),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::EmailTaken),
        Err(e) => Err(db_err(e)),
    }
}

pub async fn user_credentials(pool: &SqlitePool, email: &Email) -> StoreResult<Option<UserCredentials>> {
    let row = sqlx::query("SELECT id, password_hash FROM users WHERE email = ?")
        .bind(email.as_str())
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.map(|row| {
        Ok(UserCredentials {
            user_id: UserId(row.try_get("id").map_err(db_err)?),
            password_hash: row.try_get("password_hash").map_err(db_err)?,
        })
    })
    .transpose()
}

pub async fn create_session(pool: &SqlitePool, session: &NewSession) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, token_hash, device_name, created_at, last_seen_at, expires_at)
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(session.device_id.0)
    .bind(session.user_id.0)
    .bind(&session.token_hash)
    .bind(&session.device_name)
    .bind(micros(session.created_at))
    .bind(micros(session.created_at))
    .bind(micros(session.expires_at))
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Reads a session from columns `id, user_id, last_seen_at, expires_at`.
fn session_auth(row: &sqlx::sqlite::SqliteRow) -> StoreResult<SessionAuth> {
    Ok(SessionAuth {
        device_id: DeviceId(row.try_get("id").map_err(db_err)?),
        user_id: UserId(row.try_get("user_id").map_err(db_err)?),
        last_seen_at: from_micros(row.try_get("last_seen_at").map_err(db_err)?)?,
        expires_at: from_micros(row.try_get("expires_at").map_err(db_err)?)?,
    })
}

pub async fn touch_session(pool: &SqlitePool, device: DeviceId, now: OffsetDateTime) -> StoreResult<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id = ?")
        .bind(micros(now))
        .bind(device.0)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub async fn list_sessions(pool: &SqlitePool, user: UserId, now: OffsetDateTime) -> StoreResult<Vec<SessionInfo>> {
    let rows = sqlx::query(
        "SELECT id, device_name, created_at, last_seen_at, expires_at, synced_version, synced_at FROM sessions
         WHERE user_id = ? AND expires_at > ? ORDER BY created_at, id",
    )
    .bind(user.0)
    .bind(micros(now))
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            let id: Uuid = row.try_get("id").map_err(db_err)?;
            Ok(SessionInfo {
                device_id: DeviceId(id),
                device_name: row.try_get("device_name").map_err(db_err)?,
                created_at: from_micros(row.try_get("created_at").map_err(db_err)?)?,
                last_seen_at: from_micros(row.try_get("last_seen_at").map_err(db_err)?)?,
                expires_at: from_micros(row.try_get("expires_at").map_err(db_err)?)?,
                synced: match (row.try_get::<Option<i64>, _>("synced_version").map_err(db_err)?, row.try_get::<Option<i64>, _>("synced_at").map_err(db_err)?) {
                    (Some(version), Some(at)) => Some((shelf_core::LibraryVersion(version), from_micros(at)?)),
                    _ => None,
                },
            })
        })
        .collect()
}

pub async fn revoke_session(pool: &SqlitePool, user: UserId, device: DeviceId) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM sessions WHERE id = ? AND user_id = ?")
        .bind(device.0)
        .bind(user.0)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() > 0)
}

pub async fn session_expiries(pool: &SqlitePool, devices: &[DeviceId], now: OffsetDateTime) -> StoreResult<Vec<(DeviceId, OffsetDateTime)>> {
    let mut live = Vec::new();
    // SQLite has no array parameters; chunks keep each statement under its variable limit.
    for chunk in devices.chunks(500) {
        let mut query = sqlx::QueryBuilder::new("SELECT id, expires_at FROM sessions WHERE expires_at > ");
        query.push_bind(micros(now)).push(" AND id IN (");
        let mut list = query.separated(", ");
        for device in chunk {
            list.push_bind(device.0);
        }
        query.push(")");
        let rows: Vec<(Uuid, i64)> = query.build_query_as().fetch_all(pool).await.map_err(db_err)?;
        for (id, expires_at) in rows {
            live.push((DeviceId(id), from_micros(expires_at)?));
        }
    }
    Ok(live)
}

/// The window is measured by SQLite's clock, like the trigger's `ended_at` (migration 0011).
pub async fn ended_sessions(pool: &SqlitePool, window: std::time::Duration) -> StoreResult<Vec<DeviceId>> {
    let window = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
    let ended: Vec<Uuid> =
        sqlx::query_scalar("SELECT device_id FROM ended_sessions WHERE ended_at >= CAST(unixepoch('subsec') * 1000000 AS INTEGER) - ?")
            .bind(window)
            .fetch_all(pool)
            .await
            .map_err(db_err)?;
    Ok(ended.into_iter().map(DeviceId).collect())
}

pub async fn purge_ended_sessions(pool: &SqlitePool, older_than: std::time::Duration) -> StoreResult<u64> {
    let older_than = i64::try_from(older_than.as_micros()).unwrap_or(i64::MAX);
    let done = sqlx::query("DELETE FROM ended_sessions WHERE ended_at < CAST(unixepoch('subsec') * 1000000 AS INTEGER) - ?")
        .bind(older_than)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected())
}

pub async fn create_stream_ticket(pool: &SqlitePool, ticket_hash: &[u8], device: DeviceId, expires_at: OffsetDateTime) -> StoreResult<()> {
    // Expired tickets of this device are cleared on the way, so the table stays small.
    sqlx::query("DELETE FROM stream_tickets WHERE device_id = ? AND expires_at <= ?")
        .bind(device.0)
        .bind(micros(OffsetDateTime::now_utc()))
        .execute(pool)
        .await
        .map_err(db_err)?;
    sqlx::query("INSERT INTO stream_tickets (ticket_hash, device_id, expires_at) VALUES (?, ?, ?)")
        .bind(ticket_hash)
        .bind(device.0)
        .bind(micros(expires_at))
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub async fn consume_stream_ticket(pool: &SqlitePool, ticket_hash: &[u8], now: OffsetDateTime) -> StoreResult<Option<SessionAuth>> {
    let device: Option<Uuid> =
        sqlx::query_scalar("DELETE FROM stream_tickets WHERE ticket_hash = ? AND expires_at > ? RETURNING device_id")
            .bind(ticket_hash)
            .bind(micros(now))
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
    let Some(device) = device else { return Ok(None) };
    let row = sqlx::query("SELECT id, user_id, last_seen_at, expires_at FROM sessions WHERE id = ? AND expires_at > ?")
        .bind(device)
        .bind(micros(now))
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.as_ref().map(session_auth).transpose()
}
