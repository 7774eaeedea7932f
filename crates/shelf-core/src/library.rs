//! The library's entities as stored and as sent to clients.

use time::OffsetDateTime;

use crate::ids::{LibraryVersion, MaterialId};

/// A study material. `version` is the library version of its last change.
#[derive(Debug, Clone, PartialEq)]
pub struct Material {
    pub id: MaterialId,
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub version: LibraryVersion,
    /// Edits that could not be merged, kept until the user resolves them (never dropped). Only
    /// their summaries travel with the material; the texts are read one conflict at a time, so a
    /// material with large conflicts stays cheap to read and write.
    pub conflicts: Vec<ConflictSummary>,
}

/// Which text field a conflict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConflictField {
    Title,
    Body,
}

impl ConflictField {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictField::Title => "title",
            ConflictField::Body => "body",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "title" => Some(ConflictField::Title),
            "body" => Some(ConflictField::Body),
            _ => None,
        }
    }
}

/// A conflict without its texts: what a material carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConflictSummary {
    pub id: uuid::Uuid,
    pub field: ConflictField,
    pub base_version: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A device's edit to a text field that overlapped a concurrent edit: the server's value stayed,
/// the device's value is kept here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub id: uuid::Uuid,
    pub field: ConflictField,
    /// The server's value when the conflict arose.
    pub server_value: String,
    /// The device's value, which did not apply.
    pub device_value: String,
    /// The library version the device had seen when it made the edit.
    pub base_version: i64,
    pub created_at: OffsetDateTime,
}

impl Conflict {
    pub fn summary(&self) -> ConflictSummary {
        ConflictSummary { id: self.id, field: self.field, base_version: self.base_version, created_at: self.created_at }
    }
}

/// A material's fields as of an older version: the base of a three-way merge.
#[derive(Debug, Clone, PartialEq)]
pub struct MaterialBase {
    pub title: String,
    pub body: String,
    pub tags: Vec<String>,
}

/// Study progress, at most one per material. `version` is the library version of its last change.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub material_id: MaterialId,
    pub percent_complete: f64,
    pub position: String,
    pub study_seconds: i64,
    pub completed: bool,
    pub last_studied_at: Option<OffsetDateTime>,
    pub version: LibraryVersion,
}

/// A file attached to a material; its bytes are the user's blob `sha256`.
#[derive(Debug, Clone, PartialEq)]
pub struct Attachment {
    pub id: uuid::Uuid,
    pub material_id: MaterialId,
    pub sha256: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub created_at: OffsetDateTime,
    /// The library version it was attached at.
    pub version: LibraryVersion,
}

/// What kind of entity a change-feed entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Material,
    Progress,
    Attachment,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Material => "material",
            ChangeKind::Progress => "progress",
            ChangeKind::Attachment => "attachment",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "material" => Some(ChangeKind::Material),
            "progress" => Some(ChangeKind::Progress),
            "attachment" => Some(ChangeKind::Attachment),
            _ => None,
        }
    }
}

/// Whether a change-feed entry carries the entity's latest state or is a tombstone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeOp {
    Upsert,
    Delete,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Upsert => "upsert",
            ChangeOp::Delete => "delete",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "upsert" => Some(ChangeOp::Upsert),
            "delete" => Some(ChangeOp::Delete),
            _ => None,
        }
    }
}
