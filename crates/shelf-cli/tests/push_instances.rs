//! Web Push with two real `shelf serve` processes on one PostgreSQL database (spec PU4, PU6): an
//! open stream on one instance holds back pushes caused by writes on the other, and writes racing
//! through both instances give each version to the device at most once, in increasing order.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::time::Duration;

use serde_json::json;
use shelf_testkit::push::PushServiceStandIn;
use shelf_testkit::{Api, Backend, SseReader, TestDatabase};
use sqlx::Connection;

const WAIT: Duration = Duration::from_secs(10);

async fn login(api: &Api, email: &str, device: &str) -> String {
    let body = json!({"email": email, "password": "correct horse battery", "deviceName": device});
    let login = api.call(reqwest::Method::POST, "/api/auth/login", None, Some(body)).await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    login.body["token"].as_str().unwrap().to_owned()
}

async fn write(api: &Api, token: &str, title: &str) -> i64 {
    let reply = api.post("/api/materials", token, json!({"title": title})).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["libraryVersion"].as_i64().unwrap()
}

async fn open_streams(database_url: &str) -> i64 {
    let mut connection = sqlx::PgConnection::connect(database_url).await.unwrap();
    sqlx::query_scalar("SELECT count(*) FROM stream_presence").fetch_one(&mut connection).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pu6_two_instances_push_each_version_once_and_respect_each_others_streams() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let flags = ["--bus", "postgres", "--push-allowed-hosts", "127.0.0.1"];
    let one = common::serve(&database.url, &flags).await;
    let two = common::serve(&database.url, &flags).await;
    let (one, two) = (Api::new(&one.base), Api::new(&two.base));
    let mut service = PushServiceStandIn::start().await;

    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let register = json!({"email": email, "password": "correct horse battery"});
    assert_eq!(one.call(reqwest::Method::POST, "/api/auth/register", None, Some(register)).await.status, 201);
    let laptop = login(&one, &email, "laptop").await;
    let phone = login(&two, &email, "phone").await;
    let subscription = service.subscription();
    assert_eq!(two.post("/api/push/subscriptions", &phone, subscription.json()).await.status, 201);
    let key = one.call(reqwest::Method::GET, "/api/push/vapid-public-key", None, None).await.body["publicKey"].clone();
    assert_eq!(key, two.call(reqwest::Method::GET, "/api/push/vapid-public-key", None, None).await.body["publicKey"], "one key per database");

    // The phone's stream is on instance two; a write through instance one pushes nothing.
    let response = two.client.get(two.url("/api/library-version-events")).bearer_auth(&phone).send().await.unwrap();
    let mut stream = SseReader::new(response);
    stream.next_event(WAIT).await.expect("first event");
    let first = write(&one, &laptop, "while the phone's stream is open").await;
    assert_eq!(stream.next_event(WAIT).await.unwrap().json()["libraryVersion"], first);
    drop(stream);
    let deadline = tokio::time::Instant::now() + WAIT;
    while open_streams(&database.url).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "instance two never cleared the closed stream");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Writes racing through both instances: pushes arrive in increasing order, none twice.
    let writes = (0..10).map(|n| {
        let (api, token) = if n % 2 == 0 { (one.clone(), laptop.clone()) } else { (two.clone(), laptop.clone()) };
        tokio::spawn(async move { write(&api, &token, &format!("race {n}")).await })
    });
    let mut last = 0;
    for write in writes.collect::<Vec<_>>() {
        last = last.max(write.await.unwrap());
    }
    let mut pushed = Vec::new();
    while pushed.last() != Some(&last) {
        let push = service.next(WAIT).await.expect("pushes until the last version");
        let opened = subscription.open(&push);
        assert_eq!(opened.vapid_key, key.as_str().unwrap());
        pushed.push(opened.payload["libraryVersion"].as_i64().unwrap());
    }
    assert!(pushed.iter().all(|v| *v > first), "nothing pushed while the stream was open: {pushed:?}");
    // Claims are ordered (a version is claimed only above the last claimed one), sends are not:
    // two instances' sends may reach the push service in either order, as push services may
    // deliver them (the service worker keeps the highest version it was told, `recordPushedVersion`).
    let mut distinct = pushed.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), pushed.len(), "each version at most once: {pushed:?}");
    println!("10 racing writes through two instances -> pushes {pushed:?}");
}
