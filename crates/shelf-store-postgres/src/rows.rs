//! Row → domain conversions for PostgreSQL (TIMESTAMPTZ times, JSONB tags).

use shelf_core::{LibraryVersion, Material, MaterialId, Progress};
use shelf_store::StoreError;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::Row;
use uuid::Uuid;

/// Reads a material from columns `id, title, body, tags, created_at, updated_at, version`
/// (with an optional prefix such as `m_` for joined queries).
pub fn material(row: &PgRow, prefix: &str) -> Result<Material, StoreError> {
    let col = |name: &str| format!("{prefix}{name}");
    let id: Uuid = row.try_get(col("id").as_str()).map_err(StoreError::backend)?;
    let tags: Json<Vec<String>> = row.try_get(col("tags").as_str()).map_err(StoreError::backend)?;
    Ok(Material {
        id: MaterialId(id),
        title: row.try_get(col("title").as_str()).map_err(StoreError::backend)?,
        body: row.try_get(col("body").as_str()).map_err(StoreError::backend)?,
        tags: tags.0,
        created_at: row.try_get(col("created_at").as_str()).map_err(StoreError::backend)?,
        updated_at: row.try_get(col("updated_at").as_str()).map_err(StoreError::backend)?,
        version: LibraryVersion(row.try_get(col("version").as_str()).map_err(StoreError::backend)?),
        conflicts: row.try_get::<Json<Vec<shelf_core::ConflictSummary>>, _>(col("conflicts").as_str()).map_err(StoreError::backend)?.0,
    })
}

/// Reads progress from columns `material_id, percent_complete, position, study_seconds,
/// completed, last_studied_at, version` (with an optional prefix).
pub fn progress(row: &PgRow, prefix: &str) -> Result<Progress, StoreError> {
    let col = |name: &str| format!("{prefix}{name}");
    let material_id: Uuid = row.try_get(col("material_id").as_str()).map_err(StoreError::backend)?;
    Ok(Progress {
        material_id: MaterialId(material_id),
        percent_complete: row.try_get(col("percent_complete").as_str()).map_err(StoreError::backend)?,
        position: row.try_get(col("position").as_str()).map_err(StoreError::backend)?,
        study_seconds: row.try_get(col("study_seconds").as_str()).map_err(StoreError::backend)?,
        completed: row.try_get(col("completed").as_str()).map_err(StoreError::backend)?,
        last_studied_at: row.try_get(col("last_studied_at").as_str()).map_err(StoreError::backend)?,
        version: LibraryVersion(row.try_get(col("version").as_str()).map_err(StoreError::backend)?),
    })
}
