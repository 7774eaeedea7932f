//! Opening every device's stream and recording when each version arrives.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use shelf_testkit::SseReader;
use tokio::sync::{oneshot, Semaphore};

use crate::accounts::LoadUser;
use crate::Args;

/// When each device saw each version (versions rise over time per device).
#[derive(Default)]
pub struct Arrivals {
    devices: Mutex<Vec<Vec<(i64, Instant)>>>,
}

impl Arrivals {
    fn record(&self, device: usize, version: i64, at: Instant) {
        let mut devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        if devices.len() <= device {
            devices.resize_with(device + 1, Vec::new);
        }
        devices[device].push((version, at));
    }

    /// When `device` first saw a version ≥ `version`.
    pub fn first_at_or_after(&self, device: usize, version: i64) -> Option<Instant> {
        let devices = self.devices.lock().unwrap_or_else(|p| p.into_inner());
        let seen = devices.get(device)?;
        let i = seen.partition_point(|(v, _)| *v < version);
        seen.get(i).map(|(_, at)| *at)
    }
}

/// An open stream; dropping the task handle keeps it running until the process exits.
pub struct DeviceStream {
    pub index: usize,
    _task: tokio::task::JoinHandle<()>,
}

pub async fn open_streams(args: &Args, users: &[LoadUser], arrivals: Arc<Arrivals>) -> anyhow::Result<Vec<DeviceStream>> {
    let gate = Arc::new(Semaphore::new(args.setup_concurrency.max(1)));
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build()?;
    let mut pending = Vec::new();
    let copies = args.streams_per_device.max(1);
    for (u, user) in users.iter().enumerate() {
        for (d, j) in (0..args.devices).flat_map(|d| (0..copies).map(move |j| (d, j))) {
            let index = (u * args.devices + d) * copies + j;
            let token = user.tokens[d].clone();
            let path = if args.nchan { format!("/sub/{}", user.email) } else { "/api/library-version-events".to_owned() };
            let (ready_tx, ready_rx) = oneshot::channel();
            let permit = gate.clone().acquire_owned().await?;
            let task = if args.ws {
                tokio::spawn(follow_ws(args.url.clone(), token, index, arrivals.clone(), ready_tx, permit))
            } else {
                tokio::spawn(follow_sse(client.clone(), format!("{}{path}", args.url), token, index, arrivals.clone(), ready_tx, permit))
            };
            pending.push((DeviceStream { index, _task: task }, ready_rx));
        }
    }
    let mut open = Vec::with_capacity(pending.len());
    for (stream, ready) in pending {
        if ready.await.unwrap_or(false) {
            open.push(stream);
        }
    }
    Ok(open)
}

/// One stream's setup slot: reports whether the stream opened (first version received) and
/// frees its setup-concurrency permit; a stream that ends before that reports failure.
struct Opening {
    ready: Option<oneshot::Sender<bool>>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Opening {
    /// Records a version event and, on the first one, reports the stream open.
    fn version(&mut self, arrivals: &Arrivals, index: usize, version: Option<i64>, at: Instant) {
        if let Some(version) = version {
            arrivals.record(index, version, at);
        }
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(true);
            self.permit.take();
        }
    }
}

impl Drop for Opening {
    fn drop(&mut self) {
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(false);
        }
    }
}

async fn follow_sse(
    client: reqwest::Client,
    url: String,
    token: String,
    index: usize,
    arrivals: Arc<Arrivals>,
    ready: oneshot::Sender<bool>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let mut opening = Opening { ready: Some(ready), permit: Some(permit) };
    let mut request = client.get(url).header("accept", "text/event-stream");
    if !token.is_empty() {
        request = request.bearer_auth(&token);
    }
    let Ok(response) = request.send().await else { return };
    if token.is_empty() && response.status().is_success() {
        // Nchan sends nothing until the first publish: its stream is open once answered.
        opening.version(&arrivals, index, None, Instant::now());
    }
    let mut reader = SseReader::new(response);
    while let Some(event) = reader.next(std::time::Duration::from_secs(3600)).await {
        if event.event.as_deref() == Some("version") || (token.is_empty() && event.event.is_none()) {
            opening.version(&arrivals, index, event.json()["libraryVersion"].as_i64(), Instant::now());
        }
    }
}

async fn follow_ws(
    url: String,
    token: String,
    index: usize,
    arrivals: Arc<Arrivals>,
    ready: oneshot::Sender<bool>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let mut opening = Opening { ready: Some(ready), permit: Some(permit) };
    let ws_url = format!("{}/api/library-version-ws", url.replacen("http", "ws", 1));
    let Ok(mut request) = ws_url.as_str().into_client_request() else { return };
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.headers_mut().insert("authorization", value);
    }
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(request).await else { return };
    while let Some(Ok(message)) = socket.next().await {
        let Message::Text(text) = message else { continue };
        let at = Instant::now();
        let Ok(body) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        if body["type"] == "version" {
            opening.version(&arrivals, index, body["libraryVersion"].as_i64(), at);
        }
    }
}
