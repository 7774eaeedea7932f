//! The sync status a UI shows: `synced`, `syncing`, `offline` or `error`, the number of local
//! edits the server has not confirmed, and the time of the last successful sync.
//!
//! `state` is the outcome of the most recent sync attempt (or `syncing` while one runs), kept in
//! the replica so another process (`shelf status`) reads what `shelf follow` last saw.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{ClientError, ClientResult, SIGNED_OUT_MESSAGE};
use crate::replica::{format_time, get_meta, parse_time, Replica};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncState {
    Synced,
    Syncing,
    Offline,
    Error,
}

impl SyncState {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Synced => "synced",
            SyncState::Syncing => "syncing",
            SyncState::Offline => "offline",
            SyncState::Error => "error",
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "synced" => SyncState::Synced,
            "syncing" => SyncState::Syncing,
            "offline" => SyncState::Offline,
            "error" => SyncState::Error,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub state: SyncState,
    /// Local edits waiting to be sent.
    pub pending_count: u64,
    /// Local edits the server refused (kept; see `rejected`).
    pub rejected_count: u64,
    /// Why the state is `offline` or `error`.
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_synced_at: Option<OffsetDateTime>,
    /// The library version the replica is complete up to.
    pub library_version: i64,
}

const STATE: &str = "sync_state";
const REASON: &str = "sync_reason";
const PID: &str = "sync_pid";
const LAST_SYNCED: &str = "last_synced_at";
/// Set when the server said the session ended; cleared by a new login.
pub const SIGNED_OUT: &str = "signed_out";

impl Replica {
    pub fn status(&self) -> ClientResult<Status> {
        let conn = self.conn();
        let mut state = match get_meta(conn, STATE)? {
            Some(raw) => SyncState::parse(&raw).ok_or_else(|| ClientError::Damaged(format!("sync state {raw:?}")))?,
            None => SyncState::Offline,
        };
        let mut reason = get_meta(conn, REASON)?;
        if state == SyncState::Syncing {
            let pid = match get_meta(conn, PID)? {
                Some(raw) => Some(raw.parse::<u32>().map_err(|_| ClientError::Damaged(format!("sync pid {raw:?}")))?),
                None => None,
            };
            if pid.is_some_and(|pid| !process_alive(pid)) {
                state = SyncState::Error;
                reason = Some("the last sync was interrupted".into());
            }
        }
        if get_meta(conn, SIGNED_OUT)?.is_some() {
            state = SyncState::Error;
            reason = Some(SIGNED_OUT_MESSAGE.into());
        }
        if get_meta(conn, STATE)?.is_none() && state == SyncState::Offline {
            reason = Some("never synced".into());
        }
        let rejected_count = conn.query_row("SELECT count(*) FROM outbox WHERE state = 'rejected'", [], |row| row.get(0))?;
        Ok(Status {
            state,
            pending_count: self.pending_count()?,
            rejected_count,
            reason,
            last_synced_at: get_meta(conn, LAST_SYNCED)?.as_deref().map(parse_time).transpose()?,
            library_version: self.cursor()?.library_version,
        })
    }

    pub fn signed_out(&self) -> ClientResult<bool> {
        Ok(get_meta(self.conn(), SIGNED_OUT)?.is_some())
    }

    /// A sync attempt started in this process.
    pub fn record_sync_start(&mut self) -> ClientResult<()> {
        let pid = std::process::id().to_string();
        self.set_metas(&[(STATE, Some("syncing")), (REASON, None), (PID, Some(&pid))])
    }

    /// How the attempt ended.
    pub fn record_sync_outcome(&mut self, outcome: &SyncOutcome, at: OffsetDateTime) -> ClientResult<()> {
        let at = format_time(at);
        let mut values = vec![(STATE, Some(outcome.state.as_str())), (REASON, outcome.reason.as_deref()), (PID, None)];
        if outcome.state == SyncState::Synced {
            values.push((LAST_SYNCED, Some(&at)));
        }
        if outcome.signed_out {
            values.push((SIGNED_OUT, Some("1")));
        }
        self.set_metas(&values)
    }
}

/// The end of a sync attempt, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncOutcome {
    pub state: SyncState,
    pub reason: Option<String>,
    pub signed_out: bool,
}

impl SyncOutcome {
    pub fn of<T>(result: &ClientResult<T>) -> Self {
        match result {
            Ok(_) => Self { state: SyncState::Synced, reason: None, signed_out: false },
            Err(error) => Self::of_error(error),
        }
    }

    pub fn of_error(error: &ClientError) -> Self {
        Self {
            state: if matches!(error, ClientError::Unreachable { .. }) { SyncState::Offline } else { SyncState::Error },
            reason: Some(error.to_string()),
            signed_out: matches!(error, ClientError::SignedOut),
        }
    }
}

/// Whether a process still runs (Linux: `/proc/<pid>`); elsewhere assume it does.
fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc = std::path::Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}
