//! The only library writer: plan, write rows + change entries + version in one transaction.

use shelf_core::{plan_mutation, ChangeKind, ChangeOp, LibraryMutation, LibraryVersion, Material, MaterialId, Progress, UserId, Write};
use shelf_store::{Applied, ReceiptKey, StoreError, StoreResult};
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use crate::db_err;
use crate::rows;

pub(crate) type Tx<'a> = Transaction<'a, Postgres>;

pub async fn apply(
    pool: &PgPool,
    user: UserId,
    mutation: &LibraryMutation,
    now: OffsetDateTime,
    receipt: Option<ReceiptKey>,
) -> StoreResult<Applied> {
    // The user's row lock serialises this user's writers until commit: reading the version and
    // writing version + 1 cannot race another bump, and other users are not blocked.
    let mut tx = pool.begin().await.map_err(db_err)?;
    let current: i64 = sqlx::query_scalar("SELECT library_version FROM users WHERE id = $1 FOR UPDATE")
        .bind(user.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?
        .ok_or(StoreError::UserNotFound)?;
    let current = LibraryVersion(current);
    let id = mutation.material_id();
    let material = load_material(&mut tx, user, id).await?;
    let progress = load_progress(&mut tx, user, id).await?;
    if let Some(key) = receipt {
        // Checked under the user's lock: a replay must be reported as a duplicate, not re-judged.
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
    sqlx::query("UPDATE users SET library_version = $1 WHERE id = $2")
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
            sqlx::query("DELETE FROM progress WHERE user_id = $1 AND material_id = $2")
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
        sqlx::query("DELETE FROM materials WHERE user_id = $1 AND id = $2")
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

async fn load_material(tx: &mut Tx<'_>, user: UserId, id: MaterialId) -> StoreResult<Option<Material>> {
    let row = sqlx::query("SELECT id, title, body, tags, created_at, updated_at, version, conflicts FROM materials WHERE user_id = $1 AND id = $2")
        .bind(user.0)
        .bind(id.0)
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_err)?;
    row.map(|row| rows::material(&row, "")).transpose()
}

async fn load_progress(tx: &mut Tx<'_>, user: UserId, id: MaterialId) -> StoreResult<Option<Progress>> {
    let row = sqlx::query(
        "SELECT material_id, percent_complete, position, study_seconds, completed, last_studied_at, version
         FROM progress WHERE user_id = $1 AND material_id = $2",
    )
    .bind(user.0)
    .bind(id.0)
    .fetch_optional(&mut **tx)
    .await
    .map_err(db_err)?;
    row.map(|row| rows::progress(&row, "")).transpose()
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
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (user_id, id) DO UPDATE SET title = excluded.title, body = excluded.body,
             tags = excluded.tags, updated_at = excluded.updated_at, version = excluded.version,
             conflicts = excluded.conflicts",
    )
    .bind(user.0)
    .bind(m.id.0)
    .bind(&m.title)
    .bind(&m.body)
    .bind(Json(&m.tags))
    .bind(m.created_at)
    .bind(m.updated_at)
    .bind(m.version.0)
    .bind(Json(&m.conflicts))
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    crate::sync::record_revision(tx, user, m).await
}

async fn upsert_progress(tx: &mut Tx<'_>, user: UserId, p: &Progress) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO progress (user_id, material_id, percent_complete, position, study_seconds, completed, last_studied_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
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
    .bind(p.last_studied_at)
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
        "INSERT INTO library_changes (user_id, kind, entity_id, version, op, changed_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id, kind, entity_id) DO UPDATE SET version = excluded.version, op = excluded.op,
             changed_at = excluded.changed_at",
    )
    .bind(user.0)
    .bind(kind.as_str())
    .bind(id.0)
    .bind(version.0)
    .bind(op.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

/// Raises horizons first, then deletes only tombstones at or below the raised horizon: under
/// READ COMMITTED each statement sees a fresh snapshot, so a tombstone committed by another
/// server between the two statements (possible with a short retention or clock skew) would
/// otherwise vanish without its horizon, and a client would silently miss that delete. Such a
/// tombstone is left for the next purge instead.
pub async fn purge_tombstones(pool: &PgPool, older_than: OffsetDateTime) -> StoreResult<u64> {
    let mut tx = pool.begin().await.map_err(db_err)?;
    sqlx::query(
        "UPDATE users SET feed_horizon = GREATEST(feed_horizon, (
             SELECT MAX(version) FROM library_changes c
             WHERE c.user_id = users.id AND c.op = 'delete' AND c.changed_at < $1))
         WHERE id IN (SELECT user_id FROM library_changes WHERE op = 'delete' AND changed_at < $1)",
    )
    .bind(older_than)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let done = sqlx::query(
        "DELETE FROM library_changes c USING users u
         WHERE u.id = c.user_id AND c.op = 'delete' AND c.changed_at < $1 AND c.version <= u.feed_horizon",
    )
    .bind(older_than)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    crate::sync::prune_revisions(&mut tx, older_than).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(done.rows_affected())
}
