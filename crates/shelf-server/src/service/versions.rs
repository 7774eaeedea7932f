//! Lets a cross-instance bus read versions from whichever Store is running.

use std::sync::Arc;

use async_trait::async_trait;
use shelf_bus::{BusError, VersionSource};
use shelf_core::{LibraryVersion, UserId};
use shelf_store::Store;

/// Recovery reads for buses: one batched query for all users subscribed on this instance.
pub struct StoreVersionSource(pub Arc<dyn Store>);

#[async_trait]
impl VersionSource for StoreVersionSource {
    async fn library_versions(&self, users: &[UserId]) -> Result<Vec<(UserId, LibraryVersion)>, BusError> {
        self.0.library_versions(users).await.map_err(|e| BusError::Source(e.to_string()))
    }
}
