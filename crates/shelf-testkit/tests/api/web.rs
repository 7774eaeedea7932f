//! Serving the browser app next to the API (WEB rules), with an in-memory app standing in for
//! the Vite build that `shelf-web` embeds.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};
use shelf_server::web::{CachePolicy, WebAsset, WebAssets};
use shelf_testkit::{Backend, TestServer};

shelf_testkit::on_every_backend!(
    web1_app_routes_get_index_html_and_revalidate,
    web2_hashed_assets_are_immutable_and_missing_files_404,
    web4_without_the_app_root_says_how_to_get_it,
);

struct FakeApp(HashMap<&'static str, WebAsset>);

impl WebAssets for FakeApp {
    fn get(&self, path: &str) -> Option<WebAsset> {
        self.0.get(path).cloned()
    }
}

fn fake_app() -> Arc<dyn WebAssets> {
    let file = |bytes: &'static str, content_type, cache| WebAsset { bytes: Bytes::from_static(bytes.as_bytes()), content_type, cache, etag: format!("\"{}\"", bytes.len()) };
    Arc::new(FakeApp(HashMap::from([
        ("index.html", file("<!doctype html><title>Shelf</title>", "text/html; charset=utf-8", CachePolicy::Revalidate)),
        ("sw.js", file("self.addEventListener('fetch', () => {});", "text/javascript; charset=utf-8", CachePolicy::Revalidate)),
        ("assets/index-1a2b3c.js", file("console.log('app')", "text/javascript; charset=utf-8", CachePolicy::Immutable)),
    ])))
}

async fn get(server: &TestServer, path: &str, etag: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(server.url(path));
    if let Some(etag) = etag {
        request = request.header(IF_NONE_MATCH, etag);
    }
    request.send().await.expect("request sent")
}

async fn web1_app_routes_get_index_html_and_revalidate(backend: Backend) {
    let server = TestServer::start_with_web(backend, fake_app()).await;
    for path in ["/", "/materials/0b0f8f5e-1d6f-4a43-9a43-0c6d3e1e2f10", "/devices"] {
        let response = get(&server, path, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-cache", "{path}");
        assert!(response.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
        let etag = response.headers()[ETAG].to_str().unwrap().to_owned();
        assert!(response.text().await.unwrap().contains("<title>Shelf</title>"));
        assert_eq!(get(&server, path, Some(&etag)).await.status(), StatusCode::NOT_MODIFIED);
    }
    let worker = get(&server, "/sw.js", None).await;
    assert_eq!(worker.headers()[CACHE_CONTROL], "no-cache");
    // The API keeps its JSON errors: unknown API routes and non-GET requests never get the app.
    let api = server.call(Method::GET, "/api/nope", None, None).await;
    assert_eq!((api.status, api.code()), (StatusCode::NOT_FOUND, "not_found"));
    let post = server.call(Method::POST, "/materials", None, Some(serde_json::json!({}))).await;
    assert_eq!((post.status, post.code()), (StatusCode::NOT_FOUND, "not_found"));
    let health = server.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
}

async fn web2_hashed_assets_are_immutable_and_missing_files_404(backend: Backend) {
    let server = TestServer::start_with_web(backend, fake_app()).await;
    let asset = get(&server, "/assets/index-1a2b3c.js", None).await;
    assert_eq!(asset.status(), StatusCode::OK);
    assert_eq!(asset.headers()[CACHE_CONTROL], "public, max-age=31536000, immutable");
    assert!(asset.headers()[CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    // A missing chunk is a 404, never index.html served as JavaScript.
    let missing = server.call(Method::GET, "/assets/index-gone.js", None, None).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "not_found"));
}

async fn web4_without_the_app_root_says_how_to_get_it(backend: Backend) {
    let server = TestServer::start(backend).await;
    let root = get(&server, "/", None).await;
    assert_eq!(root.status(), StatusCode::OK);
    let page = root.text().await.unwrap();
    assert!(page.contains("SHELF_WEB_SKIP") && page.contains("Node.js 20"), "{page}");
    let api = server.call(Method::GET, "/api/nope", None, None).await;
    assert_eq!((api.status, api.code()), (StatusCode::NOT_FOUND, "not_found"));
}
