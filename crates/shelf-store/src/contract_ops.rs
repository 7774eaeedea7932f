#![allow(clippy::unwrap_used)] // A test suite: a failed unwrap is a failed test.

//! Contract rules for what operators need: pool occupancy, device sync health, account
//! lifecycle. Run by every backend through [`contract_tests!`](crate::contract_tests).

use crate::Store;

/// OP3: every backend names its pools and reports an occupancy within its maximum.
pub async fn op3_pool_stats_are_within_bounds(store: &dyn Store) {
    store.ping().await.unwrap();
    let pools = store.pool_stats();
    assert!(!pools.is_empty(), "a backend has at least one pool");
    for pool in pools {
        assert!(!pool.name.is_empty());
        assert!(pool.max >= 1, "{pool:?}");
        assert!(pool.idle <= pool.size && pool.size <= pool.max, "{pool:?}");
    }
}
