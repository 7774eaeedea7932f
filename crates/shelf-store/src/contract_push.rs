#![allow(clippy::unwrap_used)] // A test suite: a failed unwrap is a failed test.

//! Contract rules for Web Push records (spec PU1–PU5), re-exported through
//! [`crate::contract`] so [`contract_tests!`](crate::contract_tests) runs them on every backend.

use std::sync::Arc;

use shelf_core::{DeviceId, LibraryVersion, UserId};
use time::Duration;
use uuid::Uuid;

use crate::contract::{now, user};
use crate::{NewPushSubscription, NewSession, Store};

async fn session(store: &dyn Store, user: UserId, expires_in: Duration) -> DeviceId {
    let t = now();
    let session = NewSession {
        device_id: DeviceId::new(),
        user_id: user,
        token_hash: Uuid::new_v4().as_bytes().to_vec(),
        device_name: "browser".into(),
        created_at: t,
        expires_at: t + expires_in,
    };
    store.create_session(&session).await.unwrap();
    session.device_id
}

fn subscription(user: UserId, device: DeviceId, endpoint: &str) -> NewPushSubscription {
    NewPushSubscription {
        device_id: device,
        user_id: user,
        endpoint: endpoint.to_owned(),
        p256dh: vec![4; 65],
        auth: vec![7; 16],
        created_at: now(),
    }
}

/// PU1: one VAPID key per database; the first stored wins, later candidates get it back.
pub async fn pu1_the_first_vapid_key_stored_wins(store: &dyn Store) {
    let first = store.vapid_private_key(&[1; 32], now()).await.unwrap();
    assert_eq!(first, vec![1; 32]);
    assert_eq!(store.vapid_private_key(&[2; 32], now()).await.unwrap(), vec![1; 32]);
}

/// PU2: a subscription belongs to one live session of its user, is replaced by the next one
/// of that device, and goes with the session; another user can neither add nor remove it.
pub async fn pu2_subscriptions_live_and_die_with_their_session(store: &dyn Store) {
    let (alice, bob) = (user(store).await, user(store).await);
    let laptop = session(store, alice, Duration::days(1)).await;
    let phone = session(store, alice, Duration::days(1)).await;
    assert!(store.put_push_subscription(&subscription(alice, laptop, "https://push.example/a")).await.unwrap());
    assert!(store.put_push_subscription(&subscription(alice, laptop, "https://push.example/b")).await.unwrap(), "replaced");
    assert!(store.put_push_subscription(&subscription(alice, phone, "https://push.example/p")).await.unwrap());
    assert!(!store.put_push_subscription(&subscription(bob, laptop, "https://push.example/x")).await.unwrap(), "not Bob's session");
    assert!(!store.put_push_subscription(&subscription(alice, DeviceId::new(), "https://push.example/y")).await.unwrap());
    let mut devices = store.push_devices(alice).await.unwrap();
    devices.sort_by_key(|d| d.0);
    let mut expected = vec![laptop, phone];
    expected.sort_by_key(|d| d.0);
    assert_eq!(devices, expected);
    assert!(store.push_devices(bob).await.unwrap().is_empty());

    assert!(!store.delete_push_subscription(bob, laptop).await.unwrap());
    assert!(!store.discard_push_subscription(laptop, "https://push.example/a").await.unwrap(), "an older endpoint");
    assert!(store.discard_push_subscription(laptop, "https://push.example/b").await.unwrap());
    assert!(store.delete_push_subscription(alice, phone).await.unwrap());
    assert!(!store.delete_push_subscription(alice, phone).await.unwrap());

    store.put_push_subscription(&subscription(alice, phone, "https://push.example/p")).await.unwrap();
    store.revoke_session(alice, phone).await.unwrap();
    assert!(store.push_devices(alice).await.unwrap().is_empty(), "revocation removes the subscription");
}

/// PU3: a version is claimed once per device, never below one already claimed, and only for a
/// live session without a recently seen stream.
pub async fn pu3_each_version_is_claimed_once(store: &dyn Store) {
    let alice = user(store).await;
    let laptop = session(store, alice, Duration::days(1)).await;
    let expired = session(store, alice, Duration::seconds(-1)).await;
    store.put_push_subscription(&subscription(alice, laptop, "https://push.example/a")).await.unwrap();
    store.put_push_subscription(&subscription(alice, expired, "https://push.example/e")).await.unwrap();
    let (t, since) = (now(), now() - Duration::minutes(1));

    let targets = store.push_targets(&[alice, UserId::new()], t, since).await.unwrap();
    assert_eq!(targets.len(), 1, "the expired session is no target");
    assert_eq!((targets[0].device_id, targets[0].pushed_version), (laptop, LibraryVersion(0)));
    let claimed = store.claim_push(laptop, LibraryVersion(5), t, since).await.unwrap().unwrap();
    assert_eq!((claimed.endpoint.as_str(), claimed.p256dh.len(), claimed.auth.len()), ("https://push.example/a", 65, 16));
    assert!(store.claim_push(laptop, LibraryVersion(5), t, since).await.unwrap().is_none(), "claimed once");
    assert!(store.claim_push(laptop, LibraryVersion(4), t, since).await.unwrap().is_none(), "never backwards");
    assert!(store.claim_push(expired, LibraryVersion(5), t, since).await.unwrap().is_none());
    assert_eq!(store.push_targets(&[alice], t, since).await.unwrap()[0].pushed_version, LibraryVersion(5));
    // A new subscription of the same device keeps the versions already pushed.
    store.put_push_subscription(&subscription(alice, laptop, "https://push.example/b")).await.unwrap();
    assert!(store.claim_push(laptop, LibraryVersion(5), t, since).await.unwrap().is_none());
}

/// PU4: a device with a stream seen on any instance since the cut-off is no target and cannot
/// be claimed; clearing that instance's presence (or the cut-off passing it) makes it one again.
pub async fn pu4_stream_presence_holds_pushes_back(store: &dyn Store) {
    let alice = user(store).await;
    let laptop = session(store, alice, Duration::days(1)).await;
    let revoked = session(store, alice, Duration::days(1)).await;
    store.revoke_session(alice, revoked).await.unwrap();
    store.put_push_subscription(&subscription(alice, laptop, "https://push.example/a")).await.unwrap();
    let (one, two) = (Uuid::new_v4(), Uuid::new_v4());
    let t = now();
    let since = t - Duration::minutes(1);
    store.record_stream_presence(one, &[laptop, revoked], t).await.unwrap();
    store.record_stream_presence(two, &[laptop], t).await.unwrap();
    assert!(store.push_targets(&[alice], t, since).await.unwrap().is_empty());
    assert!(store.claim_push(laptop, LibraryVersion(2), t, since).await.unwrap().is_none());
    store.clear_stream_presence(one, Some(&[laptop])).await.unwrap();
    assert!(store.push_targets(&[alice], t, since).await.unwrap().is_empty(), "still open on instance two");
    assert_eq!(store.push_targets(&[alice], t, t + Duration::seconds(1)).await.unwrap().len(), 1, "stale presence");
    store.clear_stream_presence(two, None).await.unwrap();
    assert_eq!(store.push_targets(&[alice], t, since).await.unwrap().len(), 1);
    assert!(store.claim_push(laptop, LibraryVersion(2), t, since).await.unwrap().is_some());
}

/// PU3: instances racing to claim the same versions: each version is won by exactly one.
pub async fn pu3_racing_claims_are_won_once(store: Arc<dyn Store>) {
    let alice = user(store.as_ref()).await;
    let laptop = session(store.as_ref(), alice, Duration::days(1)).await;
    store.put_push_subscription(&subscription(alice, laptop, "https://push.example/a")).await.unwrap();
    let (t, since) = (now(), now() - Duration::minutes(1));
    let mut tasks = Vec::new();
    for version in 2..=11 {
        for _ in 0..3 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store.claim_push(laptop, LibraryVersion(version), t, since).await.unwrap().map(|_| version)
            }));
        }
    }
    let mut won = Vec::new();
    for task in tasks {
        won.extend(task.await.unwrap());
    }
    let mut unique = won.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(won.len(), unique.len(), "a version was claimed twice: {won:?}");
    assert!(won.contains(&11), "the highest version is always claimed: {won:?}");
}
