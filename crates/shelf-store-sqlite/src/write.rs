//! The only library writer: plan, write rows + change entries + version in one transaction.

use shelf_core::{plan_mutation, ChangeKind, ChangeOp, LibraryMutation, LibraryVersion, Material, MaterialId, Progress, UserId, Write};
use shelf_store::{Applied, ReceiptKey, StoreError, StoreResult};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use time::OffsetDateTime;

use crate::db_err;
use crate::rows::{self, micros};

pub(crate) type Tx<'a> = Transaction<'a, Sqlite>;

pub async fn apply(
    pool: &SqlitePool,
    user: UserId,
    mutation: &LibraryMutation,
    now: OffsetDateTime,
    receipt: Option<ReceiptKey>,
) -> StoreResult<Applied> {
    // The writer pool has one connection, so this transaction is the only writer: reading the
    // version and writing version + 1 cannot race another bump.
    let mut tx = pool.begin().await.map_err(db_err)?;
    let id = mutation.material_id();
    let (current, material, progress) = load_state(&mut tx, user, id).await?;
    if let Some(key) = receipt {
        // Checked before planning: a replay must be reported as a duplicate, not re-judged.
        crate::sync::ensure_new(&mut tx, key).await?;
    }
    let raised;
    let mutation = match (receipt, mutation.base_version().or(progress_base(mutation))) {
        (Some(key), Some(_)) => match crate::sync::own_latest_write(&mut tx, key, id).await? {
            Some(own) => {
                let mut copy = mutation.clone();
                copy.raise_base_version(own);
                raised = copy;
                &raised
            }
            None => mutation,
        },
        _ => mutation,
    };
    let base = match (mutation.base_version(), &material) {
        (Some(base), Some(m)) if base < m.version => crate::sync::load_base(&mut tx, user, id, base).await?,
        _ => None,
    };
    let next = current.next();
    let plan = plan_mutation(material.as_ref(), progress.as_ref(), base.as_ref(), mutation, now, next)?;
    let (merged, conflicts) = (plan.merged, plan.conflicts.clone());
    if plan.is_noop() {
        let applied = Applied { library_version: current, changed: false, material, progress, merged, conflicts };
        if let Some(key) = receipt {
            crate::sync::record_receipt(&mut tx, user, key, id, &applied, now).await?;
            tx.commit().await.map_err(db_err)?;
        }
        return Ok(applied);
    }
    sqlx::query("UPDATE users SET library_version = ? WHERE id = ?")
        .bind(next.0)
        .bind(user.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    let deletes_material = matches!(plan.material, Write::Delete);
    let material = match plan.material {
        Write::Unchanged => material,
        Write::Upsert(m) => {
            upsert_material(&mut tx, user, &m).await?;
            record_change(&mut tx, user, ChangeKind::Material, id, ChangeOp::Upsert, next, now).await?;
            Some(m)
        }
        Write::Delete => {
            record_change(&mut tx, user, ChangeKind::Material, id, ChangeOp::Delete, next, now).await?;
            None
        }
    };
    let progress = match plan.progress {
        Write::Unchanged => progress,
        Write::Upsert(p) => {
            upsert_progress(&mut tx, user, &p).await?;
            record_change(&mut tx, user, ChangeKind::Progress, id, ChangeOp::Upsert, next, now).await?;
            Some(p)
        }
        Write::Delete => {
            sqlx::query("DELETE FROM progress WHERE user_id = ? AND material_id = ?")
                .bind(user.0)
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            record_change(&mut tx, user, ChangeKind::Progress, id, ChangeOp::Delete, next, now).await?;
            None
        }
    };
    if deletes_material {
        crate::attachments::delete_for_material(&mut tx, user, id, next, now).await?;
        // Progress rows cascade with their material; delete the material last.
        sqlx::query("DELETE FROM materials WHERE user_id = ? AND id = ?")
            .bind(user.0)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    let applied = Applied { library_version: next, changed: true, material, progress, merged, conflicts };
    if let Some(key) = receipt {
        crate::sync::record_receipt(&mut tx, user, key, id, &applied, now).await?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(applied)
}

/// The user's version, the material and its progress in one statement: each statement is a
/// round trip to SQLite's worker thread, and this path runs once per mutation.
async fn load_state(
    tx: &mut Tx<'_>,
    user: UserId,
    id: MaterialId,
) -> StoreResult<(LibraryVersion, Option<Material>, Option<Progress>)> {
    let row = sqlx::query(
        "SELECT u.library_version,
             m.id AS m_id, m.title AS m_title, m.body AS m_body, m.tags AS m_tags, m.created_at AS m_created_at,
             m.updated_at AS m_updated_at, m.version AS m_version, m.conflicts AS m_conflicts,
             p.material_id AS p_material_id, p.percent_complete AS p_percent_complete, p.position AS p_position,
             p.study_seconds AS p_study_seconds, p.completed AS p_completed,
             p.last_studied_at AS p_last_studied_at, p.version AS p_version
         FROM users u
         LEFT JOIN materials m ON m.user_id = u.id AND m.id = ?1
         LEFT JOIN progress p ON p.user_id = u.id AND p.material_id = ?1
         WHERE u.id = ?2",
    )
    .bind(id.0)
    .bind(user.0)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err)?
    .ok_or(StoreError::UserNotFound)?;
    let version = LibraryVersion(row.try_get("library_version").map_err(db_err)?);
    let has_material: Option<uuid::Uuid> = row.try_get("m_id").map_err(db_err)?;
    let has_progress: Option<uuid::Uuid> = row.try_get("p_material_id").map_err(db_err)?;
    let material = has_material.map(|_| rows::material(&row, "m_")).transpose()?;
    let progress = has_progress.map(|_| rows::progress(&row, "p_")).transpose()?;
    Ok((version, material, progress))
}

fn progress_base(mutation: &LibraryMutation) -> Option<LibraryVersion> {
    match mutation {
        LibraryMutation::SetProgress { base_version, .. } => *base_version,
        _ => None,
    }
}

async fn upsert_material(tx: &mut Tx<'_>, user: UserId, m: &Material) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO materials (user_id, id, title, body, tags, created_at, updated_at, version, conflicts)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (user_id, id) DO UPDATE SET title = excluded.title, body = excluded.body,
             tags = excluded.tags, updated_at = excluded.updated_at, version = excluded.version,
             conflicts = excluded.conflicts",
    )
    .bind(user.0)
    .bind(m.id.0)
    .bind(&m.title)
    .bind(&m.body)
    .bind(rows::tags_json(&m.tags))
    .bind(micros(m.created_at))
    .bind(micros(m.updated_at))
    .bind(m.version.0)
    .bind(rows::conflicts_json(&m.conflicts)?)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    crate::sync::record_revision(tx, user, m).await
}

async fn upsert_progress(tx: &mut Tx<'_>, user: UserId, p: &Progress) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO progress (user_id, material_id, percent_complete, position, study_seconds, completed, last_studied_at, version)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (user_id, material_id) DO UPDATE SET percent_complete = excluded.percent_complete,
             position = excluded.position, study_seconds = excluded.study_seconds, completed = excluded.completed,
             last_studied_at = excluded.last_studied_at, version = excluded.version",
    )
    .bind(user.0)
    .bind(p.material_id.0)
    .bind(p.percent_complete)
    .bind(&p.position)
    .bind(p.study_seconds)
    .bind(p.completed)
    .bind(p.last_studied_at.map(micros))
    .bind(p.version.0)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub(crate) async fn record_change(
    tx: &mut Tx<'_>,
    user: UserId,
    kind: ChangeKind,
    id: MaterialId,
    op: ChangeOp,
    version: LibraryVersion,
    now: OffsetDateTime,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO library_changes (user_id, kind, entity_id, version, op, changed_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (user_id, kind, entity_id) DO UPDATE SET version = excluded.version, op = excluded.op,
             changed_at = excluded.changed_at",
    )
    .bind(user.0)
    .bind(kind.as_str())
    .bind(id.0)
    .bind(version.0)
    .bind(op.as_str())
    .bind(micros(now))
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub async fn purge_tombstones(pool: &SqlitePool, older_than: OffsetDateTime) -> StoreResult<u64> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    sqlx::query(
        "UPDATE users SET feed_horizon = MAX(feed_horizon, (
             SELECT MAX(version) FROM library_changes c
             WHERE c.user_id = users.id AND c.op = 'delete' AND c.changed_at < ?1))
         WHERE id IN (SELECT user_id FROM library_changes WHERE op = 'delete' AND changed_at < ?1)",
    )
    .bind(micros(older_than))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let done = sqlx::query("DELETE FROM library_changes WHERE op = 'delete' AND changed_at < ?")
        .bind(micros(older_than))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    crate::sync::prune_revisions(&mut tx, older_than).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(done.rows_affected())
}
