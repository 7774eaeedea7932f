//! Attachments: files of a material, uploaded with tus and addressed by SHA-256.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A file attached to a material (also the `data` of an `attachment` change in the feed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentView {
    pub id: Uuid,
    pub material_id: Uuid,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    /// The library version it was attached at.
    pub version: i64,
}

impl From<&shelf_core::Attachment> for AttachmentView {
    fn from(a: &shelf_core::Attachment) -> Self {
        Self {
            id: a.id,
            material_id: a.material_id.0,
            sha256: a.sha256.clone(),
            filename: a.filename.clone(),
            content_type: a.content_type.clone(),
            size: a.size,
            created_at: a.created_at,
            version: a.version.0,
        }
    }
}

/// Attach a blob the user already uploaded (`HEAD /api/blobs/{sha256}` answers 200).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttachRequest {
    /// 64 lower-case hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub sha256: String,
    /// 1 to 255 characters, no path separators.
    #[schema(min_length = 1, max_length = 255, pattern = "^[^/\\\\\\u0000]*[^/\\\\\\u0000\\t\\n\\u000b\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^/\\\\\\u0000]*$")]
    pub filename: String,
    /// A MIME type such as `application/pdf`.
    #[schema(max_length = 255, pattern = "^[ -.0-~]+/[ -~]+$")]
    pub content_type: String,
    #[serde(deserialize_with = "crate::int::i64")]
    #[schema(minimum = 0)]
    pub size: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachResponse {
    #[serde(flatten)]
    pub attachment: AttachmentView,
    pub library_version: i64,
}
