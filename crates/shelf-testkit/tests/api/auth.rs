use reqwest::{Method, StatusCode};
use serde_json::json;
use shelf_server::ServerSettings;
use shelf_testkit::{Api, Backend, TestServer, TestUser};

shelf_testkit::on_every_backend!(
    au2_register_validates_and_rejects_duplicates,
    au3_login_gives_token_and_cookie_and_same_error_for_unknown_email,
    au4_every_api_route_needs_a_session,
    au5_cookie_sessions_need_csrf_proof_for_changes,
    au6_revoked_devices_are_refused_from_the_next_request,
    au9_cookies_are_secure_and_host_prefixed_when_the_client_uses_https,
);

async fn au2_register_validates_and_rejects_duplicates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let register = |email: &str, password: &str| {
        server.call(Method::POST, "/api/auth/register", None, Some(json!({"email": email, "password": password})))
    };
    let created = register("Ada@Example.com", "long enough").await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert!(created.body["userId"].as_str().is_some_and(|id| uuid::Uuid::parse_str(id).is_ok()));
    let taken = register("ada@example.com", "another one").await;
    assert_eq!((taken.status, taken.code()), (StatusCode::CONFLICT, "email_taken"));
    let bad_email = register("not-an-email", "long enough").await;
    assert_eq!((bad_email.status, bad_email.code()), (StatusCode::BAD_REQUEST, "validation_failed"));
    let short = register("bob@example.com", "1234567").await;
    assert_eq!((short.status, short.code()), (StatusCode::BAD_REQUEST, "validation_failed"));
    assert!(short.body["message"].as_str().unwrap().contains("8"));
}

async fn au3_login_gives_token_and_cookie_and_same_error_for_unknown_email(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let login = server.login(&user, "phone").await;
    let token = login.body["token"].as_str().unwrap();
    assert!(token.len() >= 22, "token must carry at least 128 bits");
    assert!(login.body["expiresAt"].as_str().is_some());
    assert_eq!(login.body["userId"], user.user_id.as_str());
    let cookie = login.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with(&format!("shelf_session={token}")));
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));

    let wrong = server
        .call(Method::POST, "/api/auth/login", None, Some(json!({"email": user.email, "password": "wrong password"})))
        .await;
    let unknown = server
        .call(Method::POST, "/api/auth/login", None, Some(json!({"email": "nobody@example.com", "password": "wrong password"})))
        .await;
    assert_eq!((wrong.status, wrong.code()), (StatusCode::UNAUTHORIZED, "invalid_credentials"));
    // The same answer apart from each request's own id (OP1).
    let without_id = |body: &serde_json::Value| {
        let mut body = body.clone();
        body.as_object_mut().unwrap().remove("requestId");
        body
    };
    assert_eq!(without_id(&wrong.body), without_id(&unknown.body));
    assert_eq!(wrong.status, unknown.status);
}

/// AU4 over every operation of the OpenAPI document, so a new route cannot slip through: the
/// document's public operations are exactly the expected ones, and every other operation answers
/// 401 without a session or with a forged token.
async fn au4_every_api_route_needs_a_session(backend: Backend) {
    let server = TestServer::start(backend).await;
    let operations = shelf_testkit::openapi_operations(&server).await;
    assert!(operations.len() >= 30, "the document lists every route ({} found)", operations.len());
    let public: Vec<&str> = operations.iter().filter(|op| !op.secured).map(|op| op.id.as_str()).collect();
    let mut public = public;
    public.sort_unstable();
    assert_eq!(public, ["getVapidPublicKey", "healthz", "login", "readyz", "register", "uploadOptions"], "operations reachable without a session");
    for op in operations.iter().filter(|op| op.secured) {
        let path = op.example_path();
        let anonymous = server.call(op.method.clone(), &path, None, Some(json!({}))).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{} {path}", op.method);
        if op.method != Method::HEAD {
            assert_eq!(anonymous.code(), "unauthenticated", "{} {path}", op.method);
        }
        let forged = server.call(op.method.clone(), &path, Some("not-a-real-token"), Some(json!({}))).await;
        assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{} {path}", op.method);
    }
}

async fn au5_cookie_sessions_need_csrf_proof_for_changes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let cookie = format!("shelf_session={}", user.token);
    let read = server.client.get(server.url("/api/library/version")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let body = json!({"title": "via cookie"});
    let forged = server.client.post(server.url("/api/materials")).header("cookie", &cookie).json(&body).send().await.unwrap();
    let forged = shelf_testkit::Api::reply(forged).await;
    assert_eq!((forged.status, forged.code()), (StatusCode::FORBIDDEN, "csrf_rejected"));
    let cross_site = server
        .client
        .post(server.url("/api/materials"))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let same_origin = server
        .client
        .post(server.url("/api/materials"))
        .header("cookie", &cookie)
        .header("origin", &server.base)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), StatusCode::CREATED);
    let with_header = server
        .client
        .post(server.url("/api/materials"))
        .header("cookie", &cookie)
        .header("x-shelf-csrf", "1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(with_header.status(), StatusCode::CREATED);
    assert_eq!(server.library_version(&user.token).await, 3);
}

async fn au6_revoked_devices_are_refused_from_the_next_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let phone = server.login(&user, "phone").await;
    let phone_token = phone.body["token"].as_str().unwrap();
    let phone_id = phone.body["deviceId"].as_str().unwrap();

    let devices = server.get("/api/devices", &user.token).await;
    assert_eq!(devices.status, StatusCode::OK);
    let list = devices.body.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let current: Vec<_> = list.iter().filter(|d| d["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["deviceId"], user.device_id.as_str());
    assert!(list.iter().any(|d| d["deviceName"] == "phone" && d["lastSeenAt"].is_string() && d["createdAt"].is_string()));

    let other = server.user().await;
    let foreign = server.delete(&format!("/api/devices/{phone_id}"), &other.token).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/api/library/version", phone_token).await.status, StatusCode::OK);

    let revoked = server.delete(&format!("/api/devices/{phone_id}"), &user.token).await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let refused = server.get("/api/library/version", phone_token).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::UNAUTHORIZED, "unauthenticated"));

    let logout = server.call(Method::POST, "/api/auth/logout", Some(&user.token), None).await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    assert_eq!(server.get("/api/library/version", &user.token).await.status, StatusCode::UNAUTHORIZED);
}

async fn login_cookie(server: &TestServer, user: &TestUser, headers: &[(&str, &str)]) -> (String, String) {
    let body = json!({"email": user.email, "password": user.password});
    let mut request = server.client.post(server.url("/api/auth/login")).json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let reply = Api::reply(request.send().await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let cookie = reply.headers["set-cookie"].to_str().unwrap().to_owned();
    (cookie, reply.body["token"].as_str().unwrap().to_owned())
}

async fn au9_cookies_are_secure_and_host_prefixed_when_the_client_uses_https(backend: Backend) {
    let https = [("x-forwarded-proto", "https"), ("x-forwarded-for", "192.0.2.1")];
    // Directly over HTTP, and from a peer that is not a trusted proxy: a plain cookie.
    let direct = TestServer::start(backend).await;
    let user = direct.user().await;
    let (cookie, token) = login_cookie(&direct, &user, &https).await;
    assert!(cookie.starts_with(&format!("shelf_session={token};")) && !cookie.contains("Secure"), "{cookie}");

    let proxied = shelf_testkit::behind_local_proxy();
    let server = TestServer::start_with(backend, proxied.clone()).await;
    let user = server.user().await;
    let (cookie, token) = login_cookie(&server, &user, &https).await;
    assert!(cookie.starts_with(&format!("__Host-shelf_session={token};")), "{cookie}");
    assert!(cookie.contains("; Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"), "{cookie}");
    let (plain, _) = login_cookie(&server, &user, &[]).await;
    assert!(plain.starts_with("shelf_session="), "the proxy did not say https: {plain}");

    // The extractor takes either name; logout clears the one that came.
    let read = server.client.get(server.url("/api/library/version")).header("cookie", format!("__Host-shelf_session={token}"));
    assert_eq!(read.send().await.unwrap().status(), StatusCode::OK);
    let logout = server
        .client
        .post(server.url("/api/auth/logout"))
        .header("cookie", format!("__Host-shelf_session={token}"))
        .header("x-shelf-csrf", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let cleared: Vec<&str> = logout.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(cleared.len(), 1, "{cleared:?}");
    assert!(cleared[0].starts_with("__Host-shelf_session=;") && cleared[0].contains("Max-Age=0") && cleared[0].contains("Secure"));

    // --secure-cookies decides when given, either way.
    let always = TestServer::start_with(backend, ServerSettings { secure_cookies: Some(true), ..Default::default() }).await;
    let user = always.user().await;
    assert!(login_cookie(&always, &user, &[]).await.0.starts_with("__Host-shelf_session="));
    let never = TestServer::start_with(backend, ServerSettings { secure_cookies: Some(false), ..proxied }).await;
    let user = never.user().await;
    assert!(login_cookie(&never, &user, &https).await.0.starts_with("shelf_session="));
}
