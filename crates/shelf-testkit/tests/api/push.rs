//! Web Push end to end (spec PU1–PU7): a real server pushes to a stand-in push service on
//! 127.0.0.1 that checks every request as a real one would and decrypts it as a browser would.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use shelf_server::service::push::{AllowedHosts, PushSettings};
use shelf_server::ServerSettings;
use shelf_testkit::push::{Answer, BrowserSubscription, PushServiceStandIn, ReceivedPush};
use shelf_testkit::{Backend, TestServer, TestUser};

shelf_testkit::on_every_backend!(
    pu1_the_vapid_public_key_is_public_and_signs_every_push,
    pu2_subscriptions_are_validated,
    pu2_subscriptions_go_with_their_device_and_stay_with_their_user,
    pu4_a_device_with_an_open_stream_gets_no_push,
    pu4_a_device_with_a_stream_recorded_for_other_instances_gets_no_push,
    pu5_a_gone_subscription_is_deleted,
    pu5_retry_after_is_honoured,
    pu6_a_push_service_that_never_answers_does_not_slow_writes,
    pu7_a_burst_yields_few_pushes_ending_with_the_final_version,
);

const WAIT: Duration = Duration::from_secs(10);

fn push_settings() -> ServerSettings {
    ServerSettings {
        push: PushSettings {
            allowed_hosts: AllowedHosts::parse("127.0.0.1").unwrap(),
            min_interval: Duration::from_millis(200),
            retry_base: Duration::from_millis(200),
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn start(backend: Backend) -> (TestServer, PushServiceStandIn) {
    (TestServer::start_with(backend, push_settings()).await, PushServiceStandIn::start().await)
}

/// Logs `user` in as another device: (token, deviceId).
async fn device(server: &TestServer, user: &TestUser, name: &str) -> (String, String) {
    let login = server.login(user, name).await;
    (login.body["token"].as_str().unwrap().to_owned(), login.body["deviceId"].as_str().unwrap().to_owned())
}

async fn subscribe(server: &TestServer, token: &str, subscription: &BrowserSubscription) {
    let reply = server.post("/api/push/subscriptions", token, subscription.json()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
}

/// The next push the stand-in receives; fails the test after `WAIT`.
async fn next_push(service: &mut PushServiceStandIn) -> ReceivedPush {
    service.next(WAIT).await.expect("a push within the wait")
}

/// Waits for a condition the server reaches asynchronously (a deleted subscription, a closed
/// stream noticed); fails after `WAIT`.
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn push_flags(server: &TestServer, token: &str) -> Vec<(String, bool)> {
    let reply = server.get("/api/devices", token).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.body.as_array().unwrap().iter().map(|d| (d["deviceId"].as_str().unwrap().to_owned(), d["push"].as_bool().unwrap())).collect()
}

async fn has_push(server: &TestServer, token: &str, device: &str) -> bool {
    push_flags(server, token).await.iter().any(|(id, push)| id == device && *push)
}

async fn pu1_the_vapid_public_key_is_public_and_signs_every_push(backend: Backend) {
    let metrics = shelf_server::metrics::install().unwrap();
    let (server, mut service) = start(backend).await;
    let anonymous = server.client.get(server.url("/api/push/vapid-public-key")).send().await.unwrap();
    let key = shelf_testkit::Api::reply(anonymous).await;
    assert_eq!(key.status, StatusCode::OK);
    let public_key = key.body["publicKey"].as_str().unwrap().to_owned();
    use base64::Engine;
    assert_eq!(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&public_key).unwrap()[0], 4, "uncompressed point");

    let laptop = server.user().await;
    let (phone, phone_id) = device(&server, &laptop, "phone").await;
    let subscription = service.subscription();
    subscribe(&server, &phone, &subscription).await;
    assert_eq!(push_flags(&server, &laptop.token).await, vec![(laptop.device_id.clone(), false), (phone_id, true)]);

    server.create_material(&laptop.token, "from the laptop").await;
    let opened = subscription.open(&next_push(&mut service).await);
    let version = server.get("/api/library/version", &laptop.token).await.body;
    assert_eq!(opened.payload, json!({"libraryVersion": 2, "epoch": version["epoch"]}));
    assert_eq!(opened.vapid_key, public_key);
    assert_eq!(opened.subject, "mailto:admin@localhost");
    // OP3: the delivery is counted once the push service's answer is in.
    eventually("shelf_push_total counts the delivery", || {
        let rendered = metrics.render();
        async move { rendered.contains("shelf_push_total{result=\"delivered\"}") }
    })
    .await;
}

async fn pu2_subscriptions_are_validated(backend: Backend) {
    let (server, service) = start(backend).await;
    let user = server.user().await;
    let good = service.subscription().json();
    let with = |path: &[&str], value: Value| {
        let mut body = good.clone();
        let mut target = &mut body;
        for key in &path[..path.len() - 1] {
            target = &mut target[*key];
        }
        target[path[path.len() - 1]] = value;
        body
    };
    let long = format!("{}/{}", service.base, "x".repeat(2100));
    let port = service.base.rsplit(':').next().unwrap().to_owned();
    for (case, body) in [
        ("not allowed", with(&["endpoint"], json!("https://push.evil.example/x"))),
        ("http to an unlisted loopback", with(&["endpoint"], json!(format!("http://127.0.0.2:{port}/x")))),
        ("http to a name not listed", with(&["endpoint"], json!(format!("http://localhost:{port}/x")))),
        ("not http", with(&["endpoint"], json!("ftp://127.0.0.1/x"))),
        ("credentials", with(&["endpoint"], json!(format!("http://a:b@127.0.0.1:{port}/x")))),
        ("too long", with(&["endpoint"], json!(long))),
        ("short key", with(&["keys", "p256dh"], json!("BAAA"))),
        ("not on the curve", with(&["keys", "p256dh"], json!(format!("BA{}", "A".repeat(85))))),
        ("not base64url", with(&["keys", "p256dh"], json!("!".repeat(87)))),
        ("short auth", with(&["keys", "auth"], json!("AAAAAAAAAAAAAAAAAAAA"))),
    ] {
        let reply = server.post("/api/push/subscriptions", &user.token, body).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "validation_failed"), "{case}: {:?}", reply.body);
    }
    assert!(!has_push(&server, &user.token, &user.device_id).await);
    let anonymous = server.call(reqwest::Method::POST, "/api/push/subscriptions", None, Some(good.clone())).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    subscribe(&server, &user.token, &service.subscription()).await;
    assert!(has_push(&server, &user.token, &user.device_id).await);
}

async fn pu2_subscriptions_go_with_their_device_and_stay_with_their_user(backend: Backend) {
    let (server, service) = start(backend).await;
    let alice = server.user().await;
    let (phone, phone_id) = device(&server, &alice, "phone").await;
    let (tablet, tablet_id) = device(&server, &alice, "tablet").await;
    let bob = server.user().await;
    subscribe(&server, &phone, &service.subscription()).await;
    subscribe(&server, &tablet, &service.subscription()).await;
    subscribe(&server, &bob.token, &service.subscription()).await;

    // Bob sees only his own device, and removing "his" subscription leaves Alice's alone.
    assert_eq!(push_flags(&server, &bob.token).await, vec![(bob.device_id.clone(), true)]);
    assert_eq!(server.delete("/api/push/subscriptions", &bob.token).await.status, StatusCode::NO_CONTENT);
    assert_eq!(server.delete("/api/push/subscriptions", &bob.token).await.status, StatusCode::NO_CONTENT, "idempotent");
    assert!(!has_push(&server, &bob.token, &bob.device_id).await);
    assert!(has_push(&server, &alice.token, &phone_id).await && has_push(&server, &alice.token, &tablet_id).await);
    assert_eq!(server.delete(&format!("/api/devices/{phone_id}"), &bob.token).await.status, StatusCode::NOT_FOUND);

    // Revoking the phone and logging the tablet out take their subscriptions along.
    assert_eq!(server.delete(&format!("/api/devices/{phone_id}"), &alice.token).await.status, StatusCode::NO_CONTENT);
    assert_eq!(server.post("/api/auth/logout", &tablet, json!({})).await.status, StatusCode::NO_CONTENT);
    let user_id = shelf_core::UserId(alice.user_id.parse().unwrap());
    assert!(server.store.push_devices(user_id).await.unwrap().is_empty());
}

/// One instance (the in-process bus): its stream hub says who has a stream open.
async fn pu4_a_device_with_an_open_stream_gets_no_push(backend: Backend) {
    let server = TestServer::start_with(backend, push_settings()).await;
    pu4_no_push_while_a_stream_is_open(server).await;
}

/// A bus spanning instances: open streams are recorded in the database for every instance.
async fn pu4_a_device_with_a_stream_recorded_for_other_instances_gets_no_push(backend: Backend) {
    let server = TestServer::start_spanning(backend, push_settings()).await;
    pu4_no_push_while_a_stream_is_open(server).await;
}

async fn pu4_no_push_while_a_stream_is_open(server: TestServer) {
    let mut service = PushServiceStandIn::start().await;
    let alice = server.user().await;
    let (phone, phone_id) = device(&server, &alice, "phone").await;
    let (tablet, _) = device(&server, &alice, "tablet").await;
    let (phone_subscription, tablet_subscription) = (service.subscription(), service.subscription());
    subscribe(&server, &phone, &phone_subscription).await;
    subscribe(&server, &tablet, &tablet_subscription).await;

    let mut stream = server.events(&phone, "", None).await;
    stream.next_event(WAIT).await.expect("the first event comes after the stream was recorded");
    let user = shelf_core::UserId(alice.user_id.parse().unwrap());
    let phone_device = shelf_core::DeviceId(phone_id.parse().unwrap());
    let now = time::OffsetDateTime::now_utc();
    let targets = server.store.push_targets(&[user], now, now - time::Duration::minutes(1)).await.unwrap();
    let recorded = !targets.iter().any(|t| t.device_id == phone_device);
    assert_eq!(recorded, server.state.bus.spans_instances(), "the stream is written down only for other instances");
    server.create_material(&alice.token, "v2").await;
    assert_eq!(stream.next_event(WAIT).await.unwrap().json()["libraryVersion"], 2);
    let push = next_push(&mut service).await;
    assert_eq!(tablet_subscription.open(&push).payload["libraryVersion"], 2, "only the tablet, which has no stream");

    drop(stream);
    eventually("the closed stream is noticed", || async {
        let now = time::OffsetDateTime::now_utc();
        let targets = server.store.push_targets(&[user], now, now - time::Duration::minutes(1)).await.unwrap();
        targets.iter().any(|t| t.device_id == phone_device) && !server.state.hub.has_streams(phone_device)
    })
    .await;
    server.create_material(&alice.token, "v3").await;
    // A device's pushes are sent one after another, so the phone's first push is its only one.
    loop {
        let push = next_push(&mut service).await;
        if phone_subscription.is_for(&push) {
            assert_eq!(phone_subscription.open(&push).payload["libraryVersion"], 3, "the phone got nothing while its stream was open");
            break;
        }
    }
}

async fn pu5_a_gone_subscription_is_deleted(backend: Backend) {
    let (server, mut service) = start(backend).await;
    let alice = server.user().await;
    let (phone, phone_id) = device(&server, &alice, "phone").await;
    subscribe(&server, &phone, &service.subscription()).await;
    service.script([Answer::Status(410, None)]);
    server.create_material(&alice.token, "v2").await;
    next_push(&mut service).await;
    eventually("the subscription is deleted after 410", || async { !has_push(&server, &alice.token, &phone_id).await }).await;
    server.create_material(&alice.token, "v3").await;
    assert!(service.next(Duration::from_millis(500)).await.is_none(), "no push to a deleted subscription");
}

async fn pu5_retry_after_is_honoured(backend: Backend) {
    let (server, mut service) = start(backend).await;
    let alice = server.user().await;
    let (phone, _) = device(&server, &alice, "phone").await;
    let subscription = service.subscription();
    subscribe(&server, &phone, &subscription).await;
    service.script([Answer::Status(429, Some("1")), Answer::Status(503, None)]);
    server.create_material(&alice.token, "v2").await;
    let refused = next_push(&mut service).await;
    let unavailable = next_push(&mut service).await;
    let delivered = next_push(&mut service).await;
    assert!(unavailable.at.duration_since(refused.at) >= Duration::from_secs(1), "the second attempt waited for Retry-After");
    assert!(delivered.at > unavailable.at);
    for push in [&refused, &unavailable, &delivered] {
        assert_eq!(subscription.open(push).payload["libraryVersion"], 2);
    }
}

async fn pu6_a_push_service_that_never_answers_does_not_slow_writes(backend: Backend) {
    let (server, mut service) = start(backend).await;
    let alice = server.user().await;
    let (phone, _) = device(&server, &alice, "phone").await;
    subscribe(&server, &phone, &service.subscription()).await;
    let release = Arc::new(tokio::sync::Notify::new());
    service.script([Answer::HoldUntil(release.clone()), Answer::Never]);
    server.create_material(&alice.token, "v2").await;
    next_push(&mut service).await; // held: the push service has not answered
    for n in 3..=6 {
        // Each write answers while the push request is still unanswered.
        let created = server.create_material(&alice.token, &format!("v{n}")).await;
        assert_eq!(created["libraryVersion"], n);
    }
    release.notify_one();
    let next = next_push(&mut service).await;
    assert_eq!(next.header("topic"), Some("shelf-library"));
    // The second push (no answer at all) does not hold writes either.
    let created = server.create_material(&alice.token, "v7").await;
    assert_eq!(created["libraryVersion"], 7);
}

async fn pu7_a_burst_yields_few_pushes_ending_with_the_final_version(backend: Backend) {
    let (server, mut service) = start(backend).await;
    let alice = server.user().await;
    let (phone, _) = device(&server, &alice, "phone").await;
    let subscription = service.subscription();
    subscribe(&server, &phone, &subscription).await;
    let release = Arc::new(tokio::sync::Notify::new());
    service.script([Answer::HoldUntil(release.clone())]);
    for n in 0..20 {
        server.create_material(&alice.token, &format!("burst {n}")).await;
    }
    let final_version = server.library_version(&alice.token).await;
    assert_eq!(final_version, 21);
    release.notify_one();
    let mut versions = Vec::new();
    while versions.last() != Some(&final_version) {
        versions.push(subscription.open(&next_push(&mut service).await).payload["libraryVersion"].as_i64().unwrap());
    }
    println!("a burst of 20 changes -> pushes of versions {versions:?}");
    assert!(versions.len() <= 3, "20 changes gave {} pushes: {versions:?}", versions.len());
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
}
