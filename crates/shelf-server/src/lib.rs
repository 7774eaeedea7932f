//! Shelf's HTTP server. The only crate that knows HTTP: it turns requests into service calls
//! and outcomes into responses. It never picks a backend; the CLI (or a test) passes the
//! `Store` and `ChangeBus` in.

pub mod client;
pub mod error;
pub mod extract;
pub mod handlers;
pub mod metrics;
mod openapi;
mod openapi_responses;
pub mod realtime;
pub mod request_id;
mod serve;
pub mod service;
pub mod state;
pub mod web;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use shelf_bus::ChangeBus;
use shelf_store::Store;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;

pub use error::{ApiError, ApiResult};
pub use serve::{listen, LISTEN_BACKLOG};
pub use state::{AppState, ServerSettings};

impl AppState {
    /// Reads the database epoch once and bundles the seams for the handlers.
    pub async fn new(
        store: Arc<dyn Store>,
        bus: Arc<dyn ChangeBus>,
        blobs: Arc<dyn shelf_blob::BlobStore>,
        settings: ServerSettings,
    ) -> anyhow::Result<Self> {
        let epoch = store.epoch().await?;
        let recorded = service::uploads::backfill_stored_blobs(store.as_ref(), blobs.as_ref()).await?;
        if recorded > 0 {
            tracing::info!(recorded, "recorded blobs stored before blob records existed");
        }
        let hashing = Arc::new(service::hashing::HashingPool::new(settings.hashing_queue));
        let hub = realtime::StreamHub::new();
        // With the in-process bus this instance serves every stream, so its hub says who has one.
        let local_streams = (!bus.spans_instances()).then(|| hub.clone());
        let push = service::push::PushService::new(store.clone(), settings.push.clone(), epoch.clone(), local_streams).await?;
        // Every announcement of a committed version also reaches the push service (ADR 0006),
        // and is timed for the commit-to-send histogram.
        let bus = Arc::new(service::server_bus::ServerBus::new(bus, push.clone()));
        let commits = bus.clock.clone();
        let renewals = service::renewals::Renewals::start(store.clone(), settings.session_ttl).map_err(|e| anyhow::anyhow!("{e}"))?;
        let renewals = Arc::new(renewals);
        let session_reads = Arc::new(service::session_reads::SessionReads::start(store.clone()));
        let sessions = Arc::new(service::session_cache::SessionCache::new(settings.session_check_interval));
        Ok(Self::from_shared(state::SharedState {
            store,
            bus,
            commits,
            settings: Arc::new(settings),
            epoch,
            sync_health: Arc::default(),
            sessions,
            versions: Arc::default(),
            renewals,
            session_reads,
            hub,
            blobs,
            hashing,
            web: None,
            push,
        }))
    }
}

impl AppState {
    /// Serves the browser app from `web` for every GET outside `/api` (see [`web`]).
    pub fn with_web_assets(mut self, web: Arc<dyn web::WebAssets>) -> Self {
        self.shared_mut().web = Some(web);
        self
    }
}

/// The OpenAPI document of every route, as served at `/api/openapi.json` (`shelf openapi`
/// prints it, so the TypeScript types can be generated without a running server).
pub fn openapi_json() -> Result<String, serde_json::Error> {
    openapi::document().to_pretty_json()
}

/// The whole HTTP surface, documented routes first, then the fallback: the web app for browser
/// GETs (gzip-compressed when asked), JSON 404/405 for everything else.
pub fn app(state: AppState) -> Router {
    let limit = state.settings.max_body_bytes;
    let web = Router::new()
        .fallback(web::fallback)
        .layer(tower_http::compression::CompressionLayer::new())
        .with_state(state.clone());
    openapi::router()
        .fallback_service(web)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(limit))
        .layer(CatchPanicLayer::custom(panic_response))
        // One layer for everything around a request: its id, span and log lines, its metrics and
        // the cookie refresh (each `from_fn` layer costs a boxed clone of the route and a boxed
        // future per request; ADR 0016).
        .layer(axum::middleware::from_fn_with_state(state.clone(), |State(state): State<AppState>, request: axum::extract::Request, next: axum::middleware::Next| async move {
            request_id::assign(&state, request, move |request| {
                metrics::track_requests(request, move |request| extract::refresh_renewed_cookie(request, next))
            })
            .await
        }))
        .with_state(state)
}

/// A panic is a bug; the client still gets the standard error shape, never a dropped socket.
fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
}

/// Serves on an already-bound listener (tests bind 127.0.0.1:0) until `shutdown` resolves, then
/// finishes in-flight requests. Also runs the tombstone purge while serving.
/// On shutdown, open event streams get a retry hint and end, so the graceful wait completes.
pub async fn serve(listener: TcpListener, state: AppState, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    let purge = tokio::spawn(purge_tombstones_periodically(state.clone()));
    let sessions = tokio::spawn(close_ended_sessions_periodically(state.clone()));
    let hub = state.hub.clone();
    let close = move |device| hub.close_device(device, shelf_api::ErrorCode::Unauthenticated);
    let revocations = tokio::spawn(service::session_cache::evict_revocations(state.sessions.clone(), state.bus.revocations(), close));
    let blobs = tokio::spawn(collect_garbage_periodically(state.clone()));
    let push = tokio::spawn(state.push.clone().run(state.hub.clone()));
    let push_service = state.push.clone();
    let sync_health = tokio::spawn(flush_sync_health_periodically(state.clone()));
    let hub = state.hub.clone();
    let shutdown = async move {
        shutdown.await;
        hub.begin_shutdown();
    };
    // The peer address (`ConnectInfo`) feeds rate limits and the trusted-proxy check (`client.rs`).
    let result = serve::run(listener, app(state.clone()), shutdown).await;
    purge.abort();
    sessions.abort();
    revocations.abort();
    blobs.abort();
    push.abort();
    push_service.forget_streams().await;
    sync_health.abort();
    state.sync_health.flush(state.store.as_ref()).await;
    result
}

/// Writes the devices' held-back synced versions (see `service/sync_health.rs`).
async fn flush_sync_health_periodically(state: AppState) {
    let mut tick = tokio::time::interval(service::sync_health::THROTTLE);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        state.sync_health.flush(state.store.as_ref()).await;
    }
}

/// Ends streams whose session expired, or was revoked on an instance whose revocation the bus
/// lost (revocations it carries end them at once), within one interval
/// (`service/stream_sessions.rs`).
async fn close_ended_sessions_periodically(state: AppState) {
    let mut tick = tokio::time::interval(state.settings.session_check_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut check = service::stream_sessions::StreamSessionCheck::new();
    loop {
        tick.tick().await;
        // Once a second too: drops version-cache entries past their time to live.
        state.versions.sweep();
        if let Err(error) = check.run(state.store.as_ref(), &state.hub, &state.sessions).await {
            tracing::warn!(%error, "could not re-check stream sessions; will retry");
        }
    }
}

async fn purge_tombstones_periodically(state: AppState) {
    let retention = state.settings.tombstone_retention;
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let Ok(retention) = time::Duration::try_from(retention) else { return };
        let cutoff = service::auth::now() - retention;
        match state.store.purge_tombstones(cutoff).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "purged expired tombstones"),
            Err(error) => tracing::warn!(%error, "tombstone purge failed; will retry"),
        }
        // Before the retention ends, a tombstone can go once every device active within the
        // retention has pulled past it (spec CF6); a device left behind resyncs.
        match state.store.compact_tombstones(cutoff, service::auth::now()).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "compacted tombstones every active device has pulled"),
            Err(error) => tracing::warn!(%error, "tombstone compaction failed; will retry"),
        }
        if let Err(error) = state.store.purge_ended_sessions(service::stream_sessions::ENDED_SESSIONS_KEPT).await {
            tracing::warn!(%error, "ended-session log purge failed; will retry");
        }
        if let Err(error) = service::rate_limits::purge(state.store.as_ref(), &state.settings.rate_limits, service::auth::now()).await {
            tracing::warn!(%error, "rate-limit counter purge failed; will retry");
        }
    }
}

async fn collect_garbage_periodically(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match collect_garbage(&state, state.settings.blob_gc_grace).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "collected unreferenced blobs and abandoned uploads"),
            Err(error) => tracing::warn!(%error, "blob garbage collection failed; will retry"),
        }
    }
}

/// Removes abandoned uploads and unreferenced blobs older than `grace` (spec AT4).
pub async fn collect_garbage(state: &AppState, grace: Duration) -> ApiResult<u64> {
    service::uploads::collect_garbage(state, grace).await
}
