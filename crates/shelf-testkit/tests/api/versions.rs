//! The version cache (ADR 0013): version checks answered from memory see every commit made
//! through this instance at once, and an interrupted bus sends them back to the database
//! (spec LV2, RT1).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use shelf_bus::{ChangeBus, InProcessBus};
use shelf_core::{LibraryMutation, LibraryVersion, MaterialBody, MaterialId, MaterialTitle, Tags, UserId};
use shelf_server::service::version_cache::VersionCache;
use shelf_testkit::{Backend, TestServer};
use tokio::sync::{broadcast, watch};

shelf_testkit::on_every_backend!(
    lv2_a_version_check_after_a_write_sees_the_write,
    lv2_cached_versions_follow_the_bus_and_only_while_it_is_continuous,
);

async fn lv2_a_version_check_after_a_write_sees_the_write(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    for i in 0..20 {
        // Every check after the first is answered from memory; none may lag the receipt.
        assert_eq!(server.library_version(&user.token).await, i + 1);
        let created = server.create_material(&user.token, &format!("material {i}")).await;
        assert_eq!(created["libraryVersion"], i + 2);
        assert_eq!(server.library_version(&user.token).await, i + 2);
    }
    assert!(!server.state.versions.is_empty(), "the checks went through the cache");
}

/// A bus whose continuity the test sets, to play a broker that drops and comes back.
struct Interruptible {
    inner: InProcessBus,
    continuity: Mutex<Option<u64>>,
}

impl ChangeBus for Interruptible {
    fn publish(&self, user: UserId, version: LibraryVersion) {
        self.inner.publish(user, version);
    }
    fn subscribe(&self, user: UserId) -> watch::Receiver<Option<LibraryVersion>> {
        self.inner.subscribe(user)
    }
    fn revoke(&self, device: shelf_core::DeviceId) {
        self.inner.revoke(device);
    }
    fn revocations(&self) -> broadcast::Receiver<shelf_core::DeviceId> {
        self.inner.revocations()
    }
    fn continuity(&self) -> Option<u64> {
        *self.continuity.lock().unwrap()
    }
    fn name(&self) -> &'static str {
        "interruptible"
    }
    fn spans_instances(&self) -> bool {
        self.inner.spans_instances()
    }
}

async fn lv2_cached_versions_follow_the_bus_and_only_while_it_is_continuous(backend: Backend) {
    let server = TestServer::start(backend).await;
    let store = server.store.as_ref();
    let user = UserId(server.user().await.user_id.parse().unwrap());
    let bus = Arc::new(Interruptible { inner: InProcessBus::new(), continuity: Mutex::new(Some(7)) });
    let cache = VersionCache::with_ttl(Duration::from_secs(3600));
    let commit = |title: &'static str| async move {
        let create = LibraryMutation::CreateMaterial {
            id: MaterialId::new(),
            title: MaterialTitle::parse(title).unwrap(),
            body: MaterialBody::parse("").unwrap(),
            tags: Tags::parse::<&str>(&[]).unwrap(),
            progress: None,
        };
        store.apply(user, &create, time::OffsetDateTime::now_utc()).await.unwrap().library_version
    };

    assert_eq!(cache.version(store, bus.as_ref(), user).await.unwrap(), LibraryVersion(1));
    // A commit announced on the bus is seen at once, without a read.
    let announced = commit("announced").await;
    bus.publish(user, announced);
    assert_eq!(cache.version(store, bus.as_ref(), user).await.unwrap(), announced);

    // A commit whose announcement was lost stays unseen while the bus claims continuity (the
    // TTL bounds that in production; this cache's is an hour)...
    let lost = commit("announcement lost").await;
    assert_eq!(cache.version(store, bus.as_ref(), user).await.unwrap(), announced, "answered from memory");
    // ...and is read once the bus reports an interruption.
    *bus.continuity.lock().unwrap() = Some(8);
    assert_eq!(cache.version(store, bus.as_ref(), user).await.unwrap(), lost);

    // While the bus is down nothing is served from memory, nor cached.
    *bus.continuity.lock().unwrap() = None;
    let unannounced = commit("while the bus is down").await;
    assert_eq!(cache.version(store, bus.as_ref(), user).await.unwrap(), unannounced);
    // Back, after an interruption: the entry of before it is not served.
    *bus.continuity.lock().unwrap() = Some(9);
    let after = commit("after the outage, unannounced").await;
    assert_eq!(cache.version(store, bus.as_ref(), user).await.unwrap(), after);

    // Past the time to live, the database is read again even on a continuous bus.
    let expiring = VersionCache::with_ttl(Duration::ZERO);
    assert_eq!(expiring.version(store, bus.as_ref(), user).await.unwrap(), after);
    let unseen = commit("never announced").await;
    assert_eq!(expiring.version(store, bus.as_ref(), user).await.unwrap(), unseen);
    expiring.sweep();
    assert!(expiring.is_empty(), "swept with its subscription");
}
