//! Issue 9 item 5: limits are checked before work that grows with the input. The probe sent
//! 40,000 tags in a 429 KiB body and spent 4 s of CPU de-duplicating them before the 50-tag
//! check; every path that takes tags now refuses such a list by its length (MAT1).

use reqwest::StatusCode;
use serde_json::json;
use shelf_testkit::{Backend, TestServer};

shelf_testkit::on_every_backend!(mat1_a_flood_of_tags_is_refused_on_every_path);

async fn mat1_a_flood_of_tags_is_refused_on_every_path(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let material = server.create_material(&user.token, "target").await;
    let id = material["id"].as_str().unwrap();
    let flood: Vec<String> = (0..40_000).map(|i| format!("tag-{i}")).collect();

    let created = server.post("/api/materials", &user.token, json!({"title": "x", "tags": flood})).await;
    assert_eq!((created.status, created.code()), (StatusCode::BAD_REQUEST, "validation_failed"));
    assert!(created.body["message"].as_str().unwrap().contains("tags"), "{:?}", created.body);
    let patched = server.patch(&format!("/api/materials/{id}"), &user.token, json!({"tags": flood})).await;
    assert_eq!((patched.status, patched.code()), (StatusCode::BAD_REQUEST, "validation_failed"));
    let repeated = vec!["same"; 40_000];
    let patched = server.patch(&format!("/api/materials/{id}"), &user.token, json!({"tags": repeated})).await;
    assert_eq!((patched.status, patched.code()), (StatusCode::BAD_REQUEST, "validation_failed"), "counted before de-duplication");

    let batch = json!({"mutations": [
        {"mutationId": 1, "type": "tags.add", "id": id, "data": {"tags": flood}},
        {"mutationId": 2, "type": "tags.remove", "id": id, "data": {"tags": flood}},
    ]});
    // A batch that breaks the protocol is refused whole before anything applies (SY16).
    let refused = server.post("/api/library/mutations", &user.token, batch).await;
    assert_eq!((refused.status, refused.code()), (StatusCode::BAD_REQUEST, "validation_failed"), "{:?}", refused.body);
    assert_eq!(server.library_version(&user.token).await, 2, "nothing was written");
    let fine = server.patch(&format!("/api/materials/{id}"), &user.token, json!({"tags": ["a", " a ", "b"]})).await;
    assert_eq!(fine.body["tags"], json!(["a", "b"]));
}
