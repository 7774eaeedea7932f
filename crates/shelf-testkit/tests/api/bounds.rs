//! Issue 9 item 5: limits are checked before work that grows with the input. The probe sent
//! 40,000 tags in a 429 KiB body and spent 4 s of CPU de-duplicating them before the 50-tag
//! check; every path that takes tags now refuses such a list by its length (MAT1).

use reqwest::StatusCode;
use serde_json::json;
use shelf_testkit::{Backend, TestServer};

shelf_testkit::on_every_backend!(
    mat1_a_flood_of_tags_is_refused_on_every_path,
    cf5_feed_pages_stop_at_a_byte_budget,
    sy11_large_dead_letters_are_listed_by_reference,
);

/// Issue 9 item 7: 1,000 × 1 MiB bodies made a ~1 GB feed page; a page now stops at about 4 MiB
/// (always holding one whole version) and `nextSince` continues.
async fn cf5_feed_pages_stop_at_a_byte_budget(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let body = "x".repeat(1024 * 1024);
    for i in 0..6 {
        let created = server.post("/api/materials", &user.token, json!({"title": format!("big {i}"), "body": body})).await;
        assert_eq!(created.status, StatusCode::CREATED);
    }
    let (mut since, mut pages, mut seen) = (0, 0, 0);
    loop {
        let page = server.get(&format!("/api/library/changes?since={since}&limit=1000"), &user.token).await.body;
        let changes = page["changes"].as_array().unwrap().len();
        assert!((1..6).contains(&changes), "a page of {changes} 1 MiB materials");
        (seen, pages, since) = (seen + changes, pages + 1, page["nextSince"].as_i64().unwrap());
        if page["hasMore"] == false {
            break;
        }
    }
    assert_eq!((seen, since), (6, 7));
    assert!(pages >= 2);
}

/// Issue 9 item 7: the dead-letter list returned up to 500 entries with all their data (24 MiB);
/// it now pages, and data over 16 KiB is read from the entry itself.
async fn sy11_large_dead_letters_are_listed_by_reference(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let body = "y".repeat(100 * 1024);
    let mutations: Vec<_> = (1..=3)
        .map(|n| json!({"mutationId": n, "type": "material.update", "id": uuid::Uuid::new_v4(), "data": {"body": body}}))
        .collect();
    let reply = server.post("/api/library/mutations", &user.token, json!({"mutations": mutations})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let first = server.get("/api/library/rejected?limit=2", &user.token).await.body;
    let items = first["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i["data"].is_null() && i["dataBytes"].as_u64() > Some(100 * 1024)));
    let before = first["nextBefore"].as_str().unwrap();
    let rest = server.get(&format!("/api/library/rejected?limit=2&before={before}"), &user.token).await.body;
    assert_eq!((rest["items"].as_array().unwrap().len(), rest["nextBefore"].clone()), (1, json!(null)));
    let id = items[0]["id"].as_str().unwrap();
    let whole = server.get(&format!("/api/library/rejected/{id}"), &user.token).await.body;
    assert_eq!(whole["data"]["body"].as_str().map(str::len), Some(100 * 1024));
    let other = server.user().await;
    assert_eq!(server.get(&format!("/api/library/rejected/{id}"), &other.token).await.status, StatusCode::NOT_FOUND);
}

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
