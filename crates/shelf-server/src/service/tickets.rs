//! Stream tickets: short-lived, single-use credentials for opening one event stream.
//!
//! A browser `EventSource` cannot send an `Authorization` header and, cross-origin, sends no
//! cookies; it can only put something in the URL. Putting the session token there would leak it
//! into logs and history, so clients trade their session for a ticket that expires in a minute
//! and is consumed by the first stream that presents it. Tickets live in the database so any
//! instance behind a load balancer can redeem them.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use shelf_core::DeviceId;
use shelf_store::Store;
use time::OffsetDateTime;

use crate::error::{ApiError, ApiResult};
use crate::extract::CurrentDevice;
use crate::service::auth::{new_token, now, token_hash};
use crate::state::AppState;

pub const TICKET_TTL: time::Duration = time::Duration::seconds(60);

pub async fn issue(store: &dyn Store, device: CurrentDevice) -> ApiResult<(String, OffsetDateTime)> {
    let ticket = new_token();
    let expires_at = now() + TICKET_TTL;
    store.create_stream_ticket(&token_hash(&ticket), device.device_id, expires_at).await?;
    Ok((ticket, expires_at))
}

/// Authenticates a stream by `?ticket=` (consuming it) or like any other route.
pub struct StreamAuth(pub CurrentDevice);

impl FromRequestParts<AppState> for StreamAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let ticket = parts
            .uri
            .query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .find_map(|pair| pair.strip_prefix("ticket="))
            .map(str::to_owned);
        match ticket {
            Some(ticket) => {
                let auth = state
                    .store
                    .consume_stream_ticket(&token_hash(&ticket), now())
                    .await?
                    .ok_or(ApiError::Unauthenticated)?;
                Ok(StreamAuth(CurrentDevice { user_id: auth.user_id, device_id: auth.device_id }))
            }
            None => Ok(StreamAuth(CurrentDevice::authenticate(parts, state, true).await?)),
        }
    }
}

/// Devices among `devices` whose sessions ended (revoked or expired).
pub async fn ended_sessions(store: &dyn Store, devices: &[DeviceId]) -> ApiResult<Vec<DeviceId>> {
    if devices.is_empty() {
        return Ok(Vec::new());
    }
    // A set: with 10,000 open streams a list lookup per device cost a tenth of a core (ADR 0009).
    let live: std::collections::HashSet<DeviceId> = store.live_devices(devices, now()).await?.into_iter().collect();
    Ok(devices.iter().copied().filter(|d| !live.contains(d)).collect())
}
