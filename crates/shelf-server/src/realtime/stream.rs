//! The transport-independent stream of one connection: what to send next, and when.

use std::time::Duration;

use serde_json::{json, Value};
use shelf_api::ErrorCode;
use shelf_core::{LibraryVersion, UserId};
use tokio::sync::watch;
use tokio::time::{Interval, MissedTickBehavior};

use crate::handlers::library::change_view;
use crate::realtime::hub::StreamRegistration;
use crate::state::AppState;

/// Largest delta carried inside an event with `?changes=1`; beyond it the event says `resync`.
pub const MAX_INLINE_CHANGES: u32 = 100;
/// Largest delta in bytes carried inside an event; beyond it the event says `resync`.
pub const MAX_INLINE_BYTES: u64 = 256 * 1024;

/// One thing to send.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamMessage {
    /// The library is at `version`. `payload` is the JSON body with `?changes=1` (`libraryVersion`,
    /// `epoch`, and `changes` or `resync: true`); `None` for a bare announcement, whose body
    /// ([`bare_payload`]) is the same for every stream of the user, so transports render it once.
    Version { version: LibraryVersion, payload: Option<Value> },
    Heartbeat,
    /// The session ended (revoked or expired): last message.
    Auth(ErrorCode),
    /// The server is stopping: last message, with a reconnect hint.
    Shutdown,
}

enum Phase {
    Start,
    Running,
    Done,
}

/// Per-connection state. Memory is constant: the bus keeps only the latest version.
pub struct VersionStream {
    state: AppState,
    user: UserId,
    versions: watch::Receiver<Option<LibraryVersion>>,
    registration: StreamRegistration,
    heartbeat: Interval,
    last_sent: Option<LibraryVersion>,
    with_changes: bool,
    phase: Phase,
    metered: crate::metrics::OpenStream,
}

impl VersionStream {
    /// `last_event_id` is the version the client already has (from `Last-Event-ID`).
    pub fn new(
        state: AppState,
        user: UserId,
        registration: StreamRegistration,
        heartbeat: Duration,
        last_event_id: Option<LibraryVersion>,
        with_changes: bool,
        transport: crate::metrics::Transport,
    ) -> Self {
        // Subscribe before reading the current version, so no commit falls in between.
        let versions = state.bus.subscribe(user);
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let metered = crate::metrics::OpenStream::new(transport);
        Self { state, user, versions, registration, heartbeat, last_sent: last_event_id, with_changes, phase: Phase::Start, metered }
    }

    /// The next message, or `None` once the stream is over.
    pub async fn next(&mut self) -> Option<StreamMessage> {
        loop {
            match self.phase {
                Phase::Done => return None,
                Phase::Start => {
                    self.phase = Phase::Running;
                    // Known to every instance before the first message: no push while open.
                    self.state.push.stream_opened(self.registration.device()).await;
                    let current = self.state.versions.version(self.state.store.as_ref(), self.state.bus.as_ref(), self.user).await;
                    return Some(match current {
                        Ok(current) => {
                            let announced = *self.versions.borrow_and_update();
                            self.version_message(current.max(announced.unwrap_or(current))).await
                        }
                        Err(_) => {
                            self.phase = Phase::Done;
                            StreamMessage::Auth(ErrorCode::Unauthenticated)
                        }
                    });
                }
                Phase::Running => {}
            }
            tokio::select! {
                biased;
                _ = self.registration.shutdown.changed() => {
                    self.phase = Phase::Done;
                    return Some(StreamMessage::Shutdown);
                }
                _ = self.registration.closed.changed() => {
                    let code = (*self.registration.closed.borrow()).unwrap_or(ErrorCode::Unauthenticated);
                    self.phase = Phase::Done;
                    return Some(StreamMessage::Auth(code));
                }
                changed = self.versions.changed() => {
                    if changed.is_err() {
                        // The bus dropped this user's channel: resubscribe and re-read.
                        self.versions = self.state.bus.subscribe(self.user);
                        self.phase = Phase::Start;
                        continue;
                    }
                    let Some(version) = *self.versions.borrow_and_update() else { continue };
                    if self.last_sent.is_some_and(|sent| version <= sent) {
                        continue;
                    }
                    return Some(self.version_message(version).await);
                }
                _ = self.heartbeat.tick() => return Some(StreamMessage::Heartbeat),
            }
        }
    }

    /// Whose stream this is.
    pub fn user(&self) -> UserId {
        self.user
    }

    /// The database epoch every version event carries.
    pub fn epoch(&self) -> &shelf_core::Epoch {
        &self.state.epoch
    }

    async fn version_message(&mut self, version: LibraryVersion) -> StreamMessage {
        if !self.with_changes {
            self.delivered(version);
            return StreamMessage::Version { version, payload: None };
        }
        let mut payload = bare_payload(version, &self.state.epoch);
        {
            let since = self.last_sent.unwrap_or(LibraryVersion(0));
            match self.state.store.changes_since(self.user, since, MAX_INLINE_CHANGES, MAX_INLINE_BYTES).await {
                Ok(page) if !page.has_more => match page.changes.iter().map(|c| serde_json::to_value(change_view(c))).collect() {
                    Ok(changes) => {
                        payload["changes"] = Value::Array(changes);
                        payload["libraryVersion"] = json!(page.library_version.0.max(version.0));
                    }
                    Err(error) => {
                        tracing::error!(%error, "could not render an inline delta; the event says resync instead");
                        payload["resync"] = Value::Bool(true);
                    }
                },
                Ok(_) => payload["resync"] = Value::Bool(true),
                Err(error) => {
                    tracing::warn!(%error, "could not read an inline delta; the event says resync instead");
                    payload["resync"] = Value::Bool(true);
                }
            }
        }
        let sent = LibraryVersion(payload["libraryVersion"].as_i64().unwrap_or(version.0));
        self.delivered(sent);
        // Only an event that carried the delta brings the device to `sent`; a bare announcement
        // makes it pull, and the pull records it (tombstone compaction trusts this, spec CF6).
        if payload.get("changes").is_some() {
            self.state.sync_health.sent(self.registration.device(), sent);
        }
        StreamMessage::Version { version: sent, payload: Some(payload) }
    }

    fn delivered(&mut self, sent: LibraryVersion) {
        self.last_sent = Some(sent);
        self.metered.sent();
        self.state.commits.sent(self.user, sent);
    }
}

/// The body of a bare announcement: `{"epoch": …, "libraryVersion": N}`.
pub fn bare_payload(version: LibraryVersion, epoch: &shelf_core::Epoch) -> Value {
    json!({"libraryVersion": version.0, "epoch": epoch.0})
}
