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
