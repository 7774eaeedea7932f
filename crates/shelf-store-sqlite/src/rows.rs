//! Row ↔ domain conversions for SQLite (times as microseconds, tags as JSON text).

use shelf_core::{LibraryVersion, Material, MaterialId, Progress};
use shelf_store::StoreError;
use sqlx::sqlite::SqliteRow;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

pub fn micros(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

pub fn from_micros(micros: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).map_err(StoreError::backend)
}

pub fn tags_json(tags: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(tags).map_err(StoreError::backend)
}

pub fn parse_tags(raw: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(raw).map_err(StoreError::backend)
}

/// Reads a material from columns `id, title, body, tags, created_at, updated_at, version, conflicts`
/// (with an optional prefix such as `m_` for joined queries).
pub fn material(row: &SqliteRow, prefix: &str) -> Result<Material, StoreError> {
    let col = |name: &str| format!("{prefix}{name}");
    let id: Uuid = row.try_get(col("id").as_str()).map_err(StoreError::backend)?;
    let tags: String = row.try_get(col("tags").as_str()).map_err(StoreError::backend)?;
    Ok(Material {
        id: MaterialId(id),
        title: row.try_get(col("title").as_str()).map_err(StoreError::backend)?,
        body: row.try_get(col("body").as_str()).map_err(StoreError::backend)?,
        tags: parse_tags(&tags)?,
        created_at: from_micros(row.try_get(col("created_at").as_str()).map_err(StoreError::backend)?)?,
        updated_at: from_micros(row.try_get(col("updated_at").as_str()).map_err(StoreError::backend)?)?,
        version: LibraryVersion(row.try_get(col("version").as_str()).map_err(StoreError::backend)?),
        conflicts: serde_json::from_str(&row.try_get::<String, _>(col("conflicts").as_str()).map_err(StoreError::backend)?)
            .map_err(StoreError::backend)?,
    })
}

/// Reads progress from columns `material_id, percent_complete, position, study_seconds,
/// completed, last_studied_at, version` (with an optional prefix).
pub fn progress(row: &SqliteRow, prefix: &str) -> Result<Progress, StoreError> {
    let col = |name: &str| format!("{prefix}{name}");
    let material_id: Uuid = row.try_get(col("material_id").as_str()).map_err(StoreError::backend)?;
    let last: Option<i64> = row.try_get(col("last_studied_at").as_str()).map_err(StoreError::backend)?;
    Ok(Progress {
        material_id: MaterialId(material_id),
        percent_complete: row.try_get(col("percent_complete").as_str()).map_err(StoreError::backend)?,
        position: row.try_get(col("position").as_str()).map_err(StoreError::backend)?,
        study_seconds: row.try_get(col("study_seconds").as_str()).map_err(StoreError::backend)?,
        completed: row.try_get(col("completed").as_str()).map_err(StoreError::backend)?,
        last_studied_at: last.map(from_micros).transpose()?,
        version: LibraryVersion(row.try_get(col("version").as_str()).map_err(StoreError::backend)?),
    })
}
