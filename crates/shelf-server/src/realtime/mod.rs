//! Real-time delivery of library versions: Server-Sent Events and WebSocket.
//!
//! Both transports render the same per-connection state machine ([`stream::VersionStream`]),
//! which follows the user's channel on the [`ChangeBus`](shelf_bus::ChangeBus). The channel holds
//! only the latest version, so a slow client costs constant memory: versions it had no time to
//! receive coalesce into the newest one (spec RT3).

pub mod hub;
pub mod rendered;
pub mod sse;
pub mod stream;
pub mod ws;

pub use hub::StreamHub;
