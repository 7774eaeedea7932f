use reqwest::StatusCode;
use serde_json::json;
use shelf_testkit::{Backend, TestServer};

shelf_testkit::on_every_backend!(lv5_a_mutation_failing_inside_its_transaction_changes_nothing);

/// A trigger makes the progress insert fail *after* the version bump and the material insert
/// ran in the same transaction; the whole mutation must roll back.
async fn lv5_a_mutation_failing_inside_its_transaction_changes_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let kept = server.create_material(&user.token, "kept").await["id"].as_str().unwrap().to_owned();
    server
        .database
        .execute(match backend {
            Backend::Sqlite => {
                "CREATE TRIGGER fail_progress BEFORE INSERT ON progress WHEN NEW.position = 'explode'
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
            }
            Backend::Postgres => {
                "CREATE FUNCTION shelf_fail() RETURNS trigger AS $$ BEGIN
                     IF NEW.position = 'explode' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW;
                 END $$ LANGUAGE plpgsql;
                 CREATE TRIGGER fail_progress BEFORE INSERT ON progress FOR EACH ROW EXECUTE FUNCTION shelf_fail();"
            }
        })
        .await;

    let id = uuid::Uuid::new_v4();
    let failing = json!({"id": id, "title": "doomed", "progress": {"position": "explode"}});
    let reply = server.post("/api/materials", &user.token, failing).await;
    assert_eq!((reply.status, reply.code()), (StatusCode::INTERNAL_SERVER_ERROR, "internal"));
    assert!(!reply.body["message"].as_str().unwrap().contains("injected"), "no internals leak to clients");
    assert_eq!(server.library_version(&user.token).await, 2);
    assert_eq!(server.get(&format!("/api/materials/{id}"), &user.token).await.status, StatusCode::NOT_FOUND);
    let patch = server.patch(&format!("/api/materials/{kept}"), &user.token, json!({"title": "changed", "progress": {"position": "explode"}})).await;
    assert_eq!(patch.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(server.get(&format!("/api/materials/{kept}"), &user.token).await.body["title"], "kept");
    let feed = server.get("/api/library/changes?since=0", &user.token).await;
    assert_eq!(feed.body["changes"].as_array().unwrap().len(), 1);
    assert_eq!(server.library_version(&user.token).await, 2);
    // The server stays healthy and the next good mutation gets the next version.
    let next = server.post("/api/materials", &user.token, json!({"title": "fine"})).await;
    assert_eq!(next.body["libraryVersion"], 3);
}
