//! Records of the upload seam: uploads in flight and the blobs a user holds. Together they are
//! the user's storage usage, which [`crate::Store::create_upload`] reserves against the quota.

use shelf_core::UserId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{StoreError, StoreResult};

/// A tus upload to record at creation; its whole `length` is reserved against the quota.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUpload {
    pub id: Uuid,
    pub user: UserId,
    pub length: u64,
    /// Lower-case hex SHA-256 the bytes must hash to.
    pub sha256: String,
    pub filename: Option<String>,
    pub created_at: OffsetDateTime,
}

/// An upload in flight, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadRecord {
    pub id: Uuid,
    pub user: UserId,
    pub length: u64,
    pub sha256: String,
    pub filename: Option<String>,
    /// Bytes durably staged by the writers so far: where the next writer continues.
    pub offset: u64,
    /// The SHA-256 state over the first `offset` bytes (`None` before the first byte).
    pub hasher: Option<Vec<u8>>,
    /// The blob store's state of the staged bytes at `offset` (ADR 0010), opaque here.
    pub staging: Option<String>,
    pub created_at: OffsetDateTime,
    /// Creation or the last writer's release: abandoned uploads are judged by it.
    pub updated_at: OffsetDateTime,
    /// Until when the current writer's claim holds; `None` when nobody writes.
    pub lease_until: Option<OffsetDateTime>,
}

/// What a writer records when its bytes are durable: the offset, the hash state and the blob
/// store's staging state over exactly those bytes, always written together (one statement), so
/// the next writer, on any instance, continues from a consistent triple.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UploadProgress {
    pub offset: u64,
    pub hasher: Option<Vec<u8>>,
    pub staging: Option<String>,
}

impl UploadRecord {
    /// The progress as last recorded.
    pub fn progress(&self) -> UploadProgress {
        UploadProgress { offset: self.offset, hasher: self.hasher.clone(), staging: self.staging.clone() }
    }
}

/// One writer's claim on an upload: a token only that writer knows, and its expiry, so the
/// claim of a writer that crashed lapses on its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UploadLease {
    pub token: Uuid,
    pub until: OffsetDateTime,
}

/// A blob the user holds in the blob store, attached or not (it counts against the quota).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredBlob {
    pub sha256: String,
    pub size: u64,
    pub stored_at: OffsetDateTime,
}

/// A byte count as the databases store it (signed 64-bit).
pub fn db_size(bytes: u64) -> StoreResult<i64> {
    i64::try_from(bytes).map_err(StoreError::backend)
}

/// A stored byte count back as `u64` (never negative: every write goes through [`db_size`]).
pub fn size_from_db(bytes: i64) -> StoreResult<u64> {
    u64::try_from(bytes).map_err(StoreError::backend)
}
