//! Attempt counters for login and registration limits (spec AU7).

use shelf_store::StoreResult;
use sqlx::SqlitePool;

use crate::db_err;

/// One upsert for all buckets: a bucket in a newer window starts again at 1, a late attempt of
/// an older window counts in the newer one. The single writer connection serialises it.
pub async fn count_attempts(pool: &SqlitePool, buckets: &[String], window_start: i64) -> StoreResult<Vec<i64>> {
    if buckets.is_empty() {
        return Ok(Vec::new());
    }
    let mut query = sqlx::QueryBuilder::new("INSERT INTO rate_limits (bucket, window_start, attempts) ");
    query.push_values(buckets, |mut row, bucket| {
        row.push_bind(bucket).push_bind(window_start).push("1");
    });
    query.push(
        " ON CONFLICT (bucket) DO UPDATE SET
            attempts = CASE WHEN excluded.window_start > rate_limits.window_start THEN 1 ELSE rate_limits.attempts + 1 END,
            window_start = MAX(rate_limits.window_start, excluded.window_start)
          RETURNING bucket, attempts",
    );
    let rows: Vec<(String, i64)> = query.build_query_as().fetch_all(pool).await.map_err(db_err)?;
    shelf_store::counts_in_order(buckets, &rows)
}

pub async fn refund_attempts(pool: &SqlitePool, buckets: &[String], window_start: i64) -> StoreResult<()> {
    if buckets.is_empty() {
        return Ok(());
    }
    let mut query = sqlx::QueryBuilder::new("UPDATE rate_limits SET attempts = attempts - 1 WHERE attempts > 0 AND window_start = ");
    query.push_bind(window_start).push(" AND bucket IN (");
    let mut list = query.separated(", ");
    for bucket in buckets {
        list.push_bind(bucket);
    }
    query.push(")");
    query.build().execute(pool).await.map_err(db_err)?;
    Ok(())
}

pub async fn purge_attempts(pool: &SqlitePool, before: i64) -> StoreResult<u64> {
    let done = sqlx::query("DELETE FROM rate_limits WHERE window_start < ?").bind(before).execute(pool).await.map_err(db_err)?;
    Ok(done.rows_affected())
}
