//! The storage seam: one [`Store`] trait that every database backend implements.
//!
//! Architecture invariant: the trait has no method that writes library data without bumping the
//! library version in the same transaction ([`Store::apply`] is the only library writer), so no
//! backend can forget the bump (spec LV2). Handlers hold an `Arc<dyn Store>` and never learn which
//! backend is running.

mod error;
mod feed;
mod types;

#[cfg(feature = "contract")]
pub mod contract;

pub use error::{StoreError, StoreResult};
pub use feed::{trim_to_whole_versions, TrimmedPage};
pub use types::{
    Applied, Change, ChangeData, ChangesPage, NewSession, Receipt, ReceiptKey, RejectedMutation, Rejection, SessionAuth,
    SessionInfo, UserCredentials,
};

use async_trait::async_trait;
use shelf_core::{DeviceId, Email, Epoch, LibraryMutation, LibraryVersion, Material, MaterialId, Progress, UserId};
use time::OffsetDateTime;

/// Persistent state of every Shelf user: accounts, device sessions, and libraries.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// "sqlite" or "postgres", for logs and benchmarks.
    fn backend_name(&self) -> &'static str;

    /// Succeeds when the database answers a trivial query (readiness).
    async fn ping(&self) -> StoreResult<()>;

    /// The random id fixed when this database was created.
    async fn epoch(&self) -> StoreResult<Epoch>;

    // --- accounts and sessions -------------------------------------------------------------

    /// Creates a user at library version 1. [`StoreError::EmailTaken`] if the address is in use.
    async fn create_user(&self, email: &Email, password_hash: &str, now: OffsetDateTime) -> StoreResult<UserId>;

    /// The stored password hash for an address, if such a user exists.
    async fn user_credentials(&self, email: &Email) -> StoreResult<Option<UserCredentials>>;

    /// Records a new device session (login).
    async fn create_session(&self, session: &NewSession) -> StoreResult<()>;

    /// The live (unexpired, unrevoked) session whose token hashes to `token_hash`.
    async fn session_by_token_hash(&self, token_hash: &[u8], now: OffsetDateTime) -> StoreResult<Option<SessionAuth>>;

    /// Updates a session's last-seen time.
    async fn touch_session(&self, device: DeviceId, now: OffsetDateTime) -> StoreResult<()>;

    /// The user's live sessions, oldest first.
    async fn list_sessions(&self, user: UserId, now: OffsetDateTime) -> StoreResult<Vec<SessionInfo>>;

    /// Revokes one of the user's sessions; false if the user has no such session.
    async fn revoke_session(&self, user: UserId, device: DeviceId) -> StoreResult<bool>;

    /// Which of `devices` still have a live session (one query for any number of devices).
    async fn live_devices(&self, devices: &[DeviceId], now: OffsetDateTime) -> StoreResult<Vec<DeviceId>>;

    /// Records a single-use stream ticket for a device session.
    async fn create_stream_ticket(&self, ticket_hash: &[u8], device: DeviceId, expires_at: OffsetDateTime) -> StoreResult<()>;

    /// Deletes the ticket and returns its live session, if the ticket is unexpired and its
    /// session is live. A ticket can be consumed at most once, even by concurrent requests.
    async fn consume_stream_ticket(&self, ticket_hash: &[u8], now: OffsetDateTime) -> StoreResult<Option<SessionAuth>>;

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

    // --- library ----------------------------------------------------------------------------

    /// Attaches a stored blob to a material: inserts the row, bumps the version and records the
    /// change (kind `attachment`, the attachment's id) in one transaction.
    async fn attach(&self, user: UserId, attachment: &shelf_core::Attachment, now: OffsetDateTime) -> StoreResult<LibraryVersion>;

    /// Detaches: deletes the row, bumps the version and leaves a tombstone. `PlanError::MaterialNotFound`
    /// also stands for "no such attachment on this material".
    async fn detach(&self, user: UserId, material: MaterialId, attachment: uuid::Uuid, now: OffsetDateTime) -> StoreResult<LibraryVersion>;

    /// A material's attachments, oldest first.
    async fn attachments(&self, user: UserId, material: MaterialId) -> StoreResult<Vec<shelf_core::Attachment>>;

    /// Whether any attachment of the user still points at this blob (garbage collection).
    async fn blob_referenced(&self, user: UserId, sha256: &str) -> StoreResult<bool>;

    /// Bytes of the distinct blobs the user's attachments point at (quota).
    async fn attached_bytes(&self, user: UserId) -> StoreResult<i64>;

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

    /// Applies one mutation atomically: locks the user's version, plans the change with
    /// [`shelf_core::plan_mutation`], writes rows, change-feed entries and the bumped version in
    /// one transaction. A no-op plan writes nothing and keeps the version.
    async fn apply(&self, user: UserId, mutation: &LibraryMutation, now: OffsetDateTime) -> StoreResult<Applied> {
        self.apply_with_receipt(user, mutation, now, None).await
    }

    /// [`Store::apply`] that also records `receipt` (device, mutationId → result) in the same
    /// transaction, also for a no-op. [`StoreError::DuplicateMutation`] (and no effect) if that
    /// receipt already exists. For an edit older than the material (`base_version`), the
    /// material's fields as of that version are loaded as the merge base.
    async fn apply_with_receipt(
        &self,
        user: UserId,
        mutation: &LibraryMutation,
        now: OffsetDateTime,
        receipt: Option<ReceiptKey>,
    ) -> StoreResult<Applied>;

    /// The stored result of a device's mutation, if it was delivered before.
    async fn receipt(&self, key: ReceiptKey) -> StoreResult<Option<Receipt>>;

    /// Records a rejected mutation in the dead-letter list and, with a key, its receipt — in one
    /// transaction. If the receipt already exists, nothing is written and it is returned.
    async fn reject(&self, user: UserId, key: Option<ReceiptKey>, rejection: &Rejection, now: OffsetDateTime) -> StoreResult<Receipt>;

    /// The user's dead-letter list, newest first.
    async fn rejected_mutations(&self, user: UserId, limit: u32) -> StoreResult<Vec<RejectedMutation>>;

    /// Whether the user had this material and deleted it (its tombstone is still kept).
    async fn material_deleted(&self, user: UserId, id: MaterialId) -> StoreResult<bool>;

    /// The latest state of every entity changed after `since`, ascending by version, never
    /// splitting one version across pages. [`StoreError::ResyncRequired`] when tombstones the
    /// client may have missed were purged, or when `since` is ahead of the library.
    async fn changes_since(&self, user: UserId, since: LibraryVersion, limit: u32) -> StoreResult<ChangesPage>;

    /// Deletes tombstones recorded before `older_than` and raises each affected user's feed
    /// horizon, so older cursors get `ResyncRequired`. Returns how many were removed.
    async fn purge_tombstones(&self, older_than: OffsetDateTime) -> StoreResult<u64>;
}

/// `(bucket, count)` rows from an upsert's RETURNING (which promises no order) as counts in the
/// order of `buckets`, as [`Store::count_attempts`] answers.
pub fn counts_in_order(buckets: &[String], rows: &[(String, i64)]) -> Vec<i64> {
    let counts: std::collections::HashMap<&str, i64> = rows.iter().map(|(bucket, count)| (bucket.as_str(), *count)).collect();
    buckets.iter().map(|bucket| counts.get(bucket.as_str()).copied().unwrap_or(0)).collect()
}

/// The receipt an applied mutation leaves: `merged` when the merge rules were used, with the
/// conflicts it recorded as JSON detail. Shared so every backend stores the same thing.
pub fn receipt_for(mutation_id: i64, applied: &Applied) -> StoreResult<Receipt> {
    let detail = if applied.conflicts.is_empty() {
        None
    } else {
        Some(serde_json::to_string(&applied.conflicts).map_err(StoreError::backend)?)
    };
    Ok(Receipt {
        mutation_id,
        status: if applied.merged { "merged" } else { "applied" }.to_owned(),
        library_version: applied.library_version,
        code: None,
        message: None,
        detail,
    })
}
