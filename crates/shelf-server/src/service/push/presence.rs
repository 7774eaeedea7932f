//! Which devices have an event stream open on this instance, written to the database
//! (`stream_presence`) so that every instance can tell whether a device needs a push.
//!
//! With the in-process bus no other instance serves streams, so nothing is written: the stream
//! hub is asked instead, and a new stream waits for no database write before its first event
//! (opening 10,000 streams took ~20 % less time and CPU, ADR 0009).
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
pub struct Presence {
    /// Set while the recorder runs (inside `serve`); without it nothing is recorded.
    sender: Mutex<Option<mpsc::UnboundedSender<Opened>>>,
    /// The stream hub, when this instance serves every stream: then nothing is recorded.
    local: Option<Arc<StreamHub>>,
}

impl Presence {
    pub fn new(local: Option<Arc<StreamHub>>) -> Self {
        Self { sender: Mutex::new(None), local }
    }

    /// Whether `device` has a stream open that only this instance knows of (in-process bus).
    /// With a recorded presence this is always `false`: the database query says it instead.
    pub fn streaming_here(&self, device: DeviceId) -> bool {
        self.local.as_ref().is_some_and(|hub| hub.has_streams(device))
    }

    pub async fn opened(&self, device: DeviceId) {
        if self.local.is_some() {
            return; // the hub registered the stream before this
        }
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

/// The recorder: runs until the server stops (at once returns when nothing is recorded).
pub async fn run(push: Arc<PushService>, hub: Arc<StreamHub>) {
    if push.presence.local.is_some() {
        return;
    }
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
