//! The merge rules applied when an edit is older than the entity it changes (docs/sync-protocol.md).

use time::OffsetDateTime;

use crate::library::{Conflict, Material, MaterialBase, Progress};
use crate::merge::{merge_tags, merge_text, TextMerge};
use crate::plan::{MaterialPatch, PlanError, ProgressUpdate, Resolution};
use crate::values::{MaterialTitle, Tags};

/// SY1–SY3: fields the device changed merge into the current material: different fields both
/// survive; one text field edited on both sides merges three-way against `base`, and where the
/// edits overlap the server's text stays and the device's is returned as a conflict; tags merge
/// as a set. Without a base (history pruned) any differing text is a conflict.
pub fn merge_patch(
    current: &Material,
    base: Option<&MaterialBase>,
    patch: &MaterialPatch,
    base_version: crate::LibraryVersion,
    now: OffsetDateTime,
) -> (Material, Vec<Conflict>) {
    let mut next = current.clone();
    let mut conflicts = Vec::new();
    let conflict = |field: &str, server: &str, device: &str| Conflict {
        id: uuid::Uuid::now_v7(),
        field: field.to_owned(),
        server_value: server.to_owned(),
        device_value: device.to_owned(),
        base_version: base_version.0,
        created_at: now,
    };
    if let Some(title) = &patch.title {
        let merged = match base {
            Some(b) => merge_text(&b.title, &current.title, title.as_str()),
            None if title.as_str() == current.title => TextMerge::Clean(current.title.clone()),
            None => TextMerge::Conflict,
        };
        // A merged title must still be a valid title (e.g. not grown past 500 characters).
        match merged {
            TextMerge::Clean(t) if MaterialTitle::parse(&t).is_ok() => next.title = t,
            _ => conflicts.push(conflict("title", &current.title, title.as_str())),
        }
    }
    if let Some(body) = &patch.body {
        let merged = match base {
            Some(b) => merge_text(&b.body, &current.body, body.as_str()),
            None if body.as_str() == current.body => TextMerge::Clean(current.body.clone()),
            None => TextMerge::Conflict,
        };
        match merged {
            TextMerge::Clean(b) if b.len() <= crate::MaterialBody::MAX_BYTES => next.body = b,
            _ => conflicts.push(conflict("body", &current.body, body.as_str())),
        }
    }
    if let Some(tags) = &patch.tags {
        let base_tags = base.map_or(current.tags.as_slice(), |b| b.tags.as_slice());
        let mut merged = merge_tags(base_tags, &current.tags, tags.as_slice());
        merged.truncate(Tags::MAX_TAGS);
        next.tags = merged;
    }
    next.conflicts.extend(conflicts.iter().cloned());
    (next, conflicts)
}

/// SY4–SY7: a stale device's progress never moves `percentComplete` backwards, never un-completes,
/// and moves `position` only if its study session is at least as recent as the stored one
/// (its time capped at the server's receive time). Study seconds are added by the caller.
pub fn merge_progress(current: &Progress, update: &ProgressUpdate, studied_at: OffsetDateTime) -> Progress {
    let mut next = current.clone();
    if let Some(percent) = update.percent_complete {
        next.percent_complete = next.percent_complete.max(percent.value());
    }
    if update.completed == Some(true) {
        next.completed = true;
    }
    if let Some(position) = &update.position {
        if current.last_studied_at.is_none_or(|last| studied_at >= last) {
            next.position = position.as_str().to_owned();
        }
    }
    next
}

/// SY8: settles a recorded conflict: keep the server's value, take the device's, or a new value.
pub fn resolve(current: &Material, conflict_id: uuid::Uuid, resolution: &Resolution) -> Result<Material, PlanError> {
    let index = current.conflicts.iter().position(|c| c.id == conflict_id).ok_or(PlanError::ConflictNotFound)?;
    let mut next = current.clone();
    let conflict = next.conflicts.remove(index);
    let value = match resolution {
        Resolution::KeepServer => None,
        Resolution::TakeDevice => Some(conflict.device_value),
        Resolution::Custom(value) => Some(value.clone()),
    };
    if let Some(value) = value {
        match conflict.field.as_str() {
            "title" => next.title = value,
            _ => next.body = value,
        }
    }
    Ok(next)
}
