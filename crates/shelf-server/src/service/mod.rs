//! The domain services behind the handlers. Nothing here knows HTTP: services take parsed
//! inputs and return domain values or [`ApiError`](crate::error::ApiError) outcomes.

pub mod account;
pub mod attachments;
pub mod auth;
pub mod batches;
pub mod hashing;
pub mod library;
pub mod mutations;
pub mod push;
pub mod rate_limits;
pub mod renewals;
pub mod server_bus;
pub mod session_cache;
pub mod session_reads;
pub mod stream_sessions;
pub mod sync_health;
pub mod tickets;
pub mod uploads;
pub mod version_cache;
pub mod versions;
