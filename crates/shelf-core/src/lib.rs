//! Shelf's domain model, with no I/O and no async.
//!
//! Everything that decides *what* a library change is lives here: identifiers, validated values
//! (parsed once at the edge, trusted afterwards), the material and progress entities, and the
//! pure planner that turns a requested mutation plus the current state into the rows to write.
//! Stores execute plans; they never decide them. That keeps the rules identical on every backend.

pub mod ids;
pub mod library;
pub mod merge;
pub mod plan;
mod sync_rules;
pub mod values;

pub use ids::{DeviceId, Epoch, LibraryVersion, MaterialId, UserId};
pub use library::{Attachment, ChangeKind, ChangeOp, Conflict, Material, MaterialBase, Progress};
pub use plan::{
    plan_mutation, LibraryMutation, MaterialPatch, OnConflict, Plan, PlanError, ProgressUpdate, Resolution, Write,
};
pub use values::{
    DeviceName, Email, MaterialBody, MaterialTitle, Password, PercentComplete, Position, Tags,
    ValidationError, truncate_to_micros,
};
