//! Why a mutation from a device's queue was not applied: the codes of the dead-letter list.

use crate::plan::PlanError;

/// A rejected mutation's code, as clients see it in results and in the dead-letter list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionCode {
    ValidationFailed,
    NotFound,
    MaterialExists,
    AttachmentExists,
    /// The material was deleted on another device; the edit is kept to restore.
    Deleted,
    EditConflict,
    /// More unresolved conflicts than a material keeps; the oldest moved here.
    ConflictOverflow,
}

impl RejectionCode {
    pub const ALL: [RejectionCode; 7] = [
        RejectionCode::ValidationFailed,
        RejectionCode::NotFound,
        RejectionCode::MaterialExists,
        RejectionCode::AttachmentExists,
        RejectionCode::Deleted,
        RejectionCode::EditConflict,
        RejectionCode::ConflictOverflow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectionCode::ValidationFailed => "validation_failed",
            RejectionCode::NotFound => "not_found",
            RejectionCode::MaterialExists => "material_exists",
            RejectionCode::AttachmentExists => "attachment_exists",
            RejectionCode::Deleted => "deleted",
            RejectionCode::EditConflict => "edit_conflict",
            RejectionCode::ConflictOverflow => "conflict_overflow",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == raw)
    }
}

impl PlanError {
    /// The code a device sees when this error rejects one of its queued mutations.
    pub fn rejection_code(&self) -> RejectionCode {
        match self {
            PlanError::MaterialNotFound
            | PlanError::ProgressNotFound
            | PlanError::ConflictNotFound
            | PlanError::AttachmentNotFound
            | PlanError::BlobNotFound => {
                RejectionCode::NotFound
            }
            PlanError::MaterialDeleted => RejectionCode::Deleted,
            PlanError::MaterialExists => RejectionCode::MaterialExists,
            PlanError::AttachmentExists => RejectionCode::AttachmentExists,
            PlanError::TooManyTags | PlanError::Invalid(_) | PlanError::OverBudget => RejectionCode::ValidationFailed,
            PlanError::EditConflict(_) => RejectionCode::EditConflict,
        }
    }

    /// What the device's user reads next to the rejected edit.
    pub fn rejection_message(&self) -> String {
        match self {
            PlanError::MaterialDeleted => "the material was deleted on another device; the edit is kept here to restore".to_owned(),
            other => other.to_string(),
        }
    }
}
