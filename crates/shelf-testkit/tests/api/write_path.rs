//! The single write path (issue 10): attachments are library mutations, one lock order, and
//! every dead letter is written in the transaction of the effect it belongs to.

use reqwest::StatusCode;
use serde_json::json;
use shelf_testkit::{Backend, TestServer};

use crate::attachments::{content, upload};

shelf_testkit::on_every_backend!(
    wp1_a_detach_racing_a_material_delete_never_fails,
    wp2_a_failing_dead_letter_write_rolls_back_the_delete,
    sy18_attachments_travel_in_offline_batches_with_receipts,
);

/// PostgreSQL used to answer one of these with a deadlock error: detach locked the attachment row
/// before the user's row, the delete the other way round. Now both take the user's lock first.
async fn wp1_a_detach_racing_a_material_delete_never_fails(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let sha = upload(&server, &user, &content(64, 1)).await;
    for round in 0..25 {
        let material = server.create_material(&user.token, &format!("round {round}")).await["id"].as_str().unwrap().to_owned();
        let attach = json!({"sha256": sha, "filename": "a.pdf", "contentType": "application/pdf", "size": 64});
        let attached = server.post(&format!("/api/materials/{material}/attachments"), &user.token, attach).await;
        assert_eq!(attached.status, StatusCode::CREATED, "{:?}", attached.body);
        let attachment = attached.body["id"].as_str().unwrap().to_owned();
        let detach_path = format!("/api/materials/{material}/attachments/{attachment}");
        let delete_path = format!("/api/materials/{material}");
        let (detach, delete) = tokio::join!(server.delete(&detach_path, &user.token), server.delete(&delete_path, &user.token));
        assert_eq!(delete.status, StatusCode::OK, "round {round}: {:?}", delete.body);
        assert!(matches!(detach.status, StatusCode::OK | StatusCode::NOT_FOUND), "round {round}: {:?}", detach.body);
    }
    // 25 × (create + attach + delete) plus the detaches that came first.
    let version = server.library_version(&user.token).await;
    assert!((1 + 75..=1 + 100).contains(&version), "{version}");
}

/// A delete that wins over newer edits keeps them in the dead-letter list. If that write fails,
/// the delete must not happen either (else the edits would be lost and a retry say `duplicate`).
async fn wp2_a_failing_dead_letter_write_rolls_back_the_delete(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let id = server.create_material(&user.token, "precious").await["id"].as_str().unwrap().to_owned(); // v2
    server.patch(&format!("/api/materials/{id}"), &user.token, json!({"body": "new work"})).await; // v3
    server
        .database
        .execute(match backend {
            Backend::Sqlite => {
                "CREATE TRIGGER fail_dead_letter BEFORE INSERT ON rejected_mutations
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
            }
            Backend::Postgres => {
                "CREATE FUNCTION shelf_fail() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql;
                 CREATE TRIGGER fail_dead_letter BEFORE INSERT ON rejected_mutations FOR EACH ROW EXECUTE FUNCTION shelf_fail();"
            }
        })
        .await;
    let stale_delete = json!({"mutations": [{"mutationId": 1, "type": "material.delete", "id": id, "baseVersion": 2}]});
    let failed = server.post("/api/library/mutations", &user.token, stale_delete.clone()).await;
    assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(server.get(&format!("/api/materials/{id}"), &user.token).await.body["body"], "new work");
    assert_eq!(server.library_version(&user.token).await, 3);
    server
        .database
        .execute(match backend {
            Backend::Sqlite => "DROP TRIGGER fail_dead_letter",
            Backend::Postgres => "DROP TRIGGER fail_dead_letter ON rejected_mutations",
        })
        .await;
    // The retry is not a duplicate: it applies now, and the overridden material is kept.
    let retried = server.post("/api/library/mutations", &user.token, stale_delete).await;
    assert_eq!(retried.body["results"][0]["status"], "applied", "{:?}", retried.body);
    let dead = server.get("/api/library/rejected", &user.token).await.body;
    assert_eq!(dead["items"][0]["data"]["body"], "new work");
}

/// `attachment.add` / `attachment.remove` in a batch, with receipts; a file not uploaded is
/// rejected, never half-attached.
async fn sy18_attachments_travel_in_offline_batches_with_receipts(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let bytes = content(1000, 3);
    let sha = upload(&server, &user, &bytes).await;
    let material = uuid::Uuid::new_v4();
    let attachment = uuid::Uuid::new_v4();
    let file = json!({"attachmentId": attachment, "sha256": sha, "filename": "scan.pdf", "contentType": "application/pdf", "size": 1000});
    let missing = json!({"attachmentId": uuid::Uuid::new_v4(), "sha256": "ab".repeat(32), "filename": "x.pdf", "contentType": "application/pdf", "size": 5});
    let batch = json!({"protocolVersion": 1, "mutations": [
        {"mutationId": 1, "type": "material.create", "id": material, "data": {"title": "Scans"}},
        {"mutationId": 2, "type": "attachment.add", "id": material, "data": file},
        {"mutationId": 3, "type": "attachment.add", "id": material, "data": missing},
    ]});
    let first = server.post("/api/library/mutations", &user.token, batch.clone()).await;
    let statuses: Vec<_> = first.body["results"].as_array().unwrap().iter().map(|r| r["status"].clone()).collect();
    assert_eq!(statuses, [json!("applied"), json!("applied"), json!("rejected")], "{:?}", first.body);
    assert_eq!(first.body["results"][2]["code"], "not_found");
    let replay = server.post("/api/library/mutations", &user.token, batch).await;
    let statuses: Vec<_> = replay.body["results"].as_array().unwrap().iter().map(|r| r["status"].clone()).collect();
    assert_eq!(statuses, [json!("duplicate"), json!("duplicate"), json!("duplicate")]);
    let listed = server.get(&format!("/api/materials/{material}/attachments"), &user.token).await.body;
    assert_eq!((listed[0]["id"].as_str(), listed.as_array().unwrap().len()), (Some(attachment.to_string().as_str()), 1));
    let download = server.client.get(server.url(&format!("/api/materials/{material}/attachments/{attachment}/content"))).bearer_auth(&user.token).send().await.unwrap();
    assert_eq!(download.bytes().await.unwrap().to_vec(), bytes);
    let remove = json!({"mutations": [{"mutationId": 4, "type": "attachment.remove", "id": material, "data": {"attachmentId": attachment}}]});
    let removed = server.post("/api/library/mutations", &user.token, remove).await;
    assert_eq!(removed.body["results"][0]["status"], "applied");
    let feed = server.get("/api/library/changes?since=0", &user.token).await.body;
    let tombstone = feed["changes"].as_array().unwrap().iter().find(|c| c["id"] == attachment.to_string().as_str()).unwrap().clone();
    assert_eq!((tombstone["kind"].as_str(), tombstone["op"].as_str()), (Some("attachment"), Some("delete")));
}
