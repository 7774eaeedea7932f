//! The pure mutation planner: (the entity's current state, requested mutation) → rows to write.
//!
//! The store reads an [`EntityState`], calls [`plan_mutation`], and writes exactly what the plan
//! says, stamped with one new library version — or, for a no-op plan, nothing at all (spec LV3).
//! Planning is pure and may run outside the store's write lock (the store then checks that the
//! state it planned on is still current before writing); merge work is bounded by a budget.

use time::OffsetDateTime;

use crate::diff::Budget;
use crate::ids::{LibraryVersion, MaterialId};
use crate::library::{Attachment, Conflict, ConflictSummary, Material, MaterialBase, Progress};
use crate::mutation::{LibraryMutation, MaterialPatch, OnConflict, ProgressUpdate};
use crate::sync_rules;
use crate::values::{Tags, ValidationError};

/// Kept conflicts per material; a new one beyond this folds the oldest into the dead-letter list.
pub const MAX_CONFLICTS_PER_MATERIAL: usize = 20;

/// The version rows carry until [`Plan::stamp`] gives them the committed one.
const UNSTAMPED: LibraryVersion = LibraryVersion(0);

/// Everything a mutation's plan depends on, read by the store for one material.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EntityState {
    pub material: Option<Material>,
    pub progress: Option<Progress>,
    /// The material's attachments the mutation touches: all of them for a material delete, the
    /// named one for an attachment mutation, none otherwise.
    pub attachments: Vec<Attachment>,
    /// The material is absent because it was deleted (its tombstone is still in the feed).
    pub tombstone: bool,
    /// The material's fields as of the mutation's base version (for merging stale edits).
    pub base: Option<MaterialBase>,
    /// The conflict a `ResolveConflict` names, with its texts.
    pub conflict: Option<Conflict>,
    /// For `AddAttachment`: the size of the user's stored blob it names, if they hold it. Read
    /// under the user's lock, like the collector that deletes unreferenced blobs, so a blob
    /// cannot vanish between this check and the attachment row.
    pub blob_size: Option<i64>,
}

/// How much merge work a plan may do, and what happens when it is not enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeBudget {
    pub work: u64,
    /// True: give up with [`PlanError::OverBudget`] (the store plans again outside its lock).
    /// False: keep the device's text as a conflict.
    pub defer: bool,
}

impl MergeBudget {
    /// Small enough to run while the library writer is held (well under a millisecond).
    pub const IN_LOCK: MergeBudget = MergeBudget { work: 200_000, defer: true };
    /// The most any one merge may cost (tens of milliseconds), run outside the writer lock.
    pub const FULL: MergeBudget = MergeBudget { work: 8_000_000, defer: false };
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

#[derive(Debug, Clone, PartialEq)]
pub enum AttachmentWrite {
    Insert(Attachment),
    Delete(uuid::Uuid),
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConflictWrite {
    Insert(Conflict),
    /// Resolved, or gone with its material.
    Delete(uuid::Uuid),
    /// Over [`MAX_CONFLICTS_PER_MATERIAL`]: moved into the dead-letter list, never lost.
    Fold(uuid::Uuid),
}

/// A material a delete won over although it had changed since the deleting device saw it:
/// kept in the dead-letter list so the user can restore it.
#[derive(Debug, Clone, PartialEq)]
pub struct OverriddenMaterial {
    pub material: Material,
    pub progress: Option<Progress>,
}

/// The rows one mutation writes, all stamped with the same new library version.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub material: Write<Material>,
    pub progress: Write<Progress>,
    pub attachments: Vec<AttachmentWrite>,
    pub conflicts: Vec<ConflictWrite>,
    pub overridden: Option<OverriddenMaterial>,
    /// True when the edit was older than what it changed and went through the merge rules.
    pub merged: bool,
}

impl Plan {
    fn rows(material: Write<Material>, progress: Write<Progress>) -> Self {
        Plan { material, progress, attachments: Vec::new(), conflicts: Vec::new(), overridden: None, merged: false }
    }

    /// True when the mutation would change nothing: no write, no version bump.
    pub fn is_noop(&self) -> bool {
        self.material.is_unchanged() && self.progress.is_unchanged() && self.attachments.is_empty() && self.conflicts.is_empty()
    }

    /// Gives every written row the version the change commits at.
    pub fn stamp(&mut self, version: LibraryVersion) {
        if let Write::Upsert(m) = &mut self.material {
            m.version = version;
        }
        if let Write::Upsert(p) = &mut self.progress {
            p.version = version;
        }
        for write in &mut self.attachments {
            if let AttachmentWrite::Insert(a) = write {
                a.version = version;
            }
        }
    }

    /// Conflicts this mutation recorded.
    pub fn new_conflicts(&self) -> Vec<ConflictSummary> {
        let inserted = |w: &ConflictWrite| match w {
            ConflictWrite::Insert(c) => Some(c.summary()),
            _ => None,
        };
        self.conflicts.iter().filter_map(inserted).collect()
    }
}

/// Why a mutation cannot apply to the current state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("material not found")]
    MaterialNotFound,
    #[error("the material was deleted on another device")]
    MaterialDeleted,
    #[error("a material with this id already exists")]
    MaterialExists,
    #[error("this material has no progress")]
    ProgressNotFound,
    #[error("no such conflict on this material")]
    ConflictNotFound,
    #[error("no such attachment on this material")]
    AttachmentNotFound,
    #[error("an attachment with this id already exists")]
    AttachmentExists,
    #[error("the file is not uploaded: upload it first, then attach it")]
    BlobNotFound,
    #[error("a material has at most 50 tags")]
    TooManyTags,
    #[error(transparent)]
    Invalid(ValidationError),
    /// With [`OnConflict::Refuse`]: the edit overlaps a concurrent one; nothing was written.
    #[error("the edit overlaps a concurrent edit")]
    EditConflict(Vec<Conflict>),
    /// The merge needs more work than [`MergeBudget::IN_LOCK`]; plan again with more.
    #[error("the merge needs more work than this budget allows")]
    OverBudget,
}

/// Plans `mutation` against `state`. Rows are stamped with their version by [`Plan::stamp`].
pub fn plan_mutation(
    state: &EntityState,
    mutation: &LibraryMutation,
    now: OffsetDateTime,
    budget: MergeBudget,
) -> Result<Plan, PlanError> {
    let existing = || state.material.as_ref().ok_or(if state.tombstone { PlanError::MaterialDeleted } else { PlanError::MaterialNotFound });
    match mutation {
        LibraryMutation::CreateMaterial { id, title, body, tags, progress: initial } => {
            if state.material.is_some() {
                return Err(PlanError::MaterialExists);
            }
            let created = Material {
                id: *id,
                title: title.as_str().to_owned(),
                body: body.as_str().to_owned(),
                tags: tags.as_slice().to_vec(),
                created_at: now,
                updated_at: now,
                version: UNSTAMPED,
                conflicts: Vec::new(),
            };
            let progress = match initial {
                Some(update) => plan_progress(*id, None, update, false, now),
                // A progress row cannot outlive its material, but plan defensively: a new
                // material starts from its initial progress or none at all.
                None if state.progress.is_some() => Write::Delete,
                None => Write::Unchanged,
            };
            Ok(Plan::rows(Write::Upsert(created), progress))
        }
        LibraryMutation::UpdateMaterial { patch, progress: update, base_version, on_conflict, .. } => {
            let current = existing()?;
            plan_update(state, current, patch, update.as_ref(), (*base_version, *on_conflict), now, budget)
        }
        LibraryMutation::DeleteMaterial { base_version, .. } => {
            let current = existing()?;
            let mut plan = Plan::rows(Write::Delete, if state.progress.is_some() { Write::Delete } else { Write::Unchanged });
            plan.attachments = state.attachments.iter().map(|a| AttachmentWrite::Delete(a.id)).collect();
            plan.conflicts = current.conflicts.iter().map(|c| ConflictWrite::Delete(c.id)).collect();
            let last_change = current.version.max(state.progress.as_ref().map_or(current.version, |p| p.version));
            if base_version.is_some_and(|base| base < last_change) {
                plan.overridden = Some(OverriddenMaterial { material: current.clone(), progress: state.progress.clone() });
            }
            Ok(plan)
        }
        LibraryMutation::SetProgress { material_id, update, base_version } => {
            existing()?;
            let stale = stale_against(*base_version, state.progress.as_ref());
            let mut plan = Plan::rows(Write::Unchanged, plan_progress(*material_id, state.progress.as_ref(), update, stale, now));
            plan.merged = stale;
            Ok(plan)
        }
        LibraryMutation::DeleteProgress { .. } => {
            existing()?;
            state.progress.as_ref().ok_or(PlanError::ProgressNotFound)?;
            Ok(Plan::rows(Write::Unchanged, Write::Delete))
        }
        LibraryMutation::AddTags { tags, .. } | LibraryMutation::RemoveTags { tags, .. } => {
            let current = existing()?;
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
            Ok(Plan::rows(finish_material(current, next, now), Write::Unchanged))
        }
        LibraryMutation::ResolveConflict { conflict_id, resolution, .. } => {
            let current = existing()?;
            let conflict = state.conflict.as_ref().filter(|c| c.id == *conflict_id).ok_or(PlanError::ConflictNotFound)?;
            let next = sync_rules::resolve(current, conflict, resolution)?;
            let mut plan = Plan::rows(finish_material(current, next, now), Write::Unchanged);
            plan.conflicts.push(ConflictWrite::Delete(*conflict_id));
            Ok(plan)
        }
        LibraryMutation::AddAttachment { material_id, attachment } => {
            existing()?;
            if state.attachments.iter().any(|a| a.id == attachment.id) {
                return Err(PlanError::AttachmentExists);
            }
            match state.blob_size {
                None => return Err(PlanError::BlobNotFound),
                Some(size) if size != attachment.size => {
                    let message = format!("the uploaded file has {size} bytes, not {}", attachment.size);
                    return Err(PlanError::Invalid(ValidationError::new("size", message)));
                }
                Some(_) => {}
            }
            let mut plan = Plan::rows(Write::Unchanged, Write::Unchanged);
            plan.attachments.push(AttachmentWrite::Insert(Attachment {
                id: attachment.id,
                material_id: *material_id,
                sha256: attachment.sha256.as_str().to_owned(),
                filename: attachment.filename.as_str().to_owned(),
                content_type: attachment.content_type.as_str().to_owned(),
                size: attachment.size,
                created_at: now,
                version: UNSTAMPED,
            }));
            Ok(plan)
        }
        LibraryMutation::RemoveAttachment { material_id, attachment_id } => {
            existing()?;
            if !state.attachments.iter().any(|a| a.id == *attachment_id && a.material_id == *material_id) {
                return Err(PlanError::AttachmentNotFound);
            }
            let mut plan = Plan::rows(Write::Unchanged, Write::Unchanged);
            plan.attachments.push(AttachmentWrite::Delete(*attachment_id));
            Ok(plan)
        }
    }
}

fn plan_update(
    state: &EntityState,
    current: &Material,
    patch: &MaterialPatch,
    update: Option<&ProgressUpdate>,
    (base_version, on_conflict): (Option<LibraryVersion>, OnConflict),
    now: OffsetDateTime,
    budget: MergeBudget,
) -> Result<Plan, PlanError> {
    let material_stale = base_version.is_some_and(|b| b < current.version);
    let (next, conflicts) = if material_stale {
        let base_at = (base_version.unwrap_or(current.version), now);
        let mut work = Budget(budget.work);
        sync_rules::merge_patch(current, state.base.as_ref(), patch, base_at, &mut work, budget.defer)
            .map_err(|_| PlanError::OverBudget)?
    } else {
        (direct_patch(current, patch), Vec::new())
    };
    if !conflicts.is_empty() && on_conflict == OnConflict::Refuse {
        return Err(PlanError::EditConflict(conflicts));
    }
    let progress_stale = stale_against(base_version, state.progress.as_ref());
    let progress = match update {
        Some(update) => plan_progress(current.id, state.progress.as_ref(), update, progress_stale, now),
        None => Write::Unchanged,
    };
    let mut next = next;
    let folded = fold_oldest_conflicts(&mut next);
    let mut plan = Plan::rows(finish_material(current, next, now), progress);
    plan.merged = material_stale || progress_stale;
    plan.conflicts = conflicts.into_iter().map(ConflictWrite::Insert).chain(folded.into_iter().map(ConflictWrite::Fold)).collect();
    Ok(plan)
}

/// Keeps at most [`MAX_CONFLICTS_PER_MATERIAL`] conflicts; returns the ids of the oldest that go.
fn fold_oldest_conflicts(material: &mut Material) -> Vec<uuid::Uuid> {
    let excess = material.conflicts.len().saturating_sub(MAX_CONFLICTS_PER_MATERIAL);
    material.conflicts.drain(..excess).map(|c| c.id).collect()
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

/// Unchanged when nothing differs; otherwise stamped with the new time.
fn finish_material(current: &Material, mut next: Material, now: OffsetDateTime) -> Write<Material> {
    if next == *current {
        return Write::Unchanged;
    }
    next.updated_at = now;
    Write::Upsert(next)
}

fn plan_progress(
    material_id: MaterialId,
    current: Option<&Progress>,
    update: &ProgressUpdate,
    stale: bool,
    now: OffsetDateTime,
) -> Write<Progress> {
    let base = current.cloned().unwrap_or(Progress {
        material_id,
        percent_complete: 0.0,
        position: String::new(),
        study_seconds: 0,
        completed: false,
        last_studied_at: None,
        version: UNSTAMPED,
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
    Write::Upsert(next)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
