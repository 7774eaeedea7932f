//! Reading the library as the device sees it: server state, or its overlay where local edits wait.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use shelf_api::{AttachmentView, MaterialFields, ProgressView};
use uuid::Uuid;

use super::Replica;
use crate::error::ClientResult;
use crate::overlay::MaterialState;

/// A material as the device sees it: the server's fields (`id`, `title`, `body`, `tags`,
/// `createdAt`, `updatedAt`, `version`, `conflicts`), its `progress`, `attachments`, and how
/// many of its local edits wait to be sent (`pendingChanges`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalMaterial {
    #[serde(flatten)]
    pub material: MaterialFields,
    pub progress: Option<ProgressView>,
    pub attachments: Vec<AttachmentView>,
    pub pending_changes: u32,
}

impl Replica {
    /// Every visible material, oldest id first (ids are UUIDv7, so roughly creation order).
    pub fn materials(&self) -> ClientResult<Vec<LocalMaterial>> {
        let conn = self.conn();
        let mut attachments = attachments_by_material(conn)?;
        let mut queued: HashMap<String, Vec<AttachmentView>> = HashMap::new();
        for view in self.queued_attachments(None)? {
            queued.entry(view.material_id.to_string()).or_default().push(view);
        }
        let pending = pending_by_material(conn)?;
        let mut statement = conn.prepare(
            "SELECT m.id, m.data, p.data, o.id IS NOT NULL, o.state
               FROM materials m
               LEFT JOIN progress p ON p.material_id = m.id
               LEFT JOIN overlay o ON o.id = m.id
             UNION ALL
             SELECT o.id, NULL, NULL, 1, o.state FROM overlay o
              WHERE NOT EXISTS (SELECT 1 FROM materials m WHERE m.id = o.id)
             ORDER BY 1",
        )?;
        let mut rows = statement.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let id: String = row.get(0)?;
            let state = if row.get::<_, bool>(3)? {
                overlay_state(row.get::<_, Option<String>>(4)?.as_deref())?
            } else {
                server_state_from(row.get::<_, Option<String>>(1)?.as_deref(), row.get::<_, Option<String>>(2)?.as_deref())?
            };
            if let Some(state) = state {
                let mut attachments = attachments.remove(&id).unwrap_or_default();
                add_queued(&mut attachments, queued.remove(&id).unwrap_or_default());
                let pending_changes = pending.get(&id).copied().unwrap_or(0);
                out.push(LocalMaterial { material: state.material, progress: state.progress, attachments, pending_changes });
            }
        }
        Ok(out)
    }

    /// One visible material.
    pub fn material(&self, id: Uuid) -> ClientResult<Option<LocalMaterial>> {
        let conn = self.conn();
        let key = id.to_string();
        let Some(state) = visible_state(conn, &key)? else { return Ok(None) };
        let mut statement = conn.prepare_cached("SELECT data FROM attachments WHERE material_id = ?1 ORDER BY id")?;
        let attachments = statement
            .query_map([&key], |row| row.get::<_, String>(0))?
            .map(|data| Ok(serde_json::from_str(&data?)?))
            .collect::<ClientResult<Vec<AttachmentView>>>()?;
        let mut attachments = attachments;
        add_queued(&mut attachments, self.queued_attachments(Some(&key))?);
        let pending_changes =
            conn.query_row("SELECT count(*) FROM outbox WHERE material_id = ?1 AND state = 'pending'", [&key], |row| row.get(0))?;
        Ok(Some(LocalMaterial { material: state.material, progress: state.progress, attachments, pending_changes }))
    }

    /// True when edits wait to be sent.
    pub fn has_pending(&self) -> ClientResult<bool> {
        Ok(self.conn().query_row("SELECT EXISTS (SELECT 1 FROM outbox WHERE state = 'pending')", [], |row| row.get(0))?)
    }

    /// Local edits waiting to be sent (not yet answered by the server).
    pub fn pending_count(&self) -> ClientResult<u64> {
        Ok(self.conn().query_row("SELECT count(*) FROM outbox WHERE state = 'pending'", [], |row| row.get(0))?)
    }
}

/// The state the user sees: the overlay when local edits wait, else the server's.
pub(crate) fn visible_state(conn: &Connection, id: &str) -> ClientResult<Option<MaterialState>> {
    let overlay: Option<Option<String>> =
        conn.query_row("SELECT state FROM overlay WHERE id = ?1", [id], |row| row.get(0)).optional()?;
    match overlay {
        Some(state) => overlay_state(state.as_deref()),
        None => server_state(conn, id),
    }
}

/// The material as the server last sent it, with its progress.
pub(crate) fn server_state(conn: &Connection, id: &str) -> ClientResult<Option<MaterialState>> {
    let material: Option<String> = conn.query_row("SELECT data FROM materials WHERE id = ?1", [id], |row| row.get(0)).optional()?;
    let progress: Option<String> =
        conn.query_row("SELECT data FROM progress WHERE material_id = ?1", [id], |row| row.get(0)).optional()?;
    server_state_from(material.as_deref(), progress.as_deref())
}

fn server_state_from(material: Option<&str>, progress: Option<&str>) -> ClientResult<Option<MaterialState>> {
    let Some(material) = material else { return Ok(None) };
    Ok(Some(MaterialState {
        material: serde_json::from_str(material)?,
        progress: progress.map(serde_json::from_str).transpose()?,
    }))
}

fn overlay_state(state: Option<&str>) -> ClientResult<Option<MaterialState>> {
    Ok(state.map(serde_json::from_str).transpose()?)
}

fn attachments_by_material(conn: &Connection) -> ClientResult<HashMap<String, Vec<AttachmentView>>> {
    let mut statement = conn.prepare("SELECT material_id, data FROM attachments ORDER BY material_id, id")?;
    let mut rows = statement.query([])?;
    let mut out: HashMap<String, Vec<AttachmentView>> = HashMap::new();
    while let Some(row) = rows.next()? {
        let data: String = row.get(1)?;
        out.entry(row.get(0)?).or_default().push(serde_json::from_str(&data)?);
    }
    Ok(out)
}

/// Adds the device's queued attaches the server's state does not show yet (`version` 0).
fn add_queued(attachments: &mut Vec<AttachmentView>, queued: Vec<AttachmentView>) {
    for view in queued {
        if !attachments.iter().any(|a| a.id == view.id) {
            attachments.push(view);
        }
    }
}

fn pending_by_material(conn: &Connection) -> ClientResult<HashMap<String, u32>> {
    let mut statement = conn.prepare("SELECT material_id, count(*) FROM outbox WHERE state = 'pending' GROUP BY material_id")?;
    let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
