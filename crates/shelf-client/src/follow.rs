//! Live follow: catch up, then listen to `/api/library-version-events` and pull whenever an
//! event differs from the cursor. Reconnects with exponential backoff and full jitter, honours the
//! server's `retry:` hint and sends `Last-Event-ID`. An `auth` event or a 401 ends it: the
//! device was signed out. Edits queued meanwhile (by this app or another process on the same
//! replica) are pushed as they appear.

use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use rand::rngs::StdRng;
use rand::SeedableRng;
use reqwest::Method;
use serde::Deserialize;

use crate::backoff::Backoff;
use crate::client::Client;
use crate::error::{ClientError, ClientResult};
use crate::sync::ChangeObserver;

#[derive(Debug, Clone)]
pub struct FollowOptions {
    /// With no byte from the server for this long (heartbeats included), reconnect.
    pub idle_timeout: Duration,
    /// How often to look for edits queued by other processes.
    pub outbox_poll: Duration,
    pub backoff: Backoff,
}

impl Default for FollowOptions {
    fn default() -> Self {
        Self { idle_timeout: Duration::from_secs(75), outbox_poll: Duration::from_millis(500), backoff: Backoff::default() }
    }
}

/// The `data` of an `event: version`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VersionEvent {
    library_version: i64,
    epoch: String,
}

/// Why a stream connection ended.
enum StreamEnd {
    Reconnect,
    Fatal(ClientError),
}

/// Errors that end following; anything else is retried after a backoff delay.
fn is_fatal(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::SignedOut | ClientError::NotSignedIn | ClientError::Replica(_) | ClientError::Damaged(_) | ClientError::Io(_)
    )
}

#[derive(Debug)]
enum StreamError {
    Transport(String),
    Idle,
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Transport(reason) => f.write_str(reason),
            StreamError::Idle => f.write_str("no heartbeat from the server"),
        }
    }
}

/// Ends the byte stream with an error when nothing arrives for `idle` (a silently dead link).
fn with_idle_timeout(
    stream: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    idle: Duration,
) -> impl Stream<Item = Result<Bytes, StreamError>> + Send {
    futures::stream::unfold(Some(stream.boxed()), move |state| async move {
        let mut stream = state?;
        match tokio::time::timeout(idle, stream.next()).await {
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(stream))),
            Ok(Some(Err(error))) => Some((Err(StreamError::Transport(error.to_string())), None)),
            Ok(None) => None,
            Err(_) => Some((Err(StreamError::Idle), None)),
        }
    })
}

impl Client {
    /// Follows the library until the device is signed out or the replica fails; `observer`
    /// sees every feed entry applied. Network trouble only delays it (status `offline`).
    pub async fn follow(&self, options: FollowOptions, observer: &mut ChangeObserver<'_>) -> ClientResult<()> {
        self.ensure_signed_in().await?;
        let mut backoff = options.backoff.clone();
        let mut rng = StdRng::from_entropy();
        let mut last_event_id = None;
        loop {
            let end = match self.sync_observed(observer).await {
                Ok(_) => self.listen(&options, observer, &mut backoff, &mut last_event_id).await,
                Err(error) if is_fatal(&error) => StreamEnd::Fatal(error),
                Err(_) => StreamEnd::Reconnect,
            };
            match end {
                StreamEnd::Fatal(error) => return Err(error),
                StreamEnd::Reconnect => tokio::time::sleep(backoff.next_delay(&mut rng)).await,
            }
        }
    }

    /// One stream connection, until it breaks.
    async fn listen(
        &self,
        options: &FollowOptions,
        observer: &mut ChangeObserver<'_>,
        backoff: &mut Backoff,
        last_event_id: &mut Option<i64>,
    ) -> StreamEnd {
        let cursor = match self.with_replica(|r| r.cursor()).await {
            Ok(cursor) => cursor,
            Err(error) => return StreamEnd::Fatal(error),
        };
        let since = last_event_id.unwrap_or(cursor.library_version).max(cursor.library_version);
        let request = self
            .http()
            .streaming(Method::GET, "/api/library-version-events")
            .header("accept", "text/event-stream")
            .header("last-event-id", since.to_string());
        let response = match self.http().send(request).await {
            Ok(response) => response,
            Err(error) => return self.ended(error).await,
        };
        let mut events = Box::pin(with_idle_timeout(response.bytes_stream(), options.idle_timeout).eventsource());
        let mut outbox_tick = tokio::time::interval(options.outbox_poll);
        outbox_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = events.next() => {
                    let event = match event {
                        Some(Ok(event)) => event,
                        Some(Err(error)) => {
                            let reason = error.to_string();
                            let server = self.http().server().to_owned();
                            return self.ended(ClientError::Unreachable { server, reason }).await;
                        }
                        None => return StreamEnd::Reconnect,
                    };
                    if let Some(retry) = event.retry {
                        backoff.set_base(retry);
                    }
                    match event.event.as_str() {
                        "version" => {
                            backoff.reset();
                            // An id that is not a version is ignored: the cursor stands in for it.
                            *last_event_id = event.id.trim().parse().ok();
                            let cursor = match self.with_replica(|r| r.cursor()).await {
                                Ok(cursor) => cursor,
                                Err(error) => return StreamEnd::Fatal(error),
                            };
                            // Behind the cursor too: the server may have lost history (a restore).
                            let moved = match serde_json::from_str::<VersionEvent>(&event.data) {
                                Ok(version) => {
                                    version.library_version != cursor.library_version
                                        || cursor.epoch.as_deref().is_some_and(|epoch| epoch != version.epoch)
                                }
                                // An event this client cannot read may still announce a change.
                                Err(_) => true,
                            };
                            if moved {
                                if let Err(error) = self.sync_observed(observer).await {
                                    return self.ended(error).await;
                                }
                            }
                        }
                        "auth" => return self.ended(ClientError::SignedOut).await,
                        _ => {}
                    }
                }
                _ = outbox_tick.tick() => {
                    let pending = self.with_replica(|r| r.has_pending()).await;
                    match pending {
                        Ok(false) => {}
                        Ok(true) => {
                            if let Err(error) = self.sync_observed(observer).await {
                                return self.ended(error).await;
                            }
                        }
                        Err(error) => return StreamEnd::Fatal(error),
                    }
                }
            }
        }
    }

    /// Records why the connection ended and whether to go on.
    async fn ended(&self, error: ClientError) -> StreamEnd {
        if let Err(record_error) = self.record_error(&error).await {
            return StreamEnd::Fatal(record_error);
        }
        if is_fatal(&error) {
            StreamEnd::Fatal(error)
        } else {
            StreamEnd::Reconnect
        }
    }
}
