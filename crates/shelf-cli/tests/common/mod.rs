//! The `shelf serve` processes of the CLI tests: this package's own binary.

#![allow(dead_code, unused_imports)] // Shared by several test binaries; each uses a part.

pub mod backup;

pub use shelf_testkit::process::{Serve, WAIT};

/// Starts this package's `shelf` on a free port over `database_url`, with extra flags.
pub async fn serve(database_url: &str, extra: &[&str]) -> Serve {
    Serve::start(env!("CARGO_BIN_EXE_shelf").as_ref(), database_url, extra).await
}
