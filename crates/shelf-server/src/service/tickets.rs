//! Stream tickets: short-lived, single-use credentials for opening one event stream.
//!
//! A browser `EventSource` cannot send an `Authorization` header and, cross-origin, sends no
//! cookies; it can only put something in the URL. Putting the session token there would leak it
//! into logs and history, so clients trade their session for a ticket that expires in a minute
//! and is consumed by the first stream that presents it. Tickets live in the database so any
//! instance behind a load balancer can redeem them.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
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

/// Authenticates a stream by `?ticket=` (consuming it) or like any other route; also says when
/// the session expires unless renewed.
pub struct StreamAuth(pub CurrentDevice, pub OffsetDateTime);

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
                Ok(StreamAuth(CurrentDevice { user_id: auth.user_id, device_id: auth.device_id }, auth.expires_at))
            }
            None => {
                let (device, expires_at) = CurrentDevice::authenticate_session(parts, state, true).await?;
                Ok(StreamAuth(device, expires_at))
            }
        }
    }
}
