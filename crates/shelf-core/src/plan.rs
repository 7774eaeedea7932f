//! The pure mutation planner: (current state, requested mutation) → rows to write.
//!
//! Stores call [`plan_mutation`] inside their transaction after locking the user's version row,
//! then write exactly what the plan says and bump the version once, or, for a no-op plan, write
//! nothing and leave the version alone (spec LV3: a request that changes nothing does not bump).

use time::OffsetDateTime;

use crate::ids::{LibraryVersion, MaterialId};
use crate::library::{Conflict, Material, MaterialBase, Progress};
use crate::sync_rules;
use crate::values::{MaterialBody, MaterialTitle, PercentComplete, Position, Tags, ValidationError};

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
    /// A value the user wrote (already validated for the conflict's field).
    Custom(String),
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
    DeleteMaterial { id: MaterialId },
    SetProgress { material_id: MaterialId, update: ProgressUpdate, base_version: Option<LibraryVersion> },
    DeleteProgress { material_id: MaterialId },
    AddTags { id: MaterialId, tags: Tags },
    RemoveTags { id: MaterialId, tags: Tags },
    ResolveConflict { id: MaterialId, conflict_id: uuid::Uuid, resolution: Resolution },
}

impl LibraryMutation {
    /// The material every mutation is about (progress is keyed by its material).
    pub fn material_id(&self) -> MaterialId {
        match self {
            LibraryMutation::CreateMaterial { id, .. }
            | LibraryMutation::UpdateMaterial { id, .. }
            | LibraryMutation::DeleteMaterial { id }
            | LibraryMutation::AddTags { id, .. }
            | LibraryMutation::RemoveTags { id, .. }
            | LibraryMutation::ResolveConflict { id, .. } => *id,
            LibraryMutation::SetProgress { material_id, .. }
            | LibraryMutation::DeleteProgress { material_id } => *material_id,
        }
    }

    /// Raises the base version to at least `floor`: a device has always seen its own earlier
    /// edits, even when the `baseVersion` it sent predates them (edits queued offline in a row).
    pub fn raise_base_version(&mut self, floor: LibraryVersion) {
        match self {
            LibraryMutation::UpdateMaterial { base_version: Some(base), .. }
            | LibraryMutation::SetProgress { base_version: Some(base), .. } => *base = (*base).max(floor),
            _ => {}
        }
    }

    /// The version whose material fields the planner needs as a merge base, if any.
    pub fn base_version(&self) -> Option<LibraryVersion> {
        match self {
            LibraryMutation::UpdateMaterial { base_version, .. } => *base_version,
            _ => None,
        }
    }
}

/// What to do with one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Write<T> {
    Unchanged,
    Upsert(T),
    Delete,
}

impl<T> Write<T> {
    pub fn is_unchanged(&self) -> bool {
        matches!(self, Write::Unchanged)
    }
}

/// The rows one mutation writes, all stamped with the same new library version.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub material: Write<Material>,
    pub progress: Write<Progress>,
    /// True when the edit was older than what it changed and went through the merge rules.
    pub merged: bool,
    /// Conflicts this mutation recorded on the material.
    pub conflicts: Vec<Conflict>,
}

impl Plan {
    /// True when the mutation would change nothing: no write, no version bump.
    pub fn is_noop(&self) -> bool {
        self.material.is_unchanged() && self.progress.is_unchanged()
    }
}

/// Why a mutation cannot apply to the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("material not found")]
    MaterialNotFound,
    #[error("a material with this id already exists")]
    MaterialExists,
    #[error("this material has no progress")]
    ProgressNotFound,
    #[error("no such conflict on this material")]
    ConflictNotFound,
    #[error("a material has at most 50 tags")]
    TooManyTags,
    /// With [`OnConflict::Refuse`]: the edit overlaps a concurrent one; nothing was written.
    #[error("the edit overlaps a concurrent edit")]
    EditConflict(Vec<Conflict>),
}

/// Plans `mutation` against the current material and progress rows (`None` = absent).
/// `base` holds the material's fields as of the mutation's `base_version` when the store found
/// them (needed only for edits older than the material). `next_version` is the version the
/// change will commit at if the plan is not a no-op.
pub fn plan_mutation(
    material: Option<&Material>,
    progress: Option<&Progress>,
    base: Option<&MaterialBase>,
    mutation: &LibraryMutation,
    now: OffsetDateTime,
    next_version: LibraryVersion,
) -> Result<Plan, PlanError> {
    let plain = |material, progress| Plan { material, progress, merged: false, conflicts: Vec::new() };
    match mutation {
        LibraryMutation::CreateMaterial { id, title, body, tags, progress: initial } => {
            if material.is_some() {
                return Err(PlanError::MaterialExists);
            }
            let created = Material {
                id: *id,
                title: title.as_str().to_owned(),
                body: body.as_str().to_owned(),
                tags: tags.as_slice().to_vec(),
                created_at: now,
                updated_at: now,
                version: next_version,
                conflicts: Vec::new(),
            };
            // A leftover progress row cannot exist without its material, but plan defensively:
            // a new material starts from the initial progress or none at all.
            let progress = match initial {
                Some(update) => plan_progress(*id, None, update, false, now, next_version),
                None if progress.is_some() => Write::Delete,
                None => Write::Unchanged,
            };
            Ok(plain(Write::Upsert(created), progress))
        }
        LibraryMutation::UpdateMaterial { patch, progress: update, base_version, on_conflict, .. } => {
            let current = material.ok_or(PlanError::MaterialNotFound)?;
            let material_stale = base_version.is_some_and(|b| b < current.version);
            let (next, conflicts) = if material_stale {
                sync_rules::merge_patch(current, base, patch, base_version.unwrap_or(current.version), now)
            } else {
                (direct_patch(current, patch), Vec::new())
            };
            if !conflicts.is_empty() && *on_conflict == OnConflict::Refuse {
                return Err(PlanError::EditConflict(conflicts));
            }
            let progress_stale = stale_against(*base_version, progress);
            let progress = match update {
                Some(update) => plan_progress(current.id, progress, update, progress_stale, now, next_version),
                None => Write::Unchanged,
            };
            let mut plan = plain(finish_material(current, next, now, next_version), progress);
            plan.merged = material_stale || progress_stale;
            plan.conflicts = conflicts;
            Ok(plan)
        }
        LibraryMutation::DeleteMaterial { .. } => {
            material.ok_or(PlanError::MaterialNotFound)?;
            let progress = if progress.is_some() { Write::Delete } else { Write::Unchanged };
            Ok(plain(Write::Delete, progress))
        }
        LibraryMutation::SetProgress { material_id, update, base_version } => {
            material.ok_or(PlanError::MaterialNotFound)?;
            let stale = stale_against(*base_version, progress);
            let mut plan = plain(Write::Unchanged, plan_progress(*material_id, progress, update, stale, now, next_version));
            plan.merged = stale;
            Ok(plan)
        }
        LibraryMutation::DeleteProgress { .. } => {
            material.ok_or(PlanError::MaterialNotFound)?;
            progress.ok_or(PlanError::ProgressNotFound)?;
            Ok(plain(Write::Unchanged, Write::Delete))
        }
        LibraryMutation::AddTags { tags, .. } | LibraryMutation::RemoveTags { tags, .. } => {
            let current = material.ok_or(PlanError::MaterialNotFound)?;
            let mut next = current.clone();
            if matches!(mutation, LibraryMutation::AddTags { .. }) {
                for tag in tags.as_slice() {
                    if !next.tags.contains(tag) {
                        next.tags.push(tag.clone());
                    }
                }
                if next.tags.len() > Tags::MAX_TAGS {
                    return Err(PlanError::TooManyTags);
                }
            } else {
                next.tags.retain(|t| !tags.as_slice().contains(t));
            }
            Ok(plain(finish_material(current, next, now, next_version), Write::Unchanged))
        }
        LibraryMutation::ResolveConflict { conflict_id, resolution, .. } => {
            let current = material.ok_or(PlanError::MaterialNotFound)?;
            let next = sync_rules::resolve(current, *conflict_id, resolution)?;
            Ok(plain(finish_material(current, next, now, next_version), Write::Unchanged))
        }
    }
}

/// A progress change is stale when the device had not seen the progress's last change.
fn stale_against(base_version: Option<LibraryVersion>, progress: Option<&Progress>) -> bool {
    match (base_version, progress) {
        (Some(base), Some(p)) => base < p.version,
        _ => false,
    }
}

fn direct_patch(current: &Material, patch: &MaterialPatch) -> Material {
    let mut next = current.clone();
    if let Some(title) = &patch.title {
        next.title = title.as_str().to_owned();
    }
    if let Some(body) = &patch.body {
        next.body = body.as_str().to_owned();
    }
    if let Some(tags) = &patch.tags {
        next.tags = tags.as_slice().to_vec();
    }
    next
}

/// Unchanged when nothing differs; otherwise stamped with the new version and time.
fn finish_material(current: &Material, mut next: Material, now: OffsetDateTime, next_version: LibraryVersion) -> Write<Material> {
    if next == *current {
        return Write::Unchanged;
    }
    next.updated_at = now;
    next.version = next_version;
    Write::Upsert(next)
}

fn plan_progress(
    material_id: MaterialId,
    current: Option<&Progress>,
    update: &ProgressUpdate,
    stale: bool,
    now: OffsetDateTime,
    next_version: LibraryVersion,
) -> Write<Progress> {
    let base = current.cloned().unwrap_or(Progress {
        material_id,
        percent_complete: 0.0,
        position: String::new(),
        study_seconds: 0,
        completed: false,
        last_studied_at: None,
        version: next_version,
    });
    let studied_at = update.last_studied_at.map(|at| at.min(now));
    let mut next = if stale && !update.reset {
        sync_rules::merge_progress(&base, update, studied_at.unwrap_or(now))
    } else {
        let mut next = base.clone();
        if let Some(percent) = update.percent_complete {
            next.percent_complete = percent.value();
        }
        if let Some(position) = &update.position {
            next.position = position.as_str().to_owned();
        }
        if let Some(completed) = update.completed {
            next.completed = completed;
        }
        next
    };
    next.study_seconds = base.study_seconds.saturating_add(update.study_seconds_delta);
    let content_changed = next != base;
    if content_changed || studied_at.is_some() {
        let at = studied_at.unwrap_or(now);
        next.last_studied_at = Some(base.last_studied_at.map_or(at, |last| last.max(at)));
    }
    if current.is_some() && next == base {
        return Write::Unchanged;
    }
    next.version = next_version;
    Write::Upsert(next)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
