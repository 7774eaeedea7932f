//! Shelf's Rust client: a local replica of one user's library, a durable outbox of local edits,
//! sync (push, then pull the change feed) and live follow over Server-Sent Events.
//!
//! Any Rust study app can embed it; the `shelf` command-line client is built on it. It speaks
//! only the wire contract of `shelf-api` and never depends on the server or its stores.
//!
//! ```no_run
//! # async fn demo() -> Result<(), shelf_client::ClientError> {
//! use shelf_client::{Client, Http, Replica};
//! let replica = Replica::open(std::path::Path::new("library.sqlite3"))?;
//! let client = Client::new(replica, Http::new("http://127.0.0.1:8787", Some("token".into()))?);
//! client.sync().await?;
//! for material in client.materials().await? {
//!     println!("{} {}", material.material.id, material.material.title);
//! }
//! # Ok(()) }
//! ```

mod attach;
mod backoff;
mod client;
mod error;
mod follow;
mod http;
pub mod mutation;
mod outbox;
pub mod overlay;
mod replica;
mod status;
mod sync;
mod uploads;

pub use attach::Attached;
pub use backoff::Backoff;
pub use client::{login, logout, register, Client};
pub use error::{ClientError, ClientResult, SIGNED_OUT_MESSAGE};
pub use follow::FollowOptions;
pub use http::{normalize_server, Http};
pub use mutation::LocalEdit;
pub use outbox::{plan_receipt, ReceiptOutcome, ReceiptSummary, RejectedEdit};
pub use replica::{plan_page, Cursor, LocalMaterial, PageOutcome, Replica, RowOp};
pub use status::{Status, SyncOutcome, SyncState, SIGNED_OUT};
pub use sync::{ChangeObserver, SyncReport, BATCH_BYTES, BATCH_MAX, PAGE_LIMIT};
pub use uploads::{content_type_for, hash_file, Downloaded, Progress};
