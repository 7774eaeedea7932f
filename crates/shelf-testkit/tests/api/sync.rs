use reqwest::StatusCode;
use serde_json::{json, Value};
use shelf_testkit::{Backend, TestServer};

shelf_testkit::on_every_backend!(
    sy10_a_batch_applies_in_order_and_a_replay_changes_nothing,
    sy11_rejections_are_dead_lettered_and_the_queue_goes_on,
    sy12_concurrent_edits_merge_or_become_resolvable_conflicts,
    sy13_if_match_merges_or_answers_409,
    sy14_stale_progress_never_goes_backwards,
);

fn statuses(reply: &Value) -> Vec<String> {
    reply["results"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap().to_owned()).collect()
}

async fn sy10_a_batch_applies_in_order_and_a_replay_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let id = uuid::Uuid::new_v4();
    let batch = json!({"mutations": [
        {"mutationId": 1, "type": "material.create", "id": id, "baseVersion": 1, "data": {"title": "Offline notes", "body": "a\nb\n"}},
        {"mutationId": 2, "type": "material.update", "id": id, "baseVersion": 1, "data": {"body": "a\nB\n"}},
        {"mutationId": 3, "type": "progress.set", "id": id, "baseVersion": 1, "data": {"percentComplete": 20, "studySecondsDelta": 300}},
        {"mutationId": 4, "type": "tags.add", "id": id, "baseVersion": 1, "data": {"tags": ["plane"]}},
    ]});
    let first = server.post("/api/library/mutations", &user.token, batch.clone()).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(statuses(&first.body), ["applied", "applied", "applied", "applied"]);
    let versions: Vec<i64> = first.body["results"].as_array().unwrap().iter().map(|r| r["libraryVersion"].as_i64().unwrap()).collect();
    assert_eq!(versions, [2, 3, 4, 5]);
    assert_eq!(first.body["libraryVersion"], 5);

    let replay = server.post("/api/library/mutations", &user.token, batch).await;
    assert_eq!(statuses(&replay.body), ["duplicate", "duplicate", "duplicate", "duplicate"]);
    let replay_versions: Vec<i64> = replay.body["results"].as_array().unwrap().iter().map(|r| r["libraryVersion"].as_i64().unwrap()).collect();
    assert_eq!(replay_versions, versions, "the stored results come back");
    assert_eq!(server.library_version(&user.token).await, 5);
    let material = server.get(&format!("/api/materials/{id}"), &user.token).await.body;
    assert_eq!((material["body"].as_str(), material["tags"].clone()), (Some("a\nB\n"), json!(["plane"])));
    assert_eq!(material["progress"]["studySeconds"], 300, "counted once");
}

async fn sy11_rejections_are_dead_lettered_and_the_queue_goes_on(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let gone = server.create_material(&user.token, "to delete").await["id"].as_str().unwrap().to_owned();
    server.delete(&format!("/api/materials/{gone}"), &user.token).await;
    let new_id = uuid::Uuid::new_v4();
    // A batch that breaks the protocol is a client bug: refused whole, nothing applied.
    for (broken, code) in [
        (json!({"mutationId": 3, "type": "material.create", "id": new_id, "baseVersion": 2, "data": {"title": ""}}), "validation_failed"),
        (json!({"mutationId": 4, "type": "material.teleport", "id": new_id, "baseVersion": 2}), "invalid_json"),
        (json!({"mutationId": 4, "type": "material.delete", "id": new_id, "baseVersion": -5}), "validation_failed"),
        (json!({"mutationId": 4, "type": "", "id": new_id}), "invalid_json"),
    ] {
        let batch = json!({"mutations": [{"mutationId": 9, "type": "material.create", "id": new_id, "data": {"title": "x"}}, broken]});
        let reply = server.post("/api/library/mutations", &user.token, batch).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, code), "{:?}", reply.body);
    }
    let future = server.post("/api/library/mutations", &user.token, json!({"protocolVersion": 2, "mutations": []})).await;
    assert_eq!((future.status, future.code()), (StatusCode::BAD_REQUEST, "unsupported_protocol"));
    assert_eq!(server.library_version(&user.token).await, 3, "nothing of a refused batch applied");
    // Mutations that do not fit the library's state are rejected one by one; the rest applies.
    let batch = json!({"protocolVersion": 1, "mutations": [
        {"mutationId": 1, "type": "material.update", "id": gone, "baseVersion": 2, "data": {"title": "edited offline"}},
        {"mutationId": 2, "type": "material.update", "id": uuid::Uuid::new_v4(), "baseVersion": 2, "data": {"title": "never existed"}},
        {"mutationId": 5, "type": "material.create", "id": new_id, "baseVersion": 2, "data": {"title": "fine"}},
        {"mutationId": 6, "type": "material.create", "id": new_id, "baseVersion": 2, "data": {"title": "twice"}},
    ]});
    let reply = server.post("/api/library/mutations", &user.token, batch).await;
    assert_eq!(statuses(&reply.body), ["rejected", "rejected", "applied", "rejected"]);
    let codes: Vec<&str> = reply.body["results"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap_or("")).collect();
    assert_eq!(codes, ["deleted", "not_found", "", "material_exists"]);
    let dead = server.get("/api/library/rejected", &user.token).await;
    let items = dead.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    let deleted = items.iter().find(|i| i["code"] == "deleted").unwrap();
    assert_eq!((deleted["data"]["title"].as_str(), deleted["materialId"].as_str()), (Some("edited offline"), Some(gone.as_str())));
    assert_eq!(deleted["type"], "material.update");
    let other = server.user().await;
    assert_eq!(server.get("/api/library/rejected", &other.token).await.body["items"], json!([]));

    // Mirror image: the edit lands first, then a delete made before the device saw it. The
    // delete wins, and the overridden state is kept to restore.
    let kept = server.create_material(&user.token, "edited elsewhere").await["id"].as_str().unwrap().to_owned();
    let base = server.library_version(&user.token).await;
    server.patch(&format!("/api/materials/{kept}"), &user.token, json!({"body": "new work"})).await;
    let delete = json!({"mutations": [{"mutationId": 7, "type": "material.delete", "id": kept, "baseVersion": base}]});
    let reply = server.post("/api/library/mutations", &user.token, delete).await;
    assert_eq!(statuses(&reply.body), ["applied"]);
    assert_eq!(server.get(&format!("/api/materials/{kept}"), &user.token).await.status, StatusCode::NOT_FOUND);
    let dead = server.get("/api/library/rejected", &user.token).await.body;
    let restorable = dead["items"].as_array().unwrap().iter().find(|i| i["materialId"] == kept.as_str()).expect("snapshot kept");
    assert_eq!((restorable["code"].as_str(), restorable["data"]["body"].as_str()), (Some("deleted"), Some("new work")));
}

async fn sy12_concurrent_edits_merge_or_become_resolvable_conflicts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let laptop = user.token.clone();
    let phone = server.login(&user, "phone").await.body["token"].as_str().unwrap().to_owned();
    let id = server.post("/api/materials", &laptop, json!({"title": "Biology", "body": "cells\nDNA\n"})).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned(); // v2; both devices saw v2
    let edit = |mutation_id: i64, data: Value| {
        json!({"mutations": [{"mutationId": mutation_id, "type": "material.update", "id": id, "baseVersion": 2, "data": data}]})
    };
    let laptop_edit = server.post("/api/library/mutations", &laptop, edit(1, json!({"title": "Biology 101", "body": "cells\nRNA\n"}))).await;
    assert_eq!(statuses(&laptop_edit.body), ["applied"]);
    // The phone, still at v2, edits another line of the body and the same title.
    let phone_edit = server.post("/api/library/mutations", &phone, edit(1, json!({"title": "Bio", "body": "tissues\nDNA\n"}))).await;
    assert_eq!(statuses(&phone_edit.body), ["merged"]);
    let conflicts = phone_edit.body["results"][0]["conflict"].as_array().unwrap().clone();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0]["field"], "title");
    assert!(conflicts[0].get("deviceValue").is_none(), "results carry conflict summaries, not texts");
    let material = server.get(&format!("/api/materials/{id}"), &laptop).await.body;
    assert_eq!(material["body"], "tissues\nRNA\n", "edits to different lines both survive");
    assert_eq!(material["title"], "Biology 101", "the server's title stays");
    assert_eq!(material["conflicts"].as_array().unwrap().len(), 1);
    let feed = server.get("/api/library/changes?since=3", &laptop).await.body;
    assert_eq!(feed["changes"][0]["data"]["conflicts"][0]["id"], conflicts[0]["id"], "conflicts travel in the feed");

    let listed = server.get(&format!("/api/materials/{id}/conflicts"), &laptop).await.body;
    assert_eq!((listed[0]["deviceValue"].as_str(), listed[0]["serverValue"].as_str()), (Some("Bio"), Some("Biology 101")));
    let conflict_id = listed[0]["id"].as_str().unwrap().to_owned();
    let resolve_path = format!("/api/materials/{id}/conflicts/{conflict_id}/resolve");
    let bad = server.post(&resolve_path, &laptop, json!({"resolution": "maybe"})).await;
    assert_eq!(bad.code(), "invalid_json");
    let empty = server.post(&resolve_path, &laptop, json!({"resolution": "custom", "value": " "})).await;
    assert_eq!(empty.code(), "validation_failed", "a custom title must still be a valid title");
    let resolved = server.post(&resolve_path, &laptop, json!({"resolution": "device"})).await;
    assert_eq!(resolved.status, StatusCode::OK, "{:?}", resolved.body);
    assert_eq!((resolved.body["title"].as_str(), resolved.body["conflicts"].clone()), (Some("Bio"), json!([])));
    assert_eq!(server.post(&resolve_path, &laptop, json!({"resolution": "server"})).await.status, StatusCode::NOT_FOUND);
}

async fn sy13_if_match_merges_or_answers_409(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let id = server.post("/api/materials", &user.token, json!({"title": "Chemistry", "body": "acids\nbases\n"})).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned(); // v2
    let path = format!("/api/materials/{id}");
    server.patch(&path, &user.token, json!({"body": "acids\nsalts\n"})).await; // v3
    let patch = |body: Value, version: &'static str| {
        server.client.patch(server.url(&path)).bearer_auth(&user.token).header("if-match", version).json(&body).send()
    };
    let merged = shelf_testkit::Api::reply(patch(json!({"body": "ACIDS\nbases\n"}), "2").await.unwrap()).await;
    assert_eq!(merged.status, StatusCode::OK, "{:?}", merged.body);
    assert_eq!(merged.body["body"], "ACIDS\nsalts\n");
    let clash = shelf_testkit::Api::reply(patch(json!({"body": "acids\nesters\n"}), "\"2\"").await.unwrap()).await;
    assert_eq!((clash.status, clash.code()), (StatusCode::CONFLICT, "edit_conflict"));
    assert_eq!(clash.body["conflicts"][0]["deviceValue"], "acids\nesters\n");
    assert_eq!(server.get(&path, &user.token).await.body["body"], "ACIDS\nsalts\n", "nothing written on 409");
    let garbage = shelf_testkit::Api::reply(patch(json!({"title": "x"}), "soon").await.unwrap()).await;
    assert_eq!(garbage.code(), "validation_failed");
}

async fn sy14_stale_progress_never_goes_backwards(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let id = server.create_material(&user.token, "History").await["id"].as_str().unwrap().to_owned(); // v2
    server.put(&format!("/api/materials/{id}/progress"), &user.token, json!({"percentComplete": 80, "completed": true, "studySecondsDelta": 60})).await; // v3
    let stale = |mutation_id: i64, data: Value| {
        json!({"mutations": [{"mutationId": mutation_id, "type": "progress.set", "id": id, "baseVersion": 2, "data": data}]})
    };
    let reply = server.post("/api/library/mutations", &user.token, stale(1, json!({"percentComplete": 30, "completed": false, "studySecondsDelta": 40}))).await;
    assert_eq!(statuses(&reply.body), ["merged"]);
    let progress = server.get(&format!("/api/materials/{id}"), &user.token).await.body["progress"].clone();
    assert_eq!((progress["percentComplete"].as_f64(), progress["completed"].as_bool(), progress["studySeconds"].as_i64()), (Some(80.0), Some(true), Some(100)));
    let reset = server.post("/api/library/mutations", &user.token, stale(2, json!({"percentComplete": 0, "completed": false, "reset": true}))).await;
    assert_eq!(statuses(&reset.body), ["applied"]);
    let progress = server.get(&format!("/api/materials/{id}"), &user.token).await.body["progress"].clone();
    assert_eq!((progress["percentComplete"].as_f64(), progress["completed"].as_bool()), (Some(0.0), Some(false)));
}
