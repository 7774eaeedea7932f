//! Records passed across the storage seam.

use shelf_core::{
    Attachment, AttachmentWrite, ChangeKind, ChangeOp, ConflictSummary, DeviceId, EntityState, LibraryVersion, Material, MaterialId,
    MutationKind, Plan, Progress, RejectionCode, UserId, Write,
};
use time::OffsetDateTime;

/// One connection pool's occupancy, sampled for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// Which pool (`main` on PostgreSQL; `reader`/`writer` on SQLite).
    pub name: &'static str,
    /// Open connections, in use or idle.
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// What login needs to check a password.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    pub user_id: UserId,
    pub password_hash: String,
}

/// A device session to record at login. Only the token's hash is stored.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub device_id: DeviceId,
    pub user_id: UserId,
    pub token_hash: Vec<u8>,
    pub device_name: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// The identity a valid token resolves to.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionAuth {
    pub user_id: UserId,
    pub device_id: DeviceId,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// A session as listed to its user.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionInfo {
    pub device_id: DeviceId,
    pub device_name: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// The last library version this device pulled or was sent, and when (`None`: never synced).
    pub synced: Option<(LibraryVersion, OffsetDateTime)>,
}

/// An account as its owner re-proves it (password change, deletion).
#[derive(Debug, Clone)]
pub struct Account {
    pub email: String,
    pub password_hash: String,
}

/// What went with a deleted account, for the caller to finish outside the database: end the
/// devices' streams, delete the blobs' bytes and the uploads' staged parts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeletedAccount {
    pub devices: Vec<DeviceId>,
    /// SHA-256 of every blob the user held (keys `<user>/<sha256>`; never shared between users).
    pub blobs: Vec<String>,
    /// Uploads that were in flight: (id, the blob store's staging state as last recorded).
    pub uploads: Vec<(uuid::Uuid, Option<String>)>,
}

/// What `shelf admin stats` reports, read in one go.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdminStats {
    pub users: u64,
    /// Live (unexpired) sessions, one per signed-in device.
    pub live_sessions: u64,
    /// Live sessions that never pulled or were sent a version.
    pub never_synced: u64,
    /// For every live session that synced: its user's library version minus its synced version.
    pub lags: Vec<i64>,
    pub materials: u64,
    /// Blobs held (per user, by content) and their bytes.
    pub blobs: u64,
    pub blob_bytes: u64,
}

/// The result of a library write: the entity state after the mutation.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub library_version: LibraryVersion,
    /// False for a no-op: nothing was written and the version did not move.
    pub changed: bool,
    pub material: Option<Material>,
    pub progress: Option<Progress>,
    /// The attachment an `AddAttachment` created.
    pub attachment: Option<Attachment>,
    /// True when the edit was older than what it changed and went through the merge rules.
    pub merged: bool,
    /// Conflicts this mutation recorded on the material.
    pub conflicts: Vec<ConflictSummary>,
}

impl Applied {
    /// The state after `plan` (stamped with `version`) was written over `state`.
    pub fn from_plan(plan: &Plan, state: &EntityState, version: LibraryVersion, changed: bool) -> Self {
        let material = match &plan.material {
            Write::Unchanged => state.material.clone(),
            Write::Upsert(m) => Some(m.clone()),
            Write::Delete => None,
        };
        let progress = match &plan.progress {
            Write::Unchanged => state.progress.clone(),
            Write::Upsert(p) => Some(p.clone()),
            Write::Delete => None,
        };
        let attachment = plan.attachments.iter().find_map(|w| match w {
            AttachmentWrite::Insert(a) => Some(a.clone()),
            AttachmentWrite::Delete(_) => None,
        });
        Applied { library_version: version, changed, material, progress, attachment, merged: plan.merged, conflicts: plan.new_conflicts() }
    }
}

/// Identifies one queued mutation of one device, for idempotent replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptKey {
    pub device: DeviceId,
    pub mutation_id: i64,
}

/// A mutation delivered from a device's queue: its key, and its data as sent (JSON), kept in
/// the dead-letter list if it cannot apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub key: ReceiptKey,
    pub data: String,
}

/// How a write through the single path ended.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // Returned once per write and matched at once; boxing buys nothing.
pub enum Outcome {
    Applied(Applied),
    /// Dead-lettered, with its receipt.
    Rejected(Receipt),
    /// Delivered before: nothing changed; the stored receipt.
    Duplicate(Receipt),
}

/// What became of a delivered mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiptStatus {
    Applied,
    Merged,
    Rejected,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Applied => "applied",
            ReceiptStatus::Merged => "merged",
            ReceiptStatus::Rejected => "rejected",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [ReceiptStatus::Applied, ReceiptStatus::Merged, ReceiptStatus::Rejected].into_iter().find(|s| s.as_str() == raw)
    }
}

/// What a mutation's first delivery resulted in, stored in the same transaction as its effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub mutation_id: i64,
    pub status: ReceiptStatus,
    pub library_version: LibraryVersion,
    pub code: Option<RejectionCode>,
    pub message: Option<String>,
    /// The conflicts a merge recorded.
    pub conflicts: Vec<ConflictSummary>,
}

/// A mutation that could not apply, to keep in the dead-letter list.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub kind: MutationKind,
    pub material_id: MaterialId,
    /// The mutation's `data`, as JSON text, so the user can restore it.
    pub data: String,
    pub code: RejectionCode,
    pub message: String,
}

/// An entry of the dead-letter list.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedMutation {
    /// Time-ordered (UUIDv7): newest entries have the largest ids.
    pub id: uuid::Uuid,
    pub device_id: Option<DeviceId>,
    pub mutation_id: Option<i64>,
    pub kind: MutationKind,
    pub material_id: MaterialId,
    pub code: RejectionCode,
    pub message: String,
    /// The mutation's data as JSON text; `None` in a list when larger than its inline limit.
    pub data: Option<String>,
    pub data_bytes: u64,
    pub created_at: OffsetDateTime,
}

/// Which part of the dead-letter list to read: entries older than `before`, newest first, at
/// most `limit`, with data inline up to `inline_bytes` each.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RejectedQuery {
    pub before: Option<uuid::Uuid>,
    pub limit: u32,
    pub inline_bytes: u64,
}

/// The latest state of one changed entity.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeData {
    Material(Material),
    Progress(Progress),
    Attachment(shelf_core::Attachment),
}

/// One change-feed entry. `id` is the material's id for materials and progress, and the
/// attachment's own id for attachments (carried in the same UUID newtype).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub kind: ChangeKind,
    pub id: MaterialId,
    pub op: ChangeOp,
    pub version: LibraryVersion,
    /// `None` for a tombstone.
    pub data: Option<ChangeData>,
}

/// One page of the change feed, read from one consistent snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangesPage {
    pub library_version: LibraryVersion,
    pub changes: Vec<Change>,
    pub has_more: bool,
    /// The cursor for the next request: the last version returned, or the library version
    /// once the client is caught up.
    pub next_since: LibraryVersion,
}

fn corrupt(what: String) -> crate::StoreError {
    crate::StoreError::backend(std::io::Error::other(format!("corrupt stored value: {what}")))
}

impl Receipt {
    /// Rebuilds a receipt from its stored columns; an unknown status or code is an error, never
    /// silently something else.
    pub fn from_stored(
        mutation_id: i64,
        status: &str,
        library_version: i64,
        code: Option<&str>,
        message: Option<String>,
        detail: Option<&str>,
    ) -> crate::StoreResult<Self> {
        Ok(Receipt {
            mutation_id,
            status: ReceiptStatus::parse(status).ok_or_else(|| corrupt(format!("receipt status {status:?}")))?,
            library_version: LibraryVersion(library_version),
            code: code.map(|c| RejectionCode::parse(c).ok_or_else(|| corrupt(format!("rejection code {c:?}")))).transpose()?,
            message,
            conflicts: match detail {
                Some(json) => serde_json::from_str(json).map_err(crate::StoreError::backend)?,
                None => Vec::new(),
            },
        })
    }
}

/// A dead-letter entry's stored type and code, parsed; unknown values are errors.
pub fn parse_rejection_kind_and_code(kind: &str, code: &str) -> crate::StoreResult<(MutationKind, RejectionCode)> {
    Ok((
        MutationKind::parse(kind).ok_or_else(|| corrupt(format!("mutation type {kind:?}")))?,
        RejectionCode::parse(code).ok_or_else(|| corrupt(format!("rejection code {code:?}")))?,
    ))
}
