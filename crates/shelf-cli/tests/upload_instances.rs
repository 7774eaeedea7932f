//! Uploads across instances (issue 15, spec AT10): two real `shelf serve` processes on one
//! PostgreSQL database take turns writing one tus upload — on one S3 bucket (staged as a
//! multipart upload plus tail objects), and on one shared local folder (staged in
//! `<data-dir>/blobs/.staging/`). HEAD answers from either, the stored blob hashes to its name,
//! and it downloads from either.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::time::Duration;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use shelf_testkit::{Api, Backend, TestDatabase};

const MIB: usize = 1024 * 1024;

async fn user(api: &Api) -> String {
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let body = json!({"email": email, "password": "correct horse battery"});
    assert_eq!(api.call(Method::POST, "/api/auth/register", None, Some(body.clone())).await.status, 201);
    let login = api.call(Method::POST, "/api/auth/login", None, Some(body)).await;
    login.body["token"].as_str().unwrap().to_owned()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn content(len: usize) -> Vec<u8> {
    (0..len as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 9) as u8).collect()
}

async fn create(api: &Api, token: &str, content: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(sha256_hex(content));
    let request = api.client.post(api.url("/api/uploads")).bearer_auth(token).header("tus-resumable", "1.0.0");
    let created = request.header("upload-length", content.len().to_string()).header("upload-metadata", format!("sha256 {b64}"));
    let reply = Api::reply(created.send().await.unwrap()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.headers["location"].to_str().unwrap().to_owned()
}

fn patch_request(api: &Api, token: &str, location: &str, offset: usize) -> reqwest::RequestBuilder {
    api.client
        .patch(api.url(location))
        .bearer_auth(token)
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", offset.to_string())
        .header("content-type", "application/offset+octet-stream")
}

async fn head_offset(api: &Api, token: &str, location: &str) -> usize {
    let reply = api.call(Method::HEAD, location, Some(token), None).await;
    assert_eq!(reply.status, StatusCode::OK);
    reply.headers["upload-offset"].to_str().unwrap().parse().unwrap()
}

/// Writes `content` in PATCHes of `chunks` bytes, alternating between the instances; before each
/// PATCH the other instance reports the offset. Then checks the blob on both and returns.
async fn alternate(instances: [&Api; 2], content: &[u8], chunks: &[usize]) {
    let token = user(instances[0]).await;
    let sha = sha256_hex(content);
    let location = create(instances[1], &token, content).await;
    let mut offset = 0;
    for (turn, size) in chunks.iter().chain(std::iter::repeat(&usize::MAX)).enumerate() {
        if offset == content.len() {
            break;
        }
        let (writer, other) = (instances[turn % 2], instances[(turn + 1) % 2]);
        assert_eq!(head_offset(other, &token, &location).await, offset, "HEAD on the other instance");
        let end = offset.saturating_add(*size).min(content.len());
        let reply = Api::reply(patch_request(writer, &token, &location, offset).body(content[offset..end].to_vec()).send().await.unwrap()).await;
        assert_eq!(reply.status, StatusCode::NO_CONTENT, "PATCH {offset}..{end} on instance {}: {:?}", turn % 2, reply.body);
        assert_eq!(reply.headers["upload-offset"].to_str().unwrap(), end.to_string());
        offset = end;
    }
    check_blob(instances, &token, &sha, content.len()).await;
}

/// The blob is held, attaches, and downloads whole from both instances, hashing to its name.
async fn check_blob(instances: [&Api; 2], token: &str, sha: &str, size: usize) {
    for api in instances {
        let held = api.call(Method::HEAD, &format!("/api/blobs/{sha}"), Some(token), None).await;
        assert_eq!((held.status, held.headers["content-length"].to_str().unwrap()), (StatusCode::OK, size.to_string().as_str()));
    }
    let material = api_post(instances[0], "/api/materials", token, json!({"title": "Across instances"})).await["id"].as_str().unwrap().to_owned();
    let attach = json!({"sha256": sha, "filename": "f.bin", "contentType": "application/octet-stream", "size": size});
    let attachment = api_post(instances[1], &format!("/api/materials/{material}/attachments"), token, attach).await["id"].as_str().unwrap().to_owned();
    for api in instances {
        let url = api.url(&format!("/api/materials/{material}/attachments/{attachment}/content"));
        let bytes = api.client.get(url).bearer_auth(token).send().await.unwrap().bytes().await.unwrap();
        assert_eq!((bytes.len(), sha256_hex(&bytes)), (size, sha.to_owned()), "download from {}", api.base);
    }
}

async fn api_post(api: &Api, path: &str, token: &str, body: serde_json::Value) -> serde_json::Value {
    let reply = api.post(path, token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{path}: {:?}", reply.body);
    reply.body
}

/// AT10: one PostgreSQL, one S3 bucket (moto). The chunks leave a small tail (durable as its own
/// object), cross part boundaries, and flush a remainder of at least 5 MiB as a part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at10_patches_alternate_between_two_instances_on_one_postgres_and_one_s3() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let endpoint = shelf_testkit::s3_endpoint();
    let bucket = format!("shelf-instances-{}", uuid::Uuid::new_v4().simple());
    assert!(reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await.unwrap().status().is_success());
    let flags = ["--blob-store", "s3", "--s3-endpoint", &endpoint, "--s3-bucket", &bucket, "--s3-region", "us-east-1", "--max-file-size", "64MiB"];
    let one = common::serve(&database.url, &flags).await;
    let two = common::serve(&database.url, &flags).await;
    let (one, two) = (Api::new(&one.base), Api::new(&two.base));
    alternate([&one, &two], &content(21 * MIB + 12_345), &[3 * MIB, 6 * MIB, 1000, 9 * MIB, 2 * MIB]).await;
    alternate([&two, &one], &content(3 * MIB), &[MIB, MIB]).await; // never a part: tails only
}

/// AT10: one PostgreSQL, one local folder both instances mount. The first PATCH is cut off
/// mid-body; the upload resumes on the other instance from the offset HEAD reports there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at10_a_cut_off_upload_resumes_on_another_instance_sharing_the_local_folder() {
    let database = TestDatabase::create(Backend::Postgres).await;
    let shared = tempfile::tempdir().unwrap();
    let data_dir = shared.path().to_str().unwrap().to_owned();
    let flags = ["--data-dir", &data_dir, "--max-file-size", "64MiB"];
    let one = common::serve(&database.url, &flags).await;
    let two = common::serve(&database.url, &flags).await;
    let (one, two) = (Api::new(&one.base), Api::new(&two.base));
    let token = user(&one).await;
    let bytes = content(5 * MIB + 77);
    let location = create(&one, &token, &bytes).await;

    // Instance one receives 2 MiB, then the connection breaks.
    let pieces: Vec<Result<bytes::Bytes, std::io::Error>> =
        vec![Ok(bytes::Bytes::copy_from_slice(&bytes[..2 * MIB])), Err(std::io::Error::other("the train enters a tunnel"))];
    let cut = patch_request(&one, &token, &location, 0).body(reqwest::Body::wrap_stream(futures::stream::iter(pieces))).send().await;
    assert!(cut.is_err(), "the client gave up mid-body");

    // Instance two continues from what it reports (bounded wait: instance one's writer records
    // what it staged and releases the lease once it sees the broken body).
    let mut resumed = None;
    for _ in 0..500 {
        let offset = head_offset(&two, &token, &location).await;
        let sent = patch_request(&two, &token, &location, offset).body(bytes[offset..].to_vec()).send().await;
        // Refused while still locked, the server answers without reading the body and closes
        // the connection; a client still writing the body then sees a broken pipe. Ask again.
        let Ok(sent) = sent else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let reply = Api::reply(sent).await;
        match reply.status {
            // Still writing, or it recorded its bytes between our HEAD and PATCH: ask again.
            StatusCode::LOCKED | StatusCode::CONFLICT => tokio::time::sleep(Duration::from_millis(20)).await,
            _ => {
                assert_eq!(reply.status, StatusCode::NO_CONTENT, "{:?}", reply.body);
                resumed = Some(offset);
                break;
            }
        }
    }
    let resumed = resumed.expect("the cut-off writer released the upload");
    assert!(resumed <= 2 * MIB, "at most what instance one received is kept: {resumed}");
    check_blob([&one, &two], &token, &sha256_hex(&bytes), bytes.len()).await;
    let staging = shared.path().join("blobs").join(".staging");
    assert_eq!(std::fs::read_dir(staging).unwrap().count(), 0, "nothing is left staged");
}
