//! Sync = push the outbox, then pull the change feed from the cursor (docs/sync-protocol.md).
//!
//! Push sends pending edits in order, in batches under the server's limits, and settles each
//! entry by its receipt; a retry after a lost answer is harmless (receipts make it a duplicate).
//! Pull follows `nextSince` while `hasMore`, writing each page in one transaction while the next
//! page is already being fetched. A 410 `resync_required` or a changed `epoch` rebuilds the
//! server state from `since=0`; the outbox is kept throughout.

use reqwest::Method;
use serde::Serialize;
use shelf_api::{ChangeView, ChangesResponse, LibraryVersionResponse, MutationBatchRequest, MutationBatchResponse, PROTOCOL_VERSION};

use crate::client::Client;
use crate::error::{ClientError, ClientResult};
use crate::outbox::ReceiptSummary;
use crate::replica::PageOutcome;
use crate::uploads::Progress;

fn no_progress() -> Progress {
    std::sync::Arc::new(|_, _| {})
}

/// The server's limits: at most 500 mutations per batch (and its request body limit, 4 MiB by
/// default, which the byte budget stays well under).
pub const BATCH_MAX: usize = 500;
pub const BATCH_BYTES: usize = 1024 * 1024;
/// Changes per feed page (the server's maximum).
pub const PAGE_LIMIT: u32 = 1000;

/// Something the caller may want to see as it happens (`shelf follow` prints these).
pub type ChangeObserver<'a> = dyn FnMut(&ChangeView) + Send + 'a;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub pushed: ReceiptSummary,
    /// Feed entries applied to the replica.
    pub pulled: usize,
    pub library_version: i64,
    /// The server state was rebuilt from a snapshot (410 or a new epoch).
    pub resynced: bool,
}

enum PullEnd {
    Done,
    /// The server's history changed under the cursor (a new epoch, or a lost tail): edits became
    /// pending again and must be pushed before pulling.
    Rewound,
}

impl Client {
    /// Pushes the outbox, then pulls what changed. Records the outcome in the status.
    pub async fn sync(&self) -> ClientResult<SyncReport> {
        self.sync_observed(&mut |_| {}).await
    }

    /// [`Client::sync`], calling `observer` for every feed entry applied.
    pub async fn sync_observed(&self, observer: &mut ChangeObserver<'_>) -> ClientResult<SyncReport> {
        self.sync_with(observer, &no_progress()).await
    }

    /// [`Client::sync`], reporting the upload of queued attachments' files to `progress`.
    pub async fn sync_uploading(&self, progress: Progress) -> ClientResult<SyncReport> {
        self.sync_with(&mut |_| {}, &progress).await
    }

    async fn sync_with(&self, observer: &mut ChangeObserver<'_>, progress: &Progress) -> ClientResult<SyncReport> {
        self.ensure_signed_in().await?;
        self.record_start().await?;
        let result = self.sync_rounds(observer, progress).await;
        self.record_outcome(&result).await?;
        result
    }

    async fn sync_rounds(&self, observer: &mut ChangeObserver<'_>, progress: &Progress) -> ClientResult<SyncReport> {
        let mut report = SyncReport::default();
        // A new epoch or a lost tail turns acknowledged edits back into pending ones: push them again.
        for _ in 0..3 {
            let pushed = self.push_uploading(progress).await?;
            report.pushed.acknowledged += pushed.acknowledged;
            report.pushed.conflicts += pushed.conflicts;
            report.pushed.rejected.extend(pushed.rejected);
            match self.pull(observer, &mut report).await? {
                PullEnd::Done => return Ok(report),
                PullEnd::Rewound => continue,
            }
        }
        Err(ClientError::Protocol("the server's epoch changed during every attempt".into()))
    }

    /// Sends every pending edit, oldest first, and settles each by its receipt.
    pub async fn push(&self) -> ClientResult<ReceiptSummary> {
        self.push_uploading(&no_progress()).await
    }

    /// [`Client::push`]; the files of queued attaches go first, reported to `progress`.
    async fn push_uploading(&self, progress: &Progress) -> ClientResult<ReceiptSummary> {
        let mut summary = ReceiptSummary::default();
        summary.rejected = self.send_queued_files(progress).await?;
        let mut max_bytes = BATCH_BYTES;
        let mut answered_first = None;
        loop {
            let batch = self.with_replica(move |r| r.pending_batch(BATCH_MAX, max_bytes)).await?;
            let (Some(first), size) = (batch.first().map(|m| m.mutation_id()), batch.len()) else { return Ok(summary) };
            if answered_first == Some(first) {
                return Err(ClientError::Protocol(format!("the server did not settle mutation {first}")));
            }
            let request =
                self.http().request(Method::POST, "/api/library/mutations").json(&MutationBatchRequest { protocol_version: Some(PROTOCOL_VERSION), mutations: batch });
            match self.http().json::<MutationBatchResponse>(request).await {
                Ok(response) => {
                    let settled = self.with_replica(move |r| r.apply_receipts(&response.results)).await?;
                    summary.acknowledged += settled.acknowledged;
                    summary.conflicts += settled.conflicts;
                    summary.rejected.extend(settled.rejected);
                    answered_first = Some(first);
                }
                Err(ClientError::Api { status: 413, .. }) if size == 1 => {
                    let message = "this edit is larger than the server accepts; it was not sent";
                    let rejected = self.with_replica(move |r| r.reject_locally(first, "payload_too_large", message)).await?;
                    summary.rejected.extend(rejected);
                }
                // Smaller batches until each fits under the server's body limit.
                Err(ClientError::Api { status: 413, .. }) => max_bytes = (max_bytes / 4).max(1),
                Err(error) => return Err(error),
            }
        }
    }

    async fn fetch_page(&self, since: i64) -> ClientResult<ChangesResponse> {
        let path = format!("/api/library/changes?since={since}&limit={PAGE_LIMIT}");
        self.http().json(self.http().request(Method::GET, &path)).await
    }

    /// After a 410: is the server's version behind the cursor in the same epoch (it lost history
    /// this device had pulled), rather than past its tombstone horizon? Returns its version if so.
    async fn server_behind(&self, since: i64) -> ClientResult<Option<i64>> {
        let server: LibraryVersionResponse = self.http().json(self.http().request(Method::GET, "/api/library/version")).await?;
        let epoch = self.with_replica(|r| r.cursor()).await?.epoch;
        Ok((server.library_version < since && epoch.as_deref() == Some(server.epoch.as_str())).then_some(server.library_version))
    }

    async fn pull(&self, observer: &mut ChangeObserver<'_>, report: &mut SyncReport) -> ClientResult<PullEnd> {
        let mut since = self.with_replica(|r| r.cursor()).await?.library_version;
        let mut fetched = self.fetch_page(since).await;
        loop {
            let page = match fetched {
                Ok(page) => page,
                Err(ClientError::Api { status: 410, .. }) if since > 0 => {
                    report.resynced = true;
                    if let Some(server_version) = self.server_behind(since).await? {
                        let again = self.with_replica(|r| r.rewind()).await?;
                        tracing::warn!(since, server_version, again, "the server lost changes this device had pulled; sending them again");
                        return Ok(PullEnd::Rewound);
                    }
                    self.with_replica(|r| r.reset_for_resync(false)).await?;
                    since = 0;
                    fetched = self.fetch_page(since).await;
                    continue;
                }
                Err(error) => return Err(error),
            };
            let (has_more, next_since) = (page.has_more, page.next_since);
            if has_more && next_since <= since {
                return Err(ClientError::Protocol(format!("the change feed did not move past version {since}")));
            }
            // Write this page while the next one is on its way.
            let apply = self.with_replica(move |r| Ok((r.apply_page(since, &page)?, page)));
            let prefetch = async {
                match has_more {
                    true => Some(self.fetch_page(next_since).await),
                    false => None,
                }
            };
            let (applied, prefetched) = tokio::join!(apply, prefetch);
            let (outcome, page) = applied?;
            match outcome {
                PageOutcome::Applied => {
                    page.changes.iter().for_each(&mut *observer);
                    report.pulled += page.changes.len();
                    report.library_version = next_since;
                    match prefetched {
                        Some(next) => {
                            since = next_since;
                            fetched = next;
                        }
                        None => return Ok(PullEnd::Done),
                    }
                }
                PageOutcome::Stale => {
                    since = self.with_replica(|r| r.cursor()).await?.library_version;
                    fetched = self.fetch_page(since).await;
                }
                PageOutcome::EpochChanged => {
                    self.with_replica(|r| r.reset_for_resync(true)).await?;
                    report.resynced = true;
                    return Ok(PullEnd::Rewound);
                }
            }
        }
    }
}
