#![allow(clippy::unwrap_used)] // A test suite: a failed unwrap is a failed test.

//! The contract every [`Store`] must meet, run by each backend's tests through
//! [`contract_tests!`](crate::contract_tests). Test names cite rule ids from `docs/spec.md`.

use std::sync::Arc;

use shelf_core::{
    ChangeKind, ChangeOp, Email, LibraryMutation, LibraryVersion, MaterialBody, MaterialId, MaterialPatch,
    MaterialTitle, PlanError, ProgressUpdate, Tags, UserId,
};
use time::{Duration, OffsetDateTime};

use crate::{Store, StoreError};

pub use crate::contract_concurrency::lv4_many_writers_of_one_user_each_keep_their_own_version;
pub use crate::contract_ops::{
    au11_sessions_renew_while_in_use, au12_password_change_signs_out_the_other_sessions, au13_deleting_a_user_removes_all_of_theirs_only,
    cf6_tombstones_compact_behind_the_active_devices, op3_pool_stats_are_within_bounds, op4_device_sync_is_recorded_and_counted,
};
pub use crate::contract_push::{
    pu1_the_first_vapid_key_stored_wins, pu2_subscriptions_live_and_die_with_their_session, pu3_each_version_is_claimed_once,
    pu3_racing_claims_are_won_once, pu4_stream_presence_holds_pushes_back,
};
pub use crate::contract_sessions::{
    au1_sessions_resolve_until_revoked_or_expired, au7_attempts_count_per_bucket_and_window,
    au7_concurrent_attempts_each_see_a_distinct_count, rt5_every_ended_session_is_logged, rt6_stream_tickets_are_single_use,
};
pub use crate::contract_writes::{
    at1_attachments_travel_the_write_path, sy15_conflicts_are_capped_and_folded, sy17_large_merges_are_planned_outside_the_lock,
    sy9_receipts_bases_and_dead_letters,
};
pub use crate::contract_uploads::{
    at4_collection_and_backfill_of_stored_blobs, at6_one_writer_per_upload_until_its_lease_lapses,
    at7_quota_counts_stored_blobs_and_uploads_in_flight, at7_racing_creations_reserve_atomically,
};

pub(crate) fn now() -> OffsetDateTime {
    shelf_core::truncate_to_micros(OffsetDateTime::now_utc())
}

pub(crate) async fn user(store: &dyn Store) -> UserId {
    let email = Email::parse(&format!("{}@example.com", uuid::Uuid::new_v4())).unwrap();
    store.create_user(&email, "hash", now()).await.unwrap()
}

pub(crate) fn create(id: MaterialId, title: &str) -> LibraryMutation {
    LibraryMutation::CreateMaterial {
        id,
        title: MaterialTitle::parse(title).unwrap(),
        body: MaterialBody::parse("body").unwrap(),
        tags: Tags::parse(&["t"]).unwrap(),
        progress: None,
    }
}

pub(crate) fn retitle(id: MaterialId, title: &str) -> LibraryMutation {
    LibraryMutation::UpdateMaterial {
        id,
        patch: MaterialPatch { title: Some(MaterialTitle::parse(title).unwrap()), ..Default::default() },
        progress: None,
        base_version: None,
        on_conflict: shelf_core::OnConflict::Record,
    }
}

/// LV1: a new user's library starts at version 1; e-mail addresses are unique.
/// A new epoch is new, stays, and leaves every user's version where it was (devices resync).
pub async fn lv6_a_new_epoch_replaces_the_old_one(store: &dyn Store) {
    let user = user(store).await;
    let id = MaterialId::new();
    store.apply(user, &create(id, "kept"), now()).await.unwrap();
    let before = (store.epoch().await.unwrap(), store.library_version(user).await.unwrap());
    let epoch = store.new_epoch().await.unwrap();
    assert_ne!(epoch, before.0);
    assert_eq!(store.epoch().await.unwrap(), epoch);
    assert_eq!(store.library_version(user).await.unwrap(), before.1);
}

pub async fn lv1_new_user_starts_at_version_one(store: &dyn Store) {
    let email = Email::parse(&format!("{}@example.com", uuid::Uuid::new_v4())).unwrap();
    let id = store.create_user(&email, "hash", now()).await.unwrap();
    assert_eq!(store.library_version(id).await.unwrap(), LibraryVersion(1));
    assert!(matches!(store.create_user(&email, "other", now()).await, Err(StoreError::EmailTaken)));
    let other = user(store).await;
    store.apply(other, &create(MaterialId::new(), "x"), now()).await.unwrap();
    let mut versions = store.library_versions(&[id, other, UserId::new()]).await.unwrap();
    versions.sort_by_key(|(_, v)| *v);
    assert_eq!(versions, vec![(id, LibraryVersion(1)), (other, LibraryVersion(2))]);
    let creds = store.user_credentials(&email).await.unwrap().unwrap();
    assert_eq!((creds.user_id, creds.password_hash.as_str()), (id, "hash"));
}

/// LV2/LV3: each changing mutation bumps by exactly one; a no-op or failed one bumps nothing.
pub async fn lv2_mutations_bump_once_and_noops_do_not(store: &dyn Store) {
    let u = user(store).await;
    let id = MaterialId::new();
    let mut initial = create(id, "Algebra");
    if let LibraryMutation::CreateMaterial { progress, .. } = &mut initial {
        *progress = Some(ProgressUpdate { study_seconds_delta: 10, ..Default::default() });
    }
    let applied = store.apply(u, &initial, now()).await.unwrap();
    assert_eq!(applied.library_version, LibraryVersion(2));
    assert_eq!(applied.progress.as_ref().map(|p| (p.study_seconds, p.version)), Some((10, LibraryVersion(2))));

    let same = store.apply(u, &retitle(id, "Algebra"), now()).await.unwrap();
    assert!(!same.changed);
    assert_eq!(same.library_version, LibraryVersion(2));

    let failed = store.apply(u, &create(id, "again"), now()).await;
    assert!(matches!(failed, Err(StoreError::Plan(PlanError::MaterialExists))));
    assert_eq!(store.library_version(u).await.unwrap(), LibraryVersion(2));

    let renamed = store.apply(u, &retitle(id, "Linear algebra"), now()).await.unwrap();
    assert_eq!(renamed.library_version, LibraryVersion(3));
    let (material, progress) = store.material(u, id).await.unwrap().unwrap();
    assert_eq!((material.title.as_str(), material.version), ("Linear algebra", LibraryVersion(3)));
    assert_eq!(progress.unwrap().version, LibraryVersion(2));

    let deleted = store.apply(u, &LibraryMutation::DeleteMaterial { id, base_version: None }, now()).await.unwrap();
    assert_eq!(deleted.library_version, LibraryVersion(4));
    assert!(store.material(u, id).await.unwrap().is_none());
    let gone = store.apply(u, &LibraryMutation::DeleteMaterial { id, base_version: None }, now()).await;
    assert!(matches!(gone, Err(StoreError::Plan(PlanError::MaterialDeleted))), "{gone:?}");
    assert_eq!(store.library_version(u).await.unwrap(), LibraryVersion(4));
}

/// CF1/CF2: the feed holds each entity once at its latest version, tombstones included.
pub async fn cf1_feed_returns_latest_state_and_tombstones(store: &dyn Store) {
    let u = user(store).await;
    let (a, b) = (MaterialId::new(), MaterialId::new());
    store.apply(u, &create(a, "A"), now()).await.unwrap(); // v2
    store.apply(u, &create(b, "B"), now()).await.unwrap(); // v3
    store.apply(u, &retitle(a, "A2"), now()).await.unwrap(); // v4
    let set = LibraryMutation::SetProgress {
        material_id: b,
        update: ProgressUpdate { study_seconds_delta: 5, ..Default::default() },
        base_version: None,
    };
    store.apply(u, &set, now()).await.unwrap(); // v5
    store.apply(u, &LibraryMutation::DeleteMaterial { id: b, base_version: None }, now()).await.unwrap(); // v6

    let page = store.changes_since(u, LibraryVersion(0), 100, u64::MAX).await.unwrap();
    assert_eq!(page.library_version, LibraryVersion(6));
    let seen: Vec<_> = page.changes.iter().map(|c| (c.kind, c.id, c.op, c.version.0)).collect();
    assert_eq!(
        seen,
        vec![
            (ChangeKind::Material, a, ChangeOp::Upsert, 4),
            (ChangeKind::Material, b, ChangeOp::Delete, 6),
            (ChangeKind::Progress, b, ChangeOp::Delete, 6),
        ]
    );
    assert!(page.changes.iter().filter(|c| c.op == ChangeOp::Delete).all(|c| c.data.is_none()));
    assert!(!page.has_more);
    assert_eq!(page.next_since, LibraryVersion(6));

    let delta = store.changes_since(u, LibraryVersion(4), 100, u64::MAX).await.unwrap();
    assert!(delta.changes.iter().all(|c| c.version > LibraryVersion(4)));
    assert_eq!(delta.changes.len(), 2);
    let empty = store.changes_since(u, LibraryVersion(6), 100, u64::MAX).await.unwrap();
    assert!(empty.changes.is_empty());
    assert!(matches!(
        store.changes_since(u, LibraryVersion(7), 100, u64::MAX).await,
        Err(StoreError::ResyncRequired { .. })
    ));
}

/// CF3: pages never split a version, and following `nextSince` visits every change once.
pub async fn cf3_pages_follow_whole_versions(store: &dyn Store) {
    let u = user(store).await;
    for i in 0..7 {
        let id = MaterialId::new();
        let mut m = create(id, &format!("m{i}"));
        if let LibraryMutation::CreateMaterial { progress, .. } = &mut m {
            *progress = Some(ProgressUpdate::default());
        }
        store.apply(u, &m, now()).await.unwrap();
    }
    let mut since = LibraryVersion(0);
    let mut seen = 0;
    loop {
        let page = store.changes_since(u, since, 3, u64::MAX).await.unwrap();
        assert!(page.changes.len() <= 3);
        assert!(page.changes.len() % 2 == 0, "a version (material + progress) was split");
        seen += page.changes.len();
        since = page.next_since;
        if !page.has_more {
            break;
        }
    }
    assert_eq!((seen, since), (14, LibraryVersion(8)));
    // A limit smaller than one version still returns that version whole.
    let page = store.changes_since(u, LibraryVersion(0), 1, u64::MAX).await.unwrap();
    assert_eq!((page.changes.len(), page.has_more, page.next_since), (2, true, LibraryVersion(2)));
    // CF5: a page also stops at a byte budget, but always holds one whole version.
    let page = store.changes_since(u, LibraryVersion(0), 100, 1).await.unwrap();
    assert_eq!((page.changes.len(), page.has_more, page.next_since), (2, true, LibraryVersion(2)));
    let page = store.changes_since(u, LibraryVersion(0), 100, 1_000).await.unwrap();
    assert!((2..14).contains(&page.changes.len()) && page.has_more, "{} rows", page.changes.len());
    let mut since = LibraryVersion(0);
    let mut seen = 0;
    loop {
        let page = store.changes_since(u, since, 100, 700).await.unwrap();
        assert!(page.changes.len() % 2 == 0, "a version was split");
        seen += page.changes.len();
        since = page.next_since;
        if !page.has_more {
            break;
        }
    }
    assert_eq!((seen, since), (14, LibraryVersion(8)), "following nextSince under a byte budget visits every change once");
}

/// CF4: purging tombstones raises the horizon; older cursors must resync, 0 still works.
pub async fn cf4_purged_tombstones_require_resync(store: &dyn Store) {
    let u = user(store).await;
    let id = MaterialId::new();
    store.apply(u, &create(id, "old"), now()).await.unwrap(); // v2
    store.apply(u, &LibraryMutation::DeleteMaterial { id, base_version: None }, now()).await.unwrap(); // v3
    let removed = store.purge_tombstones(now() + Duration::seconds(1)).await.unwrap();
    assert!(removed >= 1);
    assert!(matches!(store.changes_since(u, LibraryVersion(2), 10, u64::MAX).await, Err(StoreError::ResyncRequired { .. })));
    assert!(store.changes_since(u, LibraryVersion(3), 10, u64::MAX).await.unwrap().changes.is_empty());
    let snapshot = store.changes_since(u, LibraryVersion(0), 10, u64::MAX).await.unwrap();
    assert!(snapshot.changes.is_empty());
    assert_eq!(snapshot.next_since, LibraryVersion(3));
    // Live materials keep their current revision as a merge base through the purge.
    let live = MaterialId::new();
    store.apply(u, &create(live, "kept"), now()).await.unwrap(); // v4
    store.purge_tombstones(now() + Duration::seconds(1)).await.unwrap();
    let stale = LibraryMutation::UpdateMaterial {
        id: live,
        patch: MaterialPatch { title: Some(MaterialTitle::parse("kept").unwrap()), ..Default::default() },
        progress: None,
        base_version: Some(LibraryVersion(4)),
        on_conflict: shelf_core::OnConflict::Record,
    };
    assert!(!store.apply(u, &stale, now()).await.unwrap().changed);
}

/// ISO1: users never see each other's library, even with the same material id.
pub async fn iso1_users_are_isolated(store: &dyn Store) {
    let (alice, bob) = (user(store).await, user(store).await);
    let id = MaterialId::new();
    store.apply(alice, &create(id, "Alice's"), now()).await.unwrap();
    assert!(store.material(bob, id).await.unwrap().is_none());
    assert!(store.list_materials(bob, None, 10).await.unwrap().is_empty());
    assert!(store.changes_since(bob, LibraryVersion(0), 10, u64::MAX).await.unwrap().changes.is_empty());
    let update = store.apply(bob, &retitle(id, "hijack"), now()).await;
    assert!(matches!(update, Err(StoreError::Plan(PlanError::MaterialNotFound))));
    // Bob may use the same id for his own material; Alice's is untouched.
    store.apply(bob, &create(id, "Bob's"), now()).await.unwrap();
    assert_eq!(store.material(alice, id).await.unwrap().unwrap().0.title, "Alice's");
    assert_eq!(store.library_version(alice).await.unwrap(), LibraryVersion(2));
}

/// LV4: concurrent writers end at 1 + successful mutations, with no gap and no duplicate.
pub async fn lv4_concurrent_writers_never_gap_or_duplicate(store: Arc<dyn Store>) {
    let u = user(store.as_ref()).await;
    let ids: Vec<MaterialId> = (0..4).map(|_| MaterialId::new()).collect();
    for id in &ids {
        store.apply(u, &create(*id, "start"), now()).await.unwrap();
    }
    let tasks = (0..40).map(|i| {
        let store = store.clone();
        let id = ids[i % ids.len()];
        tokio::spawn(async move { store.apply(u, &retitle(id, &format!("edit {i}")), now()).await })
    });
    let mut versions = Vec::new();
    for task in futures::future::join_all(tasks).await {
        let applied = task.unwrap().unwrap();
        assert!(applied.changed);
        versions.push(applied.library_version.0);
    }
    versions.sort_unstable();
    assert_eq!(versions, (6..46).collect::<Vec<_>>());
    assert_eq!(store.library_version(u).await.unwrap(), LibraryVersion(45));
    let page = store.changes_since(u, LibraryVersion(0), 100, u64::MAX).await.unwrap();
    assert_eq!(page.changes.len(), 4);
    for change in &page.changes {
        let (material, _) = store.material(u, change.id).await.unwrap().unwrap();
        assert_eq!(change.version, material.version);
    }
}

/// LV5 under concurrency: writes that fail (here, creates of an id that exists) leave no trace
/// while concurrent ones around them commit, with no gap in the versions — also when a backend
/// commits several writers in one transaction.
pub async fn lv5_failures_among_concurrent_writers_leave_no_gap(store: Arc<dyn Store>) {
    let u = user(store.as_ref()).await;
    let taken = MaterialId::new();
    store.apply(u, &create(taken, "first"), now()).await.unwrap(); // v2
    let tasks = (0..40).map(|i| {
        let store = store.clone();
        let id = if i % 4 == 0 { taken } else { MaterialId::new() };
        tokio::spawn(async move { store.apply(u, &create(id, &format!("m{i}")), now()).await })
    });
    let mut versions = Vec::new();
    for task in futures::future::join_all(tasks).await {
        match task.unwrap() {
            Ok(applied) => versions.push(applied.library_version.0),
            Err(StoreError::Plan(PlanError::MaterialExists)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    versions.sort_unstable();
    assert_eq!(versions, (3..33).collect::<Vec<_>>(), "30 creates committed, each at its own version");
    assert_eq!(store.library_version(u).await.unwrap(), LibraryVersion(32));
    assert_eq!(store.list_materials(u, None, 100).await.unwrap().len(), 31);
}


/// Generates one `#[tokio::test]` per contract rule for a backend. `$fresh` is an async fn
/// returning `(store, guard)`: a store over a fresh database, and whatever keeps it alive.
#[macro_export]
macro_rules! contract_tests {
    ($fresh:path) => {
        $crate::contract_tests!(@each $fresh,
            lv1_new_user_starts_at_version_one,
            lv6_a_new_epoch_replaces_the_old_one,
            lv2_mutations_bump_once_and_noops_do_not,
            cf1_feed_returns_latest_state_and_tombstones,
            cf3_pages_follow_whole_versions,
            cf4_purged_tombstones_require_resync,
            iso1_users_are_isolated,
            au1_sessions_resolve_until_revoked_or_expired,
            rt5_every_ended_session_is_logged,
            rt6_stream_tickets_are_single_use,
            sy9_receipts_bases_and_dead_letters,
            at1_attachments_travel_the_write_path,
            sy15_conflicts_are_capped_and_folded,
            sy17_large_merges_are_planned_outside_the_lock,
            at4_collection_and_backfill_of_stored_blobs,
            at6_one_writer_per_upload_until_its_lease_lapses,
            at7_quota_counts_stored_blobs_and_uploads_in_flight,
            au7_attempts_count_per_bucket_and_window,
            pu1_the_first_vapid_key_stored_wins,
            pu2_subscriptions_live_and_die_with_their_session,
            pu3_each_version_is_claimed_once,
            pu4_stream_presence_holds_pushes_back,
            op3_pool_stats_are_within_bounds,
            op4_device_sync_is_recorded_and_counted,
            au11_sessions_renew_while_in_use,
            au12_password_change_signs_out_the_other_sessions,
            au13_deleting_a_user_removes_all_of_theirs_only,
            cf6_tombstones_compact_behind_the_active_devices
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn pu3_racing_claims_are_won_once() {
            let (store, _guard) = $fresh().await;
            $crate::contract::pu3_racing_claims_are_won_once(std::sync::Arc::new(store)).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn lv4_concurrent_writers_never_gap_or_duplicate() {
            let (store, _guard) = $fresh().await;
            $crate::contract::lv4_concurrent_writers_never_gap_or_duplicate(std::sync::Arc::new(store)).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn lv4_many_writers_of_one_user_each_keep_their_own_version() {
            let (store, _guard) = $fresh().await;
            $crate::contract::lv4_many_writers_of_one_user_each_keep_their_own_version(std::sync::Arc::new(store)).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn lv5_failures_among_concurrent_writers_leave_no_gap() {
            let (store, _guard) = $fresh().await;
            $crate::contract::lv5_failures_among_concurrent_writers_leave_no_gap(std::sync::Arc::new(store)).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn at7_racing_creations_reserve_atomically() {
            let (store, _guard) = $fresh().await;
            $crate::contract::at7_racing_creations_reserve_atomically(std::sync::Arc::new(store)).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn au7_concurrent_attempts_each_see_a_distinct_count() {
            let (store, _guard) = $fresh().await;
            $crate::contract::au7_concurrent_attempts_each_see_a_distinct_count(std::sync::Arc::new(store)).await;
        }
    };
    (@each $fresh:path, $($name:ident),+) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (store, _guard) = $fresh().await;
                $crate::contract::$name(&store).await;
            }
        )+
    };
}
