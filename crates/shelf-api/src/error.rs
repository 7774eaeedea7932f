//! The error body every failing request gets: `{"code": "...", "message": "..."}`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Machine-readable error codes. Clients branch on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    ValidationFailed,
    InvalidJson,
    UnsupportedMediaType,
    Unauthenticated,
    InvalidCredentials,
    CsrfRejected,
    NotFound,
    MethodNotAllowed,
    EmailTaken,
    MaterialExists,
    PayloadTooLarge,
    ResyncRequired,
    EditConflict,
    FileTooLarge,
    QuotaExceeded,
    HashMismatch,
    OffsetMismatch,
    UploadLocked,
    RangeNotSatisfiable,
    RateLimited,
    ServiceUnavailable,
    Internal,
    /// A queued edit of a material that was deleted on another device (kept to restore).
    Deleted,
    AttachmentExists,
    /// A material kept more unresolved conflicts than allowed; the oldest moved to the
    /// dead-letter list.
    ConflictOverflow,
    /// The mutation batch's `protocolVersion` is not one this server speaks.
    UnsupportedProtocol,
    /// The password sent to confirm an account change (password change, deletion) is wrong.
    WrongPassword,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationFailed => "validation_failed",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::CsrfRejected => "csrf_rejected",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::EmailTaken => "email_taken",
            ErrorCode::MaterialExists => "material_exists",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::ResyncRequired => "resync_required",
            ErrorCode::EditConflict => "edit_conflict",
            ErrorCode::FileTooLarge => "file_too_large",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::HashMismatch => "hash_mismatch",
            ErrorCode::OffsetMismatch => "offset_mismatch",
            ErrorCode::UploadLocked => "upload_locked",
            ErrorCode::RangeNotSatisfiable => "range_not_satisfiable",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::ServiceUnavailable => "service_unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::Deleted => "deleted",
            ErrorCode::AttachmentExists => "attachment_exists",
            ErrorCode::ConflictOverflow => "conflict_overflow",
            ErrorCode::UnsupportedProtocol => "unsupported_protocol",
            ErrorCode::WrongPassword => "wrong_password",
        }
    }
}

/// Every error response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// The id of the request that failed (also in the `X-Request-Id` response header): quote it
    /// when reporting a problem, the server's log lines of that request carry the same id.
    #[serde(rename = "requestId", default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 128)]
    pub request_id: Option<String>,
    /// With `edit_conflict`: the overlapping edits, none of which was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicts: Option<Vec<crate::ConflictView>>,
}

impl From<shelf_core::RejectionCode> for ErrorCode {
    fn from(code: shelf_core::RejectionCode) -> Self {
        use shelf_core::RejectionCode as R;
        match code {
            R::ValidationFailed => ErrorCode::ValidationFailed,
            R::NotFound => ErrorCode::NotFound,
            R::MaterialExists => ErrorCode::MaterialExists,
            R::AttachmentExists => ErrorCode::AttachmentExists,
            R::Deleted => ErrorCode::Deleted,
            R::EditConflict => ErrorCode::EditConflict,
            R::ConflictOverflow => ErrorCode::ConflictOverflow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn every_rejection_code_is_an_error_code_with_the_same_name() {
        for code in shelf_core::RejectionCode::ALL {
            assert_eq!(ErrorCode::from(code).as_str(), code.as_str());
            let json = serde_json::to_value(ErrorCode::from(code)).unwrap_or_default();
            assert_eq!(json, code.as_str());
        }
    }
}
