//! Registration, login and device sessions.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegisterRequest {
    /// An e-mail address; stored lower-cased.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 8 to 1024 characters; stored only as an argon2id hash.
    #[schema(min_length = 8, max_length = 1024, pattern = "^[^\\u0000]*$")]
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegisterResponse {
    pub user_id: Uuid,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// Shown in the device list; at most 100 characters; defaults to "Unnamed device".
    #[serde(default)]
    #[schema(max_length = 100, pattern = "^[^\\u0000]*$")]
    pub device_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`. Shown once; the server keeps only its hash.
    pub token: String,
    pub device_id: Uuid,
    pub user_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

/// `DELETE /api/account`: the password again, so a borrowed session cannot delete the account.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteAccountRequest {
    #[schema(max_length = 4096)]
    pub password: String,
}

/// `POST /api/auth/password`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePasswordRequest {
    #[schema(max_length = 4096)]
    pub current_password: String,
    /// 8 to 1024 characters, like at registration.
    #[schema(min_length = 8, max_length = 1024, pattern = "^[^\\u0000]*$")]
    pub new_password: String,
}

/// One device session of the current user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceView {
    pub device_id: Uuid,
    pub device_name: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub last_seen_at: OffsetDateTime,
    /// True for the session making this request.
    pub current: bool,
    /// True when this device has a Web Push subscription (`POST /api/push/subscriptions`).
    #[serde(default)]
    pub push: bool,
    /// The last library version this device pulled from the feed or was sent with its changes on
    /// a stream
    /// (recorded at most about every 30 seconds); `null` until it first syncs.
    pub last_synced_version: Option<i64>,
    /// When that was.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_synced_at: Option<OffsetDateTime>,
    /// How many versions the library is ahead of `lastSyncedVersion`; `null` until it first syncs.
    #[schema(minimum = 0)]
    pub lag: Option<i64>,
}
