//! The tombstone purge, on sqlx. (Library mutations run through the write path, `write_tx.rs`.)

use shelf_store::StoreResult;
use sqlx::{Sqlite, SqlitePool, Transaction};
use time::OffsetDateTime;

use crate::db_err;
use crate::rows::micros;

pub(crate) type Tx<'a> = Transaction<'a, Sqlite>;

pub async fn purge_tombstones(pool: &SqlitePool, older_than: OffsetDateTime) -> StoreResult<u64> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(db_err)?;
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
