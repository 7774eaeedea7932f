//! The pure mutation planner: (current state, requested mutation) → rows to write.
//!
//! Stores call [`plan_mutation`] inside their transaction after locking the user's version row,
//! then write exactly what the plan says and bump the version once, or, for a no-op plan, write
//! nothing and leave the version alone (spec LV3: a request that changes nothing does not bump).

use time::OffsetDateTime;

use crate::ids::{LibraryVersion, MaterialId};
use crate::library::{Material, Progress};
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
    pub last_studied_at: Option<OffsetDateTime>,
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

/// Every change a client can make to a library.
#[derive(Debug, Clone, PartialEq)]
pub enum LibraryMutation {
    CreateMaterial {
        id: MaterialId,
        title: MaterialTitle,
        body: MaterialBody,
        tags: Tags,
        progress: Option<ProgressUpdate>,
    },
    UpdateMaterial { id: MaterialId, patch: MaterialPatch, progress: Option<ProgressUpdate> },
    DeleteMaterial { id: MaterialId },
    SetProgress { material_id: MaterialId, update: ProgressUpdate },
    DeleteProgress { material_id: MaterialId },
}

impl LibraryMutation {
    /// The material every mutation is about (progress is keyed by its material).
    pub fn material_id(&self) -> MaterialId {
        match self {
            LibraryMutation::CreateMaterial { id, .. }
            | LibraryMutation::UpdateMaterial { id, .. }
            | LibraryMutation::DeleteMaterial { id } => *id,
            LibraryMutation::SetProgress { material_id, .. }
            | LibraryMutation::DeleteProgress { material_id } => *material_id,
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
}

/// Plans `mutation` against the current material and progress rows (`None` = absent).
/// `next_version` is the version the change will commit at if the plan is not a no-op.
pub fn plan_mutation(
    material: Option<&Material>,
    progress: Option<&Progress>,
    mutation: &LibraryMutation,
    now: OffsetDateTime,
    next_version: LibraryVersion,
) -> Result<Plan, PlanError> {
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
            };
            // A leftover progress row cannot exist without its material, but plan defensively:
            // a new material starts from the initial progress or none at all.
            let progress = match initial {
                Some(update) => plan_progress(*id, None, update, now, next_version),
                None if progress.is_some() => Write::Delete,
                None => Write::Unchanged,
            };
            Ok(Plan { material: Write::Upsert(created), progress })
        }
        LibraryMutation::UpdateMaterial { patch, progress: update, .. } => {
            let current = material.ok_or(PlanError::MaterialNotFound)?;
            let material = plan_material_patch(current, patch, now, next_version);
            let progress = match update {
                Some(update) => plan_progress(current.id, progress, update, now, next_version),
                None => Write::Unchanged,
            };
            Ok(Plan { material, progress })
        }
        LibraryMutation::DeleteMaterial { .. } => {
            material.ok_or(PlanError::MaterialNotFound)?;
            let progress = if progress.is_some() { Write::Delete } else { Write::Unchanged };
            Ok(Plan { material: Write::Delete, progress })
        }
        LibraryMutation::SetProgress { material_id, update } => {
            material.ok_or(PlanError::MaterialNotFound)?;
            let progress = plan_progress(*material_id, progress, update, now, next_version);
            Ok(Plan { material: Write::Unchanged, progress })
        }
        LibraryMutation::DeleteProgress { .. } => {
            material.ok_or(PlanError::MaterialNotFound)?;
            progress.ok_or(PlanError::ProgressNotFound)?;
            Ok(Plan { material: Write::Unchanged, progress: Write::Delete })
        }
    }
}

fn plan_material_patch(
    current: &Material,
    patch: &MaterialPatch,
    now: OffsetDateTime,
    next_version: LibraryVersion,
) -> Write<Material> {
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
    let mut next = base.clone();
    if let Some(percent) = update.percent_complete {
        next.percent_complete = percent.value();
    }
    if let Some(position) = &update.position {
        next.position = position.as_str().to_owned();
    }
    next.study_seconds = next.study_seconds.saturating_add(update.study_seconds_delta);
    if let Some(completed) = update.completed {
        next.completed = completed;
    }
    let content_changed = next != base;
    if let Some(at) = update.last_studied_at {
        next.last_studied_at = Some(at);
    } else if content_changed {
        next.last_studied_at = Some(now);
    }
    if current.is_some() && next == base {
        return Write::Unchanged;
    }
    next.version = next_version;
    Write::Upsert(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-25 10:00 UTC);
    const V2: LibraryVersion = LibraryVersion(2);
    const V3: LibraryVersion = LibraryVersion(3);

    fn material(id: MaterialId) -> Material {
        Material {
            id,
            title: "Rust".into(),
            body: "ownership".into(),
            tags: vec!["cs".into()],
            created_at: NOW,
            updated_at: NOW,
            version: V2,
        }
    }

    fn create(id: MaterialId) -> LibraryMutation {
        LibraryMutation::CreateMaterial {
            id,
            title: MaterialTitle::parse("Rust").unwrap(),
            body: MaterialBody::parse("ownership").unwrap(),
            tags: Tags::parse(&["cs"]).unwrap(),
            progress: Some(ProgressUpdate { study_seconds_delta: 30, ..Default::default() }),
        }
    }

    #[test]
    fn create_writes_material_and_initial_progress_at_one_version() {
        let id = MaterialId::new();
        let plan = plan_mutation(None, None, &create(id), NOW, V2).unwrap();
        let Write::Upsert(m) = plan.material else { panic!("material not written") };
        let Write::Upsert(p) = plan.progress else { panic!("progress not written") };
        assert_eq!((m.version, p.version, p.study_seconds), (V2, V2, 30));
        assert_eq!(p.last_studied_at, Some(NOW));
    }

    #[test]
    fn create_over_existing_is_refused() {
        let id = MaterialId::new();
        let existing = material(id);
        assert_eq!(plan_mutation(Some(&existing), None, &create(id), NOW, V3), Err(PlanError::MaterialExists));
    }

    #[test]
    fn identical_patch_is_a_noop() {
        let id = MaterialId::new();
        let existing = material(id);
        let patch = MaterialPatch { title: Some(MaterialTitle::parse("Rust").unwrap()), ..Default::default() };
        let mutation = LibraryMutation::UpdateMaterial { id, patch, progress: None };
        assert!(plan_mutation(Some(&existing), None, &mutation, NOW, V3).unwrap().is_noop());
    }

    #[test]
    fn patch_changes_only_given_fields() {
        let id = MaterialId::new();
        let existing = material(id);
        let patch = MaterialPatch { body: Some(MaterialBody::parse("borrowing").unwrap()), ..Default::default() };
        let mutation = LibraryMutation::UpdateMaterial { id, patch, progress: None };
        let plan = plan_mutation(Some(&existing), None, &mutation, NOW, V3).unwrap();
        let Write::Upsert(m) = plan.material else { panic!() };
        assert_eq!((m.title.as_str(), m.body.as_str(), m.version), ("Rust", "borrowing", V3));
        assert!(plan.progress.is_unchanged());
    }

    #[test]
    fn delete_material_removes_its_progress() {
        let id = MaterialId::new();
        let existing = material(id);
        let progress = Progress {
            material_id: id,
            percent_complete: 10.0,
            position: "p1".into(),
            study_seconds: 5,
            completed: false,
            last_studied_at: None,
            version: V2,
        };
        let plan = plan_mutation(Some(&existing), Some(&progress), &LibraryMutation::DeleteMaterial { id }, NOW, V3).unwrap();
        assert_eq!(plan, Plan { material: Write::Delete, progress: Write::Delete });
    }

    #[test]
    fn study_seconds_accumulate_and_empty_update_is_noop() {
        let id = MaterialId::new();
        let existing = material(id);
        let progress = Progress {
            material_id: id,
            percent_complete: 10.0,
            position: "p1".into(),
            study_seconds: 5,
            completed: false,
            last_studied_at: None,
            version: V2,
        };
        let add = LibraryMutation::SetProgress {
            material_id: id,
            update: ProgressUpdate { study_seconds_delta: 7, ..Default::default() },
        };
        let Write::Upsert(p) = plan_mutation(Some(&existing), Some(&progress), &add, NOW, V3).unwrap().progress else {
            panic!()
        };
        assert_eq!(p.study_seconds, 12);
        let empty = LibraryMutation::SetProgress { material_id: id, update: ProgressUpdate::default() };
        assert!(plan_mutation(Some(&existing), Some(&progress), &empty, NOW, V3).unwrap().is_noop());
    }

    #[test]
    fn progress_needs_its_material() {
        let id = MaterialId::new();
        let set = LibraryMutation::SetProgress { material_id: id, update: ProgressUpdate::default() };
        assert_eq!(plan_mutation(None, None, &set, NOW, V2), Err(PlanError::MaterialNotFound));
        let existing = material(id);
        let delete = LibraryMutation::DeleteProgress { material_id: id };
        assert_eq!(plan_mutation(Some(&existing), None, &delete, NOW, V2), Err(PlanError::ProgressNotFound));
    }
}
