//! The tombstone purge. (Library mutations run through the write path, `write_tx.rs`.)

use shelf_store::StoreResult;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use crate::db_err;

pub(crate) type Tx<'a> = Transaction<'a, Postgres>;

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
