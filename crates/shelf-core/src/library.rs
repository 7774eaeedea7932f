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

/// What kind of entity a change-feed entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    Material,
    Progress,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Material => "material",
            ChangeKind::Progress => "progress",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "material" => Some(ChangeKind::Material),
            "progress" => Some(ChangeKind::Progress),
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
