//! Upload integrity and quota under attack (issue 9): spec AT6, AT7 and AT9.

use std::time::Duration;

use base64::Engine;
use futures::channel::mpsc;
use futures::SinkExt;
use reqwest::{Method, StatusCode};
use serde_json::json;
use shelf_server::ServerSettings;
use shelf_testkit::{Backend, Reply, TestServer, TestUser};

use crate::attachments::{blob_status, content, create_upload, offset, patch, sha256_hex, upload};

shelf_testkit::on_every_backend!(
    at6_a_second_patch_is_locked_out_and_the_blob_hashes_to_its_name,
    at6_a_writer_whose_lease_lapsed_never_writes_again,
    at7_racing_creations_reserve_the_quota_once,
    at7_stored_blobs_count_attached_or_not_until_collected,
    at7_termination_expiry_and_hash_mismatch_release_the_reservation,
    at9_downloads_are_sandboxed_and_tus_numbers_are_digits_only,
);

const MIB: usize = 1024 * 1024;

/// The limits the attack was run with: `--max-file-size 2MiB --user-quota 3MiB`.
fn probed_limits() -> ServerSettings {
    ServerSettings { max_file_size: 2 * MIB as u64, user_quota: 3 * MIB as u64, ..Default::default() }
}

/// The attacker's first PATCH: 2 MiB declared, 256 KiB sent and staged, then paused with the
/// request still open; the test feeds the rest (or more) through `sender`.
struct PausedWriter {
    user: TestUser,
    bytes: Vec<u8>,
    sha: String,
    location: String,
    sender: mpsc::Sender<Result<bytes::Bytes, std::io::Error>>,
    /// The reply, or the client's error when the server answered before the body was sent.
    reply: tokio::task::JoinHandle<Result<Reply, reqwest::Error>>,
}

async fn paused_writer(server: &TestServer, seed: u8) -> PausedWriter {
    let user = server.user().await;
    let bytes = content(2 * MIB, seed);
    let sha = sha256_hex(&bytes);
    let location = create_upload(server, &user, bytes.len(), &sha).await.headers["location"].to_str().unwrap().to_owned();
    let (mut sender, body) = mpsc::channel(4);
    let request = server
        .client
        .patch(server.url(&location))
        .bearer_auth(&user.token)
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body(reqwest::Body::wrap_stream(body));
    let reply = tokio::spawn(async move {
        match request.send().await {
            Ok(response) => Ok(shelf_testkit::Api::reply(response).await),
            Err(error) => Err(error),
        }
    });
    sender.send(Ok(bytes::Bytes::copy_from_slice(&bytes[..256 * 1024]))).await.unwrap();
    wait_for_writer(server, &user, &location, 256 * 1024).await;
    PausedWriter { user, bytes, sha, location, sender, reply }
}

fn upload_id(location: &str) -> uuid::Uuid {
    location.rsplit('/').next().unwrap().parse().unwrap()
}

/// Waits (bounded) until a writer holds the upload's lease and has staged `bytes`.
async fn wait_for_writer(server: &TestServer, user: &TestUser, location: &str, bytes: u64) {
    let user_id = shelf_core::UserId(user.user_id.parse().unwrap());
    let part = server.data.path().join("blobs").join(".staging").join(format!("{}.part", upload_id(location)));
    for _ in 0..1000 {
        let record = server.store.upload(user_id, upload_id(location)).await.unwrap().unwrap();
        let staged = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if record.lease_until.is_some() && staged >= bytes {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the first PATCH never became the writer");
}

/// Attaches the blob to a new material; returns the attachment's download URL.
async fn attach_to_new_material(server: &TestServer, user: &TestUser, sha: &str, content_type: &str, size: usize) -> String {
    let material = server.create_material(&user.token, "Upload").await["id"].as_str().unwrap().to_owned();
    let attach = json!({"sha256": sha, "filename": "f.bin", "contentType": content_type, "size": size});
    let attached = server.post(&format!("/api/materials/{material}/attachments"), &user.token, attach).await;
    assert_eq!(attached.status, StatusCode::CREATED, "{:?}", attached.body);
    server.url(&format!("/api/materials/{material}/attachments/{}/content", attached.body["id"].as_str().unwrap()))
}

/// Attaches the blob and returns the SHA-256 of what downloads.
async fn attach_and_download(server: &TestServer, user: &TestUser, sha: &str, size: usize) -> String {
    let url = attach_to_new_material(server, user, sha, "application/octet-stream", size).await;
    let bytes = server.client.get(url).bearer_auth(&user.token).send().await.unwrap().bytes().await.unwrap();
    sha256_hex(&bytes)
}

/// The reproduction: PATCH #1 streams 256 KiB and pauses; HEAD; PATCH #2; PATCH #1
/// resumes. PATCH #2 (and termination) now get 423 while #1 writes, and the stored blob is
/// exactly the declared file.
async fn at6_a_second_patch_is_locked_out_and_the_blob_hashes_to_its_name(backend: Backend) {
    let server = TestServer::start_with(backend, probed_limits()).await;
    let PausedWriter { user, bytes, sha, location, sender: mut first, reply: first_reply } = paused_writer(&server, 11).await;

    let reported = offset(&server, &user, &location).await;
    assert_eq!(reported, 0, "HEAD reports what the last finished PATCH stored");
    for at in [reported as usize, 256 * 1024] {
        let second = patch(&server, &user, &location, at, bytes[at..].to_vec()).await;
        assert_eq!((second.status, second.code()), (StatusCode::LOCKED, "upload_locked"), "{:?}", second.body);
    }
    let terminate = server.call(Method::DELETE, &location, Some(&user.token), None).await;
    assert_eq!((terminate.status, terminate.code()), (StatusCode::LOCKED, "upload_locked"));

    first.send(Ok(bytes::Bytes::copy_from_slice(&bytes[256 * 1024..]))).await.unwrap();
    drop(first);
    let finished = first_reply.await.unwrap().unwrap();
    assert_eq!(finished.status, StatusCode::NO_CONTENT, "{:?}", finished.body);
    assert_eq!(finished.headers["upload-offset"], (2 * MIB).to_string().as_str());
    let held = server.call(Method::HEAD, &format!("/api/blobs/{sha}"), Some(&user.token), None).await;
    assert_eq!((held.status, held.headers["content-length"].to_str().unwrap()), (StatusCode::OK, "2097152"));
    assert_eq!(attach_and_download(&server, &user, &sha, bytes.len()).await, sha);
    assert_eq!(patch(&server, &user, &location, 2 * MIB, Vec::new()).await.status, StatusCode::NOT_FOUND);
}

/// A writer that stalls past its lease (as a crashed one would) loses the upload to the next
/// PATCH; when it resumes it writes nothing, neither into the staged bytes nor the stored blob.
async fn at6_a_writer_whose_lease_lapsed_never_writes_again(backend: Backend) {
    let settings = ServerSettings { upload_lease: Duration::from_millis(300), ..probed_limits() };
    let server = TestServer::start_with(backend, settings).await;
    let PausedWriter { user, bytes, sha, location, sender: mut first, reply: first_reply } = paused_writer(&server, 12).await;

    // An empty PATCH claims the upload once the stalled writer's lease has lapsed.
    let mut probe = patch(&server, &user, &location, 0, Vec::new()).await;
    for _ in 0..500 {
        if probe.status != StatusCode::LOCKED {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        probe = patch(&server, &user, &location, 0, Vec::new()).await;
    }
    assert_eq!(probe.status, StatusCode::NO_CONTENT, "{:?}", probe.body);
    let second = patch(&server, &user, &location, 0, bytes.clone()).await;
    assert_eq!(second.status, StatusCode::NO_CONTENT, "{:?}", second.body);

    // The stalled writer resumes with more bytes; it may already have noticed it lost the lease.
    let _ = first.send(Ok(bytes::Bytes::from(vec![0xEE; 1024 * 1024]))).await;
    drop(first);
    // Refused on its next chunk: the client sees the 423, or, if it was still sending, the
    // connection closed under it.
    match first_reply.await.unwrap() {
        Ok(late) => assert_eq!((late.status, late.code()), (StatusCode::LOCKED, "upload_locked"), "{:?}", late.body),
        Err(error) => assert!(error.is_request(), "{error:?}"),
    }
    let held = server.call(Method::HEAD, &format!("/api/blobs/{sha}"), Some(&user.token), None).await;
    assert_eq!(held.headers["content-length"], "2097152");
    assert_eq!(attach_and_download(&server, &user, &sha, bytes.len()).await, sha);
}

/// Eight simultaneous 2 MiB creations against a 3 MiB quota: exactly one is reserved.
async fn at7_racing_creations_reserve_the_quota_once(backend: Backend) {
    let server = TestServer::start_with(backend, probed_limits()).await;
    let user = server.user().await;
    let hashes: Vec<String> = (0..8u8).map(|i| sha256_hex(&[i])).collect();
    let creations = hashes.iter().map(|sha| create_upload(&server, &user, 2 * MIB, sha));
    let replies = futures::future::join_all(creations).await;
    let outcomes: Vec<(StatusCode, &str)> = replies.iter().map(|r| (r.status, r.code())).collect();
    let created = outcomes.iter().filter(|o| o.0 == StatusCode::CREATED).count();
    let refused = outcomes.iter().filter(|o| **o == (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded")).count();
    assert_eq!((created, refused), (1, 7), "{outcomes:?}");
}

/// Four 1.5 MiB files never exceed a 3 MiB quota, attached or not; collecting an unattached
/// blob releases its share.
async fn at7_stored_blobs_count_attached_or_not_until_collected(backend: Backend) {
    let server = TestServer::start_with(backend, probed_limits()).await;
    let user = server.user().await;
    let files: Vec<Vec<u8>> = (0..4).map(|seed| content(3 * MIB / 2, seed)).collect();
    let (a, b) = (upload(&server, &user, &files[0]).await, upload(&server, &user, &files[1]).await);
    let third = create_upload(&server, &user, files[2].len(), &sha256_hex(&files[2])).await;
    assert_eq!((third.status, third.code()), (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded"), "unattached blobs count");

    let material = server.create_material(&user.token, "Quota").await["id"].as_str().unwrap().to_owned();
    let path = format!("/api/materials/{material}/attachments");
    let attach = |sha: &str| json!({"sha256": sha, "filename": "f.bin", "contentType": "application/octet-stream", "size": 3 * MIB / 2});
    assert_eq!(server.post(&path, &user.token, attach(&a)).await.status, StatusCode::CREATED);
    let attached_b = server.post(&path, &user.token, attach(&b)).await;
    let third = create_upload(&server, &user, files[2].len(), &sha256_hex(&files[2])).await;
    assert_eq!(third.code(), "quota_exceeded", "attached blobs count");
    let detached = server.delete(&format!("{path}/{}", attached_b.body["id"].as_str().unwrap()), &user.token).await;
    assert_eq!(detached.status, StatusCode::OK);
    let third = create_upload(&server, &user, files[2].len(), &sha256_hex(&files[2])).await;
    assert_eq!(third.code(), "quota_exceeded", "a detached blob is held until it is collected");

    assert_eq!(shelf_server::collect_garbage(&server.state, Duration::ZERO).await.unwrap(), 1);
    assert_eq!(blob_status(&server, &user, &b).await, StatusCode::NOT_FOUND);
    assert_eq!(blob_status(&server, &user, &a).await, StatusCode::OK);
    upload(&server, &user, &files[2]).await;
    let fourth = create_upload(&server, &user, files[3].len(), &sha256_hex(&files[3])).await;
    assert_eq!(fourth.code(), "quota_exceeded");
}

/// Termination, abandonment (garbage collection) and a hash mismatch each give the
/// reservation back.
async fn at7_termination_expiry_and_hash_mismatch_release_the_reservation(backend: Backend) {
    let server = TestServer::start_with(backend, probed_limits()).await;
    let user = server.user().await;
    let hashes: Vec<String> = (0..5u8).map(|seed| sha256_hex(&[seed])).collect();
    let create = |seed: usize| create_upload(&server, &user, 2 * MIB, &hashes[seed]);
    let first = create(1).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(create(2).await.code(), "quota_exceeded");
    let location = first.headers["location"].to_str().unwrap();
    assert_eq!(server.call(Method::DELETE, location, Some(&user.token), None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(server.call(Method::HEAD, location, Some(&user.token), None).await.status, StatusCode::NOT_FOUND);

    let abandoned = create(2).await;
    assert_eq!(abandoned.status, StatusCode::CREATED, "termination released the reservation");
    assert_eq!(create(3).await.code(), "quota_exceeded");
    assert_eq!(shelf_server::collect_garbage(&server.state, Duration::from_secs(3600)).await.unwrap(), 0);
    assert_eq!(shelf_server::collect_garbage(&server.state, Duration::ZERO).await.unwrap(), 1);
    let location = abandoned.headers["location"].to_str().unwrap();
    assert_eq!(server.call(Method::HEAD, location, Some(&user.token), None).await.status, StatusCode::NOT_FOUND);

    let wrong = create(3).await;
    assert_eq!(wrong.status, StatusCode::CREATED, "expiry released the reservation");
    let location = wrong.headers["location"].to_str().unwrap();
    let mismatch = patch(&server, &user, location, 0, content(2 * MIB, 3)).await;
    assert_eq!((mismatch.status, mismatch.code()), (StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch"));
    assert_eq!(create(4).await.status, StatusCode::CREATED, "a hash mismatch released the reservation");
}

/// Downloads cannot be sniffed or run as a page; 416 names the size; tus numbers are digits.
async fn at9_downloads_are_sandboxed_and_tus_numbers_are_digits_only(backend: Backend) {
    let server = TestServer::start(backend).await;
    let user = server.user().await;
    let bytes = b"<html><script>alert(1)</script></html>".to_vec();
    let sha = upload(&server, &user, &bytes).await;
    let url = attach_to_new_material(&server, &user, &sha, "text/html", bytes.len()).await;
    let page = server.client.get(&url).bearer_auth(&user.token).send().await.unwrap();
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(page.headers()["content-security-policy"], "sandbox");
    for range in ["bytes=100-", "bytes=+1-2"] {
        let beyond = server.client.get(&url).bearer_auth(&user.token).header("range", range).send().await.unwrap();
        assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(beyond.headers()["content-range"], format!("bytes */{}", bytes.len()).as_str());
    }

    for length in ["+5", "-0", "5.0", "0x5", "", "99999999999999999999999"] {
        let created = server
            .client
            .post(server.url("/api/uploads"))
            .bearer_auth(&user.token)
            .header("upload-length", length)
            .header("upload-metadata", format!("sha256 {}", base64::engine::general_purpose::STANDARD.encode("e".repeat(64))))
            .send()
            .await
            .unwrap();
        let reply = shelf_testkit::Api::reply(created).await;
        assert_eq!((reply.status, reply.code()), (StatusCode::BAD_REQUEST, "validation_failed"), "Upload-Length {length:?}");
    }
    let location = create_upload(&server, &user, 10, &"e".repeat(64)).await.headers["location"].to_str().unwrap().to_owned();
    let signed = server
        .client
        .patch(server.url(&location))
        .bearer_auth(&user.token)
        .header("upload-offset", "+0")
        .header("content-type", "application/offset+octet-stream")
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(shelf_testkit::Api::reply(signed).await.code(), "validation_failed");
}
