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
    pub sha256: String,
    /// 1 to 255 characters, no path separators.
    pub filename: String,
    /// A MIME type such as `application/pdf`.
    pub content_type: String,
    pub size: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachResponse {
    #[serde(flatten)]
    pub attachment: AttachmentView,
    pub library_version: i64,
}
