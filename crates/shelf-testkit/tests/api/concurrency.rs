use reqwest::StatusCode;
use serde_json::json;
use shelf_testkit::{Backend, TestServer};

shelf_testkit::on_every_backend!(lv4_many_devices_writing_at_once_never_gap_or_duplicate);

async fn lv4_many_devices_writing_at_once_never_gap_or_duplicate(backend: Backend) {
    let server = std::sync::Arc::new(TestServer::start(backend).await);
    let user = server.user().await;
    let mut tokens = vec![user.token.clone()];
    for i in 1..6 {
        tokens.push(server.login(&user, &format!("device {i}")).await.body["token"].as_str().unwrap().to_owned());
    }
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(server.create_material(&user.token, &format!("shared {i}")).await["id"].as_str().unwrap().to_owned());
    }
    let writes = tokens.iter().enumerate().flat_map(|(device, token)| {
        let ids = ids.clone();
        (0..15).map(move |n| (device, token.clone(), ids[(device + n) % ids.len()].clone(), n))
    });
    let tasks: Vec<_> = writes
        .map(|(device, token, id, n)| {
            let server = server.clone();
            tokio::spawn(async move {
                let body = if n % 3 == 0 {
                    json!({"progress": {"studySecondsDelta": 1}})
                } else {
                    json!({"title": format!("device {device} edit {n}")})
                };
                server.patch(&format!("/api/materials/{id}"), &token, body).await
            })
        })
        .collect();
    let mut versions = Vec::new();
    for task in tasks {
        let reply = task.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        versions.push(reply.body["libraryVersion"].as_i64().unwrap());
    }
    // Every write changes something (distinct titles, positive deltas), so each one bumps.
    versions.sort_unstable();
    let first = 1 + ids.len() as i64 + 1;
    assert_eq!(versions, (first..first + versions.len() as i64).collect::<Vec<_>>());
    let final_version = server.library_version(&user.token).await;
    assert_eq!(final_version, 1 + ids.len() as i64 + versions.len() as i64);

    let feed = server.get("/api/library/changes?since=0", &user.token).await;
    for change in feed.body["changes"].as_array().unwrap() {
        let id = change["id"].as_str().unwrap();
        let current = server.get(&format!("/api/materials/{id}"), &user.token).await;
        let entity = if change["kind"] == "material" { &current.body } else { &current.body["progress"] };
        assert_eq!(change["version"], entity["version"], "feed shows {id} at its last version");
        assert_eq!(change["data"]["version"], entity["version"]);
    }
    let total: i64 = feed.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "progress")
        .map(|c| c["data"]["studySeconds"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 6 * 5, "every studySecondsDelta counted exactly once");
}
