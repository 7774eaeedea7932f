//! `GET /api/library-version-ws`: the same stream as SSE, as JSON WebSocket messages.

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use serde_json::json;
use shelf_api::ErrorBody;
use shelf_core::LibraryVersion;

use crate::error::ApiResult;
use crate::extract::Query;
use crate::realtime::sse::{EventsQuery, SHUTDOWN_RETRY_HINT};
use crate::realtime::stream::{bare_payload, StreamMessage, VersionStream};
use crate::service::tickets::StreamAuth;
use crate::state::AppState;

/// WebSocket close code for an ended session (application range 4000–4999).
const CLOSE_UNAUTHENTICATED: u16 = 4401;
/// "Service restart" (RFC 6455 registry): the client should reconnect.
const CLOSE_SERVICE_RESTART: u16 = 1012;

/// Messages: `{"type":"version","libraryVersion":N,"epoch":"..."}` (plus `changes`/`resync` with
/// `?changes=1`), `{"type":"heartbeat"}`, a final `{"type":"auth","code":...}` or
/// `{"type":"shutdown","retryMs":...}`. `?since=N` plays the part of `Last-Event-ID`.
#[utoipa::path(get, operation_id = "openLibraryVersionWebSocket", path = "/api/library-version-ws", tag = "realtime", security(("bearer" = []), ("cookie" = []), ("ticket" = [])),
    params(EventsQuery),
    responses((status = 101, description = "WebSocket upgrade"), (status = 401, body = ErrorBody)))]
pub async fn upgrade(
    State(state): State<AppState>,
    StreamAuth(device, expires_at): StreamAuth,
    Query(query): Query<EventsQuery>,
    ws: WebSocketUpgrade,
) -> ApiResult<Response> {
    let registration = state.hub.register(device.device_id, expires_at);
    let heartbeat = state.settings.sse_heartbeat;
    let stream = VersionStream::new(
        state,
        device.user_id,
        registration,
        heartbeat,
        query.since.map(LibraryVersion),
        query.with_changes(),
        crate::metrics::Transport::WebSocket,
    );
    // Messages are tiny; tungstenite's default 128 KiB read buffer would cost 100+ KiB per idle
    // socket. Small buffers keep an idle WebSocket near an idle SSE stream.
    Ok(ws.read_buffer_size(4096).write_buffer_size(0).on_upgrade(move |socket| run(socket, stream)))
}

async fn run(mut socket: WebSocket, mut stream: VersionStream) {
    let epoch = stream.epoch().clone();
    loop {
        tokio::select! {
            message = stream.next() => {
                let Some(message) = message else { break };
                let (text, close) = render(message, &epoch);
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
                if let Some(code) = close {
                    // The close frame is a courtesy; a client already gone needs nothing more.
                    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: "".into() }))).await;
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                // Clients have nothing to say; pings are answered by the library.
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    }
}

fn render(message: StreamMessage, epoch: &shelf_core::Epoch) -> (String, Option<u16>) {
    match message {
        StreamMessage::Version { version, payload } => {
            let mut payload = payload.unwrap_or_else(|| bare_payload(version, epoch));
            payload["type"] = json!("version");
            (payload.to_string(), None)
        }
        StreamMessage::Heartbeat => (json!({"type": "heartbeat"}).to_string(), None),
        StreamMessage::Auth(code) => (json!({"type": "auth", "code": code}).to_string(), Some(CLOSE_UNAUTHENTICATED)),
        StreamMessage::Shutdown => (
            json!({"type": "shutdown", "retryMs": SHUTDOWN_RETRY_HINT.as_millis() as u64}).to_string(),
            Some(CLOSE_SERVICE_RESTART),
        ),
    }
}
