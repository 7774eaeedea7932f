use reqwest::{Method, StatusCode};
use serde_json::json;
use shelf_server::ServerSettings;
use shelf_testkit::{Backend, TestServer};

shelf_testkit::on_every_backend!(
    ed1_bad_bodies_get_standard_errors,
    ed2_unknown_routes_methods_and_ids_answer_json,
    ed3_health_readiness_and_openapi_cover_every_route,
);

async fn ed1_bad_bodies_get_standard_errors(backend: Backend) {
    let settings = ServerSettings { max_body_bytes: 64 * 1024, ..Default::default() };
    let server = TestServer::start_with(backend, settings).await;
    let user = server.user().await;
    let send = |body: Vec<u8>, content_type: &'static str| {
        server
            .client
            .post(server.url("/api/materials"))
            .bearer_auth(&user.token)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let huge = shelf_testkit::Api::reply(send(vec![b'a'; 65 * 1024], "application/json").await.unwrap()).await;
    assert_eq!((huge.status, huge.code()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    for bad in [&b"{"[..], b"[]", b"{\"title\": 5}", b"null", b"\xff\xfe"] {
        let reply = shelf_testkit::Api::reply(send(bad.to_vec(), "application/json").await.unwrap()).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "invalid_json"), "{bad:?}");
    }
    let text = shelf_testkit::Api::reply(send(b"{}".to_vec(), "text/plain").await.unwrap()).await;
    assert_eq!((text.status, text.code()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"));
    assert_eq!(server.library_version(&user.token).await, 1);
}

async fn ed2_unknown_routes_methods_and_ids_answer_json(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let unknown = server.get("/api/nope", &user.token).await;
    assert_eq!((unknown.status, unknown.code()), (StatusCode::NOT_FOUND, "not_found"));
    let method = server.call(Method::PUT, "/api/library/version", Some(&user.token), None).await;
    assert_eq!((method.status, method.code()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    let bad_id = server.get("/api/materials/not-a-uuid", &user.token).await;
    assert_eq!((bad_id.status, bad_id.code()), (StatusCode::NOT_FOUND, "not_found"));
    let bad_cursor = server.get("/api/materials?cursor=zzz", &user.token).await;
    assert_eq!((bad_cursor.status, bad_cursor.code()), (StatusCode::BAD_REQUEST, "validation_failed"));
    let weird = server.post("/api/materials", &user.token, json!({"title": "\u{ffff} 🚀 \u{1}", "tags": ["\u{200b}x"]})).await;
    assert_eq!(weird.status, StatusCode::CREATED, "{:?}", weird.body);
    let nul = server.post("/api/materials", &user.token, json!({"title": "a\u{0000}b"})).await;
    assert_eq!((nul.status, nul.code()), (StatusCode::BAD_REQUEST, "validation_failed"));
    // Over every route of the OpenAPI document: a method the path does not serve answers 405
    // JSON, and an id that cannot exist answers 404 JSON.
    let operations = shelf_testkit::openapi_operations(&server).await;
    let mut paths: Vec<&str> = operations.iter().map(|op| op.path.as_str()).collect();
    paths.dedup();
    for path in paths {
        let served: Vec<&Method> = operations.iter().filter(|op| op.path == path).map(|op| &op.method).collect();
        let unserved = [Method::PUT, Method::PATCH, Method::DELETE, Method::POST, Method::GET].into_iter().find(|m| !served.contains(&m));
        let op = operations.iter().find(|op| op.path == path).unwrap();
        if let Some(method) = unserved {
            let reply = server.call(method.clone(), &op.example_path(), Some(&user.token), None).await;
            assert_eq!((reply.status, reply.code()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"), "{method} {path}");
        }
        if path.contains('{') {
            for op in operations.iter().filter(|op| op.path == path && op.secured && op.method != Method::OPTIONS) {
                let reply = server.call(op.method.clone(), &op.path_with("not-an-id"), Some(&user.token), Some(json!({}))).await;
                assert_eq!(reply.status, StatusCode::NOT_FOUND, "{} {}: {:?}", op.method, op.path, reply.body);
                if op.method != Method::HEAD {
                    assert_eq!(reply.code(), "not_found", "{} {}", op.method, op.path);
                }
            }
        }
    }
}

async fn ed3_health_readiness_and_openapi_cover_every_route(backend: Backend) {
    let server = TestServer::start(backend).await;
    let health = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = server.call(Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, StatusCode::OK);
    let spec = server.call(Method::GET, "/api/openapi.json", None, None).await;
    assert_eq!(spec.status, StatusCode::OK);
    let paths = spec.body["paths"].as_object().unwrap();
    // Every documented operation is routed: none falls through to the router's 404 fallback
    // (routes are registered from the same annotations the document is generated from).
    let user = server.user().await;
    for op in shelf_testkit::openapi_operations(&server).await {
        let reply = server.call(op.method.clone(), &op.example_path(), Some(&user.token), None).await;
        assert!(!(reply.status == StatusCode::NOT_FOUND && reply.body["message"] == "route not found"), "{} {} is not routed", op.method, op.path);
    }
    // Clients generate their types from this document: every operation needs its own id.
    let mut ids = std::collections::BTreeSet::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} repeats ({method} {path})");
        }
    }
    let docs = server.client.get(server.url("/api/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));
}
