//! Which devices have an event stream open on this instance, written to the database
//! (`stream_presence`) so that every instance can tell whether a device needs a push.
//!
//! A stream's first open is recorded before its first message (batched with other streams
//! opening at the same time: one statement, not one per stream); the last stream of a device
//! closing clears its row at once; every `presence_refresh` all open devices are re-stamped and
//! rows of devices no longer here are cleared. Rows of a crashed instance go stale after three
//! refreshes, after which its devices count as closed again.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use shelf_core::DeviceId;
use tokio::sync::{mpsc, oneshot};

use super::{lock, PushService};
use crate::realtime::StreamHub;

type Opened = (DeviceId, oneshot::Sender<()>);

/// The streams' side: tells the recorder a stream opened and waits until it is recorded.
#[derive(Default)]
pub struct Presence {
    /// Set while the recorder runs (inside `serve`); without it nothing is recorded.
    sender: Mutex<Option<mpsc::UnboundedSender<Opened>>>,
}

impl Presence {
    pub async fn opened(&self, device: DeviceId) {
        let Some(sender) = lock(&self.sender).clone() else { return };
        let (done, recorded) = oneshot::channel();
        if sender.send((device, done)).is_err() {
            return; // The recorder stopped with the server; nothing left to record for.
        }
        // An error means the recorder stopped before answering; the stream goes on regardless.
        if recorded.await.is_err() {
            tracing::debug!("stream presence recorder stopped before recording a stream");
        }
    }
}

/// The recorder: runs until the server stops.
pub async fn run(push: Arc<PushService>, hub: Arc<StreamHub>) {
    let (sender, mut opened) = mpsc::unbounded_channel::<Opened>();
    *lock(&push.presence.sender) = Some(sender);
    let mut recorded: HashSet<DeviceId> = HashSet::new();
    let mut refresh = tokio::time::interval(push.settings.presence_refresh);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(first) = opened.recv() => {
                let mut batch = vec![first];
                while let Ok(more) = opened.try_recv() {
                    batch.push(more);
                }
                let devices: Vec<DeviceId> = batch.iter().map(|(device, _)| *device).collect::<HashSet<_>>().into_iter().collect();
                if record(&push, &devices).await {
                    recorded.extend(devices);
                }
                for (_, done) in batch {
                    // A stream that ended while waiting no longer listens; nothing to tell it.
                    let _ = done.send(());
                }
            }
            _ = hub.departed() => {
                let here: HashSet<DeviceId> = hub.connected_devices().into_iter().collect();
                let gone: Vec<DeviceId> = recorded.difference(&here).copied().collect();
                if !gone.is_empty() && clear(&push, &gone).await {
                    for device in &gone {
                        recorded.remove(device);
                    }
                }
            }
            _ = refresh.tick() => {
                let here: HashSet<DeviceId> = hub.connected_devices().into_iter().collect();
                let gone: Vec<DeviceId> = recorded.difference(&here).copied().collect();
                if !gone.is_empty() && clear(&push, &gone).await {
                    for device in &gone {
                        recorded.remove(device);
                    }
                }
                let devices: Vec<DeviceId> = here.into_iter().collect();
                if !devices.is_empty() && record(&push, &devices).await {
                    recorded.extend(devices);
                }
            }
        }
    }
}

async fn record(push: &PushService, devices: &[DeviceId]) -> bool {
    match push.store.record_stream_presence(push.instance, devices, crate::service::auth::now()).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, devices = devices.len(), "could not record open streams; they may get pushes until the next refresh");
            false
        }
    }
}

async fn clear(push: &PushService, devices: &[DeviceId]) -> bool {
    match push.store.clear_stream_presence(push.instance, Some(devices)).await {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, devices = devices.len(), "could not clear closed streams; they go stale by themselves");
            false
        }
    }
}
