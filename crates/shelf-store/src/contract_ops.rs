#![allow(clippy::unwrap_used)] // A test suite: a failed unwrap is a failed test.

//! Contract rules for what operators need: pool occupancy, device sync health, account
//! lifecycle. Run by every backend through [`contract_tests!`](crate::contract_tests).

use shelf_core::{DeviceId, Email, LibraryMutation, LibraryVersion, MaterialBody, MaterialId, MaterialTitle, Tags, UserId};
use time::{Duration, OffsetDateTime};

use crate::{NewSession, Store};

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

fn now() -> OffsetDateTime {
    shelf_core::truncate_to_micros(OffsetDateTime::now_utc())
}

async fn user(store: &dyn Store) -> UserId {
    let email = Email::parse(&format!("{}@example.com", uuid::Uuid::new_v4())).unwrap();
    store.create_user(&email, "hash", now()).await.unwrap()
}

async fn session(store: &dyn Store, user: UserId, name: &str) -> NewSession {
    let t = now();
    let session = NewSession {
        device_id: DeviceId::new(),
        user_id: user,
        token_hash: uuid::Uuid::new_v4().as_bytes().to_vec(),
        device_name: name.into(),
        created_at: t,
        expires_at: t + Duration::days(30),
    };
    store.create_session(&session).await.unwrap();
    session
}

async fn bump(store: &dyn Store, user: UserId) -> LibraryVersion {
    let mutation = LibraryMutation::CreateMaterial {
        id: MaterialId::new(),
        title: MaterialTitle::parse("m").unwrap(),
        body: MaterialBody::parse("").unwrap(),
        tags: Tags::parse::<&str>(&[]).unwrap(),
        progress: None,
    };
    store.apply(user, &mutation, now()).await.unwrap().library_version
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
