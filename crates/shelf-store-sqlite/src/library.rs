//! Library reads: version, materials, and the change feed.

use shelf_core::{ChangeKind, ChangeOp, LibraryVersion, Material, MaterialId, Progress, UserId};
use shelf_store::{known_more_after, page_until, Change, ChangeData, ChangesPage, StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use uuid::Uuid;

use crate::db_err;
use crate::rows;

pub async fn library_versions(pool: &SqlitePool, users: &[UserId]) -> StoreResult<Vec<(UserId, LibraryVersion)>> {
    let mut versions = Vec::with_capacity(users.len());
    // SQLite has no array parameters; chunks keep each statement under its variable limit.
    for chunk in users.chunks(500) {
        let mut query = sqlx::QueryBuilder::new("SELECT id, library_version FROM users WHERE id IN (");
        let mut list = query.separated(", ");
        for user in chunk {
            list.push_bind(user.0);
        }
        query.push(")");
        let rows: Vec<(Uuid, i64)> = query.build_query_as().fetch_all(pool).await.map_err(db_err)?;
        versions.extend(rows.into_iter().map(|(id, v)| (UserId(id), LibraryVersion(v))));
    }
    Ok(versions)
}

const MATERIAL_WITH_PROGRESS: &str = "SELECT m.id, m.title, m.body, m.tags, m.created_at, m.updated_at, m.version, m.conflicts,
        p.material_id AS p_material_id, p.percent_complete AS p_percent_complete, p.position AS p_position,
        p.study_seconds AS p_study_seconds, p.completed AS p_completed,
        p.last_studied_at AS p_last_studied_at, p.version AS p_version
    FROM materials m LEFT JOIN progress p ON p.user_id = m.user_id AND p.material_id = m.id";

fn material_with_progress(row: &SqliteRow) -> StoreResult<(Material, Option<Progress>)> {
    let has_progress: Option<Uuid> = row.try_get("p_material_id").map_err(db_err)?;
    let progress = has_progress.map(|_| rows::progress(row, "p_")).transpose()?;
    Ok((rows::material(row, "")?, progress))
}

pub async fn material(pool: &SqlitePool, user: UserId, id: MaterialId) -> StoreResult<Option<(Material, Option<Progress>)>> {
    let row = sqlx::query(&format!("{MATERIAL_WITH_PROGRESS} WHERE m.user_id = ? AND m.id = ?"))
        .bind(user.0)
        .bind(id.0)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.as_ref().map(material_with_progress).transpose()
}

pub async fn list_materials(
    pool: &SqlitePool,
    user: UserId,
    after: Option<MaterialId>,
    limit: u32,
) -> StoreResult<Vec<(Material, Option<Progress>)>> {
    let after = after.map(|a| a.0);
    let rows = sqlx::query(&format!("{MATERIAL_WITH_PROGRESS} WHERE m.user_id = ? AND (? IS NULL OR m.id > ?) ORDER BY m.id LIMIT ?"))
        .bind(user.0)
        .bind(after)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    rows.iter().map(material_with_progress).collect()
}

const FEED: &str = "SELECT c.kind, c.entity_id, c.version AS change_version, c.op,
        m.id AS m_id, m.title AS m_title, m.body AS m_body, m.tags AS m_tags, m.created_at AS m_created_at,
        m.updated_at AS m_updated_at, m.version AS m_version, m.conflicts AS m_conflicts,
        p.material_id AS p_material_id, p.percent_complete AS p_percent_complete, p.position AS p_position,
        p.study_seconds AS p_study_seconds, p.completed AS p_completed,
        p.last_studied_at AS p_last_studied_at, p.version AS p_version,
        a.id AS a_id, a.material_id AS a_material_id, a.sha256 AS a_sha256, a.filename AS a_filename,
        a.content_type AS a_content_type, a.size AS a_size, a.created_at AS a_created_at, a.version AS a_version
    FROM library_changes c
    LEFT JOIN materials m ON c.op = 'upsert' AND c.kind = 'material' AND m.user_id = c.user_id AND m.id = c.entity_id
    LEFT JOIN progress p ON c.op = 'upsert' AND c.kind = 'progress' AND p.user_id = c.user_id AND p.material_id = c.entity_id
    LEFT JOIN attachments a ON c.op = 'upsert' AND c.kind = 'attachment' AND a.user_id = c.user_id AND a.id = c.entity_id";

fn change(row: &SqliteRow) -> StoreResult<Change> {
    let kind: String = row.try_get("kind").map_err(db_err)?;
    let op: String = row.try_get("op").map_err(db_err)?;
    let corrupt = || StoreError::backend(std::io::Error::other(format!("unknown change kind/op {kind}/{op}")));
    let kind = ChangeKind::parse(&kind).ok_or_else(corrupt)?;
    let op = ChangeOp::parse(&op).ok_or_else(corrupt)?;
    let data = match (op, kind) {
        (ChangeOp::Delete, _) => None,
        (ChangeOp::Upsert, ChangeKind::Material) => Some(ChangeData::Material(rows::material(row, "m_")?)),
        (ChangeOp::Upsert, ChangeKind::Progress) => Some(ChangeData::Progress(rows::progress(row, "p_")?)),
        (ChangeOp::Upsert, ChangeKind::Attachment) => Some(ChangeData::Attachment(crate::attachments::attachment(row, "a_")?)),
    };
    Ok(Change {
        kind,
        id: MaterialId(row.try_get("entity_id").map_err(db_err)?),
        op,
        version: LibraryVersion(row.try_get("change_version").map_err(db_err)?),
        data,
    })
}

pub async fn changes_since(pool: &SqlitePool, user: UserId, since: LibraryVersion, limit: u32, max_bytes: u64) -> StoreResult<ChangesPage> {
    // One read transaction: the version, horizon and rows all come from the same WAL snapshot.
    let mut tx = pool.begin().await.map_err(db_err)?;
    let row = sqlx::query("SELECT library_version, feed_horizon FROM users WHERE id = ?")
        .bind(user.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or(StoreError::UserNotFound)?;
    let library_version = LibraryVersion(row.try_get("library_version").map_err(db_err)?);
    let horizon: i64 = row.try_get("feed_horizon").map_err(db_err)?;
    if (since.0 != 0 && since.0 < horizon) || since > library_version || since.0 < 0 {
        return Err(StoreError::ResyncRequired { since });
    }
    let sizes = feed_sizes(&mut tx, user, since, i64::from(limit) + 1).await?;
    let (changes, has_more) = match page_until(&sizes, limit as usize, max_bytes) {
        None => (Vec::new(), false),
        Some(until) => {
            let has_more = match known_more_after(&sizes, until, limit as usize) {
                Some(known) => known,
                None => sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM library_changes WHERE user_id = ? AND version > ?)")
                    .bind(user.0)
                    .bind(until.0)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?,
            };
            (feed_rows(&mut tx, user, since, until.0).await?, has_more)
        }
    };
    tx.commit().await.map_err(db_err)?;
    let next_since = match (has_more, changes.last()) {
        (true, Some(last)) => last.version,
        _ => library_version,
    };
    Ok(ChangesPage { library_version, changes, has_more, next_since })
}

/// Each candidate row's version and the bytes its entity adds to a page, without reading the
/// entity (`octet_length` reads record headers, not values).
async fn feed_sizes(tx: &mut Transaction<'_, Sqlite>, user: UserId, since: LibraryVersion, limit: i64) -> StoreResult<Vec<(LibraryVersion, u64)>> {
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT c.version, 128 + COALESCE(octet_length(m.title) + octet_length(m.body) + octet_length(m.tags)
                + octet_length(m.conflicts), 0) + COALESCE(octet_length(p.position) + 128, 0)
                + COALESCE(octet_length(a.filename) + octet_length(a.content_type) + 192, 0)
         FROM library_changes c
         LEFT JOIN materials m ON c.op = 'upsert' AND c.kind = 'material' AND m.user_id = c.user_id AND m.id = c.entity_id
         LEFT JOIN progress p ON c.op = 'upsert' AND c.kind = 'progress' AND p.user_id = c.user_id AND p.material_id = c.entity_id
         LEFT JOIN attachments a ON c.op = 'upsert' AND c.kind = 'attachment' AND a.user_id = c.user_id AND a.id = c.entity_id
         WHERE c.user_id = ? AND c.version > ? ORDER BY c.version, c.kind LIMIT ?",
    )
    .bind(user.0)
    .bind(since.0)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(rows.into_iter().map(|(v, bytes)| (LibraryVersion(v), bytes.unsigned_abs())).collect())
}

async fn feed_rows(tx: &mut Transaction<'_, Sqlite>, user: UserId, since: LibraryVersion, until: i64) -> StoreResult<Vec<Change>> {
    let sql = format!("{FEED} WHERE c.user_id = ? AND c.version > ? AND c.version <= ? ORDER BY c.version, c.kind");
    let rows = sqlx::query(&sql)
        .bind(user.0)
        .bind(since.0)
        .bind(until)
        .fetch_all(&mut **tx)
        .await
        .map_err(db_err)?;
    rows.iter().map(change).collect()
}
