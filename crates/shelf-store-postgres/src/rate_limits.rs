//! Attempt counters for login and registration limits (spec AU7).

use shelf_store::StoreResult;
use sqlx::PgPool;

use crate::db_err;

/// One upsert for all buckets: a bucket in a newer window starts again at 1, a late attempt of
/// an older window counts in the newer one. Row locks make concurrent counts distinct; buckets
/// are locked in sorted order so two requests naming the same buckets cannot deadlock.
pub async fn count_attempts(pool: &PgPool, buckets: &[String], window_start: i64) -> StoreResult<Vec<i64>> {
    if buckets.is_empty() {
        return Ok(Vec::new());
    }
    let mut sorted: Vec<&String> = buckets.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut query = sqlx::QueryBuilder::new("INSERT INTO rate_limits (bucket, window_start, attempts) ");
    query.push_values(sorted, |mut row, bucket| {
        row.push_bind(bucket).push_bind(window_start).push("1");
    });
    query.push(
        " ON CONFLICT (bucket) DO UPDATE SET
            attempts = CASE WHEN excluded.window_start > rate_limits.window_start THEN 1 ELSE rate_limits.attempts + 1 END,
            window_start = GREATEST(rate_limits.window_start, excluded.window_start)
          RETURNING bucket, attempts",
    );
    let rows: Vec<(String, i64)> = query.build_query_as().fetch_all(pool).await.map_err(db_err)?;
    shelf_store::counts_in_order(buckets, &rows)
}

pub async fn refund_attempts(pool: &PgPool, buckets: &[String], window_start: i64) -> StoreResult<()> {
    sqlx::query("UPDATE rate_limits SET attempts = attempts - 1 WHERE attempts > 0 AND window_start = $1 AND bucket = ANY($2)")
        .bind(window_start)
        .bind(buckets)
        .execute(pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub async fn purge_attempts(pool: &PgPool, before: i64) -> StoreResult<u64> {
    let done = sqlx::query("DELETE FROM rate_limits WHERE window_start < $1").bind(before).execute(pool).await.map_err(db_err)?;
    Ok(done.rows_affected())
}
