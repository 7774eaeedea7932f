//! HTTP API tests: each test starts a real server on 127.0.0.1:0 and runs on SQLite and on
//! PostgreSQL. Test names cite rule ids from docs/spec.md.

#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod account;
mod atomicity;
mod attachments;
mod auth;
mod bounds;
mod compaction;
mod concurrency;
mod edges;
mod feed;
mod isolation;
mod isolation_random;
mod limits;
mod materials;
mod observability;
mod origins;
mod push;
mod realtime;
mod sessions;
mod sync;
mod uploads;
mod versions;
mod web;
mod write_path;
