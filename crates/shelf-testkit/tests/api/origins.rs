//! Issue 9 item 8: cross-site use of the session cookie — changes (AU5), WebSocket and event
//! streams (AU10) — and the origin a request came to, also behind a trusted proxy.

use reqwest::StatusCode;
use serde_json::json;
use shelf_server::client::Origin;
use shelf_server::ServerSettings;
use shelf_testkit::{behind_local_proxy, Backend, TestServer};
use tokio_tungstenite::tungstenite;

shelf_testkit::on_every_backend!(
    au5_csrf_origins_compare_scheme_host_and_port,
    au10_cookie_websockets_need_a_trusted_origin,
    au10_cookie_event_streams_refuse_foreign_origins,
);

const EVIL: &str = "http://evil.example";


async fn create_with_cookie(server: &TestServer, token: &str, headers: &[(&str, &str)]) -> StatusCode {
    let mut request =
        server.client.post(server.url("/api/materials")).header("cookie", format!("shelf_session={token}")).json(&json!({"title": "t"}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status()
}

async fn au5_csrf_origins_compare_scheme_host_and_port(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    // The probe: an https:// Origin matched the http Host because the scheme was cut off.
    for foreign in [format!("https://127.0.0.1:{port}"), format!("http://127.0.0.1:{}", port.parse::<u16>().unwrap() - 1), "null".into()] {
        let status = create_with_cookie(&server, &user.token, &[("origin", &foreign)]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{foreign}");
    }
    assert_eq!(create_with_cookie(&server, &user.token, &[("origin", &server.base)]).await, StatusCode::CREATED);
    // Forwarding headers from an untrusted peer change nothing.
    let spoofed = [("origin", "https://shelf.example.com"), ("x-forwarded-proto", "https"), ("x-forwarded-host", "shelf.example.com")];
    assert_eq!(create_with_cookie(&server, &user.token, &spoofed).await, StatusCode::FORBIDDEN);

    // Behind a trusted proxy, the origin is the one the client used.
    let proxied = TestServer::start_with(backend, behind_local_proxy()).await;
    let user = proxied.user().await;
    assert_eq!(create_with_cookie(&proxied, &user.token, &spoofed).await, StatusCode::CREATED);
    let downgraded = [("origin", "http://shelf.example.com"), ("x-forwarded-proto", "https"), ("x-forwarded-host", "shelf.example.com")];
    assert_eq!(create_with_cookie(&proxied, &user.token, &downgraded).await, StatusCode::FORBIDDEN);

    // A configured origin is as good as the server's own.
    let allowed = ServerSettings { allowed_origins: vec![Origin::parse("http://localhost:5173").unwrap()], ..Default::default() };
    let server = TestServer::start_with(backend, allowed).await;
    let user = server.user().await;
    assert_eq!(create_with_cookie(&server, &user.token, &[("origin", "http://localhost:5173")]).await, StatusCode::CREATED);
    assert_eq!(create_with_cookie(&server, &user.token, &[("origin", "http://localhost:5174")]).await, StatusCode::FORBIDDEN);
}

/// The status of a WebSocket handshake with these headers (101 when upgraded).
async fn ws_handshake(server: &TestServer, query: &str, headers: &[(&'static str, String)]) -> u16 {
    let url = format!("{}/api/library-version-ws{query}", server.base.replacen("http", "ws", 1));
    let mut request = tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((mut socket, response)) => {
            socket.close(None).await.ok();
            response.status().as_u16()
        }
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("handshake failed without an HTTP answer: {other}"),
    }
}

async fn au10_cookie_websockets_need_a_trusted_origin(backend: Backend) {
    let allowed = ServerSettings { allowed_origins: vec![Origin::parse("https://app.example.com").unwrap()], ..Default::default() };
    let server = TestServer::start_with(backend, allowed).await;
    let user = server.user().await;
    let cookie = ("cookie", format!("shelf_session={}", user.token));
    // The probe: the cookie plus a foreign Origin was upgraded and streamed the library.
    assert_eq!(ws_handshake(&server, "", &[cookie.clone(), ("origin", EVIL.into())]).await, 403);
    assert_eq!(ws_handshake(&server, "", std::slice::from_ref(&cookie)).await, 403, "browsers always send Origin on handshakes");
    let other_scheme = server.base.replacen("http", "https", 1);
    assert_eq!(ws_handshake(&server, "", &[cookie.clone(), ("origin", other_scheme)]).await, 403);
    assert_eq!(ws_handshake(&server, "", &[cookie.clone(), ("origin", server.base.clone())]).await, 101);
    assert_eq!(ws_handshake(&server, "", &[cookie, ("origin", "https://app.example.com".into())]).await, 101);
    // Bearer tokens and tickets are never sent by a browser on its own: no origin rule.
    let bearer = ("authorization", format!("Bearer {}", user.token));
    assert_eq!(ws_handshake(&server, "", &[bearer, ("origin", EVIL.into())]).await, 101);
    let ticket = server.post("/api/library-version-events/ticket", &user.token, json!({})).await;
    let query = format!("?ticket={}", ticket.body["ticket"].as_str().unwrap());
    assert_eq!(ws_handshake(&server, &query, &[("origin", EVIL.into())]).await, 101);
}

async fn au10_cookie_event_streams_refuse_foreign_origins(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let open = |headers: Vec<(&'static str, String)>| {
        let mut request = server.client.get(server.url("/api/library-version-events")).header("cookie", format!("shelf_session={}", user.token));
        for (name, value) in headers {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let body = if status.is_success() { serde_json::Value::Null } else { response.json().await.unwrap() };
            (status, body)
        }
    };
    let (status, body) = open(vec![("origin", EVIL.into())]).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("csrf_rejected")));
    let (status, _) = open(vec![("sec-fetch-site", "cross-site".into())]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a cross-site request without Origin");
    // The web app's own EventSource sends no Origin (or the server's own): it keeps working.
    assert_eq!(open(vec![]).await.0, StatusCode::OK);
    assert_eq!(open(vec![("sec-fetch-site", "same-origin".into())]).await.0, StatusCode::OK);
    assert_eq!(open(vec![("origin", server.base.clone())]).await.0, StatusCode::OK);
    let mut bearer = server.client.get(server.url("/api/library-version-events")).bearer_auth(&user.token);
    bearer = bearer.header("origin", EVIL);
    assert_eq!(bearer.send().await.unwrap().status(), StatusCode::OK, "bearer streams are unaffected");
}
