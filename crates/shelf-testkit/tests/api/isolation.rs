use reqwest::StatusCode;
use serde_json::json;
use shelf_testkit::{Backend, TestServer};

shelf_testkit::on_every_backend!(iso1_a_second_user_can_neither_read_change_delete_nor_see);

async fn iso1_a_second_user_can_neither_read_change_delete_nor_see(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user().await;
    let bob = server.user().await;
    let id = server.create_material(&alice.token, "Alice's notes").await["id"].as_str().unwrap().to_owned();
    server.put(&format!("/api/materials/{id}/progress"), &alice.token, json!({"percentComplete": 50})).await;

    let material = format!("/api/materials/{id}");
    let progress = format!("{material}/progress");
    for reply in [
        server.get(&material, &bob.token).await,
        server.patch(&material, &bob.token, json!({"title": "mine now"})).await,
        server.delete(&material, &bob.token).await,
        server.put(&progress, &bob.token, json!({"percentComplete": 0})).await,
        server.delete(&progress, &bob.token).await,
    ] {
        assert_eq!((reply.status, reply.code()), (StatusCode::NOT_FOUND, "not_found"));
    }
    assert_eq!(server.get("/api/materials", &bob.token).await.body["items"], json!([]));
    assert_eq!(server.get("/api/library/changes?since=0", &bob.token).await.body["changes"], json!([]));
    assert_eq!(server.library_version(&bob.token).await, 1);
    // Bob re-using Alice's id creates Bob's own material and leaves Alice's alone.
    let own = server.post("/api/materials", &bob.token, json!({"id": id, "title": "Bob's"})).await;
    assert_eq!(own.status, StatusCode::CREATED);
    let alices = server.get(&material, &alice.token).await;
    assert_eq!((alices.body["title"].as_str(), alices.body["progress"]["percentComplete"].as_f64()), (Some("Alice's notes"), Some(50.0)));
    assert_eq!(server.library_version(&alice.token).await, 3);
    let bob_devices = server.get("/api/devices", &bob.token).await;
    assert_eq!(bob_devices.body.as_array().unwrap().len(), 1);
}
