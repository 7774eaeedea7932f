use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use shelf_server::ServerSettings;
use shelf_testkit::{Backend, SseReader, TestServer};

shelf_testkit::on_every_backend!(
    rt1_a_write_on_one_device_reaches_the_others_stream_only,
    rt2_heartbeats_headers_and_retry_hint,
    rt4_last_event_id_catches_up_and_changes_ride_along,
    rt5_revoking_a_device_closes_its_stream,
    rt5_a_session_expiring_ends_its_stream_and_only_then,
    rt5_the_session_check_asks_only_about_streams_past_their_expiry,
    rt6_stream_tickets_are_single_use,
    rt7_websocket_has_the_same_semantics,
    rt8_shutdown_ends_streams_with_a_retry_hint,
);

const WAIT: Duration = Duration::from_secs(5);

fn quick_heartbeat() -> ServerSettings {
    ServerSettings { sse_heartbeat: Duration::from_millis(200), ..Default::default() }
}

async fn rt1_a_write_on_one_device_reaches_the_others_stream_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user().await;
    let phone = server.login(&alice, "phone").await.body["token"].as_str().unwrap().to_owned();
    let bob = server.user().await;
    let mut alice_phone = server.events(&phone, "", None).await;
    let mut bobs = server.events(&bob.token, "", None).await;
    assert_eq!(alice_phone.status, StatusCode::OK);
    let first = alice_phone.next_event(WAIT).await.expect("current version at once");
    assert_eq!((first.event.as_deref(), first.id.as_deref()), (Some("version"), Some("1")));
    assert_eq!(first.json()["libraryVersion"], 1);
    assert!(first.json()["epoch"].is_string());
    assert_eq!(bobs.next_event(WAIT).await.unwrap().json()["libraryVersion"], 1);

    server.create_material(&alice.token, "from the laptop").await;
    let event = alice_phone.next_event(WAIT).await.expect("event after commit");
    assert_eq!((event.id.as_deref(), event.json()["libraryVersion"].as_i64()), (Some("2"), Some(2)));
    server.create_material(&alice.token, "again").await;
    assert_eq!(alice_phone.next_event(WAIT).await.unwrap().json()["libraryVersion"], 3);
    // A failed or no-op write announces nothing; Bob hears nothing of Alice.
    server.post("/api/materials", &alice.token, json!({"title": ""})).await;
    assert!(alice_phone.next_event(Duration::from_millis(300)).await.is_none());
    assert!(bobs.next_event(Duration::from_millis(300)).await.is_none());
}

async fn rt2_heartbeats_headers_and_retry_hint(backend: Backend) {
    let server = TestServer::start_with(backend, quick_heartbeat()).await;
    let user = server.user().await;
    let mut stream = server.events(&user.token, "", None).await;
    assert_eq!(stream.headers["content-type"], "text/event-stream");
    assert_eq!(stream.headers["cache-control"], "no-store");
    assert_eq!(stream.headers["x-accel-buffering"], "no");
    let first = stream.next(WAIT).await.unwrap();
    assert!(first.retry.is_some(), "a retry hint comes with the first event");
    let heartbeat = stream.next(Duration::from_secs(2)).await.expect("heartbeat");
    assert_eq!((heartbeat.event, heartbeat.comment.as_deref()), (None, Some("heartbeat")));
    let anonymous = server.client.get(server.url("/api/library-version-events")).send().await.unwrap();
    let anonymous = shelf_testkit::Api::reply(anonymous).await;
    assert_eq!((anonymous.status, anonymous.code()), (StatusCode::UNAUTHORIZED, "unauthenticated"));
}

async fn rt4_last_event_id_catches_up_and_changes_ride_along(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let id = server.create_material(&user.token, "one").await["id"].as_str().unwrap().to_owned(); // v2
    server.put(&format!("/api/materials/{id}/progress"), &user.token, json!({"percentComplete": 40})).await; // v3
    let mut behind = server.events(&user.token, "?changes=1", Some(2)).await;
    let event = behind.next_event(WAIT).await.unwrap();
    let body = event.json();
    assert_eq!(body["libraryVersion"], 3);
    let changes = body["changes"].as_array().expect("delta since Last-Event-ID");
    assert_eq!(changes.len(), 1);
    assert_eq!((changes[0]["kind"].as_str(), changes[0]["data"]["percentComplete"].as_f64()), (Some("progress"), Some(40.0)));
    server.delete(&format!("/api/materials/{id}"), &user.token).await; // v4
    let next = behind.next_event(WAIT).await.unwrap().json();
    let ops: Vec<_> = next["changes"].as_array().unwrap().iter().map(|c| c["op"].as_str().unwrap().to_owned()).collect();
    assert_eq!((next["libraryVersion"].as_i64(), ops), (Some(4), vec!["delete".to_owned(), "delete".to_owned()]));

    // A delta larger than an event may carry says "resync" instead.
    for i in 0..101 {
        server.create_material(&user.token, &format!("bulk {i}")).await;
    }
    let mut far_behind = server.events(&user.token, "?changes=1", Some(4)).await;
    let big = far_behind.next_event(WAIT).await.unwrap().json();
    assert_eq!((big["libraryVersion"].as_i64(), big["resync"].as_bool()), (Some(105), Some(true)));
    assert!(big.get("changes").is_none());
}

async fn rt5_revoking_a_device_closes_its_stream(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let phone = server.login(&user, "phone").await;
    let (phone_token, phone_id) = (phone.body["token"].as_str().unwrap(), phone.body["deviceId"].as_str().unwrap());
    let mut stream = server.events(phone_token, "", None).await;
    let mut laptop = server.events(&user.token, "", None).await;
    stream.next_event(WAIT).await.unwrap();
    laptop.next_event(WAIT).await.unwrap();
    server.delete(&format!("/api/devices/{phone_id}"), &user.token).await;
    let last = stream.next_event(Duration::from_secs(2)).await.expect("final auth event within a second or so");
    assert_eq!((last.event.as_deref(), last.json()["code"].as_str()), (Some("auth"), Some("unauthenticated")));
    assert!(stream.ends_within(Duration::from_secs(2)).await);
    // The laptop's stream is untouched.
    server.create_material(&user.token, "still here").await;
    assert_eq!(laptop.next_event(WAIT).await.unwrap().json()["libraryVersion"], 2);

    // A revocation the hub did not see (made directly in the database, as another instance
    // would) is noticed by the periodic session check.
    let mut laptop_again = server.events(&user.token, "", None).await;
    laptop_again.next_event(WAIT).await.unwrap();
    let device = uuid::Uuid::parse_str(&user.device_id).unwrap();
    let user_id = shelf_core::UserId(uuid::Uuid::parse_str(&user.user_id).unwrap());
    server.store.revoke_session(user_id, shelf_core::DeviceId(device)).await.unwrap();
    let last = laptop_again.next_event(Duration::from_secs(3)).await.expect("closed by the session check");
    assert_eq!(last.event.as_deref(), Some("auth"));
}

/// The session check asks the database about a stream only once its session's known expiry
/// passed (service/stream_sessions.rs); the stream still ends within the check interval of it.
async fn rt5_a_session_expiring_ends_its_stream_and_only_then(backend: Backend) {
    let settings = shelf_server::ServerSettings { session_ttl: Duration::from_secs(3), ..Default::default() };
    let server = TestServer::start_with(backend, settings).await;
    let user = server.user().await;
    let login = server.login(&user, "short-lived").await;
    let token = login.body["token"].as_str().unwrap();
    let expires_at = time::OffsetDateTime::parse(login.body["expiresAt"].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap();
    let mut stream = server.events(token, "", None).await;
    stream.next_event(WAIT).await.unwrap();
    let last = stream.next_event(Duration::from_secs(10)).await.expect("ended after the expiry");
    let ended_at = time::OffsetDateTime::now_utc();
    assert_eq!((last.event.as_deref(), last.json()["code"].as_str()), (Some("auth"), Some("unauthenticated")));
    assert!(ended_at >= expires_at, "not before the session expired ({ended_at} < {expires_at})");
    // A correctness bound (RT5: within the one-second check), with room for a loaded machine.
    assert!(ended_at < expires_at + time::Duration::seconds(5), "within about the check interval of it");
    assert!(stream.ends_within(Duration::from_secs(2)).await);
}

/// The work of a check does not grow with the open streams: after the first (full) check, only
/// the ended-session log is read while no stream's session expired.
async fn rt5_the_session_check_asks_only_about_streams_past_their_expiry(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let mut streams = Vec::new();
    for name in ["phone", "tablet"] {
        let token = server.login(&user, name).await.body["token"].as_str().unwrap().to_owned();
        let mut stream = server.events(&token, "", None).await;
        stream.next_event(WAIT).await.unwrap();
        streams.push(stream);
    }
    let mut check = shelf_server::service::stream_sessions::StreamSessionCheck::new();
    assert_eq!(check.run(server.store.as_ref(), &server.state.hub, &server.state.sessions).await.unwrap(), 2, "the first check is a full one");
    assert_eq!(check.run(server.store.as_ref(), &server.state.hub, &server.state.sessions).await.unwrap(), 0, "nothing expired, nothing asked");
    // A revocation the bus never carried is still found, through the log.
    let phone = server.state.hub.connected_devices()[0];
    let user_id = shelf_core::UserId(uuid::Uuid::parse_str(&user.user_id).unwrap());
    server.store.revoke_session(user_id, phone).await.unwrap();
    check.run(server.store.as_ref(), &server.state.hub, &server.state.sessions).await.unwrap();
    let mut ended = 0;
    for stream in &mut streams {
        if let Some(last) = stream.next_event(Duration::from_millis(300)).await {
            assert_eq!(last.event.as_deref(), Some("auth"));
            ended += 1;
        }
    }
    assert_eq!(ended, 1, "only the revoked device's stream ended");
}

async fn rt6_stream_tickets_are_single_use(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let ticket = server.post("/api/library-version-events/ticket", &user.token, json!({})).await;
    assert_eq!(ticket.status, StatusCode::CREATED, "{:?}", ticket.body);
    let ticket = ticket.body["ticket"].as_str().unwrap().to_owned();
    let url = server.url(&format!("/api/library-version-events?ticket={ticket}"));
    let mut stream = SseReader::new(server.client.get(&url).send().await.unwrap());
    assert_eq!(stream.status, StatusCode::OK);
    assert_eq!(stream.next_event(WAIT).await.unwrap().json()["libraryVersion"], 1);
    let again = server.client.get(&url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
}

async fn rt7_websocket_has_the_same_semantics(backend: Backend) {
    let server = TestServer::start_with(backend, quick_heartbeat()).await;
    let user = server.user().await;
    let ws_url = format!("{}/api/library-version-ws", server.base.replacen("http", "ws", 1));
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url.as_str()).unwrap();
    request.headers_mut().insert("authorization", format!("Bearer {}", user.token).parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("websocket");
    let first = next_json(&mut socket).await.unwrap();
    assert_eq!((first["type"].as_str(), first["libraryVersion"].as_i64()), (Some("version"), Some(1)));
    server.create_material(&user.token, "via ws").await;
    let mut saw_heartbeat = false;
    let update = loop {
        let message = next_json(&mut socket).await.unwrap();
        if message["type"] == "heartbeat" {
            saw_heartbeat = true;
            continue;
        }
        break message;
    };
    assert_eq!(update["libraryVersion"], 2);
    while !saw_heartbeat {
        saw_heartbeat = next_json(&mut socket).await.unwrap()["type"] == "heartbeat";
    }
    socket.close(None).await.ok();
    let refused = tokio_tungstenite::connect_async(ws_url.as_str()).await;
    assert!(refused.is_err(), "no credentials, no socket");
}

async fn rt8_shutdown_ends_streams_with_a_retry_hint(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let mut stream = server.events(&user.token, "", None).await;
    stream.next_event(WAIT).await.unwrap();
    let stopping = tokio::spawn(server.stop());
    let last = stream.next(WAIT).await.expect("a final block");
    assert!(last.retry.is_some(), "shutdown sends a retry hint");
    assert!(stream.ends_within(WAIT).await);
    tokio::time::timeout(WAIT, stopping).await.expect("graceful stop finishes").unwrap();
}

async fn next_json<S>(socket: &mut S) -> Option<Value>
where
    S: futures::Stream<Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let message = tokio::time::timeout(WAIT, socket.next()).await.ok()??.ok()?;
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            return serde_json::from_str::<Value>(&text).ok();
        }
    }
}
