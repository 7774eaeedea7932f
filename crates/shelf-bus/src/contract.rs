#![allow(clippy::unwrap_used)] // A test suite: a failed unwrap is a failed test.

//! The contract every [`ChangeBus`] meets, run by each bus's tests. Each rule takes two bus
//! instances as two server instances would hold them (for the in-process bus: the same bus
//! twice) and checks what a stream on the second one sees after the first one publishes.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use shelf_core::{DeviceId, LibraryVersion, UserId};
use tokio::sync::{broadcast, watch};

use crate::{BusError, BusHealth, ChangeBus, VersionSource};

/// Long enough for any broker round trip on a loaded machine; a guard, not a measurement.
const PATIENCE: Duration = Duration::from_secs(20);

/// A version source for buses under test: no user has a stored version, so recovery adds nothing.
pub struct NoVersions;

#[async_trait]
impl VersionSource for NoVersions {
    async fn library_versions(&self, _users: &[UserId]) -> Result<Vec<(UserId, LibraryVersion)>, BusError> {
        Ok(Vec::new())
    }
}

async fn reaches(receiver: &mut watch::Receiver<Option<LibraryVersion>>, version: i64) {
    let wanted = Some(LibraryVersion(version));
    tokio::time::timeout(PATIENCE, receiver.wait_for(|seen| *seen >= wanted))
        .await
        .unwrap_or_else(|_| panic!("version {version} never arrived"))
        .unwrap();
}

/// Subscribing takes effect before the first publish: remote buses may subscribe lazily.
async fn settle(publisher: &dyn ChangeBus, subscriber: &mut watch::Receiver<Option<LibraryVersion>>, user: UserId) {
    // Publish a marker until it arrives: from then on the subscription is live end to end.
    for attempt in 1.. {
        publisher.publish(user, LibraryVersion(attempt));
        if tokio::time::timeout(Duration::from_millis(200), subscriber.wait_for(|seen| seen.is_some())).await.is_ok() {
            return;
        }
        assert!(attempt < 100, "the subscription never became live");
    }
}

/// BUS1: a version published on one instance reaches the user's subscribers on another, and
/// never another user's.
pub async fn bus1_versions_reach_that_users_subscribers_only(one: Arc<dyn ChangeBus>, two: Arc<dyn ChangeBus>) {
    let (alice, bob) = (UserId::new(), UserId::new());
    let mut alice_rx = two.subscribe(alice);
    let bob_rx = two.subscribe(bob);
    settle(one.as_ref(), &mut alice_rx, alice).await;
    one.publish(alice, LibraryVersion(1_000));
    reaches(&mut alice_rx, 1_000).await;
    assert_eq!(*bob_rx.borrow(), None, "another user's stream heard nothing");
}

/// BUS2 (spec RT3): a subscriber sees the newest version; older or repeated announcements,
/// arriving in any order, never move it back.
pub async fn bus2_versions_coalesce_and_never_go_back(one: Arc<dyn ChangeBus>, two: Arc<dyn ChangeBus>) {
    let user = UserId::new();
    let mut rx = two.subscribe(user);
    settle(one.as_ref(), &mut rx, user).await;
    for version in [500, 700, 600, 700, 650] {
        one.publish(user, LibraryVersion(version));
    }
    reaches(&mut rx, 700).await;
    one.publish(user, LibraryVersion(701));
    reaches(&mut rx, 701).await;
    assert_eq!(*rx.borrow(), Some(LibraryVersion(701)));
    // A late subscriber starts from what this instance last saw.
    let late = two.subscribe(user);
    assert!(late.borrow().is_none_or(|v| v <= LibraryVersion(701)));
}

/// BUS3: a bus names itself and reports itself healthy, and continuous (ADR 0013), while its
/// broker is reachable.
pub async fn bus3_reports_name_and_health(one: Arc<dyn ChangeBus>, _two: Arc<dyn ChangeBus>) {
    assert!(["in-process", "postgres", "redis"].contains(&one.name()));
    assert_eq!(one.health(), BusHealth::Healthy);
    assert!(one.continuity().is_some(), "a healthy bus is continuous");
}

/// Waits until every device of `devices` arrived on `receiver`, in any order, skipping other
/// tests' revocations (they share the broker's channel) but not a lag, which would hide a loss.
async fn hears_revocations(receiver: &mut broadcast::Receiver<DeviceId>, devices: &[DeviceId]) {
    let mut missing = devices.to_vec();
    tokio::time::timeout(PATIENCE, async {
        while !missing.is_empty() {
            let device = receiver.recv().await.unwrap();
            missing.retain(|wanted| *wanted != device);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("revocations {missing:?} never arrived"));
}

/// BUS4: a revocation announced on one instance reaches the revocation receivers of every
/// instance, the announcing one included (its own session cache evicts too), and names the
/// device it was announced for.
pub async fn bus4_revocations_reach_every_instance(one: Arc<dyn ChangeBus>, two: Arc<dyn ChangeBus>) {
    let mut here = one.revocations();
    let mut there = two.revocations();
    // Make sure the broker delivers to the second instance before revoking.
    let marker = UserId::new();
    let mut marker_rx = two.subscribe(marker);
    settle(one.as_ref(), &mut marker_rx, marker).await;
    let (first, second) = (DeviceId::new(), DeviceId::new());
    one.revoke(first);
    two.revoke(second);
    hears_revocations(&mut here, &[first, second]).await;
    hears_revocations(&mut there, &[first, second]).await;
}

/// Generates one test per rule; `$pair` is an async fn returning two bus instances and a guard.
#[macro_export]
macro_rules! bus_contract_tests {
    ($pair:path) => {
        $crate::bus_contract_tests!(@each $pair,
            bus1_versions_reach_that_users_subscribers_only,
            bus2_versions_coalesce_and_never_go_back,
            bus3_reports_name_and_health,
            bus4_revocations_reach_every_instance
        );
    };
    (@each $pair:path, $($name:ident),+) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (one, two, _guard) = $pair().await;
                $crate::contract::$name(one, two).await;
            }
        )+
    };
}
