//! The account lifecycle (AU11–AU14): sliding expiry, password change, account deletion.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use shelf_blob::BlobKey;
use shelf_core::{DeviceId, UserId};
use shelf_server::ServerSettings;
use shelf_testkit::{Backend, TestServer};

use crate::attachments::{content, upload};

shelf_testkit::on_every_backend!(
    au11_a_session_in_use_slides_its_expiry,
    au12_a_password_change_signs_out_the_other_devices_and_their_streams,
    au14_deleting_an_account_removes_its_data_sessions_blobs_and_streams_only,
);

const WAIT: Duration = Duration::from_secs(5);

/// Streams must end through the hub at once, not through the periodic session check.
fn no_session_check() -> ServerSettings {
    ServerSettings { session_check_interval: Duration::from_secs(3600), ..Default::default() }
}

fn ids(user_id: &str, device_id: &str) -> (UserId, DeviceId) {
    (UserId(uuid::Uuid::parse_str(user_id).unwrap()), DeviceId(uuid::Uuid::parse_str(device_id).unwrap()))
}

/// The session of `hash` once its expiry is past `after`: a request does not wait for its
/// renewal's commit (ADR 0018), so it lands shortly after the answer.
async fn renewed_past(server: &TestServer, hash: &[u8], now: time::OffsetDateTime, after: time::OffsetDateTime) -> shelf_store::SessionAuth {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let session = server.store.session_by_token_hash(hash, now).await.unwrap().unwrap();
        if session.expires_at > after {
            return session;
        }
        assert!(std::time::Instant::now() < deadline, "not renewed within {WAIT:?}: still expires at {:?}", session.expires_at);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn au11_a_session_in_use_slides_its_expiry(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let (_, device) = ids(&user.user_id, &user.device_id);
    let hash = shelf_server::service::auth::token_hash(&user.token);
    let now = shelf_server::service::auth::now();
    let issued = server.store.session_by_token_hash(&hash, now).await.unwrap().unwrap();
    // As if the last request was two minutes ago: the next one renews (at most once a minute).
    server.store.touch_session(device, now - time::Duration::minutes(2)).await.unwrap();
    assert_eq!(server.get("/api/library/version", &user.token).await.status, StatusCode::OK);
    let renewed = renewed_past(&server, &hash, now, issued.expires_at).await;
    assert!(renewed.last_seen_at >= now);
    // Within the minute nothing is queued again (checked below, once a later renewal has landed).
    assert_eq!(server.get("/api/library/version", &user.token).await.status, StatusCode::OK);

    // A browser's cookie slides with its session.
    let browser = server.login(&user, "browser").await;
    let with_cookie = |token: &str, method: Method, path: &str| {
        server.client.request(method, server.url(path)).header("cookie", format!("shelf_session={token}")).header("x-shelf-csrf", "1")
    };
    let set_cookie = |response: &reqwest::Response| response.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_owned());
    let token = browser.body["token"].as_str().unwrap().to_owned();
    let browser_hash = shelf_server::service::auth::token_hash(&token);
    let (_, browser_device) = ids(&user.user_id, browser.body["deviceId"].as_str().unwrap());
    let browser_issued = server.store.session_by_token_hash(&browser_hash, now).await.unwrap().unwrap();
    server.store.touch_session(browser_device, now - time::Duration::minutes(2)).await.unwrap();
    let renewed_cookie = with_cookie(&token, Method::GET, "/api/library/version").send().await.unwrap();
    let cookie = set_cookie(&renewed_cookie).expect("the renewed session's cookie is sent again");
    assert!(cookie.starts_with(&format!("shelf_session={token};")) && cookie.contains("Max-Age=2592000"), "{cookie}");
    assert_eq!(set_cookie(&with_cookie(&token, Method::GET, "/api/library/version").send().await.unwrap()), None, "not again within the minute");
    // Renewals are written in the order they were queued: once this one has landed, one the
    // first device's second request had queued would have too.
    renewed_past(&server, &browser_hash, now, browser_issued.expires_at).await;
    let again = server.store.session_by_token_hash(&hash, now).await.unwrap().unwrap();
    assert_eq!(again.expires_at, renewed.expires_at);

    // A logout's clearing wins over the renewal the same request makes.
    let other = server.login(&user, "other browser").await;
    let other_token = other.body["token"].as_str().unwrap().to_owned();
    let (_, other_device) = ids(&user.user_id, other.body["deviceId"].as_str().unwrap());
    server.store.touch_session(other_device, now - time::Duration::minutes(2)).await.unwrap();
    let logout = with_cookie(&other_token, Method::POST, "/api/auth/logout").send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let cleared: Vec<_> = logout.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect();
    assert_eq!(cleared.len(), 1, "{cleared:?}");
    assert!(cleared[0].contains("Max-Age=0"), "{cleared:?}");
}

async fn au12_a_password_change_signs_out_the_other_devices_and_their_streams(backend: Backend) {
    let server = TestServer::start_with(backend, no_session_check()).await;
    let user = server.user().await;
    let phone = server.login(&user, "phone").await.body["token"].as_str().unwrap().to_owned();
    let mut phone_stream = server.events(&phone, "", None).await;
    let mut laptop_stream = server.events(&user.token, "", None).await;
    phone_stream.next_event(WAIT).await.unwrap();
    laptop_stream.next_event(WAIT).await.unwrap();
    let change = |current: &str, new: &str| {
        server.post("/api/auth/password", &user.token, json!({"currentPassword": current, "newPassword": new}))
    };

    let wrong = change("not my password", "a new password").await;
    assert_eq!((wrong.status, wrong.code()), (StatusCode::FORBIDDEN, "wrong_password"), "{:?}", wrong.body);
    let short = change(&user.password, "short").await;
    assert_eq!((short.status, short.code()), (StatusCode::BAD_REQUEST, "validation_failed"));
    assert_eq!(server.get("/api/library/version", &phone).await.status, StatusCode::OK, "nothing changed yet");

    let changed = change(&user.password, "a new password").await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{:?}", changed.body);
    assert_eq!(server.get("/api/library/version", &user.token).await.status, StatusCode::OK, "this session stays");
    assert_eq!(server.get("/api/library/version", &phone).await.status, StatusCode::UNAUTHORIZED);
    let last = phone_stream.next_event(WAIT).await.expect("the phone's stream gets a final event");
    assert_eq!(last.event.as_deref(), Some("auth"));
    assert!(phone_stream.ends_within(WAIT).await);
    server.create_material(&user.token, "still connected").await;
    assert_eq!(laptop_stream.next_event(WAIT).await.unwrap().json()["libraryVersion"], 2);

    let login = |password: &str| {
        let body = json!({"email": user.email, "password": password, "deviceName": "tablet"});
        server.call(Method::POST, "/api/auth/login", None, Some(body))
    };
    assert_eq!(login(&user.password).await.code(), "invalid_credentials", "the old password is refused");
    assert_eq!(login("a new password").await.status, StatusCode::OK);
}

async fn au14_deleting_an_account_removes_its_data_sessions_blobs_and_streams_only(backend: Backend) {
    let server = TestServer::start_with(backend, no_session_check()).await;
    let alice = server.user().await;
    let phone = server.login(&alice, "phone").await.body["token"].as_str().unwrap().to_owned();
    let material = server.create_material(&alice.token, "mine").await["id"].as_str().unwrap().to_owned();
    let sha = upload(&server, &alice, &content(2048, 3)).await;
    let half = server.tus_create(&alice.token, 10, &"c".repeat(64)).await;
    assert_eq!(half.status, StatusCode::CREATED);
    let location = half.headers["location"].to_str().unwrap().to_owned();
    assert_eq!(server.tus_patch(&alice.token, &location, 0, vec![1; 5]).await.status, StatusCode::NO_CONTENT);
    assert_eq!(std::fs::read_dir(server.data.path().join("blobs").join(".staging")).unwrap().count(), 1, "half an upload is staged");
    let bob = server.user().await;
    let bobs = server.create_material(&bob.token, "theirs").await["id"].as_str().unwrap().to_owned();
    upload(&server, &bob, &content(2048, 3)).await;
    let mut stream = server.events(&phone, "", None).await;
    stream.next_event(WAIT).await.unwrap();

    let delete = |password: &str| {
        let request = server.client.delete(server.url("/api/account")).bearer_auth(&alice.token).json(&json!({"password": password}));
        async move { shelf_testkit::Api::reply(request.send().await.unwrap()).await }
    };
    let wrong = delete("not my password").await;
    assert_eq!((wrong.status, wrong.code()), (StatusCode::FORBIDDEN, "wrong_password"));
    assert_eq!(server.get(&format!("/api/materials/{material}"), &alice.token).await.status, StatusCode::OK, "nothing deleted");

    let deleted = delete(&alice.password).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    for token in [&alice.token, &phone] {
        assert_eq!(server.get("/api/library/version", token).await.status, StatusCode::UNAUTHORIZED);
    }
    let last = stream.next_event(WAIT).await.expect("the open stream gets a final event");
    assert_eq!(last.event.as_deref(), Some("auth"));
    assert!(stream.ends_within(WAIT).await);
    let login = json!({"email": alice.email, "password": alice.password});
    assert_eq!(server.call(Method::POST, "/api/auth/login", None, Some(login)).await.code(), "invalid_credentials");
    let (alice_id, _) = ids(&alice.user_id, &alice.device_id);
    assert!(server.store.library_versions(&[alice_id]).await.unwrap().is_empty(), "the library is gone");
    assert!(server.store.stored_blob(alice_id, &sha).await.unwrap().is_none());
    let key = |user: &str| BlobKey { user: uuid::Uuid::parse_str(user).unwrap(), sha256: sha.clone() };
    assert!(server.state.blobs.head(&key(&alice.user_id)).await.unwrap().is_none(), "the file's bytes are gone");
    let staged = std::fs::read_dir(server.data.path().join("blobs").join(".staging")).unwrap().count();
    assert_eq!(staged, 0, "no staged upload is left");
    // A registration with the same address starts from nothing.
    let again = json!({"email": alice.email, "password": alice.password});
    assert_eq!(server.call(Method::POST, "/api/auth/register", None, Some(again)).await.status, StatusCode::CREATED);

    assert_eq!(server.get(&format!("/api/materials/{bobs}"), &bob.token).await.status, StatusCode::OK, "Bob keeps his material");
    assert!(server.state.blobs.head(&key(&bob.user_id)).await.unwrap().is_some(), "and his copy of the same file");
    assert_eq!(server.library_version(&bob.token).await, 2);
}
