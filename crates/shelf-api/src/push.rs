//! Web Push: the server's VAPID key and a browser's push subscription (spec PU1–PU3).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The application server key a browser passes to `pushManager.subscribe`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VapidPublicKeyResponse {
    /// The server's VAPID public key: an uncompressed P-256 point (65 bytes), base64url
    /// without padding.
    #[schema(pattern = "^[A-Za-z0-9_-]{87}$")]
    pub public_key: String,
}

/// A browser's `PushSubscription.toJSON()`, tied to the device session that sends it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PushSubscriptionRequest {
    /// The push service URL: `https://` on a host the server allows (`--push-allowed-hosts`);
    /// `http://` only for a loopback host listed explicitly.
    #[schema(min_length = 1, max_length = 2048, pattern = "^https?://")]
    pub endpoint: String,
    /// Sent by browsers and ignored: the push service tells the server when it expires.
    #[serde(default)]
    pub expiration_time: Option<f64>,
    pub keys: PushSubscriptionKeys,
}

/// The subscription's encryption keys (RFC 8291), base64url.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PushSubscriptionKeys {
    /// The browser's P-256 public key: an uncompressed point of 65 bytes.
    #[schema(min_length = 86, max_length = 88, pattern = "^[A-Za-z0-9_-]+={0,2}$")]
    pub p256dh: String,
    /// The 16-byte authentication secret.
    #[schema(min_length = 22, max_length = 24, pattern = "^[A-Za-z0-9_-]+={0,2}$")]
    pub auth: String,
}

/// The payload of every push, encrypted for the subscription (aes128gcm): the same fields as
/// `GET /api/library/version`, so the Service Worker can record the version it learned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PushPayload {
    pub library_version: i64,
    pub epoch: String,
}
