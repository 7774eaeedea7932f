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
    RangeNotSatisfiable,
    RateLimited,
    ServiceUnavailable,
    Internal,
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
            ErrorCode::RangeNotSatisfiable => "range_not_satisfiable",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::ServiceUnavailable => "service_unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// Every error response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    /// With `edit_conflict`: the overlapping edits, none of which was written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicts: Option<Vec<crate::ConflictView>>,
}
