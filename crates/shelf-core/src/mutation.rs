//! Every change a client can make to a library, already validated (parsed at the edge).

use time::OffsetDateTime;

use crate::ids::{LibraryVersion, MaterialId};
use crate::values::{ContentType, FileName, MaterialBody, MaterialTitle, PercentComplete, Position, Sha256Hex, Tags, ValidationError};

/// A change to a material's progress. Absent fields keep their value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProgressUpdate {
    pub percent_complete: Option<PercentComplete>,
    pub position: Option<Position>,
    /// Seconds studied since the last update; added to the stored counter.
    pub study_seconds_delta: i64,
    pub completed: Option<bool>,
    /// When the study happened; defaults to the server's receive time when something changed.
    /// Never later than the server's receive time (device clocks are not trusted beyond it).
    pub last_studied_at: Option<OffsetDateTime>,
    /// An explicit reset: `percentComplete` may go down and `completed` may become false even
    /// when the device's view is stale.
    pub reset: bool,
}

impl ProgressUpdate {
    /// At most a year of study per update; refuses negative deltas, which would let a stale or
    /// buggy device erase other devices' study time.
    pub const MAX_STUDY_SECONDS_DELTA: i64 = 366 * 24 * 3600;

    pub fn parse_study_seconds_delta(raw: i64) -> Result<i64, ValidationError> {
        if !(0..=Self::MAX_STUDY_SECONDS_DELTA).contains(&raw) {
            return Err(ValidationError::new("studySecondsDelta", "must be from 0 to 31622400 seconds"));
        }
        Ok(raw)
    }
}

/// A partial change to a material. Absent fields keep their value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MaterialPatch {
    pub title: Option<MaterialTitle>,
    pub body: Option<MaterialBody>,
    pub tags: Option<Tags>,
}

/// What to do when an edit made against an older version overlaps a concurrent edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Keep the server's value and record the device's as a conflict on the material (sync).
    #[default]
    Record,
    /// Change nothing and report the conflict (REST `If-Match`: the client decides).
    Refuse,
}

/// How the user settles a recorded conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    KeepServer,
    TakeDevice,
    /// A value the user wrote; checked against the conflict's field when planned.
    Custom(String),
}

/// A blob the user uploaded, to attach to a material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttachment {
    pub id: uuid::Uuid,
    pub sha256: Sha256Hex,
    pub filename: FileName,
    pub content_type: ContentType,
    pub size: i64,
}

/// Every change a client can make to a library. `base_version` is the library version the
/// device had seen when it made the edit; an edit older than the entity is merged (merge.rs).
#[derive(Debug, Clone, PartialEq)]
pub enum LibraryMutation {
    CreateMaterial {
        id: MaterialId,
        title: MaterialTitle,
        body: MaterialBody,
        tags: Tags,
        progress: Option<ProgressUpdate>,
    },
    UpdateMaterial {
        id: MaterialId,
        patch: MaterialPatch,
        progress: Option<ProgressUpdate>,
        base_version: Option<LibraryVersion>,
        on_conflict: OnConflict,
    },
    /// A delete older than the material's last change still wins; the overridden material is
    /// kept in the dead-letter list.
    DeleteMaterial { id: MaterialId, base_version: Option<LibraryVersion> },
    SetProgress { material_id: MaterialId, update: ProgressUpdate, base_version: Option<LibraryVersion> },
    DeleteProgress { material_id: MaterialId },
    AddTags { id: MaterialId, tags: Tags },
    RemoveTags { id: MaterialId, tags: Tags },
    ResolveConflict { id: MaterialId, conflict_id: uuid::Uuid, resolution: Resolution },
    AddAttachment { material_id: MaterialId, attachment: NewAttachment },
    RemoveAttachment { material_id: MaterialId, attachment_id: uuid::Uuid },
}

/// The kinds of mutation, as named on the wire (`material.create`, …) and in the dead-letter list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MutationKind {
    MaterialCreate,
    MaterialUpdate,
    MaterialDelete,
    ProgressSet,
    ProgressDelete,
    TagsAdd,
    TagsRemove,
    ConflictResolve,
    AttachmentAdd,
    AttachmentRemove,
}

impl MutationKind {
    pub const ALL: [MutationKind; 10] = [
        MutationKind::MaterialCreate,
        MutationKind::MaterialUpdate,
        MutationKind::MaterialDelete,
        MutationKind::ProgressSet,
        MutationKind::ProgressDelete,
        MutationKind::TagsAdd,
        MutationKind::TagsRemove,
        MutationKind::ConflictResolve,
        MutationKind::AttachmentAdd,
        MutationKind::AttachmentRemove,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MutationKind::MaterialCreate => "material.create",
            MutationKind::MaterialUpdate => "material.update",
            MutationKind::MaterialDelete => "material.delete",
            MutationKind::ProgressSet => "progress.set",
            MutationKind::ProgressDelete => "progress.delete",
            MutationKind::TagsAdd => "tags.add",
            MutationKind::TagsRemove => "tags.remove",
            MutationKind::ConflictResolve => "conflict.resolve",
            MutationKind::AttachmentAdd => "attachment.add",
            MutationKind::AttachmentRemove => "attachment.remove",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == raw)
    }
}

impl LibraryMutation {
    /// The material every mutation is about (progress and attachments are keyed by it).
    pub fn material_id(&self) -> MaterialId {
        match self {
            LibraryMutation::CreateMaterial { id, .. }
            | LibraryMutation::UpdateMaterial { id, .. }
            | LibraryMutation::DeleteMaterial { id, .. }
            | LibraryMutation::AddTags { id, .. }
            | LibraryMutation::RemoveTags { id, .. }
            | LibraryMutation::ResolveConflict { id, .. } => *id,
            LibraryMutation::SetProgress { material_id, .. }
            | LibraryMutation::DeleteProgress { material_id }
            | LibraryMutation::AddAttachment { material_id, .. }
            | LibraryMutation::RemoveAttachment { material_id, .. } => *material_id,
        }
    }

    pub fn kind(&self) -> MutationKind {
        match self {
            LibraryMutation::CreateMaterial { .. } => MutationKind::MaterialCreate,
            LibraryMutation::UpdateMaterial { .. } => MutationKind::MaterialUpdate,
            LibraryMutation::DeleteMaterial { .. } => MutationKind::MaterialDelete,
            LibraryMutation::SetProgress { .. } => MutationKind::ProgressSet,
            LibraryMutation::DeleteProgress { .. } => MutationKind::ProgressDelete,
            LibraryMutation::AddTags { .. } => MutationKind::TagsAdd,
            LibraryMutation::RemoveTags { .. } => MutationKind::TagsRemove,
            LibraryMutation::ResolveConflict { .. } => MutationKind::ConflictResolve,
            LibraryMutation::AddAttachment { .. } => MutationKind::AttachmentAdd,
            LibraryMutation::RemoveAttachment { .. } => MutationKind::AttachmentRemove,
        }
    }

    /// The version the device had seen, for mutations whose outcome depends on it.
    pub fn base_version(&self) -> Option<LibraryVersion> {
        match self {
            LibraryMutation::UpdateMaterial { base_version, .. }
            | LibraryMutation::DeleteMaterial { base_version, .. }
            | LibraryMutation::SetProgress { base_version, .. } => *base_version,
            _ => None,
        }
    }

    /// Raises the base version to at least `floor`: a device has always seen its own earlier
    /// edits, even when the `baseVersion` it sent predates them (edits queued offline in a row).
    pub fn raise_base_version(&mut self, floor: LibraryVersion) {
        match self {
            LibraryMutation::UpdateMaterial { base_version: Some(base), .. }
            | LibraryMutation::DeleteMaterial { base_version: Some(base), .. }
            | LibraryMutation::SetProgress { base_version: Some(base), .. } => *base = (*base).max(floor),
            _ => {}
        }
    }

    /// The version whose material fields the planner needs as a merge base, if any.
    pub fn merge_base_version(&self) -> Option<LibraryVersion> {
        match self {
            LibraryMutation::UpdateMaterial { base_version, patch, .. } if patch.title.is_some() || patch.body.is_some() || patch.tags.is_some() => *base_version,
            _ => None,
        }
    }
}
