//! The client library against a real server (in-process, port 0) on SQLite and PostgreSQL:
//! the outbox (CL1, CL2), pulling and resync (CL3, CL4), follow and sign-out (CL5, CL6), status
//! (CL7). Rule ids are in docs/spec.md.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use shelf_api::{MaterialCreateData, ProgressInput, UpdateMaterialRequest};
use shelf_client::{Client, ClientError, FollowOptions, Http, LocalEdit, Replica, SyncState};
use shelf_testkit::{Backend, TestServer, TestUser};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

shelf_testkit::on_every_backend!(
    cl1_edits_commit_locally_and_reach_the_server_once_it_is_reachable,
    cl2_a_retried_batch_whose_answer_was_lost_changes_nothing,
    cl2_a_large_outbox_goes_in_batches_under_the_server_limits,
    cl2_refused_edits_are_kept_and_shown_never_resent,
    cl4_a_410_rebuilds_from_a_snapshot_and_keeps_unsent_edits,
    cl4_a_new_epoch_resends_acknowledged_edits_and_rebuilds,
    cl5_follow_pulls_each_change_and_cl6_stops_when_signed_out,
    cl9_attach_resumes_an_interrupted_upload_and_skips_files_the_server_has,
);

fn replica_path(dir: &tempfile::TempDir) -> std::path::PathBuf {
    dir.path().join("replica.sqlite3")
}

/// A client on the replica at `path`, signed in with `token` on `server`.
fn client(path: &Path, server: &str, token: &str) -> Client {
    Client::new(Replica::open(path).unwrap(), Http::new(server, Some(token.to_owned())).unwrap())
}

/// A URL where nothing listens: the server is "down".
fn unreachable_server() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}")
}

async fn new_device(server: &TestServer, user: &TestUser, name: &str) -> String {
    server.login(user, name).await.body["token"].as_str().unwrap().to_owned()
}

/// A server, a user, and one more device of that user on a replica file.
struct Setup {
    server: TestServer,
    user: TestUser,
    dir: tempfile::TempDir,
    /// The device's session token.
    token: String,
    device: Client,
}

async fn setup(backend: Backend) -> Setup {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let dir = tempfile::tempdir().unwrap();
    let token = new_device(&server, &user, "device").await;
    let device = client(&replica_path(&dir), &server.base, &token);
    Setup { server, user, dir, token, device }
}

fn create(title: &str) -> LocalEdit {
    LocalEdit::Create(MaterialCreateData { title: title.into(), body: String::new(), tags: vec![], progress: None })
}

fn study(seconds: i64) -> LocalEdit {
    LocalEdit::SetProgress(ProgressInput { study_seconds_delta: seconds, ..Default::default() })
}

async fn server_titles(server: &TestServer, token: &str) -> Vec<String> {
    let page = server.get("/api/library/changes?since=0&limit=1000", token).await;
    let mut titles: Vec<String> = page.body["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "material" && c["op"] == "upsert")
        .map(|c| c["data"]["title"].as_str().unwrap().to_owned())
        .collect();
    titles.sort();
    titles
}

async fn local_titles(client: &Client) -> Vec<String> {
    let mut titles: Vec<String> = client.materials().await.unwrap().into_iter().map(|m| m.material.title).collect();
    titles.sort();
    titles
}

async fn cl1_edits_commit_locally_and_reach_the_server_once_it_is_reachable(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let dir = tempfile::tempdir().unwrap();
    {
        let offline = client(&replica_path(&dir), &unreachable_server(), &user.token);
        let id = offline.create(MaterialCreateData { title: "Plane notes".into(), body: "a".into(), tags: vec![], progress: None }).await.unwrap();
        offline.create(MaterialCreateData { title: "Second".into(), body: String::new(), tags: vec![], progress: None }).await.unwrap();
        let update = UpdateMaterialRequest { title: Some("Plane notes, revised".into()), ..Default::default() };
        offline.edit(id, LocalEdit::Update(update)).await.unwrap();
        offline.edit(id, study(90)).await.unwrap();
        let shown = offline.material(id).await.unwrap();
        assert_eq!((shown.material.title.as_str(), shown.pending_changes), ("Plane notes, revised", 3), "reads show local edits at once");
        assert!(matches!(offline.sync().await, Err(ClientError::Unreachable { .. })));
        let status = offline.status().await.unwrap();
        assert_eq!((status.state, status.pending_count), (SyncState::Offline, 4));
        // Dropped without a clean shutdown: only what was committed remains.
    }
    let online = client(&replica_path(&dir), &server.base, &user.token);
    assert_eq!(online.status().await.unwrap().pending_count, 4, "the outbox survived closing the replica");
    let report = online.sync().await.unwrap();
    assert_eq!(report.pushed.acknowledged, 4);
    let status = online.status().await.unwrap();
    assert_eq!((status.state, status.pending_count), (SyncState::Synced, 0));
    assert!(status.last_synced_at.is_some());
    assert_eq!(server_titles(&server, &user.token).await, ["Plane notes, revised", "Second"]);
    assert_eq!(local_titles(&online).await, ["Plane notes, revised", "Second"]);
    assert_eq!(server.library_version(&user.token).await, 1 + 4, "one version per edit, none doubled");
}

async fn cl2_a_retried_batch_whose_answer_was_lost_changes_nothing(backend: Backend) {
    let Setup { server, user, dir, token, device } = setup(backend).await;
    let id = Uuid::now_v7();
    device.edit(id, create("Counted once")).await.unwrap();
    device.edit(id, study(60)).await.unwrap();
    device.edit(id, study(60)).await.unwrap();
    // The batch reaches the server but its answer is lost (the device crashed before storing it).
    let batch = Replica::open(&replica_path(&dir)).unwrap().pending_batch(500, 1 << 20).unwrap();
    let delivered = server.post("/api/library/mutations", &token, json!({"mutations": batch})).await;
    assert_eq!(delivered.status, 200, "{:?}", delivered.body);
    let report = device.sync().await.unwrap();
    assert_eq!(report.pushed.acknowledged, 3, "duplicates settle the entries");
    let material = server.get(&format!("/api/materials/{id}"), &user.token).await;
    assert_eq!(material.body["progress"]["studySeconds"], 120, "study time counted once");
    assert_eq!(server.library_version(&user.token).await, 1 + 3);
    assert_eq!(device.material(id).await.unwrap().progress.unwrap().study_seconds, 120);
}

async fn cl2_a_large_outbox_goes_in_batches_under_the_server_limits(backend: Backend) {
    let Setup { server, user, dir: _dir, token: _, device } = setup(backend).await;
    let body = "x".repeat(8000);
    for i in 0..600 {
        let request = MaterialCreateData { title: format!("m{i}"), body: body.clone(), tags: vec![], progress: None };
        device.edit(Uuid::now_v7(), LocalEdit::Create(request)).await.unwrap();
    }
    let report = device.sync().await.unwrap();
    assert_eq!(report.pushed.acknowledged, 600, "more than 500 edits and more than 4 MiB went through");
    assert_eq!(server.library_version(&user.token).await, 1 + 600);
    assert_eq!(device.materials().await.unwrap().len(), 600);
}

async fn cl2_refused_edits_are_kept_and_shown_never_resent(backend: Backend) {
    let Setup { server, user, token: _, dir: _dir, device: phone } = setup(backend).await;
    let created = server.create_material(&user.token, "Shared").await;
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    phone.sync().await.unwrap();
    assert_eq!(server.delete(&format!("/api/materials/{id}"), &user.token).await.status, 200);
    // The phone has not seen the delete yet and edits the material.
    let update = UpdateMaterialRequest { title: Some("Edited on the phone".into()), ..Default::default() };
    let mutation_id = phone.edit(id, LocalEdit::Update(update)).await.unwrap();
    let report = phone.sync().await.unwrap();
    assert_eq!(report.pushed.rejected.len(), 1);
    assert_eq!(report.pushed.rejected[0].code, "deleted");
    let kept = phone.rejection(mutation_id).await.unwrap().expect("kept");
    assert_eq!(kept.data["title"], "Edited on the phone", "the edit is kept to redo");
    let status = phone.status().await.unwrap();
    assert_eq!((status.state, status.pending_count, status.rejected_count), (SyncState::Synced, 0, 1));
    assert!(phone.materials().await.unwrap().is_empty(), "delete wins");
    let version = server.library_version(&user.token).await;
    phone.sync().await.unwrap();
    assert_eq!(server.library_version(&user.token).await, version, "a refused edit is never sent again");
    assert_eq!(phone.rejected().await.unwrap().len(), 1, "and never dropped");
}

async fn cl4_a_410_rebuilds_from_a_snapshot_and_keeps_unsent_edits(backend: Backend) {
    let Setup { server, user, dir, token: _, device } = setup(backend).await;
    let gone = server.create_material(&user.token, "Deleted elsewhere").await;
    server.create_material(&user.token, "Stays").await;
    device.sync().await.unwrap();
    assert_eq!(server.delete(&format!("/api/materials/{}", gone["id"].as_str().unwrap()), &user.token).await.status, 200);
    server.create_material(&user.token, "Added elsewhere").await;
    // The tombstone of the delete is purged: the device's cursor is now too old (CF4).
    let tomorrow = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    assert!(server.store.purge_tombstones(tomorrow).await.unwrap() > 0);
    let gone_page = server.get("/api/library/changes?since=2", &user.token).await;
    assert_eq!(gone_page.status, 410);

    // An unsent edit waits while the server state is dropped and rebuilt.
    let mut replica = Replica::open(&replica_path(&dir)).unwrap();
    device.edit(Uuid::now_v7(), create("Unsent")).await.unwrap();
    replica.reset_for_resync(false).unwrap();
    assert_eq!(replica.pending_count().unwrap(), 1);
    assert_eq!(local_titles(&device).await, ["Unsent"], "local edits stay visible while the snapshot is pulled");

    device.sync().await.unwrap();
    assert_eq!(local_titles(&device).await, ["Added elsewhere", "Stays", "Unsent"]);
    assert_eq!(server_titles(&server, &user.token).await, ["Added elsewhere", "Stays", "Unsent"]);

    // And through the 410 itself: the cursor is pushed back before the purge horizon again.
    server.create_material(&user.token, "After").await;
    replica.set_meta("cursor", Some("2")).unwrap();
    let report = device.sync().await.unwrap();
    assert!(report.resynced, "a 410 rebuilds from since=0");
    assert_eq!(local_titles(&device).await, ["Added elsewhere", "After", "Stays", "Unsent"]);
}

async fn cl4_a_new_epoch_resends_acknowledged_edits_and_rebuilds(backend: Backend) {
    let Setup { server, user, dir, token: _, device } = setup(backend).await;
    device.sync().await.unwrap();
    let id = Uuid::now_v7();
    device.edit(id, create("Before the restore")).await.unwrap();
    device.edit(id, study(30)).await.unwrap();
    let pushed = device.push().await.unwrap();
    assert_eq!(pushed.acknowledged, 2, "applied on the server, not yet pulled");
    // The server's database was replaced: its epoch differs from the one the replica knows.
    Replica::open(&replica_path(&dir)).unwrap().set_meta("epoch", Some("an-older-database")).unwrap();
    let report = device.sync().await.unwrap();
    assert!(report.resynced);
    assert_eq!(report.pushed.acknowledged, 2, "acknowledged edits were sent again (as duplicates)");
    assert_eq!(server.library_version(&user.token).await, 1 + 2, "and changed nothing twice");
    let material = device.material(id).await.unwrap();
    assert_eq!((material.progress.unwrap().study_seconds, material.pending_changes), (30, 0));
}

async fn cl5_follow_pulls_each_change_and_cl6_stops_when_signed_out(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let login = server.login(&user, "tablet").await;
    let (token, device_id) = (login.body["token"].as_str().unwrap().to_owned(), login.body["deviceId"].as_str().unwrap().to_owned());
    let dir = tempfile::tempdir().unwrap();
    let tablet = Arc::new(client(&replica_path(&dir), &server.base, &token));
    let (sender, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let following = tokio::spawn({
        let tablet = tablet.clone();
        async move {
            let mut observer = |change: &shelf_api::ChangeView| {
                let _ = sender.send(change.clone());
            };
            tablet.follow(FollowOptions::default(), &mut observer).await
        }
    });
    let created = server.create_material(&user.token, "Seen live").await;
    let id = created["id"].as_str().unwrap();
    let arrived = tokio::time::timeout(WAIT, async {
        while let Some(change) = changes.recv().await {
            if change.id.to_string() == id && change.kind == "material" {
                return change;
            }
        }
        panic!("follow ended");
    })
    .await
    .expect("the change arrives while following");
    assert_eq!(arrived.data.unwrap()["title"], "Seen live");
    assert_eq!(local_titles(&tablet).await, ["Seen live"]);

    // Edits queued on this replica while following are pushed without a manual sync.
    let queued = Uuid::now_v7();
    tablet.edit(queued, create("Queued while following")).await.unwrap();
    tokio::time::timeout(WAIT, async {
        while server.get(&format!("/api/materials/{queued}"), &user.token).await.status != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the queued edit reaches the server");

    assert_eq!(server.delete(&format!("/api/devices/{device_id}"), &user.token).await.status, 204);
    let ended = tokio::time::timeout(WAIT, following).await.expect("follow stops").unwrap();
    assert!(matches!(ended, Err(ClientError::SignedOut)), "{ended:?}");
    assert_eq!(ClientError::SignedOut.to_string(), "this device was signed out; run shelf login");
    let status = tablet.status().await.unwrap();
    assert_eq!(status.state, SyncState::Error);
    assert!(matches!(tablet.sync().await, Err(ClientError::SignedOut)), "sync stops at once");
    tablet.edit(Uuid::now_v7(), create("Still works offline")).await.unwrap();
    assert_eq!(tablet.status().await.unwrap().pending_count, 1);
}

/// Every (done, total) report of a transfer.
type Reports = Arc<std::sync::Mutex<Vec<(u64, u64)>>>;

/// Records every progress report of a transfer.
fn recorder() -> (Reports, shelf_client::Progress) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    (seen, Arc::new(move |done, total| sink.lock().unwrap().push((done, total))))
}

async fn cl9_attach_resumes_an_interrupted_upload_and_skips_files_the_server_has(backend: Backend) {
    let Setup { server, user, dir, token: _, device } = setup(backend).await;
    let first = device.create(MaterialCreateData { title: "Slides".into(), body: String::new(), tags: vec![], progress: None }).await.unwrap();
    let second = device.create(MaterialCreateData { title: "Copy".into(), body: String::new(), tags: vec![], progress: None }).await.unwrap();
    let file = dir.path().join("slides.pdf");
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &content).unwrap();
    let (sha256, size) = shelf_client::hash_file(&file).unwrap();

    // An earlier attach sent half of the file before its connection broke.
    let created = server.tus_create(&user.token, size as usize, &sha256).await;
    let location = created.headers["location"].to_str().unwrap().to_owned();
    let half = size / 2;
    let patched = server.tus_patch(&user.token, &location, 0, content[..half as usize].to_vec()).await;
    assert_eq!(patched.status, 204);
    Replica::open(&replica_path(&dir)).unwrap().save_upload(&sha256, &location, size).unwrap();

    let (seen, progress) = recorder();
    let attached = device.attach(first, &file, progress).await.unwrap();
    assert!(!attached.pending);
    let attached = attached.attachment;
    assert_eq!((attached.sha256.as_str(), attached.size, attached.content_type.as_str()), (sha256.as_str(), size as i64, "application/pdf"));
    assert_eq!(seen.lock().unwrap().first(), Some(&(half, size)), "the upload went on from the server's offset");
    assert_eq!(seen.lock().unwrap().last(), Some(&(size, size)));

    let (seen, progress) = recorder();
    device.attach(second, &file, progress).await.unwrap();
    assert_eq!(*seen.lock().unwrap(), [(size, size)], "the server has the file: nothing is uploaded");
    assert_eq!(device.material(second).await.unwrap().attachments.len(), 1, "the attachment is in the replica");

    let out = dir.path().join("downloaded.pdf");
    let (_, progress) = recorder();
    let downloaded = device.download(first, "slides.pdf", Some(&out), progress).await.unwrap();
    assert_eq!((downloaded.sha256, std::fs::read(&out).unwrap()), (sha256, content));
}
