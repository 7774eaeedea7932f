//! Test helpers: a real Shelf server on 127.0.0.1:0 over a fresh database, and an HTTP client
//! with one method per verb. Each [`TestServer`] has its own database (a temporary SQLite file
//! or a fresh PostgreSQL database) so tests never share state.

mod database;
pub mod faults;
mod openapi;
pub mod process;
pub mod push;
pub mod sse;

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shelf_bus::{ChangeBus, InProcessBus};
use shelf_server::{AppState, ServerSettings};
use shelf_store::Store;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use database::{postgres_admin_url, Backend, TestDatabase};
pub use openapi::{fill_path, openapi_operations, Operation};
pub use sse::{SseEvent, SseReader};

/// An HTTP client for one Shelf server, with one method per verb. Works against any server,
/// in-process ([`TestServer`]) or a separate `shelf serve` process.
#[derive(Clone)]
pub struct Api {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub client: reqwest::Client,
}

/// Where a test server keeps attachment bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobBackend {
    /// A folder in the test's temporary directory.
    Local,
    /// A fresh bucket on the S3-compatible server at `SHELF_TEST_S3_ENDPOINT` (scripts/services).
    S3,
}

/// The S3-compatible test server (scripts/services starts one and exports this).
pub fn s3_endpoint() -> String {
    std::env::var("SHELF_TEST_S3_ENDPOINT").expect("SHELF_TEST_S3_ENDPOINT is not set: run scripts/services (or scripts/test)")
}

/// A running in-process server with its own database; derefs to its [`Api`].
pub struct TestServer {
    pub api: Api,
    pub store: Arc<dyn Store>,
    pub state: AppState,
    /// Upload staging and local blobs live here.
    pub data: tempfile::TempDir,
    pub database: TestDatabase,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub email: String,
    pub password: String,
    pub user_id: String,
    pub device_id: String,
    pub token: String,
}

/// A response as tests look at it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The `code` of an error body, or "" if there is none.
    pub fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

/// Settings of a server behind a trusted reverse proxy at 127.0.0.1, where tests connect from:
/// requests then say who the client is and how it connected with `X-Forwarded-*` headers.
pub fn behind_local_proxy() -> ServerSettings {
    let networks = shelf_server::client::TrustedProxies::parse_networks("127.0.0.1").expect("a valid address");
    ServerSettings { trusted_proxies: shelf_server::client::TrustedProxies { networks, ..Default::default() }, ..Default::default() }
}

impl TestServer {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, ServerSettings::default()).await
    }

    pub async fn start_with(backend: Backend, settings: ServerSettings) -> Self {
        Self::start_full(backend, BlobBackend::Local, settings).await
    }

    pub async fn start_full(backend: Backend, blobs: BlobBackend, settings: ServerSettings) -> Self {
        Self::launch(backend, blobs, settings, None, Arc::new(InProcessBus::new())).await
    }

    /// A server on [`SpanningBus`]: it writes which devices have streams open to the database,
    /// as an instance on a broker does, so that path is tested in one process.
    pub async fn start_spanning(backend: Backend, settings: ServerSettings) -> Self {
        Self::launch(backend, BlobBackend::Local, settings, None, Arc::new(SpanningBus(InProcessBus::new()))).await
    }

    /// A server that also serves a browser app from `web` (tests pass an in-memory one, so the
    /// testkit never needs the real Vite build).
    pub async fn start_with_web(backend: Backend, web: Arc<dyn shelf_server::web::WebAssets>) -> Self {
        Self::launch(backend, BlobBackend::Local, ServerSettings::default(), Some(web), Arc::new(InProcessBus::new())).await
    }

    async fn launch(
        backend: Backend,
        blobs: BlobBackend,
        settings: ServerSettings,
        web: Option<Arc<dyn shelf_server::web::WebAssets>>,
        bus: Arc<dyn ChangeBus>,
    ) -> Self {
        let database = TestDatabase::create(backend).await;
        let store = database.open_store().await;
        let data = tempfile::tempdir().expect("temp dir");
        let blobs: Arc<dyn shelf_blob::BlobStore> = match blobs {
            BlobBackend::Local => Arc::new(shelf_blob::LocalBlobStore::new(data.path().join("blobs")).expect("blob folder")),
            BlobBackend::S3 => {
                let endpoint = s3_endpoint();
                let bucket = format!("shelf-test-{}", uuid::Uuid::new_v4().simple());
                let created = reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await.expect("S3 server reachable");
                assert!(created.status().is_success(), "creating bucket {bucket}: {}", created.status());
                let settings = shelf_blob_s3::S3Settings { endpoint: Some(endpoint), bucket, region: "us-east-1".into() };
                Arc::new(shelf_blob_s3::S3BlobStore::new(&settings).expect("S3 store"))
            }
        };
        let mut state = AppState::new(store.clone(), bus, blobs, settings).await.expect("server state");
        if let Some(web) = web {
            state = state.with_web_assets(web);
        }
        let listener = shelf_server::listen("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(shelf_server::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        Self {
            api: Api::new(&base),
            store,
            state,
            data,
            database,
            shutdown: Some(tx),
            task: Some(task),
        }
    }

    /// Stops accepting, waits for in-flight requests.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

}

impl std::ops::Deref for TestServer {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Api {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder().pool_max_idle_per_host(64).build().expect("client"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Self::reply(request.send().await.expect("request sent")).await
    }

    pub async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body read");
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        Reply { status, headers, body }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Registers a fresh user and logs in once.
    pub async fn user(&self) -> TestUser {
        let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "correct horse battery".to_owned();
        let registered = self
            .call(Method::POST, "/api/auth/register", None, Some(json!({"email": email, "password": password})))
            .await;
        assert_eq!(registered.status, StatusCode::CREATED, "{:?}", registered.body);
        let mut user = TestUser {
            email,
            password,
            user_id: registered.body["userId"].as_str().expect("userId").to_owned(),
            device_id: String::new(),
            token: String::new(),
        };
        let login = self.login(&user, "first device").await;
        user.device_id = login.body["deviceId"].as_str().expect("deviceId").to_owned();
        user.token = login.body["token"].as_str().expect("token").to_owned();
        user
    }

    /// Logs `user` in again as another device.
    pub async fn login(&self, user: &TestUser, device_name: &str) -> Reply {
        let body = json!({"email": user.email, "password": user.password, "deviceName": device_name});
        let reply = self.call(Method::POST, "/api/auth/login", None, Some(body)).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply
    }

    /// Creates a material and returns its response body.
    pub async fn create_material(&self, token: &str, title: &str) -> Value {
        let reply = self.post("/api/materials", token, json!({"title": title, "body": "text", "tags": ["t"]})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body
    }

    /// Opens `/api/library-version-events` with a bearer token and extra query/headers.
    pub async fn events(&self, token: &str, query: &str, last_event_id: Option<i64>) -> SseReader {
        let mut request = self.client.get(self.url(&format!("/api/library-version-events{query}"))).bearer_auth(token);
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id.to_string());
        }
        SseReader::new(request.send().await.expect("stream opened"))
    }

    /// tus creation of an upload of `length` bytes with this SHA-256 (named `notes.pdf`); the
    /// upload's path is in the reply's `location` header.
    pub async fn tus_create(&self, token: &str, length: usize, sha256: &str) -> Reply {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let request = self
            .client
            .post(self.url("/api/uploads"))
            .bearer_auth(token)
            .header("tus-resumable", "1.0.0")
            .header("upload-length", length.to_string())
            .header("upload-metadata", format!("sha256 {},filename {}", b64(sha256), b64("notes.pdf")));
        Self::reply(request.send().await.expect("request sent")).await
    }

    /// A tus PATCH of `bytes` at `offset`.
    pub async fn tus_patch(&self, token: &str, location: &str, offset: usize, bytes: Vec<u8>) -> Reply {
        let request = self
            .client
            .patch(self.url(location))
            .bearer_auth(token)
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(bytes);
        Self::reply(request.send().await.expect("request sent")).await
    }

    pub async fn library_version(&self, token: &str) -> i64 {
        let reply = self.get("/api/library/version", token).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        reply.body["libraryVersion"].as_i64().expect("libraryVersion")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Runs each named `async fn(Backend)` test on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )+
        }
    };
}

/// The in-process bus, saying that other instances may serve streams: a server on it records
/// open streams in the database (`stream_presence`) as it would on a broker.
pub struct SpanningBus(pub InProcessBus);

impl ChangeBus for SpanningBus {
    fn publish(&self, user: shelf_core::UserId, version: shelf_core::LibraryVersion) {
        self.0.publish(user, version);
    }
    fn subscribe(&self, user: shelf_core::UserId) -> tokio::sync::watch::Receiver<Option<shelf_core::LibraryVersion>> {
        self.0.subscribe(user)
    }
    fn revoke(&self, device: shelf_core::DeviceId) {
        self.0.revoke(device);
    }
    fn revocations(&self) -> tokio::sync::broadcast::Receiver<shelf_core::DeviceId> {
        self.0.revocations()
    }
    fn continuity(&self) -> Option<u64> {
        self.0.continuity()
    }
    fn name(&self) -> &'static str {
        "in-process, as if spanning instances"
    }
    fn spans_instances(&self) -> bool {
        true
    }
}
