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
mod group_state;
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

    fn reads_sessions_in_batches(&self) -> bool {
        true
    }

    async fn sessions_by_token_hashes(&self, token_hashes: &[Vec<u8>], now: OffsetDateTime) -> StoreResult<Vec<(Vec<u8>, SessionAuth)>> {
        accounts::sessions_by_token_hashes(&self.pool, token_hashes, now).await
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
mod tests;
