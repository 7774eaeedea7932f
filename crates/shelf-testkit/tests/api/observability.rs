//! Operations: request ids (OP1–OP2) and metrics (OP3).

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::{Method, StatusCode};
use serde_json::json;
use shelf_testkit::{behind_local_proxy, Backend, TestServer};

shelf_testkit::on_every_backend!(
    op1_every_response_has_a_request_id_and_error_bodies_quote_it,
    op1_x_request_id_is_believed_only_from_a_trusted_proxy,
    op2_log_lines_of_a_request_carry_its_id,
    op3_metrics_count_requests_streams_mutations_uploads_and_pools,
    op4_devices_show_their_synced_version_and_lag,
);

async fn op1_every_response_has_a_request_id_and_error_bodies_quote_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let ok = server.get("/api/library/version", &user.token).await;
    let ok_id = ok.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(ok_id.len() >= 16, "{ok_id}");
    let missing = server.get(&format!("/api/materials/{}", uuid::Uuid::new_v4()), &user.token).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "not_found"));
    let id = missing.headers["x-request-id"].to_str().unwrap();
    assert_eq!(missing.body["requestId"], id, "the body quotes the header");
    assert_ne!(id, ok_id, "each request has its own id");
    // Errors made outside handlers (extractor rejections, unknown routes) carry it too.
    let anonymous = server.call(Method::GET, "/api/devices", None, None).await;
    assert_eq!(anonymous.body["requestId"], anonymous.headers["x-request-id"].to_str().unwrap());
    let unknown = server.call(Method::POST, "/api/no-such-route", None, Some(json!({}))).await;
    assert_eq!(unknown.body["requestId"], unknown.headers["x-request-id"].to_str().unwrap());
}

async fn op1_x_request_id_is_believed_only_from_a_trusted_proxy(backend: Backend) {
    let direct = TestServer::start(backend).await;
    let send = |server: &TestServer, id: &str| {
        server.client.get(server.url("/api/devices")).header("x-request-id", id.to_owned()).send()
    };
    let forged = send(&direct, "chosen-by-client").await.unwrap();
    assert_ne!(forged.headers()["x-request-id"], "chosen-by-client", "a client's id is replaced");

    let proxied = TestServer::start_with(backend, behind_local_proxy()).await;
    let kept = send(&proxied, "edge-7f3a-01").await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "edge-7f3a-01");
    let body: serde_json::Value = kept.json().await.unwrap();
    assert_eq!(body["requestId"], "edge-7f3a-01");
    let unusable = send(&proxied, "has \"quotes\"").await.unwrap();
    assert_ne!(unusable.headers()["x-request-id"], "has \"quotes\"", "an unusable id is replaced");
}

/// Every log line written while serving a request names its id. The server's trace layer logs
/// each response at DEBUG; the test's subscriber records everything the process logs.
async fn op2_log_lines_of_a_request_carry_its_id(backend: Backend) {
    let logs = capture_logs();
    let server = TestServer::start(backend).await;
    let reply = server.call(Method::GET, "/api/devices", None, None).await;
    let id = reply.body["requestId"].as_str().unwrap().to_owned();
    // The response line is written before the body reaches the client.
    let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().filter(|line| line.contains(&id)).collect();
    assert!(lines.iter().any(|line| line.contains("finished processing request")), "{text}");
    let line: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(line["span"]["request_id"], id.as_str(), "{line}");
    assert_eq!(line["span"]["route"], "/api/devices", "{line}");
}

/// OP3: after some traffic, `/metrics` (on its own listener) has every series with values the
/// traffic explains. Values are lower bounds: tests sharing a process share the recorder.
async fn op3_metrics_count_requests_streams_mutations_uploads_and_pools(backend: Backend) {
    let server = TestServer::start(backend).await;
    let handle = shelf_server::metrics::install().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(shelf_server::metrics::serve(listener, server.state.clone(), handle, std::future::pending()));
    let public = server.client.get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!public.contains("shelf_"), "metrics are not on the public port: {public}");

    let user = server.user().await;
    let mut stream = server.events(&user.token, "", None).await;
    stream.next_event(WAIT).await.expect("the current version");
    server.create_material(&user.token, "counted").await;
    stream.next_event(WAIT).await.expect("the new version");
    let id = uuid::Uuid::new_v4();
    let batch = json!({"mutations": [
        {"mutationId": 1, "type": "material.create", "id": id, "data": {"title": "offline"}},
        {"mutationId": 2, "type": "material.delete", "id": uuid::Uuid::new_v4()},
    ]});
    let first = server.post("/api/library/mutations", &user.token, batch.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    server.post("/api/library/mutations", &user.token, batch).await;
    let bytes = crate::attachments::content(3000, 7);
    crate::attachments::upload(&server, &user, &bytes).await;

    let text = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
    let at_least = |name: &str, labels: &[(&str, &str)], floor: f64| {
        let value = series(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"));
        assert!(value >= floor, "{name} {labels:?} = {value}, expected at least {floor}");
    };
    at_least("shelf_http_requests_total", &[("method", "POST"), ("route", "/api/materials"), ("status", "201")], 1.0);
    at_least("shelf_http_requests_total", &[("method", "POST"), ("route", "/api/auth/login"), ("status", "200")], 1.0);
    at_least("shelf_http_request_duration_seconds_count", &[("method", "POST"), ("route", "/api/library/mutations")], 2.0);
    at_least("shelf_http_request_duration_seconds_bucket", &[("route", "/api/materials"), ("le", "+Inf")], 1.0);
    at_least("shelf_open_streams", &[("transport", "sse")], 1.0);
    at_least("shelf_stream_events_sent_total", &[("transport", "sse")], 2.0);
    at_least("shelf_propagation_seconds_count", &[], 1.0);
    at_least("shelf_sync_mutations_total", &[("result", "applied")], 1.0);
    at_least("shelf_sync_mutations_total", &[("result", "rejected")], 1.0);
    at_least("shelf_sync_mutations_total", &[("result", "duplicate")], 2.0);
    at_least("shelf_upload_bytes_total", &[], 3000.0);
    at_least("shelf_uploads_completed_total", &[], 1.0);
    at_least("shelf_db_pool_max_connections", &[], 1.0);
    at_least("shelf_db_pool_connections", &[("state", "idle")], 0.0);
    at_least("shelf_password_hashing_waiting", &[], 0.0);
    at_least("shelf_bus_healthy", &[], 1.0);
    let propagation = series(&text, "shelf_propagation_seconds_sum", &[]).unwrap();
    assert!(propagation < 5.0, "a commit reached the stream within the wait: {propagation}s");
}

/// OP4: a feed pull or a stream event with the delta records the device's synced version (a pull at once, later
/// ones and stream events throttled until the next flush); the device list shows it with the lag.
async fn op4_devices_show_their_synced_version_and_lag(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let phone = server.login(&user, "phone").await.body["token"].as_str().unwrap().to_owned();
    let devices = |token: String| {
        let server = &server;
        async move {
            let list = server.get("/api/devices", &token).await;
            assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
            let by_name = |name: &str| list.body.as_array().unwrap().iter().find(|d| d["deviceName"] == name).unwrap().clone();
            (by_name("first device"), by_name("phone"))
        }
    };
    let (laptop, phone_view) = devices(user.token.clone()).await;
    assert_eq!((laptop["lastSyncedVersion"].clone(), laptop["lag"].clone()), (json!(null), json!(null)));
    assert_eq!(phone_view["lastSyncedAt"], json!(null));

    assert_eq!(server.get("/api/library/changes?since=0", &user.token).await.status, StatusCode::OK);
    server.create_material(&user.token, "one").await;
    server.create_material(&user.token, "two").await;
    let (laptop, _) = devices(user.token.clone()).await;
    assert_eq!((laptop["lastSyncedVersion"].as_i64(), laptop["lag"].as_i64()), (Some(1), Some(2)), "{laptop}");
    assert!(laptop["lastSyncedAt"].is_string());

    let mut stream = server.events(&phone, "?changes=1", None).await;
    assert_eq!(stream.next_event(WAIT).await.unwrap().json()["libraryVersion"], 3);
    server.get("/api/library/changes?since=1", &user.token).await;
    let (laptop, phone_view) = devices(phone.clone()).await;
    assert_eq!(laptop["lastSyncedVersion"].as_i64(), Some(1), "a second pull within the throttle waits for the flush");
    assert_eq!(phone_view["lastSyncedVersion"], json!(null), "a stream event is never written on the stream's path");

    server.state.sync_health.flush(server.store.as_ref()).await;
    let (laptop, phone_view) = devices(phone).await;
    assert_eq!((laptop["lastSyncedVersion"].as_i64(), laptop["lag"].as_i64()), (Some(3), Some(0)));
    assert_eq!((phone_view["lastSyncedVersion"].as_i64(), phone_view["lag"].as_i64()), (Some(3), Some(0)));
}

/// The value of the first sample of `name` whose labels include `labels`.
fn series(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|line| !line.starts_with('#')).find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        let (metric, rest) = key.split_once('{').unwrap_or((key, ""));
        let matches = metric == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        matches.then(|| value.parse().ok()).flatten()
    })
}

const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A process-wide JSON subscriber writing into a buffer (installed once per test process).
fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    static BUFFER: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUFFER
        .get_or_init(|| {
            let buffer = Arc::new(Mutex::new(Vec::new()));
            let writer = buffer.clone();
            let subscriber = tracing_subscriber::fmt()
                .json()
                .with_current_span(true)
                .with_env_filter("tower_http=debug,shelf_server=debug")
                .with_writer(move || SharedWriter(writer.clone()))
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("no other subscriber in this test process");
            buffer
        })
        .clone()
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
