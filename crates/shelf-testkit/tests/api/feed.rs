use reqwest::StatusCode;
use serde_json::json;
use shelf_testkit::{Backend, TestServer};

shelf_testkit::on_every_backend!(cf1_changes_feed_snapshots_deltas_and_tombstones, cf2_feed_pages_and_rejects_bad_cursors);

async fn cf1_changes_feed_snapshots_deltas_and_tombstones(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let a = server.create_material(&user.token, "A").await["id"].as_str().unwrap().to_owned(); // v2
    let b = server.create_material(&user.token, "B").await["id"].as_str().unwrap().to_owned(); // v3
    server.put(&format!("/api/materials/{b}/progress"), &user.token, json!({"studySecondsDelta": 5})).await; // v4
    server.patch(&format!("/api/materials/{a}"), &user.token, json!({"title": "A2"})).await; // v5
    server.delete(&format!("/api/materials/{b}"), &user.token).await; // v6

    let snapshot = server.get("/api/library/changes?since=0", &user.token).await;
    assert_eq!(snapshot.status, StatusCode::OK, "{:?}", snapshot.body);
    assert_eq!(snapshot.body["libraryVersion"], 6);
    assert_eq!(snapshot.body["nextSince"], 6);
    assert_eq!(snapshot.body["hasMore"], false);
    let epoch = server.get("/api/library/version", &user.token).await.body["epoch"].clone();
    assert_eq!(snapshot.body["epoch"], epoch);
    let changes = snapshot.body["changes"].as_array().unwrap();
    let summary: Vec<_> = changes
        .iter()
        .map(|c| (c["kind"].as_str().unwrap(), c["id"].as_str().unwrap(), c["op"].as_str().unwrap(), c["version"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [("material", a.as_str(), "upsert", 5), ("material", b.as_str(), "delete", 6), ("progress", b.as_str(), "delete", 6)]
    );
    assert_eq!(changes[0]["data"]["title"], "A2");
    assert!(changes[1]["data"].is_null() && changes[2]["data"].is_null());

    let delta = server.get("/api/library/changes?since=5", &user.token).await;
    let kinds: Vec<_> = delta.body["changes"].as_array().unwrap().iter().map(|c| c["op"].as_str().unwrap().to_owned()).collect();
    assert_eq!(kinds, ["delete", "delete"]);
    let caught_up = server.get("/api/library/changes?since=6", &user.token).await;
    assert_eq!(caught_up.body["changes"], json!([]));
    assert_eq!(caught_up.body["nextSince"], 6);
}

async fn cf2_feed_pages_and_rejects_bad_cursors(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    for i in 0..5 {
        server.create_material(&user.token, &format!("m{i}")).await;
    }
    let mut since = 0;
    let mut seen = 0;
    loop {
        let page = server.get(&format!("/api/library/changes?since={since}&limit=2"), &user.token).await;
        assert_eq!(page.status, StatusCode::OK);
        seen += page.body["changes"].as_array().unwrap().len();
        since = page.body["nextSince"].as_i64().unwrap();
        if page.body["hasMore"] == false {
            break;
        }
    }
    assert_eq!((seen, since), (5, 6));
    let ahead = server.get("/api/library/changes?since=99", &user.token).await;
    assert_eq!((ahead.status, ahead.code()), (StatusCode::GONE, "resync_required"));
    for bad in ["since=-1", "since=abc", "limit=0", "limit=1001"] {
        let reply = server.get(&format!("/api/library/changes?{bad}"), &user.token).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "validation_failed"), "{bad}");
    }
}
