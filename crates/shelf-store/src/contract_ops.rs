#![allow(clippy::unwrap_used)] // A test suite: a failed unwrap is a failed test.

//! Contract rules for what operators need: pool occupancy, device sync health, account
//! lifecycle. Run by every backend through [`contract_tests!`](crate::contract_tests).

use shelf_core::{ChangeOp, DeviceId, LibraryMutation, LibraryVersion, MaterialBody, MaterialId, MaterialTitle, Tags, UserId};
use time::Duration;

use crate::contract::{now, user};
use crate::contract_sessions::session;
use crate::{DeletedAccount, NewUpload, Store, StoreError, StoredBlob};

/// OP3: every backend names its pools and reports an occupancy within its maximum.
pub async fn op3_pool_stats_are_within_bounds(store: &dyn Store) {
    store.ping().await.unwrap();
    let pools = store.pool_stats();
    assert!(!pools.is_empty(), "a backend has at least one pool");
    for pool in pools {
        assert!(!pool.name.is_empty());
        assert!(pool.max >= 1, "{pool:?}");
        assert!(pool.idle <= pool.size && pool.size <= pool.max, "{pool:?}");
    }
}


async fn bump(store: &dyn Store, user: UserId) -> LibraryVersion {
    store.apply(user, &create(MaterialId::new()), now()).await.unwrap().library_version
}

/// OP4: a device's synced version is recorded, never lowered, listed with its session, and
/// counted by the admin stats with its lag behind the library.
pub async fn op4_device_sync_is_recorded_and_counted(store: &dyn Store) {
    let u = user(store).await;
    let laptop = session(store, u, "laptop").await;
    let phone = session(store, u, "phone").await;
    let listed = store.list_sessions(u, now()).await.unwrap();
    assert!(listed.iter().all(|s| s.synced.is_none()), "nobody synced yet");

    let later = now() + Duration::minutes(5);
    store.record_device_sync(laptop.device_id, LibraryVersion(1), later).await.unwrap();
    let v3 = {
        bump(store, u).await;
        bump(store, u).await
    };
    store.record_device_sync(laptop.device_id, LibraryVersion(0), later).await.unwrap();
    store.record_device_sync(DeviceId::new(), LibraryVersion(9), later).await.unwrap();
    let listed = store.list_sessions(u, now()).await.unwrap();
    let laptop_row = listed.iter().find(|s| s.device_id == laptop.device_id).unwrap();
    assert_eq!(laptop_row.synced, Some((LibraryVersion(1), later)), "a lower version does not lower it");
    assert_eq!(laptop_row.last_seen_at, later, "syncing is being seen");
    assert!(listed.iter().find(|s| s.device_id == phone.device_id).unwrap().synced.is_none());

    let stats = store.admin_stats(now()).await.unwrap();
    assert_eq!((stats.users, stats.live_sessions, stats.never_synced), (1, 2, 1));
    assert_eq!(stats.lags, vec![v3.0 - 1]);
    assert_eq!((stats.materials, stats.blobs, stats.blob_bytes), (2, 0, 0));
    store.record_device_sync(phone.device_id, v3, later).await.unwrap();
    let stats = store.admin_stats(now()).await.unwrap();
    let mut lags = stats.lags.clone();
    lags.sort_unstable();
    assert_eq!((lags, stats.never_synced), (vec![0, v3.0 - 1], 0));
}

/// AU11: a session in use slides its expiry forward, never back, and an expired one stays dead.
pub async fn au11_sessions_renew_while_in_use(store: &dyn Store) {
    let u = user(store).await;
    let laptop = session(store, u, "laptop").await;
    let later = now() + Duration::minutes(10);
    store.renew_sessions(&[laptop.device_id], later, later + Duration::days(30)).await.unwrap();
    let auth = store.session_by_token_hash(&laptop.token_hash, later).await.unwrap().unwrap();
    assert_eq!((auth.last_seen_at, auth.expires_at), (later, later + Duration::days(30)));
    store.renew_sessions(&[laptop.device_id], later, later + Duration::days(1)).await.unwrap();
    assert_eq!(store.session_by_token_hash(&laptop.token_hash, later).await.unwrap().unwrap().expires_at, later + Duration::days(30));
    let phone = session(store, u, "phone").await;
    store.renew_sessions(&[laptop.device_id, phone.device_id], later, later + Duration::days(40)).await.unwrap();
    for token in [&laptop.token_hash, &phone.token_hash] {
        assert_eq!(store.session_by_token_hash(token, later).await.unwrap().unwrap().expires_at, later + Duration::days(40), "renewed together");
    }
    // A batch as large as a restart's reconnecting streams make (backends may split it): the
    // sessions at both ends of it are renewed, and ids that name no session change nothing.
    let mut many: Vec<DeviceId> = (0..1200).map(|_| DeviceId(uuid::Uuid::new_v4())).collect();
    many.insert(0, laptop.device_id);
    many.push(phone.device_id);
    store.renew_sessions(&many, later, later + Duration::days(50)).await.unwrap();
    for token in [&laptop.token_hash, &phone.token_hash] {
        assert_eq!(store.session_by_token_hash(token, later).await.unwrap().unwrap().expires_at, later + Duration::days(50), "renewed in a large batch");
    }
    let dead = later + Duration::days(51);
    store.renew_sessions(&[laptop.device_id], dead, dead + Duration::days(30)).await.unwrap();
    assert!(store.session_by_token_hash(&laptop.token_hash, dead).await.unwrap().is_none(), "an expired session is not revived");
}

/// AU12: a password change keeps the current session and deletes the others, atomically.
pub async fn au12_password_change_signs_out_the_other_sessions(store: &dyn Store) {
    let u = user(store).await;
    let laptop = session(store, u, "laptop").await;
    let phone = session(store, u, "phone").await;
    let other = user(store).await;
    let others_session = session(store, other, "theirs").await;
    let before = store.account(u).await.unwrap().unwrap();
    let revoked = store.change_password(u, "new hash", laptop.device_id).await.unwrap();
    assert_eq!(revoked, vec![phone.device_id]);
    let after = store.account(u).await.unwrap().unwrap();
    assert_eq!((after.email, after.password_hash.as_str()), (before.email, "new hash"));
    let listed: Vec<DeviceId> = store.list_sessions(u, now()).await.unwrap().iter().map(|s| s.device_id).collect();
    assert_eq!(listed, vec![laptop.device_id]);
    assert_eq!(store.list_sessions(other, now()).await.unwrap()[0].device_id, others_session.device_id);
    assert!(matches!(store.change_password(UserId::new(), "x", laptop.device_id).await, Err(StoreError::UserNotFound)));
    assert!(store.account(UserId::new()).await.unwrap().is_none());
}

/// AU13: deleting a user removes everything of theirs and nothing of anyone else's, and says
/// which devices, blobs and uploads went with it.
pub async fn au13_deleting_a_user_removes_all_of_theirs_only(store: &dyn Store) {
    let u = user(store).await;
    let laptop = session(store, u, "laptop").await;
    bump(store, u).await;
    let other = user(store).await;
    let theirs = session(store, other, "theirs").await;
    let their_version = bump(store, other).await;
    let blob = StoredBlob { sha256: "a".repeat(64), size: 10, stored_at: now() };
    store.backfill_stored_blobs(&[(u, blob.clone()), (other, blob.clone())]).await.unwrap();
    let upload = NewUpload {
        id: uuid::Uuid::new_v4(),
        user: u,
        length: 5,
        sha256: "b".repeat(64),
        filename: None,
        created_at: now(),
    };
    store.create_upload(&upload, 1 << 20).await.unwrap();

    let deleted = store.delete_user(u).await.unwrap();
    assert_eq!(deleted, DeletedAccount { devices: vec![laptop.device_id], blobs: vec![blob.sha256.clone()], uploads: vec![(upload.id, None)] });
    assert!(store.session_by_token_hash(&laptop.token_hash, now()).await.unwrap().is_none());
    assert!(store.account(u).await.unwrap().is_none());
    assert!(store.upload(u, upload.id).await.unwrap().is_none());
    assert!(store.stored_blob(u, &blob.sha256).await.unwrap().is_none());
    assert!(store.library_versions(&[u]).await.unwrap().is_empty());
    assert!(matches!(store.delete_user(u).await, Err(StoreError::UserNotFound)));

    assert!(store.session_by_token_hash(&theirs.token_hash, now()).await.unwrap().is_some());
    assert_eq!(store.library_version(other).await.unwrap(), their_version);
    assert!(store.stored_blob(other, &blob.sha256).await.unwrap().is_some(), "the same content of another user stays");
}

/// CF6: tombstones go once every recently active session has pulled past them; a session that
/// was not active holds nothing back and, behind the horizon, must resync.
pub async fn cf6_tombstones_compact_behind_the_active_devices(store: &dyn Store) {
    let u = user(store).await;
    let laptop = session(store, u, "laptop").await;
    let phone = session(store, u, "phone").await;
    let (first, second, third) = (MaterialId::new(), MaterialId::new(), MaterialId::new());
    for id in [first, second, third] {
        store.apply(u, &create(id), now()).await.unwrap(); // v2, v3, v4
    }
    for id in [first, second] {
        store.apply(u, &LibraryMutation::DeleteMaterial { id, base_version: None }, now()).await.unwrap(); // v5, v6
    }
    let other = user(store).await;
    let others_session = session(store, other, "theirs").await;
    let theirs = MaterialId::new();
    store.apply(other, &create(theirs), now()).await.unwrap(); // v2
    store.apply(other, &LibraryMutation::DeleteMaterial { id: theirs, base_version: None }, now()).await.unwrap(); // v3
    store.record_device_sync(others_session.device_id, LibraryVersion(2), now()).await.unwrap();

    let t = now();
    let recently = t - Duration::days(30);
    // The phone never synced: nothing goes.
    store.record_device_sync(laptop.device_id, LibraryVersion(6), t).await.unwrap();
    assert_eq!(store.compact_tombstones(recently, t).await.unwrap(), 0);
    // The phone pulled up to v5: the tombstone at v5 goes, v6 stays.
    store.record_device_sync(phone.device_id, LibraryVersion(5), t).await.unwrap();
    assert_eq!(store.compact_tombstones(recently, t).await.unwrap(), 1);
    assert!(matches!(store.changes_since(u, LibraryVersion(4), 10, u64::MAX).await, Err(StoreError::ResyncRequired { .. })));
    let from_phone = store.changes_since(u, LibraryVersion(5), 10, u64::MAX).await.unwrap();
    assert_eq!(from_phone.changes.iter().map(|c| (c.id, c.op)).collect::<Vec<_>>(), vec![(second, ChangeOp::Delete)]);
    // The phone goes quiet for longer than the retention: it no longer holds v6 back.
    store.touch_session(phone.device_id, t - Duration::days(31)).await.unwrap();
    assert_eq!(store.compact_tombstones(recently, t).await.unwrap(), 1);
    assert!(matches!(store.changes_since(u, LibraryVersion(5), 10, u64::MAX).await, Err(StoreError::ResyncRequired { .. })), "the phone must resync");
    let snapshot = store.changes_since(u, LibraryVersion(0), 10, u64::MAX).await.unwrap();
    assert_eq!(snapshot.changes.iter().map(|c| c.id).collect::<Vec<_>>(), vec![third], "a snapshot still has every live material");
    // Another user's tombstone stays: their only device pulled up to v2, below it.
    let their_feed = store.changes_since(other, LibraryVersion(2), 10, u64::MAX).await.unwrap();
    assert_eq!(their_feed.changes.iter().map(|c| (c.id, c.op)).collect::<Vec<_>>(), vec![(theirs, ChangeOp::Delete)]);
}

fn create(id: MaterialId) -> LibraryMutation {
    LibraryMutation::CreateMaterial {
        id,
        title: MaterialTitle::parse("m").unwrap(),
        body: MaterialBody::parse("").unwrap(),
        tags: Tags::parse::<&str>(&[]).unwrap(),
        progress: None,
    }
}
