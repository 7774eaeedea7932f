//! Users and device sessions.

use shelf_core::{DeviceId, Email, UserId};
use shelf_store::{NewSession, SessionAuth, SessionInfo, StoreError, StoreResult, UserCredentials};
use sqlx::{Row, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db_err;

pub async fn create_user(pool: &PgPool, email: &Email, password_hash: &str, now: OffsetDateTime) -> StoreResult<UserId> {
    let id = UserId::new();
    let result = sqlx::query("INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id.0)
        .bind(email.as_str())
        .bind(password_hash)
        .bind(now)
        .execute(pool)
        .await;
    match result {
        Ok(_) => Ok(id),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::EmailTaken),
        Err(e) => Err(db_err(e)),
    }
}

pub async fn user_credentials(pool: &PgPool, email: &Email) -> StoreResult<Option<UserCredentials>> {
    let row = sqlx::query("SELECT id, password_hash FROM users WHERE email = $1")
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

pub async fn create_session(pool: &PgPool, session: &NewSession) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, token_hash, device_name, created_at, last_seen_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(session.device_id.0)
    .bind(session.user_id.0)
    .bind(&session.token_hash)
    .bind(&session.device_name)
    .bind(session.created_at)
    .bind(session.created_at)
    .bind(session.expires_at)
    .execute(pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Reads a session from columns `id, user_id, last_seen_at, expires_at`.
fn session_auth(row: &sqlx::postgres::PgRow) -> StoreResult<SessionAuth> {
    Ok(SessionAuth {
        device_id: DeviceId(row.try_get("id").map_err(db_err)?),
        user_id: UserId(row.try_get("user_id").map_err(db_err)?),
        last_seen_at: row.try_get("last_seen_at").map_err(db_err)?,
        expires_at: row.try_get("expires_at").map_err(db_err)?,
    })
}

pub async fn session_by_token_hash(pool: &PgPool, token_hash: &[u8], now: OffsetDateTime) -> StoreResult<Option<SessionAuth>> {
    let row = sqlx::query(
        "SELECT id, user_id, last_seen_at, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(session_auth).transpose()
}

/// One statement for all of them: a lookup on the unique token index per hash.
pub async fn sessions_by_token_hashes(pool: &PgPool, token_hashes: &[Vec<u8>], now: OffsetDateTime) -> StoreResult<Vec<(Vec<u8>, SessionAuth)>> {
    let rows = sqlx::query(
        "SELECT token_hash, id, user_id, last_seen_at, expires_at FROM sessions WHERE token_hash = ANY($1) AND expires_at > $2",
    )
    .bind(token_hashes)
    .bind(now)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter().map(|row| Ok((row.try_get("token_hash").map_err(db_err)?, session_auth(row)?))).collect()
}

pub async fn touch_session(pool: &PgPool, device: DeviceId, now: OffsetDateTime) -> StoreResult<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
        .bind(now)
        .bind(device.0)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub async fn list_sessions(pool: &PgPool, user: UserId, now: OffsetDateTime) -> StoreResult<Vec<SessionInfo>> {
    let rows = sqlx::query(
        "SELECT id, device_name, created_at, last_seen_at, expires_at, synced_version, synced_at FROM sessions
         WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at, id",
    )
    .bind(user.0)
    .bind(now)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            let id: Uuid = row.try_get("id").map_err(db_err)?;
            Ok(SessionInfo {
                device_id: DeviceId(id),
                device_name: row.try_get("device_name").map_err(db_err)?,
                created_at: row.try_get("created_at").map_err(db_err)?,
                last_seen_at: row.try_get("last_seen_at").map_err(db_err)?,
                expires_at: row.try_get("expires_at").map_err(db_err)?,
                synced: match (row.try_get::<Option<i64>, _>("synced_version").map_err(db_err)?, row.try_get::<Option<OffsetDateTime>, _>("synced_at").map_err(db_err)?) {
                    (Some(version), Some(at)) => Some((shelf_core::LibraryVersion(version), at)),
                    _ => None,
                },
            })
        })
        .collect()
}

pub async fn revoke_session(pool: &PgPool, user: UserId, device: DeviceId) -> StoreResult<bool> {
    let done = sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
        .bind(device.0)
        .bind(user.0)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected() > 0)
}

pub async fn session_expiries(pool: &PgPool, devices: &[DeviceId], now: OffsetDateTime) -> StoreResult<Vec<(DeviceId, OffsetDateTime)>> {
    let ids: Vec<Uuid> = devices.iter().map(|d| d.0).collect();
    let live: Vec<(Uuid, OffsetDateTime)> = sqlx::query_as("SELECT id, expires_at FROM sessions WHERE id = ANY($1) AND expires_at > $2")
        .bind(&ids)
        .bind(now)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    Ok(live.into_iter().map(|(id, expires_at)| (DeviceId(id), expires_at)).collect())
}

/// The window is measured by the database's clock, like the trigger's `ended_at` (migration 0011).
pub async fn ended_sessions(pool: &PgPool, window: std::time::Duration) -> StoreResult<Vec<DeviceId>> {
    let window = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
    let ended: Vec<Uuid> = sqlx::query_scalar("SELECT device_id FROM ended_sessions WHERE ended_at >= clock_timestamp() - make_interval(secs => $1::float8 / 1000000)")
        .bind(window)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    Ok(ended.into_iter().map(DeviceId).collect())
}

pub async fn purge_ended_sessions(pool: &PgPool, older_than: std::time::Duration) -> StoreResult<u64> {
    let older_than = i64::try_from(older_than.as_micros()).unwrap_or(i64::MAX);
    let done = sqlx::query("DELETE FROM ended_sessions WHERE ended_at < clock_timestamp() - make_interval(secs => $1::float8 / 1000000)")
        .bind(older_than)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(done.rows_affected())
}

pub async fn create_stream_ticket(pool: &PgPool, ticket_hash: &[u8], device: DeviceId, expires_at: OffsetDateTime) -> StoreResult<()> {
    // Expired tickets of this device are cleared on the way, so the table stays small.
    sqlx::query("DELETE FROM stream_tickets WHERE device_id = $1 AND expires_at <= $2")
        .bind(device.0)
        .bind(OffsetDateTime::now_utc())
        .execute(pool)
        .await
        .map_err(db_err)?;
    sqlx::query("INSERT INTO stream_tickets (ticket_hash, device_id, expires_at) VALUES ($1, $2, $3)")
        .bind(ticket_hash)
        .bind(device.0)
        .bind(expires_at)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub async fn consume_stream_ticket(pool: &PgPool, ticket_hash: &[u8], now: OffsetDateTime) -> StoreResult<Option<SessionAuth>> {
    let device: Option<Uuid> =
        sqlx::query_scalar("DELETE FROM stream_tickets WHERE ticket_hash = $1 AND expires_at > $2 RETURNING device_id")
            .bind(ticket_hash)
            .bind(now)
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
    let Some(device) = device else { return Ok(None) };
    let row = sqlx::query("SELECT id, user_id, last_seen_at, expires_at FROM sessions WHERE id = $1 AND expires_at > $2")
        .bind(device)
        .bind(now)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.as_ref().map(session_auth).transpose()
}
