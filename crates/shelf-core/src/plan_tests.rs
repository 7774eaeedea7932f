//! Tests of the planner and of the sync merge rules (docs/sync-protocol.md), with mirror images.
use super::*;
use crate::library::ConflictField;
use crate::mutation::Resolution;
use crate::values::{MaterialBody, MaterialTitle};
use crate::values::{PercentComplete, Position};
use time::macros::datetime;

/// The planner's input with just a material, its progress and a merge base.
fn st(material: Option<&Material>, progress: Option<&Progress>, base: Option<&MaterialBase>) -> EntityState {
    EntityState { material: material.cloned(), progress: progress.cloned(), base: base.cloned(), ..Default::default() }
}

/// Plans with the full merge budget and stamps the rows with `version`.
fn plan_at(state: EntityState, mutation: &LibraryMutation, now: OffsetDateTime, version: LibraryVersion) -> Result<Plan, PlanError> {
    let mut plan = plan_mutation(&state, mutation, now, MergeBudget::FULL)?;
    plan.stamp(version);
    Ok(plan)
}

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
        conflicts: Vec::new(),
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
    let plan = plan_at(st(None, None, None), &create(id), NOW, V2).unwrap();
    let Write::Upsert(m) = plan.material else { panic!("material not written") };
    let Write::Upsert(p) = plan.progress else { panic!("progress not written") };
    assert_eq!((m.version, p.version, p.study_seconds), (V2, V2, 30));
    assert_eq!(p.last_studied_at, Some(NOW));
}

#[test]
fn create_over_existing_is_refused() {
    let id = MaterialId::new();
    let existing = material(id);
    assert_eq!(plan_at(st(Some(&existing), None, None), &create(id), NOW, V3), Err(PlanError::MaterialExists));
}

#[test]
fn identical_patch_is_a_noop() {
    let id = MaterialId::new();
    let existing = material(id);
    let patch = MaterialPatch { title: Some(MaterialTitle::parse("Rust").unwrap()), ..Default::default() };
    let mutation = LibraryMutation::UpdateMaterial { id, patch, progress: None, base_version: None, on_conflict: OnConflict::Record };
    assert!(plan_at(st(Some(&existing), None, None), &mutation, NOW, V3).unwrap().is_noop());
}

#[test]
fn patch_changes_only_given_fields() {
    let id = MaterialId::new();
    let existing = material(id);
    let patch = MaterialPatch { body: Some(MaterialBody::parse("borrowing").unwrap()), ..Default::default() };
    let mutation = LibraryMutation::UpdateMaterial { id, patch, progress: None, base_version: None, on_conflict: OnConflict::Record };
    let plan = plan_at(st(Some(&existing), None, None), &mutation, NOW, V3).unwrap();
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
    let plan = plan_at(st(Some(&existing), Some(&progress), None), &LibraryMutation::DeleteMaterial { id, base_version: None }, NOW, V3).unwrap();
    assert_eq!((plan.material, plan.progress), (Write::Delete, Write::Delete));
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
        base_version: None,
    };
    let Write::Upsert(p) = plan_at(st(Some(&existing), Some(&progress), None), &add, NOW, V3).unwrap().progress else {
        panic!()
    };
    assert_eq!(p.study_seconds, 12);
    let empty = LibraryMutation::SetProgress { material_id: id, update: ProgressUpdate::default(), base_version: None };
    assert!(plan_at(st(Some(&existing), Some(&progress), None), &empty, NOW, V3).unwrap().is_noop());
}

#[test]
fn progress_needs_its_material() {
    let id = MaterialId::new();
    let set = LibraryMutation::SetProgress { material_id: id, update: ProgressUpdate::default(), base_version: None };
    assert_eq!(plan_at(st(None, None, None), &set, NOW, V2), Err(PlanError::MaterialNotFound));
    let existing = material(id);
    let delete = LibraryMutation::DeleteProgress { material_id: id };
    assert_eq!(plan_at(st(Some(&existing), None, None), &delete, NOW, V2), Err(PlanError::ProgressNotFound));
}

fn progress_at(id: MaterialId, percent: f64, position: &str, version: LibraryVersion) -> Progress {
    Progress {
        material_id: id,
        percent_complete: percent,
        position: position.into(),
        study_seconds: 100,
        completed: true,
        last_studied_at: Some(NOW),
        version,
    }
}

fn stale_update(id: MaterialId, update: ProgressUpdate) -> LibraryMutation {
    LibraryMutation::SetProgress { material_id: id, update, base_version: Some(LibraryVersion(1)) }
}

#[test]
fn sy4_stale_progress_never_goes_backwards_but_a_reset_does() {
    let id = MaterialId::new();
    let existing = material(id);
    let progress = progress_at(id, 60.0, "p60", V2);
    let update = ProgressUpdate {
        percent_complete: Some(PercentComplete::parse(30.0).unwrap()),
        completed: Some(false),
        study_seconds_delta: 5,
        ..Default::default()
    };
    let plan = plan_at(st(Some(&existing), Some(&progress), None), &stale_update(id, update.clone()), NOW, V3).unwrap();
    let Write::Upsert(p) = plan.progress else { panic!() };
    assert_eq!((p.percent_complete, p.completed, p.study_seconds), (60.0, true, 105));
    assert!(plan.merged);
    let reset = ProgressUpdate { reset: true, ..update };
    let plan = plan_at(st(Some(&existing), Some(&progress), None), &stale_update(id, reset), NOW, V3).unwrap();
    let Write::Upsert(p) = plan.progress else { panic!() };
    assert_eq!((p.percent_complete, p.completed), (30.0, false));
    // Mirror: a stale device reporting more progress moves it forward.
    let ahead = ProgressUpdate { percent_complete: Some(PercentComplete::parse(90.0).unwrap()), ..Default::default() };
    let plan = plan_at(st(Some(&existing), Some(&progress), None), &stale_update(id, ahead), NOW, V3).unwrap();
    let Write::Upsert(p) = plan.progress else { panic!() };
    assert_eq!(p.percent_complete, 90.0);
}

#[test]
fn sy6_position_follows_the_most_recent_session_capped_at_receive_time() {
    let id = MaterialId::new();
    let existing = material(id);
    let progress = progress_at(id, 10.0, "recent", V2);
    let older = ProgressUpdate {
        position: Some(Position::parse("old").unwrap()),
        last_studied_at: Some(NOW - time::Duration::hours(1)),
        ..Default::default()
    };
    let plan = plan_at(st(Some(&existing), Some(&progress), None), &stale_update(id, older), NOW, V3).unwrap();
    assert!(plan.progress.is_unchanged(), "an older session does not move the position");
    let future = ProgressUpdate {
        position: Some(Position::parse("newer").unwrap()),
        last_studied_at: Some(NOW + time::Duration::days(365)),
        ..Default::default()
    };
    let later = NOW + time::Duration::minutes(1);
    let plan = plan_at(st(Some(&existing), Some(&progress), None), &stale_update(id, future), later, V3).unwrap();
    let Write::Upsert(p) = plan.progress else { panic!() };
    assert_eq!((p.position.as_str(), p.last_studied_at), ("newer", Some(later)), "device clock capped at receive time");
}

fn stale_patch(id: MaterialId, title: Option<&str>, body: Option<&str>, on_conflict: OnConflict) -> LibraryMutation {
    LibraryMutation::UpdateMaterial {
        id,
        patch: MaterialPatch {
            title: title.map(|t| MaterialTitle::parse(t).unwrap()),
            body: body.map(|b| MaterialBody::parse(b).unwrap()),
            tags: None,
        },
        progress: None,
        base_version: Some(LibraryVersion(1)),
        on_conflict,
    }
}

#[test]
fn sy1_different_fields_both_survive_and_sy2_overlaps_become_conflicts() {
    let id = MaterialId::new();
    let base = MaterialBase { title: "Rust".into(), body: "ownership".into(), tags: vec!["cs".into()] };
    let mut server = material(id);
    server.title = "Rust book".into(); // the server changed the title since the base
    let body_edit = stale_patch(id, None, Some("borrowing"), OnConflict::Record);
    let plan = plan_at(st(Some(&server), None, Some(&base)), &body_edit, NOW, V3).unwrap();
    let Write::Upsert(m) = plan.material else { panic!() };
    assert_eq!((m.title.as_str(), m.body.as_str(), plan.conflicts.len()), ("Rust book", "borrowing", 0));
    let title_edit = stale_patch(id, Some("Rust notes"), None, OnConflict::Record);
    let plan = plan_at(st(Some(&server), None, Some(&base)), &title_edit, NOW, V3).unwrap();
    let Write::Upsert(m) = plan.material else { panic!() };
    assert_eq!(m.title, "Rust book", "the server's text stays");
    assert_eq!(m.conflicts.len(), 1);
    let [ConflictWrite::Insert(recorded)] = plan.conflicts.as_slice() else { panic!("one conflict recorded") };
    assert_eq!((recorded.field, recorded.device_value.as_str()), (ConflictField::Title, "Rust notes"));
    assert_eq!(m.conflicts[0], recorded.summary());
    let refused = plan_at(st(Some(&server), None, Some(&base)), &stale_patch(id, Some("Rust notes"), None, OnConflict::Refuse), NOW, V3);
    assert!(matches!(refused, Err(PlanError::EditConflict(c)) if c.len() == 1));
}

#[test]
fn sy8_conflicts_resolve_either_way() {
    let id = MaterialId::new();
    let base = MaterialBase { title: "Rust".into(), body: "ownership".into(), tags: vec![] };
    let mut server = material(id);
    server.title = "Rust book".into();
    let plan = plan_at(st(Some(&server), None, Some(&base)), &stale_patch(id, Some("Notes"), None, OnConflict::Record), NOW, V3).unwrap();
    let Write::Upsert(with_conflict) = plan.material else { panic!() };
    let [ConflictWrite::Insert(conflict)] = plan.conflicts.as_slice() else { panic!("one conflict recorded") };
    let conflict_id = conflict.id;
    let state = EntityState { material: Some(with_conflict.clone()), conflict: Some(conflict.clone()), ..Default::default() };
    for (resolution, title) in [(Resolution::KeepServer, "Rust book"), (Resolution::TakeDevice, "Notes"), (Resolution::Custom("Both".into()), "Both")] {
        let resolve = LibraryMutation::ResolveConflict { id, conflict_id, resolution };
        let plan = plan_at(state.clone(), &resolve, NOW, V3).unwrap();
        let Write::Upsert(m) = plan.material else { panic!() };
        assert_eq!((m.title.as_str(), m.conflicts.len()), (title, 0));
        assert_eq!(plan.conflicts, [ConflictWrite::Delete(conflict_id)]);
    }
    let too_long = LibraryMutation::ResolveConflict { id, conflict_id, resolution: Resolution::Custom("x".repeat(501)) };
    assert!(matches!(plan_at(state.clone(), &too_long, NOW, V3), Err(PlanError::Invalid(_))));
    let unknown = LibraryMutation::ResolveConflict { id, conflict_id: uuid::Uuid::new_v4(), resolution: Resolution::KeepServer };
    assert_eq!(plan_at(state, &unknown, NOW, V3), Err(PlanError::ConflictNotFound));
}

#[test]
fn sy3_tag_operations_are_set_operations() {
    let id = MaterialId::new();
    let existing = material(id);
    let add = LibraryMutation::AddTags { id, tags: Tags::parse(&["exam", "cs"]).unwrap() };
    let Write::Upsert(m) = plan_at(st(Some(&existing), None, None), &add, NOW, V3).unwrap().material else { panic!() };
    assert_eq!(m.tags, ["cs", "exam"]);
    let remove = LibraryMutation::RemoveTags { id, tags: Tags::parse(&["cs", "absent"]).unwrap() };
    let Write::Upsert(m) = plan_at(st(Some(&m), None, None), &remove, NOW, V3).unwrap().material else { panic!() };
    assert!(m.tags == ["exam"]);
    let again = LibraryMutation::RemoveTags { id, tags: Tags::parse(&["cs"]).unwrap() };
    assert!(plan_at(st(Some(&m), None, None), &again, NOW, V3).unwrap().is_noop());
}


#[test]
fn conflicts_are_capped_and_the_oldest_fold_into_the_dead_letter_list() {
    let id = MaterialId::new();
    let base = MaterialBase { title: "Rust".into(), body: "ownership".into(), tags: vec![] };
    let mut server = material(id);
    server.title = "Rust book".into();
    let mut folded = Vec::new();
    for round in 0..MAX_CONFLICTS_PER_MATERIAL + 3 {
        let edit = stale_patch(id, Some(&format!("Edit {round}")), None, OnConflict::Record);
        let plan = plan_at(st(Some(&server), None, Some(&base)), &edit, NOW, V3).unwrap();
        let Write::Upsert(next) = plan.material else { panic!() };
        assert!(next.conflicts.len() <= MAX_CONFLICTS_PER_MATERIAL);
        folded.extend(plan.conflicts.iter().filter_map(|w| match w {
            ConflictWrite::Fold(id) => Some(*id),
            _ => None,
        }));
        server = next;
    }
    assert_eq!(server.conflicts.len(), MAX_CONFLICTS_PER_MATERIAL);
    assert_eq!(folded.len(), 3, "every conflict beyond the cap is folded, none dropped");
}

#[test]
fn a_merge_over_the_in_lock_budget_is_deferred_and_over_the_full_budget_becomes_a_conflict() {
    let id = MaterialId::new();
    let lines = |prefix: &str| (0..3000).map(|i| format!("{prefix} {i}\n")).collect::<String>();
    let base = MaterialBase { title: "Rust".into(), body: lines("base"), tags: vec![] };
    let mut server = material(id);
    server.body = lines("server");
    let edit = stale_patch(id, None, Some(&lines("device")), OnConflict::Record);
    let state = st(Some(&server), None, Some(&base));
    assert_eq!(plan_mutation(&state, &edit, NOW, MergeBudget::IN_LOCK), Err(PlanError::OverBudget));
    let tight = MergeBudget { work: 100_000, defer: false };
    let plan = plan_mutation(&state, &edit, NOW, tight).unwrap();
    let [ConflictWrite::Insert(kept)] = plan.conflicts.as_slice() else { panic!("the device's text is kept") };
    assert_eq!((kept.field, kept.device_value.as_str()), (ConflictField::Body, lines("device").as_str()));
}

#[test]
fn a_stale_delete_wins_and_keeps_the_overridden_material() {
    let id = MaterialId::new();
    let existing = material(id); // last changed at V2
    let fresh = LibraryMutation::DeleteMaterial { id, base_version: Some(V2) };
    assert_eq!(plan_at(st(Some(&existing), None, None), &fresh, NOW, V3).unwrap().overridden, None);
    let stale = LibraryMutation::DeleteMaterial { id, base_version: Some(LibraryVersion(1)) };
    let plan = plan_at(st(Some(&existing), None, None), &stale, NOW, V3).unwrap();
    assert_eq!(plan.material, Write::Delete);
    assert_eq!(plan.overridden.map(|o| o.material), Some(existing));
}

#[test]
fn attachments_are_added_removed_and_go_with_their_material() {
    let id = MaterialId::new();
    let existing = material(id);
    let attachment = crate::NewAttachment {
        id: uuid::Uuid::new_v4(),
        sha256: crate::Sha256Hex::parse(&"a".repeat(64)).unwrap(),
        filename: crate::FileName::parse("notes.pdf").unwrap(),
        content_type: crate::ContentType::parse("application/pdf").unwrap(),
        size: 3,
    };
    let add = LibraryMutation::AddAttachment { material_id: id, attachment: attachment.clone() };
    assert_eq!(plan_at(st(Some(&existing), None, None), &add, NOW, V3), Err(PlanError::BlobNotFound));
    let held = EntityState { material: Some(existing.clone()), blob_size: Some(3), ..Default::default() };
    let wrong_size = EntityState { blob_size: Some(4), ..held.clone() };
    assert!(matches!(plan_at(wrong_size, &add, NOW, V3), Err(PlanError::Invalid(_))));
    let plan = plan_at(held, &add, NOW, V3).unwrap();
    let [AttachmentWrite::Insert(stored)] = plan.attachments.as_slice() else { panic!() };
    assert_eq!((stored.version, stored.material_id, plan.material.is_unchanged()), (V3, id, true));
    let with = EntityState { material: Some(existing.clone()), attachments: vec![stored.clone()], blob_size: Some(3), ..Default::default() };
    assert_eq!(plan_at(with.clone(), &add, NOW, V3), Err(PlanError::AttachmentExists));
    let remove = LibraryMutation::RemoveAttachment { material_id: id, attachment_id: attachment.id };
    assert_eq!(plan_at(with.clone(), &remove, NOW, V3).unwrap().attachments, [AttachmentWrite::Delete(attachment.id)]);
    assert_eq!(plan_at(st(Some(&existing), None, None), &remove, NOW, V3), Err(PlanError::AttachmentNotFound));
    let delete = LibraryMutation::DeleteMaterial { id, base_version: None };
    assert_eq!(plan_at(with, &delete, NOW, V3).unwrap().attachments, [AttachmentWrite::Delete(attachment.id)]);
    let gone = EntityState { tombstone: true, ..Default::default() };
    assert_eq!(plan_at(gone, &add, NOW, V3), Err(PlanError::MaterialDeleted));
}
