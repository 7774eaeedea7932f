//! Issue 9 item 9: login and registration limits (AU7) and the bounded hashing queue (AU8),
//! with the default limits. Clients are told apart through a trusted proxy's X-Forwarded-For,
//! the way a deployment behind a reverse proxy sees them.

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shelf_server::ServerSettings;
use shelf_testkit::{behind_local_proxy, Api, Backend, Reply, TestServer};

shelf_testkit::on_every_backend!(
    au7_a_guessing_flood_on_one_account_gets_ten_password_checks,
    au7_failed_logins_are_limited_per_client_address,
    au7_registrations_are_limited_per_address_and_forwarded_for_only_counts_behind_trusted_proxies,
    au8_a_saturated_hashing_queue_sheds_with_503,
);

const PASSWORD: &str = "correct horse battery";


async fn send(api: &Api, path: &str, client: Option<&str>, body: Value) -> Reply {
    let mut request = api.client.request(Method::POST, api.url(path)).json(&body);
    if let Some(address) = client {
        request = request.header("x-forwarded-for", address);
    }
    Api::reply(request.send().await.unwrap()).await
}

async fn login(api: &Api, client: &str, email: &str, password: &str) -> Reply {
    send(api, "/api/auth/login", Some(client), json!({"email": email, "password": password})).await
}

async fn register(api: &Api, client: Option<&str>) -> Reply {
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    send(api, "/api/auth/register", client, json!({"email": email, "password": PASSWORD})).await
}

fn assert_rate_limited(reply: &Reply) {
    assert_eq!((reply.status, reply.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"), "{:?}", reply.body);
    let retry: u64 = reply.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry), "Retry-After {retry} within the 15-minute window");
}

/// The probe: 200 wrong-password logins at once. Each reserves its failure before any
/// hashing, so exactly ten reach argon2 and the rest are refused at the cost of one upsert.
async fn au7_a_guessing_flood_on_one_account_gets_ten_password_checks(backend: Backend) {
    let server = TestServer::start_with(backend, behind_local_proxy()).await;
    let victim = server.user().await;
    // Correct logins never count: a user with many devices is never locked out by them.
    for device in 0..12 {
        assert_eq!(login(&server, "192.0.2.1", &victim.email, PASSWORD).await.status, StatusCode::OK, "device {device}");
    }
    let replies: Vec<Reply> = futures::stream::iter(0..200)
        .map(|i| {
            let api = server.api.clone();
            let email = victim.email.to_uppercase(); // the same account however it is spelled
            async move { login(&api, &format!("203.0.113.{}", i % 250), &email, "wrong password").await }
        })
        .buffer_unordered(200)
        .collect()
        .await;
    let checked = replies.iter().filter(|r| r.code() == "invalid_credentials").count();
    assert_eq!(checked, 10, "ten failures per account per window");
    for reply in replies.iter().filter(|r| r.code() != "invalid_credentials") {
        assert_rate_limited(reply);
    }
    // The account is closed for the window, even to its password; other accounts are not.
    assert_rate_limited(&login(&server, "192.0.2.1", &victim.email, PASSWORD).await);
    let other = server.user().await;
    assert_eq!(login(&server, "203.0.113.1", &other.email, PASSWORD).await.status, StatusCode::OK);
}

async fn au7_failed_logins_are_limited_per_client_address(backend: Backend) {
    let server = TestServer::start_with(backend, behind_local_proxy()).await;
    let user = server.user().await;
    let attacker = "198.51.100.7";
    // One guess at each of 100 addresses (unknown ones cost the same decoy check), a few at a time.
    let replies: Vec<Reply> = futures::stream::iter(0..100)
        .map(|i| {
            let api = server.api.clone();
            async move { login(&api, attacker, &format!("guess-{i}@example.com"), "wrong password").await }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    assert!(replies.iter().all(|r| r.code() == "invalid_credentials"), "the first 100 failures are answered");
    assert_rate_limited(&login(&server, attacker, "guess-101@example.com", "wrong password").await);
    assert_rate_limited(&login(&server, attacker, &user.email, PASSWORD).await);
    assert_eq!(login(&server, "198.51.100.8", &user.email, PASSWORD).await.status, StatusCode::OK, "other addresses log in");
}

async fn au7_registrations_are_limited_per_address_and_forwarded_for_only_counts_behind_trusted_proxies(backend: Backend) {
    let server = TestServer::start_with(backend, behind_local_proxy()).await;
    for _ in 0..20 {
        assert_eq!(register(&server, Some("192.0.2.50")).await.status, StatusCode::CREATED);
    }
    assert_rate_limited(&register(&server, Some("192.0.2.50")).await);
    assert_eq!(register(&server, Some("192.0.2.51")).await.status, StatusCode::CREATED);
    // Invalid input is refused before it counts or costs a hash.
    let bad = send(&server, "/api/auth/register", Some("192.0.2.51"), json!({"email": "x", "password": PASSWORD})).await;
    assert_eq!(bad.code(), "validation_failed");

    // Without trusted proxies the header is anyone's to write, so the socket peer counts.
    let direct = TestServer::start(backend).await;
    for i in 0..20 {
        let reply = register(&direct, Some(&format!("192.0.2.{i}"))).await;
        assert_eq!(reply.status, StatusCode::CREATED);
    }
    assert_rate_limited(&register(&direct, Some("192.0.2.200")).await);
}

/// With every core hashing and no room to wait, a login or registration is shed at once with
/// 503 and Retry-After instead of queueing; nothing is counted against the client.
async fn au8_a_saturated_hashing_queue_sheds_with_503(backend: Backend) {
    let server = TestServer::start_with(backend, ServerSettings { hashing_queue: 0, ..behind_local_proxy() }).await;
    let user = server.user().await;
    let pool = server.state.hashing.clone();
    let cores = pool.idle_cores();
    let mut releases = Vec::new();
    let holders: Vec<_> = (0..cores)
        .map(|_| {
            let (release, held) = std::sync::mpsc::channel::<()>();
            releases.push(release);
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(move || held.recv().is_ok()).await })
        })
        .collect();
    while pool.idle_cores() > 0 {
        tokio::task::yield_now().await;
    }
    for _ in 0..12 {
        let shed = login(&server, "192.0.2.9", &user.email, "wrong password").await;
        assert_eq!((shed.status, shed.code()), (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"));
        assert_eq!(shed.headers["retry-after"], "1");
    }
    assert_eq!(register(&server, None).await.status, StatusCode::SERVICE_UNAVAILABLE);
    for release in releases {
        release.send(()).unwrap();
    }
    for holder in holders {
        assert!(holder.await.unwrap().unwrap());
    }
    // Twelve shed attempts were refunded: the account still has its ten failures.
    assert_eq!(login(&server, "192.0.2.9", &user.email, "wrong password").await.code(), "invalid_credentials");
    assert_eq!(login(&server, "192.0.2.9", &user.email, PASSWORD).await.status, StatusCode::OK);
}
