//! Shelf's [`Store`] on PostgreSQL: the production backend, shared by any number of stateless
//! server instances.
//!
//! Writers of one user serialise on that user's row lock (`SELECT … FOR UPDATE`), so versions
//! never gap or repeat while different users write in parallel; within an instance, one user's
//! concurrent writes commit in groups, one transaction each (`group.rs`, ADR 0012). A change-feed
//! page is one statement, so one snapshot.

mod accounts;
mod attachments;
mod group;
mod library;
mod push;
mod operations;
mod rate_limits;
mod rows;
mod sync;
mod uploads;
mod write;
mod write_tx;

pub use group::WriterStats;

use async_trait::async_trait;
use shelf_core::{Conflict, DeviceId, Email, Epoch, LibraryVersion, Material, MaterialId, Progress, UserId};
use shelf_store::write::WriteBackend;
use shelf_store::{
    ChangesPage, NewPushSubscription, NewSession, PushSubscription, PushTarget, NewUpload, Receipt, ReceiptKey, RejectedMutation, RejectedQuery, SessionAuth, SessionInfo, Store, StoreError,
    StoreResult, StoredBlob, UploadLease, UploadProgress, UploadRecord, UserCredentials,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use time::OffsetDateTime;

/// A Store over one PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    writer: group::Writer,
}

impl PostgresStore {
    /// Connects, runs migrations and fixes the epoch on first use.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(StoreError::backend)?;
        sqlx::migrate!("./migrations").run(&pool).await.map_err(StoreError::backend)?;
        sqlx::query("INSERT INTO shelf_meta (key, value) VALUES ('epoch', $1) ON CONFLICT (key) DO NOTHING")
            .bind(uuid::Uuid::new_v4().to_string())
            .execute(&pool)
            .await
            .map_err(StoreError::backend)?;
        Ok(Self { writer: group::Writer::new(pool.clone()), pool })
    }

    /// The connection pool, for tests and tools that reach under the seam.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The library writer's queues and group commits so far.
    pub fn writer_stats(&self) -> group::WriterStats {
        self.writer.stats()
    }
}

pub(crate) fn db_err(error: sqlx::Error) -> StoreError {
    StoreError::backend(error)
}

#[async_trait]
impl Store for PostgresStore {
    fn backend_name(&self) -> &'static str {
        "postgres"
    }

    fn pool_stats(&self) -> Vec<shelf_store::PoolStats> {
        vec![shelf_store::PoolStats {
            name: "main",
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.pool.options().get_max_connections(),
        }]
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(db_err)?;
        Ok(())
    }

    async fn epoch(&self) -> StoreResult<Epoch> {
        let value: String = sqlx::query_scalar("SELECT value FROM shelf_meta WHERE key = 'epoch'")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(Epoch(value))
    }

    async fn new_epoch(&self) -> StoreResult<Epoch> {
        let epoch = uuid::Uuid::new_v4().to_string();
        sqlx::query("UPDATE shelf_meta SET value = $1 WHERE key = 'epoch'")
            .bind(&epoch)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(Epoch(epoch))
    }

    async fn create_user(&self, email: &Email, password_hash: &str, now: OffsetDateTime) -> StoreResult<UserId> {
        accounts::create_user(&self.pool, email, password_hash, now).await
    }

    async fn user_credentials(&self, email: &Email) -> StoreResult<Option<UserCredentials>> {
        accounts::user_credentials(&self.pool, email).await
    }

    async fn create_session(&self, session: &NewSession) -> StoreResult<()> {
        accounts::create_session(&self.pool, session).await
    }

    async fn session_by_token_hash(&self, token_hash: &[u8], now: OffsetDateTime) -> StoreResult<Option<SessionAuth>> {
        accounts::session_by_token_hash(&self.pool, token_hash, now).await
    }

    async fn touch_session(&self, device: DeviceId, now: OffsetDateTime) -> StoreResult<()> {
        accounts::touch_session(&self.pool, device, now).await
    }

    async fn record_device_sync(&self, device: DeviceId, version: shelf_core::LibraryVersion, at: OffsetDateTime) -> StoreResult<()> {
        operations::record_device_sync(&self.pool, device, version, at).await
    }

    async fn renew_sessions(&self, devices: &[DeviceId], now: OffsetDateTime, expires_at: OffsetDateTime) -> StoreResult<()> {
        operations::renew_sessions(&self.pool, devices, now, expires_at).await
    }

    async fn account(&self, user: UserId) -> StoreResult<Option<shelf_store::Account>> {
        operations::account(&self.pool, user).await
    }

    async fn change_password(&self, user: UserId, password_hash: &str, keep: DeviceId) -> StoreResult<Vec<DeviceId>> {
        operations::change_password(&self.pool, user, password_hash, keep).await
    }

    async fn delete_user(&self, user: UserId) -> StoreResult<shelf_store::DeletedAccount> {
        operations::delete_user(&self.pool, user).await
    }

    async fn admin_stats(&self, now: OffsetDateTime) -> StoreResult<shelf_store::AdminStats> {
        operations::admin_stats(&self.pool, now).await
    }

    async fn list_sessions(&self, user: UserId, now: OffsetDateTime) -> StoreResult<Vec<SessionInfo>> {
        accounts::list_sessions(&self.pool, user, now).await
    }

    async fn revoke_session(&self, user: UserId, device: DeviceId) -> StoreResult<bool> {
        accounts::revoke_session(&self.pool, user, device).await
    }

    async fn session_expiries(&self, devices: &[DeviceId], now: OffsetDateTime) -> StoreResult<Vec<(DeviceId, OffsetDateTime)>> {
        accounts::session_expiries(&self.pool, devices, now).await
    }

    async fn ended_sessions(&self, window: std::time::Duration) -> StoreResult<Vec<DeviceId>> {
        accounts::ended_sessions(&self.pool, window).await
    }

    async fn purge_ended_sessions(&self, older_than: std::time::Duration) -> StoreResult<u64> {
        accounts::purge_ended_sessions(&self.pool, older_than).await
    }

    async fn create_stream_ticket(&self, ticket_hash: &[u8], device: DeviceId, expires_at: OffsetDateTime) -> StoreResult<()> {
        accounts::create_stream_ticket(&self.pool, ticket_hash, device, expires_at).await
    }

    async fn consume_stream_ticket(&self, ticket_hash: &[u8], now: OffsetDateTime) -> StoreResult<Option<SessionAuth>> {
        accounts::consume_stream_ticket(&self.pool, ticket_hash, now).await
    }

    async fn vapid_private_key(&self, candidate: &[u8], now: OffsetDateTime) -> StoreResult<Vec<u8>> {
        push::vapid_private_key(&self.pool, candidate, now).await
    }

    async fn put_push_subscription(&self, subscription: &NewPushSubscription) -> StoreResult<bool> {
        push::put_push_subscription(&self.pool, subscription).await
    }

    async fn delete_push_subscription(&self, user: UserId, device: DeviceId) -> StoreResult<bool> {
        push::delete_push_subscription(&self.pool, user, device).await
    }

    async fn discard_push_subscription(&self, device: DeviceId, endpoint: &str) -> StoreResult<bool> {
        push::discard_push_subscription(&self.pool, device, endpoint).await
    }

    async fn push_devices(&self, user: UserId) -> StoreResult<Vec<DeviceId>> {
        push::push_devices(&self.pool, user).await
    }

    async fn push_targets(&self, users: &[UserId], now: OffsetDateTime, streams_seen_since: OffsetDateTime) -> StoreResult<Vec<PushTarget>> {
        push::push_targets(&self.pool, users, now, streams_seen_since).await
    }

    async fn claim_push(
        &self,
        device: DeviceId,
        version: LibraryVersion,
        now: OffsetDateTime,
        streams_seen_since: OffsetDateTime,
    ) -> StoreResult<Option<PushSubscription>> {
        push::claim_push(&self.pool, device, version, now, streams_seen_since).await
    }

    async fn record_stream_presence(&self, instance: uuid::Uuid, devices: &[DeviceId], now: OffsetDateTime) -> StoreResult<()> {
        push::record_stream_presence(&self.pool, instance, devices, now).await
    }

    async fn clear_stream_presence(&self, instance: uuid::Uuid, devices: Option<&[DeviceId]>) -> StoreResult<()> {
        push::clear_stream_presence(&self.pool, instance, devices).await
    }

    async fn count_attempts(&self, buckets: &[String], window_start: i64) -> StoreResult<Vec<i64>> {
        rate_limits::count_attempts(&self.pool, buckets, window_start).await
    }

    async fn refund_attempts(&self, buckets: &[String], window_start: i64) -> StoreResult<()> {
        rate_limits::refund_attempts(&self.pool, buckets, window_start).await
    }

    async fn purge_attempts(&self, before: i64) -> StoreResult<u64> {
        rate_limits::purge_attempts(&self.pool, before).await
    }

    fn writer(&self) -> &dyn WriteBackend {
        &self.writer
    }

    async fn conflicts(&self, user: UserId, material: MaterialId) -> StoreResult<Vec<Conflict>> {
        sync::conflicts(&self.pool, user, material).await
    }

    async fn attachments(&self, user: UserId, material: MaterialId) -> StoreResult<Vec<shelf_core::Attachment>> {
        attachments::attachments(&self.pool, user, material).await
    }

    async fn blob_referenced(&self, user: UserId, sha256: &str) -> StoreResult<bool> {
        attachments::blob_referenced(&self.pool, user, sha256).await
    }

    async fn create_upload(&self, upload: &NewUpload, quota: u64) -> StoreResult<()> {
        uploads::create_upload(&self.pool, upload, quota).await
    }

    async fn upload(&self, user: UserId, id: uuid::Uuid) -> StoreResult<Option<UploadRecord>> {
        uploads::find_upload(&self.pool, user, id).await
    }

    async fn claim_upload(&self, user: UserId, id: uuid::Uuid, lease: UploadLease, now: OffsetDateTime) -> StoreResult<UploadRecord> {
        uploads::claim_upload(&self.pool, user, id, lease, now).await
    }

    async fn renew_upload(&self, id: uuid::Uuid, token: uuid::Uuid, progress: &UploadProgress, until: OffsetDateTime) -> StoreResult<bool> {
        uploads::renew_upload(&self.pool, id, token, progress, until).await
    }

    async fn release_upload(&self, id: uuid::Uuid, token: uuid::Uuid, progress: &UploadProgress, now: OffsetDateTime) -> StoreResult<bool> {
        uploads::release_upload(&self.pool, id, token, progress, now).await
    }

    async fn finish_upload(&self, id: uuid::Uuid, token: uuid::Uuid, now: OffsetDateTime) -> StoreResult<bool> {
        uploads::finish_upload(&self.pool, id, token, now).await
    }

    async fn discard_upload(&self, id: uuid::Uuid, token: uuid::Uuid) -> StoreResult<bool> {
        uploads::discard_upload(&self.pool, id, token).await
    }

    async fn abandoned_uploads(&self, before: OffsetDateTime, now: OffsetDateTime) -> StoreResult<Vec<(UserId, uuid::Uuid)>> {
        uploads::abandoned_uploads(&self.pool, before, now).await
    }

    async fn stored_blob(&self, user: UserId, sha256: &str) -> StoreResult<Option<StoredBlob>> {
        uploads::stored_blob(&self.pool, user, sha256).await
    }

    async fn collect_unreferenced_blobs(&self, before: OffsetDateTime) -> StoreResult<Vec<(UserId, String)>> {
        uploads::collect_unreferenced_blobs(&self.pool, before).await
    }

    async fn stored_blobs_backfilled(&self) -> StoreResult<bool> {
        uploads::stored_blobs_backfilled(&self.pool).await
    }

    async fn backfill_stored_blobs(&self, blobs: &[(UserId, StoredBlob)]) -> StoreResult<u64> {
        uploads::backfill_stored_blobs(&self.pool, blobs).await
    }

    async fn library_version(&self, user: UserId) -> StoreResult<LibraryVersion> {
        library::library_version(&self.pool, user).await
    }

    async fn library_versions(&self, users: &[UserId]) -> StoreResult<Vec<(UserId, LibraryVersion)>> {
        library::library_versions(&self.pool, users).await
    }

    async fn material(&self, user: UserId, id: MaterialId) -> StoreResult<Option<(Material, Option<Progress>)>> {
        library::material(&self.pool, user, id).await
    }

    async fn list_materials(
        &self,
        user: UserId,
        after: Option<MaterialId>,
        limit: u32,
    ) -> StoreResult<Vec<(Material, Option<Progress>)>> {
        library::list_materials(&self.pool, user, after, limit).await
    }

    async fn receipt(&self, user: UserId, key: ReceiptKey) -> StoreResult<Option<Receipt>> {
        sync::receipt(&self.pool, user, key).await
    }

    async fn rejected_mutations(&self, user: UserId, query: RejectedQuery) -> StoreResult<Vec<RejectedMutation>> {
        sync::rejected_mutations(&self.pool, user, query).await
    }

    async fn rejected_mutation(&self, user: UserId, id: uuid::Uuid) -> StoreResult<Option<RejectedMutation>> {
        sync::rejected_mutation(&self.pool, user, id).await
    }

    async fn changes_since(&self, user: UserId, since: LibraryVersion, limit: u32, max_bytes: u64) -> StoreResult<ChangesPage> {
        library::changes_since(&self.pool, user, since, limit, max_bytes).await
    }

    async fn compact_tombstones(&self, active_since: OffsetDateTime, now: OffsetDateTime) -> StoreResult<u64> {
        operations::compact_tombstones(&self.pool, active_since, now).await
    }

    async fn purge_tombstones(&self, older_than: OffsetDateTime) -> StoreResult<u64> {
        write::purge_tombstones(&self.pool, older_than).await
    }
}

#[cfg(test)]
mod tests {
    use super::PostgresStore;
    use sqlx::Connection;

    fn admin_url() -> String {
        std::env::var("SHELF_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
    }

    /// `admin` with its database swapped for `name`, keeping any `?options` (e.g. sslmode).
    fn database_url(admin: &str, name: &str) -> String {
        let (base, options) = admin.split_once('?').map_or((admin, None), |(base, options)| (base, Some(options)));
        let server = base.rsplit_once('/').map_or(base, |(server, _)| server);
        match options {
            Some(options) => format!("{server}/{name}?{options}"),
            None => format!("{server}/{name}"),
        }
    }

    /// A database that exists for one test, so tests run in parallel without sharing rows.
    struct TestDatabase(String);

    impl Drop for TestDatabase {
        /// Best effort: a leftover database is harmless, a panic in `drop` would hide the test's
        /// own failure. The store's pool may still hold connections here, hence `FORCE`; a thread
        /// with its own runtime because `drop` cannot await inside the test's runtime.
        fn drop(&mut self) {
            let name = self.0.clone();
            let _ = std::thread::spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
                runtime.block_on(async move {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url()).await {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
                        let _ = conn.close().await;
                    }
                });
            })
            .join();
        }
    }

    async fn fresh() -> (PostgresStore, TestDatabase) {
        let admin = admin_url();
        let name = format!("shelf_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL is needed (set SHELF_TEST_POSTGRES_URL)");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.expect("create test database");
        let _ = conn.close().await;
        // Created before connecting, so a failed connect still drops the database.
        let database = TestDatabase(name);
        let store = PostgresStore::connect(&database_url(&admin, &database.0)).await.expect("connect to test database");
        (store, database)
    }

    shelf_store::contract_tests!(fresh);

    /// Group commit (ADR 0012): writers queued behind a held row lock commit as one group once it
    /// is released; an attempt the database refuses after its first writes ran rolls back alone,
    /// the others keep distinct versions with no gap, and the user's queue is gone afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_group_commits_once_and_a_failing_attempt_rolls_back_alone() {
        use shelf_core::{
            Email, LibraryMutation, LibraryVersion, MaterialBody, MaterialId, MaterialTitle,
            Position, ProgressUpdate, Tags,
        };
        use shelf_store::{Store, StoreError};
        let (store, _database) = fresh().await;
        // A failure no plan foresees: the progress row is refused after the material row and its
        // change entry were written in the same attempt.
        sqlx::raw_sql(
            "CREATE FUNCTION refuse_progress() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN IF NEW.position = 'refuse' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$;
             CREATE TRIGGER refuse_progress BEFORE INSERT ON progress FOR EACH ROW EXECUTE FUNCTION refuse_progress();",
        )
        .execute(store.pool())
        .await
        .unwrap();
        let now = shelf_core::truncate_to_micros(time::OffsetDateTime::now_utc());
        let user = store
            .create_user(&Email::parse("group@example.com").unwrap(), "hash", now)
            .await
            .unwrap();
        let create = |position: &str| LibraryMutation::CreateMaterial {
            id: MaterialId::new(),
            title: MaterialTitle::parse("grouped").unwrap(),
            body: MaterialBody::parse("body").unwrap(),
            tags: Tags::parse(&["t"]).unwrap(),
            progress: Some(ProgressUpdate {
                position: Some(Position::parse(position).unwrap()),
                ..Default::default()
            }),
        };
        let mut holder = store.pool().begin().await.unwrap();
        sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
            .bind(user.0)
            .execute(&mut *holder)
            .await
            .unwrap();
        let store = std::sync::Arc::new(store);
        let spawn = |position: &'static str| {
            let (store, mutation) = (store.clone(), create(position));
            tokio::spawn(async move { store.apply(user, &mutation, now).await })
        };
        // The first writer's group (itself alone) waits on the held lock; the next 19 queue behind it.
        let mut tasks = vec![spawn("first")];
        while !matches!(
            store.writer_stats(),
            super::WriterStats {
                queued_users: 1,
                waiting: 0,
                ..
            }
        ) {
            tokio::task::yield_now().await;
        }
        tasks.extend((1..20).map(|i| spawn(if i == 7 { "refuse" } else { "p" })));
        while store.writer_stats().waiting < 19 {
            tokio::task::yield_now().await;
        }
        holder.commit().await.unwrap();
        let mut versions = Vec::new();
        for (i, task) in tasks.into_iter().enumerate() {
            match task.await.unwrap() {
                Ok(applied) => versions.push(applied.library_version.0),
                Err(StoreError::Backend(error)) if i == 7 => assert!(
                    format!("{error:?}").contains("refused by the test"),
                    "{error:?}"
                ),
                other => panic!("writer {i}: {other:?}"),
            }
        }
        versions.sort_unstable();
        assert_eq!(versions, (2..21).collect::<Vec<_>>());
        assert_eq!(
            store.library_version(user).await.unwrap(),
            LibraryVersion(20)
        );
        assert_eq!(
            store.list_materials(user, None, 100).await.unwrap().len(),
            19,
            "the refused write left no material"
        );
        assert_eq!(
            store
                .changes_since(user, LibraryVersion(0), 100, u64::MAX)
                .await
                .unwrap()
                .changes
                .len(),
            38
        );
        let stats = store.writer_stats();
        assert_eq!(
            (stats.commits, stats.committed_attempts),
            (2, 20),
            "one commit alone, then one for the 19"
        );
        // The user's task removes the queue just after answering: no queue is kept for an idle user.
        while store.writer_stats().queued_users > 0 {
            tokio::task::yield_now().await;
        }
    }
}
