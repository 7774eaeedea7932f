//! The merge rules applied when an edit is older than the entity it changes (docs/sync-protocol.md).

use time::OffsetDateTime;

use crate::diff::Budget;
use crate::library::{Conflict, ConflictField, Material, MaterialBase, Progress};
use crate::merge::{merge_tags, merge_text, TextMerge};
use crate::mutation::{MaterialPatch, ProgressUpdate, Resolution};
use crate::plan::PlanError;
use crate::values::{MaterialBody, MaterialTitle, Tags};

/// The merge ran out of budget and the caller asked to be told rather than to record a conflict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deferred;

/// SY1–SY3: fields the device changed merge into the current material: different fields both
/// survive; one text field edited on both sides merges three-way against `base`, and where the
/// edits overlap the server's text stays and the device's is returned as a conflict; tags merge
/// as a set. Without a base (history pruned) any differing text is a conflict. A text merge that
/// exceeds `budget` is a conflict too, unless `defer` asks for [`Deferred`] instead.
pub fn merge_patch(
    current: &Material,
    base: Option<&MaterialBase>,
    patch: &MaterialPatch,
    (base_version, now): (crate::LibraryVersion, OffsetDateTime),
    budget: &mut Budget,
    defer: bool,
) -> Result<(Material, Vec<Conflict>), Deferred> {
    let mut next = current.clone();
    let mut conflicts = Vec::new();
    let conflict = |field: ConflictField, server: &str, device: &str| Conflict {
        id: uuid::Uuid::now_v7(),
        field,
        server_value: server.to_owned(),
        device_value: device.to_owned(),
        base_version: base_version.0,
        created_at: now,
    };
    let mut merge = |field: ConflictField, base_text: Option<&str>, ours: &str, theirs: &str| {
        let merged = match base_text {
            Some(b) => merge_text(b, ours, theirs, budget),
            None if theirs == ours => TextMerge::Clean(ours.to_owned()),
            None => TextMerge::Conflict,
        };
        match merged {
            TextMerge::OverBudget if defer => Err(Deferred),
            // A merged text must still be valid (e.g. not grown past the field's limit).
            TextMerge::Clean(text) if valid(field, &text) => Ok(Some(text)),
            _ => Ok(None),
        }
    };
    if let Some(title) = &patch.title {
        match merge(ConflictField::Title, base.map(|b| b.title.as_str()), &current.title, title.as_str())? {
            Some(text) => next.title = text,
            None => conflicts.push(conflict(ConflictField::Title, &current.title, title.as_str())),
        }
    }
    if let Some(body) = &patch.body {
        match merge(ConflictField::Body, base.map(|b| b.body.as_str()), &current.body, body.as_str())? {
            Some(text) => next.body = text,
            None => conflicts.push(conflict(ConflictField::Body, &current.body, body.as_str())),
        }
    }
    if let Some(tags) = &patch.tags {
        let base_tags = base.map_or(current.tags.as_slice(), |b| b.tags.as_slice());
        let mut merged = merge_tags(base_tags, &current.tags, tags.as_slice());
        merged.truncate(Tags::MAX_TAGS);
        next.tags = merged;
    }
    next.conflicts.extend(conflicts.iter().map(Conflict::summary));
    Ok((next, conflicts))
}

fn valid(field: ConflictField, text: &str) -> bool {
    match field {
        ConflictField::Title => MaterialTitle::parse(text).is_ok_and(|t| t.as_str() == text),
        ConflictField::Body => MaterialBody::parse(text).is_ok(),
    }
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

/// SY8: settles a recorded conflict: keep the server's value, take the device's, or a new value
/// (checked against the field's rules).
pub fn resolve(current: &Material, conflict: &Conflict, resolution: &Resolution) -> Result<Material, PlanError> {
    let index = current.conflicts.iter().position(|c| c.id == conflict.id).ok_or(PlanError::ConflictNotFound)?;
    let mut next = current.clone();
    next.conflicts.remove(index);
    let value = match resolution {
        Resolution::KeepServer => None,
        Resolution::TakeDevice => Some(conflict.device_value.clone()),
        Resolution::Custom(value) => Some(match conflict.field {
            ConflictField::Title => MaterialTitle::parse(value).map_err(PlanError::Invalid)?.as_str().to_owned(),
            ConflictField::Body => MaterialBody::parse(value).map_err(PlanError::Invalid)?.as_str().to_owned(),
        }),
    };
    if let Some(value) = value {
        match conflict.field {
            ConflictField::Title => next.title = value,
            ConflictField::Body => next.body = value,
        }
    }
    Ok(next)
}
