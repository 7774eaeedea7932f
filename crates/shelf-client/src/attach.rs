//! Attaching a file goes through the outbox like every other edit (`attachment.add`), so an
//! attach made offline is kept and sent later, in order with the device's other edits.
//!
//! The entry is recorded with the file it names (`outbox_files`). Every push first sends the
//! bytes of queued files (tus, oldest first) and only then the edits; an entry whose bytes are not
//! on the server yet stops the push before it (`pending_batch`), so the server never sees an
//! attach before its blob. When the upload cannot happen now (offline, signed out), the replica
//! keeps its own copy of the file beside its database, so moving or editing the original before
//! the next sync changes nothing. A file that can never be sent (too large, over the quota, gone)
//! turns its entry into a rejected edit the user sees, like any refusal.

use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use shelf_api::{AttachmentAddData, AttachmentView};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::client::Client;
use crate::error::{ClientError, ClientResult};
use crate::mutation::LocalEdit;
use crate::outbox::RejectedEdit;
use crate::replica::{parse_time, Replica};
use crate::uploads::{content_type_for, copy_hashing, hash_file, Progress};

/// The outcome of [`Client::attach`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attached {
    #[serde(flatten)]
    pub attachment: AttachmentView,
    /// True while the attach waits in the outbox (the server was not reachable); `version` is 0
    /// until it is sent.
    pub pending: bool,
}

/// A queued attach whose bytes are not on the server yet.
#[derive(Debug, Clone)]
struct QueuedFile {
    mutation_id: i64,
    data: AttachmentAddData,
    path: PathBuf,
}

impl Client {
    /// Queues attaching `path` to the material, then sends it (upload with `progress`, then the
    /// edit) if the server is reachable. Offline the attach stays queued with the replica's own
    /// copy of the file and `pending` is true.
    pub async fn attach(&self, material_id: Uuid, path: &Path, progress: Progress) -> ClientResult<Attached> {
        let owned = path.to_owned();
        let (sha256, size) = blocking(move || Ok(hash_file(&owned)?)).await?;
        let data = AttachmentAddData {
            attachment_id: Uuid::now_v7(),
            sha256,
            filename: path.file_name().and_then(|n| n.to_str()).unwrap_or("file").to_owned(),
            content_type: content_type_for(path).to_owned(),
            size: i64::try_from(size).map_err(|_| ClientError::Protocol("file too large".into()))?,
        };
        let edit = LocalEdit::AddAttachment(data.clone()).validated()?;
        let at = shelf_core::truncate_to_micros(OffsetDateTime::now_utc());
        let file = path.to_owned();
        let mutation_id = self.with_replica(move |r| r.record_attachment(material_id, edit, &file, at)).await?;
        self.publish_status().await;

        let synced = self.sync_uploading(progress).await;
        // Whatever kept the bytes from leaving, the queued attach must not depend on the original.
        let staged = self.stage_queued_file(mutation_id).await;
        let pending = match synced {
            Ok(_) => false,
            Err(ClientError::Unreachable { .. } | ClientError::NotSignedIn) => true,
            Err(error) => return Err(error),
        };
        staged?;
        if let Some(rejected) = self.rejection(mutation_id).await? {
            return Err(ClientError::Api { status: 422, code: rejected.code, message: rejected.message });
        }
        let local = self.material(material_id).await?;
        let attachment = local.attachments.into_iter().find(|a| a.id == data.attachment_id);
        Ok(Attached { attachment: attachment.unwrap_or_else(|| queued_view(material_id, data, at)), pending })
    }

    /// Uploads the bytes of every queued attach, oldest first. A transient failure stops here
    /// (the entries stay queued); a permanent one rejects its entry (returned) and goes on.
    pub(crate) async fn send_queued_files(&self, progress: &Progress) -> ClientResult<Vec<RejectedEdit>> {
        let (mut failed, mut rejected) = (None, Vec::new());
        while let Some(file) = self.with_replica(move |r| r.next_queued_file(failed)).await? {
            let result = self.upload(&file.path, &file.data.sha256, file.data.size as u64, &file.data.filename, progress.clone()).await;
            let mutation_id = file.mutation_id;
            match result {
                Ok(()) => self.with_replica(move |r| r.queued_file_sent(mutation_id)).await?,
                Err(error) if error.is_transient() || matches!(error, ClientError::SignedOut | ClientError::NotSignedIn) => {
                    return Err(error)
                }
                Err(error) => {
                    let (code, message) = refusal(&file, &error);
                    rejected.extend(self.with_replica(move |r| r.reject_queued_file(mutation_id, &code, &message)).await?);
                    failed = Some(mutation_id);
                }
            }
        }
        Ok(rejected)
    }

    /// Copies a queued attach's file into the replica's folder (unless already there or sent),
    /// hashing as it copies, and points the entry at the copy; the replica stays free meanwhile.
    /// A file that no longer matches its hash rejects the entry.
    async fn stage_queued_file(&self, mutation_id: i64) -> ClientResult<()> {
        let Some((original, sha256, folder)) = self.with_replica(move |r| r.unstaged_file(mutation_id)).await? else { return Ok(()) };
        let copy = folder.join(format!("{mutation_id}-{sha256}"));
        let partial = folder.join(format!("{mutation_id}-{sha256}.partial"));
        let (from, to) = (original.clone(), partial.clone());
        let copied = blocking(move || {
            std::fs::create_dir_all(&folder)?;
            Ok(copy_hashing(&from, &to)?)
        })
        .await?;
        if copied != sha256 {
            remove_staged(Some(partial));
            let message = format!("{} changed while it was attached; attach it again", original.display());
            return self.with_replica(move |r| r.reject_queued_file(mutation_id, "file_changed", &message).map(|_| ())).await;
        }
        std::fs::rename(&partial, &copy)?;
        self.with_replica(move |r| r.mark_staged(mutation_id, &copy)).await
    }
}

/// Why a queued file can never be sent, as a rejected edit shows it.
fn refusal(file: &QueuedFile, error: &ClientError) -> (String, String) {
    match error {
        ClientError::Api { code, message, .. } => (code.clone(), format!("{} was not uploaded: {message}", file.data.filename)),
        ClientError::Io(io) => ("file_unreadable".into(), format!("{} cannot be read: {io}", file.path.display())),
        other => ("upload_failed".into(), format!("{} was not uploaded: {other}", file.data.filename)),
    }
}

/// A queued attach as the device shows it until the server's copy arrives.
fn queued_view(material_id: Uuid, data: AttachmentAddData, at: OffsetDateTime) -> AttachmentView {
    AttachmentView {
        id: data.attachment_id,
        material_id,
        sha256: data.sha256,
        filename: data.filename,
        content_type: data.content_type,
        size: data.size,
        created_at: at,
        version: 0,
    }
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> ClientResult<T> + Send + 'static) -> ClientResult<T> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ClientError::Protocol(format!("file task failed: {e}")))?
}

impl Replica {
    /// Records the attach and the file it names in one transaction.
    fn record_attachment(&mut self, material_id: Uuid, edit: LocalEdit, path: &Path, at: OffsetDateTime) -> ClientResult<i64> {
        let path = std::path::absolute(path)?;
        let tx = self.write()?;
        let mutation_id = crate::outbox::record(&tx, material_id, edit, at)?;
        tx.execute("INSERT INTO outbox_files (mutation_id, path, staged) VALUES (?1, ?2, 0)", params![mutation_id, path_text(&path)?])?;
        tx.commit()?;
        Ok(mutation_id)
    }

    /// The oldest pending entry whose bytes wait, after `after` (one just refused) if given.
    fn next_queued_file(&self, after: Option<i64>) -> ClientResult<Option<QueuedFile>> {
        let row = self
            .conn()
            .query_row(
                "SELECT f.mutation_id, o.data, f.path FROM outbox_files f JOIN outbox o USING (mutation_id)
                  WHERE o.state = 'pending' AND f.mutation_id > ?1 ORDER BY f.mutation_id LIMIT 1",
                [after.unwrap_or(0)],
                |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?, row.get::<_, String>(2)?)),
            )
            .optional()?;
        let Some((mutation_id, data, path)) = row else { return Ok(None) };
        let data = serde_json::from_str(&data).map_err(|e| ClientError::Damaged(format!("queued attach {mutation_id}: {e}")))?;
        Ok(Some(QueuedFile { mutation_id, data, path: PathBuf::from(path) }))
    }

    /// The bytes are on the server: the entry may be sent, and the replica's copy goes.
    fn queued_file_sent(&mut self, mutation_id: i64) -> ClientResult<()> {
        let tx = self.write()?;
        let staged = take_file(&tx, mutation_id)?;
        tx.commit()?;
        remove_staged(staged);
        Ok(())
    }

    /// The bytes can never be sent: the entry becomes a rejected edit, and the replica's copy goes.
    fn reject_queued_file(&mut self, mutation_id: i64, code: &str, message: &str) -> ClientResult<Option<RejectedEdit>> {
        let tx = self.write()?;
        let staged = take_file(&tx, mutation_id)?;
        let rejected = crate::outbox::reject(&tx, mutation_id, code, message)?;
        if let Some(rejected) = &rejected {
            crate::outbox::refold(&tx, &rejected.material_id)?;
        }
        tx.commit()?;
        remove_staged(staged);
        Ok(rejected)
    }

    /// A queued attach's original file, its hash and the folder for the replica's copy, unless
    /// the entry was sent, is already a copy, or the replica lives in memory.
    fn unstaged_file(&self, mutation_id: i64) -> ClientResult<Option<(PathBuf, String, PathBuf)>> {
        let Some(folder) = self.files_dir() else { return Ok(None) };
        let queued: Option<(String, String)> = self
            .conn()
            .query_row(
                "SELECT f.path, o.data FROM outbox_files f JOIN outbox o USING (mutation_id) WHERE f.mutation_id = ?1 AND NOT f.staged",
                [mutation_id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let Some((path, data)) = queued else { return Ok(None) };
        let data: AttachmentAddData = serde_json::from_str(&data)?;
        Ok(Some((PathBuf::from(path), data.sha256, folder)))
    }

    /// Points a queued attach at the replica's copy of its file.
    fn mark_staged(&mut self, mutation_id: i64, copy: &Path) -> ClientResult<()> {
        let tx = self.write()?;
        tx.execute("UPDATE outbox_files SET path = ?2, staged = 1 WHERE mutation_id = ?1", params![mutation_id, path_text(copy)?])?;
        tx.commit()?;
        Ok(())
    }

    /// Where the replica keeps its copies of queued files: beside its database file. `None` for
    /// a replica in memory, whose queued attaches read the original files.
    pub(crate) fn files_dir(&self) -> Option<PathBuf> {
        let database = self.conn().path().filter(|p| !p.is_empty())?;
        Some(PathBuf::from(format!("{database}.files")))
    }

    /// Queued attaches (pending or sent but not pulled yet) of every material, as the device
    /// shows them beside the server's attachments.
    pub(crate) fn queued_attachments(&self, material: Option<&str>) -> ClientResult<Vec<AttachmentView>> {
        let mut statement = self.conn().prepare_cached(
            "SELECT material_id, data, created_at FROM outbox
              WHERE type = 'attachment.add' AND state != 'rejected' AND (?1 IS NULL OR material_id = ?1)
              ORDER BY mutation_id",
        )?;
        let mut rows = statement.query([material])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let (material_id, data, at): (String, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
            let material_id = Uuid::parse_str(&material_id).map_err(|e| ClientError::Damaged(e.to_string()))?;
            out.push(queued_view(material_id, serde_json::from_str(&data)?, parse_time(&at)?));
        }
        Ok(out)
    }

    /// Removes every queued file row and the replica's copies (the outbox is being cleared).
    pub(crate) fn clear_queued_files(tx: &rusqlite::Transaction<'_>) -> ClientResult<Vec<PathBuf>> {
        let mut statement = tx.prepare("DELETE FROM outbox_files RETURNING path, staged")?;
        let rows = statement.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, bool>(1)?)))?;
        let mut staged = Vec::new();
        for row in rows {
            if let (path, true) = row? {
                staged.push(PathBuf::from(path));
            }
        }
        Ok(staged)
    }
}

/// Deletes the file row; returns the replica's copy to remove once the transaction committed.
fn take_file(tx: &rusqlite::Transaction<'_>, mutation_id: i64) -> ClientResult<Option<PathBuf>> {
    let row: Option<(String, bool)> = tx
        .query_row("DELETE FROM outbox_files WHERE mutation_id = ?1 RETURNING path, staged", [mutation_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    Ok(row.and_then(|(path, staged)| staged.then(|| PathBuf::from(path))))
}

/// Removes a copy the replica no longer needs. A copy that cannot be removed only takes space.
pub(crate) fn remove_staged(staged: impl IntoIterator<Item = PathBuf>) {
    for path in staged {
        if let Err(error) = std::fs::remove_file(&path) {
            tracing::warn!(path = %path.display(), %error, "could not remove the replica's copy of a sent file");
        }
    }
}

fn path_text(path: &Path) -> ClientResult<&str> {
    path.to_str().ok_or_else(|| ClientError::Protocol(format!("{} is not a UTF-8 path", path.display())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use shelf_api::{MaterialCreateData, ProgressInput};

    #[test]
    fn a_push_stops_before_an_attach_whose_file_is_not_on_the_server_yet() {
        let mut replica = Replica::open_in_memory().unwrap();
        let (id, at) = (Uuid::now_v7(), OffsetDateTime::UNIX_EPOCH);
        let create = MaterialCreateData { title: "t".into(), body: String::new(), tags: vec![], progress: None };
        replica.record_edit(id, LocalEdit::Create(create), at).unwrap();
        let data = AttachmentAddData {
            attachment_id: Uuid::now_v7(),
            sha256: "a".repeat(64),
            filename: "f.pdf".into(),
            content_type: "application/pdf".into(),
            size: 1,
        };
        let attach = replica.record_attachment(id, LocalEdit::AddAttachment(data), Path::new("f.pdf"), at).unwrap();
        replica.record_edit(id, LocalEdit::SetProgress(ProgressInput { study_seconds_delta: 5, ..Default::default() }), at).unwrap();
        let sent = |replica: &Replica| replica.pending_batch(100, 1 << 20).unwrap().iter().map(|m| m.mutation_id()).collect::<Vec<_>>();
        assert_eq!(sent(&replica), [1], "the create goes; the attach and what follows it wait for the file");
        assert_eq!(replica.next_queued_file(None).unwrap().map(|f| f.mutation_id), Some(attach));
        assert_eq!(replica.queued_attachments(None).unwrap().len(), 1, "shown while queued");
        replica.queued_file_sent(attach).unwrap();
        assert_eq!(sent(&replica), [1, 2, 3]);
        assert!(replica.next_queued_file(None).unwrap().is_none());
    }
}
