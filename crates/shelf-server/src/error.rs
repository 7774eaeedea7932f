//! The one place where outcomes become HTTP statuses and `{code, message}` bodies.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use shelf_api::{ErrorBody, ErrorCode};
use shelf_core::{PlanError, ValidationError};
use shelf_store::StoreError;

/// Every way a request can fail. Handlers return it with `?`; nothing else builds error bodies.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(#[from] ValidationError),
    #[error("{1}")]
    BadRequest(ErrorCode, String),
    #[error("authentication required: send a valid Bearer token or session cookie")]
    Unauthenticated,
    #[error("wrong e-mail address or password")]
    InvalidCredentials,
    /// 403, not 401: the session is fine, only the password confirming the change is wrong.
    #[error("the password is wrong; nothing was changed")]
    WrongPassword,
    #[error("cookie-authenticated requests that change data need the X-Shelf-Csrf header or an Origin equal to this server's (or an allowed one)")]
    CsrfRejected,
    #[error("a cookie-authenticated stream must come from this server's own origin or an allowed one; other clients use a Bearer token or ?ticket=")]
    ForeignOrigin,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("this e-mail address is already registered")]
    EmailTaken,
    #[error("a material with this id already exists")]
    MaterialExists,
    /// A 409 whose code and message the caller chooses.
    #[error("{1}")]
    Conflict(ErrorCode, String),
    #[error("the change feed no longer covers your cursor; start again from since=0")]
    ResyncRequired,
    #[error("the edit overlaps a concurrent edit made since the If-Match version; nothing was changed")]
    EditConflict(Vec<shelf_core::Conflict>),
    #[error("request body exceeds the server's size limit (max_body_bytes)")]
    PayloadTooLarge,
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    #[error("the file is larger than the limit of {0} bytes")]
    FileTooLarge(u64),
    #[error("this upload would exceed your storage quota of {0} bytes")]
    QuotaExceeded(u64),
    #[error("the uploaded bytes do not match the declared SHA-256 and size; the upload was discarded")]
    HashMismatch,
    #[error("Upload-Offset {0} does not match the stored offset {1}; ask with HEAD and continue from there")]
    OffsetMismatch(u64, u64),
    #[error("another request is writing this upload; ask with HEAD and continue when it is done")]
    UploadLocked,
    /// Carries the file's size for the `Content-Range: bytes */SIZE` header.
    #[error("the requested range is outside the file")]
    RangeNotSatisfiable(u64),
    #[error("blob storage failed")]
    Blob(#[source] shelf_blob::BlobError),
    #[error("too many attempts; try again in {} seconds", .0.as_secs())]
    RateLimited(std::time::Duration),
    #[error("the server is busy; try again in {} seconds", .0.as_secs())]
    Overloaded(std::time::Duration),
    #[error("the database is unavailable")]
    Unavailable(#[source] StoreError),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        match self {
            ApiError::Validation(_) => (StatusCode::BAD_REQUEST, ErrorCode::ValidationFailed),
            ApiError::BadRequest(ErrorCode::UnsupportedMediaType, _) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::UnsupportedMediaType)
            }
            ApiError::BadRequest(code, _) => (StatusCode::BAD_REQUEST, *code),
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated),
            ApiError::InvalidCredentials => (StatusCode::UNAUTHORIZED, ErrorCode::InvalidCredentials),
            ApiError::WrongPassword => (StatusCode::FORBIDDEN, ErrorCode::WrongPassword),
            ApiError::CsrfRejected | ApiError::ForeignOrigin => (StatusCode::FORBIDDEN, ErrorCode::CsrfRejected),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::EmailTaken => (StatusCode::CONFLICT, ErrorCode::EmailTaken),
            ApiError::MaterialExists => (StatusCode::CONFLICT, ErrorCode::MaterialExists),
            ApiError::Conflict(code, _) => (StatusCode::CONFLICT, *code),
            ApiError::ResyncRequired => (StatusCode::GONE, ErrorCode::ResyncRequired),
            ApiError::EditConflict(_) => (StatusCode::CONFLICT, ErrorCode::EditConflict),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::PayloadTooLarge),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, ErrorCode::MethodNotAllowed),
            ApiError::FileTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::FileTooLarge),
            ApiError::QuotaExceeded(_) => (StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::QuotaExceeded),
            ApiError::HashMismatch => (StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::HashMismatch),
            ApiError::OffsetMismatch(..) => (StatusCode::CONFLICT, ErrorCode::OffsetMismatch),
            ApiError::UploadLocked => (StatusCode::LOCKED, ErrorCode::UploadLocked),
            ApiError::RangeNotSatisfiable(_) => (StatusCode::RANGE_NOT_SATISFIABLE, ErrorCode::RangeNotSatisfiable),
            ApiError::Blob(shelf_blob::BlobError::NotFound) => (StatusCode::NOT_FOUND, ErrorCode::NotFound),
            ApiError::Blob(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited),
            ApiError::Overloaded(_) | ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, ErrorCode::ServiceUnavailable),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Plan(PlanError::MaterialNotFound | PlanError::MaterialDeleted) => ApiError::NotFound("material"),
            StoreError::Plan(PlanError::AttachmentNotFound) => ApiError::NotFound("attachment"),
            StoreError::Plan(PlanError::BlobNotFound) => ApiError::NotFound("blob (upload it first)"),
            StoreError::Plan(PlanError::AttachmentExists) => {
                ApiError::Conflict(ErrorCode::AttachmentExists, "an attachment with this id already exists".into())
            }
            StoreError::Plan(PlanError::Invalid(error)) => ApiError::Validation(error),
            StoreError::Plan(PlanError::OverBudget) => ApiError::Internal(anyhow::anyhow!("a merge budget escaped the write path")),
            StoreError::Plan(PlanError::ProgressNotFound) => ApiError::NotFound("progress"),
            StoreError::Plan(PlanError::MaterialExists) => ApiError::MaterialExists,
            StoreError::Plan(PlanError::ConflictNotFound) => ApiError::NotFound("conflict"),
            StoreError::Plan(PlanError::TooManyTags) => {
                ApiError::Validation(shelf_core::ValidationError::new("tags", "at most 50 tags"))
            }
            StoreError::Plan(PlanError::EditConflict(conflicts)) => ApiError::EditConflict(conflicts),
            StoreError::DuplicateMutation => ApiError::Internal(anyhow::anyhow!("unexpected duplicate mutation receipt")),
            StoreError::EmailTaken => ApiError::EmailTaken,
            // Only reachable if an account is deleted under a live session.
            StoreError::UserNotFound => ApiError::Unauthenticated,
            StoreError::ResyncRequired { .. } => ApiError::ResyncRequired,
            StoreError::UploadNotFound => ApiError::NotFound("upload"),
            StoreError::UploadLocked => ApiError::UploadLocked,
            StoreError::QuotaExceeded { quota } => ApiError::QuotaExceeded(quota),
            backend @ StoreError::Backend(_) => ApiError::Internal(anyhow::Error::new(backend)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        // Shed load is expected under a flood; one log line per refused request would add to it.
        if status.is_server_error() && !matches!(self, ApiError::Overloaded(_)) {
            // The cause chain goes to the log; the client gets a generic message.
            let cause: &dyn std::error::Error = &self;
            tracing::error!(error = %self, cause = ?std::error::Error::source(cause), "request failed");
        }
        let message = match &self {
            ApiError::BadRequest(_, message) | ApiError::Conflict(_, message) => message.clone(),
            other => other.to_string(),
        };
        let conflicts = match &self {
            ApiError::EditConflict(conflicts) => Some(conflicts.iter().map(Into::into).collect()),
            _ => None,
        };
        let mut response = (status, Json(ErrorBody { code, message, request_id: crate::request_id::current(), conflicts })).into_response();
        if let ApiError::RangeNotSatisfiable(size) = &self {
            // RFC 9110 §14.4: a 416 names the current length so the client can ask again.
            match HeaderValue::try_from(format!("bytes */{size}")) {
                Ok(value) => {
                    response.headers_mut().insert(header::CONTENT_RANGE, value);
                }
                // Digits and ASCII always make a header; if not, say so rather than drop it.
                Err(error) => tracing::error!(%error, size, "could not build Content-Range for a 416"),
            }
        }
        if let ApiError::RateLimited(after) | ApiError::Overloaded(after) = &self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(after.as_secs().max(1)));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
