//! Prometheus metrics (`--metrics-listen`): what an operator needs to see how sync behaves.
//!
//! Code records through the `metrics` facade (`counter!`, `histogram!`, `gauge!`), which costs
//! next to nothing while no recorder is installed; [`install`] installs the Prometheus recorder
//! once per process and [`serve`] renders it on a listener of its own, so `/metrics` is never
//! reachable through the public port by accident. Values that live elsewhere (database pool,
//! password-hashing line, bus health) are sampled when scraped.
//!
//! Series (all prefixed `shelf_`): `http_requests_total{method,route,status}` and
//! `http_request_duration_seconds{method,route}` (route = the route template; time to the
//! response head, so a stream counts until its headers), `open_streams{transport}`,
//! `stream_events_sent_total{transport}`, `propagation_seconds` (commit → event sent, for
//! commits made on this instance), `sync_mutations_total{result}`, `conflicts_total`,
//! `uploads_completed_total`, `upload_bytes_total`, `bus_messages_total{direction}`,
//! `bus_reconnects_total` (recorded by the bus crates), `bus_healthy`,
//! `db_pool_connections{pool,state}`, `db_pool_max_connections{pool}`,
//! `password_hashing_waiting`, `password_hashing_running`, `push_total{result}`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use metrics::{counter, gauge, histogram, Counter, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use shelf_bus::BusHealth;
use shelf_core::{LibraryVersion, UserId};
use tokio::net::TcpListener;

use crate::state::AppState;

/// Histogram buckets for every `*_seconds` series: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often histograms are folded even if nobody scrapes, so they never grow without bound.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the Prometheus recorder for this process (once; later calls return the same handle).
pub fn install() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);
    let mut installed = HANDLE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .install_recorder()?;
    RECORDING.store(true, Ordering::Release);
    *installed = Some(handle.clone());
    Ok(handle)
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    handle: PrometheusHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let upkeep = {
        let handle = handle.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        })
    };
    let app = Router::new().route("/metrics", get(scrape)).with_state((state, handle));
    let result = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    upkeep.abort();
    result
}

async fn scrape(State((state, handle)): State<(AppState, PrometheusHandle)>) -> Response {
    sample(&state);
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], handle.render()).into_response()
}

/// Gauges whose truth lives elsewhere, read at scrape time.
fn sample(state: &AppState) {
    for pool in state.store.pool_stats() {
        let in_use = pool.size.saturating_sub(pool.idle);
        gauge!("shelf_db_pool_connections", "pool" => pool.name, "state" => "in_use").set(in_use as f64);
        gauge!("shelf_db_pool_connections", "pool" => pool.name, "state" => "idle").set(pool.idle as f64);
        gauge!("shelf_db_pool_max_connections", "pool" => pool.name).set(pool.max as f64);
    }
    gauge!("shelf_password_hashing_waiting").set(state.hashing.waiting() as f64);
    gauge!("shelf_password_hashing_running").set(state.hashing.running() as f64);
    gauge!("shelf_bus_healthy").set(if state.bus.health() == BusHealth::Healthy { 1.0 } else { 0.0 });
}

/// Middleware (inside the router, so the route template is known): one count and one latency
/// per request. Nothing at all while no recorder is installed: the facade's no-op recorder
/// still had the labels built and hashed, ~6k instructions per request (ADR 0016, ninth session).
///
/// `inner` is the rest of the request (`lib.rs` runs the cookie refresh there, so both share one
/// `from_fn` layer: each such layer costs a boxed clone of the route and a boxed future).
pub async fn track_requests<F, Fut>(request: Request, inner: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    if !RECORDING.load(Ordering::Acquire) {
        return inner(request).await;
    }
    // A `MatchedPath` clone shares its string: no allocation per request.
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = inner(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    REQUEST_SERIES.record(route, &method, response.status().as_u16(), elapsed);
    response
}

/// Set by [`install`]: from then on requests are counted.
static RECORDING: AtomicBool = AtomicBool::new(false);

/// Most (method, status) pairs remembered per route; a client inventing methods gets the rest
/// recorded without the cache, as before.
const MAX_SERIES_PER_ROUTE: usize = 64;

/// The handles of `http_request_duration_seconds` and `http_requests_total`, looked up once per
/// route, method and status instead of once per request (a lookup builds and hashes the labels).
static REQUEST_SERIES: RequestSeries = RequestSeries(RwLock::new(None));

struct RequestSeries(RwLock<Option<HashMap<String, Vec<(Method, u16, Histogram, Counter)>>>>);

impl RequestSeries {
    fn record(&self, route: &str, method: &Method, status: u16, seconds: f64) {
        let matches = |(m, s, _, _): &&(Method, u16, Histogram, Counter)| m == method && *s == status;
        let full = {
            let known = self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            let series = known.as_ref().and_then(|routes| routes.get(route));
            if let Some((_, _, latency, count)) = series.and_then(|series| series.iter().find(matches)) {
                latency.record(seconds);
                count.increment(1);
                return;
            }
            series.is_some_and(|series| series.len() >= MAX_SERIES_PER_ROUTE)
        };
        let latency = histogram!("shelf_http_request_duration_seconds", "method" => method.as_str().to_owned(), "route" => route.to_owned());
        let count = counter!("shelf_http_requests_total", "method" => method.as_str().to_owned(), "route" => route.to_owned(), "status" => status.to_string());
        latency.record(seconds);
        count.increment(1);
        if full {
            // A client inventing methods must not take the write lock from everyone else.
            return;
        }
        let mut known = self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let series = known.get_or_insert_with(HashMap::new).entry(route.to_owned()).or_default();
        if series.len() < MAX_SERIES_PER_ROUTE && !series.iter().any(|entry| matches(&entry)) {
            series.push((method.clone(), status, latency, count));
        }
    }
}

/// Which transport a stream uses, as the `transport` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Sse,
    WebSocket,
}

impl Transport {
    pub fn label(self) -> &'static str {
        match self {
            Transport::Sse => "sse",
            Transport::WebSocket => "ws",
        }
    }
}

/// Counts one open stream while it lives, and its events. The handles are looked up once per
/// stream, not once per event.
pub struct OpenStream {
    open: metrics::Gauge,
    events: metrics::Counter,
}

impl OpenStream {
    pub fn new(transport: Transport) -> Self {
        let open = gauge!("shelf_open_streams", "transport" => transport.label());
        open.increment(1.0);
        Self { open, events: counter!("shelf_stream_events_sent_total", "transport" => transport.label()) }
    }

    /// One event went out on this stream.
    pub fn sent(&self) {
        self.events.increment(1);
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.open.decrement(1.0);
    }
}

/// A sync mutation's outcome (`applied`, `merged`, `duplicate`, `rejected`).
pub fn sync_mutation(result: &'static str, conflicts: usize) {
    counter!("shelf_sync_mutations_total", "result" => result).increment(1);
    recorded_conflicts(conflicts);
}

/// Conflicts a write recorded (REST or sync).
pub fn recorded_conflicts(count: usize) {
    if count > 0 {
        counter!("shelf_conflicts_total").increment(count as u64);
    }
}

/// Bytes of an upload that reached the staging disk.
pub fn upload_bytes(bytes: u64) {
    counter!("shelf_upload_bytes_total").increment(bytes);
}

/// An upload was verified and stored.
pub fn upload_completed() {
    counter!("shelf_uploads_completed_total").increment(1);
}

/// A Web Push ended: `delivered`, `gone` (subscription dropped), `refused`, or `failed` after
/// every retry.
pub fn push_sent(result: &'static str) {
    counter!("shelf_push_total", "result" => result).increment(1);
}

/// Most recent commits per user, to time commit → event sent. Entries older than
/// [`CommitClock::KEEP`] are dropped when the map grows, so memory stays bounded by the users
/// who wrote in the last minute.
#[derive(Default)]
pub struct CommitClock {
    commits: Mutex<HashMap<UserId, (LibraryVersion, Instant)>>,
}

impl CommitClock {
    const KEEP: Duration = Duration::from_secs(60);
    const PRUNE_ABOVE: usize = 4096;

    pub(crate) fn committed(&self, user: UserId, version: LibraryVersion) {
        let mut commits = self.commits.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if commits.len() >= Self::PRUNE_ABOVE {
            commits.retain(|_, (_, at)| at.elapsed() < Self::KEEP);
        }
        commits.insert(user, (version, Instant::now()));
    }

    /// An event announcing `version` went out: records how long after the commit of that
    /// version (or a later one it includes) on this instance.
    pub fn sent(&self, user: UserId, version: LibraryVersion) {
        let commits = self.commits.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((committed, at)) = commits.get(&user) {
            if *committed == version {
                histogram!("shelf_propagation_seconds").record(at.elapsed().as_secs_f64());
            }
        }
    }
}

