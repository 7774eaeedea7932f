//! What every handler can reach.

use std::sync::Arc;
use std::time::Duration;

use shelf_bus::ChangeBus;
use shelf_core::Epoch;
use shelf_store::Store;

/// Tunables of the HTTP server itself; the CLI fills them from flags, env and `shelf.toml`.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How long a login stays valid.
    pub session_ttl: Duration,
    /// How long tombstones stay in the change feed before clients must resync.
    pub tombstone_retention: Duration,
    /// `Some(true)`: the session cookie is always `Secure` (and named `__Host-shelf_session`);
    /// `Some(false)`: never; `None`: when a trusted proxy says the client used HTTPS.
    pub secure_cookies: Option<bool>,
    /// Origins besides the server's own that may use the session cookie for changes and
    /// streams (`--allowed-origins`), e.g. a web app served from another port.
    pub allowed_origins: Vec<crate::client::Origin>,
    /// Reverse proxies whose forwarding headers name the client (`--trusted-proxies`).
    pub trusted_proxies: crate::client::TrustedProxies,
    /// Login and registration limits per client address and per account.
    pub rate_limits: crate::service::rate_limits::RateLimits,
    /// Password hashings that may wait for a free core; beyond that, 503 (`--hashing-queue`).
    pub hashing_queue: usize,
    /// Interval of heartbeat comments on event streams.
    pub sse_heartbeat: Duration,
    /// How often open streams' sessions are re-checked (revocation by another instance, expiry).
    pub session_check_interval: Duration,
    /// Largest attachment accepted (`--max-file-size`).
    pub max_file_size: u64,
    /// Bytes of attachments (plus uploads in flight) one user may hold (`--user-quota`).
    pub user_quota: u64,
    /// Unreferenced blobs and abandoned uploads older than this are collected.
    pub blob_gc_grace: Duration,
    /// How long an upload writer's claim lasts without renewal: a crashed writer's upload can be
    /// resumed by another request after this (spec AT6).
    pub upload_lease: Duration,
    /// Web Push: allowed push hosts, the VAPID key and subject, pacing and retries.
    pub push: crate::service::push::PushSettings,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            tombstone_retention: Duration::from_secs(30 * 24 * 3600),
            secure_cookies: None,
            allowed_origins: Vec::new(),
            trusted_proxies: crate::client::TrustedProxies::default(),
            rate_limits: crate::service::rate_limits::RateLimits::default(),
            hashing_queue: 64,
            sse_heartbeat: Duration::from_secs(30),
            session_check_interval: Duration::from_secs(1),
            max_file_size: 100 * 1024 * 1024,
            user_quota: 10 * 1024 * 1024 * 1024,
            blob_gc_grace: Duration::from_secs(24 * 3600),
            upload_lease: Duration::from_secs(60),
            push: crate::service::push::PushSettings::default(),
        }
    }
}

/// Shared by all requests: one reference-counted pointer, so a clone is one atomic increment.
/// axum clones the state for every extractor, middleware and boxed route of every request
/// (about 15 times per request); as a struct of 15 `Arc`s and a `String` that was 15 atomic
/// increments and one allocation each time (ADR 0016, ninth session).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl AppState {
    pub(crate) fn from_shared(shared: SharedState) -> Self {
        Self(Arc::new(shared))
    }

    /// For the one change made after construction (`with_web_assets`): copies the handles if
    /// the state is already shared, so a clone handed out earlier keeps what it had.
    pub(crate) fn shared_mut(&mut self) -> &mut SharedState {
        Arc::make_mut(&mut self.0)
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// What every handler can reach, behind [`AppState`].
#[derive(Clone)]
pub struct SharedState {
    pub store: Arc<dyn Store>,
    pub bus: Arc<dyn ChangeBus>,
    /// When this instance's recent commits were announced, to time commit → event sent.
    pub commits: Arc<crate::metrics::CommitClock>,
    pub settings: Arc<ServerSettings>,
    /// Read once at start: the epoch never changes while the database is open.
    pub epoch: Epoch,
    /// The last version each device pulled or was sent, written throttled.
    pub sync_health: Arc<crate::service::sync_health::SyncHealth>,
    /// Sessions resolved within the last second, evicted by revocations from any instance
    /// (ADR 0011).
    pub sessions: Arc<crate::service::session_cache::SessionCache>,
    /// Library versions kept current from the bus, for version checks and stream starts
    /// (ADR 0013).
    pub versions: Arc<crate::service::version_cache::VersionCache>,
    /// Writes session renewals of concurrent requests together (spec AU11).
    pub renewals: Arc<crate::service::renewals::Renewals>,
    /// Reads the sessions of concurrent requests together (tokens the cache does not hold).
    pub session_reads: Arc<crate::service::session_reads::SessionReads>,
    /// Open event streams on this instance.
    pub hub: Arc<crate::realtime::StreamHub>,
    /// Where attachment bytes live.
    pub blobs: Arc<dyn shelf_blob::BlobStore>,
    /// Password hashing: one run per core, a bounded queue behind them.
    pub hashing: Arc<crate::service::hashing::HashingPool>,
    /// The browser app's files, when this server was given them (`None`: API only).
    pub web: Option<Arc<dyn crate::web::WebAssets>>,
    /// Sends Web Push for versions this instance commits (`bus` hands them over).
    pub push: Arc<crate::service::push::PushService>,
}

