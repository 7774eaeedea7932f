//! Files: a resumable tus upload (skipped when `HEAD /api/blobs/{sha256}` says the server
//! already has the file; the attach itself is an outbox edit, `attach.rs`); and downloads that resume with `Range` and
//! verify the SHA-256 before the file appears under its name.

use std::io::{Read, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use uuid::Uuid;

use crate::client::Client;
use crate::error::{ClientError, ClientResult};

/// Called with (bytes done, total bytes) as a transfer moves.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

const CHUNK: usize = 256 * 1024;
const ATTEMPTS: u32 = 5;

/// The SHA-256 (lower-case hex) and size of a file.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    hash_reading(path, |_| Ok(()))
}

/// Copies `from` to `to` (synced before it returns) in one read, returning the SHA-256 of the
/// bytes copied.
pub(crate) fn copy_hashing(from: &Path, to: &Path) -> std::io::Result<String> {
    let mut out = std::fs::File::create(to)?;
    let (sha256, _) = hash_reading(from, |bytes| out.write_all(bytes))?;
    out.sync_all()?;
    Ok(sha256)
}

/// Reads `path` once, handing every chunk to `each`; returns its SHA-256 and size.
fn hash_reading(path: &Path, mut each: impl FnMut(&[u8]) -> std::io::Result<()>) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1024 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        each(&buffer[..read])?;
        size += read as u64;
    }
    let digest = hasher.finalize();
    Ok((digest.iter().map(|b| format!("{b:02x}")).collect(), size))
}

/// A MIME type from the file name's extension.
pub fn content_type_for(path: &Path) -> &'static str {
    let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match extension.as_str() {
        "pdf" => "application/pdf",
        "epub" => "application/epub+zip",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "html" | "htm" => "text/html",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// The `Upload-Offset` a tus answer must carry.
fn upload_offset_header(response: &reqwest::Response) -> ClientResult<u64> {
    let header = response.headers().get("upload-offset").and_then(|v| v.to_str().ok());
    header.and_then(|v| v.parse().ok()).ok_or_else(|| ClientError::Protocol(format!("tus answer with Upload-Offset {header:?}")))
}

/// The outcome of a download.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Downloaded {
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
}

impl Client {
    /// tus: HEAD the blob, else create (or resume) an upload and PATCH from the stored offset.
    pub(crate) async fn upload(&self, path: &Path, sha256: &str, size: u64, filename: &str, progress: Progress) -> ClientResult<()> {
        let head = self.http().request(Method::HEAD, &format!("/api/blobs/{sha256}"));
        match self.http().send(head).await {
            Ok(_) => {
                progress(size, size);
                return Ok(());
            }
            Err(ClientError::Api { status: 404, .. }) => {}
            Err(error) => return Err(error),
        }
        let key = sha256.to_owned();
        let saved = self.with_replica(move |r| r.upload_location(&key)).await?;
        let (location, mut offset) = match self.resume_offset(saved).await? {
            Some(resumed) => resumed,
            None => (self.create_upload(sha256, size, filename).await?, 0),
        };
        let mut attempt = 0;
        loop {
            let result = self.patch(&location, path, offset, size, progress.clone()).await;
            match result {
                Ok(stored) if stored >= size => break,
                Ok(stored) => offset = stored,
                Err(ClientError::Api { code, .. }) if code == "hash_mismatch" => {
                    self.forget_upload(sha256).await?;
                    return Err(ClientError::Protocol("the file changed while it was uploaded; try again".into()));
                }
                Err(error) if attempt + 1 >= ATTEMPTS || !(error.is_transient() || error.code() == Some("offset_mismatch")) => {
                    return Err(error)
                }
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    offset = self.upload_offset(&location).await?.ok_or_else(|| ClientError::Protocol("the upload vanished".into()))?;
                }
            }
        }
        self.forget_upload(sha256).await
    }

    async fn resume_offset(&self, saved: Option<String>) -> ClientResult<Option<(String, u64)>> {
        let Some(location) = saved else { return Ok(None) };
        Ok(self.upload_offset(&location).await?.map(|offset| (location, offset)))
    }

    /// The stored offset of an upload, or `None` when the server no longer has it.
    async fn upload_offset(&self, location: &str) -> ClientResult<Option<u64>> {
        let request = self.http().request(Method::HEAD, location).header("tus-resumable", "1.0.0");
        match self.http().send(request).await {
            Ok(response) => upload_offset_header(&response).map(Some),
            Err(ClientError::Api { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    async fn create_upload(&self, sha256: &str, size: u64, filename: &str) -> ClientResult<String> {
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let request = self
            .http()
            .request(Method::POST, "/api/uploads")
            .header("tus-resumable", "1.0.0")
            .header("upload-length", size.to_string())
            .header("upload-metadata", format!("sha256 {},filename {}", b64(sha256), b64(filename)));
        let response = self.http().send(request).await?;
        let location = response
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::Protocol("upload created without a Location".into()))?;
        // Keep only the path: the client prefixes its own server URL.
        let location = match location.find("/api/") {
            Some(start) => location[start..].to_owned(),
            None => location.to_owned(),
        };
        let (key, saved) = (sha256.to_owned(), location.clone());
        self.with_replica(move |r| r.save_upload(&key, &saved, size)).await?;
        Ok(location)
    }

    async fn forget_upload(&self, sha256: &str) -> ClientResult<()> {
        let key = sha256.to_owned();
        self.with_replica(move |r| r.forget_upload(&key)).await
    }

    /// Sends the file from `offset` in one streamed PATCH; returns the server's new offset.
    async fn patch(&self, location: &str, path: &Path, offset: u64, size: u64, progress: Progress) -> ClientResult<u64> {
        let mut file = tokio::fs::File::open(path).await?;
        file.seek(SeekFrom::Start(offset)).await?;
        progress(offset, size);
        let body = futures::stream::unfold((file, offset), move |(mut file, sent)| {
            let progress = progress.clone();
            async move {
                let mut buffer = vec![0u8; CHUNK];
                match file.read(&mut buffer).await {
                    Ok(0) => None,
                    Ok(read) => {
                        buffer.truncate(read);
                        progress(sent + read as u64, size);
                        Some((Ok::<_, std::io::Error>(Bytes::from(buffer)), (file, sent + read as u64)))
                    }
                    Err(error) => Some((Err(error), (file, sent))),
                }
            }
        });
        let request = self
            .http()
            .streaming(Method::PATCH, location)
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(reqwest::Body::wrap_stream(body));
        upload_offset_header(&self.http().send(request).await?)
    }

    /// Downloads an attachment to `out`, resuming a `.part` file left by an interrupted run.
    pub async fn download(&self, material_id: Uuid, attachment: &str, out: Option<&Path>, progress: Progress) -> ClientResult<Downloaded> {
        self.ensure_signed_in().await?;
        let find = |material: crate::LocalMaterial| {
            material.attachments.into_iter().find(|a| a.id.to_string() == attachment || a.filename == attachment)
        };
        let mut found = find(self.material(material_id).await?);
        if found.is_none() {
            // Attached on another device since the last sync?
            self.sync().await?;
            found = find(self.material(material_id).await?);
        }
        let attachment = found.ok_or_else(|| ClientError::NotFound { what: "attachment", id: attachment.to_owned() })?;
        let out = out.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from(&attachment.filename));
        let part = PathBuf::from(format!("{}.part", out.display()));
        let size = u64::try_from(attachment.size).unwrap_or(0);
        let have = match tokio::fs::metadata(&part).await {
            Ok(metadata) => metadata.len().min(size),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(error) => return Err(error.into()),
        };
        let path = format!("/api/materials/{material_id}/attachments/{}/content", attachment.id);
        let mut request = self.http().streaming(Method::GET, &path);
        if have > 0 && have < size {
            request = request.header("range", format!("bytes={have}-"));
        }
        let result = if have == size && size > 0 { Ok(None) } else { self.http().send(request).await.map(Some) };
        if let Some(response) = self.note(result).await? {
            let append = response.status() == StatusCode::PARTIAL_CONTENT;
            let mut file = tokio::fs::OpenOptions::new().create(true).write(true).append(append).truncate(!append).open(&part).await?;
            let mut done = if append { have } else { 0 };
            let mut body = response.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| self.http().transport_error(&e))?;
                file.write_all(&chunk).await?;
                done += chunk.len() as u64;
                progress(done, size);
            }
            file.sync_all().await?;
        }
        let check = part.clone();
        let (sha256, written) = tokio::task::spawn_blocking(move || hash_file(&check))
            .await
            .map_err(|e| ClientError::Protocol(format!("hashing task failed: {e}")))??;
        if sha256 != attachment.sha256 || written != size {
            tokio::fs::remove_file(&part).await?;
            return Err(ClientError::Protocol("the downloaded file does not match its SHA-256; it was removed".into()));
        }
        tokio::fs::rename(&part, &out).await?;
        Ok(Downloaded { path: out, size, sha256 })
    }
}

/// Unfinished uploads, so an interrupted attach resumes.
impl crate::replica::Replica {
    pub fn upload_location(&self, sha256: &str) -> ClientResult<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(self.conn().query_row("SELECT location FROM uploads WHERE sha256 = ?1", [sha256], |row| row.get(0)).optional()?)
    }

    pub fn save_upload(&mut self, sha256: &str, location: &str, size: u64) -> ClientResult<()> {
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        self.conn().execute("INSERT OR REPLACE INTO uploads (sha256, location, size) VALUES (?1, ?2, ?3)", rusqlite::params![sha256, location, size])?;
        Ok(())
    }

    pub fn forget_upload(&mut self, sha256: &str) -> ClientResult<()> {
        self.conn().execute("DELETE FROM uploads WHERE sha256 = ?1", [sha256])?;
        Ok(())
    }
}
