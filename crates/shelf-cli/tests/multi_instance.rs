//! Two real `shelf serve` processes sharing one PostgreSQL database, fanning out through the
//! PostgreSQL and the Redis bus: a write through instance 1 reaches a stream on instance 2, also
//! across a broker outage (spec RT9, RT10). Version checks on instance 2, answered from its
//! version cache while the bus is continuous (ADR 0013), agree with its stream throughout.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::time::{Duration, Instant};

use serde_json::json;
use shelf_testkit::faults::PrivateRedis;
use shelf_testkit::{Api, Backend, SseReader, TestDatabase};
use sqlx::Connection;

const WAIT: Duration = Duration::from_secs(10);

/// A `shelf serve` child process, killed when dropped.
struct Instance {
    api: Api,
    _serve: common::Serve,
}

async fn start_instance(database_url: &str, bus: &str) -> Instance {
    let serve = common::serve(database_url, &["--bus", bus, "--bus-poll-millis", "200", "--sse-heartbeat-secs", "1"]).await;
    Instance { api: Api::new(&serve.base), _serve: serve }
}

async fn user(api: &Api) -> String {
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let body = json!({"email": email, "password": "correct horse battery"});
    assert_eq!(api.call(reqwest::Method::POST, "/api/auth/register", None, Some(body.clone())).await.status, 201);
    let login = api.call(reqwest::Method::POST, "/api/auth/login", None, Some(body)).await;
    login.body["token"].as_str().unwrap().to_owned()
}

async fn write(api: &Api, token: &str, title: &str) -> i64 {
    let reply = api.post("/api/materials", token, json!({"title": title})).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    reply.body["libraryVersion"].as_i64().unwrap()
}

/// Reads version events until one carries `version` (later ones may coalesce earlier ones).
async fn reaches(stream: &mut SseReader, version: i64) -> Duration {
    let started = Instant::now();
    loop {
        let event = stream.next_event(WAIT.saturating_sub(started.elapsed())).await;
        let seen = event.as_ref().and_then(|e| e.json()["libraryVersion"].as_i64());
        match seen {
            Some(seen) if seen >= version => {
                assert_eq!(seen, version, "no version beyond the last write");
                return started.elapsed();
            }
            Some(_) => continue,
            None => panic!("stream never reached version {version}"),
        }
    }
}

async fn open_stream(api: &Api, token: &str) -> SseReader {
    let response = api.client.get(api.url("/api/library-version-events")).bearer_auth(token).send().await.unwrap();
    let mut stream = SseReader::new(response);
    assert_eq!(stream.status, 200);
    stream.next_event(WAIT).await.expect("initial version");
    stream
}

/// `GET /api/library/version` on `api`: once `api`'s stream has announced a version, no check
/// there may answer an older one (the cache and the stream hear the same bus).
async fn checked_version(api: &Api, token: &str) -> i64 {
    let reply = api.get("/api/library/version", token).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    reply.body["libraryVersion"].as_i64().unwrap()
}

async fn bus_status(api: &Api) -> String {
    let ready = api.call(reqwest::Method::GET, "/readyz", None, None).await;
    ready.body["bus"].as_str().unwrap_or("").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rt9_postgres_bus_fans_out_and_recovers_a_dropped_listen_connection() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let one = start_instance(&database.url, "postgres").await;
    let two = start_instance(&database.url, "postgres").await;
    let token = user(&one.api).await;
    let other = user(&one.api).await;
    let mut stream = open_stream(&two.api, &token).await;
    let mut others = open_stream(&two.api, &other).await;

    assert_eq!(checked_version(&two.api, &token).await, 1, "cached on instance two from here on");
    let version = write(&one.api, &token, "through instance one").await;
    let latency = reaches(&mut stream, version).await;
    println!("postgres bus: write on 1 -> event on 2 in {latency:?}");
    assert_eq!(checked_version(&two.api, &token).await, version);

    // Drop every LISTEN connection of this test database, as a failover or network cut would.
    let name = database.url.rsplit('/').next().unwrap().to_owned();
    let mut admin = sqlx::PgConnection::connect(&shelf_testkit::postgres_admin_url()).await.unwrap();
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2",
    )
    .bind(&name)
    .bind(shelf_bus_postgres::LISTENER_APPLICATION_NAME)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(killed.len(), 2, "both instances had a LISTEN connection");
    let mut last = 0;
    for i in 0..5 {
        last = write(&one.api, &token, &format!("during the cut {i}")).await;
    }
    reaches(&mut stream, last).await;
    assert_eq!(checked_version(&two.api, &token).await, last, "no announcement of the cut is missed");
    let after = write(&one.api, &token, "after the cut").await;
    reaches(&mut stream, after).await;
    assert_eq!(checked_version(&two.api, &token).await, after);
    assert!(others.next_event(Duration::from_millis(500)).await.is_none(), "the other user hears nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rt10_redis_bus_fans_out_and_survives_a_redis_restart() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let mut redis = PrivateRedis::start().await;
    let one = start_instance(&database.url, &redis.url()).await;
    let two = start_instance(&database.url, &redis.url()).await;
    let token = user(&one.api).await;
    let mut stream = open_stream(&two.api, &token).await;
    assert_eq!(bus_status(&two.api).await, "healthy");

    assert_eq!(checked_version(&two.api, &token).await, 1);
    let version = write(&one.api, &token, "through instance one").await;
    let latency = reaches(&mut stream, version).await;
    println!("redis bus: write on 1 -> event on 2 in {latency:?}");
    assert_eq!(checked_version(&two.api, &token).await, version);

    redis.stop().await;
    let mut last = 0;
    for i in 0..3 {
        last = write(&one.api, &token, &format!("while redis is down {i}")).await;
    }
    // Instance 2 polls the database while Redis is away.
    reaches(&mut stream, last).await;
    assert_eq!(bus_status(&two.api).await, "degraded");
    // Served by the database while the bus is down, never from memory.
    let down = write(&one.api, &token, "checked while redis is down").await;
    assert_eq!(checked_version(&two.api, &token).await, down);

    let port = redis.port;
    let _redis = PrivateRedis::start_on(port).await;
    let started = Instant::now();
    while bus_status(&two.api).await != "healthy" {
        assert!(started.elapsed() < WAIT, "instance 2 reconnects to Redis");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = write(&one.api, &token, "after redis is back").await;
    reaches(&mut stream, after).await;
    assert_eq!(checked_version(&two.api, &token).await, after);
}
