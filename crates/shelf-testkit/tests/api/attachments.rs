use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use shelf_server::ServerSettings;
use shelf_testkit::{Backend, BlobBackend, TestServer, TestUser};

shelf_testkit::on_every_backend!(
    at1_local_upload_resume_attach_download_detach,
    at2_local_limits_and_hash_mismatch,
    at3_local_users_cannot_touch_each_others_blobs,
    at4_local_garbage_collection_keeps_only_referenced_blobs,
    at5_a_dropped_connection_keeps_what_arrived_and_resumes,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at1_s3_upload_resume_attach_download_detach() {
    upload_resume_attach_download_detach(TestServer::start_full(Backend::Sqlite, BlobBackend::S3, ServerSettings::default()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at4_s3_garbage_collection_keeps_only_referenced_blobs() {
    garbage_collection(TestServer::start_full(Backend::Postgres, BlobBackend::S3, ServerSettings::default()).await).await;
}

async fn at1_local_upload_resume_attach_download_detach(backend: Backend) {
    upload_resume_attach_download_detach(TestServer::start(backend).await).await;
}

async fn at4_local_garbage_collection_keeps_only_referenced_blobs(backend: Backend) {
    garbage_collection(TestServer::start(backend).await).await;
}

pub(crate) fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// tus creation; returns the upload URL path.
pub(crate) async fn create_upload(server: &TestServer, user: &TestUser, length: usize, sha256: &str) -> shelf_testkit::Reply {
    server.tus_create(&user.token, length, sha256).await
}

pub(crate) async fn patch(server: &TestServer, user: &TestUser, location: &str, offset: usize, bytes: Vec<u8>) -> shelf_testkit::Reply {
    server.tus_patch(&user.token, location, offset, bytes).await
}

pub(crate) async fn offset(server: &TestServer, user: &TestUser, location: &str) -> u64 {
    let reply = server.call(Method::HEAD, location, Some(&user.token), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.headers["upload-offset"].to_str().unwrap().parse().unwrap()
}

/// Uploads `bytes` completely and returns their SHA-256.
pub(crate) async fn upload(server: &TestServer, user: &TestUser, bytes: &[u8]) -> String {
    let sha = sha256_hex(bytes);
    let created = create_upload(server, user, bytes.len(), &sha).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let location = created.headers["location"].to_str().unwrap().to_owned();
    let done = patch(server, user, &location, 0, bytes.to_vec()).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{:?}", done.body);
    sha
}

async fn upload_resume_attach_download_detach(server: TestServer) {
    let user = server.user().await;
    let material = server.create_material(&user.token, "Anatomy").await["id"].as_str().unwrap().to_owned();
    let bytes = content(300_000, 7);
    let sha = sha256_hex(&bytes);
    assert_eq!(server.call(Method::HEAD, &format!("/api/blobs/{sha}"), Some(&user.token), None).await.status, StatusCode::NOT_FOUND);
    let options = server.call(Method::OPTIONS, "/api/uploads", None, None).await;
    assert_eq!(options.headers["tus-version"], "1.0.0");
    assert!(options.headers["tus-extension"].to_str().unwrap().contains("creation"));

    let created = create_upload(&server, &user, bytes.len(), &sha).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let location = created.headers["location"].to_str().unwrap().to_owned();
    // The first part arrives, then the connection drops; the client asks and resumes.
    assert_eq!(patch(&server, &user, &location, 0, bytes[..100_000].to_vec()).await.status, StatusCode::NO_CONTENT);
    assert_eq!(offset(&server, &user, &location).await, 100_000);
    let stale = patch(&server, &user, &location, 0, bytes[..10].to_vec()).await;
    assert_eq!((stale.status, stale.code()), (StatusCode::CONFLICT, "offset_mismatch"));
    let rest = patch(&server, &user, &location, 100_000, bytes[100_000..].to_vec()).await;
    assert_eq!(rest.status, StatusCode::NO_CONTENT, "{:?}", rest.body);
    assert_eq!(rest.headers["upload-offset"], "300000");
    assert_eq!(server.call(Method::HEAD, &format!("/api/blobs/{sha}"), Some(&user.token), None).await.status, StatusCode::OK);

    let before = server.library_version(&user.token).await;
    let attach = json!({"sha256": sha, "filename": "Anatomy notes.pdf", "contentType": "application/pdf", "size": bytes.len()});
    let attached = server.post(&format!("/api/materials/{material}/attachments"), &user.token, attach.clone()).await;
    assert_eq!(attached.status, StatusCode::CREATED, "{:?}", attached.body);
    assert_eq!(attached.body["libraryVersion"], before + 1);
    let attachment = attached.body["id"].as_str().unwrap().to_owned();
    // Dedup: the same blob attached again needs no upload.
    let again = server.post(&format!("/api/materials/{material}/attachments"), &user.token, attach).await;
    assert_eq!(again.status, StatusCode::CREATED);

    let feed = server.get(&format!("/api/library/changes?since={before}"), &user.token).await.body;
    let change = &feed["changes"][0];
    assert_eq!((change["kind"].as_str(), change["id"].as_str()), (Some("attachment"), Some(attachment.as_str())));
    assert_eq!((change["data"]["materialId"].as_str(), change["data"]["sha256"].as_str()), (Some(material.as_str()), Some(sha.as_str())));
    assert_eq!(change["data"]["size"], 300_000);

    let url = server.url(&format!("/api/materials/{material}/attachments/{attachment}/content"));
    let full = server.client.get(&url).bearer_auth(&user.token).send().await.unwrap();
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(full.headers()["content-type"], "application/pdf");
    assert!(full.headers()["content-disposition"].to_str().unwrap().contains("filename=\"Anatomy notes.pdf\""));
    assert_eq!(full.bytes().await.unwrap().to_vec(), bytes);
    let part = server.client.get(&url).bearer_auth(&user.token).header("range", "bytes=1000-1999").send().await.unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["content-range"], "bytes 1000-1999/300000");
    assert_eq!(part.bytes().await.unwrap().to_vec(), bytes[1000..2000]);
    let tail = server.client.get(&url).bearer_auth(&user.token).header("range", "bytes=-10").send().await.unwrap();
    assert_eq!(tail.bytes().await.unwrap().to_vec(), bytes[bytes.len() - 10..]);
    let beyond = server.client.get(&url).bearer_auth(&user.token).header("range", "bytes=400000-").send().await.unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let listed = server.get(&format!("/api/materials/{material}/attachments"), &user.token).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 2);
    let detached = server.delete(&format!("/api/materials/{material}/attachments/{attachment}"), &user.token).await;
    assert_eq!(detached.status, StatusCode::OK);
    let tombstone = server.get(&format!("/api/library/changes?since={}", before + 2), &user.token).await.body;
    assert_eq!((tombstone["changes"][0]["op"].as_str(), tombstone["changes"][0]["data"].is_null()), (Some("delete"), true));
    // Deleting the material tombstones its remaining attachment in the same version.
    let deleted = server.delete(&format!("/api/materials/{material}"), &user.token).await.body["libraryVersion"].as_i64().unwrap();
    let last = server.get(&format!("/api/library/changes?since={}", deleted - 1), &user.token).await.body;
    let kinds: Vec<&str> = last["changes"].as_array().unwrap().iter().map(|c| c["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"attachment") && kinds.contains(&"material"), "{kinds:?}");
}

async fn at2_local_limits_and_hash_mismatch(backend: Backend) {
    let settings = ServerSettings { max_file_size: 1_000_000, user_quota: 1_500_000, ..Default::default() };
    let server = TestServer::start_with(backend, settings).await;
    let user = server.user().await;
    let too_big = create_upload(&server, &user, 1_000_001, &"a".repeat(64)).await;
    assert_eq!((too_big.status, too_big.code()), (StatusCode::PAYLOAD_TOO_LARGE, "file_too_large"));
    let first = create_upload(&server, &user, 900_000, &"b".repeat(64)).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let over_quota = create_upload(&server, &user, 700_000, &"c".repeat(64)).await;
    assert_eq!((over_quota.status, over_quota.code()), (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded"));
    let location = first.headers["location"].to_str().unwrap().to_owned();
    assert_eq!(server.call(Method::DELETE, &location, Some(&user.token), None).await.status, StatusCode::NO_CONTENT);
    // The declared hash does not match what arrives: the upload is discarded.
    let bytes = content(5_000, 3);
    let wrong = create_upload(&server, &user, bytes.len(), &sha256_hex(b"something else")).await;
    let location = wrong.headers["location"].to_str().unwrap().to_owned();
    let mismatch = patch(&server, &user, &location, 0, bytes).await;
    assert_eq!((mismatch.status, mismatch.code()), (StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch"));
    assert_eq!(server.call(Method::HEAD, &location, Some(&user.token), None).await.status, StatusCode::NOT_FOUND);
    let no_sha = server
        .client
        .post(server.url("/api/uploads"))
        .bearer_auth(&user.token)
        .header("upload-length", "10")
        .send()
        .await
        .unwrap();
    assert_eq!(no_sha.status(), StatusCode::BAD_REQUEST);
    let material = server.create_material(&user.token, "m").await["id"].as_str().unwrap().to_owned();
    let missing = json!({"sha256": "d".repeat(64), "filename": "x.pdf", "contentType": "application/pdf", "size": 1});
    assert_eq!(server.post(&format!("/api/materials/{material}/attachments"), &user.token, missing).await.status, StatusCode::NOT_FOUND);
    let sneaky = json!({"sha256": "d".repeat(64), "filename": "../etc/passwd", "contentType": "application/pdf", "size": 1});
    assert_eq!(server.post(&format!("/api/materials/{material}/attachments"), &user.token, sneaky).await.code(), "validation_failed");
}

async fn at3_local_users_cannot_touch_each_others_blobs(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.user().await;
    let bob = server.user().await;
    let bytes = content(2_000, 9);
    let sha = upload(&server, &alice, &bytes).await;
    let material = server.create_material(&alice.token, "Alice").await["id"].as_str().unwrap().to_owned();
    let attach = json!({"sha256": sha, "filename": "a.bin", "contentType": "application/octet-stream", "size": bytes.len()});
    let attachment = server.post(&format!("/api/materials/{material}/attachments"), &alice.token, attach.clone()).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(server.call(Method::HEAD, &format!("/api/blobs/{sha}"), Some(&bob.token), None).await.status, StatusCode::NOT_FOUND);
    let bobs = server.create_material(&bob.token, "Bob").await["id"].as_str().unwrap().to_owned();
    assert_eq!(server.post(&format!("/api/materials/{bobs}/attachments"), &bob.token, attach).await.status, StatusCode::NOT_FOUND);
    let content_path = format!("/api/materials/{material}/attachments/{attachment}/content");
    assert_eq!(server.get(&content_path, &bob.token).await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get(&format!("/api/materials/{material}/attachments"), &bob.token).await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.delete(&format!("/api/materials/{material}/attachments/{attachment}"), &bob.token).await.status, StatusCode::NOT_FOUND);
    let created = create_upload(&server, &alice, 10, &"e".repeat(64)).await;
    let location = created.headers["location"].to_str().unwrap().to_owned();
    assert_eq!(patch(&server, &bob, &location, 0, vec![0; 10]).await.status, StatusCode::NOT_FOUND);
}

async fn garbage_collection(server: TestServer) {
    let user = server.user().await;
    let kept = content(1_000, 1);
    let orphan = content(1_000, 2);
    let kept_sha = upload(&server, &user, &kept).await;
    let orphan_sha = upload(&server, &user, &orphan).await;
    let material = server.create_material(&user.token, "m").await["id"].as_str().unwrap().to_owned();
    let attach = json!({"sha256": kept_sha, "filename": "k.bin", "contentType": "application/octet-stream", "size": kept.len()});
    let attachment = server.post(&format!("/api/materials/{material}/attachments"), &user.token, attach).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Within the grace period nothing is collected (an upload may be about to be attached).
    assert_eq!(shelf_server::collect_garbage(&server.state, std::time::Duration::from_secs(3600)).await.unwrap(), 0);
    let removed = shelf_server::collect_garbage(&server.state, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(removed, 1);
    assert_eq!(blob_status(&server, &user, &orphan_sha).await, StatusCode::NOT_FOUND);
    assert_eq!(blob_status(&server, &user, &kept_sha).await, StatusCode::OK);
    server.delete(&format!("/api/materials/{material}/attachments/{attachment}"), &user.token).await;
    assert_eq!(shelf_server::collect_garbage(&server.state, std::time::Duration::ZERO).await.unwrap(), 1);
    assert_eq!(blob_status(&server, &user, &kept_sha).await, StatusCode::NOT_FOUND);
}

pub(crate) async fn blob_status(server: &TestServer, user: &TestUser, sha: &str) -> StatusCode {
    server.call(Method::HEAD, &format!("/api/blobs/{sha}"), Some(&user.token), None).await.status
}

async fn at5_a_dropped_connection_keeps_what_arrived_and_resumes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let bytes = content(200_000, 5);
    let sha = sha256_hex(&bytes);
    let created = create_upload(&server, &user, bytes.len(), &sha).await;
    let location = created.headers["location"].to_str().unwrap().to_owned();
    // The body stream fails after 64 KiB: the connection breaks mid-request.
    let first = bytes::Bytes::copy_from_slice(&bytes[..65_536]);
    let body = futures::stream::iter(vec![Ok(first), Err(std::io::Error::other("network gone"))]);
    let broken = server
        .client
        .patch(server.url(&location))
        .bearer_auth(&user.token)
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await;
    assert!(broken.is_err() || !broken.unwrap().status().is_success());
    // The server may still be writing what it received; the offset settles at ≤ 64 KiB.
    let mut stored = offset(&server, &user, &location).await;
    for _ in 0..50 {
        let again = offset(&server, &user, &location).await;
        if again == stored && again > 0 {
            break;
        }
        stored = again;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(stored <= 65_536, "never more than was sent: {stored}");
    let rest = patch(&server, &user, &location, stored as usize, bytes[stored as usize..].to_vec()).await;
    assert_eq!(rest.status, StatusCode::NO_CONTENT, "{:?}", rest.body);
    assert_eq!(blob_status(&server, &user, &sha).await, StatusCode::OK);
}
