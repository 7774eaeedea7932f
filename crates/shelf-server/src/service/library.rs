//! Library use cases: parse requests into mutations, apply them, announce committed versions.

use shelf_api::{CreateMaterialRequest, ProgressInput, UpdateMaterialRequest};
use shelf_bus::ChangeBus;
use shelf_core::{
    LibraryMutation, LibraryVersion, Material, MaterialBody, MaterialId, MaterialPatch, MaterialTitle, PercentComplete,
    Position, Progress, ProgressUpdate, Tags, UserId,
};
use shelf_store::{Applied, ChangesPage, Store};

use crate::error::{ApiError, ApiResult};
use crate::service::auth::now;

/// Applies one mutation and, once it has committed, announces the new version.
pub async fn apply(store: &dyn Store, bus: &dyn ChangeBus, user: UserId, mutation: LibraryMutation) -> ApiResult<Applied> {
    let applied = store.apply(user, &mutation, now()).await?;
    crate::metrics::recorded_conflicts(applied.conflicts.len());
    if applied.changed {
        bus.publish(user, applied.library_version);
    }
    Ok(applied)
}

pub fn parse_progress(input: &ProgressInput) -> ApiResult<ProgressUpdate> {
    Ok(ProgressUpdate {
        percent_complete: input.percent_complete.map(PercentComplete::parse).transpose()?,
        position: input.position.as_deref().map(Position::parse).transpose()?,
        study_seconds_delta: ProgressUpdate::parse_study_seconds_delta(input.study_seconds_delta)?,
        completed: input.completed,
        last_studied_at: input.last_studied_at.map(shelf_core::truncate_to_micros),
        reset: input.reset,
    })
}

pub fn parse_create(request: &CreateMaterialRequest) -> ApiResult<LibraryMutation> {
    let id = request.id.map(MaterialId).unwrap_or_default();
    parse_create_fields(id, &request.title, &request.body, &request.tags, request.progress.as_ref())
}

/// A create from its fields (REST body or queued `material.create`).
pub fn parse_create_fields(
    id: MaterialId,
    title: &str,
    body: &str,
    tags: &[String],
    progress: Option<&ProgressInput>,
) -> ApiResult<LibraryMutation> {
    Ok(LibraryMutation::CreateMaterial {
        id,
        title: MaterialTitle::parse(title)?,
        body: MaterialBody::parse(body)?,
        tags: Tags::parse(tags)?,
        progress: progress.map(parse_progress).transpose()?,
    })
}

pub fn parse_update(id: MaterialId, request: &UpdateMaterialRequest) -> ApiResult<LibraryMutation> {
    Ok(LibraryMutation::UpdateMaterial {
        id,
        patch: MaterialPatch {
            title: request.title.as_deref().map(MaterialTitle::parse).transpose()?,
            body: request.body.as_deref().map(MaterialBody::parse).transpose()?,
            tags: request.tags.as_deref().map(Tags::parse).transpose()?,
        },
        progress: request.progress.as_ref().map(parse_progress).transpose()?,
        base_version: None,
        on_conflict: shelf_core::OnConflict::Record,
    })
}

pub async fn material(store: &dyn Store, user: UserId, id: MaterialId) -> ApiResult<(Material, Option<Progress>)> {
    store.material(user, id).await?.ok_or(ApiError::NotFound("material"))
}

pub const DEFAULT_PAGE: u32 = 50;
pub const MAX_PAGE: u32 = 200;

pub async fn list(
    store: &dyn Store,
    user: UserId,
    cursor: Option<MaterialId>,
    limit: Option<u32>,
) -> ApiResult<(Vec<(Material, Option<Progress>)>, Option<MaterialId>)> {
    let limit = page_limit(limit, DEFAULT_PAGE, MAX_PAGE)?;
    let items = store.list_materials(user, cursor, limit).await?;
    let next = if items.len() == limit as usize { items.last().map(|(m, _)| m.id) } else { None };
    Ok((items, next))
}

pub const DEFAULT_CHANGES: u32 = 500;
pub const MAX_CHANGES: u32 = 1000;
/// A feed page stops at about this much entity data (always holding one whole version), so a
/// response stays bounded whatever the bodies weigh (1,000 × 1 MiB would be 1 GB).
pub const MAX_PAGE_BYTES: u64 = 4 * 1024 * 1024;

pub async fn changes(store: &dyn Store, user: UserId, since: Option<i64>, limit: Option<u32>) -> ApiResult<ChangesPage> {
    let limit = page_limit(limit, DEFAULT_CHANGES, MAX_CHANGES)?;
    let since = since.unwrap_or(0);
    if since < 0 {
        return Err(shelf_core::ValidationError::new("since", "must be 0 or a library version").into());
    }
    Ok(store.changes_since(user, LibraryVersion(since), limit, MAX_PAGE_BYTES).await?)
}

/// The dead-letter list's default and largest page, and how much of an entry's data rides in a
/// list (the rest is read one entry at a time): 200 × 16 KiB bounds a page at about 3 MiB.
pub const DEFAULT_REJECTED: u32 = 50;
pub const MAX_REJECTED: u32 = 200;
pub const REJECTED_INLINE_BYTES: u64 = 16 * 1024;

/// A page of the dead-letter list, and the cursor of the next one.
pub async fn rejected(
    store: &dyn Store,
    user: UserId,
    before: Option<uuid::Uuid>,
    limit: Option<u32>,
) -> ApiResult<(Vec<shelf_store::RejectedMutation>, Option<uuid::Uuid>)> {
    let limit = page_limit(limit, DEFAULT_REJECTED, MAX_REJECTED)?;
    let query = shelf_store::RejectedQuery { before, limit, inline_bytes: REJECTED_INLINE_BYTES };
    let items = store.rejected_mutations(user, query).await?;
    let next = if items.len() == limit as usize { items.last().map(|r| r.id) } else { None };
    Ok((items, next))
}

fn page_limit(limit: Option<u32>, default: u32, max: u32) -> ApiResult<u32> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(shelf_core::ValidationError::new("limit", format!("must be from 1 to {max}")).into()),
    }
}
