//! What the user sees: the server's state of a material with the device's unconfirmed edits
//! folded on top. Pure functions; the replica stores their result per material (`overlay`).
//!
//! The server stays authoritative: once the feed shows an edit's effect the edit leaves the
//! outbox and the fold is recomputed from the new server state, so whatever the merge rules made
//! of it (docs/sync-protocol.md) replaces this local approximation.

use serde::{Deserialize, Serialize};
use shelf_api::{ConflictFieldView, ConflictResolveData, MaterialFields, ProgressInput, ProgressView};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::mutation::LocalEdit;

/// One material as the device sees it (attachments are kept apart: the replica reads queued
/// `attachment.add` entries beside the server's attachments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaterialState {
    pub material: MaterialFields,
    pub progress: Option<ProgressView>,
}

/// A queued edit with the time it was made (so a recomputed fold gives the same timestamps).
#[derive(Debug, Clone)]
pub struct TimedEdit {
    pub edit: LocalEdit,
    pub at: OffsetDateTime,
}

/// Folds `edits` (oldest first) over the server's state. `None` means not visible: deleted
/// locally, or edits of a material this replica does not hold (the server will reject those).
pub fn fold(id: Uuid, server: Option<MaterialState>, edits: &[TimedEdit]) -> Option<MaterialState> {
    edits.iter().fold(server, |state, timed| apply(id, state, &timed.edit, timed.at))
}

fn apply(id: Uuid, state: Option<MaterialState>, edit: &LocalEdit, at: OffsetDateTime) -> Option<MaterialState> {
    match edit {
        LocalEdit::Create(data) => match state {
            // The server refuses a create of an existing id; until then keep what exists.
            Some(existing) => Some(existing),
            None => Some(MaterialState {
                material: MaterialFields {
                    id,
                    title: data.title.clone(),
                    body: data.body.clone(),
                    tags: data.tags.clone(),
                    created_at: at,
                    updated_at: at,
                    version: 0,
                    conflicts: Vec::new(),
                },
                progress: data.progress.as_ref().map(|input| apply_progress(id, None, input, at)),
            }),
        },
        LocalEdit::Update(request) => state.map(|mut s| {
            if let Some(title) = &request.title {
                s.material.title = title.clone();
            }
            if let Some(body) = &request.body {
                s.material.body = body.clone();
            }
            if let Some(tags) = &request.tags {
                s.material.tags = tags.clone();
            }
            if let Some(input) = &request.progress {
                s.progress = Some(apply_progress(id, s.progress.take(), input, at));
            }
            s.material.updated_at = at;
            s
        }),
        LocalEdit::Delete => None,
        LocalEdit::SetProgress(input) => state.map(|mut s| {
            s.progress = Some(apply_progress(id, s.progress.take(), input, at));
            s
        }),
        LocalEdit::DeleteProgress => state.map(|s| MaterialState { progress: None, ..s }),
        LocalEdit::AddTags(tags) => state.map(|mut s| {
            for tag in tags {
                if !s.material.tags.contains(tag) {
                    s.material.tags.push(tag.clone());
                }
            }
            s
        }),
        LocalEdit::RemoveTags(tags) => state.map(|mut s| {
            s.material.tags.retain(|t| !tags.contains(t));
            s
        }),
        // The server's and the device's texts live on the server; a new value is known here.
        LocalEdit::ResolveConflict(data) => state.map(|mut s| {
            let id = data.conflict_id();
            let field = s.material.conflicts.iter().find(|c| c.id == id).map(|c| c.field);
            s.material.conflicts.retain(|c| c.id != id);
            if let (ConflictResolveData::Custom { value, .. }, Some(field)) = (data, field) {
                match field {
                    ConflictFieldView::Title => s.material.title = value.clone(),
                    ConflictFieldView::Body => s.material.body = value.clone(),
                }
                s.material.updated_at = at;
            }
            s
        }),
        LocalEdit::AddAttachment(_) => state,
    }
}

/// The device's own edit applies as sent; study time adds.
fn apply_progress(id: Uuid, current: Option<ProgressView>, input: &ProgressInput, at: OffsetDateTime) -> ProgressView {
    let mut progress = current.unwrap_or(ProgressView {
        material_id: id,
        percent_complete: 0.0,
        position: String::new(),
        study_seconds: 0,
        completed: false,
        last_studied_at: None,
        version: 0,
    });
    if let Some(percent) = input.percent_complete {
        progress.percent_complete = percent;
    }
    if let Some(position) = &input.position {
        progress.position = position.clone();
    }
    if let Some(completed) = input.completed {
        progress.completed = completed;
    }
    progress.study_seconds += input.study_seconds_delta;
    progress.last_studied_at = Some(input.last_studied_at.unwrap_or(at));
    progress
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use shelf_api::{MaterialCreateData, UpdateMaterialRequest};

    fn create(title: &str) -> LocalEdit {
        LocalEdit::Create(MaterialCreateData { title: title.into(), body: "b".into(), tags: vec!["a".into()], progress: None })
    }

    fn timed(edit: LocalEdit) -> TimedEdit {
        TimedEdit { edit, at: OffsetDateTime::UNIX_EPOCH }
    }

    #[test]
    fn edits_fold_in_order_over_nothing() {
        let id = Uuid::now_v7();
        let update = LocalEdit::Update(UpdateMaterialRequest { title: Some("second".into()), ..Default::default() });
        let progress = ProgressInput { percent_complete: Some(40.0), study_seconds_delta: 30, ..Default::default() };
        let edits = [
            timed(create("first")),
            timed(update),
            timed(LocalEdit::AddTags(vec!["b".into(), "a".into()])),
            timed(LocalEdit::SetProgress(progress.clone())),
            timed(LocalEdit::SetProgress(progress)),
        ];
        let state = fold(id, None, &edits).unwrap();
        assert_eq!(state.material.title, "second");
        assert_eq!(state.material.tags, ["a", "b"]);
        let progress = state.progress.unwrap();
        assert_eq!(progress.study_seconds, 60, "study time adds");
        assert_eq!(progress.percent_complete, 40.0);
    }

    #[test]
    fn a_settled_conflict_leaves_the_view_and_a_custom_value_shows_at_once() {
        let id = Uuid::now_v7();
        let (conflict, other) = (Uuid::now_v7(), Uuid::now_v7());
        let summary = |id, field| shelf_api::ConflictSummaryView { id, field, base_version: 1, created_at: OffsetDateTime::UNIX_EPOCH };
        let mut server = fold(id, None, &[timed(create("t"))]).unwrap();
        server.material.conflicts = vec![summary(conflict, ConflictFieldView::Body), summary(other, ConflictFieldView::Title)];
        let custom = ConflictResolveData::Custom { conflict_id: conflict, value: "merged by hand".into() };
        let state = fold(id, Some(server.clone()), &[timed(LocalEdit::ResolveConflict(custom))]).unwrap();
        assert_eq!(state.material.body, "merged by hand");
        assert_eq!(state.material.conflicts, [summary(other, ConflictFieldView::Title)]);
        let keep_server = LocalEdit::ResolveConflict(ConflictResolveData::Server { conflict_id: other });
        let kept = fold(id, Some(server), &[timed(keep_server)]).unwrap();
        assert_eq!((kept.material.title.as_str(), kept.material.conflicts.len()), ("t", 1));
    }

    #[test]
    fn a_delete_hides_and_edits_of_unknown_materials_show_nothing() {
        let id = Uuid::now_v7();
        assert!(fold(id, None, &[timed(create("x")), timed(LocalEdit::Delete)]).is_none());
        assert!(fold(id, None, &[timed(LocalEdit::RemoveTags(vec!["a".into()]))]).is_none());
    }
}
