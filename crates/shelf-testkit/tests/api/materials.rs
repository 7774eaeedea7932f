use serde_json::json;
use reqwest::StatusCode;
use shelf_testkit::{Backend, TestServer};

shelf_testkit::on_every_backend!(
    lv1_version_starts_at_one_and_create_with_progress_bumps_once,
    lv3_updates_bump_once_and_noops_not_at_all,
    mat1_materials_validate_their_fields,
    mat2_list_paginates,
    pr1_progress_is_set_accumulated_and_deleted,
);

async fn lv1_version_starts_at_one_and_create_with_progress_bumps_once(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let version = server.get("/api/library/version", &user.token).await;
    assert_eq!(version.body["libraryVersion"], 1);
    assert!(version.body["epoch"].as_str().is_some_and(|e| !e.is_empty()));

    let id = uuid::Uuid::new_v4();
    let body = json!({"id": id, "title": "Cell biology", "body": "Mitochondria", "tags": ["bio", "exam"],
        "progress": {"percentComplete": 12.5, "position": "page 3", "studySecondsDelta": 600}});
    let created = server.post("/api/materials", &user.token, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["libraryVersion"], 2);
    assert_eq!(created.body["id"], id.to_string());
    assert_eq!(created.body["version"], 2);
    assert_eq!(created.body["tags"], json!(["bio", "exam"]));
    assert_eq!(created.body["progress"]["studySeconds"], 600);
    assert_eq!(created.body["progress"]["percentComplete"], 12.5);
    assert_eq!(created.body["progress"]["version"], 2);
    for field in ["createdAt", "updatedAt"] {
        assert!(created.body[field].is_string(), "{field}");
    }
    let fetched = server.get(&format!("/api/materials/{id}"), &user.token).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body["title"], "Cell biology");
    assert_eq!(fetched.body["progress"]["position"], "page 3");
    assert_eq!(server.library_version(&user.token).await, 2);

    let duplicate = server.post("/api/materials", &user.token, json!({"id": id, "title": "again"})).await;
    assert_eq!((duplicate.status, duplicate.code()), (StatusCode::CONFLICT, "material_exists"));
    assert_eq!(server.library_version(&user.token).await, 2);
}

async fn lv3_updates_bump_once_and_noops_not_at_all(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let id = server.create_material(&user.token, "Draft").await["id"].as_str().unwrap().to_owned();
    let path = format!("/api/materials/{id}");

    let patched = server.patch(&path, &user.token, json!({"body": "new body", "progress": {"completed": true}})).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["libraryVersion"], 3);
    assert_eq!((patched.body["title"].as_str(), patched.body["body"].as_str()), (Some("Draft"), Some("new body")));
    assert_eq!(patched.body["progress"]["completed"], true);

    let same = server.patch(&path, &user.token, json!({"title": "Draft", "tags": ["t"]})).await;
    assert_eq!(same.status, StatusCode::OK);
    assert_eq!(same.body["libraryVersion"], 3);
    assert_eq!(server.library_version(&user.token).await, 3);

    let invalid = server.patch(&path, &user.token, json!({"title": ""})).await;
    assert_eq!((invalid.status, invalid.code()), (StatusCode::BAD_REQUEST, "validation_failed"));
    let missing = server.patch(&format!("/api/materials/{}", uuid::Uuid::new_v4()), &user.token, json!({"title": "x"})).await;
    assert_eq!((missing.status, missing.code()), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(server.library_version(&user.token).await, 3);

    let deleted = server.delete(&path, &user.token).await;
    assert_eq!((deleted.status, deleted.body["libraryVersion"].as_i64()), (StatusCode::OK, Some(4)));
    assert_eq!(server.get(&path, &user.token).await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.delete(&path, &user.token).await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.library_version(&user.token).await, 4);
}

async fn mat1_materials_validate_their_fields(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let cases = [
        json!({"title": ""}),
        json!({"title": "x".repeat(501)}),
        json!({"title": "ok", "tags": vec!["t"; 51].iter().enumerate().map(|(i, _)| i.to_string()).collect::<Vec<_>>()}),
        json!({"title": "ok", "tags": ["x".repeat(65)]}),
        json!({"title": "ok", "body": "b".repeat(1024 * 1024 + 1)}),
        json!({"title": "ok", "progress": {"percentComplete": 101}}),
        json!({"title": "ok", "progress": {"position": "p".repeat(257)}}),
        json!({"title": "ok", "progress": {"studySecondsDelta": -5}}),
    ];
    for body in cases {
        let reply = server.post("/api/materials", &user.token, body).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "validation_failed"), "{:?}", reply.body);
        assert!(reply.body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let unknown_field = server.post("/api/materials", &user.token, json!({"title": "ok", "titel": "typo"})).await;
    assert_eq!((unknown_field.status, unknown_field.code()), (StatusCode::BAD_REQUEST, "invalid_json"));
    let exactly_at_limits = json!({"title": "é".repeat(500), "body": "b".repeat(1024 * 1024),
        "tags": (0..50).map(|i| format!("{i:0>64}")).collect::<Vec<_>>()});
    assert_eq!(server.post("/api/materials", &user.token, exactly_at_limits).await.status, StatusCode::CREATED);
    assert_eq!(server.library_version(&user.token).await, 2);
}

async fn mat2_list_paginates(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    for i in 0..5 {
        server.create_material(&user.token, &format!("m{i}")).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/materials?limit=2".to_owned();
    loop {
        let page = server.get(&path, &user.token).await;
        assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
        for item in page.body["items"].as_array().unwrap() {
            seen.push(item["title"].as_str().unwrap().to_owned());
        }
        match page.body["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/materials?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    seen.sort();
    assert_eq!(seen, ["m0", "m1", "m2", "m3", "m4"]);
    let bad = server.get("/api/materials?limit=0", &user.token).await;
    assert_eq!((bad.status, bad.code()), (StatusCode::BAD_REQUEST, "validation_failed"));
}

async fn pr1_progress_is_set_accumulated_and_deleted(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let id = server.create_material(&user.token, "Physics").await["id"].as_str().unwrap().to_owned();
    let path = format!("/api/materials/{id}/progress");
    let first = server.put(&path, &user.token, json!({"percentComplete": 10, "studySecondsDelta": 60, "position": "ch1"})).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!((first.body["studySeconds"].as_i64(), first.body["libraryVersion"].as_i64()), (Some(60), Some(3)));
    assert_eq!(first.body["materialId"], id.as_str());
    assert!(first.body["lastStudiedAt"].is_string());
    let second = server.put(&path, &user.token, json!({"studySecondsDelta": 30})).await;
    assert_eq!((second.body["studySeconds"].as_i64(), second.body["percentComplete"].as_f64()), (Some(90), Some(10.0)));
    assert_eq!(second.body["version"], 4);
    let noop = server.put(&path, &user.token, json!({"position": "ch1"})).await;
    assert_eq!(noop.body["libraryVersion"], 4);
    let bad = server.put(&path, &user.token, json!({"percentComplete": -1})).await;
    assert_eq!(bad.code(), "validation_failed");
    let orphan = server.put(&format!("/api/materials/{}/progress", uuid::Uuid::new_v4()), &user.token, json!({})).await;
    assert_eq!(orphan.status, StatusCode::NOT_FOUND);

    let deleted = server.delete(&path, &user.token).await;
    assert_eq!((deleted.status, deleted.body["libraryVersion"].as_i64()), (StatusCode::OK, Some(5)));
    assert_eq!(server.delete(&path, &user.token).await.status, StatusCode::NOT_FOUND);
    let material = server.get(&format!("/api/materials/{id}"), &user.token).await;
    assert!(material.body["progress"].is_null());
    assert_eq!(server.library_version(&user.token).await, 5);
}
