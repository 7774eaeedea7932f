//! The storage seam: one [`Store`] trait that every database backend implements.
//!
//! Architecture invariant: library data is written only by the algorithm in [`write`], reached
//! through [`Store::apply`] and [`Store::apply_delivered`]; backends supply primitives inside
//! their own transaction and cannot write a library row without the version bump (spec LV2).
//! Handlers hold an `Arc<dyn Store>` and never learn which backend is running.

mod error;
mod feed;
mod push;
mod types;
mod uploads;
pub mod write;

#[cfg(feature = "contract")]
pub mod contract;
#[cfg(feature = "contract")]
mod contract_concurrency;
#[cfg(feature = "contract")]
mod contract_ops;
#[cfg(feature = "contract")]
mod contract_push;
#[cfg(feature = "contract")]
mod contract_sessions;
#[cfg(feature = "contract")]
mod contract_uploads;
#[cfg(feature = "contract")]
mod contract_writes;

pub use error::{StoreError, StoreResult};
pub use feed::{known_more_after, page_until};
pub use types::{
    parse_rejection_kind_and_code, Applied, Change, ChangeData, ChangesPage, Delivery, NewSession, Outcome, PoolStats, AdminStats, Account, DeletedAccount, Receipt, ReceiptKey,
    ReceiptStatus, RejectedMutation, RejectedQuery, Rejection, SessionAuth, SessionInfo, UserCredentials,
};
pub use push::{NewPushSubscription, PushSubscription, PushTarget};
pub use uploads::{db_size, size_from_db, NewUpload, StoredBlob, UploadLease, UploadProgress, UploadRecord};

use async_trait::async_trait;
use shelf_core::{DeviceId, Email, Epoch, LibraryMutation, LibraryVersion, Material, MaterialId, Progress, UserId};
use time::OffsetDateTime;
use write::{Job, WriteBackend};

/// Persistent state of every Shelf user: accounts, device sessions, and libraries.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// "sqlite" or "postgres", for logs and benchmarks.
    fn backend_name(&self) -> &'static str;

    /// Succeeds when the database answers a trivial query (readiness).
    async fn ping(&self) -> StoreResult<()>;

    /// Occupancy of each connection pool, read without touching the database (metrics).
    fn pool_stats(&self) -> Vec<PoolStats>;

    /// The random id fixed when this database was created.
    async fn epoch(&self) -> StoreResult<Epoch>;

    /// Replaces the epoch with a new random id (`shelf admin new-epoch`, after a backup was
    /// restored): every device then rebuilds its copy and sends again what it holds, so changes
    /// the backup lacks come back. Servers read the epoch at start: run it while they are stopped.
    async fn new_epoch(&self) -> StoreResult<Epoch>;

    // --- accounts and sessions -------------------------------------------------------------

    /// Creates a user at library version 1. [`StoreError::EmailTaken`] if the address is in use.
    async fn create_user(&self, email: &Email, password_hash: &str, now: OffsetDateTime) -> StoreResult<UserId>;

    /// The stored password hash for an address, if such a user exists.
    async fn user_credentials(&self, email: &Email) -> StoreResult<Option<UserCredentials>>;

    /// Records a new device session (login).
    async fn create_session(&self, session: &NewSession) -> StoreResult<()>;

    /// The live (unexpired, unrevoked) session whose token hashes to `token_hash`.
    async fn session_by_token_hash(&self, token_hash: &[u8], now: OffsetDateTime) -> StoreResult<Option<SessionAuth>>;

    /// The live sessions among distinct `token_hashes`, each with its hash (those unknown or
    /// expired are left out): the reads of concurrent authentications, in one round trip where
    /// the backend's reads are round trips. By default, one read after another.
    async fn sessions_by_token_hashes(&self, token_hashes: &[Vec<u8>], now: OffsetDateTime) -> StoreResult<Vec<(Vec<u8>, SessionAuth)>> {
        let mut live = Vec::with_capacity(token_hashes.len());
        for hash in token_hashes {
            if let Some(session) = self.session_by_token_hash(hash, now).await? {
                live.push((hash.clone(), session));
            }
        }
        Ok(live)
    }

    /// Whether [`sessions_by_token_hashes`] reads a batch in one round trip, so that queuing
    /// concurrent reads for it pays; by default it reads one after another, and callers read
    /// each session directly instead of waiting for a batch.
    ///
    /// [`sessions_by_token_hashes`]: Store::sessions_by_token_hashes
    fn reads_sessions_in_batches(&self) -> bool {
        false
    }

    /// Updates a session's last-seen time.
    async fn touch_session(&self, device: DeviceId, now: OffsetDateTime) -> StoreResult<()>;

    /// The user's live sessions, oldest first.
    async fn list_sessions(&self, user: UserId, now: OffsetDateTime) -> StoreResult<Vec<SessionInfo>>;

    /// Moves these devices' live sessions' expiry to `expires_at` (never earlier) and their
    /// last-seen time to `now`, in one transaction: sessions in use do not expire (sliding
    /// expiry). The server renews concurrent requests' sessions together (`service/renewals.rs`).
    async fn renew_sessions(&self, devices: &[DeviceId], now: OffsetDateTime, expires_at: OffsetDateTime) -> StoreResult<()>;

    /// The user's e-mail address and password hash, if the user exists.
    async fn account(&self, user: UserId) -> StoreResult<Option<Account>>;

    /// Sets the user's password hash and deletes every session but `keep`, in one transaction;
    /// returns the devices signed out. [`StoreError::UserNotFound`] for no such user.
    async fn change_password(&self, user: UserId, password_hash: &str, keep: DeviceId) -> StoreResult<Vec<DeviceId>>;

    /// Deletes the user and everything of theirs (sessions, tickets, library, receipts,
    /// conflicts, dead letters, uploads, blob records — all by `ON DELETE CASCADE` from `users`)
    /// in one transaction under the user's lock, and returns what the caller must still clean up
    /// outside the database. [`StoreError::UserNotFound`] for no such user.
    async fn delete_user(&self, user: UserId) -> StoreResult<DeletedAccount>;

    /// Records that `device` pulled or was sent `version` at `at` (and was seen then). Never
    /// lowers a recorded version; an unknown device is no error (it may have just signed out).
    async fn record_device_sync(&self, device: DeviceId, version: LibraryVersion, at: OffsetDateTime) -> StoreResult<()>;

    /// Counts for `shelf admin stats`: users, live sessions and their lag, materials, blobs.
    async fn admin_stats(&self, now: OffsetDateTime) -> StoreResult<AdminStats>;

    /// Revokes one of the user's sessions; false if the user has no such session.
    async fn revoke_session(&self, user: UserId, device: DeviceId) -> StoreResult<bool>;

    /// The devices among `devices` whose session is live at `now`, with its expiry (one query
    /// for any number of devices).
    async fn session_expiries(&self, devices: &[DeviceId], now: OffsetDateTime) -> StoreResult<Vec<(DeviceId, OffsetDateTime)>>;

    /// Devices whose session was deleted (logout, revocation, password change, account
    /// deletion) within the last `window`, by the database's clock; a device may appear twice.
    async fn ended_sessions(&self, window: std::time::Duration) -> StoreResult<Vec<DeviceId>>;

    /// Forgets ended sessions older than `older_than` (by the database's clock).
    async fn purge_ended_sessions(&self, older_than: std::time::Duration) -> StoreResult<u64>;

    /// Records a single-use stream ticket for a device session.
    async fn create_stream_ticket(&self, ticket_hash: &[u8], device: DeviceId, expires_at: OffsetDateTime) -> StoreResult<()>;

    /// Deletes the ticket and returns its live session, if the ticket is unexpired and its
    /// session is live. A ticket can be consumed at most once, even by concurrent requests.
    async fn consume_stream_ticket(&self, ticket_hash: &[u8], now: OffsetDateTime) -> StoreResult<Option<SessionAuth>>;

    // --- web push (spec PU1–PU5) ---------------------------------------------------------------

    /// The server's VAPID private key (a P-256 scalar). Stores `candidate` if no key is stored
    /// yet and returns whichever key is stored, so instances starting together agree on one.
    async fn vapid_private_key(&self, candidate: &[u8], now: OffsetDateTime) -> StoreResult<Vec<u8>>;

    /// Ties a push subscription to its device session, replacing the device's earlier one (the
    /// versions already pushed are kept). False, and nothing written, when the session is gone.
    async fn put_push_subscription(&self, subscription: &NewPushSubscription) -> StoreResult<bool>;

    /// Removes the device's subscription; false if it had none.
    async fn delete_push_subscription(&self, user: UserId, device: DeviceId) -> StoreResult<bool>;

    /// Removes the device's subscription only if it still points at `endpoint` (the push service
    /// said 404/410 for that endpoint; a newer subscription must survive). False otherwise.
    async fn discard_push_subscription(&self, device: DeviceId, endpoint: &str) -> StoreResult<bool>;

    /// Which of the user's devices have a push subscription.
    async fn push_devices(&self, user: UserId) -> StoreResult<Vec<DeviceId>>;

    /// Subscribed devices of `users` whose session is live at `now` and that have no stream seen
    /// at or after `streams_seen_since` on any instance (one query for any number of users).
    async fn push_targets(&self, users: &[UserId], now: OffsetDateTime, streams_seen_since: OffsetDateTime) -> StoreResult<Vec<PushTarget>>;

    /// Claims the push of `version` to `device`: atomically raises the device's pushed version to
    /// `version` if it was lower, the session is live and no stream was seen since
    /// `streams_seen_since`, and returns the subscription. With several instances exactly one
    /// claim of a version wins; a lower version than one already claimed never does.
    async fn claim_push(
        &self,
        device: DeviceId,
        version: LibraryVersion,
        now: OffsetDateTime,
        streams_seen_since: OffsetDateTime,
    ) -> StoreResult<Option<PushSubscription>>;

    /// Records that `devices` have an open stream on `instance` at `now` (upsert; devices whose
    /// session is gone are skipped).
    async fn record_stream_presence(&self, instance: uuid::Uuid, devices: &[DeviceId], now: OffsetDateTime) -> StoreResult<()>;

    /// Forgets `instance`'s streams of `devices` (all of its streams when `devices` is `None`).
    async fn clear_stream_presence(&self, instance: uuid::Uuid, devices: Option<&[DeviceId]>) -> StoreResult<()>;

    // --- rate limits ------------------------------------------------------------------------

    /// Counts one attempt against each of `buckets` (distinct names such as
    /// `login-address:192.0.2.1`) in the fixed window starting at `window_start` (Unix seconds)
    /// and returns each bucket's count including this attempt, in the order given. A bucket last
    /// counted in an earlier window starts again at 1. Each count is one atomic upsert, so
    /// concurrent attempts on any number of instances each see a distinct count.
    async fn count_attempts(&self, buckets: &[String], window_start: i64) -> StoreResult<Vec<i64>>;

    /// Takes one attempt back from each bucket still counting the window `window_start` (a
    /// login that turned out right is not a failure). Never goes below zero.
    async fn refund_attempts(&self, buckets: &[String], window_start: i64) -> StoreResult<()>;

    /// Deletes buckets whose window started before `before` (Unix seconds); returns how many.
    async fn purge_attempts(&self, before: i64) -> StoreResult<u64>;

    // --- library: writes --------------------------------------------------------------------

    /// The backend's transaction runner for the single write path ([`write::apply`]).
    fn writer(&self) -> &dyn WriteBackend;

    /// Applies one mutation (REST): a mutation that cannot apply is an error and writes nothing;
    /// a no-op writes nothing and keeps the version (LV3).
    async fn apply(&self, user: UserId, mutation: &LibraryMutation, now: OffsetDateTime) -> StoreResult<Applied> {
        let job = Job { user, mutation: mutation.clone(), now, delivery: None };
        match write::apply(self.writer(), job).await? {
            Outcome::Applied(applied) => Ok(applied),
            other => Err(StoreError::backend(std::io::Error::other(format!("a mutation without delivery ended as {other:?}")))),
        }
    }

    /// Applies a mutation from a device's queue with its receipt in the same transaction: a
    /// replay is a [`Outcome::Duplicate`], a mutation that cannot apply is dead-lettered
    /// ([`Outcome::Rejected`]) with its receipt (SY9).
    async fn apply_delivered(&self, user: UserId, mutation: &LibraryMutation, now: OffsetDateTime, delivery: Delivery) -> StoreResult<Outcome> {
        let job = Job { user, mutation: mutation.clone(), now, delivery: Some(delivery) };
        write::apply(self.writer(), job).await
    }

    // --- library: reads ---------------------------------------------------------------------

    /// A material's attachments, oldest first.
    async fn attachments(&self, user: UserId, material: MaterialId) -> StoreResult<Vec<shelf_core::Attachment>>;

    /// A material's unresolved conflicts with their texts, oldest first.
    async fn conflicts(&self, user: UserId, material: MaterialId) -> StoreResult<Vec<shelf_core::Conflict>>;

    /// Whether any attachment of the user still points at this blob (garbage collection).
    async fn blob_referenced(&self, user: UserId, sha256: &str) -> StoreResult<bool>;

    // --- uploads and stored blobs (spec AT6–AT8) --------------------------------------------

    /// Records an upload and reserves its length under the user's lock: the user's usage (stored
    /// blobs plus uploads in flight) plus `length` must stay within `quota`, else
    /// [`StoreError::QuotaExceeded`] and nothing is written. Racing creations cannot both pass.
    async fn create_upload(&self, upload: &NewUpload, quota: u64) -> StoreResult<()>;

    /// The user's upload, if it exists.
    async fn upload(&self, user: UserId, id: uuid::Uuid) -> StoreResult<Option<UploadRecord>>;

    /// Makes `lease` the upload's only writer, unless another writer's lease is still live at
    /// `now` ([`StoreError::UploadLocked`]); [`StoreError::UploadNotFound`] for no such upload of
    /// this user. Returns the upload as claimed.
    async fn claim_upload(&self, user: UserId, id: uuid::Uuid, lease: UploadLease, now: OffsetDateTime) -> StoreResult<UploadRecord>;

    /// Extends the lease held by `token` to `until` and records `offset` as durably staged;
    /// false (and nothing written) when `token` no longer holds the upload.
    async fn renew_upload(&self, id: uuid::Uuid, token: uuid::Uuid, progress: &UploadProgress, until: OffsetDateTime) -> StoreResult<bool>;

    /// Records `offset` and frees the upload for the next writer; false when `token` no longer
    /// holds it.
    async fn release_upload(&self, id: uuid::Uuid, token: uuid::Uuid, progress: &UploadProgress, now: OffsetDateTime) -> StoreResult<bool>;

    /// Completes an upload whose blob is durable in the blob store, in one transaction: deletes
    /// the upload (its reservation) and records the stored blob (a duplicate only refreshes
    /// `stored_at`). False, and nothing written, when `token` no longer holds the upload.
    async fn finish_upload(&self, id: uuid::Uuid, token: uuid::Uuid, now: OffsetDateTime) -> StoreResult<bool>;

    /// Deletes the upload held by `token` (termination, hash mismatch, expiry), releasing its
    /// reservation; false when `token` no longer holds it.
    async fn discard_upload(&self, id: uuid::Uuid, token: uuid::Uuid) -> StoreResult<bool>;

    /// Uploads untouched since `before` whose lease is not live at `now`, oldest first.
    async fn abandoned_uploads(&self, before: OffsetDateTime, now: OffsetDateTime) -> StoreResult<Vec<(UserId, uuid::Uuid)>>;

    /// The user's stored blob: "do you hold this blob, and what size".
    async fn stored_blob(&self, user: UserId, sha256: &str) -> StoreResult<Option<StoredBlob>>;

    /// Deletes the records of blobs stored before `before` that no attachment and no upload in
    /// flight of the same user points at, atomically with that check under each user's lock,
    /// and returns them: the caller deletes their bytes next.
    async fn collect_unreferenced_blobs(&self, before: OffsetDateTime) -> StoreResult<Vec<(UserId, String)>>;

    /// Whether [`Store::backfill_stored_blobs`] ran for this database.
    async fn stored_blobs_backfilled(&self) -> StoreResult<bool>;

    /// Records blobs that were stored before blobs had records (existing rows are kept, unknown
    /// users skipped) and marks the back-fill done, in one transaction. Returns rows added.
    async fn backfill_stored_blobs(&self, blobs: &[(UserId, StoredBlob)]) -> StoreResult<u64>;

    /// The user's current library version: one indexed read.
    async fn library_version(&self, user: UserId) -> StoreResult<LibraryVersion>;

    /// The library versions of several users at once (for stream recovery after lost
    /// announcements). Unknown users are left out.
    async fn library_versions(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, LibraryVersion)>>;

    /// One material with its progress, if the user has it.
    async fn material(&self, user: UserId, id: MaterialId) -> StoreResult<Option<(Material, Option<Progress>)>>;

    /// The user's materials ordered by id, starting after `after`, at most `limit`.
    async fn list_materials(
        &self,
        user: UserId,
        after: Option<MaterialId>,
        limit: u32,
    ) -> StoreResult<Vec<(Material, Option<Progress>)>>;

    /// The stored result of a device's mutation, if it was delivered before.
    async fn receipt(&self, user: UserId, key: ReceiptKey) -> StoreResult<Option<Receipt>>;

    /// A page of the user's dead-letter list, newest first; each entry's data inline only up to
    /// the query's limit, so a page stays small however large the entries are.
    async fn rejected_mutations(&self, user: UserId, query: RejectedQuery) -> StoreResult<Vec<RejectedMutation>>;

    /// One dead-letter entry with all its data.
    async fn rejected_mutation(&self, user: UserId, id: uuid::Uuid) -> StoreResult<Option<RejectedMutation>>;

    /// The latest state of every entity changed after `since`, ascending by version, never
    /// splitting one version across pages, at most `limit` rows and about `max_bytes` of data
    /// (but always at least one whole version). [`StoreError::ResyncRequired`] when tombstones
    /// the client may have missed were purged, or when `since` is ahead of the library.
    async fn changes_since(&self, user: UserId, since: LibraryVersion, limit: u32, max_bytes: u64) -> StoreResult<ChangesPage>;

    /// Compaction driven by device cursors (spec CF6): for every user with a session seen since
    /// `active_since` (and live at `now`), raises the feed horizon to the newest tombstone that
    /// every such session has pulled past (a session that never synced holds everything back),
    /// then deletes the tombstones at or below each user's horizon. Sessions not seen since
    /// `active_since` hold nothing back; if they return behind the horizon they get
    /// `ResyncRequired`. Returns how many tombstones were removed.
    async fn compact_tombstones(&self, active_since: OffsetDateTime, now: OffsetDateTime) -> StoreResult<u64>;

    /// Deletes tombstones recorded before `older_than` and raises each affected user's feed
    /// horizon, so older cursors get `ResyncRequired`. Returns how many were removed.
    async fn purge_tombstones(&self, older_than: OffsetDateTime) -> StoreResult<u64>;
}

/// `(bucket, count)` rows from an upsert's RETURNING (which promises no order) as counts in the
/// order of `buckets`, as [`Store::count_attempts`] answers. A bucket the upsert did not return
/// is an error: counting it as 0 would let attempts past the limit.
pub fn counts_in_order(buckets: &[String], rows: &[(String, i64)]) -> StoreResult<Vec<i64>> {
    let counts: std::collections::HashMap<&str, i64> = rows.iter().map(|(bucket, count)| (bucket.as_str(), *count)).collect();
    buckets
        .iter()
        .map(|bucket| {
            counts.get(bucket.as_str()).copied().ok_or_else(|| StoreError::backend(std::io::Error::other(format!("attempt bucket {bucket} was not counted"))))
        })
        .collect()
}
