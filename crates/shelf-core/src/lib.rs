//! Shelf's domain model, with no I/O and no async.
//!
//! Everything that decides *what* a library change is lives here: identifiers, validated values
//! (parsed once at the edge, trusted afterwards), the material and progress entities, and the
//! pure planner that turns a requested mutation plus the current state into the rows to write.
//! Stores execute plans; they never decide them. That keeps the rules identical on every backend.

pub mod diff;
pub mod ids;
pub mod library;
pub mod merge;
pub mod mutation;
pub mod plan;
pub mod rejection;
mod sync_rules;
pub mod values;

pub use ids::{DeviceId, Epoch, LibraryVersion, MaterialId, UserId};
pub use library::{Attachment, ChangeKind, ChangeOp, Conflict, ConflictField, ConflictSummary, Material, MaterialBase, Progress};
pub use mutation::{LibraryMutation, MaterialPatch, MutationKind, NewAttachment, OnConflict, ProgressUpdate, Resolution};
pub use plan::{
    plan_mutation, AttachmentWrite, ConflictWrite, EntityState, MergeBudget, OverriddenMaterial, Plan, PlanError, Write,
    MAX_CONFLICTS_PER_MATERIAL,
};
pub use rejection::RejectionCode;
pub use values::{
    truncate_to_micros, ContentType, DeviceName, Email, FileName, MaterialBody, MaterialTitle, Password, PercentComplete,
    Position, Sha256Hex, Tags, ValidationError,
};
