//! Offline-sync reads: receipts, conflicts, the dead-letter list; and merge-base pruning.
//! (Receipts, conflicts and dead letters are written by the write path, `write_tx.rs`.)

use shelf_core::{Conflict, ConflictField, DeviceId, MaterialId, UserId};
use shelf_store::{parse_rejection_kind_and_code, Receipt, ReceiptKey, RejectedMutation, RejectedQuery, StoreError, StoreResult};
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, PgPool, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db_err;
use crate::write::Tx;
use crate::write_tx::CONFLICT_COLUMNS;

pub async fn receipt(executor: impl PgExecutor<'_>, user: UserId, key: ReceiptKey) -> StoreResult<Option<Receipt>> {
    let row = sqlx::query(
        "SELECT mutation_id, status, library_version, code, message, detail FROM mutation_receipts
         WHERE user_id = $1 AND device_id = $2 AND mutation_id = $3",
    )
    .bind(user.0)
    .bind(key.device.0)
    .bind(key.mutation_id)
    .fetch_optional(executor)
    .await
    .map_err(db_err)?;
    row.map(|row| {
        let code: Option<String> = row.try_get("code").map_err(db_err)?;
        let detail: Option<String> = row.try_get("detail").map_err(db_err)?;
        Receipt::from_stored(
            row.try_get("mutation_id").map_err(db_err)?,
            row.try_get::<String, _>("status").map_err(db_err)?.as_str(),
            row.try_get("library_version").map_err(db_err)?,
            code.as_deref(),
            row.try_get("message").map_err(db_err)?,
            detail.as_deref(),
        )
    })
    .transpose()
}

pub async fn conflicts(pool: &PgPool, user: UserId, material: MaterialId) -> StoreResult<Vec<Conflict>> {
    let rows = sqlx::query(&format!(
        "SELECT {CONFLICT_COLUMNS} FROM material_conflicts WHERE user_id = $1 AND material_id = $2 ORDER BY created_at, id"
    ))
    .bind(user.0)
    .bind(material.0)
    .fetch_all(pool)
    .await
    .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            let field: String = row.try_get("field").map_err(db_err)?;
            Ok(Conflict {
                id: row.try_get("id").map_err(db_err)?,
                field: ConflictField::parse(&field)
                    .ok_or_else(|| StoreError::backend(std::io::Error::other(format!("corrupt conflict field {field:?}"))))?,
                server_value: row.try_get("server_value").map_err(db_err)?,
                device_value: row.try_get("device_value").map_err(db_err)?,
                base_version: row.try_get("base_version").map_err(db_err)?,
                created_at: row.try_get("created_at").map_err(db_err)?,
            })
        })
        .collect()
}

fn rejected(row: &PgRow) -> StoreResult<RejectedMutation> {
    let device: Option<Uuid> = row.try_get("device_id").map_err(db_err)?;
    let kind: String = row.try_get("mutation_type").map_err(db_err)?;
    let code: String = row.try_get("code").map_err(db_err)?;
    let (kind, code) = parse_rejection_kind_and_code(&kind, &code)?;
    let data_bytes: i64 = row.try_get("data_bytes").map_err(db_err)?;
    Ok(RejectedMutation {
        id: row.try_get("id").map_err(db_err)?,
        device_id: device.map(DeviceId),
        mutation_id: row.try_get("mutation_id").map_err(db_err)?,
        kind,
        material_id: MaterialId(row.try_get("material_id").map_err(db_err)?),
        code,
        message: row.try_get("message").map_err(db_err)?,
        data: row.try_get("data").map_err(db_err)?,
        data_bytes: data_bytes.unsigned_abs(),
        created_at: row.try_get("created_at").map_err(db_err)?,
    })
}

pub async fn rejected_mutations(pool: &PgPool, user: UserId, query: RejectedQuery) -> StoreResult<Vec<RejectedMutation>> {
    let rows = sqlx::query(
        "SELECT id, device_id, mutation_id, mutation_type, material_id, code, message, created_at,
                 octet_length(data)::BIGINT AS data_bytes, CASE WHEN octet_length(data) <= $1 THEN data END AS data
             FROM rejected_mutations WHERE user_id = $2 AND ($3::uuid IS NULL OR id < $3) ORDER BY id DESC LIMIT $4",
    )
        .bind(i64::try_from(query.inline_bytes).unwrap_or(i64::MAX))
        .bind(user.0)
        .bind(query.before)
        .bind(i64::from(query.limit))
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    rows.iter().map(rejected).collect()
}

pub async fn rejected_mutation(pool: &PgPool, user: UserId, id: Uuid) -> StoreResult<Option<RejectedMutation>> {
    let row = sqlx::query(
        "SELECT id, device_id, mutation_id, mutation_type, material_id, code, message, created_at,
                 octet_length(data)::BIGINT AS data_bytes, data FROM rejected_mutations WHERE user_id = $1 AND id = $2",
    )
    .bind(user.0)
    .bind(id)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    row.as_ref().map(rejected).transpose()
}

/// Drops merge bases older than the retention that are no longer a material's current state;
/// an edit made against one of them merges as if its base were unknown (docs/sync-protocol.md).
pub async fn prune_revisions(tx: &mut Tx<'_>, older_than: OffsetDateTime) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM material_revisions WHERE created_at < $1 AND NOT EXISTS (
             SELECT 1 FROM materials m WHERE m.user_id = material_revisions.user_id
                 AND m.id = material_revisions.material_id AND m.version = material_revisions.version)",
    )
    .bind(older_than)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected())
}
