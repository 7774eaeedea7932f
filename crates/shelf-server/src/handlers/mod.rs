//! Thin HTTP handlers: extract, call one service function, shape the response.

pub mod attachments;
pub mod auth;
pub mod devices;
pub mod health;
pub mod library;
pub mod materials;
pub mod progress;
pub mod sync;
pub mod uploads;
