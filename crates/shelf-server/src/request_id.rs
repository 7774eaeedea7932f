//! A request id for every request: on every log line the request causes (a tracing span), in
//! every error body (`requestId`) and in the `X-Request-Id` response header, so a user's report
//! and the operator's logs meet on one string.
//!
//! A client could put anything in `X-Request-Id`, including another request's id to muddle the
//! logs, so the header is believed only from a trusted proxy (`--trusted-proxies`, decided in
//! `client.rs`), which sets it for the whole path through the proxies; otherwise the server
//! makes one up.

use std::future::Future;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use tracing::Instrument;

use crate::client::peer_is_trusted_proxy;
use crate::state::AppState;

/// A constant name: a `&str` name is parsed and validated again on every use.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest id accepted from a proxy; longer ones are replaced.
const MAX_LENGTH: usize = 128;

tokio::task_local! {
    /// The id of the request this task is serving; read where error bodies are made.
    static CURRENT: String;
}

/// The id of the request being served by this task, if any (error bodies made outside a
/// request, e.g. in a unit test calling a handler directly, have none).
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The request's id, also put in the request's extensions for handlers that want it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The outermost per-request step (`lib.rs` runs the rest of the request, metrics and cookie
/// refresh, as `inner`, in the same `from_fn` layer): picks the id, runs the request inside a
/// `request` span and the task-local, logs its start and end there, and echoes the id in the
/// response.
///
/// The start and end lines are what tower-http's `TraceLayer` wrote, with the same messages and
/// levels (ERROR "response failed" for a 5xx); doing it here saves that layer's wrapped future
/// and wrapped body on every request and stream event (ADR 0016, tenth session).
pub async fn assign<F, Fut>(state: &AppState, mut request: Request, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let from_proxy = peer_is_trusted_proxy(request.extensions(), &state.settings.trusted_proxies)
        .then(|| request.headers().get(&REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()).filter(|id| acceptable(id)))
        .flatten()
        .map(str::to_owned);
    let id = from_proxy.unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        route = request.extensions().get::<MatchedPath>().map_or("-", MatchedPath::as_str),
    );
    request.extensions_mut().insert(RequestId(id.clone()));
    let logged = async move {
        tracing::debug!("started processing request");
        let started = Instant::now();
        let response = inner(request).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1e3;
        let status = response.status().as_u16();
        tracing::debug!(latency_ms, status, "finished processing request");
        if response.status().is_server_error() {
            tracing::error!(latency_ms, status, "response failed");
        }
        response
    };
    let mut response = CURRENT.scope(id.clone(), logged.instrument(span)).await;
    match HeaderValue::from_str(&id) {
        Ok(value) => {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        // Generated ids are hex and accepted ones were checked to be visible ASCII.
        Err(error) => tracing::error!(%error, "a request id did not make a header"),
    }
    response
}

/// A proxy's id is kept when it is short, visible ASCII without quotes or separators that would
/// break a log line or a header.
fn acceptable(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_LENGTH && id.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b','))
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn proxy_ids_must_be_short_visible_ascii() {
        assert!(acceptable("f3a9c2-01"));
        assert!(acceptable("Root=1-5759e988-bd862e3fe1be46a994272793"));
        for bad in ["", "has space", "quote\"d", "a,b", "\u{e9}t\u{e9}", &"x".repeat(129)] {
            assert!(!acceptable(bad), "{bad:?}");
        }
    }
}
