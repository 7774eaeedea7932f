//! Web Push (spec PU1–PU7, ADR 0006): closed apps and background tabs learn that their library
//! moved. Everything here runs off the request path.
//!
//! - Committed versions reach [`PushService::version_committed`] through the server's bus
//!   ([`crate::service::server_bus::ServerBus`]), which wraps the configured one: the instance that committed a version is the one that pushes
//!   it, so no instance has to follow every user.
//! - A dispatcher batches those versions per user and asks the store which subscribed devices
//!   have no stream open on any instance ([`presence`] keeps that in the database; with the
//!   in-process bus, the only instance's stream hub says it and nothing is written).
//! - One task per device sends at most one push at a time, at most one per `min_interval`; later
//!   versions wait in the device's slot and the next push carries the latest (coalescing).
//! - Each push is claimed in the database first (`Store::claim_push`), so with several instances
//!   a version is sent once; [`sender`] encrypts, signs and retries.

pub mod endpoint;
pub mod presence;
pub mod sender;
pub mod subscriptions;
pub mod vapid;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use shelf_core::{DeviceId, Epoch, LibraryVersion, UserId};
use shelf_store::Store;
use tokio::sync::Notify;

pub use endpoint::AllowedHosts;

/// The least time between two look-ups of push targets (see [`PushService::dispatch`]).
const DISPATCH_PAUSE: Duration = Duration::from_millis(50);
pub use vapid::VapidKey;

/// `--vapid-private-key`'s value, kept out of logs.
#[derive(Clone, PartialEq, Eq)]
pub struct PrivateKeyBytes(pub Vec<u8>);

impl std::fmt::Debug for PrivateKeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKeyBytes(***)")
    }
}

/// Web Push tunables; the CLI fills the first three from flags.
#[derive(Debug, Clone)]
pub struct PushSettings {
    /// Hosts subscriptions may point at (`--push-allowed-hosts`).
    pub allowed_hosts: AllowedHosts,
    /// `--vapid-private-key`; `None`: the key kept in the database (made at first start).
    pub vapid_private_key: Option<PrivateKeyBytes>,
    /// The VAPID `sub` claim push services contact on trouble (`--vapid-subject`).
    pub subject: String,
    /// Least time between two pushes to one device; versions in between ride on the next one.
    pub min_interval: Duration,
    /// How long one request to a push service may take, connecting included.
    pub request_timeout: Duration,
    /// Attempts per push when the push service says 429 or 5xx (or cannot be reached).
    pub max_attempts: u32,
    /// The first retry's delay when the push service gives no `Retry-After`; doubles each time.
    pub retry_base: Duration,
    /// The longest wait between attempts, whatever `Retry-After` says.
    pub max_retry_delay: Duration,
    /// How long a push service keeps an undelivered push (`TTL`) and how long the VAPID
    /// signature is valid (at most 24 h, RFC 8292).
    pub ttl: Duration,
    /// How often this instance refreshes its open streams in the database; a stream not
    /// refreshed for three of these counts as gone (a crashed instance's streams).
    pub presence_refresh: Duration,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            allowed_hosts: AllowedHosts::default(),
            vapid_private_key: None,
            subject: "mailto:admin@localhost".into(),
            min_interval: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            max_attempts: 5,
            retry_base: Duration::from_secs(1),
            max_retry_delay: Duration::from_secs(600),
            ttl: Duration::from_secs(12 * 3600),
            presence_refresh: Duration::from_secs(20),
        }
    }
}

/// Sends pushes for committed versions. One per instance, shared through `AppState`.
pub struct PushService {
    store: Arc<dyn Store>,
    settings: PushSettings,
    key: VapidKey,
    epoch: Epoch,
    /// This instance's id in `stream_presence`.
    instance: uuid::Uuid,
    client: reqwest::Client,
    /// Latest committed version per user, not yet looked at by the dispatcher.
    pending: Mutex<HashMap<UserId, LibraryVersion>>,
    wake: Notify,
    /// Devices with a running sender and the latest version it still has to push.
    devices: Mutex<HashMap<DeviceId, LibraryVersion>>,
    presence: presence::Presence,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PushService {
    /// Loads the VAPID key (from the settings, else the database's, made now if there is none).
    ///
    /// `local_streams` is this instance's stream hub when no other instance serves streams (the
    /// in-process bus): open streams are then read from it instead of being written to the
    /// database ([`presence`]).
    pub async fn new(
        store: Arc<dyn Store>,
        settings: PushSettings,
        epoch: Epoch,
        local_streams: Option<Arc<crate::realtime::StreamHub>>,
    ) -> anyhow::Result<Arc<Self>> {
        let private = match &settings.vapid_private_key {
            Some(PrivateKeyBytes(bytes)) => bytes.clone(),
            None => store.vapid_private_key(&VapidKey::generate_private_bytes(), crate::service::auth::now()).await?,
        };
        let key = VapidKey::from_private_bytes(&private)?;
        let client = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout)
            // A push service answers; it never sends us elsewhere (no request proxying).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("shelf/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Arc::new(Self {
            store,
            settings,
            key,
            epoch,
            instance: uuid::Uuid::new_v4(),
            client,
            pending: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            devices: Mutex::new(HashMap::new()),
            presence: presence::Presence::new(local_streams),
        }))
    }

    /// The `applicationServerKey` browsers subscribe with.
    pub fn public_key(&self) -> &str {
        &self.key.public_key
    }

    pub fn allowed_hosts(&self) -> &AllowedHosts {
        &self.settings.allowed_hosts
    }

    /// Called for every version this instance committed. Never blocks.
    pub fn version_committed(&self, user: UserId, version: LibraryVersion) {
        let mut pending = lock(&self.pending);
        let entry = pending.entry(user).or_insert(version);
        *entry = (*entry).max(version);
        drop(pending);
        self.wake.notify_one();
    }

    /// Streams seen at or after this instant are open (three refreshes of slack).
    fn streams_seen_since(&self, now: time::OffsetDateTime) -> time::OffsetDateTime {
        now - self.settings.presence_refresh * 3
    }

    /// Runs until the server stops: the dispatcher and this instance's stream presence.
    pub async fn run(self: Arc<Self>, hub: Arc<crate::realtime::StreamHub>) {
        let presence = presence::run(self.clone(), hub);
        tokio::join!(self.dispatch(), presence);
    }

    /// Looks up who needs a push for the versions committed since the last look. Under a stream
    /// of writes the looks are at least `DISPATCH_PAUSE` apart, so their cost (one query for all
    /// users written meanwhile) stays bounded however fast the writes come.
    async fn dispatch(self: &Arc<Self>) {
        loop {
            self.wake.notified().await;
            self.dispatch_pending().await;
            tokio::time::sleep(DISPATCH_PAUSE).await;
        }
    }

    async fn dispatch_pending(self: &Arc<Self>) {
        let batch = std::mem::take(&mut *lock(&self.pending));
        if batch.is_empty() {
            return;
        }
        let users: Vec<UserId> = batch.keys().copied().collect();
        let now = crate::service::auth::now();
        match self.store.push_targets(&users, now, self.streams_seen_since(now)).await {
            Ok(targets) => {
                for target in targets {
                    let version = batch.get(&target.user_id).copied().unwrap_or(LibraryVersion(0));
                    if version > target.pushed_version && !self.presence.streaming_here(target.device_id) {
                        self.deliver(target.device_id, version);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, users = users.len(), "could not look up push targets; retrying in a second");
                for (user, version) in batch {
                    self.version_committed(user, version);
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// Hands `version` to the device's sender, starting one if none runs.
    fn deliver(self: &Arc<Self>, device: DeviceId, version: LibraryVersion) {
        let mut devices = lock(&self.devices);
        if let Some(latest) = devices.get_mut(&device) {
            *latest = (*latest).max(version);
            return;
        }
        devices.insert(device, version);
        tokio::spawn(self.clone().device_sender(device));
    }

    /// One device's pushes: the latest version at once, then at most one per `min_interval`.
    async fn device_sender(self: Arc<Self>, device: DeviceId) {
        let mut sent = LibraryVersion(0);
        loop {
            let version = {
                let mut devices = lock(&self.devices);
                match devices.get(&device).copied() {
                    Some(latest) if latest > sent => latest,
                    _ => {
                        devices.remove(&device);
                        return;
                    }
                }
            };
            sender::send(&self, device, version).await;
            sent = version;
            tokio::time::sleep(self.settings.min_interval).await;
        }
    }

    /// Called by a stream before its first message, so a device with an open stream is known
    /// to every instance before it can miss a push or get a needless one.
    pub async fn stream_opened(&self, device: DeviceId) {
        self.presence.opened(device).await;
    }

    /// Forgets this instance's streams (at shutdown).
    pub async fn forget_streams(&self) {
        if let Err(error) = self.store.clear_stream_presence(self.instance, None).await {
            tracing::warn!(%error, "could not clear this instance's stream presence; it goes stale by itself");
        }
    }
}
