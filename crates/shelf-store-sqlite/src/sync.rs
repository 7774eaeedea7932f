//! The offline-sync reads and the dead-letter list (receipts of applied mutations are written by
//! `fast_write.rs` inside the mutation's transaction).

use shelf_core::{DeviceId, LibraryVersion, MaterialId, UserId};
use shelf_store::{Receipt, ReceiptKey, RejectedMutation, Rejection, StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::db_err;
use crate::rows::{from_micros, micros};
use crate::write::Tx;

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

async fn insert_receipt(
    tx: &mut Tx<'_>,
    user: UserId,
    key: ReceiptKey,
    material: MaterialId,
    receipt: &Receipt,
    now: OffsetDateTime,
) -> StoreResult<()> {
    let result = sqlx::query(
        "INSERT INTO mutation_receipts (device_id, mutation_id, user_id, status, library_version, code, message, detail, created_at, material_id)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(key.device.0)
    .bind(key.mutation_id)
    .bind(user.0)
    .bind(&receipt.status)
    .bind(receipt.library_version.0)
    .bind(&receipt.code)
    .bind(&receipt.message)
    .bind(&receipt.detail)
    .bind(micros(now))
    .bind(material.0)
    .execute(&mut **tx)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::DuplicateMutation),
        Err(e) => Err(db_err(e)),
    }
}

fn receipt_from(row: &SqliteRow) -> StoreResult<Receipt> {
    Ok(Receipt {
        mutation_id: row.try_get("mutation_id").map_err(db_err)?,
        status: row.try_get("status").map_err(db_err)?,
        library_version: LibraryVersion(row.try_get("library_version").map_err(db_err)?),
        code: row.try_get("code").map_err(db_err)?,
        message: row.try_get("message").map_err(db_err)?,
        detail: row.try_get("detail").map_err(db_err)?,
    })
}

pub async fn receipt(pool: &SqlitePool, key: ReceiptKey) -> StoreResult<Option<Receipt>> {
    let row = sqlx::query("SELECT * FROM mutation_receipts WHERE device_id = ? AND mutation_id = ?")
        .bind(key.device.0)
        .bind(key.mutation_id)
        .fetch_optional(pool)
        .await
        .map_err(db_err)?;
    row.as_ref().map(receipt_from).transpose()
}

pub async fn reject(
    pool: &SqlitePool,
    user: UserId,
    key: Option<ReceiptKey>,
    rejection: &Rejection,
    now: OffsetDateTime,
) -> StoreResult<Receipt> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
    let version: i64 = sqlx::query_scalar("SELECT library_version FROM users WHERE id = ?")
        .bind(user.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or(StoreError::UserNotFound)?;
    let receipt = Receipt {
        mutation_id: key.map_or(0, |k| k.mutation_id),
        status: "rejected".into(),
        library_version: LibraryVersion(version),
        code: Some(rejection.code.clone()),
        message: Some(rejection.message.clone()),
        detail: None,
    };
    if let Some(key) = key {
        match insert_receipt(&mut tx, user, key, rejection.material_id, &receipt, now).await {
            Err(StoreError::DuplicateMutation) => {
                tx.rollback().await.map_err(db_err)?;
                return receipt_or_missing(pool, key).await;
            }
            other => other?,
        }
    }
    sqlx::query(
        "INSERT INTO rejected_mutations (id, user_id, device_id, mutation_id, mutation_type, material_id, data, code, message, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(Uuid::now_v7())
    .bind(user.0)
    .bind(key.map(|k| k.device.0))
    .bind(key.map(|k| k.mutation_id))
    .bind(&rejection.mutation_type)
    .bind(rejection.material_id.0)
    .bind(&rejection.data)
    .bind(&rejection.code)
    .bind(&rejection.message)
    .bind(micros(now))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    Ok(receipt)
}

async fn receipt_or_missing(pool: &SqlitePool, key: ReceiptKey) -> StoreResult<Receipt> {
    receipt(pool, key).await?.ok_or_else(|| StoreError::backend(std::io::Error::other("receipt vanished")))
}

pub async fn rejected_mutations(pool: &SqlitePool, user: UserId, limit: u32) -> StoreResult<Vec<RejectedMutation>> {
    let rows = sqlx::query("SELECT * FROM rejected_mutations WHERE user_id = ? ORDER BY created_at DESC, id DESC LIMIT ?")
        .bind(user.0)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            let device: Option<Uuid> = row.try_get("device_id").map_err(db_err)?;
            Ok(RejectedMutation {
                id: row.try_get("id").map_err(db_err)?,
                device_id: device.map(DeviceId),
                mutation_id: row.try_get("mutation_id").map_err(db_err)?,
                rejection: Rejection {
                    mutation_type: row.try_get("mutation_type").map_err(db_err)?,
                    material_id: MaterialId(row.try_get("material_id").map_err(db_err)?),
                    data: row.try_get("data").map_err(db_err)?,
                    code: row.try_get("code").map_err(db_err)?,
                    message: row.try_get("message").map_err(db_err)?,
                },
                created_at: from_micros(row.try_get("created_at").map_err(db_err)?)?,
            })
        })
        .collect()
}

pub async fn material_deleted(pool: &SqlitePool, user: UserId, id: MaterialId) -> StoreResult<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM library_changes WHERE user_id = ? AND kind = 'material' AND entity_id = ? AND op = 'delete'",
    )
    .bind(user.0)
    .bind(id.0)
    .fetch_optional(pool)
    .await
    .map_err(db_err)?;
    Ok(found.is_some())
}

/// Drops merge bases older than the retention that are no longer a material's current state;
/// an edit made against one of them merges as if its base were unknown (docs/sync-protocol.md).
pub async fn prune_revisions(tx: &mut Tx<'_>, older_than: OffsetDateTime) -> StoreResult<u64> {
    let done = sqlx::query(
        "DELETE FROM material_revisions WHERE created_at < ?1 AND NOT EXISTS (
             SELECT 1 FROM materials m WHERE m.user_id = material_revisions.user_id
                 AND m.id = material_revisions.material_id AND m.version = material_revisions.version)",
    )
    .bind(micros(older_than))
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(done.rows_affected())
}
