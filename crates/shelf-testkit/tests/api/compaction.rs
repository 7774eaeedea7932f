//! CF6 over HTTP: tombstones compacted behind the devices' cursors; a device left behind gets
//! 410 `resync_required`, never a delta that silently lacks a delete.

use reqwest::StatusCode;
use shelf_core::DeviceId;
use shelf_testkit::{Backend, TestServer};

shelf_testkit::on_every_backend!(cf6_a_device_left_behind_by_compaction_must_resync);

async fn cf6_a_device_left_behind_by_compaction_must_resync(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let phone = server.login(&user, "phone").await;
    let (phone_token, phone_id) = (phone.body["token"].as_str().unwrap().to_owned(), phone.body["deviceId"].as_str().unwrap().to_owned());
    let first = server.create_material(&user.token, "one").await["id"].as_str().unwrap().to_owned();
    let second = server.create_material(&user.token, "two").await["id"].as_str().unwrap().to_owned();
    server.delete(&format!("/api/materials/{first}"), &user.token).await; // v4
    for token in [&user.token, &phone_token] {
        assert_eq!(server.get("/api/library/changes?since=0", token).await.body["nextSince"], 4);
    }
    server.delete(&format!("/api/materials/{second}"), &user.token).await; // v5
    server.get("/api/library/changes?since=4", &user.token).await;
    server.state.sync_health.flush(server.store.as_ref()).await;

    let now = shelf_server::service::auth::now();
    let active_since = now - time::Duration::days(30);
    assert_eq!(server.store.compact_tombstones(active_since, now).await.unwrap(), 1, "v4 is behind both devices");
    let phone_delta = server.get("/api/library/changes?since=4", &phone_token).await;
    assert_eq!(phone_delta.status, StatusCode::OK);
    assert_eq!(phone_delta.body["changes"][0]["op"], "delete", "the phone still gets the delete it has not pulled");

    // The phone stays away longer than the retention: it holds nothing back any more.
    let phone_device = DeviceId(uuid::Uuid::parse_str(&phone_id).unwrap());
    server.store.touch_session(phone_device, now - time::Duration::days(31)).await.unwrap();
    assert_eq!(server.store.compact_tombstones(active_since, now).await.unwrap(), 1);
    let behind = server.get("/api/library/changes?since=4", &phone_token).await;
    assert_eq!((behind.status, behind.code()), (StatusCode::GONE, "resync_required"));
    let snapshot = server.get("/api/library/changes?since=0", &phone_token).await;
    assert_eq!((snapshot.status, snapshot.body["changes"].as_array().unwrap().len()), (StatusCode::OK, 0));
    assert_eq!(snapshot.body["nextSince"], 5);
}
