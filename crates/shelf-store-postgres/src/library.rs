//! Library reads: version, materials, and the change feed.

use shelf_core::{ChangeKind, ChangeOp, LibraryVersion, Material, MaterialId, Progress, UserId};
use shelf_store::{Change, ChangeData, ChangesPage, StoreError, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::db_err;
use crate::rows;

pub async fn library_version(pool: &PgPool, user: UserId) -> StoreResult<LibraryVersion> {
    let version: Option<i64> = sqlx::query_scalar("SELECT library_version FROM users WHERE id = $1")
        .bind(user.0)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    version.map(LibraryVersion).ok_or(StoreError::UserNotFound)
}

pub async fn library_versions(pool: &PgPool, users: &[UserId]) -> StoreResult<Vec<(UserId, LibraryVersion)>> {
    let ids: Vec<Uuid> = users.iter().map(|u| u.0).collect();
    let rows: Vec<(Uuid, i64)> = sqlx::query_as("SELECT id, library_version FROM users WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    Ok(rows.into_iter().map(|(id, v)| (UserId(id), LibraryVersion(v))).collect())
}

const MATERIAL_WITH_PROGRESS: &str = "SELECT m.id, m.title, m.body, m.tags, m.created_at, m.updated_at, m.version, m.conflicts,
        p.material_id AS p_material_id, p.percent_complete AS p_percent_complete, p.position AS p_position,
        p.study_seconds AS p_study_seconds, p.completed AS p_completed,
        p.last_studied_at AS p_last_studied_at, p.version AS p_version
    FROM materials m LEFT JOIN progress p ON p.user_id = m.user_id AND p.material_id = m.id";

fn material_with_progress(row: &PgRow) -> StoreResult<(Material, Option<Progress>)> {
    let has_progress: Option<Uuid> = row.try_get("p_material_id").map_err(db_err)?;
    let progress = has_progress.map(|_| rows::progress(row, "p_")).transpose()?;
    Ok((rows::material(row, "")?, progress))
}

pub async fn material(pool: &PgPool, user: UserId, id: MaterialId) -> StoreResult<Option<(Material, Option<Progress>)>> {
    let row = sqlx::query(&format!("{MATERIAL_WITH_PROGRESS} WHERE m.user_id = $1 AND m.id = $2"))
        .bind(user.0)
        .bind(id.0)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.as_ref().map(material_with_progress).transpose()
}

pub async fn list_materials(
    pool: &PgPool,
    user: UserId,
    after: Option<MaterialId>,
    limit: u32,
) -> StoreResult<Vec<(Material, Option<Progress>)>> {
    let after = after.map(|a| a.0);
    let rows = sqlx::query(&format!(
        "{MATERIAL_WITH_PROGRESS} WHERE m.user_id = $1 AND ($2::uuid IS NULL OR m.id > $2) ORDER BY m.id LIMIT $3"
    ))
    .bind(user.0)
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

fn change(row: &PgRow) -> StoreResult<Change> {
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

/// A feed page in one statement, so one snapshot and one round trip: the user's version and
/// horizon, the page's rows, and whether more follow. The page is chosen in SQL by the rules of
/// [`shelf_store::page_until`] (whole versions; at most `limit` rows and `max_bytes` of entity
/// data, but always the first version whole): the candidates' sizes (`octet_length` reads TOAST
/// headers, not values) are summed per version and running, and only rows up to the last version
/// that fits are read in full. No rows are read when the client must resync.
const PAGE: &str = "WITH u AS (SELECT library_version, feed_horizon FROM users WHERE id = $1),
    candidates AS (
        SELECT c.version, (128 + COALESCE(octet_length(m.title) + octet_length(m.body) + octet_length(m.tags::text)
                + octet_length(m.conflicts::text), 0) + COALESCE(octet_length(p.position) + 128, 0)
                + COALESCE(octet_length(a.filename) + octet_length(a.content_type) + 192, 0))::BIGINT AS bytes
        FROM u CROSS JOIN library_changes c
        LEFT JOIN materials m ON c.op = 'upsert' AND c.kind = 'material' AND m.user_id = c.user_id AND m.id = c.entity_id
        LEFT JOIN progress p ON c.op = 'upsert' AND c.kind = 'progress' AND p.user_id = c.user_id AND p.material_id = c.entity_id
        LEFT JOIN attachments a ON c.op = 'upsert' AND c.kind = 'attachment' AND a.user_id = c.user_id AND a.id = c.entity_id
        WHERE c.user_id = $1 AND c.version > $2
            AND $2 >= 0 AND $2 <= u.library_version AND ($2 = 0 OR $2 >= u.feed_horizon)
        ORDER BY c.version, c.kind LIMIT $3 + 1),
    versions AS (
        SELECT version, SUM(COUNT(*)) OVER running AS rows_through, SUM(SUM(bytes)) OVER running AS bytes_through,
            MIN(version) OVER () AS first_version, MAX(version) OVER () AS last_version
        FROM candidates GROUP BY version WINDOW running AS (ORDER BY version)),
    page AS (
        SELECT MAX(version) AS until FROM versions
        WHERE version = first_version OR (rows_through <= $3 AND bytes_through <= $4
            AND (version < last_version OR (SELECT COUNT(*) FROM candidates) <= $3)))
    SELECT u.library_version, u.feed_horizon, page.until,
        EXISTS (SELECT 1 FROM library_changes h WHERE h.user_id = $1 AND h.version > page.until) AS has_more, f.*
    FROM u CROSS JOIN page LEFT JOIN LATERAL (";

pub async fn changes_since(
    pool: &PgPool,
    user: UserId,
    since: LibraryVersion,
    limit: u32,
    max_bytes: u64,
) -> StoreResult<ChangesPage> {
    let sql = format!(
        "{PAGE}{FEED} WHERE c.user_id = $1 AND c.version > $2 AND c.version <= page.until) f ON true
         ORDER BY f.change_version, f.kind"
    );
    let rows = sqlx::query(&sql)
        .bind(user.0)
        .bind(since.0)
        .bind(i64::from(limit))
        .bind(i64::try_from(max_bytes).unwrap_or(i64::MAX))
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    let first = rows.first().ok_or(StoreError::UserNotFound)?;
    let library_version = LibraryVersion(first.try_get("library_version").map_err(db_err)?);
    let horizon: i64 = first.try_get("feed_horizon").map_err(db_err)?;
    if (since.0 != 0 && since.0 < horizon) || since > library_version || since.0 < 0 {
        return Err(StoreError::ResyncRequired { since });
    }
    let until: Option<i64> = first.try_get("until").map_err(db_err)?;
    let (changes, has_more) = match until {
        // No candidates: the one row carries the user's columns only.
        None => (Vec::new(), false),
        Some(_) => (
            rows.iter().map(change).collect::<StoreResult<Vec<_>>>()?,
            first.try_get("has_more").map_err(db_err)?,
        ),
    };
    let next_since = match (has_more, changes.last()) {
        (true, Some(last)) => last.version,
        _ => library_version,
    };
    Ok(ChangesPage {
        library_version,
        changes,
        has_more,
        next_since,
    })
}
