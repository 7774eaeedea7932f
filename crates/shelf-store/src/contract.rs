#![allow(clippy::unwrap_used)] // A test suite: a failed unwrap is a failed test.

//! The contract every [`Store`] must meet, run by each backend's tests through
//! [`contract_tests!`](crate::contract_tests). Test names cite rule ids from `docs/spec.md`.

use std::sync::Arc;

use shelf_core::{
    ChangeKind, ChangeOp, DeviceId, Email, LibraryMutation, LibraryVersion, MaterialBody, MaterialId, MaterialPatch,
    MaterialTitle, PlanError, ProgressUpdate, Tags, UserId,
};
use time::{Duration, OffsetDateTime};

use crate::{NewSession, Store, StoreError};

fn now() -> OffsetDateTime {
    shelf_core::truncate_to_micros(OffsetDateTime::now_utc())
}

async fn user(store: &dyn Store) -> UserId {
    let email = Email::parse(&format!("{}@example.com", uuid::Uuid::new_v4())).unwrap();
    store.create_user(&email, "hash", now()).await.unwrap()
}

fn create(id: MaterialId, title: &str) -> LibraryMutation {
    LibraryMutation::CreateMaterial {
        id,
        title: MaterialTitle::parse(title).unwrap(),
        body: MaterialBody::parse("body").unwrap(),
        tags: Tags::parse(&["t"]).unwrap(),
        progress: None,
    }
}

fn retitle(id: MaterialId, title: &str) -> LibraryMutation {
    LibraryMutation::UpdateMaterial {
        id,
        patch: MaterialPatch { title: Some(MaterialTitle::parse(title).unwrap()), ..Default::default() },
        progress: None,
        base_version: None,
        on_conflict: shelf_core::OnConflict::Record,
    }
}

/// LV1: a new user's library starts at version 1; e-mail addresses are unique.
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

    let deleted = store.apply(u, &LibraryMutation::DeleteMaterial { id }, now()).await.unwrap();
    assert_eq!(deleted.library_version, LibraryVersion(4));
    assert!(store.material(u, id).await.unwrap().is_none());
    let gone = store.apply(u, &LibraryMutation::DeleteMaterial { id }, now()).await;
    assert!(matches!(gone, Err(StoreError::Plan(PlanError::MaterialNotFound))));
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
    store.apply(u, &LibraryMutation::DeleteMaterial { id: b }, now()).await.unwrap(); // v6

    let page = store.changes_since(u, LibraryVersion(0), 100).await.unwrap();
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

    let delta = store.changes_since(u, LibraryVersion(4), 100).await.unwrap();
    assert!(delta.changes.iter().all(|c| c.version > LibraryVersion(4)));
    assert_eq!(delta.changes.len(), 2);
    let empty = store.changes_since(u, LibraryVersion(6), 100).await.unwrap();
    assert!(empty.changes.is_empty());
    assert!(matches!(
        store.changes_since(u, LibraryVersion(7), 100).await,
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
        let page = store.changes_since(u, since, 3).await.unwrap();
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
    let page = store.changes_since(u, LibraryVersion(0), 1).await.unwrap();
    assert_eq!((page.changes.len(), page.has_more, page.next_since), (2, true, LibraryVersion(2)));
}

/// CF4: purging tombstones raises the horizon; older cursors must resync, 0 still works.
pub async fn cf4_purged_tombstones_require_resync(store: &dyn Store) {
    let u = user(store).await;
    let id = MaterialId::new();
    store.apply(u, &create(id, "old"), now()).await.unwrap(); // v2
    store.apply(u, &LibraryMutation::DeleteMaterial { id }, now()).await.unwrap(); // v3
    let removed = store.purge_tombstones(now() + Duration::seconds(1)).await.unwrap();
    assert!(removed >= 1);
    assert!(matches!(store.changes_since(u, LibraryVersion(2), 10).await, Err(StoreError::ResyncRequired { .. })));
    assert!(store.changes_since(u, LibraryVersion(3), 10).await.unwrap().changes.is_empty());
    let snapshot = store.changes_since(u, LibraryVersion(0), 10).await.unwrap();
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
    assert!(store.changes_since(bob, LibraryVersion(0), 10).await.unwrap().changes.is_empty());
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
    let page = store.changes_since(u, LibraryVersion(0), 100).await.unwrap();
    assert_eq!(page.changes.len(), 4);
    for change in &page.changes {
        let (material, _) = store.material(u, change.id).await.unwrap().unwrap();
        assert_eq!(change.version, material.version);
    }
}

/// AU1: sessions resolve by token hash until they expire or are revoked.
pub async fn au1_sessions_resolve_until_revoked_or_expired(store: &dyn Store) {
    let u = user(store).await;
    let t = now();
    let live = NewSession {
        device_id: DeviceId::new(),
        user_id: u,
        token_hash: uuid::Uuid::new_v4().as_bytes().to_vec(),
        device_name: "laptop".into(),
        created_at: t,
        expires_at: t + Duration::days(30),
    };
    let expired = NewSession {
        device_id: DeviceId::new(),
        token_hash: uuid::Uuid::new_v4().as_bytes().to_vec(),
        expires_at: t - Duration::seconds(1),
        ..live.clone()
    };
    store.create_session(&live).await.unwrap();
    store.create_session(&expired).await.unwrap();
    let auth = store.session_by_token_hash(&live.token_hash, t).await.unwrap().unwrap();
    assert_eq!((auth.user_id, auth.device_id), (u, live.device_id));
    assert!(store.session_by_token_hash(&expired.token_hash, t).await.unwrap().is_none());
    store.touch_session(live.device_id, t + Duration::minutes(5)).await.unwrap();
    let listed = store.list_sessions(u, t).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_seen_at, t + Duration::minutes(5));
    let other = user(store).await;
    assert!(!store.revoke_session(other, live.device_id).await.unwrap());
    assert!(store.revoke_session(u, live.device_id).await.unwrap());
    assert!(store.session_by_token_hash(&live.token_hash, t).await.unwrap().is_none());
}

/// RT6: stream tickets are single use, expire, and die with their session.
pub async fn rt6_stream_tickets_are_single_use(store: &dyn Store) {
    let u = user(store).await;
    let t = now();
    let session = NewSession {
        device_id: DeviceId::new(),
        user_id: u,
        token_hash: uuid::Uuid::new_v4().as_bytes().to_vec(),
        device_name: "browser".into(),
        created_at: t,
        expires_at: t + Duration::days(1),
    };
    store.create_session(&session).await.unwrap();
    let ticket = uuid::Uuid::new_v4().as_bytes().to_vec();
    store.create_stream_ticket(&ticket, session.device_id, t + Duration::seconds(60)).await.unwrap();
    let auth = store.consume_stream_ticket(&ticket, t).await.unwrap().unwrap();
    assert_eq!((auth.user_id, auth.device_id), (u, session.device_id));
    assert!(store.consume_stream_ticket(&ticket, t).await.unwrap().is_none(), "second use");
    let expired = uuid::Uuid::new_v4().as_bytes().to_vec();
    store.create_stream_ticket(&expired, session.device_id, t - Duration::seconds(1)).await.unwrap();
    assert!(store.consume_stream_ticket(&expired, t).await.unwrap().is_none());
    let orphaned = uuid::Uuid::new_v4().as_bytes().to_vec();
    store.create_stream_ticket(&orphaned, session.device_id, t + Duration::seconds(60)).await.unwrap();
    let other = DeviceId::new();
    assert_eq!(store.live_devices(&[session.device_id, other], t).await.unwrap(), vec![session.device_id]);
    store.revoke_session(u, session.device_id).await.unwrap();
    assert!(store.consume_stream_ticket(&orphaned, t).await.unwrap().is_none());
    assert!(store.live_devices(&[session.device_id], t).await.unwrap().is_empty());
}

/// AU7: attempt counters count per bucket and fixed window, refund within their window only,
/// and are purged by window age.
pub async fn au7_attempts_count_per_bucket_and_window(store: &dyn Store) {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (a, b) = (format!("test-a:{tag}"), format!("test-b:{tag}"));
    let both = [a.clone(), b.clone()];
    assert_eq!(store.count_attempts(&both, 1_000).await.unwrap(), vec![1, 1]);
    assert_eq!(store.count_attempts(&both, 1_000).await.unwrap(), vec![2, 2]);
    assert_eq!(store.count_attempts(std::slice::from_ref(&b), 1_000).await.unwrap(), vec![3]);
    assert_eq!(store.count_attempts(&[b.clone(), a.clone()], 1_000).await.unwrap(), vec![4, 3], "order as given");
    store.refund_attempts(std::slice::from_ref(&a), 1_000).await.unwrap();
    assert_eq!(store.count_attempts(std::slice::from_ref(&a), 1_000).await.unwrap(), vec![3]);
    // A new window starts again; a late attempt of the old window counts in the new one.
    assert_eq!(store.count_attempts(std::slice::from_ref(&a), 2_000).await.unwrap(), vec![1]);
    assert_eq!(store.count_attempts(std::slice::from_ref(&a), 1_000).await.unwrap(), vec![2]);
    // A refund for a window that is over changes nothing; refunds never go below zero.
    store.refund_attempts(std::slice::from_ref(&a), 1_000).await.unwrap();
    for _ in 0..5 {
        store.refund_attempts(std::slice::from_ref(&b), 1_000).await.unwrap();
    }
    assert_eq!(store.count_attempts(&both, 2_000).await.unwrap(), vec![3, 1]);
    let c = format!("test-c:{tag}");
    store.count_attempts(std::slice::from_ref(&c), 1_000).await.unwrap();
    store.refund_attempts(std::slice::from_ref(&c), 1_000).await.unwrap();
    store.refund_attempts(std::slice::from_ref(&c), 1_000).await.unwrap();
    assert_eq!(store.count_attempts(std::slice::from_ref(&c), 1_000).await.unwrap(), vec![1]);
    assert!(store.purge_attempts(2_000).await.unwrap() >= 1);
    assert_eq!(store.count_attempts(std::slice::from_ref(&c), 1_000).await.unwrap(), vec![1], "purged");
    assert_eq!(store.count_attempts(std::slice::from_ref(&a), 2_000).await.unwrap(), vec![4], "kept");
}

/// AU7: concurrent attempts never share a count, so a limit of N lets exactly N through.
pub async fn au7_concurrent_attempts_each_see_a_distinct_count(store: Arc<dyn Store>) {
    let buckets = vec![format!("test-race:{}", uuid::Uuid::new_v4().simple())];
    let tasks = (0..30).map(|_| {
        let (store, buckets) = (store.clone(), buckets.clone());
        tokio::spawn(async move { store.count_attempts(&buckets, 7).await })
    });
    let mut counts: Vec<i64> = Vec::new();
    for task in futures::future::join_all(tasks).await {
        counts.extend(task.unwrap().unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (1..=30).collect::<Vec<_>>());
}

/// SY9: receipts make a replay a no-op; a merge against an older version uses that version's
/// fields as the base; rejections land in the dead-letter list with their receipt.
pub async fn sy9_receipts_bases_and_dead_letters(store: &dyn Store) {
    use crate::{ReceiptKey, Rejection};
    let u = user(store).await;
    let device = DeviceId::new();
    let id = MaterialId::new();
    let key = |n| Some(ReceiptKey { device, mutation_id: n });
    let created = store.apply_with_receipt(u, &create(id, "Title"), now(), key(1)).await.unwrap();
    assert_eq!(created.library_version, LibraryVersion(2));
    assert!(matches!(store.apply_with_receipt(u, &create(id, "Title"), now(), key(1)).await, Err(StoreError::DuplicateMutation)));
    let receipt = store.receipt(ReceiptKey { device, mutation_id: 1 }).await.unwrap().unwrap();
    assert_eq!((receipt.status.as_str(), receipt.library_version), ("applied", LibraryVersion(2)));

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
    let merged = store.apply_with_receipt(u, &stale_title, now(), key(2)).await.unwrap();
    assert!(merged.merged);
    let material = merged.material.unwrap();
    assert_eq!((material.title.as_str(), material.body.as_str()), ("New title", "line one\nline two\n"));
    assert!(material.conflicts.is_empty(), "the device did not change the body (base 'body')");
    let receipt = store.receipt(ReceiptKey { device, mutation_id: 2 }).await.unwrap().unwrap();
    assert_eq!(receipt.status, "merged");
    let listed = store.material(u, id).await.unwrap().unwrap().0;
    assert_eq!(listed, material);

    // A rejection is dead-lettered once, with its receipt.
    let rejection = Rejection {
        mutation_type: "material.update".into(),
        material_id: MaterialId::new(),
        data: "{\"title\":\"x\"}".into(),
        code: "not_found".into(),
        message: "material not found".into(),
    };
    let first = store.reject(u, key(3), &rejection, now()).await.unwrap();
    let again = store.reject(u, key(3), &rejection, now()).await.unwrap();
    assert_eq!((first.status.as_str(), again), ("rejected", first.clone()));
    let dead = store.rejected_mutations(u, 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].rejection.clone(), dead[0].mutation_id), (rejection, Some(3)));
    store.apply(u, &LibraryMutation::DeleteMaterial { id }, now()).await.unwrap();
    assert!(store.material_deleted(u, id).await.unwrap());
    assert!(!store.material_deleted(u, MaterialId::new()).await.unwrap());
}

/// Generates one `#[tokio::test]` per contract rule for a backend. `$fresh` is an async fn
/// returning `(store, guard)`: a store over a fresh database, and whatever keeps it alive.
#[macro_export]
macro_rules! contract_tests {
    ($fresh:path) => {
        $crate::contract_tests!(@each $fresh,
            lv1_new_user_starts_at_version_one,
            lv2_mutations_bump_once_and_noops_do_not,
            cf1_feed_returns_latest_state_and_tombstones,
            cf3_pages_follow_whole_versions,
            cf4_purged_tombstones_require_resync,
            iso1_users_are_isolated,
            au1_sessions_resolve_until_revoked_or_expired,
            rt6_stream_tickets_are_single_use,
            au7_attempts_count_per_bucket_and_window,
            sy9_receipts_bases_and_dead_letters
        );
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn lv4_concurrent_writers_never_gap_or_duplicate() {
            let (store, _guard) = $fresh().await;
            $crate::contract::lv4_concurrent_writers_never_gap_or_duplicate(std::sync::Arc::new(store)).await;
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
