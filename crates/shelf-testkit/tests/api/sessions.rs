//! The session cache (ADR 0011, ADR 0015) on one instance: a session served from memory never
//! outlives its expiry, every way of ending a session refuses its token from the next request on,
//! even when the token was used (and cached) just before (spec AU6, AU12, AU14, AU15), and a
//! session ended where no service saw it (another instance whose bus message was lost) is refused
//! after the next session check.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use shelf_server::ServerSettings;
use shelf_testkit::{Backend, TestServer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

shelf_testkit::on_every_backend!(
    au15_a_cached_session_is_never_served_past_its_expiry,
    au15_every_way_of_ending_a_session_refuses_a_cached_token_at_once,
    au15_a_session_ended_behind_this_instance_is_refused_after_the_next_check,
);

async fn au15_a_cached_session_is_never_served_past_its_expiry(backend: Backend) {
    let settings = ServerSettings { session_ttl: Duration::from_secs(2), ..ServerSettings::default() };
    let server = TestServer::start_with(backend, settings).await;
    let user = server.user().await;
    let login = server.login(&user, "short-lived").await;
    let token = login.body["token"].as_str().unwrap();
    let expires_at = OffsetDateTime::parse(login.body["expiresAt"].as_str().unwrap(), &Rfc3339).unwrap();
    // Ask again and again (every answer after the first comes from the cache) until refused; no
    // request sent after the expiry may succeed. A correctness bound, not a speed measurement.
    let mut served = 0;
    loop {
        let sent_at = OffsetDateTime::now_utc();
        let reply = server.get("/api/library/version", token).await;
        if reply.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(reply.status, StatusCode::OK);
        assert!(sent_at < expires_at, "a request sent at {sent_at} was served; the session expired at {expires_at}");
        served += 1;
        assert!(OffsetDateTime::now_utc() < expires_at + time::Duration::seconds(20), "never refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served > 1, "the session was used while it lived");
}

async fn au15_every_way_of_ending_a_session_refuses_a_cached_token_at_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let version_status = |token: String| {
        let server = &server;
        async move { server.get("/api/library/version", &token).await.status }
    };
    let token = |reply: &shelf_testkit::Reply| reply.body["token"].as_str().unwrap().to_owned();

    // Logout.
    let user = server.user().await;
    assert_eq!(version_status(user.token.clone()).await, StatusCode::OK);
    assert_eq!(server.call(Method::POST, "/api/auth/logout", Some(&user.token), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(version_status(user.token.clone()).await, StatusCode::UNAUTHORIZED);

    // A password change ends every other session, not the one that changed it.
    let user = server.user().await;
    let phone = token(&server.login(&user, "phone").await);
    assert_eq!(version_status(phone.clone()).await, StatusCode::OK);
    let body = json!({"currentPassword": user.password, "newPassword": "a brand new password"});
    assert_eq!(server.call(Method::POST, "/api/auth/password", Some(&user.token), Some(body)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(version_status(phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(version_status(user.token.clone()).await, StatusCode::OK);

    // Deleting the account ends all of them.
    let user = server.user().await;
    let phone = token(&server.login(&user, "phone").await);
    assert_eq!(version_status(phone.clone()).await, StatusCode::OK);
    assert_eq!(version_status(user.token.clone()).await, StatusCode::OK);
    let body = json!({"password": user.password});
    assert_eq!(server.call(Method::DELETE, "/api/account", Some(&user.token), Some(body)).await.status, StatusCode::NO_CONTENT);
    assert_eq!(version_status(phone).await, StatusCode::UNAUTHORIZED);
    assert_eq!(version_status(user.token.clone()).await, StatusCode::UNAUTHORIZED);
}

async fn au15_a_session_ended_behind_this_instance_is_refused_after_the_next_check(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let phone = server.login(&user, "phone").await;
    let token = phone.body["token"].as_str().unwrap().to_owned();
    let device = uuid::Uuid::parse_str(phone.body["deviceId"].as_str().unwrap()).unwrap();
    let user_id = uuid::Uuid::parse_str(&user.user_id).unwrap();
    assert_eq!(server.get("/api/library/version", &token).await.status, StatusCode::OK, "now cached");
    // Revoked in the database only: no service of this instance saw it and no bus carried it,
    // as when another instance's revocation message is lost.
    let revoked_at = std::time::Instant::now();
    assert!(server.store.revoke_session(shelf_core::UserId(user_id), shelf_core::DeviceId(device)).await.unwrap());
    // The cache keeps an entry for up to a minute; the session check (once a second) must evict
    // it long before. A correctness bound, not a speed measurement.
    while server.get("/api/library/version", &token).await.status == StatusCode::OK {
        assert!(revoked_at.elapsed() < Duration::from_secs(20), "a session ended in the database was still served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(server.get("/api/library/version", &token).await.status, StatusCode::UNAUTHORIZED);
}
