//! Records passed across the storage seam.

use shelf_core::{ChangeKind, ChangeOp, DeviceId, LibraryVersion, Material, MaterialId, Progress, UserId};
use time::OffsetDateTime;

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
}

/// The result of [`crate::Store::apply`]: the entity state after the mutation.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub library_version: LibraryVersion,
    /// False for a no-op: nothing was written and the version did not move.
    pub changed: bool,
    pub material: Option<Material>,
    pub progress: Option<Progress>,
    /// True when the edit was older than what it changed and went through the merge rules.
    pub merged: bool,
    /// Conflicts this mutation recorded on the material.
    pub conflicts: Vec<shelf_core::Conflict>,
}

/// Identifies one queued mutation of one device, for idempotent replays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptKey {
    pub device: DeviceId,
    pub mutation_id: i64,
}

/// What a mutation's first delivery resulted in, stored in the same transaction as its effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub mutation_id: i64,
    /// `applied`, `merged` or `rejected`.
    pub status: String,
    pub library_version: LibraryVersion,
    pub code: Option<String>,
    pub message: Option<String>,
    /// JSON: the conflicts a merge recorded.
    pub detail: Option<String>,
}

/// A mutation that could not apply, to keep in the dead-letter list.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub mutation_type: String,
    pub material_id: MaterialId,
    /// The mutation's `data`, as JSON text, so the user can restore it.
    pub data: String,
    pub code: String,
    pub message: String,
}

/// An entry of the dead-letter list.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedMutation {
    pub id: uuid::Uuid,
    pub device_id: Option<DeviceId>,
    pub mutation_id: Option<i64>,
    pub rejection: Rejection,
    pub created_at: OffsetDateTime,
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
