#![allow(clippy::unwrap_used)] // A test suite: a failed unwrap is a failed test.

//! Contract rules for the library write path beyond versions and the feed: receipts and dead
//! letters, attachments, conflicts, and merges planned outside the lock. Run by every backend
//! through [`contract_tests!`](crate::contract_tests).

use std::sync::Arc;

use shelf_core::{
    ChangeKind, ChangeOp, DeviceId, LibraryMutation, LibraryVersion, MaterialBody, MaterialId, MaterialPatch, MaterialTitle, PlanError,
    UserId,
};

use crate::contract::{create, now, retitle, user};
use crate::{Store, StoreError};

/// SY9: receipts make a replay a no-op; a merge against an older version uses that version's
/// fields as the base; rejections land in the dead-letter list with their receipt.
pub async fn sy9_receipts_bases_and_dead_letters(store: &dyn Store) {
    use crate::{Delivery, Outcome, ReceiptKey, ReceiptStatus};
    use shelf_core::{MutationKind, RejectionCode};
    let u = user(store).await;
    let device = DeviceId::new();
    let id = MaterialId::new();
    let key = |n| ReceiptKey { device, mutation_id: n };
    let delivery = |n| Delivery { key: key(n), data: format!("{{\"n\":{n}}}") };
    let Outcome::Applied(created) = store.apply_delivered(u, &create(id, "Title"), now(), delivery(1)).await.unwrap() else { panic!() };
    assert_eq!(created.library_version, LibraryVersion(2));
    let replay = store.apply_delivered(u, &create(id, "Title"), now(), delivery(1)).await.unwrap();
    let Outcome::Duplicate(receipt) = replay else { panic!("a replay is a duplicate: {replay:?}") };
    assert_eq!((receipt.status, receipt.library_version), (ReceiptStatus::Applied, LibraryVersion(2)));
    assert_eq!(store.receipt(u, key(1)).await.unwrap(), Some(receipt));
    assert_eq!(store.receipt(user(store).await, key(1)).await.unwrap(), None, "receipts are per user");

    // Body edited at v3 by one device; another device that saw only v2 edits the title: both survive.
    let body = LibraryMutation::UpdateMaterial {
        id,
        patch: MaterialPatch { body: Some(shelf_core::MaterialBody::parse("line one\nline two\n").unwrap()), ..Default::default() },
        progress: None,
        base_version: Some(LibraryVersion(2)),
        on_conflict: shelf_core::OnConflict::Record,
    };
    store.apply(u, &body, now()).await.unwrap();
    let stale_title = LibraryMutation::UpdateMaterial {
        id,
        patch: MaterialPatch { title: Some(MaterialTitle::parse("New title").unwrap()), body: Some(shelf_core::MaterialBody::parse("body").unwrap()), tags: None },
        progress: None,
        base_version: Some(LibraryVersion(2)),
        on_conflict: shelf_core::OnConflict::Record,
    };
    let Outcome::Applied(merged) = store.apply_delivered(u, &stale_title, now(), delivery(2)).await.unwrap() else { panic!() };
    assert!(merged.merged);
    let material = merged.material.unwrap();
    assert_eq!((material.title.as_str(), material.body.as_str()), ("New title", "line one\nline two\n"));
    assert!(material.conflicts.is_empty(), "the device did not change the body (base 'body')");
    assert_eq!(store.receipt(u, key(2)).await.unwrap().unwrap().status, ReceiptStatus::Merged);
    assert_eq!(store.material(u, id).await.unwrap().unwrap().0, material);

    // A mutation that cannot apply is dead-lettered once, with its receipt and the data it carried.
    let missing = retitle(MaterialId::new(), "nowhere");
    let Outcome::Rejected(first) = store.apply_delivered(u, &missing, now(), delivery(3)).await.unwrap() else { panic!() };
    assert_eq!((first.status, first.code), (ReceiptStatus::Rejected, Some(RejectionCode::NotFound)));
    assert_eq!(store.apply_delivered(u, &missing, now(), delivery(3)).await.unwrap(), Outcome::Duplicate(first));
    let not_uploaded = attachment(id, 'f');
    assert!(matches!(store.apply_delivered(u, &not_uploaded, now(), delivery(4)).await.unwrap(), Outcome::Rejected(_)));
    assert!(matches!(store.apply_delivered(u, &not_uploaded, now(), delivery(4)).await.unwrap(), Outcome::Duplicate(_)));
    let page = |before, limit, inline_bytes| crate::RejectedQuery { before, limit, inline_bytes };
    let dead = store.rejected_mutations(u, page(None, 10, 1000)).await.unwrap();
    assert_eq!(dead.len(), 2);
    assert_eq!((dead[0].kind, dead[0].material_id, dead[0].code, dead[0].mutation_id), (MutationKind::AttachmentAdd, id, RejectionCode::NotFound, Some(4)));
    assert_eq!((dead[0].message.clone(), dead[0].data.as_deref()), (PlanError::BlobNotFound.to_string(), Some("{\"n\":4}")));
    assert_eq!((dead[1].kind, dead[1].data.as_deref(), dead[1].data_bytes), (MutationKind::MaterialUpdate, Some("{\"n\":3}"), 7));
    // Pages: newest first, `before` continues, large data stays out of lists but not out of reach.
    let older = store.rejected_mutations(u, page(Some(dead[0].id), 10, 3)).await.unwrap();
    assert_eq!((older.len(), older[0].id, older[0].data.clone()), (1, dead[1].id, None));
    assert_eq!(store.rejected_mutation(u, dead[1].id).await.unwrap().unwrap().data.as_deref(), Some("{\"n\":3}"));
    assert_eq!(store.rejected_mutation(user(store).await, dead[1].id).await.unwrap(), None, "per user");
    // An edit of a deleted material is rejected as `deleted`.
    store.apply(u, &LibraryMutation::DeleteMaterial { id, base_version: None }, now()).await.unwrap();
    let Outcome::Rejected(gone) = store.apply_delivered(u, &retitle(id, "late"), now(), delivery(5)).await.unwrap() else { panic!() };
    assert_eq!(gone.code, Some(RejectionCode::Deleted));
    assert_eq!(store.library_version(u).await.unwrap(), LibraryVersion(5), "rejections do not bump");
}

fn attachment(material: MaterialId, sha: char) -> LibraryMutation {
    LibraryMutation::AddAttachment {
        material_id: material,
        attachment: shelf_core::NewAttachment {
            id: uuid::Uuid::now_v7(),
            sha256: shelf_core::Sha256Hex::parse(&sha.to_string().repeat(64)).unwrap(),
            filename: shelf_core::FileName::parse("notes.pdf").unwrap(),
            content_type: shelf_core::ContentType::parse("application/pdf").unwrap(),
            size: 5,
        },
    }
}

/// AT1 (store): attachments are library mutations: added and removed at a version with a feed
/// entry each, and tombstoned with their material in the material's version.
pub async fn at1_attachments_travel_the_write_path(store: &dyn Store) {
    let u = user(store).await;
    let id = MaterialId::new();
    store.apply(u, &create(id, "With files"), now()).await.unwrap(); // v2
    assert!(matches!(store.apply(u, &attachment(id, 'a'), now()).await, Err(StoreError::Plan(PlanError::BlobNotFound))));
    let held = |sha: char| (u, crate::StoredBlob { sha256: sha.to_string().repeat(64), size: 5, stored_at: now() });
    store.backfill_stored_blobs(&[held('a'), held('b')]).await.unwrap();
    let added = store.apply(u, &attachment(id, 'a'), now()).await.unwrap(); // v3
    let first = added.attachment.clone().unwrap();
    assert_eq!((added.library_version, first.version, first.material_id), (LibraryVersion(3), LibraryVersion(3), id));
    let second = store.apply(u, &attachment(id, 'b'), now()).await.unwrap().attachment.unwrap(); // v4
    assert_eq!(store.attachments(u, id).await.unwrap(), vec![first.clone(), second.clone()]);
    assert!(store.blob_referenced(u, &first.sha256).await.unwrap());
    let remove = LibraryMutation::RemoveAttachment { material_id: id, attachment_id: first.id };
    assert_eq!(store.apply(u, &remove, now()).await.unwrap().library_version, LibraryVersion(5));
    assert!(matches!(store.apply(u, &remove, now()).await, Err(StoreError::Plan(PlanError::AttachmentNotFound))));
    let other = user(store).await;
    assert!(matches!(store.apply(other, &attachment(id, 'a'), now()).await, Err(StoreError::Plan(PlanError::MaterialNotFound))));
    store.apply(u, &LibraryMutation::DeleteMaterial { id, base_version: None }, now()).await.unwrap(); // v6
    let page = store.changes_since(u, LibraryVersion(4), 100, u64::MAX).await.unwrap();
    let seen: Vec<_> = page.changes.iter().map(|c| (c.kind, c.id.0, c.op, c.version.0)).collect();
    assert_eq!(
        seen,
        vec![
            (ChangeKind::Attachment, first.id, ChangeOp::Delete, 5),
            (ChangeKind::Attachment, second.id, ChangeOp::Delete, 6),
            (ChangeKind::Material, id.0, ChangeOp::Delete, 6),
        ]
    );
    assert!(store.attachments(u, id).await.unwrap().is_empty());
    assert!(!store.blob_referenced(u, &second.sha256).await.unwrap());
}

/// SY15: conflict texts are kept apart from the material; beyond the cap the oldest move into
/// the dead-letter list in the same write; resolving deletes the text.
pub async fn sy15_conflicts_are_capped_and_folded(store: &dyn Store) {
    use shelf_core::{RejectionCode, MAX_CONFLICTS_PER_MATERIAL};
    let u = user(store).await;
    let id = MaterialId::new();
    store.apply(u, &create(id, "Base"), now()).await.unwrap(); // v2
    store.apply(u, &retitle(id, "Server"), now()).await.unwrap(); // v3
    let stale = |title: &str| LibraryMutation::UpdateMaterial {
        id,
        patch: MaterialPatch { title: Some(MaterialTitle::parse(title).unwrap()), ..Default::default() },
        progress: None,
        base_version: Some(LibraryVersion(2)),
        on_conflict: shelf_core::OnConflict::Record,
    };
    for i in 0..MAX_CONFLICTS_PER_MATERIAL + 2 {
        let applied = store.apply(u, &stale(&format!("Device {i}")), now()).await.unwrap();
        assert_eq!(applied.conflicts.len(), 1);
    }
    let (material, _) = store.material(u, id).await.unwrap().unwrap();
    let kept = store.conflicts(u, id).await.unwrap();
    assert_eq!((material.conflicts.len(), kept.len()), (MAX_CONFLICTS_PER_MATERIAL, MAX_CONFLICTS_PER_MATERIAL));
    assert_eq!(kept[0].device_value, "Device 2");
    assert_eq!(material.conflicts[0], kept[0].summary());
    let folded = store.rejected_mutations(u, crate::RejectedQuery { before: None, limit: 10, inline_bytes: 1000 }).await.unwrap();
    let mut texts: Vec<_> = folded.iter().map(|r| (r.code, r.data.clone().unwrap_or_default())).collect();
    texts.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        texts,
        vec![
            (RejectionCode::ConflictOverflow, "{\"title\":\"Device 0\"}".to_owned()),
            (RejectionCode::ConflictOverflow, "{\"title\":\"Device 1\"}".to_owned())
        ]
    );
    let resolve = LibraryMutation::ResolveConflict { id, conflict_id: kept[0].id, resolution: shelf_core::Resolution::TakeDevice };
    let resolved = store.apply(u, &resolve, now()).await.unwrap().material.unwrap();
    assert_eq!(resolved.title, "Device 2");
    assert_eq!(store.conflicts(u, id).await.unwrap().len(), MAX_CONFLICTS_PER_MATERIAL - 1);
    store.apply(u, &LibraryMutation::DeleteMaterial { id, base_version: None }, now()).await.unwrap();
    assert!(store.conflicts(u, id).await.unwrap().is_empty());
}

/// Forwards attempts to a backend's writer and records how each ended; before the second attempt
/// it can run another write, as a concurrent request would.
struct CountingWriter<'a> {
    store: &'a dyn Store,
    ends: std::sync::Mutex<Vec<&'static str>>,
    interleave: Option<(UserId, LibraryMutation)>,
}

#[async_trait::async_trait]
impl crate::write::WriteBackend for CountingWriter<'_> {
    async fn attempt(
        &self,
        job: Arc<crate::write::Job>,
        prepared: Option<Arc<crate::write::Prepared>>,
        budget: shelf_core::MergeBudget,
    ) -> crate::StoreResult<crate::write::Attempt> {
        let first_retry = self.ends.lock().unwrap().len() == 1;
        if let (true, Some((user, mutation))) = (first_retry, &self.interleave) {
            self.store.apply(*user, mutation, now()).await.unwrap();
        }
        let attempt = self.store.writer().attempt(job, prepared, budget).await?;
        let end = match attempt {
            crate::write::Attempt::Done(_) => "done",
            crate::write::Attempt::PlanOutside { .. } => "plan outside",
        };
        self.ends.lock().unwrap().push(end);
        Ok(attempt)
    }
}

/// SY17: a merge too large for the in-lock budget is planned outside any transaction, and its
/// plan is written only if the state it was made on is still current; a small one stays in one
/// attempt. The work stays bounded: over the full budget the device's text becomes a conflict.
pub async fn sy17_large_merges_are_planned_outside_the_lock(store: &dyn Store) {
    let u = user(store).await;
    let id = MaterialId::new();
    let lines = |who: &str| (0..3000).map(|i| format!("{who} {i}\n")).collect::<String>();
    let body = |text: &str| MaterialPatch { body: Some(MaterialBody::parse(text).unwrap()), ..Default::default() };
    let mut initial = create(id, "Long");
    if let LibraryMutation::CreateMaterial { body: b, .. } = &mut initial {
        *b = MaterialBody::parse(&lines("base")).unwrap();
    }
    store.apply(u, &initial, now()).await.unwrap(); // v2
    let server_edit = LibraryMutation::UpdateMaterial { id, patch: body(&lines("server")), progress: None, base_version: None, on_conflict: shelf_core::OnConflict::Record };
    store.apply(u, &server_edit, now()).await.unwrap(); // v3
    let stale = |text: &str| LibraryMutation::UpdateMaterial {
        id,
        patch: body(text),
        progress: None,
        base_version: Some(LibraryVersion(2)),
        on_conflict: shelf_core::OnConflict::Record,
    };
    let run = |mutation: LibraryMutation, interleave: Option<(UserId, LibraryMutation)>| async move {
        let writer = CountingWriter { store, ends: std::sync::Mutex::new(Vec::new()), interleave };
        let job = crate::write::Job { user: u, mutation, now: now(), delivery: None };
        let outcome = crate::write::apply(&writer, job).await.unwrap();
        let ends = writer.ends.into_inner().unwrap();
        (outcome, ends)
    };
    let (outcome, ends) = run(stale(&lines("device")), None).await;
    assert_eq!(ends, ["plan outside", "done"]);
    let crate::Outcome::Applied(applied) = outcome else { panic!() };
    assert_eq!(applied.conflicts.len(), 1, "over the full budget, the device's text is kept as a conflict");
    // Another write lands between the plan and the write: the stale plan is not used.
    let title = retitle(id, "Renamed meanwhile");
    let (outcome, ends) = run(stale(&lines("tablet")), Some((u, title))).await;
    assert_eq!(ends, ["plan outside", "plan outside", "done"]);
    let crate::Outcome::Applied(applied) = outcome else { panic!() };
    assert_eq!(applied.material.unwrap().title, "Renamed meanwhile", "planned on the current state");
    // A small merge needs no second attempt.
    let short = MaterialId::new();
    store.apply(u, &create(short, "Short"), now()).await.unwrap();
    let at = store.library_version(u).await.unwrap();
    store.apply(u, &retitle(short, "Short, renamed"), now()).await.unwrap();
    let small = LibraryMutation::UpdateMaterial { id: short, patch: body("edited\n"), progress: None, base_version: Some(at), on_conflict: shelf_core::OnConflict::Record };
    let (outcome, ends) = run(small, None).await;
    assert_eq!(ends, ["done"]);
    let crate::Outcome::Applied(applied) = outcome else { panic!() };
    assert!(applied.merged && applied.conflicts.is_empty());
}
