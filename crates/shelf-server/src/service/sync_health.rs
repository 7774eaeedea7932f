//! Per-device sync health: the last library version each device pulled or was sent.
//!
//! Every feed page and every stream event would be a database write if recorded as it happens;
//! a user with ten devices would turn one edit into ten writes. So a feed page writes only for a
//! device not written in the last [`THROTTLE`], and a stream event never writes on the stream's
//! path (a reconnect storm must not become a write storm): what is held back is written by
//! [`SyncHealth::flush`] (every [`THROTTLE`] while serving, and at shutdown). The recorded version
//! can thus be up to [`THROTTLE`] old: enough for "which devices are behind", which is what it is
//! for.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shelf_core::{DeviceId, LibraryVersion, UserId};
use shelf_store::{SessionInfo, Store};

use crate::error::ApiResult;
use crate::service::auth::now;

/// At most one write per device per this interval.
pub const THROTTLE: Duration = Duration::from_secs(30);

/// Devices not observed for this long are forgotten (their next observation writes at once).
const FORGET_AFTER: Duration = Duration::from_secs(600);

#[derive(Default)]
pub struct SyncHealth {
    devices: Mutex<HashMap<DeviceId, Observed>>,
}

struct Observed {
    /// The highest version written (or being written) for the device.
    written: LibraryVersion,
    written_at: Instant,
    /// A higher version held back by the throttle.
    pending: Option<LibraryVersion>,
}

impl SyncHealth {
    /// The device pulled a feed page up to `version`: written now unless written lately.
    pub async fn pulled(&self, store: &dyn Store, device: DeviceId, version: LibraryVersion) {
        if self.claim_write(device, version) {
            write(store, device, version).await;
        }
    }

    /// The device was sent the changes up to `version` on a stream: kept for the next flush,
    /// never written here.
    pub fn sent(&self, device: DeviceId, version: LibraryVersion) {
        let mut devices = self.devices.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let seen = devices.entry(device).or_insert_with(|| Observed {
            written: LibraryVersion(0),
            // Due at the next flush: nothing was written for it on this instance.
            written_at: Instant::now(),
            pending: None,
        });
        if version > seen.written {
            seen.pending = Some(seen.pending.map_or(version, |pending| pending.max(version)));
        }
    }

    /// Whether to write now; otherwise the version is kept as pending (or is nothing new).
    fn claim_write(&self, device: DeviceId, version: LibraryVersion) -> bool {
        let mut devices = self.devices.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match devices.get_mut(&device) {
            None => {
                devices.insert(device, Observed { written: version, written_at: Instant::now(), pending: None });
                true
            }
            Some(seen) if version <= seen.written => false,
            Some(seen) if seen.written_at.elapsed() >= THROTTLE => {
                *seen = Observed { written: version, written_at: Instant::now(), pending: None };
                true
            }
            Some(seen) => {
                seen.pending = Some(seen.pending.map_or(version, |pending| pending.max(version)));
                false
            }
        }
    }

    /// Writes every held-back version and forgets devices idle for long.
    pub async fn flush(&self, store: &dyn Store) {
        let due: Vec<(DeviceId, LibraryVersion)> = {
            let mut devices = self.devices.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            devices.retain(|_, seen| seen.pending.is_some() || seen.written_at.elapsed() < FORGET_AFTER);
            devices
                .iter_mut()
                .filter_map(|(device, seen)| {
                    let version = seen.pending.take()?;
                    *seen = Observed { written: version, written_at: Instant::now(), pending: None };
                    Some((*device, version))
                })
                .collect()
        };
        for (device, version) in due {
            write(store, device, version).await;
        }
    }
}

async fn write(store: &dyn Store, device: DeviceId, version: LibraryVersion) {
    if let Err(error) = store.record_device_sync(device, version, now()).await {
        // Sync health is advisory: a lost write only makes the device look further behind until
        // its next one; the request or event that caused it must not fail for it.
        tracing::warn!(%error, %device, "could not record a device's synced version");
    }
}

/// A device session with its sync health, as listed to its user.
pub struct DeviceHealth {
    pub session: SessionInfo,
    /// The user's current library version minus the device's synced version.
    pub lag: Option<i64>,
}

/// The user's live sessions, each with its lag behind the library's current version.
pub async fn devices(store: &dyn Store, user: UserId) -> ApiResult<Vec<DeviceHealth>> {
    let sessions = store.list_sessions(user, now()).await?;
    let current = store.library_version(user).await?;
    Ok(sessions
        .into_iter()
        .map(|session| {
            let lag = session.synced.map(|(version, _)| (current.0 - version.0).max(0));
            DeviceHealth { session, lag }
        })
        .collect())
}
