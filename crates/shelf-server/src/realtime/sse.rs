//! `GET /api/library-version-events`: Server-Sent Events.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue};
use axum::response::IntoResponse;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use shelf_api::ErrorBody;
use shelf_core::LibraryVersion;
use utoipa::IntoParams;

use crate::error::ApiResult;
use crate::extract::Query;
use crate::realtime::stream::{bare_payload, StreamMessage, VersionStream};
use crate::service::tickets::StreamAuth;
use crate::state::AppState;

/// How long a client waits before reconnecting (the SSE `retry:` hint).
pub const RETRY_HINT: Duration = Duration::from_millis(2000);
/// The hint sent when the server shuts down: come back soon, another instance may be up.
pub const SHUTDOWN_RETRY_HINT: Duration = Duration::from_millis(500);

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// `1` to carry the delta since the previous event inside each event.
    pub changes: Option<String>,
    /// A single-use stream ticket (`POST /api/library-version-events/ticket`), for clients that
    /// cannot send cookies or headers (cross-origin `EventSource`).
    pub ticket: Option<String>,
    /// The version the client already has (like `Last-Event-ID`, for WebSocket clients).
    pub since: Option<i64>,
}

impl EventsQuery {
    pub fn with_changes(&self) -> bool {
        matches!(self.changes.as_deref(), Some("1" | "true"))
    }
}

/// A stream of `version` events: the current version at once, then one per committed change.
#[utoipa::path(get, operation_id = "streamLibraryVersionEvents", path = "/api/library-version-events", tag = "realtime", security(("bearer" = []), ("cookie" = []), ("ticket" = [])),
    params(EventsQuery, ("Last-Event-ID" = Option<i64>, Header, description = "the last version received")),
    responses(
        (status = 200, content_type = "text/event-stream",
            description = "`event: version`, `id: <libraryVersion>`, `data: {\"libraryVersion\": N, \"epoch\": \"...\"}`; `: heartbeat` comments; a final `event: auth` when the session ends"),
        (status = 401, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    StreamAuth(device, expires_at): StreamAuth,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> ApiResult<impl IntoResponse> {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(query.since)
        .map(LibraryVersion);
    let registration = state.hub.register(device.device_id, expires_at);
    let heartbeat = state.settings.sse_heartbeat;
    let with_changes = query.with_changes();
    let hub = state.hub.clone();
    let stream =
        VersionStream::new(state, device.user_id, registration, heartbeat, last_event_id, with_changes, crate::metrics::Transport::Sse);
    let events = futures::stream::unfold((stream, hub), |(mut stream, hub)| async move {
        let message = stream.next().await?;
        let bytes = match message {
            // The same bytes for every stream of the user: rendered by the first one woken.
            StreamMessage::Version { version, payload: None } => {
                hub.events.get_or_render(stream.user(), version, || render_version(version, &bare_payload(version, stream.epoch())))
            }
            message => render(message, stream.epoch()),
        };
        Some((Ok::<_, Infallible>(bytes), (stream, hub)))
    });
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (HeaderName::from_static("x-accel-buffering"), HeaderValue::from_static("no")),
        ],
        Body::from_stream(events),
    ))
}

/// `event: version`, `id: N`, `retry: 2000`, `data: {…}`: the payload is compact JSON, one line.
fn render_version(version: shelf_core::LibraryVersion, payload: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: version\nid: {}\nretry: {}\ndata: {payload}\n\n", version.0, RETRY_HINT.as_millis()))
}

fn render(message: StreamMessage, epoch: &shelf_core::Epoch) -> Bytes {
    match message {
        StreamMessage::Version { version, payload } => render_version(version, &payload.unwrap_or_else(|| bare_payload(version, epoch))),
        StreamMessage::Heartbeat => Bytes::from_static(b": heartbeat\n\n"),
        StreamMessage::Auth(code) => {
            let data = json!({"code": code, "message": "this device's session ended; sign in again"});
            Bytes::from(format!("event: auth\ndata: {data}\n\n"))
        }
        StreamMessage::Shutdown => {
            Bytes::from(format!("retry: {}\n: server shutting down; reconnect\n\n", SHUTDOWN_RETRY_HINT.as_millis()))
        }
    }
}

/// A single-use stream ticket, valid for 60 seconds.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TicketResponse {
    /// Pass as `?ticket=` to `/api/library-version-events` or `/api/library-version-ws`.
    pub ticket: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: time::OffsetDateTime,
}

/// Issues a stream ticket for clients that cannot authenticate an `EventSource` otherwise.
#[utoipa::path(post, operation_id = "createStreamTicket", path = "/api/library-version-events/ticket", tag = "realtime", security(("bearer" = []), ("cookie" = [])),
    responses((status = 201, body = TicketResponse), (status = 401, body = ErrorBody)))]
pub async fn ticket(
    State(state): State<AppState>,
    device: crate::extract::CurrentDevice,
) -> ApiResult<(axum::http::StatusCode, crate::extract::Json<TicketResponse>)> {
    let (ticket, expires_at) = crate::service::tickets::issue(state.store.as_ref(), device).await?;
    Ok((axum::http::StatusCode::CREATED, crate::extract::Json(TicketResponse { ticket, expires_at })))
}
