#![allow(clippy::unwrap_used)] // A test suite: a failed unwrap is a failed test.

//! Contract rules for uploads and stored blobs (spec AT6–AT8), re-exported through
//! [`crate::contract`] so [`contract_tests!`](crate::contract_tests) runs them on every backend.

use std::sync::Arc;

use shelf_core::UserId;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::contract::{now, user};
use crate::{NewUpload, Store, StoreError, StoredBlob, UploadLease, UploadProgress};

fn new_upload(user: UserId, length: u64, sha256: &str) -> NewUpload {
    NewUpload { id: Uuid::now_v7(), user, length, sha256: sha256.to_owned(), filename: Some("f.pdf".into()), created_at: now() }
}

/// Progress at `offset`, with a hash state and a staging state that name it.
fn at(offset: u64) -> UploadProgress {
    UploadProgress { offset, hasher: Some(offset.to_le_bytes().to_vec()), staging: Some(format!("{{\"parts\":{offset}}}")) }
}

fn lease(until: OffsetDateTime) -> UploadLease {
    UploadLease { token: Uuid::new_v4(), until }
}

/// Creates, claims and finishes an upload: the user then holds a stored blob of `length`.
async fn store_blob(store: &dyn Store, user: UserId, length: u64, sha256: &str, quota: u64) {
    let upload = new_upload(user, length, sha256);
    store.create_upload(&upload, quota).await.unwrap();
    let writer = lease(now() + Duration::minutes(1));
    store.claim_upload(user, upload.id, writer, now()).await.unwrap();
    assert!(store.finish_upload(upload.id, writer.token, now()).await.unwrap());
}

/// AT6: one writer per upload; its lease lapses when not renewed; a lost lease writes nothing.
pub async fn at6_one_writer_per_upload_until_its_lease_lapses(store: &dyn Store) {
    let (u, other) = (user(store).await, user(store).await);
    let upload = new_upload(u, 100, &"a".repeat(64));
    store.create_upload(&upload, 1_000).await.unwrap();
    let t0 = now();
    let first = lease(t0 + Duration::seconds(60));
    let claimed = store.claim_upload(u, upload.id, first, t0).await.unwrap();
    assert_eq!((claimed.offset, claimed.length, claimed.lease_until), (0, 100, Some(first.until)));
    let second = lease(t0 + Duration::seconds(61));
    assert!(matches!(store.claim_upload(u, upload.id, second, t0 + Duration::seconds(1)).await, Err(StoreError::UploadLocked)));
    assert!(matches!(store.claim_upload(other, upload.id, second, t0).await, Err(StoreError::UploadNotFound)));
    assert_eq!((claimed.hasher, claimed.staging), (None, None), "a new upload has no progress");
    assert!(!store.renew_upload(upload.id, second.token, &at(50), second.until).await.unwrap(), "only the holder renews");
    assert!(store.renew_upload(upload.id, first.token, &at(10), t0 + Duration::seconds(90)).await.unwrap());
    assert_eq!(store.upload(u, upload.id).await.unwrap().unwrap().progress(), at(10));
    assert!(store.release_upload(upload.id, first.token, &at(40), t0).await.unwrap());
    let released = store.upload(u, upload.id).await.unwrap().unwrap();
    assert_eq!((released.progress(), released.lease_until), (at(40), None), "offset, hash and staging state move together");
    assert!(!store.release_upload(upload.id, first.token, &at(99), t0).await.unwrap(), "a released lease is gone");

    // A writer that stops renewing (crashed) loses the upload once its lease has lapsed.
    store.claim_upload(u, upload.id, second, t0).await.unwrap();
    let third = lease(t0 + Duration::seconds(200));
    assert!(matches!(store.claim_upload(u, upload.id, third, t0 + Duration::seconds(60)).await, Err(StoreError::UploadLocked)));
    assert_eq!(store.claim_upload(u, upload.id, third, t0 + Duration::seconds(62)).await.unwrap().progress(), at(40));
    assert!(!store.renew_upload(upload.id, second.token, &at(100), third.until).await.unwrap());
    assert!(!store.finish_upload(upload.id, second.token, t0).await.unwrap());
    assert!(!store.discard_upload(upload.id, second.token).await.unwrap());
    assert_eq!(store.upload(u, upload.id).await.unwrap().unwrap().progress(), at(40), "the lapsed writer wrote nothing");
    assert!(store.finish_upload(upload.id, third.token, t0).await.unwrap());
    assert!(store.upload(u, upload.id).await.unwrap().is_none());
    let stored = store.stored_blob(u, &upload.sha256).await.unwrap().unwrap();
    assert_eq!((stored.size, stored.stored_at), (100, t0));
    assert!(store.stored_blob(other, &upload.sha256).await.unwrap().is_none());
    assert!(!store.finish_upload(upload.id, third.token, t0).await.unwrap(), "finishing twice does nothing");
}

/// AT7: usage = stored blobs (counted once) + uploads in flight; discarding releases it.
pub async fn at7_quota_counts_stored_blobs_and_uploads_in_flight(store: &dyn Store) {
    let u = user(store).await;
    let quota = 100;
    store_blob(store, u, 40, &"b".repeat(64), quota).await;
    let pending = new_upload(u, 50, &"c".repeat(64));
    store.create_upload(&pending, quota).await.unwrap();
    let over = store.create_upload(&new_upload(u, 11, &"d".repeat(64)), quota).await;
    assert!(matches!(over, Err(StoreError::QuotaExceeded { quota: 100 })), "{over:?}");
    store.create_upload(&new_upload(user(store).await, 100, &"d".repeat(64)), quota).await.unwrap();

    // The same blob stored twice counts once, and its upload's reservation is dropped.
    store_blob(store, u, 40, &"b".repeat(64), 200).await;
    let writer = lease(now() + Duration::minutes(1));
    store.claim_upload(u, pending.id, writer, now()).await.unwrap();
    assert!(store.discard_upload(pending.id, writer.token).await.unwrap());
    assert!(store.upload(u, pending.id).await.unwrap().is_none());
    store.create_upload(&new_upload(u, 60, &"e".repeat(64)), quota).await.unwrap();
    assert!(matches!(store.create_upload(&new_upload(u, 1, &"f".repeat(64)), quota).await, Err(StoreError::QuotaExceeded { .. })));
}

/// AT7: racing creations cannot both pass: eight 2-unit creations against a quota of 3.
pub async fn at7_racing_creations_reserve_atomically(store: Arc<dyn Store>) {
    let u = user(store.as_ref()).await;
    let attempts = (0..8).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.create_upload(&new_upload(u, 2, &format!("{i:064x}")), 3).await })
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|r| matches!(r, Ok(Ok(())))).count();
    let refused = results.iter().filter(|r| matches!(r, Ok(Err(StoreError::QuotaExceeded { .. })))).count();
    assert_eq!((created, refused), (1, 7), "{results:?}");
}

/// AT4/AT7: collection deletes only old records no upload in flight points at; abandoned
/// uploads are those untouched since the cutoff with no live lease; back-fill runs once.
pub async fn at4_collection_and_backfill_of_stored_blobs(store: &dyn Store) {
    let u = user(store).await;
    let (old, busy) = ("1".repeat(64), "2".repeat(64));
    store_blob(store, u, 10, &old, 1_000).await;
    store_blob(store, u, 10, &busy, 1_000).await;
    let in_flight = new_upload(u, 10, &busy);
    store.create_upload(&in_flight, 1_000).await.unwrap();
    let later = now() + Duration::seconds(10);
    assert!(store.collect_unreferenced_blobs(now() - Duration::hours(1)).await.unwrap().is_empty());
    assert_eq!(store.collect_unreferenced_blobs(later).await.unwrap(), vec![(u, old.clone())]);
    assert!(store.stored_blob(u, &old).await.unwrap().is_none());
    assert!(store.stored_blob(u, &busy).await.unwrap().is_some(), "an upload of the same blob is in flight");

    assert_eq!(store.abandoned_uploads(later, now()).await.unwrap(), vec![(u, in_flight.id)]);
    assert!(store.abandoned_uploads(now() - Duration::hours(1), now()).await.unwrap().is_empty());
    store.claim_upload(u, in_flight.id, lease(later + Duration::minutes(1)), now()).await.unwrap();
    assert!(store.abandoned_uploads(later, later).await.unwrap().is_empty(), "a live writer's upload is not abandoned");

    assert!(!store.stored_blobs_backfilled().await.unwrap());
    let legacy = StoredBlob { sha256: "3".repeat(64), size: 7, stored_at: now() };
    let blobs = [(u, legacy.clone()), (UserId::new(), legacy.clone()), (u, StoredBlob { size: 99, ..legacy.clone() })];
    assert_eq!(store.backfill_stored_blobs(&blobs).await.unwrap(), 1);
    assert!(store.stored_blobs_backfilled().await.unwrap());
    assert_eq!(store.stored_blob(u, &legacy.sha256).await.unwrap(), Some(legacy));
}
