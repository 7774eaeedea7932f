//! Which devices have open streams on this instance, so revocation and shutdown can end them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shelf_api::ErrorCode;
use shelf_core::DeviceId;
use time::OffsetDateTime;
use tokio::sync::watch;

/// Registry of open streams per device, plus the instance-wide shutdown signal.
pub struct StreamHub {
    devices: Mutex<HashMap<DeviceId, DeviceStreams>>,
    shutdown: watch::Sender<bool>,
    /// Signalled when a device's last stream here ends (stream presence, ADR 0006).
    departures: tokio::sync::Notify,
    /// Version events rendered once per user and version, shared by the user's streams.
    pub events: super::rendered::RenderedEvents,
}

struct DeviceStreams {
    closed: watch::Sender<Option<ErrorCode>>,
    open: usize,
    /// When the device's session expires unless renewed: its streams are re-checked then.
    expires_at: OffsetDateTime,
}

/// Held by each open stream; deregisters it when dropped.
pub struct StreamRegistration {
    hub: Arc<StreamHub>,
    device: DeviceId,
    pub closed: watch::Receiver<Option<ErrorCode>>,
    pub shutdown: watch::Receiver<bool>,
}

impl Default for StreamHub {
    fn default() -> Self {
        Self { devices: Mutex::new(HashMap::new()), shutdown: watch::channel(false).0, departures: tokio::sync::Notify::new(), events: Default::default() }
    }
}

impl StreamHub {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn devices(&self) -> std::sync::MutexGuard<'_, HashMap<DeviceId, DeviceStreams>> {
        self.devices.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A stream of `device`, whose session expires at `expires_at` unless renewed.
    pub fn register(self: &Arc<Self>, device: DeviceId, expires_at: OffsetDateTime) -> StreamRegistration {
        let closed = {
            let mut devices = self.devices();
            let entry = devices
                .entry(device)
                .or_insert_with(|| DeviceStreams { closed: watch::channel(None).0, open: 0, expires_at });
            entry.open += 1;
            entry.expires_at = entry.expires_at.max(expires_at);
            entry.closed.subscribe()
        };
        StreamRegistration { hub: self.clone(), device, closed, shutdown: self.shutdown.subscribe() }
    }

    /// Ends every stream of `device` with a final `auth` event carrying `code`.
    pub fn close_device(&self, device: DeviceId, code: ErrorCode) {
        if let Some(streams) = self.devices().get(&device) {
            streams.closed.send_replace(Some(code));
        }
    }

    /// Whether `device` has a stream open here.
    pub fn has_streams(&self, device: DeviceId) -> bool {
        self.devices().contains_key(&device)
    }

    /// Devices with at least one open stream here.
    pub fn connected_devices(&self) -> Vec<DeviceId> {
        self.devices().keys().copied().collect()
    }

    /// Devices with open streams here whose session's known expiry is not after `now`: the
    /// session check asks the database about these only (a renewed one gets [`extend`]ed).
    ///
    /// [`extend`]: StreamHub::extend
    pub fn expired_devices(&self, now: OffsetDateTime) -> Vec<DeviceId> {
        self.devices().iter().filter(|(_, streams)| streams.expires_at <= now).map(|(device, _)| *device).collect()
    }

    /// Records that `device`'s session was renewed until `expires_at`.
    pub fn extend(&self, device: DeviceId, expires_at: OffsetDateTime) {
        if let Some(streams) = self.devices().get_mut(&device) {
            streams.expires_at = streams.expires_at.max(expires_at);
        }
    }

    /// Number of open streams on this instance.
    pub fn open_streams(&self) -> usize {
        self.devices().values().map(|d| d.open).sum()
    }

    /// Resolves once some device's last stream here has ended since the previous call.
    pub fn departed(&self) -> tokio::sync::futures::Notified<'_> {
        self.departures.notified()
    }

    /// Asks every stream to send a retry hint and end (SIGTERM).
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }
}

impl StreamRegistration {
    /// The device this stream belongs to.
    pub fn device(&self) -> DeviceId {
        self.device
    }
}

impl Drop for StreamRegistration {
    fn drop(&mut self) {
        let mut devices = self.hub.devices();
        if let Some(streams) = devices.get_mut(&self.device) {
            streams.open -= 1;
            if streams.open == 0 {
                devices.remove(&self.device);
                self.hub.departures.notify_one();
            }
        }
    }
}
