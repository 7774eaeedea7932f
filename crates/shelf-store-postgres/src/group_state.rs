//! What a group's transaction keeps in memory between its attempts (ADR 0012): change-feed
//! entries written once before the commit, and the materials and progress read once after the
//! lock.

use std::collections::{HashMap, HashSet};

use shelf_core::{ChangeKind, ChangeOp, LibraryVersion, Material, MaterialId, Progress, UserId};
use shelf_store::StoreResult;
use sqlx::{PgConnection, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{db_err, rows};

/// One `WriteTx::record_change` kept for `PgWriteTx::flush`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingChange {
    pub user: UserId,
    pub kind: ChangeKind,
    pub id: Uuid,
    pub op: ChangeOp,
    pub version: LibraryVersion,
    pub at: OffsetDateTime,
}

/// Writes `changes` (the last per entity) and, if given, the user's version, in one statement.
pub(crate) async fn write_changes(
    conn: &mut PgConnection,
    changes: &[PendingChange],
    version: Option<(UserId, LibraryVersion)>,
) -> StoreResult<()> {
    if changes.is_empty() {
        if let Some((user, version)) = version {
            sqlx::query("UPDATE users SET library_version = $1 WHERE id = $2")
                .bind(version.0)
                .bind(user.0)
                .execute(&mut *conn)
                .await
                .map_err(db_err)?;
        }
        return Ok(());
    }
    let columns = ChangeColumns::from(latest_per_entity(changes));
    // A data-modifying CTE always runs to completion; the version's UPDATE matches no row when
    // there is none to write (a NULL user).
    sqlx::query(
        "WITH changes AS (
             INSERT INTO library_changes (user_id, kind, entity_id, version, op, changed_at)
             SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::uuid[], $4::bigint[], $5::text[], $6::timestamptz[])
             ON CONFLICT (user_id, kind, entity_id) DO UPDATE SET version = excluded.version, op = excluded.op,
                 changed_at = excluded.changed_at)
         UPDATE users SET library_version = $7 WHERE id = $8",
    )
    .bind(columns.users)
    .bind(columns.kinds)
    .bind(columns.ids)
    .bind(columns.versions)
    .bind(columns.ops)
    .bind(columns.at)
    .bind(version.map(|(_, v)| v.0))
    .bind(version.map(|(u, _)| u.0))
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// The last entry recorded for each entity: one statement's `ON CONFLICT DO UPDATE` may not
/// touch a row twice, and the last entry is the one the row must end with.
fn latest_per_entity(changes: &[PendingChange]) -> Vec<PendingChange> {
    let mut seen = HashSet::with_capacity(changes.len());
    let mut latest: Vec<PendingChange> = changes.iter().rev().filter(|c| seen.insert((c.user, c.kind, c.id))).copied().collect();
    latest.reverse();
    latest
}

/// Change entries as one array per column, for `UNNEST`.
#[derive(Default)]
struct ChangeColumns {
    users: Vec<Uuid>,
    kinds: Vec<&'static str>,
    ids: Vec<Uuid>,
    versions: Vec<i64>,
    ops: Vec<&'static str>,
    at: Vec<OffsetDateTime>,
}

impl From<Vec<PendingChange>> for ChangeColumns {
    fn from(changes: Vec<PendingChange>) -> Self {
        let mut columns = ChangeColumns::default();
        for c in changes {
            columns.users.push(c.user.0);
            columns.kinds.push(c.kind.as_str());
            columns.ids.push(c.id);
            columns.versions.push(c.version.0);
            columns.ops.push(c.op.as_str());
            columns.at.push(c.at);
        }
        columns
    }
}

/// Materials and progress read for a group, by id, and the ids written since.
#[derive(Default)]
pub(crate) struct Prefetched {
    user: Option<UserId>,
    entities: HashMap<MaterialId, (Option<Material>, Option<Progress>)>,
    written: HashSet<MaterialId>,
}

impl Prefetched {
    /// The material and progress as read, unless the group wrote that material since (or it was
    /// not read). Ids stay written after a rollback too: reading again is always right.
    pub(crate) fn get(&self, user: UserId, id: MaterialId) -> Option<(Option<Material>, Option<Progress>)> {
        if self.user != Some(user) || self.written.contains(&id) {
            return None;
        }
        self.entities.get(&id).cloned()
    }

    pub(crate) fn written(&mut self, user: UserId, id: MaterialId) {
        if self.user == Some(user) {
            self.written.insert(id);
        }
    }
}

/// The materials and progress of `ids`, in one statement: a primary-key lookup per id. The
/// `OFFSET 0` keeps the planner from turning the lookups into a join, whose plan, cached while
/// the tables were small, hashes every row of the user's (seen: writes 3× slower once a new
/// library held a few thousand materials).
pub(crate) async fn read_entities(conn: &mut PgConnection, user: UserId, ids: &[MaterialId]) -> StoreResult<Prefetched> {
    let keys: Vec<Uuid> = ids.iter().map(|id| id.0).collect();
    let found = sqlx::query(
        "SELECT k.id AS key, m.id, m.title, m.body, m.tags, m.created_at, m.updated_at, m.version, m.conflicts,
             p.material_id AS p_material_id, p.percent_complete AS p_percent_complete, p.position AS p_position,
             p.study_seconds AS p_study_seconds, p.completed AS p_completed, p.last_studied_at AS p_last_studied_at,
             p.version AS p_version
         FROM UNNEST($2::uuid[]) AS k(id)
         LEFT JOIN LATERAL (SELECT * FROM materials WHERE user_id = $1 AND id = k.id OFFSET 0) m ON true
         LEFT JOIN LATERAL (SELECT * FROM progress WHERE user_id = $1 AND material_id = k.id OFFSET 0) p ON true",
    )
    .bind(user.0)
    .bind(keys)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut entities = HashMap::with_capacity(found.len());
    for row in &found {
        let key: Uuid = row.try_get("key").map_err(db_err)?;
        let material = match row.try_get::<Option<Uuid>, _>("id").map_err(db_err)? {
            Some(_) => Some(rows::material(row, "")?),
            None => None,
        };
        let progress = match row.try_get::<Option<Uuid>, _>("p_material_id").map_err(db_err)? {
            Some(_) => Some(rows::progress(row, "p_")?),
            None => None,
        };
        entities.insert(MaterialId(key), (material, progress));
    }
    Ok(Prefetched { user: Some(user), entities, written: HashSet::new() })
}
