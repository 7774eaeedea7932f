//! The fault suite, short (the full runs: `shelf-faults`, crates/shelf-bench): a real `shelf serve`
//! killed with SIGKILL and restarted, or PostgreSQL crashed under two instances, while devices of
//! two users write and read; the history
//! checker finds no lost or doubled write, no gap or duplicate version, no non-monotonic read, no
//! missed own write, no half-applied mutation, no leak between users, and every device converges.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::time::Duration;

use shelf_testkit::faults::{kill_nine, postgres_restart, reconnect_storm, redis_restart, FaultPlan, StormPlan};
use shelf_testkit::{Backend, TestDatabase};

shelf_testkit::on_every_backend!(fs1_kill_9_while_devices_write_loses_nothing);

async fn fs1_kill_9_while_devices_write_loses_nothing(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let plan = FaultPlan { faults: 5, devices: 3, interval: Duration::from_millis(200) };
    let report = kill_nine(env!("CARGO_BIN_EXE_shelf").as_ref(), &database, &plan).await;
    println!("{}", report.summary(&format!("{backend:?}")));
    assert!(report.verdict.anomalies.is_empty(), "{:#?}", report.verdict.anomalies);
    assert!(report.verdict.writes > 20 && report.verdict.pages > 5, "the devices did work: {report:?}");
    assert!(report.retries > 0, "the kills were felt: {report:?}");
}

/// Two instances on a private PostgreSQL cluster that crashes and restarts twice: the instances
/// recover by themselves, the stream on the second one reaches the final version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs2_postgres_crash_restart_under_two_instances() {
    let plan = FaultPlan { faults: 2, devices: 3, interval: Duration::from_millis(400) };
    let report = postgres_restart(env!("CARGO_BIN_EXE_shelf").as_ref(), &plan).await;
    println!("{}", report.summary("postgres"));
    assert!(report.verdict.anomalies.is_empty(), "{:#?}", report.verdict.anomalies);
    assert!(report.stream_caught_up.is_some(), "the stream resumed: {report:?}");
    assert!(report.retries > 0, "the crashes were felt: {report:?}");
}

/// Two instances fanning out through a private Redis that is killed and started twice: nothing is
/// missed in the end (the stream on the second instance reaches the final version).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs4_redis_restarts_under_two_instances_miss_nothing() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let plan = FaultPlan { faults: 2, devices: 3, interval: Duration::from_millis(400) };
    let report = redis_restart(env!("CARGO_BIN_EXE_shelf").as_ref(), &database, &plan).await;
    println!("{}", report.summary("postgres"));
    assert!(report.verdict.anomalies.is_empty(), "{:#?}", report.verdict.anomalies);
    assert!(report.stream_caught_up.is_some(), "nothing missed: {report:?}");
}

/// A small reconnect storm: 500 streams dropped at once by a kill -9 all reach the version written
/// after the restart, and the server stays up (the 10,000-stream figure: `shelf-faults --storm`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs3_a_reconnect_storm_reaches_the_new_version_everywhere() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let plan = StormPlan { users: 10, streams_per_user: 50, base: Duration::from_millis(200), cap: Duration::from_secs(2) };
    let report = reconnect_storm(env!("CARGO_BIN_EXE_shelf").as_ref(), &database, &plan).await;
    println!("{}", report.summary());
    assert_eq!(report.behind, 0, "{report:?}");
    assert!(report.server_stayed_up, "{report:?}");
    assert!(report.attempts >= 2 * report.streams as u64, "every stream reconnected: {report:?}");
}
