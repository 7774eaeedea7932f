#![allow(clippy::unwrap_used)] // A test suite: a failed unwrap is a failed test.

//! Contract rules for sessions, stream tickets and login-attempt counting (spec AU1, AU7, RT6),
//! re-exported through [`crate::contract`] so [`contract_tests!`](crate::contract_tests) runs
//! them on every backend.

use std::sync::Arc;

use shelf_core::{DeviceId, UserId};
use time::Duration;

use crate::contract::{now, user};
use crate::{NewSession, Store};

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
    let unknown = uuid::Uuid::new_v4().as_bytes().to_vec();
    let together = store.sessions_by_token_hashes(&[expired.token_hash.clone(), live.token_hash.clone(), unknown], t).await.unwrap();
    assert_eq!(together, vec![(live.token_hash.clone(), auth.clone())], "only the live one, with its hash");
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
    let expiries = store.session_expiries(&[session.device_id, other], t).await.unwrap();
    assert_eq!(expiries.iter().map(|(device, _)| *device).collect::<Vec<_>>(), vec![session.device_id]);
    assert!((expiries[0].1 - session.expires_at).abs() < Duration::milliseconds(1), "stored to the microsecond");
    assert!(store.session_expiries(&[session.device_id], session.expires_at).await.unwrap().is_empty(), "expired by then");
    let window = std::time::Duration::from_secs(60);
    assert!(!store.ended_sessions(window).await.unwrap().contains(&session.device_id));
    store.revoke_session(u, session.device_id).await.unwrap();
    assert!(store.consume_stream_ticket(&orphaned, t).await.unwrap().is_none());
    assert!(store.session_expiries(&[session.device_id], t).await.unwrap().is_empty());
    assert!(store.ended_sessions(window).await.unwrap().contains(&session.device_id), "the revocation is logged");
}

/// RT5: every way a session is deleted — revocation, password change, account deletion — logs
/// the device in `ended_sessions` (instances end its streams from that log), which is purged.
pub async fn rt5_every_ended_session_is_logged(store: &dyn Store) {
    let window = std::time::Duration::from_secs(60);
    let u = user(store).await;
    let mut devices = Vec::new();
    for name in ["changed the password, deleted with the account", "signed out", "signed out too"] {
        devices.push(session(store, u, name).await.device_id);
    }
    let mut ended = store.change_password(u, "y", devices[0]).await.unwrap();
    ended.sort();
    let mut others = devices[1..].to_vec();
    others.sort();
    assert_eq!(ended, others);
    let logged = store.ended_sessions(window).await.unwrap();
    assert!(others.iter().all(|device| logged.contains(device)) && !logged.contains(&devices[0]));
    store.delete_user(u).await.unwrap();
    assert!(store.ended_sessions(window).await.unwrap().contains(&devices[0]), "account deletion logs its sessions");
    assert_eq!(store.purge_ended_sessions(std::time::Duration::from_secs(3600)).await.unwrap(), 0, "all recent");
    assert!(store.purge_ended_sessions(std::time::Duration::ZERO).await.unwrap() >= 3);
    assert!(store.ended_sessions(window).await.unwrap().is_empty());
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

/// A live session of `user` on a new device, expiring in 30 days.
pub(crate) async fn session(store: &dyn Store, user: UserId, name: &str) -> NewSession {
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
