//! Two real `shelf serve` processes on one PostgreSQL database, over the PostgreSQL and the Redis
//! bus: a session ended through instance 1 — logout, device revocation, password change, account
//! deletion — is refused by instance 2 within a second, although instance 2 had just served it
//! from its session cache, and its streams there end (spec AU15, ADR 0011).

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use shelf_testkit::faults::PrivateRedis;
use shelf_testkit::{Api, Backend, SseReader, TestDatabase};

/// The promise: another instance refuses an ended session within this long.
const WITHIN: Duration = Duration::from_secs(1);
/// A guard against hanging, not a measurement.
const PATIENCE: Duration = Duration::from_secs(20);
const PASSWORD: &str = "correct horse battery";

struct Instance {
    api: Api,
    _serve: common::Serve,
}

async fn start_instance(database_url: &str, bus: &str) -> Instance {
    let serve = common::serve(database_url, &["--bus", bus, "--sse-heartbeat-secs", "1"]).await;
    Instance { api: Api::new(&serve.base), _serve: serve }
}

async fn register(api: &Api) -> String {
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let body = json!({"email": email, "password": PASSWORD});
    assert_eq!(api.call(Method::POST, "/api/auth/register", None, Some(body)).await.status, 201);
    email
}

/// Logs in as a new device: (token, device id).
async fn login(api: &Api, email: &str, device: &str) -> (String, String) {
    let body = json!({"email": email, "password": PASSWORD, "deviceName": device});
    let reply = api.call(Method::POST, "/api/auth/login", None, Some(body)).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    (reply.body["token"].as_str().unwrap().to_owned(), reply.body["deviceId"].as_str().unwrap().to_owned())
}

async fn version_status(api: &Api, token: &str) -> StatusCode {
    api.get("/api/library/version", token).await.status
}

/// Asks `api` with `token` until it refuses; every request sent more than [`WITHIN`] after
/// `ended` must be refused. Returns how long after `ended` the refused request was sent.
async fn refused_within_a_second(api: &Api, token: &str, ended: Instant, what: &str) -> Duration {
    loop {
        let sent = ended.elapsed();
        match version_status(api, token).await {
            StatusCode::UNAUTHORIZED => return sent,
            StatusCode::OK => {
                assert!(sent <= WITHIN, "{what}: instance 2 still served the token {sent:?} after it ended");
                assert!(sent < PATIENCE, "{what}: never refused");
            }
            other => panic!("{what}: unexpected {other}"),
        }
    }
}

async fn open_stream(api: &Api, token: &str) -> SseReader {
    let response = api.client.get(api.url("/api/library-version-events")).bearer_auth(token).send().await.unwrap();
    let mut stream = SseReader::new(response);
    assert_eq!(stream.status, 200);
    stream.next_event(PATIENCE).await.expect("initial version");
    stream
}

/// The stream's next named event is the final `auth` one, within [`WITHIN`] of `ended` (the
/// periodic session check would also end it, a second later at most).
async fn ends_with_auth(stream: &mut SseReader, ended: Instant) {
    let event = stream.next_event(PATIENCE).await.expect("a final event");
    assert_eq!(event.event.as_deref(), Some("auth"));
    println!("stream ended {:?} after its session", ended.elapsed());
}

async fn ended_sessions_are_refused_on_the_other_instance(bus: &str) {
    let database = TestDatabase::create(Backend::Postgres).await;
    let one = start_instance(&database.url, bus).await;
    let two = start_instance(&database.url, bus).await;
    let email = register(&one.api).await;
    let (main, _) = login(&one.api, &email, "main").await;
    let (phone, _) = login(&one.api, &email, "phone").await;
    let (tablet, tablet_id) = login(&one.api, &email, "tablet").await;
    let (laptop, _) = login(&one.api, &email, "laptop").await;
    // Instance 2 resolves (and caches) every one of them.
    for token in [&main, &phone, &tablet, &laptop] {
        assert_eq!(version_status(&two.api, token).await, StatusCode::OK);
    }
    let mut tablet_stream = open_stream(&two.api, &tablet).await;

    let reply = one.api.call(Method::POST, "/api/auth/logout", Some(&phone), None).await;
    let ended = Instant::now();
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let after = refused_within_a_second(&two.api, &phone, ended, "logout").await;
    println!("{bus}: logout on 1 -> refused on 2 by a request sent {after:?} later");

    let reply = one.api.delete(&format!("/api/devices/{tablet_id}"), &main).await;
    let ended = Instant::now();
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let after = refused_within_a_second(&two.api, &tablet, ended, "device revocation").await;
    println!("{bus}: device revoked on 1 -> refused on 2 by a request sent {after:?} later");
    ends_with_auth(&mut tablet_stream, ended).await;

    assert_eq!(version_status(&two.api, &laptop).await, StatusCode::OK);
    let body = json!({"currentPassword": PASSWORD, "newPassword": "a brand new password"});
    let reply = one.api.call(Method::POST, "/api/auth/password", Some(&main), Some(body)).await;
    let ended = Instant::now();
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let after = refused_within_a_second(&two.api, &laptop, ended, "password change").await;
    println!("{bus}: password changed on 1 -> other session refused on 2 by a request sent {after:?} later");
    assert_eq!(version_status(&two.api, &main).await, StatusCode::OK, "the session that changed it stays");

    let reply = one.api.call(Method::DELETE, "/api/account", Some(&main), Some(json!({"password": "a brand new password"}))).await;
    let ended = Instant::now();
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let after = refused_within_a_second(&two.api, &main, ended, "account deletion").await;
    println!("{bus}: account deleted on 1 -> refused on 2 by a request sent {after:?} later");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn au15_postgres_bus_carries_revocations_to_the_other_instance() {
    ended_sessions_are_refused_on_the_other_instance("postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn au15_redis_bus_carries_revocations_to_the_other_instance() {
    let redis = PrivateRedis::start().await;
    ended_sessions_are_refused_on_the_other_instance(&redis.url()).await;
}
