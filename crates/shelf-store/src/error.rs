//! The outcomes a caller of the store branches on; everything else is `Backend`.

use shelf_core::{LibraryVersion, PlanError};

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The mutation does not apply to the current state (not found, already exists, …).
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("this e-mail address is already registered")]
    EmailTaken,
    #[error("no such user")]
    UserNotFound,
    /// The receipt for this device's mutation already exists: it was applied before.
    #[error("this mutation was already delivered")]
    DuplicateMutation,
    /// The client's cursor predates the feed's horizon (or is ahead of the library).
    #[error("the change feed no longer covers version {since}; start again from 0")]
    ResyncRequired { since: LibraryVersion },
    /// No such upload for this user.
    #[error("no such upload")]
    UploadNotFound,
    /// Another writer holds the upload's lease.
    #[error("another request is writing this upload")]
    UploadLocked,
    /// The user's stored blobs plus uploads in flight would exceed the quota.
    #[error("this upload would exceed the storage quota of {quota} bytes")]
    QuotaExceeded { quota: u64 },
    /// The database could not be reached or refused the operation.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl StoreError {
    pub fn backend(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        StoreError::Backend(Box::new(error))
    }
}
