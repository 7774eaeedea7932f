//! Thin HTTP handlers: extract, call one service function, shape the response.

use axum::http::HeaderValue;

use crate::error::{ApiError, ApiResult};

/// A header value built from text the server composed (a number, a stored name): one that cannot
/// be a header is a bug, answered as an internal error rather than left out of the response.
pub fn header_value(name: &str, value: &str) -> ApiResult<HeaderValue> {
    HeaderValue::from_str(value).map_err(|e| ApiError::Internal(anyhow::anyhow!("response header {name} = {value:?}: {e}")))
}

pub mod account;
pub mod attachments;
pub mod auth;
pub mod devices;
pub mod health;
pub mod library;
pub mod materials;
pub mod progress;
pub mod push;
pub mod sync;
pub mod uploads;
