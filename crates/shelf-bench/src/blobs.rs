//! Attachment throughput: a file uploaded through tus (in PATCHes of `patch_mib`, as a resuming
//! client sends them) and downloaded back, on the local folder and on S3, next to copying the
//! same file with the filesystem / the S3 client directly. The client sends from memory, so
//! reading the source file does not count against the server.

use std::time::Instant;

use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use shelf_server::ServerSettings;
use shelf_testkit::{Backend, BlobBackend, TestServer};

fn mb_per_s(bytes: usize, seconds: f64) -> f64 {
    bytes as f64 / 1_048_576.0 / seconds
}

pub async fn run(size_mib: usize, patch_mib: usize, s3: bool) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let source = dir.path().join("source.bin");
    let content: bytes::Bytes = (0..size_mib * 1_048_576).map(|i| (i as u32).wrapping_mul(2_654_435_761) as u8).collect();
    std::fs::write(&source, &content)?;
    let sha: String = Sha256::digest(&content).iter().map(|b| format!("{b:02x}")).collect();

    let started = Instant::now();
    std::fs::copy(&source, dir.path().join("copy.bin"))?;
    let copied = started.elapsed().as_secs_f64();
    println!("cp (std::fs::copy) {size_mib} MiB: {:.0} MB/s", mb_per_s(content.len(), copied));
    let floor = verified_write(&content, &dir.path().join("verified.bin"))?;
    println!("write + SHA-256 + fsync from memory, one thread (the least a verifying server does) {size_mib} MiB: {:.0} MB/s", mb_per_s(content.len(), floor));

    let mut backends = vec![BlobBackend::Local];
    if s3 {
        backends.push(BlobBackend::S3);
    }
    for backend in backends {
        let settings = ServerSettings { max_file_size: content.len() as u64 * 2, ..Default::default() };
        let server = TestServer::start_full(Backend::Sqlite, backend, settings).await;
        let user = server.user().await;
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&sha);
        let started = Instant::now();
        let created = server
            .client
            .post(server.url("/api/uploads"))
            .bearer_auth(&user.token)
            .header("upload-length", content.len().to_string())
            .header("upload-metadata", format!("sha256 {b64}"))
            .send()
            .await?;
        let location = created.headers()["location"].to_str()?.to_owned();
        let patch = if patch_mib == 0 { content.len() } else { patch_mib * 1_048_576 };
        let mut offset = 0;
        while offset < content.len() {
            let end = (offset + patch).min(content.len());
            let piece = futures::stream::iter(
                (offset..end).step_by(256 * 1024).map(|at| Ok::<_, std::io::Error>(content.slice(at..(at + 256 * 1024).min(end)))).collect::<Vec<_>>(),
            );
            let done = server
                .client
                .patch(server.url(&location))
                .bearer_auth(&user.token)
                .header("upload-offset", offset.to_string())
                .header("content-type", "application/offset+octet-stream")
                .body(reqwest::Body::wrap_stream(piece))
                .send()
                .await?;
            anyhow::ensure!(done.status().is_success(), "upload failed at {offset}: {}", done.status());
            offset = end;
        }
        let uploaded = started.elapsed().as_secs_f64();

        let material = server.create_material(&user.token, "bench").await["id"].as_str().unwrap_or_default().to_owned();
        let attach = serde_json::json!({"sha256": sha, "filename": "bench.bin", "contentType": "application/octet-stream", "size": content.len()});
        let attachment = server.post(&format!("/api/materials/{material}/attachments"), &user.token, attach).await.body["id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let started = Instant::now();
        let response = server
            .client
            .get(server.url(&format!("/api/materials/{material}/attachments/{attachment}/content")))
            .bearer_auth(&user.token)
            .send()
            .await?;
        let mut received = 0usize;
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.try_next().await? {
            received += chunk.len();
        }
        let downloaded = started.elapsed().as_secs_f64();
        anyhow::ensure!(received == content.len(), "download returned {received} bytes");
        println!(
            "{backend:?}: upload {:.0} MB/s (tus, {} PATCHes, incl. SHA-256 check and store), download {:.0} MB/s ({size_mib} MiB)",
            mb_per_s(content.len(), uploaded),
            content.len().div_ceil(patch),
            mb_per_s(content.len(), downloaded)
        );
        if backend == BlobBackend::S3 {
            direct_s3(&source, content.len()).await?;
        }
    }
    Ok(())
}

/// Seconds to hash `content` and write it durably to `path` in 1 MiB pieces: what an upload
/// costs at least, without HTTP, staging or records (`cp` neither hashes nor syncs).
fn verified_write(content: &[u8], path: &std::path::Path) -> anyhow::Result<f64> {
    use std::io::Write;
    let started = Instant::now();
    let mut file = std::fs::File::create(path)?;
    let mut hasher = Sha256::new();
    for piece in content.chunks(1 << 20) {
        hasher.update(piece);
        file.write_all(piece)?;
    }
    file.sync_all()?;
    std::hint::black_box(hasher.finalize());
    Ok(started.elapsed().as_secs_f64())
}

/// The same file through the S3 client library alone (no Shelf), as the reference.
async fn direct_s3(source: &std::path::Path, len: usize) -> anyhow::Result<()> {
    use shelf_blob::{BlobKey, BlobStore};
    use shelf_blob_s3::{S3BlobStore, S3Settings};
    let endpoint = shelf_testkit::s3_endpoint();
    let bucket = format!("shelf-bench-{}", uuid::Uuid::new_v4().simple());
    reqwest::Client::new().put(format!("{endpoint}/{bucket}")).send().await?;
    let store = S3BlobStore::new(&S3Settings { endpoint: Some(endpoint), bucket, region: "us-east-1".into() })?;
    let staged = source.with_extension("staged");
    std::fs::copy(source, &staged)?;
    let key = BlobKey { user: uuid::Uuid::new_v4(), sha256: "0".repeat(64) };
    let started = Instant::now();
    store.put_file(&key, &staged, len as u64).await?;
    let put = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let received: usize = store.get(&key, None).await?.map_ok(|b| b.len()).try_fold(0, |a, b| async move { Ok(a + b) }).await?;
    let got = started.elapsed().as_secs_f64();
    anyhow::ensure!(received == len, "direct S3 get returned {received} bytes");
    println!("S3 client directly (object_store): put {:.0} MB/s, get {:.0} MB/s", mb_per_s(len, put), mb_per_s(len, got));
    Ok(())
}
